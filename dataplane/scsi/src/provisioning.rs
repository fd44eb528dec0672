//! Logical block provisioning (SBC-3 4.7, 5.43 – 5.44, 5.22, 5.25): WRITE SAME (10)/(16) with
//! and without UNMAP or NDOB, UNMAP with its parameter list, GET LBA STATUS and the reply the
//! reactor builds from what the backend reports. Limits advertised in VPD 0xB0 live here.

use lunar_wire::scsi::{Asc, Sense, SenseKey, WriteSameCdb};

use crate::block::{check_range, DATA_OUT_SHORT, PARTIAL_BLOCK, PROTECT_FIELD, WRITE_PROTECTED};
use crate::model::{BlockIo, BlockOp, Decision, LogicalUnit, ScsiReply};
use crate::reply;

/// Largest WRITE SAME in bytes; MAXIMUM WRITE SAME LENGTH is this in blocks.
pub const MAX_WRITE_SAME_BYTES: u64 = 16 * 1024 * 1024;
/// MAXIMUM UNMAP LBA COUNT: blocks one UNMAP may deallocate in total.
pub const MAX_UNMAP_BLOCKS: u32 = 1 << 20;
/// MAXIMUM UNMAP BLOCK DESCRIPTOR COUNT.
pub const MAX_UNMAP_DESCRIPTORS: u16 = 256;
/// Most LBA status descriptors one GET LBA STATUS returns.
pub const MAX_LBA_STATUS_DESCRIPTORS: usize = 512;

const UNMAP_HEADER_LEN_BYTES: usize = 8;
const UNMAP_DESCRIPTOR_LEN_BYTES: usize = 16;
const LBA_STATUS_HEADER_LEN_BYTES: usize = 8;
const LBA_STATUS_DESCRIPTOR_LEN_BYTES: usize = 16;

const PARAMETER_LIST_LENGTH_ERROR: Sense =
    Sense::new(SenseKey::IllegalRequest, Asc::PARAMETER_LIST_LENGTH_ERROR);

/// MAXIMUM WRITE SAME LENGTH of `lu`, in blocks.
pub(crate) fn max_write_same_blocks(lu: &LogicalUnit) -> u32 {
    u32::try_from(MAX_WRITE_SAME_BYTES / u64::from(lu.block_size.max(1))).unwrap_or(u32::MAX)
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

pub(crate) fn write_same(
    lu: &LogicalUnit,
    ws: &WriteSameCdb,
    expected_len_bytes: u32,
    data_out: &[u8],
) -> Decision {
    plan_write_same(lu, ws, expected_len_bytes, data_out).unwrap_or_else(reply::fail)
}

fn plan_write_same(
    lu: &LogicalUnit,
    ws: &WriteSameCdb,
    expected_len_bytes: u32,
    data_out: &[u8],
) -> Result<Decision, Sense> {
    if ws.protect != 0 {
        return Err(PROTECT_FIELD);
    }
    if lu.read_only {
        return Err(WRITE_PROTECTED);
    }
    if ws.unmap && !lu.thin_provisioning {
        return Err(Sense::invalid_field_in_cdb(1, Some(3)));
    }
    if ws.lba >= lu.num_blocks {
        return Err(Sense::lba_out_of_range());
    }
    // NUMBER OF LOGICAL BLOCKS 0: to the last block (WSNZ is 0).
    let blocks = if ws.blocks == 0 {
        lu.num_blocks - ws.lba
    } else {
        u64::from(ws.blocks)
    };
    if blocks > u64::from(max_write_same_blocks(lu)) {
        return Err(Sense::invalid_field_in_cdb(
            ws.size.transfer_len_offset(),
            None,
        ));
    }
    let blocks = u32::try_from(blocks).unwrap_or(u32::MAX);
    check_range(lu, ws.lba, blocks)?;
    let block_len = lu.block_size;
    let zeros = if ws.ndob {
        if expected_len_bytes != 0 {
            return Err(Sense::invalid_field_in_cdb(1, Some(0)));
        }
        true
    } else {
        if expected_len_bytes != block_len {
            return Err(PARTIAL_BLOCK);
        }
        let pattern = data_out.get(..block_len as usize).ok_or(DATA_OUT_SHORT)?;
        pattern.iter().all(|&b| b == 0)
    };
    // With UNMAP set the blocks are deallocated whatever the pattern (SBC-4 WRITE SAME: the
    // device server unmaps; libiscsi's UnmapUntilEnd writes 0xFF with UNMAP and expects zeros
    // back when LBPRZ is set).
    let op = if ws.unmap && lu.unmap_reads_zeroes {
        BlockOp::Deallocate
    } else if zeros {
        BlockOp::WriteZeroes
    } else {
        BlockOp::WriteSame
    };
    let transfer_len_bytes = if ws.ndob { 0 } else { block_len };
    Ok(io(op, ws.lba, blocks, !lu.write_cache, transfer_len_bytes))
}

/// The block descriptors of an UNMAP parameter list: after the 8-byte header, UNMAP BLOCK
/// DESCRIPTOR DATA LENGTH bytes (bounded by what is there), in whole 16-byte descriptors.
fn unmap_descriptors(param: &[u8]) -> &[u8] {
    let Some(header) = param.get(..UNMAP_HEADER_LEN_BYTES) else {
        return &[];
    };
    let declared = usize::from(u16::from_be_bytes([header[2], header[3]]));
    let available = param.len() - UNMAP_HEADER_LEN_BYTES;
    let len = declared.min(available) / UNMAP_DESCRIPTOR_LEN_BYTES * UNMAP_DESCRIPTOR_LEN_BYTES;
    &param[UNMAP_HEADER_LEN_BYTES..UNMAP_HEADER_LEN_BYTES + len]
}

fn descriptor(bytes: &[u8]) -> (u64, u32) {
    let mut lba = [0u8; 8];
    lba.copy_from_slice(&bytes[..8]);
    let mut blocks = [0u8; 4];
    blocks.copy_from_slice(&bytes[8..12]);
    (u64::from_be_bytes(lba), u32::from_be_bytes(blocks))
}

/// The ranges an UNMAP parameter list names, as `(lba, blocks)`, skipping empty ones. Given
/// the data-out of a [`BlockOp::Unmap`], every range is on the medium; given anything else, it
/// still never panics.
pub fn unmap_ranges(data_out: &[u8]) -> impl Iterator<Item = (u64, u32)> + '_ {
    unmap_descriptors(data_out)
        .chunks_exact(UNMAP_DESCRIPTOR_LEN_BYTES)
        .map(descriptor)
        .filter(|&(_, blocks)| blocks != 0)
}

pub(crate) fn unmap(
    lu: &LogicalUnit,
    param_len: u16,
    expected_len_bytes: u32,
    data_out: &[u8],
) -> Decision {
    plan_unmap(lu, param_len, expected_len_bytes, data_out).unwrap_or_else(reply::fail)
}

fn plan_unmap(
    lu: &LogicalUnit,
    param_len: u16,
    expected_len_bytes: u32,
    data_out: &[u8],
) -> Result<Decision, Sense> {
    let transfer_len_bytes = u32::from(param_len);
    if lu.read_only {
        return Err(WRITE_PROTECTED);
    }
    if !lu.thin_provisioning {
        return Err(Sense::invalid_opcode());
    }
    if param_len == 0 {
        return Ok(reply::ok(0));
    }
    let param_len = usize::from(param_len);
    if param_len < UNMAP_HEADER_LEN_BYTES {
        return Err(PARAMETER_LIST_LENGTH_ERROR);
    }
    if (expected_len_bytes as usize) < param_len || data_out.len() < param_len {
        return Err(DATA_OUT_SHORT);
    }
    let param = &data_out[..param_len];
    let declared = usize::from(u16::from_be_bytes([param[2], param[3]]));
    if UNMAP_HEADER_LEN_BYTES + declared > param_len {
        return Err(Sense::invalid_field_in_parameter_list(2, None));
    }
    let descriptors = unmap_descriptors(param);
    let count = descriptors.len() / UNMAP_DESCRIPTOR_LEN_BYTES;
    if count > usize::from(MAX_UNMAP_DESCRIPTORS) {
        return Err(Sense::invalid_field_in_parameter_list(2, None));
    }
    let mut first_lba = None;
    let mut total_blocks: u64 = 0;
    for (index, bytes) in descriptors
        .chunks_exact(UNMAP_DESCRIPTOR_LEN_BYTES)
        .enumerate()
    {
        let (lba, blocks) = descriptor(bytes);
        if lba
            .checked_add(u64::from(blocks))
            .is_none_or(|end| end > lu.num_blocks)
        {
            return Err(Sense::lba_out_of_range());
        }
        if blocks == 0 {
            continue;
        }
        first_lba.get_or_insert(lba);
        total_blocks += u64::from(blocks);
        if total_blocks > u64::from(MAX_UNMAP_BLOCKS) {
            let at = UNMAP_HEADER_LEN_BYTES + index * UNMAP_DESCRIPTOR_LEN_BYTES + 8;
            return Err(Sense::invalid_field_in_parameter_list(at as u16, None));
        }
    }
    let Some(lba) = first_lba else {
        return Ok(reply::ok(transfer_len_bytes));
    };
    Ok(Decision::Io(BlockIo {
        op: BlockOp::Unmap {
            descriptors: count as u16,
        },
        lba,
        blocks: total_blocks as u32,
        fua: !lu.write_cache,
        transfer_len_bytes,
    }))
}

pub(crate) fn get_lba_status(lu: &LogicalUnit, lba: u64, alloc_len: u32) -> Decision {
    if lba >= lu.num_blocks {
        return reply::fail(Sense::lba_out_of_range());
    }
    if alloc_len == 0 {
        return reply::ok(0);
    }
    let io = BlockIo {
        op: BlockOp::GetLbaStatus,
        lba,
        blocks: u32::try_from(lu.num_blocks - lba).unwrap_or(u32::MAX),
        fua: false,
        transfer_len_bytes: alloc_len,
    };
    if lu.thin_provisioning {
        Decision::Io(io)
    } else {
        // Fully provisioned: every block is mapped.
        Decision::Reply(lba_status_reply(&io, &[]))
    }
}

/// PROVISIONING STATUS of an LBA status descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProvisioningStatus {
    /// Mapped (or unknown).
    Mapped = 0,
    Deallocated = 1,
    Anchored = 2,
}

/// A run of blocks with one provisioning status, as the backend reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LbaExtent {
    pub lba: u64,
    pub blocks: u64,
    pub status: ProvisioningStatus,
}

/// The reply to a [`BlockOp::GetLbaStatus`]: `extents` are what the backend found, in
/// ascending order; they are clipped to the command's range, blocks they do not cover are
/// reported mapped, and adjacent runs of one status are merged. At most
/// [`MAX_LBA_STATUS_DESCRIPTORS`] descriptors (and no more than the allocation length holds)
/// are returned; the initiator asks again from where they end.
pub fn lba_status_reply(io: &BlockIo, extents: &[LbaExtent]) -> ScsiReply {
    let alloc_len = usize::try_from(io.transfer_len_bytes).unwrap_or(usize::MAX);
    let wanted =
        alloc_len.saturating_sub(LBA_STATUS_HEADER_LEN_BYTES) / LBA_STATUS_DESCRIPTOR_LEN_BYTES;
    let max_runs = wanted.clamp(1, MAX_LBA_STATUS_DESCRIPTORS);
    let end = io.lba.saturating_add(u64::from(io.blocks));
    let mut runs: Vec<(u64, u64, ProvisioningStatus)> = Vec::with_capacity(max_runs + 2);
    let push =
        |runs: &mut Vec<(u64, u64, ProvisioningStatus)>, lba, len, status| match runs.last_mut() {
            Some(last) if last.2 == status && last.0 + last.1 == lba => last.1 += len,
            _ => runs.push((lba, len, status)),
        };
    let mut cursor = io.lba;
    for extent in extents {
        if cursor >= end || runs.len() > max_runs {
            break;
        }
        let start = extent.lba.max(cursor);
        let stop = extent.lba.saturating_add(extent.blocks).min(end);
        if stop <= start {
            continue;
        }
        if start > cursor {
            push(
                &mut runs,
                cursor,
                start - cursor,
                ProvisioningStatus::Mapped,
            );
        }
        push(&mut runs, start, stop - start, extent.status);
        cursor = stop;
    }
    if cursor < end && runs.len() <= max_runs {
        push(&mut runs, cursor, end - cursor, ProvisioningStatus::Mapped);
    }
    runs.truncate(max_runs);
    let descriptors_len = runs.len() * LBA_STATUS_DESCRIPTOR_LEN_BYTES;
    let mut data = Vec::with_capacity(LBA_STATUS_HEADER_LEN_BYTES + descriptors_len);
    data.extend_from_slice(&((descriptors_len + 4) as u32).to_be_bytes());
    data.extend_from_slice(&[0; 4]);
    for (lba, len, status) in runs {
        data.extend_from_slice(&lba.to_be_bytes());
        // Runs lie within the command's range, which is at most u32::MAX blocks.
        data.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes());
        data.push(status as u8);
        data.extend_from_slice(&[0; 3]);
    }
    reply::data(data, io.transfer_len_bytes)
}

#[cfg(test)]
#[path = "provisioning_tests.rs"]
mod tests;
