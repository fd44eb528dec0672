//! The text format of Login and Text PDUs (RFC 7143 §6.1): NUL-terminated `key=value` pairs,
//! with list values (`a,b,c`), booleans (`Yes`/`No`) and numbers (decimal, `0x` hex or `0b`
//! base64). Parsing borrows from the data segment and detects repeated keys.

use std::collections::HashSet;

/// Longest key name.
pub const MAX_KEY_LEN_BYTES: usize = 63;
/// Longest value unless the key allows more.
pub const MAX_VALUE_LEN_BYTES: usize = 255;
/// Longest value of keys carrying binary or long data (authentication exchanges).
pub const MAX_LONG_VALUE_LEN_BYTES: usize = 8192;

/// Reserved values with a protocol meaning.
pub const NOT_UNDERSTOOD: &str = "NotUnderstood";
pub const REJECT: &str = "Reject";
pub const IRRELEVANT: &str = "Irrelevant";

/// One pair borrowed from a data segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyValue<'a> {
    pub key: &'a str,
    pub value: &'a str,
}

/// Why a text segment is malformed; `offset_bytes` points at the start of the offending pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("pair at offset {offset_bytes} has no '='")]
    MissingEquals { offset_bytes: usize },
    #[error("pair at offset {offset_bytes} has an empty, too long or ill-formed key")]
    InvalidKey { offset_bytes: usize },
    #[error("value at offset {offset_bytes} is {len_bytes} bytes long, more than {max_bytes}")]
    ValueTooLong {
        offset_bytes: usize,
        len_bytes: usize,
        max_bytes: usize,
    },
    #[error("pair at offset {offset_bytes} is not UTF-8")]
    InvalidUtf8 { offset_bytes: usize },
    #[error("key at offset {offset_bytes} appears more than once")]
    DuplicateKey { offset_bytes: usize },
}

/// Why a value does not parse as the type its key requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error("not a number")]
    NotANumber,
    #[error("number does not fit 64 bits")]
    NumberTooLarge,
    #[error("not Yes or No")]
    NotABoolean,
    #[error("not a 0x-hexadecimal or 0b-base64 binary value")]
    NotABinaryValue,
    #[error("binary value longer than {max_bytes} bytes")]
    BinaryValueTooLong { max_bytes: usize },
}

/// Longest value accepted for `key`.
pub fn max_value_len_bytes(key: &str) -> usize {
    const LONG_VALUE_PREFIXES: [&str; 3] = ["CHAP_", "SRP_", "KRB_"];
    if LONG_VALUE_PREFIXES.iter().any(|p| key.starts_with(p)) {
        MAX_LONG_VALUE_LEN_BYTES
    } else {
        MAX_VALUE_LEN_BYTES
    }
}

fn is_key_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'+' | b'@' | b'_' | b'#')
}

/// Iterates over the pairs of a complete text segment. Empty entries (extra NULs, e.g. padding
/// an initiator counted in the length) are skipped; a final pair without its NUL is accepted.
pub fn pairs(data: &[u8]) -> impl Iterator<Item = Result<KeyValue<'_>, TextError>> + '_ {
    pairs_at(data).map(|r| r.map(|(_, kv)| kv))
}

/// Like [`pairs`], with each pair's offset in `data`.
fn pairs_at(data: &[u8]) -> impl Iterator<Item = Result<(usize, KeyValue<'_>), TextError>> + '_ {
    let mut offset = 0usize;
    let mut failed = false;
    core::iter::from_fn(move || loop {
        if failed || offset >= data.len() {
            return None;
        }
        let start = offset;
        let rest = &data[start..];
        let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        offset = start + end + 1;
        let raw = &rest[..end];
        if raw.is_empty() {
            continue;
        }
        let result = parse_pair(raw, start).map(|kv| (start, kv));
        failed = result.is_err();
        return Some(result);
    })
}

fn parse_pair(raw: &[u8], offset_bytes: usize) -> Result<KeyValue<'_>, TextError> {
    let eq = raw
        .iter()
        .position(|&b| b == b'=')
        .ok_or(TextError::MissingEquals { offset_bytes })?;
    let (key, value) = (&raw[..eq], &raw[eq + 1..]);
    if key.is_empty() || key.len() > MAX_KEY_LEN_BYTES || !key.iter().copied().all(is_key_char) {
        return Err(TextError::InvalidKey { offset_bytes });
    }
    // Key characters are ASCII, so this cannot fail; keep the error path anyway.
    let key = core::str::from_utf8(key).map_err(|_| TextError::InvalidKey { offset_bytes })?;
    let max_bytes = max_value_len_bytes(key);
    if value.len() > max_bytes {
        return Err(TextError::ValueTooLong {
            offset_bytes,
            len_bytes: value.len(),
            max_bytes,
        });
    }
    let value = core::str::from_utf8(value).map_err(|_| TextError::InvalidUtf8 { offset_bytes })?;
    Ok(KeyValue { key, value })
}

/// Parses a complete text segment into its pairs, in order, refusing repeated keys.
pub fn parse(data: &[u8]) -> Result<Vec<KeyValue<'_>>, TextError> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for pair in pairs_at(data) {
        let (offset_bytes, pair) = pair?;
        if !seen.insert(pair.key) {
            return Err(TextError::DuplicateKey { offset_bytes });
        }
        out.push(pair);
    }
    Ok(out)
}

/// Appends `key=value` and its NUL to a text segment under construction.
pub fn push_pair(out: &mut Vec<u8>, key: &str, value: &str) {
    out.reserve(key.len() + value.len() + 2);
    out.extend_from_slice(key.as_bytes());
    out.push(b'=');
    out.extend_from_slice(value.as_bytes());
    out.push(0);
}

/// The items of a list value.
pub fn list_items(value: &str) -> impl Iterator<Item = &str> {
    value.split(',')
}

/// `Yes` or `No`.
pub fn parse_bool(value: &str) -> Result<bool, ValueError> {
    match value {
        "Yes" => Ok(true),
        "No" => Ok(false),
        _ => Err(ValueError::NotABoolean),
    }
}

pub fn format_bool(value: bool) -> &'static str {
    if value {
        "Yes"
    } else {
        "No"
    }
}

/// A numerical value: decimal, `0x`/`0X` hexadecimal or `0b`/`0B` base64 (RFC 7143 §6.1).
pub fn parse_number(value: &str) -> Result<u64, ValueError> {
    let bytes = value.as_bytes();
    match bytes {
        [b'0', b'x' | b'X', digits @ ..] => parse_radix(digits, 16),
        [b'0', b'b' | b'B', digits @ ..] => parse_base64(digits),
        _ => parse_radix(bytes, 10),
    }
}

/// A large binary value (RFC 7143 §6.1: `0x`/`0X` hexadecimal or `0b`/`0B` base64), as used by
/// CHAP challenges and responses. Refused when it decodes to more than `max_bytes`; the
/// length is checked before anything is allocated.
pub fn parse_binary(value: &str, max_bytes: usize) -> Result<Vec<u8>, ValueError> {
    let too_long = ValueError::BinaryValueTooLong { max_bytes };
    match value.as_bytes() {
        [b'0', b'x' | b'X', digits @ ..] => {
            if digits.is_empty() {
                return Err(ValueError::NotABinaryValue);
            }
            // An odd number of digits has an implied leading zero.
            if digits.len().div_ceil(2) > max_bytes {
                return Err(too_long);
            }
            let mut out = Vec::with_capacity(digits.len().div_ceil(2));
            let (head, pairs) = digits.split_at(digits.len() % 2);
            if let [digit] = head {
                out.push(hex_digit(*digit)?);
            }
            for pair in pairs.chunks_exact(2) {
                out.push((hex_digit(pair[0])? << 4) | hex_digit(pair[1])?);
            }
            Ok(out)
        }
        [b'0', b'b' | b'B', digits @ ..] => {
            if digits.is_empty() || !digits.len().is_multiple_of(4) {
                return Err(ValueError::NotABinaryValue);
            }
            if digits.len() / 4 * 3 > max_bytes + 2 {
                return Err(too_long);
            }
            let trimmed = digits
                .strip_suffix(b"==")
                .or_else(|| digits.strip_suffix(b"="))
                .unwrap_or(digits);
            let mut out = Vec::with_capacity(trimmed.len() * 3 / 4);
            let mut bits: u32 = 0;
            let mut pending_bits = 0u32;
            for &c in trimmed {
                let digit = base64_digit(c).ok_or(ValueError::NotABinaryValue)?;
                bits = (bits << 6) | digit;
                pending_bits += 6;
                if pending_bits >= 8 {
                    pending_bits -= 8;
                    out.push((bits >> pending_bits) as u8);
                    bits &= (1 << pending_bits) - 1;
                }
            }
            if out.len() > max_bytes {
                return Err(too_long);
            }
            Ok(out)
        }
        _ => Err(ValueError::NotABinaryValue),
    }
}

/// Formats bytes as a `0x` hexadecimal binary value (lowercase digits).
pub fn format_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(2 + bytes.len() * 2);
    out.push_str("0x");
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

fn hex_digit(c: u8) -> Result<u8, ValueError> {
    char::from(c)
        .to_digit(16)
        .map(|d| d as u8)
        .ok_or(ValueError::NotABinaryValue)
}

fn parse_radix(digits: &[u8], radix: u32) -> Result<u64, ValueError> {
    if digits.is_empty() {
        return Err(ValueError::NotANumber);
    }
    digits.iter().try_fold(0u64, |acc, &c| {
        let digit = char::from(c)
            .to_digit(radix)
            .ok_or(ValueError::NotANumber)?;
        acc.checked_mul(u64::from(radix))
            .and_then(|v| v.checked_add(u64::from(digit)))
            .ok_or(ValueError::NumberTooLarge)
    })
}

fn base64_digit(c: u8) -> Option<u32> {
    Some(u32::from(match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    }))
}

fn parse_base64(digits: &[u8]) -> Result<u64, ValueError> {
    if digits.is_empty() || !digits.len().is_multiple_of(4) {
        return Err(ValueError::NotANumber);
    }
    let trimmed = digits
        .strip_suffix(b"==")
        .or_else(|| digits.strip_suffix(b"="))
        .unwrap_or(digits);
    let mut bits: u32 = 0;
    let mut pending_bits = 0u32;
    let mut value: u64 = 0;
    for &c in trimmed {
        let digit = base64_digit(c).ok_or(ValueError::NotANumber)?;
        bits = (bits << 6) | digit;
        pending_bits += 6;
        if pending_bits >= 8 {
            pending_bits -= 8;
            let byte = u64::from(bits >> pending_bits) & 0xff;
            bits &= (1 << pending_bits) - 1;
            if value >> 56 != 0 {
                return Err(ValueError::NumberTooLarge);
            }
            value = (value << 8) | byte;
        }
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_pairs_in_order() {
        let data = b"InitiatorName=iqn.1994-05.com.example:host\0SessionType=Normal\0";
        let got = parse(data).expect("valid");
        assert_eq!(
            got,
            vec![
                KeyValue {
                    key: "InitiatorName",
                    value: "iqn.1994-05.com.example:host"
                },
                KeyValue {
                    key: "SessionType",
                    value: "Normal"
                },
            ]
        );
    }

    #[test]
    fn tolerates_missing_final_nul_and_extra_nuls() {
        let got = parse(b"A=1\0\0\0B=\0C=x=y").expect("valid");
        let keys: Vec<_> = got.iter().map(|kv| (kv.key, kv.value)).collect();
        assert_eq!(keys, vec![("A", "1"), ("B", ""), ("C", "x=y")]);
    }

    #[test]
    fn reports_malformed_pairs() {
        assert_eq!(
            parse(b"A=1\0Junk\0"),
            Err(TextError::MissingEquals { offset_bytes: 4 })
        );
        assert_eq!(
            parse(b"=1\0"),
            Err(TextError::InvalidKey { offset_bytes: 0 })
        );
        assert_eq!(
            parse(b"A B=1\0"),
            Err(TextError::InvalidKey { offset_bytes: 0 })
        );
        let long_key = format!("{}=1", "K".repeat(64));
        assert!(matches!(
            parse(long_key.as_bytes()),
            Err(TextError::InvalidKey { .. })
        ));
        assert_eq!(
            parse(b"A=\xff\0"),
            Err(TextError::InvalidUtf8 { offset_bytes: 0 })
        );
    }

    #[test]
    fn enforces_value_lengths_per_key() {
        let ok = format!("TargetAlias={}\0", "a".repeat(255));
        assert!(parse(ok.as_bytes()).is_ok());
        let too_long = format!("TargetAlias={}\0", "a".repeat(256));
        assert_eq!(
            parse(too_long.as_bytes()),
            Err(TextError::ValueTooLong {
                offset_bytes: 0,
                len_bytes: 256,
                max_bytes: 255
            })
        );
        let chap = format!("CHAP_C=0x{}\0", "ab".repeat(1000));
        assert!(parse(chap.as_bytes()).is_ok());
        let chap_too_long = format!("CHAP_C={}\0", "a".repeat(8193));
        assert!(matches!(
            parse(chap_too_long.as_bytes()),
            Err(TextError::ValueTooLong {
                max_bytes: 8192,
                ..
            })
        ));
    }

    #[test]
    fn detects_duplicate_keys() {
        assert_eq!(
            parse(b"A=1\0B=2\0A=3\0"),
            Err(TextError::DuplicateKey { offset_bytes: 8 })
        );
        // Keys are case sensitive.
        assert!(parse(b"A=1\0a=1\0").is_ok());
    }

    #[test]
    fn numbers_booleans_and_lists() {
        assert_eq!(parse_number("8192"), Ok(8192));
        assert_eq!(parse_number("0x2000"), Ok(8192));
        assert_eq!(parse_number("0X2000"), Ok(8192));
        assert_eq!(parse_number("0bIAA="), Ok(0x2000));
        assert_eq!(parse_number("0bAQ=="), Ok(1));
        assert_eq!(parse_number(""), Err(ValueError::NotANumber));
        assert_eq!(parse_number("12a"), Err(ValueError::NotANumber));
        assert_eq!(parse_number("-1"), Err(ValueError::NotANumber));
        assert_eq!(
            parse_number("18446744073709551616"),
            Err(ValueError::NumberTooLarge)
        );
        assert_eq!(parse_number("18446744073709551615"), Ok(u64::MAX));
        assert_eq!(parse_bool("Yes"), Ok(true));
        assert_eq!(parse_bool("No"), Ok(false));
        assert_eq!(parse_bool("yes"), Err(ValueError::NotABoolean));
        assert_eq!(
            list_items("CRC32C,None").collect::<Vec<_>>(),
            vec!["CRC32C", "None"]
        );
    }

    #[test]
    fn push_pair_round_trips() {
        let mut out = Vec::new();
        push_pair(&mut out, "TargetName", "iqn.2024-01.org.lunar:t1");
        push_pair(&mut out, "TargetAddress", "10.0.0.1:3260,1");
        assert_eq!(out.last(), Some(&0));
        let got = parse(&out).expect("valid");
        assert_eq!(got[1].value, "10.0.0.1:3260,1");
    }

    #[test]
    fn binary_values_in_hex_and_base64() {
        assert_eq!(parse_binary("0x00ff10", 16), Ok(vec![0x00, 0xff, 0x10]));
        assert_eq!(parse_binary("0XABC", 16), Ok(vec![0x0a, 0xbc]));
        assert_eq!(parse_binary("0bAP8Q", 16), Ok(vec![0x00, 0xff, 0x10]));
        assert_eq!(parse_binary("0BAQ==", 16), Ok(vec![1]));
        assert_eq!(parse_binary("0bAQI=", 16), Ok(vec![1, 2]));
        assert_eq!(parse_binary("0x", 16), Err(ValueError::NotABinaryValue));
        assert_eq!(parse_binary("0xzz", 16), Err(ValueError::NotABinaryValue));
        assert_eq!(parse_binary("1234", 16), Err(ValueError::NotABinaryValue));
        assert_eq!(parse_binary("0bAQ=", 16), Err(ValueError::NotABinaryValue));
        assert_eq!(
            parse_binary("0x010203", 2),
            Err(ValueError::BinaryValueTooLong { max_bytes: 2 })
        );
        assert_eq!(
            parse_binary("0bAQID", 2),
            Err(ValueError::BinaryValueTooLong { max_bytes: 2 })
        );
        assert_eq!(format_hex(&[0x00, 0xab, 0x7f]), "0x00ab7f");
        assert_eq!(format_hex(&[]), "0x");
    }

    proptest! {
        #[test]
        fn binary_values_round_trip(bytes in proptest::collection::vec(any::<u8>(), 1..64)) {
            prop_assert_eq!(parse_binary(&format_hex(&bytes), 64), Ok(bytes.clone()));
            let upper = format!("0X{}", &format_hex(&bytes)[2..].to_ascii_uppercase());
            prop_assert_eq!(parse_binary(&upper, 64), Ok(bytes));
        }

        #[test]
        fn arbitrary_binary_values_never_panic(value in ".{0,80}", max in 0usize..40) {
            if let Ok(bytes) = parse_binary(&value, max) {
                prop_assert!(bytes.len() <= max);
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            if let Ok(pairs) = parse(&data) {
                for kv in pairs {
                    prop_assert!(!kv.key.is_empty() && kv.key.len() <= MAX_KEY_LEN_BYTES);
                    prop_assert!(kv.value.len() <= max_value_len_bytes(kv.key));
                }
            }
        }

        #[test]
        fn arbitrary_values_never_panic(value in ".{0,40}") {
            let _ = parse_number(&value);
            let _ = parse_bool(&value);
        }

        #[test]
        fn decimal_and_hex_round_trip(n in any::<u64>()) {
            prop_assert_eq!(parse_number(&n.to_string()), Ok(n));
            prop_assert_eq!(parse_number(&format!("0x{n:x}")), Ok(n));
        }
    }
}
