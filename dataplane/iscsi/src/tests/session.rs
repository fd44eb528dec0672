//! Full feature phase housekeeping: NOP-Out/NOP-In, the keep-alive timer, the CmdSN window
//! (libiscsi iSCSIcmdsn), immediate commands, logout, task management, Reject of unknown or
//! misplaced PDUs, and backpressure.

use lunar_wire::iscsi::codes::{logout_response, reject_reason, tmf_function, tmf_response};
use lunar_wire::iscsi::{Opcode, RESERVED_TAG};

use super::initiator::*;
use crate::connection::{Action, CloseReason, ConnConfig};

fn logged_in_with(config: ConnConfig) -> Initiator {
    let mut ini = Initiator::new(config);
    ini.login();
    ini
}

fn logged_in() -> Initiator {
    logged_in_with(ConnConfig::default())
}

#[test]
fn nop_out_ping_is_echoed() {
    let mut ini = logged_in();
    for payload in [&b"nopping\0"[..], &[][..]] {
        let itt = ini.itt();
        let stat_sn_before = ini.exp_stat_sn;
        let nop = ini.nop_out(itt, RESERVED_TAG, true, payload);
        ini.send(&nop);
        let resp = ini.recv_one();
        assert!(resp.is(Opcode::NopIn));
        assert_eq!(resp.itt(), itt);
        assert_eq!(resp.ttt(), RESERVED_TAG);
        assert_eq!(resp.data, payload);
        assert_eq!(
            resp.stat_sn(),
            stat_sn_before,
            "a ping reply consumes a StatSN"
        );
    }
}

#[test]
fn non_immediate_nop_out_consumes_a_cmd_sn() {
    let mut ini = logged_in();
    let before = ini.cmd_sn;
    let itt = ini.itt();
    let nop = ini.nop_out(itt, RESERVED_TAG, false, &[]);
    ini.send(&nop);
    let resp = ini.recv_one();
    assert_eq!(resp.exp_cmd_sn(), before.wrapping_add(1));
}

#[test]
fn nop_out_with_a_tag_but_no_task_tag_is_rejected() {
    let mut ini = logged_in();
    let itt = ini.itt();
    let nop = ini.nop_out(itt, 0x55, true, &[]);
    ini.send(&nop);
    let resp = ini.recv_one();
    assert!(resp.is(Opcode::Reject));
    assert_eq!(resp.bhs[2], reject_reason::INVALID_PDU_FIELD);
}

#[test]
fn keep_alive_pings_when_idle_and_accepts_the_answer() {
    let mut ini = logged_in();
    let t0 = ini.now_ms;
    ini.tick(t0 + 4_999);
    assert!(ini.recv().is_empty());
    ini.tick(t0 + 5_000);
    let ping = ini.recv_one();
    assert!(ping.is(Opcode::NopIn));
    assert_eq!(ping.itt(), RESERVED_TAG);
    assert_ne!(ping.ttt(), RESERVED_TAG);
    assert_eq!(
        ping.stat_sn(),
        ini.exp_stat_sn,
        "a ping does not consume a StatSN"
    );
    // Only one ping at a time.
    ini.tick(t0 + 10_000);
    assert!(ini.recv().is_empty());
    let answer = ini.nop_out(RESERVED_TAG, ping.ttt(), true, &[]);
    ini.send(&answer);
    assert!(ini.recv().is_empty(), "an answer to a ping gets no reply");
    assert!(ini.conn.keepalive.outstanding().is_none());
    ini.tick(t0 + 10_000 + 15_000);
    assert!(ini.take_actions().is_empty(), "answered: no timeout");
    // Still idle: the next ping is a new one.
    let next = ini.recv_one();
    assert!(next.is(Opcode::NopIn));
    assert_ne!(next.ttt(), ping.ttt());
}

#[test]
fn unanswered_ping_drops_the_connection() {
    let mut ini = logged_in();
    let t0 = ini.now_ms;
    ini.tick(t0 + 5_000);
    assert!(ini.recv_one().is(Opcode::NopIn));
    ini.tick(t0 + 5_000 + 14_999);
    assert!(ini.take_actions().is_empty());
    // Other traffic does not answer the ping.
    let itt = ini.itt();
    let nop = ini.nop_out(itt, RESERVED_TAG, true, &[]);
    ini.send(&nop);
    ini.recv();
    ini.tick(t0 + 5_000 + 15_000);
    assert!(matches!(
        ini.take_actions().as_slice(),
        [Action::Close(CloseReason::KeepAliveTimeout)]
    ));
}

#[test]
fn input_postpones_the_keep_alive() {
    let mut ini = logged_in();
    let t0 = ini.now_ms;
    ini.now_ms = t0 + 4_000;
    let itt = ini.itt();
    let nop = ini.nop_out(itt, RESERVED_TAG, true, &[]);
    ini.send(&nop);
    ini.recv();
    ini.tick(t0 + 8_999);
    assert!(ini.recv().is_empty());
    ini.tick(t0 + 9_000);
    assert!(ini.recv_one().is(Opcode::NopIn));
}

#[test]
fn keep_alive_can_be_disabled() {
    let mut ini = logged_in_with(ConnConfig {
        nop_in_interval_ms: 0,
        ..ConnConfig::default()
    });
    ini.tick(ini.now_ms + 1_000_000);
    assert!(ini.recv().is_empty());
}

/// libiscsi iSCSICmdSnTooHigh / iSCSICmdSnTooLow: commands outside the window are dropped
/// silently, and the next command with CmdSN = ExpCmdSN works.
#[test]
fn commands_outside_the_window_are_dropped_silently() {
    let mut ini = logged_in();
    let itt = ini.itt();
    let cmd = ini.scsi_command(itt, &[0; 6], false, false, true, 0, &[]);
    ini.send(&cmd);
    ini.expect_execute();
    ini.complete(itt, 0, &[], &[], 0);
    let resp = ini.recv_one();
    let (exp, max) = (resp.exp_cmd_sn(), resp.max_cmd_sn());
    assert_eq!(exp, ini.cmd_sn);
    for bad in [
        max.wrapping_add(1),
        exp.wrapping_sub(1),
        exp.wrapping_add(1 << 31),
    ] {
        let itt = ini.itt();
        let cmd = ini.scsi_command_sn(itt, &[0; 6], false, false, true, 0, &[], bad);
        ini.send(&cmd);
        assert!(ini.take_actions().is_empty(), "CmdSN {bad} must be dropped");
        assert!(ini.recv().is_empty());
        assert!(ini.conn.wants_recv());
    }
    let itt = ini.itt();
    let cmd = ini.scsi_command_sn(itt, &[0; 6], false, false, true, 0, &[], exp);
    ini.send(&cmd);
    ini.expect_execute();
    ini.complete(itt, 0, &[], &[], 0);
    assert_eq!(ini.recv_one().exp_cmd_sn(), exp.wrapping_add(1));
}

#[test]
fn max_cmd_sn_tracks_outstanding_commands() {
    let mut ini = logged_in_with(ConnConfig {
        session_queue_depth: 4,
        ..ConnConfig::default()
    });
    let first = ini.cmd_sn;
    let tags: Vec<u32> = (0..4).map(|_| ini.itt()).collect();
    for &itt in &tags {
        let cmd = ini.scsi_command(itt, &[0; 6], false, false, true, 0, &[]);
        ini.send(&cmd);
    }
    assert_eq!(ini.take_actions().len(), 4);
    assert!(!ini.conn.wants_recv(), "queue full: backpressure");
    // A fifth command beyond MaxCmdSN is dropped.
    let itt = ini.itt();
    let cmd = ini.scsi_command(itt, &[0; 6], false, false, true, 0, &[]);
    ini.send(&cmd);
    assert!(ini.take_actions().is_empty());
    ini.complete(tags[0], 0, &[], &[], 0);
    let resp = ini.recv_one();
    assert_eq!(resp.exp_cmd_sn(), first + 4);
    assert_eq!(resp.max_cmd_sn(), first + 4, "one slot free again");
    assert!(ini.conn.wants_recv());
    ini.complete(tags[1], 0, &[], &[], 0);
    assert_eq!(ini.recv_one().max_cmd_sn(), first + 5);
}

#[test]
fn immediate_commands_do_not_consume_cmd_sn() {
    let mut ini = logged_in();
    let itt = ini.itt();
    let mut cmd = ini.scsi_command_sn(itt, &[0; 6], false, false, true, 0, &[], ini.cmd_sn);
    cmd[0] |= 0x40;
    ini.send(&cmd);
    ini.expect_execute();
    ini.complete(itt, 0, &[], &[], 0);
    assert_eq!(ini.recv_one().exp_cmd_sn(), ini.cmd_sn);
}

#[test]
fn logout_closes_the_session() {
    let mut ini = logged_in();
    let itt = ini.itt();
    let logout = ini.logout(itt, 0, 1);
    ini.send(&logout);
    let resp = ini.recv_one();
    assert!(resp.is(Opcode::LogoutResponse));
    assert_eq!(resp.itt(), itt);
    assert_eq!(resp.bhs[2], logout_response::SUCCESS);
    assert!(matches!(
        ini.take_actions().as_slice(),
        [Action::Close(CloseReason::Logout)]
    ));
    assert!(!ini.conn.wants_recv());
}

#[test]
fn logout_waits_for_executing_commands() {
    let mut ini = logged_in();
    let read = ini.itt();
    let cmd = ini.scsi_command(read, &read10(1), true, false, true, 512, &[]);
    ini.send(&cmd);
    ini.expect_execute();
    // A write still waiting for data is dropped by the logout.
    let write = ini.itt();
    let mut cmd = ini.scsi_command(write, &write10(1), false, true, true, 512, &[]);
    cmd[1] |= 0; // solicited: R2T follows
    ini.send(&cmd);
    // With immediate data allowed but none sent, an R2T is issued.
    assert!(ini.recv_one().is(Opcode::ReadyToTransfer));
    let logout_itt = ini.itt();
    let logout = ini.logout(logout_itt, 1, 1);
    ini.send(&logout);
    assert!(ini.recv().is_empty(), "the logout response waits");
    assert!(ini.take_actions().is_empty());
    // New commands are refused meanwhile.
    let late = ini.itt();
    let cmd = ini.scsi_command(late, &[0; 6], false, false, true, 0, &[]);
    ini.send(&cmd);
    let rej = ini.recv_one();
    assert!(rej.is(Opcode::Reject));
    assert_eq!(rej.bhs[2], reject_reason::WAITING_FOR_LOGOUT);
    ini.complete(read, 0, &[], &[0; 512], 512);
    let pdus = ini.recv();
    assert_eq!(pdus.len(), 2);
    assert!(pdus[0].is(Opcode::DataIn));
    assert!(pdus[1].is(Opcode::LogoutResponse));
    assert_eq!(pdus[1].itt(), logout_itt);
    ini.tick(ini.now_ms);
    assert!(matches!(
        ini.take_actions().as_slice(),
        [Action::Close(CloseReason::Logout)]
    ));
}

#[test]
fn logout_for_recovery_or_another_connection_is_answered_without_closing() {
    let mut ini = logged_in();
    let itt = ini.itt();
    let logout = ini.logout(itt, 2, 1);
    ini.send(&logout);
    assert_eq!(
        ini.recv_one().bhs[2],
        logout_response::RECOVERY_NOT_SUPPORTED
    );
    let itt = ini.itt();
    let logout = ini.logout(itt, 1, 9);
    ini.send(&logout);
    assert_eq!(ini.recv_one().bhs[2], logout_response::CID_NOT_FOUND);
    assert!(ini.take_actions().is_empty());
    assert!(ini.conn.wants_recv());
}

fn tmf_response_of(ini: &mut Initiator, function: u8, referenced: u32, ref_cmd_sn: u32) -> u8 {
    let itt = ini.itt();
    let tmf = ini.task_mgmt(itt, function, referenced, ref_cmd_sn);
    ini.send(&tmf);
    let resp = ini.recv_one();
    assert!(resp.is(Opcode::TaskMgmtResponse), "{resp:?}");
    assert_eq!(resp.itt(), itt);
    resp.bhs[2]
}

#[test]
fn unsupported_task_management_functions_are_answered() {
    let mut ini = logged_in();
    assert_eq!(
        tmf_response_of(&mut ini, tmf_function::CLEAR_ACA, RESERVED_TAG, 0),
        tmf_response::FUNCTION_NOT_SUPPORTED
    );
    for function in [tmf_function::QUERY_TASK, tmf_function::QUERY_ASYNC_EVENT] {
        assert_eq!(
            tmf_response_of(&mut ini, function, 1, 0),
            tmf_response::FUNCTION_REJECTED
        );
    }
    assert_eq!(
        tmf_response_of(&mut ini, tmf_function::TASK_REASSIGN, 1, 0),
        tmf_response::ALLEGIANCE_REASSIGNMENT_NOT_SUPPORTED
    );
    assert_eq!(
        tmf_response_of(&mut ini, 99, 1, 0),
        tmf_response::FUNCTION_REJECTED
    );
}

#[test]
fn abort_task_of_an_unknown_task() {
    let mut ini = logged_in();
    let old = ini.cmd_sn.wrapping_sub(1);
    assert_eq!(
        tmf_response_of(&mut ini, tmf_function::ABORT_TASK, 0x999, old),
        tmf_response::TASK_DOES_NOT_EXIST
    );
}

#[test]
fn abort_task_of_an_executing_command_suppresses_its_response() {
    let mut ini = logged_in();
    let itt = ini.itt();
    let cmd = ini.scsi_command(itt, &read10(1), true, false, true, 512, &[]);
    ini.send(&cmd);
    ini.expect_execute();
    let tmf_itt = ini.itt();
    let tmf = ini.task_mgmt(tmf_itt, tmf_function::ABORT_TASK, itt, ini.cmd_sn - 1);
    ini.send(&tmf);
    assert!(ini.recv().is_empty(), "waits for the command");
    ini.complete(itt, 0, &[], &[0; 512], 512);
    let resp = ini.recv_one();
    assert!(resp.is(Opcode::TaskMgmtResponse));
    assert_eq!(resp.itt(), tmf_itt);
    assert_eq!(resp.bhs[2], tmf_response::FUNCTION_COMPLETE);
}

#[test]
fn abort_task_of_a_write_waiting_for_data() {
    let mut ini = logged_in();
    let itt = ini.itt();
    let cmd = ini.scsi_command(itt, &write10(1), false, true, true, 512, &[]);
    ini.send(&cmd);
    let r2t = ini.recv_one();
    let ref_cmd_sn = ini.cmd_sn - 1;
    assert_eq!(
        tmf_response_of(&mut ini, tmf_function::ABORT_TASK, itt, ref_cmd_sn),
        tmf_response::FUNCTION_COMPLETE
    );
    // Data already in flight is dropped quietly.
    let pdu = ini.data_out(itt, r2t.ttt(), 0, 0, true, &[0; 512]);
    ini.send(&pdu);
    assert!(ini.recv().is_empty());
    assert!(ini.take_actions().is_empty());
}

#[test]
fn abort_task_set_waits_for_every_executing_command_of_the_lun() {
    let mut ini = logged_in();
    let tags: Vec<u32> = (0..3).map(|_| ini.itt()).collect();
    for &itt in &tags {
        let cmd = ini.scsi_command(itt, &read10(1), true, false, true, 512, &[]);
        ini.send(&cmd);
    }
    assert_eq!(ini.take_actions().len(), 3);
    let tmf_itt = ini.itt();
    let tmf = ini.task_mgmt(tmf_itt, tmf_function::ABORT_TASK_SET, RESERVED_TAG, 0);
    ini.send(&tmf);
    ini.complete(tags[0], 0, &[], &[0; 512], 512);
    ini.complete(tags[1], 0, &[], &[0; 512], 512);
    assert!(ini.recv().is_empty());
    ini.complete(tags[2], 0, &[], &[0; 512], 512);
    let resp = ini.recv_one();
    assert!(resp.is(Opcode::TaskMgmtResponse));
    assert_eq!(resp.bhs[2], tmf_response::FUNCTION_COMPLETE);
}

#[test]
fn unknown_and_misplaced_opcodes_are_rejected() {
    let mut ini = logged_in();
    for (opcode, reason) in [
        (0x1c, reject_reason::COMMAND_NOT_SUPPORTED),
        (0x21, reject_reason::COMMAND_NOT_SUPPORTED),
        (0x10, reject_reason::PROTOCOL_ERROR),
        (0x03, reject_reason::PROTOCOL_ERROR),
    ] {
        let pdu = pdu(opcode, 0x80, |b| put32(b, 16, 1), &[]);
        ini.send(&pdu);
        let resp = ini.recv_one();
        assert!(resp.is(Opcode::Reject), "opcode {opcode:#x}");
        assert_eq!(resp.bhs[2], reason, "opcode {opcode:#x}");
        assert_eq!(resp.itt(), RESERVED_TAG);
        assert_eq!(resp.data, pdu[..48]);
    }
    assert!(ini.take_actions().is_empty());
}

#[test]
fn oversized_pdu_in_full_feature_phase_is_a_protocol_error() {
    let mut ini = logged_in();
    let mut cmd = ini.scsi_command(1, &write10(1), false, true, true, 1 << 20, &[]);
    cmd[5..8].copy_from_slice(&[0x04, 0x00, 0x01]); // 262145 bytes announced
    ini.send(&cmd);
    assert_eq!(ini.conn.recv_buffered_len_bytes(), 0);
    let resp = ini.recv_one();
    assert!(resp.is(Opcode::Reject));
    assert_eq!(resp.bhs[2], reject_reason::PROTOCOL_ERROR);
    assert!(matches!(
        ini.take_actions().as_slice(),
        [Action::Close(CloseReason::ProtocolError(_))]
    ));
}

#[test]
fn a_large_send_backlog_stops_reading_until_drained() {
    let mut ini = logged_in_with(ConnConfig::default());
    let itt = ini.itt();
    let len = 6 * 1024 * 1024;
    let cmd = ini.scsi_command(itt, &read10(1), true, false, true, len, &[]);
    ini.send(&cmd);
    ini.expect_execute();
    ini.complete(itt, 0, &[], &vec![1; len as usize], len);
    assert!(!ini.conn.wants_recv());
    let pending = ini.conn.send_buf().len();
    ini.conn.consume_sent(pending - 1024);
    assert!(ini.conn.wants_recv());
    assert_eq!(ini.conn.send_buf().len(), 1024);
}

#[test]
fn completions_after_close_are_ignored() {
    let mut ini = logged_in();
    let itt = ini.itt();
    let cmd = ini.scsi_command(itt, &read10(1), true, false, true, 512, &[]);
    ini.send(&cmd);
    ini.expect_execute();
    let bad_itt = ini.itt();
    let mut bad = ini.scsi_command(bad_itt, &[0; 6], false, false, true, 0, &[]);
    bad[5..8].copy_from_slice(&[0xff, 0xff, 0xff]);
    ini.send(&bad);
    ini.recv();
    ini.take_actions();
    ini.complete(itt, 0, &[], &[0; 512], 512);
    assert!(ini.recv().is_empty());
}
