//! REPORT SUPPORTED OPERATION CODES (SPC-4 6.35): every command of the wire command table is
//! supported, and its CDB usage data is the table's mask (the bits the decoder accepts).

use lunar_wire::scsi::command_table::has_service_actions;
use lunar_wire::scsi::{command_info, CommandInfo, Sense, COMMANDS};

use crate::model::Decision;
use crate::reply;

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
    rctd: bool,
    reporting_options: u8,
    requested_opcode: u8,
    requested_service_action: u16,
    alloc_len: u32,
) -> Decision {
    let service_action = u8::try_from(requested_service_action).ok();
    let found = match reporting_options {
        REPORT_ALL => return reply::with_data(all_commands(rctd), alloc_len),
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
    reply::with_data(one_command(found, rctd), alloc_len)
}

/// The all-commands parameter data: command data length, then one descriptor per command.
fn all_commands(rctd: bool) -> Vec<u8> {
    let descriptor_len = if rctd { 20 } else { 8 };
    let mut data = Vec::with_capacity(4 + COMMANDS.len() * descriptor_len);
    data.extend_from_slice(&[0; 4]);
    for info in COMMANDS {
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
fn one_command(found: Option<&CommandInfo>, rctd: bool) -> Vec<u8> {
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
    data.extend_from_slice(info.usage);
    if rctd {
        push_timeouts(&mut data);
    }
    data
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{data_of, sense_of};
    use lunar_wire::scsi::Asc;

    #[test]
    fn all_commands_lists_the_table() {
        let data = data_of(report_supported_operation_codes(false, 0, 0, 0, 65535));
        let len = u32::from_be_bytes([data[0], data[1], data[2], data[3]]) as usize;
        assert_eq!(len, COMMANDS.len() * 8);
        assert_eq!(data.len(), 4 + len);
        let read10 = data[4..]
            .chunks(8)
            .find(|d| d[0] == 0x28)
            .expect("READ (10) listed");
        assert_eq!(read10, &[0x28, 0, 0, 0, 0, 0, 0, 10]);
        let rc16 = data[4..]
            .chunks(8)
            .find(|d| d[0] == 0x9e)
            .expect("READ CAPACITY (16) listed");
        assert_eq!(rc16, &[0x9e, 0, 0, 0x10, 0, DESCRIPTOR_SERVACTV, 0, 16]);
    }

    #[test]
    fn all_commands_with_timeouts() {
        let data = data_of(report_supported_operation_codes(true, 0, 0, 0, 65535));
        assert_eq!(data.len(), 4 + COMMANDS.len() * 20);
        assert_eq!(data[4 + 5] & DESCRIPTOR_CTDP, DESCRIPTOR_CTDP);
        assert_eq!(&data[12..14], &[0, 0x0a]);
    }

    #[test]
    fn one_command_reports_usage_with_dpo_fua() {
        let data = data_of(report_supported_operation_codes(false, 1, 0x28, 0, 65535));
        assert_eq!(&data[..4], &[0, SUPPORT_STANDARD, 0, 10]);
        assert_eq!(data[4], 0x28);
        assert_eq!(data[5] & 0x18, 0x18, "DPO and FUA evaluated");
        assert_eq!(data.len(), 14);
        // VERIFY (10) and WRITE AND VERIFY (10) evaluate DPO.
        for opcode in [0x2f, 0x2e] {
            let data = data_of(report_supported_operation_codes(false, 1, opcode, 0, 65535));
            assert_eq!(data[5] & 0x10, 0x10);
        }
    }

    #[test]
    fn one_command_unsupported() {
        let data = data_of(report_supported_operation_codes(false, 1, 0x41, 0, 65535));
        assert_eq!(data, vec![0, SUPPORT_NOT_SUPPORTED, 0, 0]);
    }

    #[test]
    fn service_action_rules() {
        // Opcode with service actions asked without one, and the other way round.
        let sense = sense_of(report_supported_operation_codes(
            false, 1, 0x9e, 0x10, 65535,
        ));
        assert_eq!(sense.asc, Asc::INVALID_FIELD_IN_CDB);
        let sense = sense_of(report_supported_operation_codes(false, 2, 0x28, 0, 65535));
        assert_eq!(sense.asc, Asc::INVALID_FIELD_IN_CDB);
        let data = data_of(report_supported_operation_codes(true, 2, 0x9e, 0x10, 65535));
        assert_eq!(data[1], ONE_COMMAND_CTDP | SUPPORT_STANDARD);
        assert_eq!(&data[4..6], &[0x9e, 0x10]);
        assert_eq!(data.len(), 4 + 16 + 12);
        let data = data_of(report_supported_operation_codes(
            false, 2, 0x9e, 0x12, 65535,
        ));
        assert_eq!(data[1], SUPPORT_NOT_SUPPORTED);
        let data = data_of(report_supported_operation_codes(false, 3, 0x28, 0, 65535));
        assert_eq!(data[1], SUPPORT_STANDARD);
        let sense = sense_of(report_supported_operation_codes(false, 5, 0x28, 0, 65535));
        assert_eq!(sense.field_pointer.map(|p| p.byte), Some(2));
    }

    #[test]
    fn allocation_length_truncates() {
        let data = data_of(report_supported_operation_codes(false, 0, 0, 0, 10));
        assert_eq!(data.len(), 10);
    }
}
