//! The order in which a command is judged: LUN mapped or not, pending unit attention, CDB
//! decoding, then the handler of the command.

use lunar_wire::scsi::{decode, opcode, Asc, Cdb, Sense, SenseKey};

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
    let Some(lu) = lu else {
        return decide_unmapped(luns, nexus, cdb);
    };
    if !passes_unit_attention(cdb.first().copied()) {
        if let Some(attention) = nexus.pending.take() {
            return reply::fail(attention.sense());
        }
    }
    let command = match decode(cdb) {
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
fn decide_unmapped(luns: &[u64], nexus: &mut NexusState, cdb: &[u8]) -> Decision {
    if !passes_unit_attention(cdb.first().copied()) {
        return reply::fail(LOGICAL_UNIT_NOT_SUPPORTED);
    }
    match decode(cdb) {
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
