//! Full feature phase dispatch (RFC 7143 §4): routes each PDU by opcode, applies CmdSN
//! admission, answers NOP-Out pings, handles Logout, and rejects what is malformed,
//! unsupported or out of place (Reject with the PDU's header as its data).

use lunar_wire::iscsi::codes::{logout_reason, logout_response, reject_reason};
use lunar_wire::iscsi::initiator::{LogoutRequestHeader, NopOutHeader};
use lunar_wire::iscsi::target::{LogoutResponseHeader, NopInHeader, RejectHeader};
use lunar_wire::iscsi::{Frame, Opcode, Pdu, BHS_LEN_BYTES, RESERVED_TAG};

use crate::connection::{
    Action, CloseReason, Connection, PendingLogout, SessionKind, TargetCatalog,
};
use crate::seq::Admission;

impl Connection {
    pub(crate) fn on_ffp_pdu(
        &mut self,
        frame: &Frame<'_>,
        catalog: &dyn TargetCatalog,
        now_ms: u64,
        actions: &mut Vec<Action>,
    ) {
        match frame.bhs().opcode() {
            Some(Opcode::NopOut) => self.on_nop_out(frame),
            Some(Opcode::ScsiCommand) => self.on_scsi_command(frame, now_ms, actions),
            Some(Opcode::DataOut) => self.on_data_out(frame, now_ms, actions),
            Some(Opcode::TaskMgmtRequest) => self.on_task_mgmt(frame, actions),
            Some(Opcode::TextRequest) => self.on_text_request(frame, catalog),
            Some(Opcode::LogoutRequest) => self.on_logout(frame, actions),
            // A second login on a logged-in connection, or recovery at ERL 0.
            Some(Opcode::LoginRequest | Opcode::SnackRequest) => {
                self.reject(reject_reason::PROTOCOL_ERROR, frame.bhs_bytes)
            }
            _ => self.reject(reject_reason::COMMAND_NOT_SUPPORTED, frame.bhs_bytes),
        }
    }

    /// Whether a request numbered `cmd_sn` is to be processed: immediate requests always,
    /// others only inside the CmdSN window (the RFC drops the rest silently).
    pub(crate) fn admit(&mut self, immediate: bool, cmd_sn: u32) -> bool {
        immediate || self.seq.admit(cmd_sn) == Admission::Accept
    }

    pub(crate) fn session_kind(&self) -> SessionKind {
        self.session
            .as_ref()
            .map_or(SessionKind::Normal, |session| session.identity.kind)
    }

    /// Sends a Reject carrying the offending header.
    pub(crate) fn reject(&mut self, reason: u8, bhs_bytes: &[u8; BHS_LEN_BYTES]) {
        tracing::debug!(reason, opcode = bhs_bytes[0] & 0x3f, "reject");
        let header = RejectHeader::new(reason, self.seq.take());
        self.send.push(&header, &[bhs_bytes]);
    }

    /// A protocol error the connection cannot recover from at ERL 0: Reject, then close.
    pub(crate) fn protocol_error(
        &mut self,
        bhs_bytes: &[u8; BHS_LEN_BYTES],
        reason: String,
        actions: &mut Vec<Action>,
    ) {
        self.reject(reject_reason::PROTOCOL_ERROR, bhs_bytes);
        self.close(CloseReason::ProtocolError(reason), actions);
    }

    fn on_nop_out(&mut self, frame: &Frame<'_>) {
        let nop = NopOutHeader::view(frame.bhs_bytes);
        let itt = nop.initiator_task_tag.get();
        let ttt = nop.target_transfer_tag.get();
        if itt == RESERVED_TAG {
            // No answer wanted: a reply to our ping, or just an ExpStatSN update.
            if ttt != RESERVED_TAG && !self.keepalive.answered(ttt) {
                tracing::debug!(ttt, "NOP-Out for an unknown ping");
            }
            return;
        }
        if ttt != RESERVED_TAG {
            self.reject(reject_reason::INVALID_PDU_FIELD, frame.bhs_bytes);
            return;
        }
        if !self.admit(frame.bhs().is_immediate(), nop.cmd_sn.get()) {
            return;
        }
        let echo_len = frame
            .data
            .len()
            .min(self.params.max_xmit_data_segment_len_bytes as usize);
        let header = NopInHeader::new(nop.lun, itt, RESERVED_TAG, self.seq.take());
        self.send.push(&header, &[&frame.data[..echo_len]]);
    }

    fn on_logout(&mut self, frame: &Frame<'_>, actions: &mut Vec<Action>) {
        let req = LogoutRequestHeader::view(frame.bhs_bytes);
        let itt = req.initiator_task_tag.get();
        if !self.admit(frame.bhs().is_immediate(), req.cmd_sn.get()) {
            return;
        }
        let our_cid = self.session.as_ref().map_or(0, |s| s.cid);
        match req.reason_code() {
            logout_reason::CLOSE_SESSION | logout_reason::CLOSE_CONNECTION => {
                if req.reason_code() == logout_reason::CLOSE_CONNECTION && req.cid.get() != our_cid
                {
                    self.send_logout_response(itt, logout_response::CID_NOT_FOUND);
                    return;
                }
                // Writes still waiting for data will not get it any more.
                for itt in self
                    .tasks
                    .tags_where(|t| !matches!(t.state, crate::tasks::TaskState::Executing))
                {
                    self.drop_task(itt);
                }
                if self.tasks.executing() > 0 {
                    self.logout = Some(PendingLogout { itt });
                } else {
                    self.finish_logout(itt, actions);
                }
            }
            logout_reason::REMOVE_FOR_RECOVERY => {
                self.send_logout_response(itt, logout_response::RECOVERY_NOT_SUPPORTED)
            }
            _ => self.reject(reject_reason::INVALID_PDU_FIELD, frame.bhs_bytes),
        }
    }

    /// Answers the logout and closes; Time2Wait/Time2Retain are meaningless at ERL 0.
    pub(crate) fn finish_logout(&mut self, itt: u32, actions: &mut Vec<Action>) {
        self.logout = None;
        self.send_logout_response(itt, logout_response::SUCCESS);
        self.close(CloseReason::Logout, actions);
    }

    fn send_logout_response(&mut self, itt: u32, response: u8) {
        let header = LogoutResponseHeader::new(itt, response, 0, 0, self.seq.take());
        self.send.push(&header, &[]);
    }
}
