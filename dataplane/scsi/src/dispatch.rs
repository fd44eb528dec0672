//! The order in which a command is judged: LUN mapped or not, unit attentions (picked up from
//! the logical unit's shared state, then reported), CDB decoding, reservation conflicts, a
//! missing removable medium, then the handler of the command.

use lunar_wire::scsi::{
    decode, opcode, status, Asc, Cdb, CdbError, Sense, SenseKey, CDB_MAX_LEN_BYTES,
};

use crate::model::{ControlKind, ControlRequest, Decision, LogicalUnit, NexusState};
use crate::pr::{access_class, read_in};
use crate::{block, compare, copy, inquiry, mode, opcodes, provisioning, reply, service};

const LOGICAL_UNIT_NOT_SUPPORTED: Sense =
    Sense::new(SenseKey::IllegalRequest, Asc::LOGICAL_UNIT_NOT_SUPPORTED);
const MEDIUM_NOT_PRESENT: Sense = Sense::new(SenseKey::NotReady, Asc::MEDIUM_NOT_PRESENT);

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
        (Decision::Reply(mut reply), Ok(command)) if reply.status != status::GOOD => {
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
        Cdb::Read(rw) | Cdb::Write(rw) | Cdb::OrWrite(rw) | Cdb::WriteAtomic(rw) => {
            blocks_len(rw.blocks)
        }
        Cdb::WriteAndVerify(verify) => blocks_len(verify.blocks),
        Cdb::Verify(verify) if verify.bytchk != 0 => blocks_len(verify.blocks),
        Cdb::WriteSame(ws) if !ws.ndob => blocks_len(1),
        Cdb::CompareAndWrite(caw) => blocks_len(2 * u32::from(caw.blocks)),
        Cdb::Inquiry { alloc_len, .. } | Cdb::ModeSense { alloc_len, .. } => u32::from(alloc_len),
        Cdb::RequestSense { alloc_len, .. } => u32::from(alloc_len),
        Cdb::PersistentReserveIn { alloc_len, .. } => u32::from(alloc_len),
        Cdb::Unmap { param_len, .. } => u32::from(param_len),
        Cdb::PersistentReserveOut { param_len, .. } | Cdb::ExtendedCopy { param_len } => param_len,
        Cdb::ReceiveCopyResults { alloc_len, .. } => alloc_len,
        Cdb::ReadCapacity10 { .. } => service::READ_CAPACITY_10_LEN_BYTES,
        Cdb::ReadCapacity16 { alloc_len, .. }
        | Cdb::GetLbaStatus { alloc_len, .. }
        | Cdb::ReadDefectData { alloc_len, .. }
        | Cdb::ReportLuns { alloc_len, .. }
        | Cdb::ReportSupportedOperationCodes { alloc_len, .. } => alloc_len,
        Cdb::TestUnitReady
        | Cdb::Verify(_)
        | Cdb::WriteSame(_)
        | Cdb::StartStopUnit { .. }
        | Cdb::PreventAllowMediumRemoval { .. }
        | Cdb::SynchronizeCache { .. }
        | Cdb::PreFetch { .. }
        | Cdb::Reserve { .. }
        | Cdb::Release { .. } => 0,
    }
}

/// Commands that need the medium in the drive (refused with NOT READY / MEDIUM NOT PRESENT
/// while a removable medium is out).
fn needs_medium(command: &Cdb) -> bool {
    matches!(
        command,
        Cdb::TestUnitReady
            | Cdb::Read(_)
            | Cdb::Write(_)
            | Cdb::WriteAndVerify(_)
            | Cdb::Verify(_)
            | Cdb::WriteSame(_)
            | Cdb::Unmap { .. }
            | Cdb::GetLbaStatus { .. }
            | Cdb::CompareAndWrite(_)
            | Cdb::OrWrite(_)
            | Cdb::WriteAtomic(_)
            | Cdb::ReadCapacity10 { .. }
            | Cdb::ReadCapacity16 { .. }
            | Cdb::SynchronizeCache { .. }
            | Cdb::PreFetch { .. }
            | Cdb::ExtendedCopy { .. }
    )
}

/// A command for the control thread, carrying its CDB.
fn control(kind: ControlKind, cdb: &[u8], transfer_len_bytes: u32) -> Decision {
    let mut bytes = [0u8; CDB_MAX_LEN_BYTES];
    let len = cdb.len().min(CDB_MAX_LEN_BYTES);
    bytes[..len].copy_from_slice(&cdb[..len]);
    Decision::Control(ControlRequest {
        kind,
        cdb: bytes,
        transfer_len_bytes,
    })
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
    let shared = &*lu.reservations;
    nexus.sync_events(shared);
    if !passes_unit_attention(cdb.first().copied()) {
        if let Some(attention) = nexus.pending.take() {
            return reply::fail(attention.sense());
        }
    }
    let command = match decoded {
        Ok(command) => command,
        Err(error) => return reply::fail(error.sense()),
    };
    if let Some(class) = access_class(&command) {
        if !shared.is_unreserved() && shared.conflicts(&nexus.identity, class) {
            return reply::reservation_conflict();
        }
    }
    if lu.removable && !shared.medium.loaded && needs_medium(&command) {
        return reply::fail(MEDIUM_NOT_PRESENT);
    }
    match command {
        Cdb::TestUnitReady => reply::ok(0),
        Cdb::RequestSense { desc, alloc_len } => service::request_sense(nexus, desc, alloc_len),
        Cdb::Inquiry {
            evpd,
            page_code,
            alloc_len,
        } => inquiry::inquiry(Some(lu), Some(nexus.identity()), evpd, page_code, alloc_len),
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
        Cdb::WriteSame(ws) => provisioning::write_same(lu, &ws, expected_len_bytes, data_out),
        Cdb::Unmap { param_len, .. } => {
            provisioning::unmap(lu, param_len, expected_len_bytes, data_out)
        }
        Cdb::GetLbaStatus { lba, alloc_len } => provisioning::get_lba_status(lu, lba, alloc_len),
        Cdb::CompareAndWrite(caw) => {
            compare::compare_and_write(lu, &caw, expected_len_bytes, data_out)
        }
        Cdb::OrWrite(rw) => compare::or_write(lu, &rw, expected_len_bytes, data_out),
        Cdb::WriteAtomic(rw) => compare::write_atomic(lu, &rw, expected_len_bytes, data_out),
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
            loej,
            start,
        } => {
            let decision = service::start_stop_unit(
                lu,
                power_condition,
                power_condition_modifier,
                no_flush,
                start,
            );
            let valid = !matches!(&decision, Decision::Reply(r) if r.status != status::GOOD);
            if valid && lu.removable && loej && power_condition == 0 {
                control(ControlKind::LoadEject, cdb, 0)
            } else if lu.removable && !shared.medium.loaded && valid {
                reply::ok(0) // No medium, no cache of it to write back.
            } else {
                decision
            }
        }
        Cdb::PreventAllowMediumRemoval { prevent } => {
            let decision = service::prevent_allow(prevent);
            let valid = !matches!(&decision, Decision::Reply(r) if r.status != status::GOOD);
            if valid && lu.removable {
                control(ControlKind::MediumRemoval, cdb, 0)
            } else {
                decision
            }
        }
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
            lu,
            rctd,
            reporting_options,
            requested_opcode,
            requested_service_action,
            alloc_len,
        ),
        Cdb::PersistentReserveIn { alloc_len, .. } => {
            match read_in(shared, nexus.identity(), cdb) {
                Ok(data) => reply::with_data(data, u32::from(alloc_len)),
                Err(refusal) => Decision::Reply(refusal.reply(u32::from(alloc_len))),
            }
        }
        Cdb::PersistentReserveOut { param_len, .. } => {
            control(ControlKind::PersistentReserveOut, cdb, param_len)
        }
        Cdb::ExtendedCopy { param_len } => {
            copy::extended_copy(lu, nexus, param_len, expected_len_bytes, data_out)
        }
        Cdb::ReceiveCopyResults {
            service_action,
            list_id,
            alloc_len,
        } => copy::receive_copy_results(lu, nexus, service_action, list_id, alloc_len),
        Cdb::Reserve { .. } => control(ControlKind::Reserve, cdb, 0),
        Cdb::Release { .. } => control(ControlKind::Release, cdb, 0),
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
        }) => inquiry::inquiry(None, None, evpd, page_code, alloc_len),
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
