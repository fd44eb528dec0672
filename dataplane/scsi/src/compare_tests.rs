//! Tests of COMPARE AND WRITE, ORWRITE (16) and WRITE ATOMIC (16), fed as CDBs.

use lunar_wire::scsi::{opcode, status, Asc, SenseKey};

use crate::model::{decide, BlockOp, Decision, LogicalUnit};
use crate::test_support::*;

fn caw(flags: u8, lba: u64, blocks: u8) -> [u8; 16] {
    let mut cdb = cdb16(opcode::COMPARE_AND_WRITE, flags, lba, 0);
    cdb[13] = blocks;
    cdb
}

fn write_atomic(flags: u8, lba: u64, blocks: u16) -> [u8; 16] {
    let mut cdb = cdb16(opcode::WRITE_ATOMIC_16, flags, lba, 0);
    cdb[12..14].copy_from_slice(&blocks.to_be_bytes());
    cdb
}

fn run_len(lu: &LogicalUnit, cdb: &[u8], len: usize) -> Decision {
    let data_out = vec![0x41u8; len];
    decide(
        Some(lu),
        &[0],
        &mut ready_nexus(),
        cdb,
        len as u32,
        &data_out,
    )
}

fn atomic_lu() -> LogicalUnit {
    LogicalUnit {
        max_atomic_transfer_blocks: 16,
        ..lu()
    }
}

#[test]
fn compare_and_write_carries_twice_the_blocks() {
    let bs = BLOCK_SIZE as usize;
    let io = io_of(run_len(&lu(), &caw(0, 7, 3), 6 * bs));
    assert_eq!(
        (io.op, io.lba, io.blocks, io.transfer_len_bytes),
        (BlockOp::CompareAndWrite, 7, 3, 6 * BLOCK_SIZE)
    );
    assert!(!io.fua);
    assert!(io_of(run_len(&lu(), &caw(0x08, 7, 3), 6 * bs)).fua);
    let no_cache = LogicalUnit {
        write_cache: false,
        ..lu()
    };
    assert!(io_of(run_len(&no_cache, &caw(0, 7, 3), 6 * bs)).fua);
    // DPO is accepted.
    io_of(run_len(&lu(), &caw(0x10, 0, 1), 2 * bs));
}

#[test]
fn compare_and_write_refusals() {
    let bs = BLOCK_SIZE as usize;
    // Data-out other than twice the blocks: the NUMBER OF LOGICAL BLOCKS field is wrong.
    for len in [bs, 4 * bs, 2 * bs + 1] {
        let reply = reply_of(run_len(&lu(), &caw(0, 0, 1), len));
        assert_eq!(reply.status, status::CHECK_CONDITION, "{len}");
        assert_eq!(reply.transfer_len_bytes, 2 * BLOCK_SIZE);
        let sense = lunar_wire::scsi::Sense::parse(&reply.sense).unwrap();
        assert_eq!(sense.field_pointer.map(|p| p.byte), Some(13));
    }
    // Zero blocks (256 wrapped into the one-byte field) with data-out.
    let sense = sense_of(run_len(&lu(), &caw(0, 0, 0), 512 * bs));
    assert_eq!(sense.asc, Asc::INVALID_FIELD_IN_CDB);
    // More blocks than MAXIMUM COMPARE AND WRITE LENGTH (the transfer limit here).
    let small = LogicalUnit {
        max_transfer_blocks: 4,
        ..lu()
    };
    let sense = sense_of(run_len(&small, &caw(0, 0, 5), 10 * bs));
    assert_eq!(sense.field_pointer.map(|p| p.byte), Some(13));
    io_of(run_len(&small, &caw(0, 0, 4), 8 * bs));
    for (lba, blocks) in [(999u64, 2u8), (1000, 1), (1 << 63, 1)] {
        let sense = sense_of(run_len(&lu(), &caw(0, lba, blocks), 2 * bs));
        assert_eq!(sense.asc, Asc::LBA_OUT_OF_RANGE);
    }
    let sense = sense_of(run_len(&lu(), &caw(0x20, 0, 1), 2 * bs));
    assert_eq!(sense.asc, Asc::INVALID_FIELD_IN_CDB);
    let sense = sense_of(run_len(&read_only_lu(), &caw(0, 0, 1), 2 * bs));
    assert_eq!(
        (sense.key, sense.asc),
        (SenseKey::DataProtect, Asc::WRITE_PROTECTED)
    );
    // No blocks: nothing to do.
    assert_eq!(
        reply_of(run_len(&lu(), &caw(0, 0, 0), 0)).status,
        status::GOOD
    );
}

#[test]
fn orwrite_is_a_serialized_write() {
    let bs = BLOCK_SIZE as usize;
    let cdb = cdb16(opcode::ORWRITE_16, 0x08, 20, 4);
    let io = io_of(run_len(&lu(), &cdb, 4 * bs));
    assert_eq!(
        (io.op, io.lba, io.blocks, io.fua),
        (BlockOp::OrWrite, 20, 4, true)
    );
    let zero = cdb16(opcode::ORWRITE_16, 0, 0, 0);
    assert_eq!(reply_of(run_len(&lu(), &zero, 0)).status, status::GOOD);
    for lba in [1001u64, 1 << 63, u64::MAX] {
        let cdb = cdb16(opcode::ORWRITE_16, 0, lba, 0);
        assert_eq!(sense_of(run_len(&lu(), &cdb, 0)).asc, Asc::LBA_OUT_OF_RANGE);
    }
    for protect in 1..8u8 {
        let cdb = cdb16(opcode::ORWRITE_16, protect << 5, 0, 1);
        let sense = sense_of(run_len(&lu(), &cdb, bs));
        assert_eq!(sense.asc, Asc::INVALID_FIELD_IN_CDB);
    }
    let sense = sense_of(run_len(&read_only_lu(), &cdb, 4 * bs));
    assert_eq!(sense.asc, Asc::WRITE_PROTECTED);
}

#[test]
fn write_atomic_needs_an_atomic_backend() {
    let bs = BLOCK_SIZE as usize;
    let sense = sense_of(run_len(&lu(), &write_atomic(0, 0, 1), bs));
    assert_eq!(sense.asc, Asc::INVALID_COMMAND_OPERATION_CODE);
    let io = io_of(run_len(&atomic_lu(), &write_atomic(0x18, 8, 16), 16 * bs));
    assert_eq!(
        (io.op, io.lba, io.blocks, io.fua),
        (BlockOp::WriteAtomic, 8, 16, true)
    );
    let sense = sense_of(run_len(&atomic_lu(), &write_atomic(0, 0, 17), 17 * bs));
    assert_eq!(sense.field_pointer.map(|p| p.byte), Some(12));
    // A partial atomic write is refused rather than torn.
    let reply = reply_of(run_len(&atomic_lu(), &write_atomic(0, 0, 4), 2 * bs));
    assert_eq!(reply.status, status::CHECK_CONDITION);
    assert_eq!(reply.transfer_len_bytes, 4 * BLOCK_SIZE);
    assert_eq!(
        reply_of(run_len(&atomic_lu(), &write_atomic(0, 0, 0), 0)).status,
        status::GOOD
    );
    for lba in [1000u64 + 1, 1 << 63, u64::MAX] {
        let sense = sense_of(run_len(&atomic_lu(), &write_atomic(0, lba, 0), 0));
        assert_eq!(sense.asc, Asc::LBA_OUT_OF_RANGE);
        let sense = sense_of(run_len(&atomic_lu(), &write_atomic(0, lba, 1), bs));
        assert_eq!(sense.asc, Asc::LBA_OUT_OF_RANGE);
    }
    for protect in 1..8u8 {
        let sense = sense_of(run_len(&atomic_lu(), &write_atomic(protect << 5, 0, 1), bs));
        assert_eq!(sense.asc, Asc::INVALID_FIELD_IN_CDB);
    }
    let read_only = LogicalUnit {
        read_only: true,
        ..atomic_lu()
    };
    let sense = sense_of(run_len(&read_only, &write_atomic(0, 0, 1), bs));
    assert_eq!(sense.asc, Asc::WRITE_PROTECTED);
}
