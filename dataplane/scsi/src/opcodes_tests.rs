//! Tests of REPORT SUPPORTED OPERATION CODES: all commands, one command, service actions,
//! timeouts, and what depends on the logical unit (UNMAP, WRITE ATOMIC (16), WRITE SAME's
//! UNMAP bit).

use super::*;
use crate::test_support::{data_of, lu, sense_of, thick_lu};
use lunar_wire::scsi::Asc;

fn descriptors(data: &[u8], len: usize) -> Vec<&[u8]> {
    data[4..].chunks(len).collect()
}

#[test]
fn all_commands_lists_the_supported_table() {
    let data = data_of(report_supported_operation_codes(
        &lu(),
        false,
        0,
        0,
        0,
        65535,
    ));
    let len = u32::from_be_bytes([data[0], data[1], data[2], data[3]]) as usize;
    // Every command but WRITE ATOMIC (16): the test LU has no atomic write limit.
    assert_eq!(len, (COMMANDS.len() - 1) * 8);
    assert_eq!(data.len(), 4 + len);
    let listed = descriptors(&data, 8);
    let read10 = listed.iter().find(|d| d[0] == 0x28).expect("READ (10)");
    assert_eq!(*read10, &[0x28, 0, 0, 0, 0, 0, 0, 10]);
    let rc16 = listed
        .iter()
        .find(|d| d[0] == 0x9e && d[3] == 0x10)
        .expect("READ CAPACITY (16) listed");
    assert_eq!(*rc16, &[0x9e, 0, 0, 0x10, 0, DESCRIPTOR_SERVACTV, 0, 16]);
    for (opcode, service_action) in [(0x9e, 0x12), (0x5e, 0x03), (0x5f, 0x07)] {
        assert!(listed
            .iter()
            .any(|d| d[0] == opcode && d[3] == service_action));
    }
    for opcode in [0x41, 0x42, 0x89, 0x8b, 0x93, 0x16, 0x17, 0x56, 0x57] {
        assert!(listed.iter().any(|d| d[0] == opcode), "{opcode:#x}");
    }
    assert!(!listed.iter().any(|d| d[0] == 0x9c));
}

#[test]
fn support_depends_on_the_logical_unit() {
    let thick = thick_lu();
    let data = data_of(report_supported_operation_codes(
        &thick, false, 0, 0, 0, 65535,
    ));
    assert!(!descriptors(&data, 8).iter().any(|d| d[0] == 0x42));
    let unmap = data_of(report_supported_operation_codes(
        &thick, false, 1, 0x42, 0, 65535,
    ));
    assert_eq!(unmap[1], SUPPORT_NOT_SUPPORTED);
    for (unit, unmap_bit) in [(lu(), 0x08), (thick, 0x00)] {
        let ws = data_of(report_supported_operation_codes(
            &unit, false, 1, 0x93, 0, 65535,
        ));
        assert_eq!(ws[1], SUPPORT_STANDARD);
        assert_eq!(ws[5] & 0x08, unmap_bit);
        assert_eq!(ws[5] & 0x01, 0x01, "NDOB evaluated");
    }
    let atomic = LogicalUnit {
        max_atomic_transfer_blocks: 8,
        ..lu()
    };
    let data = data_of(report_supported_operation_codes(
        &atomic, false, 1, 0x9c, 0, 65535,
    ));
    assert_eq!(&data[..4], &[0, SUPPORT_STANDARD, 0, 16]);
    assert_eq!(data[5] & 0x18, 0x18, "DPO and FUA evaluated");
    let data = data_of(report_supported_operation_codes(
        &lu(),
        false,
        1,
        0x9c,
        0,
        65535,
    ));
    assert_eq!(data[1], SUPPORT_NOT_SUPPORTED);
}

#[test]
fn all_commands_with_timeouts() {
    let data = data_of(report_supported_operation_codes(
        &lu(),
        true,
        0,
        0,
        0,
        65535,
    ));
    assert_eq!(data.len(), 4 + (COMMANDS.len() - 1) * 20);
    assert_eq!(data[4 + 5] & DESCRIPTOR_CTDP, DESCRIPTOR_CTDP);
    assert_eq!(&data[12..14], &[0, 0x0a]);
}

#[test]
fn one_command_reports_usage_with_dpo_fua() {
    let data = data_of(report_supported_operation_codes(
        &lu(),
        false,
        1,
        0x28,
        0,
        65535,
    ));
    assert_eq!(&data[..4], &[0, SUPPORT_STANDARD, 0, 10]);
    assert_eq!(data[4], 0x28);
    assert_eq!(data[5] & 0x18, 0x18, "DPO and FUA evaluated");
    assert_eq!(data.len(), 14);
    // VERIFY (10) and WRITE AND VERIFY (10) evaluate DPO; COMPARE AND WRITE and ORWRITE
    // DPO and FUA.
    for opcode in [0x2f, 0x2e, 0x89, 0x8b] {
        let data = data_of(report_supported_operation_codes(
            &lu(),
            false,
            1,
            opcode,
            0,
            65535,
        ));
        assert_eq!(data[5] & 0x10, 0x10, "{opcode:#x}");
    }
}

#[test]
fn one_command_unsupported() {
    let data = data_of(report_supported_operation_codes(
        &lu(),
        false,
        1,
        0x04,
        0,
        65535,
    ));
    assert_eq!(data, vec![0, SUPPORT_NOT_SUPPORTED, 0, 0]);
}

#[test]
fn service_action_rules() {
    // Opcode with service actions asked without one, and the other way round.
    let sense = sense_of(report_supported_operation_codes(
        &lu(),
        false,
        1,
        0x9e,
        0x10,
        65535,
    ));
    assert_eq!(sense.asc, Asc::INVALID_FIELD_IN_CDB);
    let sense = sense_of(report_supported_operation_codes(
        &lu(),
        false,
        2,
        0x28,
        0,
        65535,
    ));
    assert_eq!(sense.asc, Asc::INVALID_FIELD_IN_CDB);
    let data = data_of(report_supported_operation_codes(
        &lu(),
        true,
        2,
        0x9e,
        0x10,
        65535,
    ));
    assert_eq!(data[1], ONE_COMMAND_CTDP | SUPPORT_STANDARD);
    assert_eq!(&data[4..6], &[0x9e, 0x10]);
    assert_eq!(data.len(), 4 + 16 + 12);
    let data = data_of(report_supported_operation_codes(
        &lu(),
        false,
        2,
        0x9e,
        0x13,
        65535,
    ));
    assert_eq!(data[1], SUPPORT_NOT_SUPPORTED);
    let data = data_of(report_supported_operation_codes(
        &lu(),
        false,
        2,
        0x5f,
        0x05,
        65535,
    ));
    assert_eq!(&data[..6], &[0, SUPPORT_STANDARD, 0, 10, 0x5f, 0x05]);
    let data = data_of(report_supported_operation_codes(
        &lu(),
        false,
        3,
        0x28,
        0,
        65535,
    ));
    assert_eq!(data[1], SUPPORT_STANDARD);
    let sense = sense_of(report_supported_operation_codes(
        &lu(),
        false,
        5,
        0x28,
        0,
        65535,
    ));
    assert_eq!(sense.field_pointer.map(|p| p.byte), Some(2));
}

#[test]
fn allocation_length_truncates() {
    let data = data_of(report_supported_operation_codes(&lu(), false, 0, 0, 0, 10));
    assert_eq!(data.len(), 10);
}
