//! The 8-byte SAM LUN field of iSCSI PDUs: peripheral device addressing (LUN < 256) and flat
//! space addressing (LUN < 16384), SAM-5 §4.7.

/// Largest LUN flat space addressing can express, plus one.
pub const FLAT_LUN_LIMIT: u64 = 1 << 14;

/// Decodes a single-level LUN field. Peripheral (bus 0) and flat space addressing give the LUN
/// number; any other form (other address methods, non-zero bus, second-level LUNs) is returned
/// as the raw big-endian 64-bit value, which is always at least [`FLAT_LUN_LIMIT`] and so never
/// matches a configured LUN.
pub fn decode(field: [u8; 8]) -> u64 {
    let raw = u64::from_be_bytes(field);
    let [b0, b1, rest @ ..] = field;
    if rest.iter().any(|&b| b != 0) {
        return raw;
    }
    match b0 >> 6 {
        // Peripheral device addressing; bus identifier in the low six bits must be 0.
        0b00 if b0 & 0x3f == 0 => u64::from(b1),
        // Flat space addressing.
        0b01 => (u64::from(b0 & 0x3f) << 8) | u64::from(b1),
        _ => raw,
    }
}

/// Encodes a LUN number: peripheral addressing below 256, flat space addressing below 16384.
/// Returns `None` for larger numbers.
pub fn encode(lun: u64) -> Option<[u8; 8]> {
    let mut field = [0u8; 8];
    if lun < 256 {
        field[1] = lun as u8;
    } else if lun < FLAT_LUN_LIMIT {
        field[0] = 0x40 | (lun >> 8) as u8;
        field[1] = lun as u8;
    } else {
        return None;
    }
    Some(field)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn decodes_peripheral_and_flat() {
        assert_eq!(decode([0, 5, 0, 0, 0, 0, 0, 0]), 5);
        assert_eq!(decode([0x40, 5, 0, 0, 0, 0, 0, 0]), 5);
        assert_eq!(decode([0x7f, 0xff, 0, 0, 0, 0, 0, 0]), 16383);
    }

    #[test]
    fn other_forms_never_look_like_a_small_lun() {
        for field in [
            [0x01, 5, 0, 0, 0, 0, 0, 0],
            [0x80, 5, 0, 0, 0, 0, 0, 0],
            [0xc0, 5, 0, 0, 0, 0, 0, 0],
            [0x00, 5, 0, 1, 0, 0, 0, 0],
        ] {
            assert!(decode(field) >= FLAT_LUN_LIMIT, "{field:?}");
        }
    }

    #[test]
    fn encode_round_trips() {
        for lun in [0, 1, 255, 256, 1000, 16383] {
            assert_eq!(encode(lun).map(decode), Some(lun));
        }
        assert_eq!(encode(16384), None);
        assert_eq!(encode(300), Some([0x41, 0x2c, 0, 0, 0, 0, 0, 0]));
    }

    proptest! {
        #[test]
        fn decode_never_panics_and_is_total(field in any::<[u8; 8]>()) {
            let lun = decode(field);
            if lun < FLAT_LUN_LIMIT {
                prop_assert_eq!(encode(lun).map(decode), Some(lun));
            }
        }
    }
}
