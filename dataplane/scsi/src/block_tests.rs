//! Tests of READ / WRITE / VERIFY / WRITE AND VERIFY / SYNCHRONIZE CACHE decisions, fed as
//! CDB bytes through `decide`.

use lunar_wire::scsi::{opcode, Asc, SenseKey};

use crate::model::{decide, BlockIo, BlockOp, LogicalUnit};
use crate::test_support::*;

const BS: u32 = BLOCK_SIZE;

fn expect_io(lu: &LogicalUnit, cdb: &[u8], expected: u32, io: BlockIo) {
    assert_eq!(io_of(run(lu, cdb, expected)), io, "cdb {cdb:02x?}");
}

fn expect_sense(lu: &LogicalUnit, cdb: &[u8], expected: u32, key: SenseKey, asc: Asc) {
    let sense = sense_of(run(lu, cdb, expected));
    assert_eq!((sense.key, sense.asc), (key, asc), "cdb {cdb:02x?}");
}

fn expect_oob(cdb: &[u8], expected: u32) {
    expect_sense(
        &lu(),
        cdb,
        expected,
        SenseKey::IllegalRequest,
        Asc::LBA_OUT_OF_RANGE,
    );
}

fn read_io(lba: u64, blocks: u32, transfer_len_bytes: u32) -> BlockIo {
    BlockIo {
        op: BlockOp::Read,
        lba,
        blocks,
        fua: false,
        transfer_len_bytes,
    }
}

fn write_io(lba: u64, blocks: u32, fua: bool, transfer_len_bytes: u32) -> BlockIo {
    BlockIo {
        op: BlockOp::Write,
        lba,
        blocks,
        fua,
        transfer_len_bytes,
    }
}

#[test]
fn reads_of_every_size() {
    let lu = lu();
    expect_io(
        &lu,
        &cdb6(opcode::READ_6, 7, 3),
        3 * BS,
        read_io(7, 3, 3 * BS),
    );
    expect_io(
        &lu,
        &cdb10(opcode::READ_10, 0, 9, 4),
        4 * BS,
        read_io(9, 4, 4 * BS),
    );
    expect_io(
        &lu,
        &cdb12(opcode::READ_12, 0, 9, 4),
        4 * BS,
        read_io(9, 4, 4 * BS),
    );
    expect_io(
        &lu,
        &cdb16(opcode::READ_16, 0, 999, 1),
        BS,
        read_io(999, 1, BS),
    );
    // DPO and FUA are accepted (the caching page reports DPOFUA).
    expect_io(
        &lu,
        &cdb10(opcode::READ_10, 0x18, 0, 1),
        BS,
        read_io(0, 1, BS),
    );
}

#[test]
fn read6_zero_means_256_blocks() {
    let lu = lu();
    expect_io(
        &lu,
        &cdb6(opcode::READ_6, 0, 0),
        256 * BS,
        read_io(0, 256, 256 * BS),
    );
}

#[test]
fn reads_at_the_end_and_beyond() {
    let lu = lu();
    for blocks in [1u16, 2, 255] {
        let lba = NUM_BLOCKS as u32 - u32::from(blocks);
        let transfer = u32::from(blocks) * BS;
        expect_io(
            &lu,
            &cdb10(opcode::READ_10, 0, lba, blocks),
            transfer,
            read_io(u64::from(lba), u32::from(blocks), transfer),
        );
        expect_oob(&cdb10(opcode::READ_10, 0, lba + 1, blocks), transfer);
        expect_oob(&cdb10(opcode::READ_10, 0, 0x8000_0000, blocks), transfer);
        expect_oob(&cdb10(opcode::READ_10, 0, u32::MAX, blocks), transfer);
    }
    expect_oob(&cdb10(opcode::READ_10, 0, NUM_BLOCKS as u32 - 1, 2), 2 * BS);
    expect_oob(&cdb16(opcode::READ_16, 0, u64::MAX, 1), BS);
    expect_oob(&cdb6(opcode::READ_6, 0x1f_ffff, 1), BS);
}

#[test]
fn zero_block_transfers_answer_good_without_io() {
    for cdb in [
        cdb10(opcode::READ_10, 0, 0, 0).to_vec(),
        cdb16(opcode::READ_16, 0, 5, 0).to_vec(),
        cdb10(opcode::WRITE_10, 0, 0, 0).to_vec(),
        cdb12(opcode::WRITE_12, 0, 0, 0).to_vec(),
        cdb10(opcode::VERIFY_10, 0x02, 0, 0).to_vec(),
        cdb10(opcode::WRITE_AND_VERIFY_10, 0, 0, 0).to_vec(),
    ] {
        let reply = reply_of(run(&lu(), &cdb, BS));
        assert_eq!(reply.status, 0, "cdb {cdb:02x?}");
        assert_eq!(reply.transfer_len_bytes, 0);
    }
    // The LBA is still checked.
    expect_oob(&cdb10(opcode::READ_10, 0, NUM_BLOCKS as u32 + 1, 0), 0);
    expect_oob(&cdb10(opcode::WRITE_10, 0, u32::MAX, 0), 0);
    expect_oob(&cdb10(opcode::VERIFY_10, 0x02, 0x8000_0000, 0), 0);
    expect_oob(
        &cdb10(opcode::WRITE_AND_VERIFY_10, 0, NUM_BLOCKS as u32 + 1, 0),
        0,
    );
}

#[test]
fn protection_fields_are_refused() {
    for protect in 1u8..8 {
        for cdb in [
            cdb10(opcode::READ_10, protect << 5, 0, 1).to_vec(),
            cdb16(opcode::WRITE_16, protect << 5, 0, 1).to_vec(),
            cdb12(opcode::VERIFY_12, (protect << 5) | 0x02, 0, 1).to_vec(),
            cdb10(opcode::WRITE_AND_VERIFY_10, protect << 5, 0, 1).to_vec(),
        ] {
            let sense = sense_of(run(&lu(), &cdb, BS));
            assert_eq!(sense.asc, Asc::INVALID_FIELD_IN_CDB);
            let pointer = sense.field_pointer.expect("field pointer");
            assert_eq!((pointer.byte, pointer.bit), (1, Some(7)));
        }
    }
}

#[test]
fn transfer_length_over_block_limits() {
    let blocks = MAX_TRANSFER_BLOCKS + 1;
    let sense = sense_of(run(
        &lu(),
        &cdb12(opcode::READ_12, 0, 0, blocks),
        blocks * BS,
    ));
    assert_eq!(sense.asc, Asc::INVALID_FIELD_IN_CDB);
    assert_eq!(sense.field_pointer.map(|p| p.byte), Some(6));
    let sense = sense_of(run(
        &lu(),
        &cdb16(opcode::WRITE_16, 0, 0, blocks),
        blocks * BS,
    ));
    assert_eq!(sense.field_pointer.map(|p| p.byte), Some(10));
    let sense = sense_of(run(&lu(), &cdb10(opcode::WRITE_10, 0, 0, blocks as u16), 0));
    assert_eq!(sense.field_pointer.map(|p| p.byte), Some(7));
}

#[test]
fn read_residual_cases() {
    let lu = lu();
    // Expected length shorter than one block: read the block, the transport truncates.
    expect_io(
        &lu,
        &cdb10(opcode::READ_10, 0, 0, 1),
        200,
        read_io(0, 1, BS),
    );
    // Expected length of one block for two: read one.
    expect_io(
        &lu,
        &cdb10(opcode::READ_10, 0, 0, 2),
        BS,
        read_io(0, 1, 2 * BS),
    );
    // Expected length larger than the transfer: read what the CDB asks.
    expect_io(
        &lu,
        &cdb10(opcode::READ_10, 0, 0, 1),
        10_000,
        read_io(0, 1, BS),
    );
    // Nothing expected: GOOD at once, the CDB's length tells the overflow.
    let reply = reply_of(run(&lu, &cdb10(opcode::READ_10, 0, 0, 1), 0));
    assert_eq!((reply.status, reply.transfer_len_bytes), (0, BS));
    assert!(reply.data_in.is_empty());
}

#[test]
fn writes_of_every_size() {
    let lu = lu();
    expect_io(
        &lu,
        &cdb6(opcode::WRITE_6, 3, 2),
        2 * BS,
        write_io(3, 2, false, 2 * BS),
    );
    expect_io(
        &lu,
        &cdb10(opcode::WRITE_10, 0, 3, 2),
        2 * BS,
        write_io(3, 2, false, 2 * BS),
    );
    expect_io(
        &lu,
        &cdb12(opcode::WRITE_12, 0x08, 3, 2),
        2 * BS,
        write_io(3, 2, true, 2 * BS),
    );
    expect_io(
        &lu,
        &cdb16(opcode::WRITE_16, 0x18, 3, 2),
        2 * BS,
        write_io(3, 2, true, 2 * BS),
    );
    // FUA_NV (bit 1) is accepted, with or without FUA.
    for flags in [0x02, 0x0a, 0x1a, 0x10] {
        let io = io_of(run(&lu, &cdb10(opcode::WRITE_10, flags, 0, 1), BS));
        assert_eq!(io.fua, flags & 0x08 != 0);
    }
}

#[test]
fn writes_without_write_cache_are_fua() {
    let lu = LogicalUnit {
        write_cache: false,
        ..lu()
    };
    expect_io(
        &lu,
        &cdb10(opcode::WRITE_10, 0, 0, 1),
        BS,
        write_io(0, 1, true, BS),
    );
}

#[test]
fn read_only_lu_refuses_writes_but_reads() {
    let lu = read_only_lu();
    for cdb in [
        cdb10(opcode::WRITE_10, 0, 0, 1).to_vec(),
        cdb12(opcode::WRITE_12, 0, 0, 1).to_vec(),
        cdb16(opcode::WRITE_16, 0, 0, 1).to_vec(),
        cdb6(opcode::WRITE_6, 0, 1).to_vec(),
        cdb10(opcode::WRITE_AND_VERIFY_10, 0x02, 0, 1).to_vec(),
        cdb12(opcode::WRITE_AND_VERIFY_12, 0x02, 0, 1).to_vec(),
        cdb16(opcode::WRITE_AND_VERIFY_16, 0x02, 0, 1).to_vec(),
    ] {
        expect_sense(&lu, &cdb, BS, SenseKey::DataProtect, Asc::WRITE_PROTECTED);
    }
    expect_io(&lu, &cdb10(opcode::READ_10, 0, 0, 1), BS, read_io(0, 1, BS));
    assert_eq!(
        io_of(run(&lu, &cdb10(opcode::VERIFY_10, 0, 0, 1), 0)).op,
        BlockOp::Verify
    );
}

#[test]
fn write_residual_cases() {
    let lu = lu();
    // Expected length of one block for a two-block write: write only what arrived.
    expect_io(
        &lu,
        &cdb10(opcode::WRITE_10, 0, 0, 2),
        BS,
        write_io(0, 1, false, 2 * BS),
    );
    // Expected length larger than the transfer: write what the CDB asks.
    expect_io(
        &lu,
        &cdb10(opcode::WRITE_10, 0, 0, 1),
        10_000,
        write_io(0, 1, false, BS),
    );
    // Nothing expected: GOOD without I/O, overflow by the CDB's length.
    let reply = reply_of(run(&lu, &cdb10(opcode::WRITE_10, 0, 0, 1), 0));
    assert_eq!((reply.status, reply.transfer_len_bytes), (0, BS));
    // An expected length that ends inside a block.
    expect_sense(
        &lu,
        &cdb10(opcode::WRITE_10, 0, 0, 1),
        200,
        SenseKey::IllegalRequest,
        Asc::INVALID_FIELD_IN_INFORMATION_UNIT,
    );
}

#[test]
fn write_with_short_data_out() {
    let lu = lu();
    let cdb = cdb10(opcode::WRITE_10, 0, 0, 2);
    let data_out = vec![0u8; BS as usize];
    let decision = decide(Some(&lu), &[0], &mut ready_nexus(), &cdb, 2 * BS, &data_out);
    let sense = sense_of(decision);
    assert_eq!(sense.key, SenseKey::AbortedCommand);
    assert_eq!(sense.asc, Asc::WRITE_ERROR_NOT_ENOUGH_UNSOLICITED_DATA);
}

#[test]
fn verify_without_and_with_byte_check() {
    let lu = lu();
    let io = io_of(run(&lu, &cdb10(opcode::VERIFY_10, 0x10, 5, 3), 0));
    assert_eq!(
        io,
        BlockIo {
            op: BlockOp::Verify,
            lba: 5,
            blocks: 3,
            fua: false,
            transfer_len_bytes: 0,
        }
    );
    let io = io_of(run(&lu, &cdb16(opcode::VERIFY_16, 0x02, 5, 3), 3 * BS));
    assert_eq!(
        io,
        BlockIo {
            op: BlockOp::Compare,
            lba: 5,
            blocks: 3,
            fua: false,
            transfer_len_bytes: 3 * BS,
        }
    );
    // Without byte check the length is not bounded by the transfer limit (no data moves).
    let blocks = MAX_TRANSFER_BLOCKS + 10;
    assert_eq!(
        io_of(run(&lu, &cdb12(opcode::VERIFY_12, 0, 0, blocks), 0)).blocks,
        blocks
    );
    let sense = sense_of(run(
        &lu,
        &cdb12(opcode::VERIFY_12, 0x02, 0, blocks),
        blocks * BS,
    ));
    assert_eq!(sense.asc, Asc::INVALID_FIELD_IN_CDB);
    expect_oob(
        &cdb10(opcode::VERIFY_10, 0x02, NUM_BLOCKS as u32 - 1, 2),
        2 * BS,
    );
}

#[test]
fn unsupported_byte_check_values() {
    for bytchk in [2u8, 3] {
        for cdb in [
            cdb10(opcode::VERIFY_10, bytchk << 1, 0, 1).to_vec(),
            cdb16(opcode::WRITE_AND_VERIFY_16, bytchk << 1, 0, 1).to_vec(),
        ] {
            let sense = sense_of(run(&lu(), &cdb, BS));
            assert_eq!(sense.asc, Asc::INVALID_FIELD_IN_CDB);
            assert_eq!(
                sense.field_pointer.map(|p| (p.byte, p.bit)),
                Some((1, Some(2)))
            );
        }
    }
}

#[test]
fn compare_needs_its_data() {
    let lu = lu();
    let cdb = cdb10(opcode::VERIFY_10, 0x02, 0, 2);
    let decision = decide(Some(&lu), &[0], &mut ready_nexus(), &cdb, 2 * BS, &[0; 100]);
    assert_eq!(sense_of(decision).key, SenseKey::AbortedCommand);
    // Expected length covering one block of two: compare one.
    assert_eq!(io_of(run(&lu, &cdb, BS)).blocks, 1);
}

#[test]
fn write_and_verify_is_a_durable_write() {
    let lu = lu();
    for cdb in [
        cdb10(opcode::WRITE_AND_VERIFY_10, 0x00, 4, 2).to_vec(),
        cdb12(opcode::WRITE_AND_VERIFY_12, 0x02, 4, 2).to_vec(),
        cdb16(opcode::WRITE_AND_VERIFY_16, 0x12, 4, 2).to_vec(),
    ] {
        assert_eq!(io_of(run(&lu, &cdb, 2 * BS)), write_io(4, 2, true, 2 * BS));
    }
    expect_oob(
        &cdb10(opcode::WRITE_AND_VERIFY_10, 0x02, NUM_BLOCKS as u32, 1),
        BS,
    );
}

#[test]
fn synchronize_cache() {
    let lu = lu();
    let flush = |lba, blocks| BlockIo {
        op: BlockOp::Flush,
        lba,
        blocks,
        fua: false,
        transfer_len_bytes: 0,
    };
    // IMMED and SYNC_NV are accepted.
    expect_io(
        &lu,
        &cdb10(opcode::SYNCHRONIZE_CACHE_10, 0x06, 0, 0),
        0,
        flush(0, 0),
    );
    expect_io(
        &lu,
        &cdb16(opcode::SYNCHRONIZE_CACHE_16, 0, 10, 5),
        0,
        flush(10, 5),
    );
    expect_oob(
        &cdb10(opcode::SYNCHRONIZE_CACHE_10, 0, NUM_BLOCKS as u32, 0),
        0,
    );
    expect_oob(&cdb16(opcode::SYNCHRONIZE_CACHE_16, 0, 999, 2), 0);
    let reply = reply_of(run(
        &read_only_lu(),
        &cdb10(opcode::SYNCHRONIZE_CACHE_10, 0, 0, 0),
        0,
    ));
    assert_eq!(reply.status, 0);
}

#[test]
fn large_lu_needs_no_special_case() {
    let lu = LogicalUnit {
        num_blocks: 1 << 40,
        ..lu()
    };
    let lba = (1u64 << 40) - 1;
    expect_io(
        &lu,
        &cdb16(opcode::READ_16, 0, lba, 1),
        BS,
        read_io(lba, 1, BS),
    );
    let sense = sense_of(run(&lu, &cdb16(opcode::READ_16, 0, lba, 2), 2 * BS));
    assert_eq!(sense.asc, Asc::LBA_OUT_OF_RANGE);
}

#[test]
fn pre_fetch_checks_the_range_only() {
    let lu = lu();
    for cdb in [
        cdb10(opcode::PRE_FETCH_10, 0x02, 0, 256).to_vec(),
        cdb10(opcode::PRE_FETCH_10, 0, NUM_BLOCKS as u32 - 1, 1).to_vec(),
        cdb16(opcode::PRE_FETCH_16, 0, 0, 0).to_vec(),
    ] {
        let reply = reply_of(run(&lu, &cdb, 0));
        assert_eq!(
            (reply.status, reply.transfer_len_bytes),
            (0, 0),
            "{cdb:02x?}"
        );
    }
    expect_oob(&cdb10(opcode::PRE_FETCH_10, 0, NUM_BLOCKS as u32 - 1, 2), 0);
    expect_oob(&cdb16(opcode::PRE_FETCH_16, 0, u64::MAX, 0), 0);
}

/// What SBC-3 and the transport contract say a READ or WRITE must give.
fn oracle(
    lu: &LogicalUnit,
    write: bool,
    lba: u64,
    blocks: u32,
    expected_len_bytes: u32,
) -> Result<Option<BlockIo>, Asc> {
    let bs = lu.block_size;
    if blocks > lu.max_transfer_blocks {
        return Err(Asc::INVALID_FIELD_IN_CDB);
    }
    if write && lu.read_only {
        return Err(Asc::WRITE_PROTECTED);
    }
    if lba >= lu.num_blocks || lba + u64::from(blocks) > lu.num_blocks {
        return Err(Asc::LBA_OUT_OF_RANGE);
    }
    let cdb_bytes = blocks * bs;
    let io_blocks = if write {
        if expected_len_bytes < cdb_bytes && !expected_len_bytes.is_multiple_of(bs) {
            return Err(Asc::INVALID_FIELD_IN_INFORMATION_UNIT);
        }
        blocks.min(expected_len_bytes / bs)
    } else {
        blocks.min(expected_len_bytes.div_ceil(bs))
    };
    Ok((io_blocks > 0).then_some(BlockIo {
        op: if write { BlockOp::Write } else { BlockOp::Read },
        lba,
        blocks: io_blocks,
        fua: write && !lu.write_cache,
        transfer_len_bytes: cdb_bytes,
    }))
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(1024))]

    #[test]
    fn reads_and_writes_follow_the_oracle(
        write in proptest::bool::ANY,
        size in 0usize..4,
        lba in 0u64..1100,
        blocks in 0u32..300,
        expected in proptest::option::of(0u32..200_000),
        read_only in proptest::bool::ANY,
        write_cache in proptest::bool::ANY,
    ) {
        let lu = LogicalUnit { read_only, write_cache, ..lu() };
        let (read_op, write_op) = [
            (opcode::READ_6, opcode::WRITE_6),
            (opcode::READ_10, opcode::WRITE_10),
            (opcode::READ_12, opcode::WRITE_12),
            (opcode::READ_16, opcode::WRITE_16),
        ][size];
        let op = if write { write_op } else { read_op };
        let (cdb, blocks) = match size {
            // READ/WRITE (6): 21-bit LBA, 0 means 256 blocks.
            0 => (cdb6(op, lba as u32, blocks as u8).to_vec(), if blocks as u8 == 0 { 256 } else { blocks & 0xff }),
            1 => (cdb10(op, 0, lba as u32, blocks as u16).to_vec(), blocks),
            2 => (cdb12(op, 0, lba as u32, blocks).to_vec(), blocks),
            _ => (cdb16(op, 0, lba, blocks).to_vec(), blocks),
        };
        let expected_len_bytes = expected.unwrap_or(blocks * BS);
        let decision = run(&lu, &cdb, expected_len_bytes);
        match oracle(&lu, write, lba, blocks, expected_len_bytes) {
            Ok(Some(io)) => proptest::prop_assert_eq!(io_of(decision), io),
            Ok(None) => {
                let reply = reply_of(decision);
                proptest::prop_assert_eq!(reply.status, 0);
                proptest::prop_assert_eq!(reply.transfer_len_bytes, blocks * BS);
            }
            Err(asc) => proptest::prop_assert_eq!(sense_of(decision).asc, asc),
        }
    }
}
