//! REPORT SUPPORTED OPERATION CODES (SPC-4 6.35): every command of the wire command table the
//! logical unit supports (UNMAP only when thin, WRITE ATOMIC (16) only with an atomic write
//! limit), and its CDB usage data: the table's mask (the bits the decoder accepts), without
//! the UNMAP bit of WRITE SAME on a fully provisioned logical unit.

use lunar_wire::scsi::command_table::has_service_actions;
use lunar_wire::scsi::{command_info, opcode, CommandInfo, Sense, COMMANDS};

use crate::model::{Decision, LogicalUnit};
use crate::reply;

/// WRITE SAME byte 1: the UNMAP bit.
const WRITE_SAME_UNMAP: u8 = 0x08;

/// Whether `lu` supports the command `info` describes.
fn supported(lu: &LogicalUnit, info: &CommandInfo) -> bool {
    match info.opcode {
        opcode::UNMAP => lu.thin_provisioning,
        opcode::WRITE_ATOMIC_16 => lu.max_atomic_transfer_blocks > 0,
        _ => true,
    }
}

/// REPORTING OPTIONS values.
const REPORT_ALL: u8 = 0b000;
const REPORT_OPCODE: u8 = 0b001;
const REPORT_OPCODE_SERVICE_ACTION: u8 = 0b010;
const REPORT_OPCODE_MAYBE_SERVICE_ACTION: u8 = 0b011;

const SUPPORT_NOT_SUPPORTED: u8 = 0b001;
const SUPPORT_STANDARD: u8 = 0b011;
const ONE_COMMAND_CTDP: u8 = 0x80;
const DESCRIPTOR_CTDP: u8 = 0x02;
const DESCRIPTOR_SERVACTV: u8 = 0x01;

/// Command timeouts descriptor: length 0Ah, nominal time unspecified, recommended 30 s.
const TIMEOUTS_DESCRIPTOR_LEN: u16 = 0x0a;
const NOMINAL_TIMEOUT_S: u32 = 0;
const RECOMMENDED_TIMEOUT_S: u32 = 30;

fn push_timeouts(out: &mut Vec<u8>) {
    out.extend_from_slice(&TIMEOUTS_DESCRIPTOR_LEN.to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&NOMINAL_TIMEOUT_S.to_be_bytes());
    out.extend_from_slice(&RECOMMENDED_TIMEOUT_S.to_be_bytes());
}

pub(crate) fn report_supported_operation_codes(
    lu: &LogicalUnit,
    rctd: bool,
    reporting_options: u8,
    requested_opcode: u8,
    requested_service_action: u16,
    alloc_len: u32,
) -> Decision {
    let service_action = u8::try_from(requested_service_action).ok();
    let found = match reporting_options {
        REPORT_ALL => return reply::with_data(all_commands(lu, rctd), alloc_len),
        REPORT_OPCODE => {
            if has_service_actions(requested_opcode) {
                return reply::fail(Sense::invalid_field_in_cdb(3, None));
            }
            command_info(requested_opcode, None)
        }
        REPORT_OPCODE_SERVICE_ACTION => {
            if !has_service_actions(requested_opcode) {
                return reply::fail(Sense::invalid_field_in_cdb(3, None));
            }
            service_action.and_then(|sa| command_info(requested_opcode, Some(sa)))
        }
        REPORT_OPCODE_MAYBE_SERVICE_ACTION => {
            if has_service_actions(requested_opcode) {
                service_action.and_then(|sa| command_info(requested_opcode, Some(sa)))
            } else if requested_service_action == 0 {
                command_info(requested_opcode, None)
            } else {
                None
            }
        }
        _ => return reply::fail(Sense::invalid_field_in_cdb(2, Some(2))),
    };
    let found = found.filter(|info| supported(lu, info));
    reply::with_data(one_command(lu, found, rctd), alloc_len)
}

/// The all-commands parameter data: command data length, then one descriptor per command.
fn all_commands(lu: &LogicalUnit, rctd: bool) -> Vec<u8> {
    let descriptor_len = if rctd { 20 } else { 8 };
    let mut data = Vec::with_capacity(4 + COMMANDS.len() * descriptor_len);
    data.extend_from_slice(&[0; 4]);
    for info in COMMANDS.iter().filter(|info| supported(lu, info)) {
        data.push(info.opcode);
        data.push(0);
        data.extend_from_slice(&u16::from(info.service_action.unwrap_or(0)).to_be_bytes());
        data.push(0);
        let mut flags = 0;
        if rctd {
            flags |= DESCRIPTOR_CTDP;
        }
        if info.service_action.is_some() {
            flags |= DESCRIPTOR_SERVACTV;
        }
        data.push(flags);
        data.extend_from_slice(&(info.cdb_len() as u16).to_be_bytes());
        if rctd {
            push_timeouts(&mut data);
        }
    }
    let command_data_len = (data.len() - 4) as u32;
    data[0..4].copy_from_slice(&command_data_len.to_be_bytes());
    data
}

/// The one-command parameter data: support, CDB size and usage data (and timeouts).
fn one_command(lu: &LogicalUnit, found: Option<&CommandInfo>, rctd: bool) -> Vec<u8> {
    let mut data = Vec::with_capacity(4 + 16 + 12);
    let Some(info) = found else {
        data.extend_from_slice(&[0, SUPPORT_NOT_SUPPORTED, 0, 0]);
        return data;
    };
    let mut support = SUPPORT_STANDARD;
    if rctd {
        support |= ONE_COMMAND_CTDP;
    }
    data.extend_from_slice(&[0, support]);
    data.extend_from_slice(&(info.cdb_len() as u16).to_be_bytes());
    let usage_at = data.len();
    data.extend_from_slice(info.usage);
    let write_same = matches!(info.opcode, opcode::WRITE_SAME_10 | opcode::WRITE_SAME_16);
    if write_same && !lu.thin_provisioning {
        data[usage_at + 1] &= !WRITE_SAME_UNMAP;
    }
    if rctd {
        push_timeouts(&mut data);
    }
    data
}

#[cfg(test)]
#[path = "opcodes_tests.rs"]
mod tests;
