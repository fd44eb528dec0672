//! SCSI commands: Data-In generation, SCSI Response with sense, residuals, immediate,
//! unsolicited and solicited write data, R2T pacing, DataSN/offset checks (as libiscsi's
//! iSCSIdatasn and iSCSIResiduals suites expect), refusals and buffer reuse.

use lunar_wire::iscsi::codes::reject_reason;
use lunar_wire::iscsi::target::residual_flags;
use lunar_wire::iscsi::{Opcode, RESERVED_TAG};

use super::initiator::*;
use crate::connection::{Action, ConnConfig};
use crate::tasks::MAX_COMMAND_DATA_OUT_BYTES;

fn logged_in(extra: &[(&str, &str)]) -> Initiator {
    let mut ini = Initiator::new(ConnConfig::default());
    ini.login_with(extra);
    ini.take_actions();
    ini
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

fn residual_count(pdu: &Received) -> u32 {
    pdu.u32_at(44)
}

#[test]
fn read_returns_data_in_with_status() {
    let mut ini = logged_in(&[]);
    let itt = ini.itt();
    let cmd = ini.scsi_command(itt, &read10(1), true, false, true, 512, &[]);
    ini.send(&cmd);
    let exec = ini.expect_execute();
    assert_eq!(exec.task.0, itt);
    assert_eq!(exec.lun, 0);
    assert_eq!(&exec.cdb[..10], &read10(1));
    assert_eq!(exec.cdb.len(), 16);
    assert_eq!(exec.expected_len_bytes, 512);
    assert!(exec.read && !exec.write);
    assert!(exec.data_out.is_empty());
    assert!(ini.recv().is_empty(), "nothing until completion");

    let data = pattern(512);
    ini.complete(itt, 0, &[], &data, 512);
    let pdu = ini.recv_one();
    assert!(pdu.is(Opcode::DataIn));
    assert_eq!(pdu.flags(), 0x81, "F and S, no residual");
    assert_eq!(pdu.bhs[3], 0, "GOOD");
    assert_eq!(pdu.itt(), itt);
    assert_eq!(pdu.ttt(), RESERVED_TAG);
    assert_eq!(pdu.u32_at(36), 0, "DataSN");
    assert_eq!(pdu.u32_at(40), 0, "offset");
    assert_eq!(residual_count(&pdu), 0);
    assert_eq!(pdu.data, data);
}

#[test]
fn data_in_is_split_by_the_initiators_segment_length() {
    let mut ini = logged_in(&[("MaxRecvDataSegmentLength", "8192")]);
    let itt = ini.itt();
    let cmd = ini.scsi_command(itt, &read10(40), true, false, true, 20_000, &[]);
    ini.send(&cmd);
    ini.expect_execute();
    let data = pattern(20_000);
    ini.complete(itt, 0, &[], &data, 20_000);
    let pdus = ini.recv();
    let sizes: Vec<_> = pdus.iter().map(|p| p.data.len()).collect();
    assert_eq!(sizes, vec![8192, 8192, 3616]);
    for (i, pdu) in pdus.iter().enumerate() {
        assert!(pdu.is(Opcode::DataIn));
        assert_eq!(pdu.u32_at(36), i as u32, "DataSN");
        assert_eq!(pdu.u32_at(40), i as u32 * 8192, "offset");
    }
    assert_eq!(pdus[0].flags(), 0);
    assert_eq!(pdus[1].flags(), 0);
    assert_eq!(pdus[2].flags(), 0x81);
    let joined: Vec<u8> = pdus.iter().flat_map(|p| p.data.clone()).collect();
    assert_eq!(joined, data);
}

#[test]
fn data_in_sequences_end_at_max_burst_length() {
    let mut ini = logged_in(&[
        ("MaxRecvDataSegmentLength", "8192"),
        ("MaxBurstLength", "16384"),
    ]);
    let itt = ini.itt();
    let cmd = ini.scsi_command(itt, &read10(80), true, false, true, 40_000, &[]);
    ini.send(&cmd);
    ini.expect_execute();
    ini.complete(itt, 0, &[], &pattern(40_000), 40_000);
    let flags: Vec<_> = ini.recv().iter().map(|p| p.flags()).collect();
    assert_eq!(flags, vec![0, 0x80, 0, 0x80, 0x81]);
}

#[test]
fn read_residuals_match_libiscsi_read10_residuals() {
    let mut ini = logged_in(&[]);
    // Expected length 0: no data, overflow of one block, status in a SCSI Response.
    let itt = ini.itt();
    let cmd = ini.scsi_command(itt, &read10(1), true, false, true, 0, &[]);
    ini.send(&cmd);
    ini.expect_execute();
    ini.complete(itt, 0, &[], &pattern(512), 512);
    let resp = ini.recv_one();
    assert!(resp.is(Opcode::ScsiResponse));
    assert_eq!(resp.flags(), 0x80 | residual_flags::OVERFLOW);
    assert_eq!((resp.bhs[2], resp.bhs[3]), (0, 0));
    assert_eq!(residual_count(&resp), 512);
    assert!(resp.data.is_empty());

    // Expected length 10000: one block of data, underflow.
    let itt = ini.itt();
    let cmd = ini.scsi_command(itt, &read10(1), true, false, true, 10_000, &[]);
    ini.send(&cmd);
    ini.expect_execute();
    ini.complete(itt, 0, &[], &pattern(512), 512);
    let pdu = ini.recv_one();
    assert_eq!(pdu.flags(), 0x81 | residual_flags::UNDERFLOW);
    assert_eq!(pdu.data.len(), 512);
    assert_eq!(residual_count(&pdu), 10_000 - 512);

    // Expected length 200: 200 bytes, overflow.
    let itt = ini.itt();
    let cmd = ini.scsi_command(itt, &read10(1), true, false, true, 200, &[]);
    ini.send(&cmd);
    ini.expect_execute();
    ini.complete(itt, 0, &[], &pattern(512), 512);
    let pdu = ini.recv_one();
    assert_eq!(pdu.flags(), 0x81 | residual_flags::OVERFLOW);
    assert_eq!(pdu.data, pattern(200));
    assert_eq!(residual_count(&pdu), 312);

    // Two blocks asked, one block expected.
    let itt = ini.itt();
    let cmd = ini.scsi_command(itt, &read10(2), true, false, true, 512, &[]);
    ini.send(&cmd);
    ini.expect_execute();
    ini.complete(itt, 0, &[], &pattern(1024), 1024);
    let pdu = ini.recv_one();
    assert_eq!(pdu.flags(), 0x81 | residual_flags::OVERFLOW);
    assert_eq!(pdu.data.len(), 512);
    assert_eq!(residual_count(&pdu), 512);
}

#[test]
fn short_data_in_reports_underflow() {
    // MODE SENSE(6) with allocation length 255 returning 36 bytes.
    let mut ini = logged_in(&[]);
    let itt = ini.itt();
    let cmd = ini.scsi_command(
        itt,
        &[0x1a, 0, 0x3f, 0, 255, 0],
        true,
        false,
        true,
        255,
        &[],
    );
    ini.send(&cmd);
    ini.expect_execute();
    ini.complete(itt, 0, &[], &pattern(36), 255);
    let pdu = ini.recv_one();
    assert_eq!(pdu.flags(), 0x81 | residual_flags::UNDERFLOW);
    assert_eq!(residual_count(&pdu), 219);
}

#[test]
fn check_condition_goes_in_a_scsi_response_with_sense() {
    let mut ini = logged_in(&[]);
    let itt = ini.itt();
    let cmd = ini.scsi_command(itt, &read10(1), true, false, true, 512, &[]);
    ini.send(&cmd);
    ini.expect_execute();
    let sense = [
        0x70, 0, 0x05, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x21, 0, 0, 0, 0, 0,
    ];
    ini.complete(itt, 0x02, &sense, &[], 512);
    let resp = ini.recv_one();
    assert!(resp.is(Opcode::ScsiResponse));
    assert_eq!((resp.bhs[2], resp.bhs[3]), (0, 0x02));
    assert_eq!(&resp.data[..2], &[0, 18]);
    assert_eq!(&resp.data[2..], &sense);
    assert_eq!(resp.u32_at(36), 0, "ExpDataSN: no Data-In sent");
}

#[test]
fn data_before_a_check_condition_is_sent_without_status() {
    let mut ini = logged_in(&[]);
    let itt = ini.itt();
    let cmd = ini.scsi_command(itt, &read10(2), true, false, true, 1024, &[]);
    ini.send(&cmd);
    ini.expect_execute();
    let sense = [
        0x70, 0, 0x03, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x11, 0, 0, 0, 0, 0,
    ];
    ini.complete(itt, 0x02, &sense, &pattern(512), 1024);
    let pdus = ini.recv();
    assert_eq!(pdus.len(), 2);
    assert!(pdus[0].is(Opcode::DataIn));
    assert_eq!(pdus[0].flags(), 0x80, "F without S");
    assert!(pdus[1].is(Opcode::ScsiResponse));
    assert_eq!(pdus[1].u32_at(36), 1, "ExpDataSN counts the Data-In");
    assert_eq!(residual_count(&pdus[1]), 512);
}

#[test]
fn commands_without_data_get_a_scsi_response() {
    let mut ini = logged_in(&[]);
    let itt = ini.itt();
    let cmd = ini.scsi_command(itt, &[0; 6], false, false, true, 0, &[]);
    ini.send(&cmd);
    let exec = ini.expect_execute();
    assert!(!exec.read && !exec.write);
    ini.complete(itt, 0, &[], &[], 0);
    let resp = ini.recv_one();
    assert!(resp.is(Opcode::ScsiResponse));
    assert_eq!(resp.flags(), 0x80);
    assert_eq!(resp.itt(), itt);
}

#[test]
fn write_with_immediate_data_executes_at_once() {
    let mut ini = logged_in(&[]);
    let itt = ini.itt();
    let data = pattern(4096);
    let cmd = ini.scsi_command(itt, &write10(8), false, true, true, 4096, &data);
    ini.send(&cmd);
    let exec = ini.expect_execute();
    assert!(exec.write);
    assert_eq!(&exec.data_out[..], data);
    assert!(ini.recv().is_empty(), "no R2T needed");
    ini.complete(itt, 0, &[], &[], 4096);
    let resp = ini.recv_one();
    assert!(resp.is(Opcode::ScsiResponse));
    assert_eq!(resp.flags(), 0x80);
    assert_eq!(resp.u32_at(36), 0);
}

/// Answers every R2T in `r2ts` with Data-Out PDUs of `pdu_len` bytes from `data`.
fn answer_r2ts(ini: &mut Initiator, itt: u32, r2ts: &[Received], data: &[u8], pdu_len: usize) {
    for r2t in r2ts {
        assert!(r2t.is(Opcode::ReadyToTransfer), "{r2t:?}");
        let offset = r2t.u32_at(40) as usize;
        let len = r2t.u32_at(44) as usize;
        for (sn, start) in (offset..offset + len).step_by(pdu_len).enumerate() {
            let end = (start + pdu_len).min(offset + len);
            let pdu = ini.data_out(
                itt,
                r2t.ttt(),
                sn as u32,
                start as u32,
                end == offset + len,
                &data[start..end],
            );
            ini.send(&pdu);
        }
    }
}

#[test]
fn write_is_solicited_with_r2t_and_reassembled() {
    let mut ini = logged_in(&[("ImmediateData", "No")]);
    let itt = ini.itt();
    let cmd = ini.scsi_command(itt, &write10(40), false, true, true, 20_000, &[]);
    ini.send(&cmd);
    assert!(ini.take_actions().is_empty());
    let r2t = ini.recv_one();
    assert!(r2t.is(Opcode::ReadyToTransfer));
    assert_eq!(r2t.itt(), itt);
    assert_ne!(r2t.ttt(), RESERVED_TAG);
    assert_eq!(r2t.u32_at(36), 0, "R2TSN");
    assert_eq!(r2t.u32_at(40), 0, "offset");
    assert_eq!(r2t.u32_at(44), 20_000, "desired length");
    let data = pattern(20_000);
    answer_r2ts(&mut ini, itt, &[r2t], &data, 8192);
    let exec = ini.expect_execute();
    assert_eq!(&exec.data_out[..], data);
    ini.complete(itt, 0, &[], &[], 20_000);
    let resp = ini.recv_one();
    assert_eq!(resp.u32_at(36), 1, "ExpDataSN counts the R2T");
}

#[test]
fn r2ts_honour_max_burst_and_max_outstanding() {
    let mut ini = logged_in(&[
        ("ImmediateData", "No"),
        ("MaxBurstLength", "8192"),
        ("FirstBurstLength", "8192"),
        ("MaxOutstandingR2T", "2"),
    ]);
    let itt = ini.itt();
    let cmd = ini.scsi_command(itt, &write10(64), false, true, true, 32_768, &[]);
    ini.send(&cmd);
    let r2ts = ini.recv();
    assert_eq!(r2ts.len(), 2, "two outstanding at most");
    assert_eq!(
        r2ts.iter()
            .map(|r| (r.u32_at(36), r.u32_at(40), r.u32_at(44)))
            .collect::<Vec<_>>(),
        vec![(0, 0, 8192), (1, 8192, 8192)]
    );
    let data = pattern(32_768);
    answer_r2ts(&mut ini, itt, &r2ts[..1], &data, 4096);
    let third = ini.recv_one();
    assert_eq!((third.u32_at(36), third.u32_at(40)), (2, 16_384));
    answer_r2ts(&mut ini, itt, &r2ts[1..], &data, 4096);
    let fourth = ini.recv_one();
    assert_eq!((fourth.u32_at(36), fourth.u32_at(40)), (3, 24_576));
    answer_r2ts(&mut ini, itt, &[third, fourth], &data, 8192);
    assert_eq!(&ini.expect_execute().data_out[..], data);
    ini.complete(itt, 0, &[], &[], 32_768);
    let resp = ini.recv_one();
    assert!(resp.is(Opcode::ScsiResponse));
    assert_eq!(resp.u32_at(36), 4, "ExpDataSN counts every R2T");
}

#[test]
fn immediate_and_unsolicited_data_then_r2t_for_the_rest() {
    let mut ini = logged_in(&[("InitialR2T", "No"), ("FirstBurstLength", "65536")]);
    let itt = ini.itt();
    let data = pattern(100_000);
    let cmd = ini.scsi_command(
        itt,
        &write10(200),
        false,
        true,
        false,
        100_000,
        &data[..8192],
    );
    ini.send(&cmd);
    assert!(
        ini.recv().is_empty(),
        "unsolicited data follows: no R2T yet"
    );
    for (sn, start) in (8192..65_536).step_by(8192).enumerate() {
        let end = start + 8192;
        let pdu = ini.data_out(
            itt,
            RESERVED_TAG,
            sn as u32,
            start as u32,
            end == 65_536,
            &data[start..end],
        );
        ini.send(&pdu);
    }
    let r2t = ini.recv_one();
    assert_eq!(
        (r2t.u32_at(36), r2t.u32_at(40), r2t.u32_at(44)),
        (0, 65_536, 34_464)
    );
    answer_r2ts(&mut ini, itt, &[r2t], &data, 8192);
    assert_eq!(&ini.expect_execute().data_out[..], data);
}

#[test]
fn unsolicited_data_alone_completes_a_short_write() {
    let mut ini = logged_in(&[("InitialR2T", "No"), ("ImmediateData", "No")]);
    let itt = ini.itt();
    let data = pattern(4096);
    let cmd = ini.scsi_command(itt, &write10(8), false, true, false, 4096, &[]);
    ini.send(&cmd);
    let pdu = ini.data_out(itt, RESERVED_TAG, 0, 0, true, &data);
    ini.send(&pdu);
    assert_eq!(&ini.expect_execute().data_out[..], data);
    assert!(ini.recv().is_empty());
}

/// A refused Data-Out: Reject, then the task ends with CHECK CONDITION, ABORTED COMMAND and
/// the given additional sense code; the connection stays up.
fn expect_task_terminated(ini: &mut Initiator, itt: u32, asc_ascq: [u8; 2]) {
    let pdus = ini.recv();
    assert_eq!(pdus.len(), 2, "{pdus:?}");
    assert!(pdus[0].is(Opcode::Reject), "{pdus:?}");
    assert_eq!(pdus[0].bhs[2], reject_reason::PROTOCOL_ERROR);
    let resp = &pdus[1];
    assert!(resp.is(Opcode::ScsiResponse), "{pdus:?}");
    assert_eq!(resp.itt(), itt);
    assert_eq!(resp.bhs[3], 0x02);
    assert_eq!(resp.data[2 + 2], 0x0b, "ABORTED COMMAND");
    assert_eq!([resp.data[2 + 12], resp.data[2 + 13]], asc_ascq);
    let actions = ini.take_actions();
    assert!(
        !actions
            .iter()
            .any(|a| matches!(a, Action::Execute(_) | Action::Close(_))),
        "{actions:?}"
    );
    assert!(ini.conn.wants_recv());
}

const DATA_PHASE_ERROR: [u8; 2] = [0x4b, 0x00];
const INCORRECT_AMOUNT: [u8; 2] = [0x0c, 0x0d];
const UNEXPECTED_UNSOLICITED: [u8; 2] = [0x0c, 0x0c];

/// libiscsi iSCSIDataSnInvalid: two-PDU writes whose DataSNs are tampered with, all on one
/// connection; each fails on its own and the session carries on.
#[test]
fn datasn_errors_terminate_the_task() {
    let mut ini = logged_in(&[("ImmediateData", "No"), ("MaxRecvDataSegmentLength", "512")]);
    for (first, second) in [(0, 0), (27, 1), (u32::MAX, 0), (1, 0), (0, 1)] {
        let itt = ini.itt();
        let cmd = ini.scsi_command(itt, &write10(2), false, true, true, 1024, &[]);
        ini.send(&cmd);
        let r2t = ini.recv_one();
        let data = pattern(1024);
        let a = ini.data_out(itt, r2t.ttt(), first, 0, false, &data[..512]);
        let b = ini.data_out(itt, r2t.ttt(), second, 512, true, &data[512..]);
        ini.send(&a);
        ini.send(&b);
        if (first, second) == (0, 1) {
            assert_eq!(&ini.expect_execute().data_out[..], data);
        } else {
            // The second PDU (if the first was refused) is dropped quietly.
            expect_task_terminated(&mut ini, itt, DATA_PHASE_ERROR);
        }
    }
}

#[test]
fn buffer_offset_errors_terminate_the_task() {
    let mut ini = logged_in(&[("ImmediateData", "No")]);
    let itt = ini.itt();
    let cmd = ini.scsi_command(itt, &write10(2), false, true, true, 1024, &[]);
    ini.send(&cmd);
    let r2t = ini.recv_one();
    let pdu = ini.data_out(itt, r2t.ttt(), 0, 512, false, &pattern(512));
    ini.send(&pdu);
    expect_task_terminated(&mut ini, itt, DATA_PHASE_ERROR);
}

#[test]
fn data_beyond_the_r2t_or_the_wrong_tag_terminate_the_task() {
    let mut ini = logged_in(&[("ImmediateData", "No")]);
    let itt = ini.itt();
    let cmd = ini.scsi_command(itt, &write10(1), false, true, true, 512, &[]);
    ini.send(&cmd);
    let r2t = ini.recv_one();
    let pdu = ini.data_out(itt, r2t.ttt() ^ 1, 0, 0, true, &pattern(512));
    ini.send(&pdu);
    expect_task_terminated(&mut ini, itt, DATA_PHASE_ERROR);

    let itt = ini.itt();
    let cmd = ini.scsi_command(itt, &write10(2), false, true, true, 1024, &[]);
    ini.send(&cmd);
    let r2t = ini.recv_one();
    let pdu = ini.data_out(itt, r2t.ttt(), 0, 0, true, &pattern(512));
    ini.send(&pdu);
    expect_task_terminated(&mut ini, itt, INCORRECT_AMOUNT);
}

#[test]
fn data_beyond_the_expected_length_terminates_the_task() {
    let mut ini = logged_in(&[("ImmediateData", "No")]);
    let itt = ini.itt();
    let cmd = ini.scsi_command(itt, &write10(1), false, true, true, 512, &[]);
    ini.send(&cmd);
    let r2t = ini.recv_one();
    let pdu = ini.data_out(itt, r2t.ttt(), 0, 0, true, &pattern(1024));
    ini.send(&pdu);
    expect_task_terminated(&mut ini, itt, INCORRECT_AMOUNT);
}

#[test]
fn unsolicited_data_out_beyond_first_burst_terminates_the_task() {
    let mut ini = logged_in(&[("InitialR2T", "No"), ("FirstBurstLength", "4096")]);
    let itt = ini.itt();
    let cmd = ini.scsi_command(itt, &write10(16), false, true, false, 8192, &[]);
    ini.send(&cmd);
    let pdu = ini.data_out(itt, RESERVED_TAG, 0, 0, true, &pattern(8192));
    ini.send(&pdu);
    expect_task_terminated(&mut ini, itt, UNEXPECTED_UNSOLICITED);
    // Unsolicited data for a command that announced none.
    let itt = ini.itt();
    let cmd = ini.scsi_command(itt, &write10(1), false, true, true, 512, &[]);
    ini.send(&cmd);
    let _r2t = ini.recv_one();
    let pdu = ini.data_out(itt, RESERVED_TAG, 0, 0, true, &pattern(512));
    ini.send(&pdu);
    expect_task_terminated(&mut ini, itt, UNEXPECTED_UNSOLICITED);
}

#[test]
fn data_out_for_an_executing_command_is_rejected() {
    let mut ini = logged_in(&[]);
    let itt = ini.itt();
    let cmd = ini.scsi_command(itt, &write10(1), false, true, true, 512, &pattern(512));
    ini.send(&cmd);
    ini.expect_execute();
    let pdu = ini.data_out(itt, 7, 0, 512, true, &pattern(16));
    ini.send(&pdu);
    let resp = ini.recv_one();
    assert!(resp.is(Opcode::Reject));
    ini.complete(itt, 0, &[], &[], 512);
    assert!(
        ini.recv_one().is(Opcode::ScsiResponse),
        "the command still completes"
    );
}

#[test]
fn data_out_for_an_unknown_task_is_rejected_and_the_connection_survives() {
    let mut ini = logged_in(&[]);
    let pdu = ini.data_out(0xdead, 5, 0, 0, true, &pattern(16));
    ini.send(&pdu);
    let resp = ini.recv_one();
    assert!(resp.is(Opcode::Reject));
    assert_eq!(resp.bhs[2], reject_reason::INVALID_PDU_FIELD);
    assert!(ini.take_actions().is_empty());
    assert!(ini.conn.wants_recv());
}

#[test]
fn write_residuals_match_libiscsi_write10_residuals() {
    // One block written, expected length two blocks: underflow of one block.
    let mut ini = logged_in(&[]);
    let itt = ini.itt();
    let data = pattern(1024);
    let cmd = ini.scsi_command(itt, &write10(1), false, true, true, 1024, &data);
    ini.send(&cmd);
    assert_eq!(ini.expect_execute().data_out.len(), 1024);
    ini.complete(itt, 0, &[], &[], 512);
    let resp = ini.recv_one();
    assert_eq!(resp.flags(), 0x80 | residual_flags::UNDERFLOW);
    assert_eq!(residual_count(&resp), 512);

    // One block written, expected length 200: overflow, only 200 bytes handed over.
    let itt = ini.itt();
    let cmd = ini.scsi_command(itt, &write10(1), false, true, true, 200, &data[..200]);
    ini.send(&cmd);
    assert_eq!(&ini.expect_execute().data_out[..], &data[..200]);
    ini.complete(itt, 0, &[], &[], 512);
    let resp = ini.recv_one();
    assert_eq!(resp.flags(), 0x80 | residual_flags::OVERFLOW);
    assert_eq!(residual_count(&resp), 312);

    // Expected length 0.
    let itt = ini.itt();
    let cmd = ini.scsi_command(itt, &write10(1), false, true, true, 0, &[]);
    ini.send(&cmd);
    assert!(ini.expect_execute().data_out.is_empty());
    ini.complete(itt, 0, &[], &[], 512);
    let resp = ini.recv_one();
    assert_eq!(resp.flags(), 0x80 | residual_flags::OVERFLOW);
    assert_eq!(residual_count(&resp), 512);
}

#[test]
fn bidirectional_commands_are_refused_with_check_condition() {
    let mut ini = logged_in(&[]);
    let itt = ini.itt();
    let cmd = ini.scsi_command(
        itt,
        &[0x53, 0, 0, 0, 0, 0, 0, 0, 1, 0],
        true,
        true,
        true,
        512,
        &pattern(512),
    );
    ini.send(&cmd);
    assert!(ini.take_actions().is_empty(), "not executed");
    let resp = ini.recv_one();
    assert!(resp.is(Opcode::ScsiResponse));
    assert_eq!(resp.bhs[3], 0x02);
    assert_eq!(resp.data[2 + 2] & 0x0f, 0x05, "ILLEGAL REQUEST");
    assert_eq!((resp.data[2 + 12], resp.data[2 + 13]), (0x0e, 0x03));
    // The slot is free again: MaxCmdSN moved.
    assert_eq!(resp.max_cmd_sn(), resp.exp_cmd_sn() + 127);
}

#[test]
fn writes_above_the_command_limit_are_refused_without_soliciting_data() {
    let mut ini = logged_in(&[]);
    let itt = ini.itt();
    let cmd = ini.scsi_command(
        itt,
        &write10(1),
        false,
        true,
        true,
        MAX_COMMAND_DATA_OUT_BYTES + 1,
        &[],
    );
    ini.send(&cmd);
    let resp = ini.recv_one();
    assert!(resp.is(Opcode::ScsiResponse), "no R2T: {resp:?}");
    assert_eq!(resp.bhs[3], 0x02);
}

#[test]
fn refused_command_waits_for_its_unsolicited_data() {
    let mut ini = logged_in(&[("InitialR2T", "No")]);
    let itt = ini.itt();
    let cmd = ini.scsi_command(itt, &[0x53; 10], true, true, false, 4096, &[]);
    ini.send(&cmd);
    assert!(ini.recv().is_empty());
    let pdu = ini.data_out(itt, RESERVED_TAG, 0, 0, true, &pattern(4096));
    ini.send(&pdu);
    let resp = ini.recv_one();
    assert!(resp.is(Opcode::ScsiResponse));
    assert_eq!(resp.bhs[3], 0x02);
}

#[test]
fn data_violating_negotiated_keys_is_rejected() {
    // Immediate data although ImmediateData=No.
    let mut ini = logged_in(&[("ImmediateData", "No")]);
    let itt = ini.itt();
    let cmd = ini.scsi_command(itt, &write10(1), false, true, true, 512, &pattern(512));
    ini.send(&cmd);
    let resp = ini.recv_one();
    assert!(resp.is(Opcode::Reject));
    assert_eq!(resp.bhs[2], reject_reason::PROTOCOL_ERROR);
    // Its unsolicited Data-Out, if any, is dropped quietly.
    let pdu = ini.data_out(itt, RESERVED_TAG, 0, 0, true, &pattern(16));
    ini.send(&pdu);
    assert!(ini.recv().is_empty());
    assert!(ini.take_actions().is_empty());

    // Unsolicited data announced although InitialR2T=Yes.
    let itt = ini.itt();
    let cmd = ini.scsi_command(itt, &write10(1), false, true, false, 512, &[]);
    ini.send(&cmd);
    assert!(ini.recv_one().is(Opcode::Reject));

    // Immediate data beyond the expected length.
    let mut ini = logged_in(&[]);
    let itt = ini.itt();
    let cmd = ini.scsi_command(itt, &write10(1), false, true, true, 256, &pattern(512));
    ini.send(&cmd);
    assert!(ini.recv_one().is(Opcode::Reject));
    assert!(ini.take_actions().is_empty());
}

#[test]
fn a_tag_in_use_is_rejected() {
    let mut ini = logged_in(&[]);
    let itt = ini.itt();
    let cmd = ini.scsi_command(itt, &read10(1), true, false, true, 512, &[]);
    ini.send(&cmd);
    ini.expect_execute();
    let again = ini.scsi_command(itt, &read10(1), true, false, true, 512, &[]);
    ini.send(&again);
    let resp = ini.recv_one();
    assert!(resp.is(Opcode::Reject));
    assert_eq!(resp.bhs[2], reject_reason::TASK_IN_PROGRESS);
}

#[test]
fn extended_cdb_from_the_additional_header_segment() {
    let mut ini = logged_in(&[]);
    let itt = ini.itt();
    let mut cdb = [0u8; 32];
    cdb[0] = 0x7f;
    for (i, b) in cdb.iter_mut().enumerate().skip(1) {
        *b = i as u8;
    }
    let mut cmd = ini.scsi_command(itt, &cdb[..16], false, false, true, 0, &[]);
    // AHS: length 17 (reserved byte + 16 CDB bytes), type 1, then 16 bytes; 20 bytes total.
    let mut ahs = vec![0, 17, 1, 0];
    ahs.extend_from_slice(&cdb[16..]);
    cmd[4] = (ahs.len() / 4) as u8;
    cmd.splice(48..48, ahs);
    ini.send(&cmd);
    assert_eq!(&ini.expect_execute().cdb[..], &cdb[..]);
}

#[test]
fn malformed_ahs_is_rejected() {
    let mut ini = logged_in(&[]);
    let itt = ini.itt();
    let mut cmd = ini.scsi_command(itt, &[0x7f; 16], false, false, true, 0, &[]);
    cmd[4] = 1;
    cmd.splice(48..48, [0, 40, 1, 0]);
    ini.send(&cmd);
    let resp = ini.recv_one();
    assert!(resp.is(Opcode::Reject));
    assert_eq!(resp.bhs[2], reject_reason::INVALID_PDU_FIELD);
}

#[test]
fn recycled_buffers_are_reused_for_data_out() {
    let mut ini = logged_in(&[]);
    let itt = ini.itt();
    let cmd = ini.scsi_command(itt, &write10(8), false, true, true, 4096, &pattern(4096));
    ini.send(&cmd);
    let exec = ini.expect_execute();
    let ptr = exec.data_out.as_ptr();
    ini.conn.recycle(exec.data_out);
    ini.complete(itt, 0, &[], &[], 4096);
    ini.recv();
    let itt = ini.itt();
    let cmd = ini.scsi_command(itt, &write10(8), false, true, true, 4096, &pattern(4096));
    ini.send(&cmd);
    assert_eq!(ini.expect_execute().data_out.as_ptr(), ptr);
}

#[test]
fn writes_beyond_the_solicited_budget_wait_for_earlier_ones() {
    let mut ini = logged_in(&[
        ("ImmediateData", "No"),
        ("MaxRecvDataSegmentLength", "262144"),
        ("MaxBurstLength", "16777215"),
    ]);
    let len = MAX_COMMAND_DATA_OUT_BYTES;
    let blocks = (len / 512) as u16;
    let tags: Vec<u32> = (0..3).map(|_| ini.itt()).collect();
    for &itt in &tags {
        let cmd = ini.scsi_command(itt, &write10(blocks), false, true, true, len, &[]);
        ini.send(&cmd);
    }
    let mut r2ts = ini.recv();
    assert_eq!(
        r2ts.iter().map(|r| r.itt()).collect::<Vec<_>>(),
        tags[..2].to_vec()
    );
    let data = vec![0x5a; len as usize];
    // Bursts are capped by the configured MaxBurstLength: answer R2Ts until the first write
    // has all its data.
    let mut first = vec![r2ts.remove(0)];
    let mut others = Vec::new();
    while !first.is_empty() {
        answer_r2ts(&mut ini, tags[0], &first, &data, 262_144);
        let (mine, rest): (Vec<_>, Vec<_>) =
            ini.recv().into_iter().partition(|r| r.itt() == tags[0]);
        first = mine;
        others.extend(rest);
    }
    let exec = ini.expect_execute();
    assert_eq!(exec.task.0, tags[0]);
    assert_eq!(exec.data_out.len(), len as usize);
    assert_eq!(others.len(), 1, "{others:?}");
    let third = others.remove(0);
    assert!(third.is(Opcode::ReadyToTransfer));
    assert_eq!(
        third.itt(),
        tags[2],
        "the waiting write is solicited once budget frees up"
    );
}
