//! ABORT TASK while a write's data is in flight. The write (1 MiB through R2T and Data-Out) is
//! aborted before any data, half-way through its first burst, after its first burst, or
//! after all its data; its remaining Data-Out is sent anyway, late. Afterwards:
//!
//! - the abort is answered (Function complete; or Task does not exist when the write had
//!   already completed);
//! - the aborted write is never answered after its abort's response;
//! - a write aborted while still receiving data never reaches the medium (the blocks keep
//!   their old contents); one aborted after all its data leaves each block old or new, never
//!   anything else;
//! - the session goes on (a write and read-back on it succeed) and is never dropped, and a
//!   well-behaved client on another connection keeps being served.

use lunar_tests::hostile::{MemoryBudget, Rig, HOSTILE_LBA, LOGGED_IN_CONNECTION_KIB};
use lunar_tests::initiator::pdu::{op, Pdu};
use lunar_tests::initiator::raw::{TMF_FUNCTION_COMPLETE, TMF_TASK_DOES_NOT_EXIST};
use lunar_tests::initiator::{check_good, pattern, scsi, Session};

/// Logical block length of the rig's volume (the daemon's default).
const BLOCK_LEN: u32 = 512;
/// Blocks of the aborted write: 1 MiB, several bursts.
const WRITE_BLOCKS: u32 = 2048;
/// Rounds of each abort point.
const ROUNDS: u64 = 4;
/// Memory for the session beyond a logged-in connection: a write's data buffered twice.
const WRITE_BUFFER_KIB: u64 = 2 * (WRITE_BLOCKS as u64 * BLOCK_LEN as u64) / 1024;

/// When the ABORT TASK goes out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AbortPoint {
    /// After the first R2T, before any Data-Out.
    BeforeData,
    /// Half-way through the first burst.
    MidBurst,
    /// After the first burst, once the second R2T arrived.
    AfterFirstBurst,
    /// After all the data (the write may be executing or done).
    AfterAllData,
}

const POINTS: [AbortPoint; 4] = [
    AbortPoint::BeforeData,
    AbortPoint::MidBurst,
    AbortPoint::AfterFirstBurst,
    AbortPoint::AfterAllData,
];

/// The write under attack, as the initiator sees it.
struct Write {
    itt: u32,
    cmd_sn: u32,
    data: Vec<u8>,
    /// Bytes sent so far (Data-Out goes in order).
    sent: usize,
    /// The R2T being answered and the DataSN of its next Data-Out.
    ttt: u32,
    data_sn: u32,
}

/// Waits for the next R2T of `itt`; `None` if the write's SCSI Response came instead.
fn next_r2t(rig: &Rig, session: &mut Session, itt: u32) -> Option<Pdu> {
    loop {
        let pdu = session
            .recv_pdu("an R2T")
            .unwrap_or_else(|err| rig.fail(&format!("waiting for an R2T: {err}")));
        match pdu.opcode() {
            op::R2T if pdu.itt() == itt => return Some(pdu),
            op::SCSI_RESPONSE if pdu.itt() == itt => return None,
            op::NOP_IN => {
                if let Err(err) = session.answer_target_ping(&pdu) {
                    rig.fail(&format!("answering a ping: {err}"));
                }
            }
            _ => rig.fail(&format!(
                "unexpected opcode {:#04x} during a write",
                pdu.opcode()
            )),
        }
    }
}

/// Sends `len` bytes of the burst `r2t` solicits, from where the write stands, in PDUs the
/// target accepts.
fn send_data(rig: &Rig, session: &mut Session, write: &mut Write, r2t: &Pdu, len: usize) {
    let max_pdu = session.target_max_data_segment_bytes() as usize;
    let end = write.sent + len;
    if write.ttt != r2t.ttt() {
        write.ttt = r2t.ttt();
        write.data_sn = 0;
    }
    while write.sent < end {
        let chunk_end = end.min(write.sent + max_pdu);
        let burst_end = r2t.u32_at(40) as usize + r2t.u32_at(44) as usize;
        let pdu = session.data_out_pdu(
            0,
            write.itt,
            r2t.ttt(),
            write.data_sn,
            write.sent as u32,
            &write.data[write.sent..chunk_end],
            chunk_end == burst_end,
        );
        if let Err(err) = session.send_pdu(&pdu) {
            rig.fail(&format!("sending Data-Out: {err}"));
        }
        write.data_sn += 1;
        write.sent = chunk_end;
    }
}

/// One aborted write at `point`; returns whether its data may have reached the medium.
fn aborted_write(rig: &Rig, session: &mut Session, point: AbortPoint, seed: u64) -> bool {
    let len = (WRITE_BLOCKS * BLOCK_LEN) as usize;
    let mut write = Write {
        itt: session.new_itt(),
        cmd_sn: session.take_cmd_sn(),
        data: pattern(seed, HOSTILE_LBA, WRITE_BLOCKS, BLOCK_LEN),
        sent: 0,
        ttt: u32::MAX,
        data_sn: 0,
    };
    let cdb = scsi::write16(HOSTILE_LBA, WRITE_BLOCKS, false);
    let command = session.command_pdu(0, write.itt, write.cmd_sn, &cdb, 0, len as u32);
    if let Err(err) = session.send_pdu(&command) {
        rig.fail(&format!("sending the write: {err}"));
    }
    let Some(first) = next_r2t(rig, session, write.itt) else {
        rig.fail("the write completed without asking for its data");
    };
    let burst = first.u32_at(44) as usize;
    let mut last_r2t = first.clone();
    match point {
        AbortPoint::BeforeData => {}
        AbortPoint::MidBurst => send_data(rig, session, &mut write, &first, burst / 2),
        AbortPoint::AfterFirstBurst => {
            send_data(rig, session, &mut write, &first, burst);
            if burst < len {
                match next_r2t(rig, session, write.itt) {
                    Some(r2t) => last_r2t = r2t,
                    None => rig.fail("the write completed after its first burst"),
                }
            }
        }
        AbortPoint::AfterAllData => {
            let mut r2t = first;
            loop {
                let want = r2t.u32_at(44) as usize;
                send_data(rig, session, &mut write, &r2t, want);
                if write.sent >= len {
                    break;
                }
                match next_r2t(rig, session, write.itt) {
                    Some(next) => r2t = next,
                    None => rig.fail("the write completed before all its data"),
                }
            }
        }
    }

    let tmf_itt = session.new_itt();
    let abort = session.abort_task_pdu(0, tmf_itt, write.itt, write.cmd_sn);
    if let Err(err) = session.send_pdu(&abort) {
        rig.fail(&format!("sending ABORT TASK: {err}"));
    }
    // Until the TMF response: the write may still complete (only when all data was sent).
    let mut completed_before_abort = false;
    let tmf_response = loop {
        let pdu = session
            .recv_pdu("the ABORT TASK response")
            .unwrap_or_else(|err| rig.fail(&format!("{point:?}: waiting for the abort: {err}")));
        match pdu.opcode() {
            op::TASK_MGMT_RESPONSE if pdu.itt() == tmf_itt => break pdu.bhs[2],
            op::SCSI_RESPONSE if pdu.itt() == write.itt && point == AbortPoint::AfterAllData => {
                completed_before_abort = true;
            }
            op::NOP_IN => {
                if let Err(err) = session.answer_target_ping(&pdu) {
                    rig.fail(&format!("answering a ping: {err}"));
                }
            }
            // An R2T already on its way for the aborted write is harmless.
            op::R2T if pdu.itt() == write.itt => {}
            other => rig.fail(&format!(
                "{point:?}: opcode {other:#04x} (itt {:#x}) while waiting for the abort",
                pdu.itt()
            )),
        }
    };
    let expected = if completed_before_abort {
        [TMF_TASK_DOES_NOT_EXIST, TMF_FUNCTION_COMPLETE]
    } else {
        [TMF_FUNCTION_COMPLETE, TMF_FUNCTION_COMPLETE]
    };
    if !expected.contains(&tmf_response) {
        rig.fail(&format!(
            "{point:?}: ABORT TASK answered {tmf_response:#04x} (write completed before: \
             {completed_before_abort})"
        ));
    }

    // The rest of the data, late, as an initiator that had it queued would send it.
    if write.sent < len {
        let rest = (last_r2t.u32_at(40) + last_r2t.u32_at(44)) as usize;
        let rest = rest.max(write.sent).min(len) - write.sent;
        send_data(rig, session, &mut write, &last_r2t, rest);
    }
    match session.ping() {
        Ok(others) => {
            if let Some(late) = others.iter().find(|pdu| {
                pdu.itt() == write.itt && matches!(pdu.opcode(), op::SCSI_RESPONSE | op::R2T)
            }) {
                rig.fail(&format!(
                    "{point:?}: the aborted write got opcode {:#04x} after its abort completed",
                    late.opcode()
                ));
            }
        }
        Err(err) => rig.fail(&format!("{point:?}: ping after the abort: {err}")),
    }
    point == AbortPoint::AfterAllData
}

fn read_blocks(rig: &Rig, session: &mut Session) -> Vec<u8> {
    let cdb = scsi::read16(HOSTILE_LBA, WRITE_BLOCKS);
    match session
        .execute(0, &cdb, &[], WRITE_BLOCKS * BLOCK_LEN)
        .and_then(check_good)
    {
        Ok(outcome) => outcome.data,
        Err(err) => rig.fail(&format!("reading the aborted write's blocks: {err}")),
    }
}

fn write_blocks(rig: &Rig, session: &mut Session, data: &[u8]) {
    let cdb = scsi::write16(HOSTILE_LBA, WRITE_BLOCKS, true);
    if let Err(err) = session.execute(0, &cdb, data, 0).and_then(check_good) {
        rig.fail(&format!("writing the blocks before an abort: {err}"));
    }
}

#[test]
fn abort_task_while_write_data_is_in_flight() {
    let rig = Rig::start("abort");
    let mut session = match Session::login(rig.addr(), rig.iqn()) {
        Ok(session) => session,
        Err(err) => rig.fail(&format!("login: {err}")),
    };
    let port = session.local_addr().map_or(0, |addr| addr.port());
    if let Err(err) = session.clear_unit_attentions(0) {
        rig.fail(&format!("TEST UNIT READY: {err}"));
    }
    let block = BLOCK_LEN as usize;
    for round in 0..ROUNDS {
        for (index, point) in POINTS.into_iter().enumerate() {
            let seed = 1000 * round + index as u64;
            let old = pattern(seed + 500_000, HOSTILE_LBA, WRITE_BLOCKS, BLOCK_LEN);
            write_blocks(&rig, &mut session, &old);
            let may_have_landed = aborted_write(&rig, &mut session, point, seed);
            let new = pattern(seed, HOSTILE_LBA, WRITE_BLOCKS, BLOCK_LEN);
            let now = read_blocks(&rig, &mut session);
            let bad_block = now.chunks(block).enumerate().position(|(n, got)| {
                let range = n * block..(n + 1) * block;
                got != &old[range.clone()] && !(may_have_landed && got == &new[range])
            });
            if let Some(n) = bad_block {
                rig.fail(&format!(
                    "round {round}, abort {point:?}: block {n} holds neither its old contents{}",
                    if may_have_landed {
                        " nor the aborted write's"
                    } else {
                        " (the aborted write reached the medium)"
                    }
                ));
            }
        }
    }
    let data = pattern(7, HOSTILE_LBA, WRITE_BLOCKS, BLOCK_LEN);
    write_blocks(&rig, &mut session, &data);
    if read_blocks(&rig, &mut session) != data {
        rig.fail("after the aborts, a write on the same session does not read back");
    }
    if let Err(err) = session.logout() {
        rig.fail(&format!("logout after the aborts: {err}"));
    }
    rig.assert_not_dropped(&[port], "the session that aborted writes");
    rig.finish(MemoryBudget {
        connections: 1,
        per_connection_kib: LOGGED_IN_CONNECTION_KIB + WRITE_BUFFER_KIB,
    });
}
