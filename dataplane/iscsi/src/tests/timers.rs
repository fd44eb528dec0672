//! Every wait has a bound: the login timeout, the Data-Out timeout of writes whose data stops
//! coming (solicited or announced unsolicited), and the keep-alive that also catches a peer
//! trickling a PDU it never finishes. Also ExpStatSN acknowledgement.

use lunar_wire::iscsi::{Opcode, RESERVED_TAG};

use super::initiator::*;
use crate::connection::{Action, CloseReason, ConnConfig};
use crate::tasks::MAX_COMMAND_DATA_OUT_BYTES;

fn logged_in(extra: &[(&str, &str)]) -> Initiator {
    let mut ini = Initiator::new(ConnConfig {
        nop_in_interval_ms: 0,
        ..ConnConfig::default()
    });
    ini.login_with(extra);
    ini.take_actions();
    ini
}

fn closed_with(ini: &mut Initiator, reason: CloseReason) {
    let actions = ini.take_actions();
    assert!(
        matches!(actions.as_slice(), [Action::Close(r)] if *r == reason),
        "{actions:?}"
    );
}

#[test]
fn a_login_that_never_finishes_is_dropped() {
    let mut ini = Initiator::new(ConnConfig::default());
    let t0 = ini.now_ms;
    ini.tick(t0 + 14_999);
    assert!(ini.take_actions().is_empty());
    ini.tick(t0 + 15_000);
    let actions = ini.take_actions();
    assert!(
        matches!(
            actions.as_slice(),
            [Action::Close(CloseReason::LoginFailed(_))]
        ),
        "{actions:?}"
    );
}

#[test]
fn solicited_data_that_never_comes_drops_the_connection() {
    let timeout_ms = ConnConfig::default().data_out_timeout_ms;
    let mut ini = logged_in(&[("ImmediateData", "No")]);
    let itt = ini.itt();
    let t0 = ini.now_ms;
    let cmd = ini.scsi_command(itt, &write10(2), false, true, true, 1024, &[]);
    ini.send(&cmd);
    let r2t = ini.recv_one();
    assert!(r2t.is(Opcode::ReadyToTransfer));
    // Half the data, just before the bound: the clock starts again.
    ini.now_ms = t0 + timeout_ms - 1;
    let half = ini.data_out(itt, r2t.ttt(), 0, 0, false, &[1; 512]);
    ini.send(&half);
    ini.tick(t0 + 2 * timeout_ms - 2);
    assert!(ini.take_actions().is_empty());
    ini.tick(t0 + 2 * timeout_ms - 1);
    closed_with(&mut ini, CloseReason::DataOutTimeout);
}

#[test]
fn announced_unsolicited_data_that_never_comes_drops_the_connection() {
    let timeout_ms = ConnConfig::default().data_out_timeout_ms;
    let mut ini = logged_in(&[("InitialR2T", "No"), ("ImmediateData", "No")]);
    let itt = ini.itt();
    let t0 = ini.now_ms;
    // F=0: unsolicited Data-Out is to follow, but none does.
    let cmd = ini.scsi_command(itt, &write10(1), false, true, false, 512, &[]);
    ini.send(&cmd);
    assert!(ini.recv().is_empty());
    ini.tick(t0 + timeout_ms - 1);
    assert!(ini.take_actions().is_empty());
    ini.tick(t0 + timeout_ms);
    closed_with(&mut ini, CloseReason::DataOutTimeout);
}

#[test]
fn writes_waiting_for_the_targets_budget_or_executing_do_not_time_out() {
    let timeout_ms = ConnConfig::default().data_out_timeout_ms;
    let mut ini = logged_in(&[
        ("ImmediateData", "No"),
        ("MaxRecvDataSegmentLength", "262144"),
    ]);
    let len = MAX_COMMAND_DATA_OUT_BYTES;
    let blocks = (len / 512) as u16;
    let t0 = ini.now_ms;
    // Two writes take the whole budget; the third waits for the target, not the initiator.
    let tags: Vec<u32> = (0..3).map(|_| ini.itt()).collect();
    for &itt in &tags {
        let cmd = ini.scsi_command(itt, &write10(blocks), false, true, true, len, &[]);
        ini.send(&cmd);
    }
    assert_eq!(ini.recv().len(), 2, "R2Ts for the first two writes only");
    // Twenty seconds later the first two are aborted (their data will never come).
    let t1 = t0 + 20_000;
    ini.now_ms = t1;
    for &itt in &tags[..2] {
        let tmf_itt = ini.itt();
        let tmf = ini.task_mgmt(tmf_itt, 1, itt, 0);
        ini.send(&tmf);
    }
    // That freed the budget: the third write is solicited now, and its clock starts now.
    let pdus = ini.recv();
    let r2t = pdus
        .iter()
        .find(|p| p.is(Opcode::ReadyToTransfer))
        .expect("the third write is solicited");
    assert_eq!(r2t.itt(), tags[2]);
    ini.tick(t1 + timeout_ms - 1);
    assert!(
        ini.take_actions().is_empty(),
        "the time spent waiting for the target's budget does not count"
    );
    ini.tick(t1 + timeout_ms);
    closed_with(&mut ini, CloseReason::DataOutTimeout);
    // An executing command has nothing to wait for from the initiator.
    let mut ini = logged_in(&[]);
    let itt = ini.itt();
    let cmd = ini.scsi_command(itt, &read10(1), true, false, true, 512, &[]);
    ini.send(&cmd);
    ini.expect_execute();
    ini.tick(ini.now_ms + 10 * timeout_ms);
    assert!(ini.take_actions().is_empty());
}

#[test]
fn a_peer_that_never_finishes_a_pdu_is_pinged_and_dropped() {
    let mut ini = Initiator::new(ConnConfig::default());
    ini.login();
    let t0 = ini.now_ms;
    let itt = ini.itt();
    let nop = ini.nop_out(itt, RESERVED_TAG, true, &[0x11; 1000]);
    // One byte every second: bytes arrive, but never a whole PDU.
    for (i, byte) in nop.iter().take(30).enumerate() {
        ini.now_ms = t0 + 1_000 * (i as u64 + 1);
        ini.send_raw(&[*byte]);
        ini.tick(ini.now_ms);
        if ini
            .take_actions()
            .iter()
            .any(|a| matches!(a, Action::Close(CloseReason::KeepAliveTimeout)))
        {
            // Pinged at 5 s of no complete PDU, dropped 15 s later.
            assert_eq!(ini.now_ms, t0 + 20_000);
            let pings = ini.recv();
            assert_eq!(pings.len(), 1);
            assert!(pings[0].is(Opcode::NopIn));
            return;
        }
    }
    panic!("the slow peer was never dropped");
}

#[test]
fn exp_stat_sn_is_acknowledged_and_bogus_values_are_ignored() {
    let mut ini = logged_in(&[]);
    // Three pings that keep acknowledging only what came before them.
    let stale = ini.exp_stat_sn;
    for _ in 0..3 {
        ini.exp_stat_sn = stale;
        let itt = ini.itt();
        let nop = ini.nop_out(itt, RESERVED_TAG, true, &[]);
        ini.send(&nop);
        assert!(ini.recv_one().is(Opcode::NopIn));
    }
    assert_eq!(ini.conn.seq.unacknowledged(), 3);
    // A PDU with the current ExpStatSN acknowledges all three.
    let itt = ini.itt();
    let nop = ini.nop_out(itt, RESERVED_TAG, true, &[]);
    ini.send(&nop);
    ini.recv_one();
    assert_eq!(ini.conn.seq.unacknowledged(), 1);
    // An ExpStatSN far ahead of anything sent is ignored; the session carries on.
    let bogus = ini.exp_stat_sn.wrapping_add(1000);
    ini.exp_stat_sn = bogus;
    let itt = ini.itt();
    let nop = ini.nop_out(itt, RESERVED_TAG, true, b"x");
    ini.send(&nop);
    let reply = ini.recv_one();
    assert!(reply.is(Opcode::NopIn));
    assert_eq!(reply.data, b"x");
    assert_eq!(ini.conn.seq.unacknowledged(), 2);
    assert!(ini.take_actions().is_empty());
}

#[test]
fn a_full_queue_of_executing_commands_suspends_the_keep_alive() {
    let mut ini = Initiator::new(ConnConfig {
        session_queue_depth: 2,
        ..ConnConfig::default()
    });
    ini.login();
    let t0 = ini.now_ms;
    let tags: Vec<u32> = (0..2).map(|_| ini.itt()).collect();
    for &itt in &tags {
        let cmd = ini.scsi_command(itt, &read10(1), true, false, true, 512, &[]);
        ini.send(&cmd);
    }
    assert_eq!(ini.take_actions().len(), 2);
    // An immediate write beyond the queue depth waits for its R2T data meanwhile.
    let write = ini.itt();
    let mut cmd = ini.scsi_command(write, &write10(1), false, true, true, 512, &[]);
    cmd[0] |= 0x40;
    ini.cmd_sn = ini.cmd_sn.wrapping_sub(1);
    ini.send(&cmd);
    let r2t = ini.recv_one();
    assert!(r2t.is(Opcode::ReadyToTransfer));
    assert!(
        !ini.conn.wants_recv(),
        "the queue is full: the reactor stops reading"
    );
    for step in 1..=60 {
        ini.tick(t0 + step * 1_000);
    }
    assert!(
        ini.take_actions().is_empty(),
        "not dropped for our own slowness"
    );
    assert!(ini.recv().is_empty(), "and not even pinged");
    // The write's data was waiting in the socket all along.
    let data = ini.data_out(write, r2t.ttt(), 0, 0, true, &[3; 512]);
    ini.send(&data);
    assert_eq!(&ini.expect_execute().data_out[..], vec![3; 512]);
    // Once the backend catches up, the keep-alive runs again.
    ini.complete(tags[0], 0, &[], &[0; 512], 512);
    ini.complete(tags[1], 0, &[], &[0; 512], 512);
    ini.complete(write, 0, &[], &[], 512);
    assert_eq!(ini.recv().len(), 3);
    ini.tick(t0 + 65_000);
    let ping = ini.recv_one();
    assert!(ping.is(Opcode::NopIn));
    ini.tick(t0 + 80_000);
    closed_with(&mut ini, CloseReason::KeepAliveTimeout);
}
