//! Third-party copy within one logical unit (SPC-4 6.4, 6.18): EXTENDED COPY (LID1) with
//! identification target descriptors (E4h) naming this logical unit and block-to-block
//! segment descriptors (02h), RECEIVE COPY RESULTS (OPERATING PARAMETERS, COPY STATUS), and the
//! copy results an I_T nexus holds.
//!
//! The whole parameter list is checked before any block moves; the reactor then copies the
//! segments in order ([`copy_segments`]).

use lunar_wire::scsi::{service_action as sa, Asc, Sense, SenseKey};

use crate::block::{DATA_OUT_SHORT, WRITE_PROTECTED};
use crate::inquiry::naa_designator;
use crate::model::{BlockIo, BlockOp, Decision, LogicalUnit, NexusState};
use crate::reply;

/// Target descriptors one EXTENDED COPY may carry.
pub const MAX_TARGET_DESCRIPTORS: u16 = 2;
/// Segment descriptors one EXTENDED COPY may carry.
pub const MAX_SEGMENT_DESCRIPTORS: u16 = 64;
/// Target and segment descriptors together, in bytes.
pub const MAX_DESCRIPTOR_LIST_LEN_BYTES: u32 = MAX_TARGET_DESCRIPTORS as u32
    * TARGET_DESCRIPTOR_LEN_BYTES as u32
    + MAX_SEGMENT_DESCRIPTORS as u32 * SEGMENT_DESCRIPTOR_LEN_BYTES as u32;
/// Copy results one nexus of one logical unit holds (the oldest is forgotten first).
pub const HELD_COPY_RESULTS_MAX: usize = 4;

const HEADER_LEN_BYTES: usize = 16;
/// Identification descriptor target descriptor (E4h).
const TARGET_IDENTIFICATION: u8 = 0xe4;
const TARGET_DESCRIPTOR_LEN_BYTES: usize = 32;
/// Block device to block device segment descriptor (02h).
const SEGMENT_BLOCK_TO_BLOCK: u8 = 0x02;
const SEGMENT_DESCRIPTOR_LEN_BYTES: usize = 28;
/// The DESCRIPTOR LENGTH field of a block-to-block segment descriptor.
const SEGMENT_BODY_LEN_BYTES: u16 = 0x18;
/// LIST ID USAGE values: hold the results; 10b and 11b do not.
const LIST_ID_USAGE_HOLD: u8 = 0b00;
/// COPY MANAGER STATUS values.
const COPY_IN_PROGRESS: u8 = 0x00;
const COPY_COMPLETED: u8 = 0x01;
const COPY_FAILED: u8 = 0x02;
/// TRANSFER COUNT UNITS: kibibytes.
const TRANSFER_UNITS_KIB: u8 = 0xf1;
/// The NAA designator of a logical unit as a target descriptor carries it: code set binary,
/// association logical unit, type NAA, 16 bytes.
const NAA_DESIGNATOR_HEADER: [u8; 4] = [0x01, 0x03, 0x00, 16];

const PARAMETER_LIST_LENGTH_ERROR: Sense =
    Sense::new(SenseKey::IllegalRequest, Asc::PARAMETER_LIST_LENGTH_ERROR);
const TOO_MANY_TARGET_DESCRIPTORS: Sense =
    Sense::new(SenseKey::IllegalRequest, Asc::new(0x26, 0x06));
const UNSUPPORTED_TARGET_DESCRIPTOR: Sense =
    Sense::new(SenseKey::IllegalRequest, Asc::new(0x26, 0x07));
const TOO_MANY_SEGMENT_DESCRIPTORS: Sense =
    Sense::new(SenseKey::IllegalRequest, Asc::new(0x26, 0x08));
const UNSUPPORTED_SEGMENT_DESCRIPTOR: Sense =
    Sense::new(SenseKey::IllegalRequest, Asc::new(0x26, 0x09));
/// A target descriptor names a device this copy manager cannot reach.
const TARGET_NOT_REACHABLE: Sense = Sense::new(SenseKey::CopyAborted, Asc::new(0x0d, 0x02));
/// A segment runs off the end of the medium.
const SEGMENT_OUT_OF_RANGE: Sense = Sense::new(SenseKey::CopyAborted, Asc::NO_ADDITIONAL_SENSE);

/// The result of one EXTENDED COPY, held for its nexus under its list identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HeldCopy {
    list_id: u8,
    status: u8,
    segments: u16,
    blocks: u64,
}

fn be16(bytes: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([bytes[at], bytes[at + 1]])
}

fn be32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

fn be64(bytes: &[u8], at: usize) -> u64 {
    u64::from(be32(bytes, at)) << 32 | u64::from(be32(bytes, at + 4))
}

/// The segment descriptors of a parameter list, as the header delimits them (bounded by the
/// bytes present).
fn segment_bytes(param: &[u8]) -> &[u8] {
    let Some(header) = param.get(..HEADER_LEN_BYTES) else {
        return &[];
    };
    let start = HEADER_LEN_BYTES + usize::from(be16(header, 2));
    let len = usize::try_from(be32(header, 8)).unwrap_or(usize::MAX);
    let end = start.saturating_add(len).min(param.len());
    param.get(start..end).unwrap_or(&[])
}

/// The block-to-block segments of an EXTENDED COPY parameter list, in order, as `(source lba,
/// destination lba, blocks)`, skipping empty ones. Given the data-out of a
/// [`BlockOp::ExtendedCopy`] every segment is on the medium; given anything else, it still
/// never panics.
pub fn copy_segments(data_out: &[u8]) -> impl Iterator<Item = (u64, u64, u16)> + '_ {
    segment_bytes(data_out)
        .chunks_exact(SEGMENT_DESCRIPTOR_LEN_BYTES)
        .filter(|d| d[0] == SEGMENT_BLOCK_TO_BLOCK)
        .map(|d| (be64(d, 12), be64(d, 20), be16(d, 10)))
        .filter(|&(_, _, blocks)| blocks != 0)
}

/// The checks of one identification target descriptor: it must name `lu` itself.
fn check_target(lu: &LogicalUnit, descriptor: &[u8]) -> Result<(), Sense> {
    if descriptor[0] != TARGET_IDENTIFICATION {
        return Err(UNSUPPORTED_TARGET_DESCRIPTOR);
    }
    // Byte 1: LU ID TYPE is ignored (SPC-4), NUL is obsolete; the peripheral device type must
    // be direct access.
    let designator = &descriptor[4..24];
    let ours = naa_designator(lu.volume_uid);
    let names_this_lu = designator[..4] == NAA_DESIGNATOR_HEADER && designator[4..20] == ours;
    if descriptor[1] & 0x1f != 0 || !names_this_lu {
        return Err(TARGET_NOT_REACHABLE);
    }
    let block_len = u32::from_be_bytes([0, descriptor[29], descriptor[30], descriptor[31]]);
    if block_len != lu.block_size {
        return Err(TARGET_NOT_REACHABLE);
    }
    Ok(())
}

pub(crate) fn extended_copy(
    lu: &LogicalUnit,
    nexus: &mut NexusState,
    param_len: u32,
    expected_len_bytes: u32,
    data_out: &[u8],
) -> Decision {
    plan_extended_copy(lu, nexus, param_len, expected_len_bytes, data_out)
        .unwrap_or_else(reply::fail)
}

fn plan_extended_copy(
    lu: &LogicalUnit,
    nexus: &mut NexusState,
    param_len: u32,
    expected_len_bytes: u32,
    data_out: &[u8],
) -> Result<Decision, Sense> {
    if param_len == 0 {
        return Ok(reply::ok(0));
    }
    if lu.read_only {
        return Err(WRITE_PROTECTED);
    }
    let len = usize::try_from(param_len).unwrap_or(usize::MAX);
    if len < HEADER_LEN_BYTES {
        return Err(PARAMETER_LIST_LENGTH_ERROR);
    }
    if expected_len_bytes < param_len || data_out.len() < len {
        return Err(DATA_OUT_SHORT);
    }
    let param = &data_out[..len];
    let list_id = param[0];
    let list_id_usage = (param[1] >> 3) & 0x03;
    let targets_len = usize::from(be16(param, 2));
    let segments_len = be32(param, 8);
    let inline_len = be32(param, 12);
    if inline_len != 0 {
        return Err(Sense::invalid_field_in_parameter_list(12, None));
    }
    let descriptors_len = u64::from(segments_len) + targets_len as u64;
    if descriptors_len > u64::from(MAX_DESCRIPTOR_LIST_LEN_BYTES)
        || HEADER_LEN_BYTES as u64 + descriptors_len > param_len as u64
    {
        return Err(PARAMETER_LIST_LENGTH_ERROR);
    }
    let targets = &param[HEADER_LEN_BYTES..HEADER_LEN_BYTES + targets_len];
    if targets_len % TARGET_DESCRIPTOR_LEN_BYTES != 0 {
        return Err(Sense::invalid_field_in_parameter_list(2, None));
    }
    let target_count = targets_len / TARGET_DESCRIPTOR_LEN_BYTES;
    if target_count > usize::from(MAX_TARGET_DESCRIPTORS) {
        return Err(TOO_MANY_TARGET_DESCRIPTORS);
    }
    for descriptor in targets.chunks_exact(TARGET_DESCRIPTOR_LEN_BYTES) {
        check_target(lu, descriptor)?;
    }
    let segments = segment_bytes(param);
    let mut at = 0;
    let mut count: u16 = 0;
    let mut first_lba = None;
    let mut total_blocks: u64 = 0;
    while at < segments.len() {
        let descriptor = &segments[at..];
        if descriptor.len() < 4 {
            return Err(PARAMETER_LIST_LENGTH_ERROR);
        }
        if descriptor[0] != SEGMENT_BLOCK_TO_BLOCK {
            return Err(UNSUPPORTED_SEGMENT_DESCRIPTOR);
        }
        if be16(descriptor, 2) != SEGMENT_BODY_LEN_BYTES {
            let offset = (HEADER_LEN_BYTES + targets_len + at + 2) as u16;
            return Err(Sense::invalid_field_in_parameter_list(offset, None));
        }
        if descriptor.len() < SEGMENT_DESCRIPTOR_LEN_BYTES {
            return Err(PARAMETER_LIST_LENGTH_ERROR);
        }
        count += 1;
        if count > MAX_SEGMENT_DESCRIPTORS {
            return Err(TOO_MANY_SEGMENT_DESCRIPTORS);
        }
        let source = usize::from(be16(descriptor, 4));
        let destination = usize::from(be16(descriptor, 6));
        if source >= target_count || destination >= target_count {
            return Err(TARGET_NOT_REACHABLE);
        }
        let blocks = u64::from(be16(descriptor, 10));
        for lba in [be64(descriptor, 12), be64(descriptor, 20)] {
            if lba
                .checked_add(blocks)
                .is_none_or(|end| end > lu.num_blocks)
            {
                return Err(SEGMENT_OUT_OF_RANGE.with_information(u64::from(count - 1)));
            }
        }
        if blocks > 0 {
            first_lba.get_or_insert(be64(descriptor, 20));
            total_blocks += blocks;
        }
        at += SEGMENT_DESCRIPTOR_LEN_BYTES;
    }
    let held = list_id_usage == LIST_ID_USAGE_HOLD;
    let Some(lba) = first_lba else {
        if held {
            nexus.hold_copy(HeldCopy {
                list_id,
                status: COPY_COMPLETED,
                segments: count,
                blocks: 0,
            });
        }
        return Ok(reply::ok(param_len));
    };
    if held {
        nexus.hold_copy(HeldCopy {
            list_id,
            status: COPY_IN_PROGRESS,
            segments: 0,
            blocks: 0,
        });
    }
    Ok(Decision::Io(BlockIo {
        op: BlockOp::ExtendedCopy {
            segments: count,
            list_id,
            held,
        },
        lba,
        // At most 64 segments of 65535 blocks.
        blocks: u32::try_from(total_blocks).unwrap_or(u32::MAX),
        fua: !lu.write_cache,
        transfer_len_bytes: param_len,
    }))
}

impl NexusState {
    fn hold_copy(&mut self, copy: HeldCopy) {
        self.held_copies.retain(|held| held.list_id != copy.list_id);
        if self.held_copies.len() >= HELD_COPY_RESULTS_MAX {
            self.held_copies.remove(0);
        }
        self.held_copies.push(copy);
    }

    /// Record how a [`BlockOp::ExtendedCopy`] of this nexus ended, for RECEIVE COPY RESULTS.
    /// Other operations are ignored.
    pub fn copy_finished(&mut self, io: &BlockIo, succeeded: bool) {
        let BlockOp::ExtendedCopy {
            segments,
            list_id,
            held: true,
        } = io.op
        else {
            return;
        };
        let status = if succeeded {
            COPY_COMPLETED
        } else {
            COPY_FAILED
        };
        let blocks = if succeeded { u64::from(io.blocks) } else { 0 };
        self.hold_copy(HeldCopy {
            list_id,
            status,
            segments: if succeeded { segments } else { 0 },
            blocks,
        });
    }
}

pub(crate) fn receive_copy_results(
    lu: &LogicalUnit,
    nexus: &NexusState,
    service_action: u8,
    list_id: u8,
    alloc_len: u32,
) -> Decision {
    match service_action {
        sa::RECEIVE_COPY_OPERATING_PARAMETERS => {
            reply::with_data(operating_parameters(lu), alloc_len)
        }
        sa::RECEIVE_COPY_STATUS_LID1 => {
            let Some(held) = nexus.held_copies.iter().find(|h| h.list_id == list_id) else {
                return reply::fail(Sense::invalid_field_in_cdb(2, None));
            };
            reply::with_data(copy_status(lu, held), alloc_len)
        }
        _ => reply::fail(Sense::invalid_field_in_cdb(1, Some(4))),
    }
}

/// OPERATING PARAMETERS (SPC-4 6.18.4).
fn operating_parameters(lu: &LogicalUnit) -> Vec<u8> {
    let implemented = [SEGMENT_BLOCK_TO_BLOCK, TARGET_IDENTIFICATION];
    let mut data = vec![0u8; 44];
    let available = (data.len() + implemented.len() - 4) as u32;
    data[0..4].copy_from_slice(&available.to_be_bytes());
    data[4] = 0x01; // SNLID: a list identifier need not be held
    data[8..10].copy_from_slice(&MAX_TARGET_DESCRIPTORS.to_be_bytes());
    data[10..12].copy_from_slice(&MAX_SEGMENT_DESCRIPTORS.to_be_bytes());
    data[12..16].copy_from_slice(&MAX_DESCRIPTOR_LIST_LEN_BYTES.to_be_bytes());
    let max_segment_bytes =
        u32::try_from(u64::from(u16::MAX) * u64::from(lu.block_size)).unwrap_or(u32::MAX);
    data[16..20].copy_from_slice(&max_segment_bytes.to_be_bytes());
    // Inline data, held data and stream devices: none.
    data[34..36].copy_from_slice(&1u16.to_be_bytes()); // TOTAL CONCURRENT COPIES
    data[36] = 1; // MAXIMUM CONCURRENT COPIES
    data[37] = lu.block_size.max(1).trailing_zeros() as u8; // DATA SEGMENT GRANULARITY
    data[43] = implemented.len() as u8;
    data.extend_from_slice(&implemented);
    data
}

/// COPY STATUS (SPC-4 6.18.3).
fn copy_status(lu: &LogicalUnit, held: &HeldCopy) -> Vec<u8> {
    let mut data = vec![0u8; 12];
    data[0..4].copy_from_slice(&8u32.to_be_bytes());
    data[4] = held.status;
    data[5..7].copy_from_slice(&held.segments.to_be_bytes());
    data[7] = TRANSFER_UNITS_KIB;
    let kib = held.blocks * u64::from(lu.block_size) / 1024;
    data[8..12].copy_from_slice(&u32::try_from(kib).unwrap_or(u32::MAX).to_be_bytes());
    data
}

#[cfg(test)]
#[path = "copy_tests.rs"]
mod tests;
