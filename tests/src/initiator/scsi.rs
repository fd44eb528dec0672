//! The few SCSI commands the test initiator sends (CDB builders) and sense-data decoding.

use std::fmt;

/// SCSI status GOOD.
pub const STATUS_GOOD: u8 = 0x00;
/// SCSI status CHECK CONDITION.
pub const STATUS_CHECK_CONDITION: u8 = 0x02;
/// Sense key UNIT ATTENTION.
pub const SENSE_KEY_UNIT_ATTENTION: u8 = 0x06;

/// The key, additional sense code and qualifier of sense data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sense {
    /// Sense key.
    pub key: u8,
    /// Additional sense code.
    pub asc: u8,
    /// Additional sense code qualifier.
    pub ascq: u8,
}

impl fmt::Display for Sense {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "key {:#04x} asc/ascq {:#04x}/{:#04x}",
            self.key, self.asc, self.ascq
        )
    }
}

/// Decodes fixed (0x70/0x71) or descriptor (0x72/0x73) format sense data.
pub fn decode_sense(bytes: &[u8]) -> Option<Sense> {
    let response_code = bytes.first()? & 0x7f;
    match response_code {
        0x70 | 0x71 => Some(Sense {
            key: bytes.get(2)? & 0x0f,
            asc: *bytes.get(12).unwrap_or(&0),
            ascq: *bytes.get(13).unwrap_or(&0),
        }),
        0x72 | 0x73 => Some(Sense {
            key: bytes.get(1)? & 0x0f,
            asc: *bytes.get(2)?,
            ascq: *bytes.get(3)?,
        }),
        _ => None,
    }
}

/// TEST UNIT READY.
pub fn test_unit_ready() -> [u8; 6] {
    [0; 6]
}

/// INQUIRY of VPD page `page`, allocation length `alloc_len`.
pub fn inquiry_vpd(page: u8, alloc_len: u16) -> [u8; 6] {
    let len = alloc_len.to_be_bytes();
    [0x12, 0x01, page, len[0], len[1], 0]
}

/// The Block Limits VPD page.
pub const VPD_BLOCK_LIMITS: u8 = 0xb0;

/// MAXIMUM TRANSFER LENGTH (blocks) from Block Limits VPD data; `None` if absent or 0 (no limit).
pub fn decode_max_transfer_blocks(data: &[u8]) -> Option<u32> {
    if data.get(1) != Some(&VPD_BLOCK_LIMITS) {
        return None;
    }
    let blocks = u32::from_be_bytes(data.get(8..12)?.try_into().ok()?);
    (blocks > 0).then_some(blocks)
}

/// READ CAPACITY (16), allocation length 32.
pub fn read_capacity16() -> [u8; 16] {
    let mut cdb = [0u8; 16];
    cdb[0] = 0x9e;
    cdb[1] = 0x10;
    cdb[10..14].copy_from_slice(&32u32.to_be_bytes());
    cdb
}

/// READ (16).
pub fn read16(lba: u64, blocks: u32) -> [u8; 16] {
    rw16(0x88, lba, blocks, false)
}

/// WRITE (16), with FUA if asked.
pub fn write16(lba: u64, blocks: u32, fua: bool) -> [u8; 16] {
    rw16(0x8a, lba, blocks, fua)
}

/// SYNCHRONIZE CACHE (10) of the whole medium.
pub fn synchronize_cache10() -> [u8; 10] {
    let mut cdb = [0u8; 10];
    cdb[0] = 0x35;
    cdb
}

fn rw16(opcode: u8, lba: u64, blocks: u32, fua: bool) -> [u8; 16] {
    let mut cdb = [0u8; 16];
    cdb[0] = opcode;
    if fua {
        cdb[1] = 0x08;
    }
    cdb[2..10].copy_from_slice(&lba.to_be_bytes());
    cdb[10..14].copy_from_slice(&blocks.to_be_bytes());
    cdb
}

/// Decodes READ CAPACITY (16) data: (number of blocks, block length in bytes).
pub fn decode_read_capacity16(data: &[u8]) -> Option<(u64, u32)> {
    let last_lba = u64::from_be_bytes(data.get(0..8)?.try_into().ok()?);
    let block_len = u32::from_be_bytes(data.get(8..12)?.try_into().ok()?);
    Some((last_lba.checked_add(1)?, block_len))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn decodes_fixed_and_descriptor_sense() {
        let mut fixed = [0u8; 18];
        fixed[0] = 0x70;
        fixed[2] = 0x05;
        fixed[12] = 0x21;
        assert_eq!(
            decode_sense(&fixed),
            Some(Sense {
                key: 5,
                asc: 0x21,
                ascq: 0
            })
        );
        assert_eq!(
            decode_sense(&[0x72, 0x06, 0x29, 0x01]),
            Some(Sense {
                key: 6,
                asc: 0x29,
                ascq: 1
            })
        );
        assert_eq!(decode_sense(&[]), None);
        assert_eq!(decode_sense(&[0x10, 1, 2, 3]), None);
    }

    #[test]
    fn builds_rw_cdbs() {
        let cdb = write16(0x0102_0304_0506_0708, 9, true);
        assert_eq!(cdb[0], 0x8a);
        assert_eq!(cdb[1], 0x08);
        assert_eq!(&cdb[2..10], &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(&cdb[10..14], &[0, 0, 0, 9]);
        assert_eq!(read16(1, 1)[0], 0x88);
    }

    #[test]
    fn decodes_capacity() {
        let mut data = [0u8; 32];
        data[7] = 0xff;
        data[10] = 0x02;
        assert_eq!(decode_read_capacity16(&data), Some((256, 512)));
        assert_eq!(decode_read_capacity16(&data[..11]), None);
        assert_eq!(decode_read_capacity16(&[0xff; 12]), None);
    }

    #[test]
    fn decodes_the_maximum_transfer_length() {
        let mut page = [0u8; 64];
        page[1] = VPD_BLOCK_LIMITS;
        assert_eq!(decode_max_transfer_blocks(&page), None);
        page[8..12].copy_from_slice(&2048u32.to_be_bytes());
        assert_eq!(decode_max_transfer_blocks(&page), Some(2048));
        page[1] = 0x83;
        assert_eq!(decode_max_transfer_blocks(&page), None);
        assert_eq!(inquiry_vpd(0xb0, 64), [0x12, 0x01, 0xb0, 0, 64, 0]);
    }

    proptest! {
        #[test]
        fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode_max_transfer_blocks(&bytes);
            let _ = decode_sense(&bytes);
            let _ = decode_read_capacity16(&bytes);
        }
    }
}
