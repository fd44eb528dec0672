//! Task management beyond ABORT TASK: resets handed to the reactor (LOGICAL UNIT RESET, CLEAR
//! TASK SET, TARGET WARM/COLD RESET, I_T NEXUS RESET), the rule that no TMF response precedes
//! the end of an aborted command's I/O, aborts requested by other sessions, fences for
//! commands not yet received, bounds, and ending a session from outside (reinstatement).

use lunar_wire::iscsi::codes::{tmf_function, tmf_response};
use lunar_wire::iscsi::{Opcode, RESERVED_TAG};

use super::initiator::*;
use crate::connection::{
    Action, CloseReason, ConnConfig, ResetFunction, ResetId, ResetOutcome, ResetScope, TaskId,
};
use crate::tmf::MAX_PENDING_TMFS;

fn logged_in() -> Initiator {
    let mut ini = Initiator::new(ConnConfig::default());
    ini.login();
    ini
}

/// A READ(10) of one block on `lun`, handed to the reactor.
fn executing_read(ini: &mut Initiator, lun: u8) -> u32 {
    let itt = ini.itt();
    let mut cmd = ini.scsi_command(itt, &read10(1), true, false, true, 512, &[]);
    cmd[9] = lun;
    ini.send(&cmd);
    let exec = ini.expect_execute();
    assert_eq!(exec.lun, u64::from(lun));
    itt
}

/// A WRITE(10) of one block on `lun` waiting for its solicited data; returns tag and R2T TTT.
fn receiving_write(ini: &mut Initiator, lun: u8) -> (u32, u32) {
    let itt = ini.itt();
    let mut cmd = ini.scsi_command(itt, &write10(1), false, true, true, 512, &[]);
    cmd[9] = lun;
    ini.send(&cmd);
    let r2t = ini.recv_one();
    assert!(r2t.is(Opcode::ReadyToTransfer));
    (itt, r2t.ttt())
}

fn send_tmf(ini: &mut Initiator, function: u8, lun: u8) -> u32 {
    let itt = ini.itt();
    let mut tmf = ini.task_mgmt(itt, function, RESERVED_TAG, 0);
    tmf[9] = lun;
    ini.send(&tmf);
    itt
}

fn expect_reset(ini: &mut Initiator, tmf_itt: u32) -> ResetFunction {
    let mut actions = ini.take_actions();
    assert_eq!(actions.len(), 1, "{actions:?}");
    match actions.remove(0) {
        Action::Reset { id, function } => {
            assert_eq!(id, ResetId(tmf_itt));
            function
        }
        other => panic!("expected Reset, got {other:?}"),
    }
}

fn reset_done(ini: &mut Initiator, tmf_itt: u32, outcome: ResetOutcome) {
    let mut actions = Vec::new();
    ini.conn
        .on_reset_done(ResetId(tmf_itt), outcome, &mut actions);
    ini.actions.extend(actions);
}

fn expect_tmf_response(ini: &mut Initiator, tmf_itt: u32, response: u8) {
    let resp = ini.recv_one();
    assert!(resp.is(Opcode::TaskMgmtResponse), "{resp:?}");
    assert_eq!(resp.itt(), tmf_itt);
    assert_eq!(resp.bhs[2], response);
}

#[test]
fn lun_reset_answers_after_the_reactor_and_the_aborted_io() {
    for reactor_first in [true, false] {
        let mut ini = logged_in();
        let reads = [executing_read(&mut ini, 0), executing_read(&mut ini, 0)];
        let other_lun = executing_read(&mut ini, 1);
        let (write, ttt) = receiving_write(&mut ini, 0);
        let tmf = send_tmf(&mut ini, tmf_function::LOGICAL_UNIT_RESET, 0);
        let function = expect_reset(&mut ini, tmf);
        assert_eq!(function, ResetFunction::LogicalUnitReset { lun: 0 });
        assert_eq!(function.scope(), ResetScope::Lun(0));
        assert!(ini.recv().is_empty());
        // The waiting write is gone: its data is dropped quietly.
        let data = ini.data_out(write, ttt, 0, 0, true, &[0; 512]);
        ini.send(&data);
        assert!(ini.recv().is_empty() && ini.take_actions().is_empty());
        if reactor_first {
            reset_done(&mut ini, tmf, ResetOutcome::Complete);
            assert!(ini.recv().is_empty(), "aborted reads still doing I/O");
        }
        ini.complete(reads[0], 0, &[], &[1; 512], 512);
        ini.complete(reads[1], 0, &[], &[1; 512], 512);
        if !reactor_first {
            assert!(ini.recv().is_empty(), "the reactor has not finished");
            reset_done(&mut ini, tmf, ResetOutcome::Complete);
        }
        // No Data-In for the aborted reads: only the TMF response.
        expect_tmf_response(&mut ini, tmf, tmf_response::FUNCTION_COMPLETE);
        // The other LU's read completes as usual.
        ini.complete(other_lun, 0, &[], &[2; 512], 512);
        let data_in = ini.recv_one();
        assert!(data_in.is(Opcode::DataIn));
        assert_eq!(data_in.itt(), other_lun);
    }
}

#[test]
fn reset_outcomes_become_tmf_responses() {
    for (outcome, response) in [
        (
            ResetOutcome::LunDoesNotExist,
            tmf_response::LUN_DOES_NOT_EXIST,
        ),
        (
            ResetOutcome::NotSupported,
            tmf_response::FUNCTION_NOT_SUPPORTED,
        ),
        (
            ResetOutcome::NotAuthorized,
            tmf_response::AUTHORIZATION_FAILED,
        ),
    ] {
        let mut ini = logged_in();
        let tmf = send_tmf(&mut ini, tmf_function::LOGICAL_UNIT_RESET, 7);
        assert_eq!(
            expect_reset(&mut ini, tmf),
            ResetFunction::LogicalUnitReset { lun: 7 }
        );
        reset_done(&mut ini, tmf, outcome);
        expect_tmf_response(&mut ini, tmf, response);
        assert!(ini.take_actions().is_empty());
    }
}

#[test]
fn every_reset_function_reaches_the_reactor_with_its_scope() {
    for (function, lun, expected, scope) in [
        (
            tmf_function::CLEAR_TASK_SET,
            3,
            ResetFunction::ClearTaskSet { lun: 3 },
            ResetScope::Lun(3),
        ),
        (
            tmf_function::TARGET_WARM_RESET,
            0,
            ResetFunction::TargetWarmReset,
            ResetScope::Target,
        ),
        (
            tmf_function::I_T_NEXUS_RESET,
            0,
            ResetFunction::ItNexusReset,
            ResetScope::Nexus,
        ),
    ] {
        let mut ini = logged_in();
        let on_lun_3 = executing_read(&mut ini, 3);
        let on_lun_4 = executing_read(&mut ini, 4);
        let tmf = send_tmf(&mut ini, function, lun);
        let got = expect_reset(&mut ini, tmf);
        assert_eq!((got, got.scope()), (expected, scope));
        reset_done(&mut ini, tmf, ResetOutcome::Complete);
        // LUN 3 is in every scope here; LUN 4 only in the target and nexus ones.
        ini.complete(on_lun_3, 0, &[], &[0; 512], 512);
        let lun_4_in_scope = scope != ResetScope::Lun(3);
        if lun_4_in_scope {
            assert!(ini.recv().is_empty());
            ini.complete(on_lun_4, 0, &[], &[0; 512], 512);
            expect_tmf_response(&mut ini, tmf, tmf_response::FUNCTION_COMPLETE);
        } else {
            expect_tmf_response(&mut ini, tmf, tmf_response::FUNCTION_COMPLETE);
            ini.complete(on_lun_4, 0, &[], &[0; 512], 512);
            assert!(ini.recv_one().is(Opcode::DataIn));
        }
        assert!(ini.take_actions().is_empty(), "only a cold reset closes");
    }
}

#[test]
fn a_target_cold_reset_closes_the_session_after_its_response() {
    let mut ini = logged_in();
    let read = executing_read(&mut ini, 0);
    let tmf = send_tmf(&mut ini, tmf_function::TARGET_COLD_RESET, 0);
    assert_eq!(expect_reset(&mut ini, tmf), ResetFunction::TargetColdReset);
    reset_done(&mut ini, tmf, ResetOutcome::Complete);
    assert!(
        ini.take_actions().is_empty(),
        "the aborted read is still running"
    );
    ini.complete(read, 0, &[], &[0; 512], 512);
    expect_tmf_response(&mut ini, tmf, tmf_response::FUNCTION_COMPLETE);
    // The close comes with the next call that hands out actions.
    ini.tick(ini.now_ms);
    assert!(matches!(
        ini.take_actions().as_slice(),
        [Action::Close(CloseReason::TargetColdReset)]
    ));
    assert!(!ini.conn.wants_recv());
}

#[test]
fn a_cold_reset_without_tasks_closes_at_once() {
    let mut ini = logged_in();
    let tmf = send_tmf(&mut ini, tmf_function::TARGET_COLD_RESET, 0);
    expect_reset(&mut ini, tmf);
    reset_done(&mut ini, tmf, ResetOutcome::Complete);
    expect_tmf_response(&mut ini, tmf, tmf_response::FUNCTION_COMPLETE);
    assert!(matches!(
        ini.take_actions().as_slice(),
        [Action::Close(CloseReason::TargetColdReset)]
    ));
}

#[test]
fn a_reset_also_waits_for_tasks_an_earlier_abort_already_marked() {
    let mut ini = logged_in();
    let read = executing_read(&mut ini, 0);
    let abort = ini.itt();
    let tmf = ini.task_mgmt(abort, tmf_function::ABORT_TASK, read, ini.cmd_sn - 1);
    ini.send(&tmf);
    // A second ABORT TASK of the same command waits as well.
    let again = ini.itt();
    let tmf = ini.task_mgmt(again, tmf_function::ABORT_TASK, read, ini.cmd_sn - 1);
    ini.send(&tmf);
    let reset = send_tmf(&mut ini, tmf_function::LOGICAL_UNIT_RESET, 0);
    expect_reset(&mut ini, reset);
    reset_done(&mut ini, reset, ResetOutcome::Complete);
    assert!(
        ini.recv().is_empty(),
        "every response waits for the read's I/O"
    );
    ini.complete(read, 0, &[], &[0; 512], 512);
    let mut answered: Vec<u32> = ini
        .recv()
        .iter()
        .map(|r| {
            assert!(r.is(Opcode::TaskMgmtResponse));
            assert_eq!(r.bhs[2], tmf_response::FUNCTION_COMPLETE);
            r.itt()
        })
        .collect();
    answered.sort_unstable();
    assert_eq!(answered, vec![abort, again, reset]);
}

#[test]
fn another_sessions_reset_aborts_this_sessions_tasks_silently() {
    let mut ini = logged_in();
    let on_0 = executing_read(&mut ini, 0);
    let on_1 = executing_read(&mut ini, 1);
    let (write, ttt) = receiving_write(&mut ini, 0);
    let in_flight = ini.conn.abort_tasks(Some(0));
    assert_eq!(in_flight, vec![TaskId(on_0)]);
    assert!(
        ini.recv().is_empty(),
        "no response for tasks aborted elsewhere"
    );
    let data = ini.data_out(write, ttt, 0, 0, true, &[0; 512]);
    ini.send(&data);
    assert!(ini.recv().is_empty() && ini.take_actions().is_empty());
    ini.complete(on_0, 0, &[], &[0; 512], 512);
    assert!(ini.recv().is_empty(), "the aborted read's data is dropped");
    ini.complete(on_1, 0, &[], &[0; 512], 512);
    assert!(ini.recv_one().is(Opcode::DataIn));
    // A target-wide abort takes everything; the window slots come back.
    let before = ini.conn.seq.max_cmd_sn();
    let a = executing_read(&mut ini, 5);
    let b = executing_read(&mut ini, 6);
    let mut all = ini.conn.abort_tasks(None);
    all.sort_unstable_by_key(|t| t.0);
    assert_eq!(all, vec![TaskId(a), TaskId(b)]);
    ini.complete(a, 0, &[], &[], 0);
    ini.complete(b, 0, &[], &[], 0);
    assert!(ini.recv().is_empty());
    assert!(ini.conn.seq.max_cmd_sn() >= before.wrapping_add(2));
}

#[test]
fn commands_sent_before_a_task_set_abort_but_received_after_it_are_aborted() {
    let mut ini = logged_in();
    let hole = ini.cmd_sn;
    // The command numbered `hole` is delayed; the next one arrives first.
    ini.cmd_sn = hole.wrapping_add(1);
    let ahead = executing_read(&mut ini, 0);
    let tmf = send_tmf(&mut ini, tmf_function::ABORT_TASK_SET, 0);
    assert!(ini.recv().is_empty());
    ini.complete(ahead, 0, &[], &[0; 512], 512);
    expect_tmf_response(&mut ini, tmf, tmf_response::FUNCTION_COMPLETE);
    // The delayed command arrives: it was sent before the TMF, so it is dropped.
    let late = ini.itt();
    let cmd = ini.scsi_command_sn(late, &read10(1), true, false, true, 512, &[], hole);
    ini.send(&cmd);
    assert!(ini.take_actions().is_empty(), "fenced off");
    assert!(ini.recv().is_empty());
    // Commands sent after the TMF run.
    executing_read(&mut ini, 0);
    assert!(
        ini.conn.fences.is_empty(),
        "the fence retired once the hole filled"
    );
}

#[test]
fn task_management_requests_waiting_at_once_are_bounded() {
    let mut ini = logged_in();
    let read = executing_read(&mut ini, 0);
    for _ in 0..MAX_PENDING_TMFS {
        let itt = ini.itt();
        let tmf = ini.task_mgmt(itt, tmf_function::ABORT_TASK, read, ini.cmd_sn - 1);
        ini.send(&tmf);
    }
    assert!(ini.recv().is_empty());
    let itt = ini.itt();
    let tmf = ini.task_mgmt(itt, tmf_function::ABORT_TASK, read, ini.cmd_sn - 1);
    ini.send(&tmf);
    expect_tmf_response(&mut ini, itt, tmf_response::FUNCTION_REJECTED);
    ini.complete(read, 0, &[], &[0; 512], 512);
    assert_eq!(ini.recv().len(), MAX_PENDING_TMFS);
}

#[test]
fn reinstatement_ends_the_old_session_without_responses() {
    let mut ini = logged_in();
    let identity = ini.conn.session_identity().cloned().expect("logged in");
    assert_eq!(identity.isid, ISID);
    assert_eq!(identity.initiator, INITIATOR);
    assert_eq!(identity.target.as_deref(), Some(TARGET));
    let read = executing_read(&mut ini, 0);
    receiving_write(&mut ini, 0);
    let mut actions = Vec::new();
    ini.conn.close_for_reinstatement(&mut actions);
    assert!(matches!(
        actions.as_slice(),
        [Action::Close(CloseReason::Reinstated)]
    ));
    assert!(ini.conn.tasks.len() == 0);
    ini.complete(read, 0, &[], &[0; 512], 512);
    assert!(
        ini.recv().is_empty(),
        "the old session answers nothing more"
    );
    assert!(!ini.conn.wants_recv());
    // Calling it again changes nothing.
    ini.conn.close_for_reinstatement(&mut actions);
    assert_eq!(actions.len(), 1);
}

#[test]
fn reset_completions_for_unknown_requests_are_ignored() {
    let mut ini = logged_in();
    reset_done(&mut ini, 0x4242, ResetOutcome::Complete);
    assert!(ini.recv().is_empty() && ini.take_actions().is_empty());
    // ABORT TASK SET is not a reset: a completion naming it changes nothing.
    let read = executing_read(&mut ini, 0);
    let tmf = send_tmf(&mut ini, tmf_function::ABORT_TASK_SET, 0);
    reset_done(&mut ini, tmf, ResetOutcome::LunDoesNotExist);
    assert!(ini.recv().is_empty());
    ini.complete(read, 0, &[], &[0; 512], 512);
    expect_tmf_response(&mut ini, tmf, tmf_response::FUNCTION_COMPLETE);
}

#[test]
fn a_reset_finishing_after_the_session_closed_sends_nothing() {
    let mut ini = logged_in();
    let tmf = send_tmf(&mut ini, tmf_function::LOGICAL_UNIT_RESET, 0);
    expect_reset(&mut ini, tmf);
    let itt = ini.itt();
    let logout = ini.logout(itt, 0, 1);
    ini.send(&logout);
    assert!(ini.recv_one().is(Opcode::LogoutResponse));
    assert!(matches!(
        ini.take_actions().as_slice(),
        [Action::Close(CloseReason::Logout)]
    ));
    reset_done(&mut ini, tmf, ResetOutcome::Complete);
    assert!(ini.recv().is_empty());
    assert!(ini.take_actions().is_empty());
}

#[test]
fn abort_task_of_a_command_not_received_yet_or_already_done() {
    let mut ini = logged_in();
    let hole = ini.cmd_sn;
    ini.cmd_sn = hole.wrapping_add(1);
    // The command after the hole runs and completes.
    let done = executing_read(&mut ini, 0);
    ini.complete(done, 0, &[], &[0; 512], 512);
    assert!(ini.recv_one().is(Opcode::DataIn));
    let tmf_itt = ini.itt();
    let tmf = ini.task_mgmt(
        tmf_itt,
        tmf_function::ABORT_TASK,
        done,
        hole.wrapping_add(1),
    );
    ini.send(&tmf);
    expect_tmf_response(&mut ini, tmf_itt, tmf_response::TASK_DOES_NOT_EXIST);
    // The command in the hole has not arrived: aborting it makes sure it never runs.
    let delayed = ini.itt();
    let tmf_itt = ini.itt();
    let tmf = ini.task_mgmt(tmf_itt, tmf_function::ABORT_TASK, delayed, hole);
    ini.send(&tmf);
    expect_tmf_response(&mut ini, tmf_itt, tmf_response::FUNCTION_COMPLETE);
    let cmd = ini.scsi_command_sn(delayed, &read10(1), true, false, true, 512, &[], hole);
    ini.send(&cmd);
    assert!(ini.take_actions().is_empty());
    assert!(ini.recv().is_empty());
    // The window moved past both numbers.
    executing_read(&mut ini, 0);
}
