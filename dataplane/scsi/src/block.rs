//! SBC-3 commands that touch the medium: READ, WRITE, VERIFY, WRITE AND VERIFY (all sizes),
//! SYNCHRONIZE CACHE and PRE-FETCH. Each checks its CDB fields against the logical unit (protection,
//! block limits, write protection, LBA range) and turns into a [`BlockIo`] — or answers GOOD
//! at once when nothing is to be transferred.

use lunar_wire::scsi::{Asc, CdbSize, ReadWrite, Sense, SenseKey, VerifyCdb};

use crate::model::{BlockIo, BlockOp, Decision, LogicalUnit};
use crate::reply;

/// Protection information is not supported: RDPROTECT/WRPROTECT/VRPROTECT must be 0.
pub(crate) const PROTECT_FIELD: Sense = Sense::invalid_field_in_cdb(1, Some(7));
/// BYTCHK values 10b and 11b are not supported.
const BYTCHK_FIELD: Sense = Sense::invalid_field_in_cdb(1, Some(2));
pub(crate) const WRITE_PROTECTED: Sense = Sense::new(SenseKey::DataProtect, Asc::WRITE_PROTECTED);
/// The expected data transfer length ends inside a logical block.
pub(crate) const PARTIAL_BLOCK: Sense = Sense::new(
    SenseKey::IllegalRequest,
    Asc::INVALID_FIELD_IN_INFORMATION_UNIT,
);
/// Fewer data-out bytes arrived than the command needs.
pub(crate) const DATA_OUT_SHORT: Sense = Sense::new(
    SenseKey::AbortedCommand,
    Asc::WRITE_ERROR_NOT_ENOUGH_UNSOLICITED_DATA,
);

fn transfer_len_field(size: CdbSize) -> Sense {
    Sense::invalid_field_in_cdb(size.transfer_len_offset(), None)
}

/// `lba .. lba + blocks` must lie on the medium; for zero blocks, `lba` itself must.
pub(crate) fn check_range(lu: &LogicalUnit, lba: u64, blocks: u32) -> Result<(), Sense> {
    if lba >= lu.num_blocks || u64::from(blocks) > lu.num_blocks - lba {
        return Err(Sense::lba_out_of_range());
    }
    Ok(())
}

/// Transfer length within the block limits, and its size in bytes.
pub(crate) fn check_transfer_len(
    lu: &LogicalUnit,
    size: CdbSize,
    blocks: u32,
) -> Result<u32, Sense> {
    if blocks > lu.max_transfer_blocks {
        return Err(transfer_len_field(size));
    }
    u32::try_from(u64::from(blocks) * u64::from(lu.block_size))
        .map_err(|_| transfer_len_field(size))
}

/// Blocks of data-out to use: those the expected length covers, all present in `data_out`.
fn data_out_blocks(
    lu: &LogicalUnit,
    blocks: u32,
    cdb_bytes: u32,
    expected_len_bytes: u32,
    data_out: &[u8],
) -> Result<u32, Sense> {
    let block_size = lu.block_size.max(1);
    if expected_len_bytes < cdb_bytes && !expected_len_bytes.is_multiple_of(block_size) {
        return Err(PARTIAL_BLOCK);
    }
    let io_blocks = blocks.min(expected_len_bytes / block_size);
    let needed_bytes = u64::from(io_blocks) * u64::from(block_size);
    if (data_out.len() as u64) < needed_bytes {
        return Err(DATA_OUT_SHORT);
    }
    Ok(io_blocks)
}

fn io(op: BlockOp, lba: u64, blocks: u32, fua: bool, transfer_len_bytes: u32) -> Decision {
    Decision::Io(BlockIo {
        op,
        lba,
        blocks,
        fua,
        transfer_len_bytes,
    })
}

pub(crate) fn read(lu: &LogicalUnit, rw: &ReadWrite, expected_len_bytes: u32) -> Decision {
    match plan_read(lu, rw, expected_len_bytes) {
        Ok(decision) => decision,
        Err(sense) => reply::fail(sense),
    }
}

fn plan_read(lu: &LogicalUnit, rw: &ReadWrite, expected_len_bytes: u32) -> Result<Decision, Sense> {
    if rw.protect != 0 {
        return Err(PROTECT_FIELD);
    }
    let cdb_bytes = check_transfer_len(lu, rw.size, rw.blocks)?;
    check_range(lu, rw.lba, rw.blocks)?;
    // Read only the blocks the initiator will receive; the transport truncates the last one.
    let block_size = lu.block_size.max(1);
    let io_blocks = rw.blocks.min(expected_len_bytes.div_ceil(block_size));
    if io_blocks == 0 {
        return Ok(reply::ok(cdb_bytes));
    }
    Ok(io(BlockOp::Read, rw.lba, io_blocks, false, cdb_bytes))
}

pub(crate) fn write(
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
    match plan_write(lu, range, fua, expected_len_bytes, data_out) {
        Ok(decision) => decision,
        Err(sense) => reply::fail(sense),
    }
}

pub(crate) fn write_and_verify(
    lu: &LogicalUnit,
    verify: &VerifyCdb,
    expected_len_bytes: u32,
    data_out: &[u8],
) -> Decision {
    if verify.bytchk > 1 {
        return reply::fail(BYTCHK_FIELD);
    }
    let range = Range {
        size: verify.size,
        lba: verify.lba,
        blocks: verify.blocks,
        protect: verify.protect,
    };
    // The written data is verified by being on the medium before completion.
    match plan_write(lu, range, true, expected_len_bytes, data_out) {
        Ok(decision) => decision,
        Err(sense) => reply::fail(sense),
    }
}

/// The medium range and protection field of a data-out command.
pub(crate) struct Range {
    pub size: CdbSize,
    pub lba: u64,
    pub blocks: u32,
    pub protect: u8,
}

fn plan_write(
    lu: &LogicalUnit,
    range: Range,
    fua: bool,
    expected_len_bytes: u32,
    data_out: &[u8],
) -> Result<Decision, Sense> {
    plan_data_out(lu, BlockOp::Write, range, fua, expected_len_bytes, data_out)
}

/// A command writing its data-out to `range` as `op`: protection, block limits, write
/// protection, LBA range and data-out checks.
pub(crate) fn plan_data_out(
    lu: &LogicalUnit,
    op: BlockOp,
    range: Range,
    fua: bool,
    expected_len_bytes: u32,
    data_out: &[u8],
) -> Result<Decision, Sense> {
    let Range {
        size,
        lba,
        blocks,
        protect,
    } = range;
    if protect != 0 {
        return Err(PROTECT_FIELD);
    }
    let cdb_bytes = check_transfer_len(lu, size, blocks)?;
    if lu.read_only {
        return Err(WRITE_PROTECTED);
    }
    check_range(lu, lba, blocks)?;
    let io_blocks = data_out_blocks(lu, blocks, cdb_bytes, expected_len_bytes, data_out)?;
    if io_blocks == 0 {
        return Ok(reply::ok(cdb_bytes));
    }
    Ok(io(op, lba, io_blocks, fua, cdb_bytes))
}

pub(crate) fn verify(
    lu: &LogicalUnit,
    verify: &VerifyCdb,
    expected_len_bytes: u32,
    data_out: &[u8],
) -> Decision {
    match plan_verify(lu, verify, expected_len_bytes, data_out) {
        Ok(decision) => decision,
        Err(sense) => reply::fail(sense),
    }
}

fn plan_verify(
    lu: &LogicalUnit,
    verify: &VerifyCdb,
    expected_len_bytes: u32,
    data_out: &[u8],
) -> Result<Decision, Sense> {
    if verify.protect != 0 {
        return Err(PROTECT_FIELD);
    }
    match verify.bytchk {
        0 => {
            // No data moves: the medium check is chunked by the reactor, so the block limit
            // does not apply.
            check_range(lu, verify.lba, verify.blocks)?;
            if verify.blocks == 0 {
                return Ok(reply::ok(0));
            }
            Ok(io(BlockOp::Verify, verify.lba, verify.blocks, false, 0))
        }
        1 => {
            let cdb_bytes = check_transfer_len(lu, verify.size, verify.blocks)?;
            check_range(lu, verify.lba, verify.blocks)?;
            let io_blocks =
                data_out_blocks(lu, verify.blocks, cdb_bytes, expected_len_bytes, data_out)?;
            if io_blocks == 0 {
                return Ok(reply::ok(cdb_bytes));
            }
            Ok(io(
                BlockOp::Compare,
                verify.lba,
                io_blocks,
                false,
                cdb_bytes,
            ))
        }
        _ => Err(BYTCHK_FIELD),
    }
}

/// SYNCHRONIZE CACHE (10)/(16): `blocks == 0` means to the last logical block. A read-only
/// LU has nothing to write back and answers GOOD at once.
pub(crate) fn synchronize_cache(
    lu: &LogicalUnit,
    _size: CdbSize,
    lba: u64,
    blocks: u32,
) -> Decision {
    if let Err(sense) = check_range(lu, lba, blocks) {
        return reply::fail(sense);
    }
    if lu.read_only {
        return reply::ok(0);
    }
    io(BlockOp::Flush, lba, blocks, false, 0)
}

/// PRE-FETCH (10)/(16): there is no cache to load, so after the range check the answer is
/// GOOD (not CONDITION MET: the blocks are not held in a cache afterwards).
pub(crate) fn pre_fetch(lu: &LogicalUnit, lba: u64, blocks: u32) -> Decision {
    match check_range(lu, lba, blocks) {
        Ok(()) => reply::ok(0),
        Err(sense) => reply::fail(sense),
    }
}

#[cfg(test)]
#[path = "block_tests.rs"]
mod tests;
