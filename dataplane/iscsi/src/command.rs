//! SCSI Command intake and write data (RFC 7143 §11.3, §11.7, §11.8): checks a command against
//! the session (discovery, pending logout, tags, window), gathers immediate data, the
//! unsolicited Data-Out sequence (InitialR2T=No, up to FirstBurstLength) and solicited data
//! (R2Ts of at most MaxBurstLength, at most MaxOutstandingR2T at a time, within the
//! connection's solicited-data budget), checks DataSN and buffer offsets (in order, as
//! DataPDUInOrder and DataSequenceInOrder require), and emits `Action::Execute` once all
//! data-out is in. A Data-Out that breaks these rules cannot be recovered at ERL 0: it is
//! rejected and its task terminated with CHECK CONDITION (RFC 7143 §11.17.1); the rest of the
//! session carries on. A Data-Out whose data digest failed ends its task the same way once the
//! data of its outstanding R2Ts is in (RFC 7143 §7.8). Commands a task-set function fenced off
//! (see `tmf`) are dropped on arrival.

use lunar_wire::iscsi::ahs;
use lunar_wire::iscsi::codes::reject_reason;
use lunar_wire::iscsi::header::{FINAL_BIT, IMMEDIATE_BIT};
use lunar_wire::iscsi::initiator::{DataOutHeader, ScsiCommandHeader};
use lunar_wire::iscsi::target::ReadyToTransferHeader;
use lunar_wire::iscsi::{lun, Frame, Pdu, BHS_LEN_BYTES, RESERVED_TAG};

use crate::cdb_bytes::CdbBytes;
use crate::completion::STATUS_CHECK_CONDITION;
use crate::connection::{Action, Connection, ScsiCommand, SessionKind, TaskId};
use crate::tasks::{
    R2tSeq, Refusal, Task, TaskState, UnsolicitedSeq, WriteProgress, MAX_COMMAND_DATA_OUT_BYTES,
};

/// Immediate commands accepted beyond the queue depth before they are rejected.
pub(crate) const IMMEDIATE_COMMAND_SLACK: u32 = 16;

/// A Data-Out PDU that breaks the sequence rules, and the additional sense code (with sense
/// key ABORTED COMMAND) its task is terminated with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DataOutError {
    pub reason: &'static str,
    pub asc_ascq: [u8; 2],
}

/// RFC 7143 §11.4.7.2: unexpected unsolicited data.
const UNEXPECTED_UNSOLICITED_DATA: [u8; 2] = [0x0c, 0x0c];
/// RFC 7143 §11.4.7.2: incorrect amount of data.
const INCORRECT_AMOUNT_OF_DATA: [u8; 2] = [0x0c, 0x0d];
/// SPC-4: DATA PHASE ERROR (out-of-order DataSN, offset or tag).
const DATA_PHASE_ERROR: [u8; 2] = [0x4b, 0x00];

fn data_out_error(reason: &'static str, asc_ascq: [u8; 2]) -> DataOutError {
    DataOutError { reason, asc_ascq }
}

/// Fixed-format sense data: ABORTED COMMAND with the given additional sense code.
fn aborted_command_sense([asc, ascq]: [u8; 2]) -> [u8; 18] {
    [
        0x70, 0, 0x0b, 0, 0, 0, 0, 10, 0, 0, 0, 0, asc, ascq, 0, 0, 0, 0,
    ]
}

impl Connection {
    pub(crate) fn on_scsi_command(
        &mut self,
        frame: &Frame<'_>,
        now_ms: u64,
        actions: &mut Vec<Action>,
    ) {
        let begun = self.begin_scsi_command(frame.bhs_bytes, frame.ahs, frame.data.len(), now_ms);
        if let Some(itt) = begun {
            self.append_data_out(itt, frame.data);
            self.advance_write(itt, now_ms, actions);
        }
    }

    /// Admits a SCSI Command PDU from its header, announcing `immediate_len_bytes` of
    /// immediate data, and creates its task. `Some(itt)` when the task was created: its
    /// immediate data is to be added with [`Connection::append_data_out`], after which
    /// [`Connection::advance_write`] runs. `None` when the command was dropped or rejected:
    /// its immediate data is dropped.
    pub(crate) fn begin_scsi_command(
        &mut self,
        bhs_bytes: &[u8; BHS_LEN_BYTES],
        ahs_bytes: &[u8],
        immediate_len_bytes: usize,
        now_ms: u64,
    ) -> Option<u32> {
        let cmd = ScsiCommandHeader::view(bhs_bytes);
        let immediate = bhs_bytes[0] & IMMEDIATE_BIT != 0;
        let cmd_sn = cmd.cmd_sn.get();
        let fenced = !immediate && self.fenced(cmd_sn, lun::decode(cmd.lun));
        if !self.admit(immediate, cmd_sn) {
            return None;
        }
        let itt = cmd.initiator_task_tag.get();
        if fenced {
            // Aborted by a task-set function that arrived first: no execution, no response.
            tracing::debug!(itt, cmd_sn, "command aborted on arrival by an earlier TMF");
            self.tasks.note_ended(itt);
            return None;
        }
        if self.session_kind() == SessionKind::Discovery {
            self.reject(reject_reason::PROTOCOL_ERROR, bhs_bytes);
            return None;
        }
        if self.logout.is_some() {
            self.reject(reject_reason::WAITING_FOR_LOGOUT, bhs_bytes);
            return None;
        }
        if itt == RESERVED_TAG {
            self.reject(reject_reason::INVALID_PDU_FIELD, bhs_bytes);
            return None;
        }
        if self.tasks.contains(itt) {
            self.reject(reject_reason::TASK_IN_PROGRESS, bhs_bytes);
            return None;
        }
        let limit = self.seq.queue_depth() + IMMEDIATE_COMMAND_SLACK;
        if self.tasks.len() >= limit as usize {
            let reason = if immediate {
                reject_reason::IMMEDIATE_COMMAND_REJECT
            } else {
                reject_reason::PROTOCOL_ERROR
            };
            self.reject(reason, bhs_bytes);
            return None;
        }
        let cdb = match ahs::extended_cdb(ahs_bytes) {
            Ok(Some(tail)) => CdbBytes::new(&cmd.cdb, tail),
            Ok(None) => CdbBytes::new(&cmd.cdb, &[]),
            Err(_) => {
                self.reject(reject_reason::INVALID_PDU_FIELD, bhs_bytes);
                return None;
            }
        };
        let expected_len_bytes = cmd.expected_data_transfer_len.get();
        let (read, write) = (cmd.is_read(), cmd.is_write());
        let unsolicited_follows = !cmd.is_final();
        let first_burst = self.params.first_burst_len_bytes.min(expected_len_bytes);
        let bad_immediate = immediate_len_bytes > 0
            && (!write
                || !self.params.immediate_data
                || immediate_len_bytes > first_burst as usize);
        let bad_unsolicited =
            unsolicited_follows && (!write || self.params.initial_r2t || expected_len_bytes == 0);
        if bad_immediate || bad_unsolicited {
            // Data-Out PDUs of this command may follow: drop them quietly.
            self.tasks.note_ended(itt);
            self.reject(reject_reason::PROTOCOL_ERROR, bhs_bytes);
            return None;
        }
        let refusal = if read && write {
            Some(Refusal::Bidirectional)
        } else if write && expected_len_bytes > MAX_COMMAND_DATA_OUT_BYTES {
            Some(Refusal::WriteTooLong)
        } else {
            None
        };
        let mut progress = WriteProgress {
            progress_ms: now_ms,
            ..WriteProgress::default()
        };
        if write && expected_len_bytes > 0 {
            if refusal.is_none() {
                let initial = (first_burst as usize).max(immediate_len_bytes);
                progress.data = self.tasks.buffer(initial);
            }
            progress.received_bytes = immediate_len_bytes as u32;
            progress.next_r2t_offset_bytes = progress.received_bytes;
            if unsolicited_follows {
                progress.unsolicited = Some(UnsolicitedSeq {
                    next_data_sn: 0,
                    limit_bytes: first_burst,
                });
            }
        }
        self.seq.hold();
        self.tasks.insert(Task {
            itt,
            lun: lun::decode(cmd.lun),
            lun_field: cmd.lun,
            cdb,
            expected_len_bytes,
            read,
            write,
            refusal,
            state: TaskState::Receiving(progress),
            r2ts_sent: 0,
            aborted: false,
        });
        Some(itt)
    }

    pub(crate) fn on_data_out(
        &mut self,
        frame: &Frame<'_>,
        now_ms: u64,
        actions: &mut Vec<Action>,
    ) {
        let itt = frame.bhs().itt();
        if self.begin_data_out(frame.bhs_bytes, frame.data.len(), now_ms) {
            self.append_data_out(itt, frame.data);
            self.advance_write(itt, now_ms, actions);
        }
    }

    /// Checks a Data-Out PDU's header, announcing `data_len_bytes` of data, against its task
    /// and moves the task's sequences on. True when the data is to be added with
    /// [`Connection::append_data_out`], after which [`Connection::advance_write`] runs; false
    /// when the PDU was refused (Reject, and the task ended) or is a stray one for a task the
    /// target ended: its data is dropped.
    pub(crate) fn begin_data_out(
        &mut self,
        bhs_bytes: &[u8; BHS_LEN_BYTES],
        data_len_bytes: usize,
        now_ms: u64,
    ) -> bool {
        let hdr = DataOutHeader::view(bhs_bytes);
        let itt = hdr.initiator_task_tag.get();
        if !self.tasks.contains(itt) {
            if !self.tasks.recently_ended(itt) {
                self.reject(reject_reason::INVALID_PDU_FIELD, bhs_bytes);
            }
            return false;
        }
        let is_final = hdr.flags & FINAL_BIT != 0;
        match self.accept_data_out(hdr, is_final, data_len_bytes, now_ms) {
            Ok(()) => true,
            Err(err) => {
                tracing::debug!(itt, reason = err.reason, "Data-Out refused");
                self.reject(reject_reason::PROTOCOL_ERROR, bhs_bytes);
                self.terminate_receiving_task(itt, err.asc_ascq);
                false
            }
        }
    }

    /// Adds data of an accepted Data-Out PDU (all of it, or the next part of it) to its
    /// task's buffer; a refused task keeps none.
    pub(crate) fn append_data_out(&mut self, itt: u32, data: &[u8]) {
        let Some(task) = self.tasks.get_mut(itt) else {
            return;
        };
        if task.refusal.is_some() {
            return;
        }
        if let TaskState::Receiving(write) = &mut task.state {
            write.data.extend_from_slice(data);
        }
    }

    /// A Data-Out whose data digest failed (already rejected): its data is discarded, but its
    /// header still moves the sequence on, and the task ends with CHECK CONDITION (protocol
    /// service CRC error) once the data of its outstanding R2Ts is in.
    pub(crate) fn on_corrupt_data_out(
        &mut self,
        frame: &Frame<'_>,
        now_ms: u64,
        actions: &mut Vec<Action>,
    ) {
        let hdr = DataOutHeader::view(frame.bhs_bytes);
        let itt = hdr.initiator_task_tag.get();
        let Some(task) = self.tasks.get_mut(itt) else {
            return;
        };
        if !matches!(task.state, TaskState::Receiving(_)) {
            return;
        }
        task.refusal = Some(Refusal::DataDigestError);
        match self.accept_data_out(hdr, frame.bhs().is_final(), frame.data.len(), now_ms) {
            Ok(()) => self.advance_write(itt, now_ms, actions),
            Err(err) => {
                tracing::debug!(
                    itt,
                    reason = err.reason,
                    "corrupt Data-Out also out of sequence"
                );
                self.terminate_receiving_task(itt, err.asc_ascq);
            }
        }
    }

    /// Checks one Data-Out PDU, announcing `data_len_bytes`, against the task's sequences and
    /// counts its data as received (the caller adds the bytes).
    fn accept_data_out(
        &mut self,
        hdr: &DataOutHeader,
        is_final: bool,
        data_len_bytes: usize,
        now_ms: u64,
    ) -> Result<(), DataOutError> {
        let itt = hdr.initiator_task_tag.get();
        let Some(task) = self.tasks.get_mut(itt) else {
            return Err(data_out_error("unknown task", DATA_PHASE_ERROR));
        };
        let expected_len_bytes = task.expected_len_bytes;
        let TaskState::Receiving(write) = &mut task.state else {
            return Err(data_out_error(
                "command is already executing",
                INCORRECT_AMOUNT_OF_DATA,
            ));
        };
        let too_much = data_out_error(
            "data beyond the expected data transfer length",
            INCORRECT_AMOUNT_OF_DATA,
        );
        let len = u32::try_from(data_len_bytes).map_err(|_| too_much)?;
        if hdr.buffer_offset.get() != write.received_bytes {
            return Err(data_out_error(
                "buffer offset out of order",
                DATA_PHASE_ERROR,
            ));
        }
        let end = write
            .received_bytes
            .checked_add(len)
            .filter(|&end| end <= expected_len_bytes)
            .ok_or(too_much)?;
        let ttt = hdr.target_transfer_tag.get();
        let data_sn = hdr.data_sn.get();
        if ttt == RESERVED_TAG {
            let Some(unsolicited) = write.unsolicited.as_mut() else {
                return Err(data_out_error(
                    "unsolicited data not expected",
                    UNEXPECTED_UNSOLICITED_DATA,
                ));
            };
            if data_sn != unsolicited.next_data_sn {
                return Err(data_out_error("unexpected DataSN", DATA_PHASE_ERROR));
            }
            if end > unsolicited.limit_bytes {
                return Err(data_out_error(
                    "unsolicited data beyond FirstBurstLength",
                    UNEXPECTED_UNSOLICITED_DATA,
                ));
            }
            unsolicited.next_data_sn = unsolicited.next_data_sn.wrapping_add(1);
            if is_final {
                write.unsolicited = None;
                write.next_r2t_offset_bytes = end;
            }
        } else {
            let Some(r2t) = write.r2ts.front_mut() else {
                return Err(data_out_error(
                    "no R2T outstanding",
                    INCORRECT_AMOUNT_OF_DATA,
                ));
            };
            if r2t.ttt != ttt {
                return Err(data_out_error(
                    "target transfer tag does not match the oldest R2T",
                    DATA_PHASE_ERROR,
                ));
            }
            if data_sn != r2t.next_data_sn {
                return Err(data_out_error("unexpected DataSN", DATA_PHASE_ERROR));
            }
            if r2t.received_bytes + len > r2t.len_bytes {
                return Err(data_out_error(
                    "more data than the R2T asked for",
                    INCORRECT_AMOUNT_OF_DATA,
                ));
            }
            r2t.received_bytes += len;
            r2t.next_data_sn = r2t.next_data_sn.wrapping_add(1);
            if r2t.received_bytes == r2t.len_bytes {
                write.r2ts.pop_front();
            } else if is_final {
                return Err(data_out_error(
                    "sequence ended before the R2T was satisfied",
                    INCORRECT_AMOUNT_OF_DATA,
                ));
            }
        }
        write.received_bytes = end;
        write.progress_ms = now_ms;
        Ok(())
    }

    /// Moves a receiving task on: executes it once all data is in, otherwise solicits more.
    /// A refused task solicits nothing and ends once the data already asked for is in.
    pub(crate) fn advance_write(&mut self, itt: u32, now_ms: u64, actions: &mut Vec<Action>) {
        let Some(task) = self.tasks.get(itt) else {
            return;
        };
        let TaskState::Receiving(write) = &task.state else {
            return;
        };
        if write.unsolicited.is_some() {
            return;
        }
        let all_in = write.received_bytes >= task.expected_len_bytes || !task.write;
        match task.refusal {
            // RFC 7143 §7.8: wait for the data of the R2Ts already sent.
            Some(Refusal::DataDigestError) if !write.r2ts.is_empty() => {}
            Some(_) => self.finish_receiving(itt, actions),
            None if all_in => self.finish_receiving(itt, actions),
            None => self.solicit(itt, now_ms),
        }
    }

    /// Sends the R2Ts a write may have outstanding, once it holds a share of the budget.
    pub(crate) fn solicit(&mut self, itt: u32, now_ms: u64) {
        let max_outstanding = self.params.max_outstanding_r2t.max(1) as usize;
        let max_burst = self.params.max_burst_len_bytes.max(1);
        let Some(task) = self.tasks.get(itt) else {
            return;
        };
        let expected_len_bytes = task.expected_len_bytes;
        let granted = matches!(&task.state, TaskState::Receiving(w) if w.granted);
        if !granted {
            if !self.tasks.try_grant(expected_len_bytes) {
                if !self.tasks.waiting_for_budget.contains(&itt) {
                    self.tasks.waiting_for_budget.push_back(itt);
                }
                return;
            }
            self.tasks.waiting_for_budget.retain(|&t| t != itt);
        }
        let Some(task) = self.tasks.get_mut(itt) else {
            return;
        };
        let TaskState::Receiving(write) = &mut task.state else {
            return;
        };
        if !write.granted {
            write.granted = true;
            // Waiting for the budget was the target's doing: the timeout starts now.
            write.progress_ms = write.progress_ms.max(now_ms);
            let missing = (expected_len_bytes as usize).saturating_sub(write.data.len());
            if task.refusal.is_none() {
                write.data.reserve_exact(missing);
            }
        }
        while write.r2ts.len() < max_outstanding && write.next_r2t_offset_bytes < expected_len_bytes
        {
            let offset_bytes = write.next_r2t_offset_bytes;
            let len_bytes = (expected_len_bytes - offset_bytes).min(max_burst);
            let ttt = self.ttt.next();
            let header = ReadyToTransferHeader::new(
                task.lun_field,
                itt,
                ttt,
                write.next_r2t_sn,
                offset_bytes,
                len_bytes,
                self.seq.peek(),
            );
            self.send.push(&header, &[]);
            write.r2ts.push_back(R2tSeq {
                ttt,
                offset_bytes,
                len_bytes,
                received_bytes: 0,
                next_data_sn: 0,
            });
            write.next_r2t_sn = write.next_r2t_sn.wrapping_add(1);
            write.next_r2t_offset_bytes = offset_bytes + len_bytes;
            task.r2ts_sent = task.r2ts_sent.wrapping_add(1);
        }
    }

    /// All data-out is in (or the command is refused): execute it, or answer the refusal.
    fn finish_receiving(&mut self, itt: u32, actions: &mut Vec<Action>) {
        let Some(task) = self.tasks.get_mut(itt) else {
            return;
        };
        if let Some(refusal) = task.refusal {
            let r2ts_sent = task.r2ts_sent;
            self.drop_task(itt);
            self.send_refusal(itt, refusal, r2ts_sent);
            return;
        }
        let cdb = std::mem::take(&mut task.cdb);
        let (lun, expected_len_bytes, read, write) =
            (task.lun, task.expected_len_bytes, task.read, task.write);
        let data_out = self.tasks.start_executing(itt).unwrap_or_default();
        actions.push(Action::Execute(ScsiCommand {
            task: TaskId(itt),
            lun,
            cdb,
            expected_len_bytes,
            read,
            write,
            data_out,
        }));
        self.serve_budget_waiters();
    }

    /// Terminates a task still receiving data with CHECK CONDITION, ABORTED COMMAND. A task
    /// already executing is left alone (the Reject was the answer).
    fn terminate_receiving_task(&mut self, itt: u32, asc_ascq: [u8; 2]) {
        let Some(task) = self.tasks.get(itt) else {
            return;
        };
        if !matches!(task.state, TaskState::Receiving(_)) {
            return;
        }
        let r2ts_sent = task.r2ts_sent;
        self.drop_task(itt);
        self.send_scsi_response(
            itt,
            STATUS_CHECK_CONDITION,
            &aborted_command_sense(asc_ascq),
            lunar_wire::iscsi::target::Residual::None,
            r2ts_sent,
        );
    }

    /// Ends a task the target will not execute (aborted, refused, logout): frees its window
    /// slot and budget share; Data-Out PDUs still in flight for it are dropped quietly.
    pub(crate) fn drop_task(&mut self, itt: u32) {
        if self.tasks.remove(itt).is_some() {
            self.seq.release();
            self.tasks.note_ended(itt);
            self.serve_budget_waiters();
        }
    }

    /// Lets writes waiting for the solicited-data budget proceed, oldest first.
    pub(crate) fn serve_budget_waiters(&mut self) {
        let now_ms = self.clock_ms;
        while let Some(&itt) = self.tasks.waiting_for_budget.front() {
            if !self.tasks.contains(itt) {
                self.tasks.waiting_for_budget.pop_front();
                continue;
            }
            self.solicit(itt, now_ms);
            if self.tasks.waiting_for_budget.front() == Some(&itt) {
                break;
            }
        }
    }
}
