//! Byte sizes on the command line (`4096`, `512K`, `1G`, `1GiB`: binary units) and in tables.

const UNITS: [(&str, u32); 5] = [("K", 10), ("M", 20), ("G", 30), ("T", 40), ("P", 50)];

/// Parse a size: a number of bytes, optionally followed by K, M, G, T or P (powers of 1024),
/// optionally followed by `iB`; a plain `B` suffix means bytes.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let digits_end = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (digits, suffix) = trimmed.split_at(digits_end);
    if digits.is_empty() {
        return Err(format!(
            "'{text}' is not a size: use bytes or a number with K, M, G, T or P (e.g. 4096, 512M, 1G)"
        ));
    }
    let number: u64 = digits
        .parse()
        .map_err(|_| format!("'{text}' is too large"))?;
    let shift = match suffix {
        "" | "B" | "b" => 0,
        _ => {
            let upper = suffix.to_ascii_uppercase();
            let mut chars = upper.chars();
            let letter = chars.next().map(String::from).unwrap_or_default();
            let rest = chars.as_str();
            let shift = UNITS
                .iter()
                .find(|(unit, _)| *unit == letter)
                .map(|(_, shift)| *shift)
                .ok_or_else(|| {
                    format!("'{text}': unknown unit '{suffix}' (use K, M, G, T or P)")
                })?;
            match rest {
                "" | "IB" => shift,
                "B" => {
                    return Err(format!(
                        "'{text}': units are binary; write {digits}{letter} or {digits}{letter}iB"
                    ))
                }
                _ => {
                    return Err(format!(
                        "'{text}': unknown unit '{suffix}' (use K, M, G, T or P)"
                    ))
                }
            }
        }
    };
    number
        .checked_mul(1u64 << shift)
        .ok_or_else(|| format!("'{text}' is too large"))
}

/// A size for people: `512 B`, `4 KiB`, `1.5 GiB`.
pub fn format_size(bytes: u64) -> String {
    let Some(&(unit, shift)) = UNITS.iter().rev().find(|(_, shift)| bytes >> shift > 0) else {
        return format!("{bytes} B");
    };
    let scale = 1u64 << shift;
    if bytes.is_multiple_of(scale) {
        format!("{} {unit}iB", bytes / scale)
    } else {
        format!("{:.1} {unit}iB", bytes as f64 / scale as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_binary_units() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("512B"), Ok(512));
        assert_eq!(parse_size("4k"), Ok(4096));
        assert_eq!(parse_size("512M"), Ok(512 << 20));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("2t"), Ok(2 << 40));
        assert_eq!(parse_size("1P"), Ok(1 << 50));
    }

    #[test]
    fn refuses_ambiguous_or_bad_sizes() {
        assert!(parse_size("1GB").expect_err("GB").contains("binary"));
        assert!(parse_size("1.5G").is_err());
        assert!(parse_size("G").is_err());
        assert!(parse_size("").is_err());
        assert!(parse_size("-1").is_err());
        assert!(parse_size("1X").is_err());
        assert!(parse_size("16384P")
            .expect_err("overflow")
            .contains("too large"));
        assert!(parse_size("99999999999999999999").is_err());
    }

    #[test]
    fn formats_for_people() {
        assert_eq!(format_size(0), "0 B");
        assert_eq!(format_size(512), "512 B");
        assert_eq!(format_size(4096), "4 KiB");
        assert_eq!(format_size(1 << 30), "1 GiB");
        assert_eq!(format_size(3 << 29), "1.5 GiB");
        assert_eq!(format_size(u64::MAX), "16384.0 PiB");
    }

    proptest! {
        #[test]
        fn parse_never_panics(text in ".{0,12}") {
            let _ = parse_size(&text);
        }

        #[test]
        fn formatted_exact_sizes_parse_back(n in 0u64..1024, unit in 0usize..5) {
            let bytes = n << UNITS[unit].1;
            let shown = format_size(bytes).replace(' ', "");
            prop_assert_eq!(parse_size(&shown), Ok(bytes));
        }
    }
}
