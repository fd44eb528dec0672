//! Commands numbered outside the command window `[ExpCmdSN, MaxCmdSN]` (RFC 7143 §4.2.2.1:
//! the target silently ignores them): a flood past MaxCmdSN, far ahead, and duplicates behind
//! ExpCmdSN get no answer, move no window and cost nothing; then a full window is served up to
//! MaxCmdSN exactly; the session goes on afterwards, is never dropped, and a well-behaved
//! client on another connection keeps being served.
//!
//! (A command one past a full window is not checked: lunard may legitimately have widened the
//! window by the time it arrives, having completed earlier commands.)

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use lunar_tests::hostile::{MemoryBudget, Rig, HOSTILE_LBA, LOGGED_IN_CONNECTION_KIB};
use lunar_tests::initiator::pdu::{op, Pdu};
use lunar_tests::initiator::raw::sn_le;
use lunar_tests::initiator::scsi::{self, STATUS_CHECK_CONDITION, STATUS_GOOD};
use lunar_tests::initiator::{check_good, pattern, InitiatorError, Session};

/// Commands sent past MaxCmdSN (and as many far ahead, and behind).
const FLOOD_COMMANDS: u32 = 1000;
/// Blocks each command reads.
const READ_BLOCKS: u32 = 1;
/// Logical block length of the rig's volume (the daemon's default).
const BLOCK_LEN: u32 = 512;
/// Guard against a hang while the responses to a full window arrive (lunard's NOP-In pings
/// keep the socket's own read timeout from ever firing).
const RESPONSES_TIMEOUT: Duration = Duration::from_secs(30);

fn describe(pdus: &[Pdu]) -> Vec<String> {
    pdus.iter()
        .map(|pdu| format!("opcode {:#04x} itt {:#x}", pdu.opcode(), pdu.itt()))
        .collect()
}

#[test]
fn commands_outside_the_window_are_ignored_and_the_session_goes_on() {
    let rig = Rig::start("cmdsn");
    let mut session = match Session::login(rig.addr(), rig.iqn()) {
        Ok(session) => session,
        Err(err) => rig.fail(&format!("login: {err}")),
    };
    let port = session.local_addr().map_or(0, |addr| addr.port());
    let (exp, max) = session.window();
    if exp != session.next_cmd_sn() || !sn_le(exp, max) {
        rig.fail(&format!(
            "login announced the window [{exp}, {max}], the next CmdSN is {}",
            session.next_cmd_sn()
        ));
    }

    // Past MaxCmdSN, far ahead (half the serial space away) and behind ExpCmdSN.
    let cdb = scsi::read16(HOSTILE_LBA, READ_BLOCKS);
    let mut ignored_itts = HashSet::new();
    for n in 0..FLOOD_COMMANDS {
        for cmd_sn in [
            max.wrapping_add(1 + n),
            exp.wrapping_add(0x8000_0000 + n),
            exp.wrapping_sub(1 + n),
        ] {
            let itt = session.new_itt();
            ignored_itts.insert(itt);
            let pdu = session.command_pdu(0, itt, cmd_sn, &cdb, READ_BLOCKS * BLOCK_LEN, 0);
            if let Err(err) = session.send_pdu(&pdu) {
                rig.fail(&format!("sending out-of-window command {n}: {err}"));
            }
        }
    }
    // lunard answers in order: by the ping's answer, anything the flood caused has arrived.
    let answered = match session.ping() {
        Ok(others) => others,
        Err(err) => rig.fail(&format!("ping after the out-of-window flood: {err}")),
    };
    if !answered.is_empty() {
        rig.fail(&format!(
            "out-of-window commands must be ignored silently, lunard answered {} PDUs: {:?}",
            answered.len(),
            &describe(&answered)[..answered.len().min(10)]
        ));
    }
    if session.window().0 != exp {
        rig.fail(&format!(
            "ignored commands moved ExpCmdSN from {exp} to {}",
            session.window().0
        ));
    }

    // A full window: CmdSN ExpCmdSN..=MaxCmdSN, sent at once, are all served.
    let (exp, max) = session.window();
    let window = max.wrapping_sub(exp).wrapping_add(1);
    let mut window_itts = HashSet::new();
    let mut cmd_sn_of = HashMap::new();
    for n in 0..window {
        let itt = session.new_itt();
        cmd_sn_of.insert(itt, exp.wrapping_add(n));
        let pdu = session.command_pdu(
            0,
            itt,
            exp.wrapping_add(n),
            &cdb,
            READ_BLOCKS * BLOCK_LEN,
            0,
        );
        window_itts.insert(itt);
        if let Err(err) = session.send_pdu(&pdu) {
            rig.fail(&format!("sending command {n} of the window: {err}"));
        }
    }
    let mut unanswered = window_itts.clone();
    let deadline = Instant::now() + RESPONSES_TIMEOUT;
    while !unanswered.is_empty() {
        let received = if Instant::now() < deadline {
            session.recv_pdu("the responses to a full window")
        } else {
            Err(InitiatorError::Timeout {
                op: "the responses to a full window",
            })
        };
        let pdu = match received {
            Ok(pdu) => pdu,
            Err(err) => {
                let mut cmd_sns: Vec<u32> = unanswered.iter().map(|itt| cmd_sn_of[itt]).collect();
                cmd_sns.sort_unstable();
                rig.fail(&format!(
                    "{} of {window} commands in the window [{exp}, {max}] unanswered (CmdSN \
                     {:?}...): {err}",
                    unanswered.len(),
                    &cmd_sns[..cmd_sns.len().min(10)]
                ))
            }
        };
        if ignored_itts.contains(&pdu.itt()) {
            rig.fail(&format!(
                "lunard answered an out-of-window command late: {:?}",
                describe(&[pdu])
            ));
        }
        // The first command of a new I_T nexus may get UNIT ATTENTION (power on, reset).
        let status = match pdu.opcode() {
            op::SCSI_RESPONSE => Some(pdu.bhs[3]),
            op::DATA_IN if pdu.flags() & 0x01 != 0 => Some(pdu.bhs[3]),
            op::NOP_IN => {
                if let Err(err) = session.answer_target_ping(&pdu) {
                    rig.fail(&format!("answering a ping: {err}"));
                }
                None
            }
            _ => None,
        };
        match status {
            Some(STATUS_GOOD | STATUS_CHECK_CONDITION) => {
                unanswered.remove(&pdu.itt());
            }
            Some(other) => rig.fail(&format!(
                "a command in the window got status {other:#04x}: {:?}",
                describe(&[pdu])
            )),
            None => {}
        }
    }
    match session.ping() {
        Ok(others) if others.iter().all(|pdu| !ignored_itts.contains(&pdu.itt())) => {}
        Ok(others) => rig.fail(&format!(
            "lunard answered an out-of-window command late: {:?}",
            describe(&others)
        )),
        Err(err) => rig.fail(&format!("ping after the full window: {err}")),
    }

    // The session goes on: the next command uses the CmdSN lunard expects.
    session.set_next_cmd_sn(session.window().0);
    if let Err(err) = session.clear_unit_attentions(0) {
        rig.fail(&format!("TEST UNIT READY after the flood: {err}"));
    }
    let data = pattern(42, HOSTILE_LBA, 8, BLOCK_LEN);
    let write = session.execute(0, &scsi::write16(HOSTILE_LBA, 8, true), &data, 0);
    let read = session.execute(0, &scsi::read16(HOSTILE_LBA, 8), &[], 8 * BLOCK_LEN);
    match (write.and_then(check_good), read.and_then(check_good)) {
        (Ok(_), Ok(back)) if back.data == data => {}
        (Ok(_), Ok(_)) => rig.fail("data read back after the flood differs from what was written"),
        (write, read) => rig.fail(&format!("after the flood: write {write:?}, read {read:?}")),
    }
    if let Err(err) = session.logout() {
        rig.fail(&format!("logout after the flood: {err}"));
    }
    rig.assert_not_dropped(&[port], "the session that sent out-of-window commands");
    rig.finish(MemoryBudget {
        connections: 1,
        per_connection_kib: LOGGED_IN_CONNECTION_KIB,
    });
}
