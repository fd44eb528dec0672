//! LUN field encoding (SAM-5 4.7): the 8-byte LUN of iSCSI PDUs and REPORT LUNS data, for
//! single-level peripheral (00b) and flat space (01b) addressing.

/// Largest LUN number single-level flat space addressing can carry.
pub const FLAT_SPACE_LUN_MAX: u64 = 0x3fff;
const PERIPHERAL_LUN_MAX: u64 = 0xff;
const ADDRESS_METHOD_FLAT_SPACE: u8 = 0x40;

/// Encode a LUN number as an 8-byte LUN field: peripheral device addressing for 0..=255,
/// flat space addressing for 256..=16383. Larger values are taken to already be a complete
/// 8-byte LUN structure (for example a hierarchical or extended LUN) and are passed through
/// big-endian. `decode_lun(encode_lun(n)) == n` for every `n <= FLAT_SPACE_LUN_MAX`.
pub fn encode_lun(lun: u64) -> [u8; 8] {
    if lun <= PERIPHERAL_LUN_MAX {
        [0, lun as u8, 0, 0, 0, 0, 0, 0]
    } else if lun <= FLAT_SPACE_LUN_MAX {
        [
            ADDRESS_METHOD_FLAT_SPACE | (lun >> 8) as u8,
            lun as u8,
            0,
            0,
            0,
            0,
            0,
            0,
        ]
    } else {
        lun.to_be_bytes()
    }
}

/// Decode an 8-byte LUN field. Single-level peripheral and flat space LUNs in their canonical
/// form give their LUN number (0..=16383); anything else is returned as the big-endian value
/// of the whole field, and [`encode_lun`] gives back the same bytes whenever that value is
/// above `FLAT_SPACE_LUN_MAX`.
pub fn decode_lun(field: [u8; 8]) -> u64 {
    let single_level = field[2..].iter().all(|b| *b == 0);
    match field[0] >> 6 {
        0b00 if single_level && field[0] == 0 => u64::from(field[1]),
        0b01 if single_level => {
            let lun = u64::from(field[0] & 0x3f) << 8 | u64::from(field[1]);
            if lun > PERIPHERAL_LUN_MAX {
                lun
            } else {
                u64::from_be_bytes(field)
            }
        }
        _ => u64::from_be_bytes(field),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_encodings() {
        assert_eq!(encode_lun(0), [0; 8]);
        assert_eq!(encode_lun(5), [0, 5, 0, 0, 0, 0, 0, 0]);
        assert_eq!(encode_lun(256), [0x41, 0x00, 0, 0, 0, 0, 0, 0]);
        assert_eq!(encode_lun(0x3fff), [0x7f, 0xff, 0, 0, 0, 0, 0, 0]);
        assert_eq!(decode_lun([0, 7, 0, 0, 0, 0, 0, 0]), 7);
        assert_eq!(
            decode_lun([0x40, 0x07, 0, 0, 0, 0, 0, 0]),
            0x4007_0000_0000_0000
        );
        assert_eq!(decode_lun([0x41, 0x07, 0, 0, 0, 0, 0, 0]), 0x107);
    }

    proptest! {
        #[test]
        fn numbers_round_trip(lun in 0..=FLAT_SPACE_LUN_MAX) {
            prop_assert_eq!(decode_lun(encode_lun(lun)), lun);
        }

        #[test]
        fn decoding_is_stable(field in any::<[u8; 8]>()) {
            let lun = decode_lun(field);
            prop_assert_eq!(decode_lun(encode_lun(lun)), lun);
            if lun > FLAT_SPACE_LUN_MAX {
                prop_assert_eq!(encode_lun(lun), field);
            }
        }
    }
}
