//! iSCSI text keys (`key=value`, NUL-terminated) as carried by Login and Text PDUs.

/// Encodes `key=value\0` pairs.
pub fn encode_keys(pairs: &[(&str, &str)]) -> Vec<u8> {
    let mut bytes = Vec::new();
    for (key, value) in pairs {
        bytes.extend_from_slice(key.as_bytes());
        bytes.push(b'=');
        bytes.extend_from_slice(value.as_bytes());
        bytes.push(0);
    }
    bytes
}

/// Decodes `key=value\0` pairs; empty entries and entries without `=` are dropped.
pub fn decode_keys(bytes: &[u8]) -> Vec<(String, String)> {
    bytes
        .split(|byte| *byte == 0)
        .filter_map(|entry| {
            let text = String::from_utf8_lossy(entry);
            let (key, value) = text.split_once('=')?;
            (!key.is_empty()).then(|| (key.to_string(), value.to_string()))
        })
        .collect()
}

/// The value of `key` in decoded pairs (the last one wins).
pub fn key_value<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .rev()
        .find(|(name, _)| name == key)
        .map(|(_, value)| value.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trips_pairs() {
        let bytes = encode_keys(&[("InitiatorName", "iqn.x:y"), ("MaxBurstLength", "262144")]);
        assert_eq!(bytes, b"InitiatorName=iqn.x:y\0MaxBurstLength=262144\0");
        let pairs = decode_keys(&bytes);
        assert_eq!(key_value(&pairs, "MaxBurstLength"), Some("262144"));
        assert_eq!(key_value(&pairs, "Missing"), None);
    }

    #[test]
    fn tolerates_padding_and_junk() {
        let pairs = decode_keys(b"A=1\0\0junk\0=x\0B=a=b\0\0\0");
        assert_eq!(
            pairs,
            vec![("A".into(), "1".into()), ("B".into(), "a=b".into())]
        );
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            for (key, _) in decode_keys(&bytes) {
                prop_assert!(!key.is_empty());
            }
        }

        #[test]
        fn round_trips_printable_pairs(pairs in proptest::collection::vec(("[A-Za-z]{1,12}", "[ -~&&[^=]]{0,20}"), 0..8)) {
            let borrowed: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let decoded = decode_keys(&encode_keys(&borrowed));
            prop_assert_eq!(decoded, pairs);
        }
    }
}
