//! Received bytes to PDUs: framing against the limits of the current phase (an oversized PDU
//! is a protocol error, never an allocation), digest checks once the full feature phase
//! negotiated them (RFC 7143 §7.8: a header digest error drops the connection at ERL 0, a data
//! digest error gets a Reject and the PDU is discarded), the ExpStatSN acknowledgement every
//! initiator PDU carries, and dispatch to the phase that owns the PDU.

use lunar_wire::iscsi::codes::{login_status, reject_reason};
use lunar_wire::iscsi::digest::{header_digest, DIGEST_LEN_BYTES};
use lunar_wire::iscsi::{next_frame, Frame, FrameError, FrameStatus, Opcode, BHS_LEN_BYTES};

use crate::connection::{Action, CloseReason, Connection, Phase, TargetCatalog};

/// Offset of ExpStatSN in every initiator PDU's BHS.
const EXP_STAT_SN_OFFSET: usize = 28;

/// The ExpStatSN every initiator PDU carries.
pub(crate) fn exp_stat_sn(bhs_bytes: &[u8; BHS_LEN_BYTES]) -> u32 {
    let mut field = [0u8; 4];
    field.copy_from_slice(&bhs_bytes[EXP_STAT_SN_OFFSET..EXP_STAT_SN_OFFSET + 4]);
    u32::from_be_bytes(field)
}

impl Connection {
    /// Feed received bytes. Complete PDUs are processed; partial ones are kept (bounded by the
    /// negotiated limits; an oversized PDU is a protocol error, never an allocation).
    pub fn on_recv(
        &mut self,
        bytes: &[u8],
        catalog: &dyn TargetCatalog,
        now_ms: u64,
        actions: &mut Vec<Action>,
    ) {
        self.clock_ms = self.clock_ms.max(now_ms);
        actions.append(&mut self.deferred_actions);
        if self.phase == Phase::Closed || bytes.is_empty() {
            return;
        }
        // The rest of a write data PDU's data being taken as it arrives (see `data_stream`).
        let mut input = self.continue_data_out_stream(bytes, now_ms, actions);
        // Finish the PDU whose beginning is buffered, then take whole PDUs straight from the
        // input and keep only the incomplete tail.
        while !self.recv.is_empty() && self.phase != Phase::Closed {
            let limits = self.frame_limits();
            match next_frame(&self.recv, &limits) {
                Ok(FrameStatus::NeedMore { needed_len_bytes }) => {
                    let recv = std::mem::take(&mut self.recv);
                    if self.start_data_out_stream(&recv, now_ms, actions) {
                        self.recycle_recv(recv);
                        input = self.continue_data_out_stream(input, now_ms, actions);
                        continue;
                    }
                    self.recv = recv;
                    // Of a write data PDU, buffer no more than its header: the data can then
                    // go straight to its task.
                    let wanted = self
                        .streamable_header_len(&self.recv)
                        .filter(|&header| header > self.recv.len())
                        .unwrap_or(needed_len_bytes);
                    let take = wanted.saturating_sub(self.recv.len()).min(input.len());
                    if take == 0 {
                        return;
                    }
                    self.recv.extend_from_slice(&input[..take]);
                    input = &input[take..];
                }
                Ok(FrameStatus::Complete(_)) => {
                    let recv = std::mem::take(&mut self.recv);
                    if let Ok(FrameStatus::Complete(frame)) = next_frame(&recv, &limits) {
                        self.on_frame(&frame, catalog, now_ms, actions);
                    }
                    self.recycle_recv(recv);
                }
                Err(err) => {
                    let recv = std::mem::take(&mut self.recv);
                    self.on_frame_error(&recv, err, actions);
                    return;
                }
            }
        }
        while !input.is_empty() && self.phase != Phase::Closed {
            let limits = self.frame_limits();
            match next_frame(input, &limits) {
                Ok(FrameStatus::Complete(frame)) => {
                    input = &input[frame.len_bytes..];
                    self.on_frame(&frame, catalog, now_ms, actions);
                }
                Ok(FrameStatus::NeedMore { .. }) => {
                    if !self.start_data_out_stream(input, now_ms, actions) {
                        self.recv.extend_from_slice(input);
                    }
                    return;
                }
                Err(err) => {
                    self.on_frame_error(input, err, actions);
                    return;
                }
            }
        }
    }

    fn recycle_recv(&mut self, mut recv: Vec<u8>) {
        // Keep the allocation unless a previous PDU made it unusually large.
        recv.clear();
        if recv.capacity() <= 64 * 1024 && self.recv.is_empty() {
            self.recv = recv;
        }
    }

    fn on_frame(
        &mut self,
        frame: &Frame<'_>,
        catalog: &dyn TargetCatalog,
        now_ms: u64,
        actions: &mut Vec<Action>,
    ) {
        match self.phase {
            Phase::Login => self.on_login_phase_pdu(frame, catalog, now_ms, actions),
            Phase::FullFeature => {
                if frame.check_header_digest().is_err() {
                    tracing::warn!(
                        opcode = frame.bhs().opcode_bits(),
                        itt = frame.bhs().itt(),
                        "header digest error: the PDU boundaries cannot be trusted; dropping \
                         the connection (ErrorRecoveryLevel 0)"
                    );
                    self.close(CloseReason::HeaderDigestError, actions);
                    return;
                }
                // Only whole PDUs count as activity: a peer trickling bytes without ever
                // completing one is pinged and then dropped by the keep-alive.
                self.keepalive.on_activity(now_ms);
                self.acknowledge_status(exp_stat_sn(frame.bhs_bytes));
                if frame.check_data_digest().is_err() {
                    self.on_data_digest_error(frame, now_ms, actions);
                    return;
                }
                self.on_ffp_pdu(frame, catalog, now_ms, actions);
            }
            Phase::Closed => {}
        }
    }

    /// RFC 7143 §7.8: Reject with "data digest error" and discard the PDU. Solicited or
    /// unsolicited data cannot be requested again at ERL 0, so its task ends with CHECK
    /// CONDITION (protocol service CRC error) once its outstanding data is in; any other PDU
    /// is simply dropped (the initiator may send it again: its CmdSN stays unused).
    fn on_data_digest_error(&mut self, frame: &Frame<'_>, now_ms: u64, actions: &mut Vec<Action>) {
        let bhs = frame.bhs();
        tracing::warn!(
            opcode = bhs.opcode_bits(),
            itt = bhs.itt(),
            data_len_bytes = frame.data.len(),
            "data digest error: PDU rejected and discarded"
        );
        self.reject(reject_reason::DATA_DIGEST_ERROR, frame.bhs_bytes);
        match bhs.opcode() {
            Some(Opcode::DataOut) => self.on_corrupt_data_out(frame, now_ms, actions),
            Some(Opcode::ScsiCommand) => {
                // Unsolicited Data-Out of the discarded command may follow: drop it quietly.
                self.tasks.note_ended(bhs.itt());
            }
            _ => {}
        }
    }

    /// Folds a PDU's ExpStatSN into the acknowledged status; a value acknowledging status
    /// never sent is ignored.
    pub(crate) fn acknowledge_status(&mut self, exp_stat_sn: u32) {
        if let crate::seq::Acknowledgement::BeyondSent { next_stat_sn } =
            self.seq.acknowledge(exp_stat_sn)
        {
            tracing::debug!(
                exp_stat_sn,
                next_stat_sn,
                "ExpStatSN acknowledges status never sent; ignored"
            );
        }
    }

    fn on_frame_error(&mut self, bytes: &[u8], err: FrameError, actions: &mut Vec<Action>) {
        let reason = format!("malformed PDU: {err}");
        if self.phase == Phase::FullFeature && self.header_digest_mismatch(bytes) {
            // The length that made the PDU unacceptable is itself corrupt.
            tracing::warn!("header digest error in an oversized PDU; dropping the connection");
            self.close(CloseReason::HeaderDigestError, actions);
            return;
        }
        match (self.phase, bytes.first_chunk::<BHS_LEN_BYTES>()) {
            (Phase::Login, _) => {
                self.fail_login_with(login_status::INITIATOR_ERROR, reason, actions)
            }
            (Phase::FullFeature, Some(bhs)) => {
                let bhs = *bhs;
                self.protocol_error(&bhs, reason, actions);
            }
            _ => self.close(CloseReason::ProtocolError(reason), actions),
        }
    }

    /// Whether `bytes` start with a header whose digest (negotiated, and fully received) does
    /// not match.
    fn header_digest_mismatch(&self, bytes: &[u8]) -> bool {
        if self.params.header_digest != lunar_wire::iscsi::DigestKind::Crc32c {
            return false;
        }
        let Some(bhs) = bytes.first_chunk::<BHS_LEN_BYTES>() else {
            return false;
        };
        let ahs_end = BHS_LEN_BYTES + usize::from(bhs[4]) * 4;
        match (
            bytes.get(BHS_LEN_BYTES..ahs_end),
            bytes.get(ahs_end..ahs_end + DIGEST_LEN_BYTES),
        ) {
            (Some(ahs), Some(received)) => received != header_digest(bhs, ahs),
            _ => false,
        }
    }
}
