//! The write commands that must look atomic to every other command (SBC-3 5.2, 5.8; SBC-4
//! 5.48): COMPARE AND WRITE, ORWRITE (16) and WRITE ATOMIC (16). Each is checked here and
//! turned into a serialized [`BlockOp`] (see the `BlockOp` documentation for what the reactor
//! must guarantee).

use lunar_wire::scsi::{CdbSize, CompareAndWriteCdb, ReadWrite, Sense};

use crate::block::{
    check_range, plan_data_out, Range, DATA_OUT_SHORT, PARTIAL_BLOCK, PROTECT_FIELD,
    WRITE_PROTECTED,
};
use crate::model::{BlockIo, BlockOp, Decision, LogicalUnit};
use crate::reply;

/// The NUMBER OF LOGICAL BLOCKS field of COMPARE AND WRITE is one byte.
const CAW_MAX_BLOCKS: u32 = 255;
/// CDB byte of COMPARE AND WRITE's NUMBER OF LOGICAL BLOCKS.
const CAW_BLOCKS_BYTE: u16 = 13;
/// CDB byte of WRITE ATOMIC (16)'s TRANSFER LENGTH.
const ATOMIC_TRANSFER_LEN_BYTE: u16 = 12;

/// MAXIMUM COMPARE AND WRITE LENGTH of `lu`: the compared blocks fit one transfer.
pub(crate) fn max_compare_and_write_blocks(lu: &LogicalUnit) -> u8 {
    u8::try_from(CAW_MAX_BLOCKS.min(lu.max_transfer_blocks)).unwrap_or(u8::MAX)
}

pub(crate) fn compare_and_write(
    lu: &LogicalUnit,
    caw: &CompareAndWriteCdb,
    expected_len_bytes: u32,
    data_out: &[u8],
) -> Decision {
    plan_compare_and_write(lu, caw, expected_len_bytes, data_out).unwrap_or_else(reply::fail)
}

fn plan_compare_and_write(
    lu: &LogicalUnit,
    caw: &CompareAndWriteCdb,
    expected_len_bytes: u32,
    data_out: &[u8],
) -> Result<Decision, Sense> {
    if caw.protect != 0 {
        return Err(PROTECT_FIELD);
    }
    if lu.read_only {
        return Err(WRITE_PROTECTED);
    }
    if caw.blocks > max_compare_and_write_blocks(lu) {
        return Err(Sense::invalid_field_in_cdb(CAW_BLOCKS_BYTE, None));
    }
    let blocks = u32::from(caw.blocks);
    check_range(lu, caw.lba, blocks)?;
    // Verify data, then write data: twice the blocks. At most 2 * 255 * block_size.
    let data_out_len_bytes = 2 * blocks * lu.block_size;
    if expected_len_bytes != data_out_len_bytes {
        // The data-out does not hold what NUMBER OF LOGICAL BLOCKS announces (e.g. 256 blocks
        // wrapped to 0 in the one-byte field): the field is wrong.
        return Err(Sense::invalid_field_in_cdb(CAW_BLOCKS_BYTE, None));
    }
    if blocks == 0 {
        return Ok(reply::ok(0));
    }
    if data_out.len() < data_out_len_bytes as usize {
        return Err(DATA_OUT_SHORT);
    }
    Ok(Decision::Io(BlockIo {
        op: BlockOp::CompareAndWrite,
        lba: caw.lba,
        blocks,
        fua: caw.fua || !lu.write_cache,
        transfer_len_bytes: data_out_len_bytes,
    }))
}

/// ORWRITE (16): a write of the data-out ORed into the blocks on the medium.
pub(crate) fn or_write(
    lu: &LogicalUnit,
    rw: &ReadWrite,
    expected_len_bytes: u32,
    data_out: &[u8],
) -> Decision {
    let range = Range {
        size: rw.size,
        lba: rw.lba,
        blocks: rw.blocks,
        protect: rw.protect,
    };
    let fua = rw.fua || !lu.write_cache;
    plan_data_out(
        lu,
        BlockOp::OrWrite,
        range,
        fua,
        expected_len_bytes,
        data_out,
    )
    .unwrap_or_else(reply::fail)
}

/// WRITE ATOMIC (16): supported when the backend can write `max_atomic_transfer_blocks`
/// atomically; the whole transfer must arrive (no partial atomic write).
pub(crate) fn write_atomic(
    lu: &LogicalUnit,
    rw: &ReadWrite,
    expected_len_bytes: u32,
    data_out: &[u8],
) -> Decision {
    plan_write_atomic(lu, rw, expected_len_bytes, data_out).unwrap_or_else(reply::fail)
}

fn plan_write_atomic(
    lu: &LogicalUnit,
    rw: &ReadWrite,
    expected_len_bytes: u32,
    data_out: &[u8],
) -> Result<Decision, Sense> {
    if lu.max_atomic_transfer_blocks == 0 {
        return Err(Sense::invalid_opcode());
    }
    if rw.protect != 0 {
        return Err(PROTECT_FIELD);
    }
    if rw.blocks > lu.max_atomic_transfer_blocks.min(lu.max_transfer_blocks) {
        return Err(Sense::invalid_field_in_cdb(ATOMIC_TRANSFER_LEN_BYTE, None));
    }
    let wanted_bytes = u64::from(rw.blocks) * u64::from(lu.block_size);
    if u64::from(expected_len_bytes) < wanted_bytes && !lu.read_only {
        // A torn atomic write is no atomic write: refuse rather than write a prefix.
        check_range(lu, rw.lba, rw.blocks)?;
        return Err(PARTIAL_BLOCK);
    }
    let range = Range {
        size: CdbSize::Sixteen,
        lba: rw.lba,
        blocks: rw.blocks,
        protect: 0,
    };
    let fua = rw.fua || !lu.write_cache;
    plan_data_out(
        lu,
        BlockOp::WriteAtomic,
        range,
        fua,
        expected_len_bytes,
        data_out,
    )
}

#[cfg(test)]
#[path = "compare_tests.rs"]
mod tests;
