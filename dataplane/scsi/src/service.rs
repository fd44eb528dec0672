//! The commands that answer from the model's own state: REQUEST SENSE, READ CAPACITY
//! (10)/(16), START STOP UNIT, PREVENT ALLOW MEDIUM REMOVAL, READ DEFECT DATA (10)/(12) and
//! REPORT LUNS.

use lunar_wire::scsi::{encode_lun, Asc, CdbSize, Sense, SenseFormat, SenseKey};

use crate::model::{BlockIo, BlockOp, Decision, LogicalUnit, NexusState};
use crate::reply;
use crate::unit_attention::UnitAttention;

pub(crate) const READ_CAPACITY_10_LEN_BYTES: u32 = 8;
const READ_CAPACITY_16_LEN_BYTES: usize = 32;
/// READ CAPACITY (16) byte 13: LOGICAL BLOCKS PER PHYSICAL BLOCK EXPONENT.
const LBPPBE_MASK: u8 = 0x0f;
/// READ CAPACITY (16) byte 14: LBPME (provisioning management enabled), LBPRZ (deallocated
/// blocks read as zeros).
const LBPME: u8 = 0x80;
const LBPRZ: u8 = 0x40;
/// RETURNED LOGICAL BLOCK ADDRESS of READ CAPACITY (10) when the capacity needs (16).
const RC10_LBA_TOO_LARGE: u32 = u32::MAX;

/// Defect list formats of SBC-3: short block, long block, bytes from index, physical
/// sector, vendor specific.
const DEFECT_LIST_FORMATS: [u8; 5] = [0b000, 0b011, 0b100, 0b101, 0b110];
const PLISTV: u8 = 0x10;
const GLISTV: u8 = 0x08;

/// SELECT REPORT values of REPORT LUNS (SPC-4 6.33).
const SELECT_ALL_LOGICAL_UNITS: u8 = 0x00;
const SELECT_WELL_KNOWN_LOGICAL_UNITS: u8 = 0x01;
const SELECT_ALL_ACCESSIBLE: u8 = 0x02;
const REPORT_LUNS_HEADER_LEN_BYTES: usize = 8;
const LUN_ENTRY_LEN_BYTES: usize = 8;

/// REQUEST SENSE (SPC-4 6.29): report (and clear) the highest pending unit attention, or NO
/// SENSE; descriptor format when DESC is set.
pub(crate) fn request_sense(nexus: &mut NexusState, desc: bool, alloc_len: u8) -> Decision {
    let sense = match nexus.pending.take() {
        Some(attention) => attention.sense(),
        None => Sense::new(SenseKey::NoSense, Asc::NO_ADDITIONAL_SENSE),
    };
    sense_data_reply(sense, desc, alloc_len)
}

/// GOOD with `sense` as parameter data.
pub(crate) fn sense_data_reply(sense: Sense, desc: bool, alloc_len: u8) -> Decision {
    let format = if desc {
        SenseFormat::Descriptor
    } else {
        SenseFormat::Fixed
    };
    reply::with_data(
        sense.encode(format).as_bytes().to_vec(),
        u32::from(alloc_len),
    )
}

/// PMI = 0 with a non-zero LOGICAL BLOCK ADDRESS is an invalid field (SBC-3 5.15, 5.16).
fn check_pmi(pmi: bool, lba: u64) -> Result<(), Sense> {
    if !pmi && lba != 0 {
        return Err(Sense::invalid_field_in_cdb(2, None));
    }
    Ok(())
}

fn last_lba(lu: &LogicalUnit) -> u64 {
    lu.num_blocks.saturating_sub(1)
}

pub(crate) fn read_capacity_10(lu: &LogicalUnit, lba: u32, pmi: bool) -> Decision {
    if let Err(sense) = check_pmi(pmi, u64::from(lba)) {
        return reply::fail(sense);
    }
    let returned_lba = u32::try_from(last_lba(lu)).unwrap_or(RC10_LBA_TOO_LARGE);
    let mut data = Vec::with_capacity(READ_CAPACITY_10_LEN_BYTES as usize);
    data.extend_from_slice(&returned_lba.to_be_bytes());
    data.extend_from_slice(&lu.block_size.to_be_bytes());
    reply::with_data(data, READ_CAPACITY_10_LEN_BYTES)
}

/// READ CAPACITY (16): no protection information; the logical blocks per physical block
/// exponent; LBPME for thin logical units, LBPRZ when their deallocated blocks read as zeros.
pub(crate) fn read_capacity_16(lu: &LogicalUnit, lba: u64, pmi: bool, alloc_len: u32) -> Decision {
    if let Err(sense) = check_pmi(pmi, lba) {
        return reply::fail(sense);
    }
    let mut data = vec![0u8; READ_CAPACITY_16_LEN_BYTES];
    data[0..8].copy_from_slice(&last_lba(lu).to_be_bytes());
    data[8..12].copy_from_slice(&lu.block_size.to_be_bytes());
    data[13] = lu.physical_block_exponent & LBPPBE_MASK;
    if lu.thin_provisioning {
        data[14] = LBPME;
        if lu.unmap_reads_zeroes {
            data[14] |= LBPRZ;
        }
    }
    reply::with_data(data, alloc_len)
}

/// START STOP UNIT (SBC-3 5.20). The unit never stops, so START changes nothing (LOEJ on a
/// removable logical unit is handled by `dispatch`, which sends it to the control thread);
/// but a stop request without NO_FLUSH first writes the volatile cache back (a flush of the
/// whole volume).
pub(crate) fn start_stop_unit(
    lu: &LogicalUnit,
    power_condition: u8,
    power_condition_modifier: u8,
    no_flush: bool,
    start: bool,
) -> Decision {
    // Every POWER CONDITION is accepted as a no-op, the values SBC-3 reserves too (the unit
    // has no power states): libiscsi's StartStopUnit.PwrCnd expects GOOD for each of 1..15
    // with the medium left loaded, as tgt answers.
    if power_condition_modifier != 0 && !matches!(power_condition, 0x2 | 0x3) {
        return reply::fail(Sense::invalid_field_in_cdb(3, Some(3)));
    }
    let stopping = power_condition == 0 && !start;
    if stopping && !no_flush && !lu.read_only && lu.num_blocks > 0 {
        return Decision::Io(BlockIo {
            op: BlockOp::Flush,
            lba: 0,
            blocks: 0,
            fua: false,
            transfer_len_bytes: 0,
        });
    }
    reply::ok(0)
}

/// PREVENT ALLOW MEDIUM REMOVAL: PREVENT values 10b and 11b are obsolete. On a fixed medium
/// nothing else happens (a removable logical unit's prevention is kept by the control
/// thread, see `dispatch`).
pub(crate) fn prevent_allow(prevent: u8) -> Decision {
    if prevent > 1 {
        return reply::fail(Sense::invalid_field_in_cdb(4, Some(1)));
    }
    reply::ok(0)
}

/// READ DEFECT DATA (10)/(12): the lists asked for are valid and empty.
pub(crate) fn read_defect_data(
    size: CdbSize,
    req_plist: bool,
    req_glist: bool,
    format: u8,
    alloc_len: u32,
) -> Decision {
    let format_byte = if size == CdbSize::Ten { 2 } else { 1 };
    if !DEFECT_LIST_FORMATS.contains(&format) {
        return reply::fail(Sense::invalid_field_in_cdb(format_byte, Some(2)));
    }
    let mut flags = format;
    if req_plist {
        flags |= PLISTV;
    }
    if req_glist {
        flags |= GLISTV;
    }
    // Header only: (10) has a 2-byte list length, (12) a generation and a 4-byte length.
    let data = if size == CdbSize::Ten {
        vec![0, flags, 0, 0]
    } else {
        vec![0, flags, 0, 0, 0, 0, 0, 0]
    };
    reply::with_data(data, alloc_len)
}

/// REPORT LUNS (SPC-4 6.33): every LUN of the target for SELECT REPORT 00h and 02h, none for
/// 01h (there are no well-known logical units). Clears REPORTED LUNS DATA HAS CHANGED.
pub(crate) fn report_luns(
    nexus: &mut NexusState,
    luns: &[u64],
    select_report: u8,
    alloc_len: u32,
) -> Decision {
    let listed: &[u64] = match select_report {
        SELECT_ALL_LOGICAL_UNITS | SELECT_ALL_ACCESSIBLE => luns,
        SELECT_WELL_KNOWN_LOGICAL_UNITS => &[],
        _ => return reply::fail(Sense::invalid_field_in_cdb(2, None)),
    };
    nexus.pending.clear(UnitAttention::ReportedLunsDataChanged);
    let list_len_bytes = listed.len().saturating_mul(LUN_ENTRY_LEN_BYTES);
    // Build no more than the initiator can receive; the LUN LIST LENGTH still counts all.
    let built_len = (REPORT_LUNS_HEADER_LEN_BYTES + list_len_bytes)
        .min(usize::try_from(alloc_len).unwrap_or(usize::MAX));
    let mut data = Vec::with_capacity(built_len);
    data.extend_from_slice(
        &u32::try_from(list_len_bytes)
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    data.extend_from_slice(&[0; 4]);
    for lun in listed {
        if data.len() >= built_len {
            break;
        }
        data.extend_from_slice(&encode_lun(*lun));
    }
    reply::with_data(data, alloc_len)
}

#[cfg(test)]
#[path = "service_tests.rs"]
mod tests;
