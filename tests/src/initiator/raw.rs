//! Low-level control of a logged-in [`Session`], for tests of broken and hostile initiators:
//! PDUs built and sent one at a time (commands without waiting for them, Data-Out at chosen
//! offsets, ABORT TASK, NOP-Out pings, or bytes that are no PDU at all), PDUs received one at a
//! time, and the command window `[ExpCmdSN, MaxCmdSN]` the target announced last.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use super::pdu::{op, Pdu, RESERVED_TAG};
use super::scsi;
use super::session::{check_good, InitiatorError, Session};

/// Unit attentions [`Session::clear_unit_attentions`] takes before giving up.
pub const UNIT_ATTENTIONS_MAX: usize = 8;

/// Task management function code of ABORT TASK (RFC 7143 §11.5.1).
pub const TMF_ABORT_TASK: u8 = 1;
/// TMF response "Function complete".
pub const TMF_FUNCTION_COMPLETE: u8 = 0;
/// TMF response "Task does not exist".
pub const TMF_TASK_DOES_NOT_EXIST: u8 = 1;

/// `a <= b` in 32-bit serial number arithmetic (RFC 1982), as CmdSN comparisons are made.
pub fn sn_le(a: u32, b: u32) -> bool {
    a == b || (b.wrapping_sub(a) as i32) > 0
}

/// Whether a PDU from the target carries a StatSN the initiator acknowledges with ExpStatSN.
fn carries_status(pdu: &Pdu) -> bool {
    match pdu.opcode() {
        op::DATA_IN => pdu.flags() & 0x01 != 0,
        op::NOP_IN => pdu.itt() != RESERVED_TAG,
        op::SCSI_RESPONSE
        | op::TASK_MGMT_RESPONSE
        | op::LOGIN_RESPONSE
        | op::TEXT_RESPONSE
        | op::LOGOUT_RESPONSE
        | op::REJECT => true,
        _ => false,
    }
}

impl Session {
    /// Tracks the command window every target PDU announces (ExpCmdSN at byte 28, MaxCmdSN at
    /// byte 32), ignoring announcements older than the one already seen.
    pub(super) fn note_window(&mut self, pdu: &Pdu) {
        let (exp, max) = (pdu.u32_at(28), pdu.u32_at(32));
        if sn_le(self.max_cmd_sn, max) {
            self.max_cmd_sn = max;
        }
        if sn_le(self.exp_cmd_sn, exp) {
            self.exp_cmd_sn = exp;
        }
    }

    /// The local end of the connection (lunard sees it as the peer address).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.stream.local_addr().ok()
    }

    /// `[ExpCmdSN, MaxCmdSN]` as the target announced it last.
    pub fn window(&self) -> (u32, u32) {
        (self.exp_cmd_sn, self.max_cmd_sn)
    }

    /// The CmdSN the next non-immediate command will carry.
    pub fn next_cmd_sn(&self) -> u32 {
        self.cmd_sn
    }

    /// Sets the CmdSN the next non-immediate command carries (after numbering commands by hand).
    pub fn set_next_cmd_sn(&mut self, cmd_sn: u32) {
        self.cmd_sn = cmd_sn;
    }

    /// Takes a CmdSN for a non-immediate command.
    pub fn take_cmd_sn(&mut self) -> u32 {
        let sn = self.cmd_sn;
        self.cmd_sn = self.cmd_sn.wrapping_add(1);
        sn
    }

    /// The ExpStatSN to put in the next PDU.
    pub fn exp_stat_sn(&self) -> u32 {
        self.exp_stat_sn
    }

    /// A fresh Initiator Task Tag.
    pub fn new_itt(&mut self) -> u32 {
        self.take_itt()
    }

    /// The target's MaxRecvDataSegmentLength: the longest data segment it accepts.
    pub fn target_max_data_segment_bytes(&self) -> u32 {
        self.target_recv_data_segment_bytes
    }

    /// TEST UNIT READY until it answers GOOD, taking the unit attentions a new I_T nexus
    /// reports first (power on, reset); at most [`UNIT_ATTENTIONS_MAX`] of them.
    pub fn clear_unit_attentions(&mut self, lun: u16) -> Result<(), InitiatorError> {
        let mut outcome = self.execute(lun, &scsi::test_unit_ready(), &[], 0)?;
        for _ in 0..UNIT_ATTENTIONS_MAX {
            let unit_attention = outcome
                .sense
                .is_some_and(|sense| sense.key == scsi::SENSE_KEY_UNIT_ATTENTION);
            if !unit_attention {
                break;
            }
            outcome = self.execute(lun, &scsi::test_unit_ready(), &[], 0)?;
        }
        check_good(outcome).map(|_| ())
    }

    /// Sends one PDU as it is.
    pub fn send_pdu(&mut self, pdu: &Pdu) -> Result<(), InitiatorError> {
        self.send(pdu)
    }

    /// Sends bytes as they are: part of a PDU, or no PDU at all.
    pub fn send_bytes(&mut self, bytes: &[u8]) -> Result<(), InitiatorError> {
        self.stream
            .write_all(bytes)
            .map_err(|source| InitiatorError::Io {
                op: "send raw bytes",
                source,
            })
    }

    /// Receives the next PDU, whatever it is; a status-carrying PDU advances ExpStatSN.
    pub fn recv_pdu(&mut self, waiting_for: &'static str) -> Result<Pdu, InitiatorError> {
        let pdu = self.recv(waiting_for)?;
        if carries_status(&pdu) {
            let next = pdu.stat_sn().wrapping_add(1);
            if sn_le(self.exp_stat_sn, next) {
                self.exp_stat_sn = next;
            }
        }
        Ok(pdu)
    }

    /// Changes how long one read from the socket may wait.
    pub fn set_read_timeout(&self, timeout: Duration) -> Result<(), InitiatorError> {
        self.stream
            .set_read_timeout(Some(timeout))
            .map_err(|source| InitiatorError::Io {
                op: "set read timeout",
                source,
            })
    }

    /// The socket, for tests that stop speaking iSCSI; bytes already received are dropped.
    pub fn into_stream(self) -> TcpStream {
        self.stream
    }

    /// A SCSI Command PDU (final, no immediate data) numbered `cmd_sn`, which need not be in
    /// the window: `read_len` bytes expected in, `write_len` bytes to go out through R2T.
    pub fn command_pdu(
        &self,
        lun: u16,
        itt: u32,
        cmd_sn: u32,
        cdb: &[u8],
        read_len: u32,
        write_len: u32,
    ) -> Pdu {
        let mut pdu = Pdu::new(op::SCSI_COMMAND, false);
        pdu.bhs[1] = 0x80
            | if read_len > 0 { 0x40 } else { 0 }
            | if write_len > 0 { 0x20 } else { 0 }
            | 0x01; // SIMPLE task attribute
        pdu.set_lun(lun);
        pdu.set_u32(16, itt);
        pdu.set_u32(20, read_len.max(write_len));
        pdu.set_u32(24, cmd_sn);
        pdu.set_u32(28, self.exp_stat_sn);
        let len = cdb.len().min(16);
        pdu.bhs[32..32 + len].copy_from_slice(&cdb[..len]);
        pdu
    }

    /// A Data-Out PDU for task `itt` answering the R2T tagged `ttt`.
    #[allow(clippy::too_many_arguments)]
    pub fn data_out_pdu(
        &self,
        lun: u16,
        itt: u32,
        ttt: u32,
        data_sn: u32,
        offset_bytes: u32,
        data: &[u8],
        is_final: bool,
    ) -> Pdu {
        let mut pdu = Pdu::new(op::DATA_OUT, false);
        pdu.bhs[1] = if is_final { 0x80 } else { 0 };
        pdu.set_lun(lun);
        pdu.set_u32(16, itt);
        pdu.set_u32(20, ttt);
        pdu.set_u32(28, self.exp_stat_sn);
        pdu.set_u32(36, data_sn);
        pdu.set_u32(40, offset_bytes);
        pdu.set_data(data.to_vec());
        pdu
    }

    /// An immediate ABORT TASK request (tag `itt`) for the task `ref_itt` numbered `ref_cmd_sn`.
    pub fn abort_task_pdu(&self, lun: u16, itt: u32, ref_itt: u32, ref_cmd_sn: u32) -> Pdu {
        let mut pdu = Pdu::new(op::TASK_MGMT_REQUEST, true);
        pdu.bhs[1] = 0x80 | TMF_ABORT_TASK;
        pdu.set_lun(lun);
        pdu.set_u32(16, itt);
        pdu.set_u32(20, ref_itt);
        pdu.set_u32(24, self.cmd_sn);
        pdu.set_u32(28, self.exp_stat_sn);
        pdu.set_u32(32, ref_cmd_sn);
        pdu
    }

    /// An immediate NOP-Out asking for a NOP-In answer (tag `itt`).
    pub fn ping_pdu(&self, itt: u32) -> Pdu {
        let mut pdu = Pdu::new(op::NOP_OUT, true);
        pdu.bhs[1] = 0x80;
        pdu.set_u32(16, itt);
        pdu.set_u32(20, RESERVED_TAG);
        pdu.set_u32(24, self.cmd_sn);
        pdu.set_u32(28, self.exp_stat_sn);
        pdu
    }

    /// Sends a NOP-Out ping and waits for its NOP-In; returns every other PDU received
    /// meanwhile (answering the target's own pings on the way). Everything the target
    /// processed before the ping has been answered by then, as it answers in order.
    pub fn ping(&mut self) -> Result<Vec<Pdu>, InitiatorError> {
        let itt = self.new_itt();
        let ping = self.ping_pdu(itt);
        self.send(&ping)?;
        let mut others = Vec::new();
        loop {
            let pdu = self.recv_pdu("the NOP-In answering a ping")?;
            if pdu.opcode() == op::NOP_IN && pdu.itt() == itt {
                return Ok(others);
            }
            if pdu.opcode() == op::NOP_IN && pdu.ttt() != RESERVED_TAG {
                self.answer_target_ping(&pdu)?;
                continue;
            }
            others.push(pdu);
        }
    }

    /// Answers a NOP-In the target sent as a ping (its TTT is not the reserved tag).
    pub fn answer_target_ping(&mut self, nop_in: &Pdu) -> Result<(), InitiatorError> {
        let mut reply = Pdu::new(op::NOP_OUT, true);
        reply.bhs[1] = 0x80;
        reply.bhs[8..16].copy_from_slice(&nop_in.bhs[8..16]);
        reply.set_u32(16, RESERVED_TAG);
        reply.set_u32(20, nop_in.ttt());
        reply.set_u32(24, self.cmd_sn);
        reply.set_u32(28, self.exp_stat_sn);
        self.send(&reply)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_comparison_wraps() {
        assert!(sn_le(5, 5));
        assert!(sn_le(5, 6));
        assert!(!sn_le(6, 5));
        assert!(sn_le(u32::MAX, 0));
        assert!(!sn_le(0, u32::MAX));
        assert!(sn_le(0, 0x7fff_ffff));
    }

    #[test]
    fn status_carriers() {
        let mut data_in = Pdu::new(op::DATA_IN, false);
        assert!(!carries_status(&data_in));
        data_in.bhs[1] = 0x81;
        assert!(carries_status(&data_in));
        let mut nop_in = Pdu::new(op::NOP_IN, false);
        nop_in.set_u32(16, RESERVED_TAG);
        assert!(
            !carries_status(&nop_in),
            "an unsolicited ping carries no StatSN"
        );
        nop_in.set_u32(16, 9);
        assert!(carries_status(&nop_in));
        assert!(carries_status(&Pdu::new(op::SCSI_RESPONSE, false)));
        assert!(!carries_status(&Pdu::new(op::R2T, false)));
    }
}
