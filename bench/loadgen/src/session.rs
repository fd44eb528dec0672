//! One logged-in session in full feature phase, without I/O of its own: the caller reads socket
//! bytes into [`Session::rx_spare`], calls [`Session::process`], and writes
//! [`Session::pending_tx`]. The session keeps a fixed table of task slots (the queue depth), each
//! with its own data buffer; honours the CmdSN window; sends write data as immediate data,
//! unsolicited Data-Out and R2T-solicited Data-Out as negotiated; answers NOP-In pings; and
//! reports each finished command once with its latency.

use std::time::Instant;

use lunar_wire::iscsi::header::Pdu;
use lunar_wire::iscsi::target::{
    async_event, data_in_flags, residual_flags, AsyncMessageHeader, DataInHeader,
    LogoutResponseHeader, NopInHeader, ReadyToTransferHeader, RejectHeader, ScsiResponseHeader,
};
use lunar_wire::iscsi::{next_frame, FrameError, FrameLimits, FrameStatus, Opcode, RESERVED_TAG};

use crate::login::Negotiated;
use crate::pdu::{self, Command, DataOut, Direction};
use crate::rxbuf::RxBuf;
use crate::scsi::{self, Cdb};
use crate::serial;

/// Bits of the ITT that name the task slot; the rest is a serial number.
const SLOT_BITS: u32 = 16;
const SLOT_MASK: u32 = (1 << SLOT_BITS) - 1;
/// Most task slots a session may have (keeps every ITT clear of the reserved tag).
pub const QUEUE_DEPTH_MAX: usize = 4096;
/// The ITT of the Logout Request: its slot bits name no task slot.
const LOGOUT_ITT: u32 = SLOT_MASK;

/// A command to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Op {
    pub cdb: Cdb,
    pub direction: Direction,
    pub len_bytes: u32,
    /// The caller's own tag, handed back on completion.
    pub user: u64,
}

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// SCSI status GOOD with no residual.
    Good,
    /// GOOD, but fewer (underflow) or more (overflow) bytes than expected.
    Residual {
        underflow: bool,
        count_bytes: u32,
    },
    CheckCondition {
        sense_key: Option<u8>,
    },
    /// Any other SCSI status.
    Status(u8),
    /// The iSCSI response code was not "command completed".
    TargetFailure(u8),
}

/// A finished command.
#[derive(Debug, Clone, Copy)]
pub struct Completion {
    pub op: Op,
    pub outcome: Outcome,
    pub latency_ns: u64,
    /// Data-In bytes received.
    pub received_bytes: u32,
}

/// Why a session cannot go on. Each ends the session (error recovery level 0).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error("framing: {0}")]
    Frame(#[from] FrameError),
    #[error("the target rejected a PDU (reason {reason:#04x})")]
    Rejected { reason: u8 },
    #[error("the target sent asynchronous event {event}")]
    TargetLeaving { event: u8 },
    #[error("unexpected PDU with opcode {opcode:#04x}")]
    Unexpected { opcode: u8 },
    #[error("{what} for unknown task {itt:#010x}")]
    UnknownTask { what: &'static str, itt: u32 },
    #[error("{what} of {len_bytes} bytes at offset {offset_bytes} is outside the {expected_bytes}-byte transfer of task {itt:#010x}")]
    OutOfBounds {
        what: &'static str,
        itt: u32,
        offset_bytes: u32,
        len_bytes: u32,
        expected_bytes: u32,
    },
    #[error("the receive buffer is full without a whole PDU")]
    RxFull,
}

/// Why a command cannot be sent now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    #[error("every task slot is busy")]
    NoSlot,
    #[error("the CmdSN window is closed")]
    WindowClosed,
    #[error("transfer of {len_bytes} bytes exceeds the slot buffer of {max_bytes} bytes")]
    TooLong { len_bytes: u32, max_bytes: usize },
}

#[derive(Debug, Clone, Copy)]
struct Task {
    itt: u32,
    op: Op,
    started: Instant,
    received_bytes: u32,
}

/// Everything but the receive buffer, so PDUs borrowed from it can be handled.
struct Core {
    lun: [u8; 8],
    negotiated: Negotiated,
    cmd_sn: u32,
    exp_stat_sn: u32,
    max_cmd_sn: u32,
    limits: FrameLimits,
    tasks: Vec<Option<Task>>,
    buffers: Vec<Box<[u8]>>,
    free_slots: Vec<u16>,
    itt_serial: u32,
    tx: Vec<u8>,
    tx_sent_bytes: usize,
    keep_read_data: bool,
    logout_sent: bool,
    logged_out: bool,
}

/// One session in full feature phase.
pub struct Session {
    rx: RxBuf,
    core: Core,
}

/// Shape of a session: queue depth and buffers.
#[derive(Debug, Clone, Copy)]
pub struct SessionShape {
    pub lun: [u8; 8],
    /// Task slots (commands in flight at most); 1..=[`QUEUE_DEPTH_MAX`].
    pub queue_depth: usize,
    /// Bytes of each slot's data buffer: the largest transfer.
    pub slot_buffer_bytes: usize,
    /// Our MaxRecvDataSegmentLength.
    pub recv_data_segment_max_bytes: u32,
}

impl Session {
    /// A session that finished login with `negotiated`; `rx` holds any bytes read past login.
    pub fn new(shape: SessionShape, negotiated: Negotiated, rx: RxBuf) -> Session {
        let queue_depth = shape.queue_depth.clamp(1, QUEUE_DEPTH_MAX);
        Session {
            rx,
            core: Core {
                lun: shape.lun,
                negotiated,
                cmd_sn: negotiated.cmd_sn,
                exp_stat_sn: negotiated.exp_stat_sn,
                max_cmd_sn: negotiated.max_cmd_sn,
                limits: FrameLimits {
                    max_data_segment_len_bytes: shape.recv_data_segment_max_bytes,
                    ..FrameLimits::LOGIN
                },
                tasks: vec![None; queue_depth],
                buffers: (0..queue_depth)
                    .map(|_| vec![0u8; shape.slot_buffer_bytes].into_boxed_slice())
                    .collect(),
                // Slot numbers fit in u16: the depth is at most QUEUE_DEPTH_MAX.
                free_slots: (0..queue_depth as u16).rev().collect(),
                itt_serial: 0,
                tx: Vec::new(),
                tx_sent_bytes: 0,
                keep_read_data: false,
                logout_sent: false,
                logged_out: false,
            },
        }
    }

    /// Whether Data-In bytes are copied into the slot buffer (for verification or parsing).
    pub fn set_keep_read_data(&mut self, keep: bool) {
        self.core.keep_read_data = keep;
    }

    /// Fills every slot buffer with `fill` (write payloads when data is not verified).
    pub fn fill_slot_buffers(&mut self, fill: &[u8]) {
        for buffer in &mut self.core.buffers {
            for (dst, src) in buffer.iter_mut().zip(fill.iter().cycle()) {
                *dst = *src;
            }
        }
    }

    pub fn in_flight(&self) -> usize {
        self.core.tasks.len() - self.core.free_slots.len()
    }

    /// A command can be submitted now: a slot is free and the CmdSN window is open.
    pub fn can_submit(&self) -> bool {
        !self.core.free_slots.is_empty()
            && serial::le(self.core.cmd_sn, self.core.max_cmd_sn)
            && !self.core.logout_sent
    }

    /// Queues a command for sending. For a write, `prepare` fills the data first.
    pub fn submit(
        &mut self,
        op: Op,
        now: Instant,
        prepare: impl FnOnce(&mut [u8]),
    ) -> Result<(), SubmitError> {
        self.core.submit(op, now, prepare)
    }

    /// Queues a Logout Request; [`Session::logged_out`] turns true when the target answers.
    pub fn logout(&mut self) {
        let core = &mut self.core;
        if core.logout_sent {
            return;
        }
        core.logout_sent = true;
        // An immediate Logout carries the next CmdSN without taking it.
        let _ = pdu::push_logout(&mut core.tx, LOGOUT_ITT, core.cmd_sn, core.exp_stat_sn);
    }

    pub fn logged_out(&self) -> bool {
        self.core.logged_out
    }

    /// Room to read socket bytes into; then call [`Session::commit_rx`].
    pub fn rx_spare(&mut self) -> &mut [u8] {
        self.rx.spare_mut()
    }

    pub fn commit_rx(&mut self, len_bytes: usize) {
        self.rx.commit(len_bytes);
    }

    /// Handles every whole PDU received, calling `on_done` for each finished command with the
    /// slot's data (the read data when kept, the written data for writes).
    pub fn process(
        &mut self,
        now: Instant,
        on_done: &mut impl FnMut(&Completion, &[u8]),
    ) -> Result<(), SessionError> {
        loop {
            let len_bytes = match next_frame(self.rx.filled(), &self.core.limits)? {
                FrameStatus::Complete(frame) => {
                    self.core.handle(&frame, now, on_done)?;
                    frame.len_bytes
                }
                FrameStatus::NeedMore { needed_len_bytes } => {
                    if needed_len_bytes > self.rx.capacity_bytes() {
                        return Err(SessionError::RxFull);
                    }
                    return Ok(());
                }
            };
            self.rx.consume(len_bytes);
        }
    }

    /// Bytes queued for the socket.
    pub fn pending_tx(&self) -> &[u8] {
        &self.core.tx[self.core.tx_sent_bytes..]
    }

    /// Records that `len_bytes` of [`Session::pending_tx`] were written.
    pub fn advance_tx(&mut self, len_bytes: usize) {
        let core = &mut self.core;
        core.tx_sent_bytes = (core.tx_sent_bytes + len_bytes).min(core.tx.len());
        if core.tx_sent_bytes == core.tx.len() {
            core.tx.clear();
            core.tx_sent_bytes = 0;
        }
    }
}

impl Core {
    fn submit(
        &mut self,
        op: Op,
        now: Instant,
        prepare: impl FnOnce(&mut [u8]),
    ) -> Result<(), SubmitError> {
        if !serial::le(self.cmd_sn, self.max_cmd_sn) {
            return Err(SubmitError::WindowClosed);
        }
        let len = op.len_bytes as usize;
        let max_bytes = self.buffers.first().map_or(0, |b| b.len());
        if op.direction != Direction::None && len > max_bytes {
            return Err(SubmitError::TooLong {
                len_bytes: op.len_bytes,
                max_bytes,
            });
        }
        let slot = self.free_slots.pop().ok_or(SubmitError::NoSlot)?;
        let slot_index = usize::from(slot);
        self.itt_serial = (self.itt_serial + 1) & SLOT_MASK;
        let itt = (self.itt_serial << SLOT_BITS) | u32::from(slot);
        let cmd_sn = self.cmd_sn;
        self.cmd_sn = self.cmd_sn.wrapping_add(1);

        let n = self.negotiated;
        let (immediate_bytes, unsolicited_bytes) = if op.direction == Direction::Write {
            prepare(&mut self.buffers[slot_index][..len]);
            let immediate = if n.immediate_data {
                len.min(n.first_burst_bytes as usize)
                    .min(n.target_recv_data_segment_max_bytes as usize)
            } else {
                0
            };
            let unsolicited = if n.unsolicited_data_out {
                len.min(n.first_burst_bytes as usize)
            } else {
                immediate
            };
            (immediate, unsolicited.max(immediate))
        } else {
            (0, 0)
        };
        let data = &self.buffers[slot_index][..len.min(max_bytes)];
        // Encoding fails only past 16 MiB segments; immediate data is at most the negotiated
        // MaxRecvDataSegmentLength, itself below that.
        let _ = pdu::push_command(
            &mut self.tx,
            &Command {
                lun: self.lun,
                itt,
                direction: op.direction,
                expected_len_bytes: op.len_bytes,
                cmd_sn,
                exp_stat_sn: self.exp_stat_sn,
                cdb: &op.cdb,
                more_unsolicited: unsolicited_bytes > immediate_bytes,
                immediate_data: &data[..immediate_bytes],
            },
        );
        push_data_outs(
            &mut self.tx,
            DataOutRun {
                lun: self.lun,
                itt,
                ttt: RESERVED_TAG,
                exp_stat_sn: self.exp_stat_sn,
                segment_max_bytes: n.target_recv_data_segment_max_bytes as usize,
            },
            data,
            immediate_bytes,
            unsolicited_bytes,
        );
        self.tasks[slot_index] = Some(Task {
            itt,
            op,
            started: now,
            received_bytes: 0,
        });
        Ok(())
    }

    fn task_slot(&self, itt: u32, what: &'static str) -> Result<usize, SessionError> {
        let slot = (itt & SLOT_MASK) as usize;
        match self.tasks.get(slot) {
            Some(Some(task)) if task.itt == itt => Ok(slot),
            _ => Err(SessionError::UnknownTask { what, itt }),
        }
    }

    fn update_window(&mut self, exp_cmd_sn: u32, max_cmd_sn: u32) {
        // RFC 7143 §4.2.2.1: a MaxCmdSN below ExpCmdSN - 1 is ignored.
        if serial::lt(max_cmd_sn, exp_cmd_sn.wrapping_sub(1)) {
            return;
        }
        if serial::lt(self.max_cmd_sn, max_cmd_sn) {
            self.max_cmd_sn = max_cmd_sn;
        }
    }

    fn saw_stat_sn(&mut self, stat_sn: u32) {
        let next = stat_sn.wrapping_add(1);
        if serial::lt(self.exp_stat_sn, next) {
            self.exp_stat_sn = next;
        }
    }

    fn handle(
        &mut self,
        frame: &lunar_wire::iscsi::Frame<'_>,
        now: Instant,
        on_done: &mut impl FnMut(&Completion, &[u8]),
    ) -> Result<(), SessionError> {
        let bhs = frame.bhs_bytes;
        match Opcode::from_bits(bhs[0]) {
            Some(Opcode::DataIn) => {
                let h = DataInHeader::view(bhs);
                self.update_window(h.exp_cmd_sn.get(), h.max_cmd_sn.get());
                let itt = h.initiator_task_tag.get();
                let slot = self.task_slot(itt, "Data-In")?;
                let offset = h.buffer_offset.get();
                let len = frame.data.len() as u32;
                let expected = self.tasks[slot].map_or(0, |t| t.op.len_bytes);
                if u64::from(offset) + u64::from(len) > u64::from(expected) {
                    return Err(SessionError::OutOfBounds {
                        what: "Data-In",
                        itt,
                        offset_bytes: offset,
                        len_bytes: len,
                        expected_bytes: expected,
                    });
                }
                if self.keep_read_data {
                    let start = offset as usize;
                    self.buffers[slot][start..start + frame.data.len()].copy_from_slice(frame.data);
                }
                if let Some(task) = self.tasks[slot].as_mut() {
                    task.received_bytes = task.received_bytes.saturating_add(len);
                }
                if h.flags & data_in_flags::STATUS != 0 {
                    self.saw_stat_sn(h.stat_sn.get());
                    let outcome =
                        outcome_of(0, h.status, h.flags, h.residual_count.get(), frame.data);
                    self.complete(slot, outcome, now, on_done);
                }
            }
            Some(Opcode::ScsiResponse) => {
                let h = ScsiResponseHeader::view(bhs);
                self.update_window(h.exp_cmd_sn.get(), h.max_cmd_sn.get());
                self.saw_stat_sn(h.stat_sn.get());
                let slot = self.task_slot(h.initiator_task_tag.get(), "SCSI Response")?;
                let outcome = outcome_of(
                    h.response,
                    h.status,
                    h.flags,
                    h.residual_count.get(),
                    frame.data,
                );
                self.complete(slot, outcome, now, on_done);
            }
            Some(Opcode::ReadyToTransfer) => {
                let h = ReadyToTransferHeader::view(bhs);
                self.update_window(h.exp_cmd_sn.get(), h.max_cmd_sn.get());
                let itt = h.initiator_task_tag.get();
                let slot = self.task_slot(itt, "R2T")?;
                let offset = h.buffer_offset.get();
                let len = h.desired_data_transfer_len.get();
                let expected = self.tasks[slot].map_or(0, |t| t.op.len_bytes);
                if u64::from(offset) + u64::from(len) > u64::from(expected) {
                    return Err(SessionError::OutOfBounds {
                        what: "R2T",
                        itt,
                        offset_bytes: offset,
                        len_bytes: len,
                        expected_bytes: expected,
                    });
                }
                push_data_outs(
                    &mut self.tx,
                    DataOutRun {
                        lun: self.lun,
                        itt,
                        ttt: h.target_transfer_tag.get(),
                        exp_stat_sn: self.exp_stat_sn,
                        segment_max_bytes: self.negotiated.target_recv_data_segment_max_bytes
                            as usize,
                    },
                    &self.buffers[slot][..expected as usize],
                    offset as usize,
                    (offset + len) as usize,
                );
            }
            Some(Opcode::NopIn) => {
                let h = NopInHeader::view(bhs);
                self.update_window(h.exp_cmd_sn.get(), h.max_cmd_sn.get());
                let ttt = h.target_transfer_tag.get();
                if ttt != RESERVED_TAG {
                    let _ = pdu::push_nop_out_reply(
                        &mut self.tx,
                        h.lun,
                        ttt,
                        self.cmd_sn,
                        self.exp_stat_sn,
                    );
                }
            }
            Some(Opcode::LogoutResponse) => {
                let h = LogoutResponseHeader::view(bhs);
                self.saw_stat_sn(h.stat_sn.get());
                if h.initiator_task_tag.get() == LOGOUT_ITT {
                    self.logged_out = true;
                }
            }
            Some(Opcode::AsyncMessage) => {
                let h = AsyncMessageHeader::view(bhs);
                self.update_window(h.exp_cmd_sn.get(), h.max_cmd_sn.get());
                if h.async_event != async_event::SCSI_ASYNC_EVENT {
                    return Err(SessionError::TargetLeaving {
                        event: h.async_event,
                    });
                }
            }
            Some(Opcode::Reject) => {
                let h = RejectHeader::view(bhs);
                return Err(SessionError::Rejected { reason: h.reason });
            }
            _ => return Err(SessionError::Unexpected { opcode: bhs[0] }),
        }
        Ok(())
    }

    fn complete(
        &mut self,
        slot: usize,
        outcome: Outcome,
        now: Instant,
        on_done: &mut impl FnMut(&Completion, &[u8]),
    ) {
        let Some(task) = self.tasks[slot].take() else {
            return;
        };
        let completion = Completion {
            op: task.op,
            outcome,
            latency_ns: u64::try_from(now.saturating_duration_since(task.started).as_nanos())
                .unwrap_or(u64::MAX),
            received_bytes: task.received_bytes,
        };
        let len = (task.op.len_bytes as usize).min(self.buffers[slot].len());
        on_done(&completion, &self.buffers[slot][..len]);
        // The slot came from a u16 index.
        self.free_slots.push(slot as u16);
    }
}

/// What a final status means: response code, SCSI status, residual flags and sense data.
fn outcome_of(response: u8, status: u8, flags: u8, residual_count: u32, data: &[u8]) -> Outcome {
    if response != 0 {
        return Outcome::TargetFailure(response);
    }
    match status {
        scsi::STATUS_GOOD => {
            let underflow = flags & residual_flags::UNDERFLOW != 0;
            if underflow || flags & residual_flags::OVERFLOW != 0 {
                Outcome::Residual {
                    underflow,
                    count_bytes: residual_count,
                }
            } else {
                Outcome::Good
            }
        }
        scsi::STATUS_CHECK_CONDITION => Outcome::CheckCondition {
            sense_key: scsi::sense_key(scsi::sense_from_response_data(data)),
        },
        other => Outcome::Status(other),
    }
}

/// The fixed fields of a run of Data-Out PDUs.
struct DataOutRun {
    lun: [u8; 8],
    itt: u32,
    ttt: u32,
    exp_stat_sn: u32,
    segment_max_bytes: usize,
}

/// Appends Data-Out PDUs carrying `data[from..to]`, each at most the target's segment limit,
/// numbered from DataSN 0, the last one final.
fn push_data_outs(out: &mut Vec<u8>, run: DataOutRun, data: &[u8], from: usize, to: usize) {
    let to = to.min(data.len());
    let segment = run.segment_max_bytes.max(1);
    let mut offset = from;
    let mut data_sn = 0u32;
    while offset < to {
        let end = (offset + segment).min(to);
        let _ = pdu::push_data_out(
            out,
            &DataOut {
                lun: run.lun,
                itt: run.itt,
                ttt: run.ttt,
                data_sn,
                // Offsets are below the transfer length, a u32.
                buffer_offset_bytes: offset as u32,
                last: end == to,
                exp_stat_sn: run.exp_stat_sn,
                data: &data[offset..end],
            },
        );
        data_sn += 1;
        offset = end;
    }
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
