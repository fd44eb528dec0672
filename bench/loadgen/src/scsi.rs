//! The SCSI side of the load generator: the few CDBs it sends (READ (16), WRITE (16), TEST UNIT
//! READY, READ CAPACITY (16)), the READ CAPACITY (16) parameter data it reads back, and the sense
//! key of a CHECK CONDITION.

/// Length of the CDB field of a SCSI Command PDU.
pub const CDB_LEN_BYTES: usize = 16;
/// Bytes of READ CAPACITY (16) parameter data asked for.
pub const READ_CAPACITY_16_LEN_BYTES: u32 = 32;

pub const STATUS_GOOD: u8 = 0x00;
pub const STATUS_CHECK_CONDITION: u8 = 0x02;
pub const SENSE_KEY_UNIT_ATTENTION: u8 = 0x06;

const OPCODE_READ_16: u8 = 0x88;
const OPCODE_WRITE_16: u8 = 0x8a;
const OPCODE_SERVICE_ACTION_IN_16: u8 = 0x9e;
const SERVICE_ACTION_READ_CAPACITY_16: u8 = 0x10;

/// A CDB in the 16-byte field of the SCSI Command PDU.
pub type Cdb = [u8; CDB_LEN_BYTES];

fn read_write_16(opcode: u8, lba: u64, blocks: u32) -> Cdb {
    let mut cdb = [0u8; CDB_LEN_BYTES];
    cdb[0] = opcode;
    cdb[2..10].copy_from_slice(&lba.to_be_bytes());
    cdb[10..14].copy_from_slice(&blocks.to_be_bytes());
    cdb
}

pub fn read_16(lba: u64, blocks: u32) -> Cdb {
    read_write_16(OPCODE_READ_16, lba, blocks)
}

pub fn write_16(lba: u64, blocks: u32) -> Cdb {
    read_write_16(OPCODE_WRITE_16, lba, blocks)
}

/// TEST UNIT READY: all zeros.
pub fn test_unit_ready() -> Cdb {
    [0u8; CDB_LEN_BYTES]
}

pub fn read_capacity_16() -> Cdb {
    let mut cdb = [0u8; CDB_LEN_BYTES];
    cdb[0] = OPCODE_SERVICE_ACTION_IN_16;
    cdb[1] = SERVICE_ACTION_READ_CAPACITY_16;
    cdb[10..14].copy_from_slice(&READ_CAPACITY_16_LEN_BYTES.to_be_bytes());
    cdb
}

/// What READ CAPACITY (16) says about a logical unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capacity {
    pub block_len_bytes: u32,
    pub block_count: u64,
}

impl Capacity {
    /// Parses READ CAPACITY (16) parameter data; `None` when it is too short or describes an
    /// impossible unit (zero block length, block count past 2^64).
    pub fn parse(data: &[u8]) -> Option<Capacity> {
        let last_lba = u64::from_be_bytes(data.get(0..8)?.try_into().ok()?);
        let block_len_bytes = u32::from_be_bytes(data.get(8..12)?.try_into().ok()?);
        let block_count = last_lba.checked_add(1)?;
        (block_len_bytes > 0).then_some(Capacity {
            block_len_bytes,
            block_count,
        })
    }

    pub fn size_bytes(&self) -> u64 {
        self.block_count
            .saturating_mul(u64::from(self.block_len_bytes))
    }
}

/// The sense key of fixed (70h/71h) or descriptor (72h/73h) format sense data.
pub fn sense_key(sense: &[u8]) -> Option<u8> {
    match sense.first()? & 0x7f {
        0x70 | 0x71 => sense.get(2).map(|b| b & 0x0f),
        0x72 | 0x73 => sense.get(1).map(|b| b & 0x0f),
        _ => None,
    }
}

/// The sense data of a SCSI Response data segment (a 2-byte SenseLength, then the sense).
pub fn sense_from_response_data(data: &[u8]) -> &[u8] {
    let Some(len_field) = data.get(0..2) else {
        return &[];
    };
    let len = usize::from(u16::from_be_bytes([len_field[0], len_field[1]]));
    data.get(2..)
        .map_or(&[], |rest| &rest[..len.min(rest.len())])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn read_and_write_16_carry_lba_and_length() {
        let cdb = read_16(0x0102_0304_0506_0708, 0x0a0b_0c0d);
        assert_eq!(cdb[0], 0x88);
        assert_eq!(&cdb[2..10], &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(&cdb[10..14], &[0x0a, 0x0b, 0x0c, 0x0d]);
        assert_eq!(write_16(7, 8)[0], 0x8a);
        assert_eq!(
            &write_16(7, 8)[2..14],
            &[0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 8]
        );
    }

    #[test]
    fn read_capacity_16_asks_for_32_bytes() {
        let cdb = read_capacity_16();
        assert_eq!(&cdb[..2], &[0x9e, 0x10]);
        assert_eq!(&cdb[10..14], &[0, 0, 0, 32]);
    }

    #[test]
    fn capacity_parses_last_lba_and_block_length() {
        let mut data = [0u8; 32];
        data[0..8].copy_from_slice(&2047u64.to_be_bytes());
        data[8..12].copy_from_slice(&512u32.to_be_bytes());
        let capacity = Capacity::parse(&data).expect("valid");
        assert_eq!(capacity.block_count, 2048);
        assert_eq!(capacity.size_bytes(), 1 << 20);
        assert_eq!(Capacity::parse(&data[..11]), None);
        data[8..12].copy_from_slice(&0u32.to_be_bytes());
        assert_eq!(Capacity::parse(&data), None);
        data[0..8].copy_from_slice(&u64::MAX.to_be_bytes());
        data[8..12].copy_from_slice(&512u32.to_be_bytes());
        assert_eq!(Capacity::parse(&data), None);
    }

    #[test]
    fn sense_key_in_both_formats() {
        assert_eq!(sense_key(&[0x70, 0, 0x06, 0, 0]), Some(6));
        assert_eq!(sense_key(&[0xf0, 0, 0x25]), Some(5));
        assert_eq!(sense_key(&[0x72, 0x05, 0x24]), Some(5));
        assert_eq!(sense_key(&[0x7f, 1, 2]), None);
        assert_eq!(sense_key(&[]), None);
    }

    #[test]
    fn sense_is_cut_to_its_length_field() {
        assert_eq!(
            sense_from_response_data(&[0, 3, 0x70, 0, 6, 9, 9]),
            &[0x70, 0, 6]
        );
        assert_eq!(sense_from_response_data(&[0, 9, 0x70]), &[0x70]);
        assert_eq!(sense_from_response_data(&[0]), &[] as &[u8]);
    }

    proptest! {
        #[test]
        fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = Capacity::parse(&bytes);
            let _ = sense_key(&bytes);
            let sense = sense_from_response_data(&bytes);
            prop_assert!(sense.len() + 2 <= bytes.len().max(2));
        }
    }
}
