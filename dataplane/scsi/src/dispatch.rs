//! The order in which a command is judged: LUN mapped or not, pending unit attention, CDB
//! decoding, then the handler of the command.

use lunar_wire::scsi::{decode, opcode, status, Asc, Cdb, CdbError, Sense, SenseKey};

use crate::model::{Decision, LogicalUnit, NexusState};
use crate::{block, inquiry, mode, opcodes, reply, service};

const LOGICAL_UNIT_NOT_SUPPORTED: Sense =
    Sense::new(SenseKey::IllegalRequest, Asc::LOGICAL_UNIT_NOT_SUPPORTED);

/// Commands that neither report nor clear a pending unit attention (SPC-4 5.14: INQUIRY and
/// REPORT LUNS are executed; REQUEST SENSE reports the condition as its data).
fn passes_unit_attention(opcode: Option<u8>) -> bool {
    matches!(
        opcode,
        Some(opcode::INQUIRY | opcode::REPORT_LUNS | opcode::REQUEST_SENSE)
    )
}

pub(crate) fn decide(
    lu: Option<&LogicalUnit>,
    luns: &[u64],
    nexus: &mut NexusState,
    cdb: &[u8],
    expected_len_bytes: u32,
    data_out: &[u8],
) -> Decision {
    let decoded = decode(cdb);
    let decision = match lu {
        None => decide_unmapped(luns, nexus, cdb, decoded),
        Some(lu) => decide_mapped(lu, luns, nexus, cdb, decoded, expected_len_bytes, data_out),
    };
    // A refused command still reports what its CDB asked for, so that the transport's
    // residual tells the initiator how much of that did not move.
    match (decision, decoded) {
        (Decision::Reply(mut reply), Ok(command)) if reply.status == status::CHECK_CONDITION => {
            reply.transfer_len_bytes = asked_len_bytes(&command, lu);
            Decision::Reply(reply)
        }
        (decision, _) => decision,
    }
}

/// Bytes the CDB asks to transfer, in either direction.
fn asked_len_bytes(command: &Cdb, lu: Option<&LogicalUnit>) -> u32 {
    let block_size = lu.map_or(0, |lu| u64::from(lu.block_size));
    let blocks_len =
        |blocks: u32| u32::try_from(u64::from(blocks) * block_size).unwrap_or(u32::MAX);
    match *command {
        Cdb::Read(rw) | Cdb::Write(rw) => blocks_len(rw.blocks),
        Cdb::WriteAndVerify(verify) => blocks_len(verify.blocks),
        Cdb::Verify(verify) if verify.bytchk != 0 => blocks_len(verify.blocks),
        Cdb::Inquiry { alloc_len, .. } | Cdb::ModeSense { alloc_len, .. } => u32::from(alloc_len),
        Cdb::RequestSense { alloc_len, .. } => u32::from(alloc_len),
        Cdb::ReadCapacity10 { .. } => service::READ_CAPACITY_10_LEN_BYTES,
        Cdb::ReadCapacity16 { alloc_len, .. }
        | Cdb::ReadDefectData { alloc_len, .. }
        | Cdb::ReportLuns { alloc_len, .. }
        | Cdb::ReportSupportedOperationCodes { alloc_len, .. } => alloc_len,
        Cdb::TestUnitReady
        | Cdb::Verify(_)
        | Cdb::StartStopUnit { .. }
        | Cdb::PreventAllowMediumRemoval { .. }
        | Cdb::SynchronizeCache { .. }
        | Cdb::PreFetch { .. } => 0,
    }
}

fn decide_mapped(
    lu: &LogicalUnit,
    luns: &[u64],
    nexus: &mut NexusState,
    cdb: &[u8],
    decoded: Result<Cdb, CdbError>,
    expected_len_bytes: u32,
    data_out: &[u8],
) -> Decision {
    if !passes_unit_attention(cdb.first().copied()) {
        if let Some(attention) = nexus.pending.take() {
            return reply::fail(attention.sense());
        }
    }
    let command = match decoded {
        Ok(command) => command,
        Err(error) => return reply::fail(error.sense()),
    };
    match command {
        Cdb::TestUnitReady => reply::ok(0),
        Cdb::RequestSense { desc, alloc_len } => service::request_sense(nexus, desc, alloc_len),
        Cdb::Inquiry {
            evpd,
            page_code,
            alloc_len,
        } => inquiry::inquiry(Some(lu), evpd, page_code, alloc_len),
        Cdb::ModeSense {
            size,
            dbd,
            llbaa,
            page_control,
            page_code,
            subpage_code,
            alloc_len,
        } => mode::mode_sense(
            lu,
            &mode::ModeSenseRequest {
                size,
                dbd,
                llbaa,
                page_control,
                page_code,
                subpage_code,
                alloc_len,
            },
        ),
        Cdb::ReadCapacity10 { lba, pmi } => service::read_capacity_10(lu, lba, pmi),
        Cdb::ReadCapacity16 {
            lba,
            pmi,
            alloc_len,
        } => service::read_capacity_16(lu, lba, pmi, alloc_len),
        Cdb::Read(rw) => block::read(lu, &rw, expected_len_bytes),
        Cdb::Write(rw) => block::write(lu, &rw, expected_len_bytes, data_out),
        Cdb::Verify(verify) => block::verify(lu, &verify, expected_len_bytes, data_out),
        Cdb::WriteAndVerify(verify) => {
            block::write_and_verify(lu, &verify, expected_len_bytes, data_out)
        }
        Cdb::SynchronizeCache {
            size,
            lba,
            blocks,
            immed: _,
        } => block::synchronize_cache(lu, size, lba, blocks),
        Cdb::PreFetch {
            size: _,
            lba,
            blocks,
            immed: _,
        } => block::pre_fetch(lu, lba, blocks),
        Cdb::StartStopUnit {
            immed: _,
            power_condition_modifier,
            power_condition,
            no_flush,
            loej: _,
            start,
        } => service::start_stop_unit(
            lu,
            power_condition,
            power_condition_modifier,
            no_flush,
            start,
        ),
        Cdb::PreventAllowMediumRemoval { prevent } => service::prevent_allow(prevent),
        Cdb::ReadDefectData {
            size,
            req_plist,
            req_glist,
            format,
            address_descriptor_index: _,
            alloc_len,
        } => service::read_defect_data(size, req_plist, req_glist, format, alloc_len),
        Cdb::ReportLuns {
            select_report,
            alloc_len,
        } => service::report_luns(nexus, luns, select_report, alloc_len),
        Cdb::ReportSupportedOperationCodes {
            rctd,
            reporting_options,
            requested_opcode,
            requested_service_action,
            alloc_len,
        } => opcodes::report_supported_operation_codes(
            rctd,
            reporting_options,
            requested_opcode,
            requested_service_action,
            alloc_len,
        ),
    }
}

/// A LUN this target does not map: INQUIRY answers with peripheral qualifier 011b, REPORT
/// LUNS lists the target's LUNs, REQUEST SENSE returns LOGICAL UNIT NOT SUPPORTED as its data,
/// and every other command fails with LOGICAL UNIT NOT SUPPORTED.
fn decide_unmapped(
    luns: &[u64],
    nexus: &mut NexusState,
    cdb: &[u8],
    decoded: Result<Cdb, CdbError>,
) -> Decision {
    if !passes_unit_attention(cdb.first().copied()) {
        return reply::fail(LOGICAL_UNIT_NOT_SUPPORTED);
    }
    match decoded {
        Ok(Cdb::Inquiry {
            evpd,
            page_code,
            alloc_len,
        }) => inquiry::inquiry(None, evpd, page_code, alloc_len),
        Ok(Cdb::ReportLuns {
            select_report,
            alloc_len,
        }) => service::report_luns(nexus, luns, select_report, alloc_len),
        Ok(Cdb::RequestSense { desc, alloc_len }) => {
            service::sense_data_reply(LOGICAL_UNIT_NOT_SUPPORTED, desc, alloc_len)
        }
        Ok(_) => reply::fail(LOGICAL_UNIT_NOT_SUPPORTED),
        Err(error) => reply::fail(error.sense()),
    }
}

#[cfg(test)]
#[path = "dispatch_tests.rs"]
mod tests;
