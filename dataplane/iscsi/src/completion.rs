//! Command completion (RFC 7143 §11.4, §11.7): Data-In PDUs split by the initiator's
//! MaxRecvDataSegmentLength and grouped in sequences of at most MaxBurstLength, numbered by
//! DataSN; status in the final Data-In (S bit) when the command is GOOD without sense,
//! otherwise a SCSI Response carrying the sense data; residual overflow/underflow from the
//! Expected Data Transfer Length against the length the CDB asked for and the data sent.

use lunar_wire::iscsi::target::{DataInHeader, DataInStatus, Residual, ScsiResponseHeader};

use crate::connection::{Action, CommandResult, Connection};
use crate::tasks::{Refusal, Task, TaskState};

/// SCSI status GOOD.
pub(crate) const STATUS_GOOD: u8 = 0x00;
/// SCSI status CHECK CONDITION.
pub(crate) const STATUS_CHECK_CONDITION: u8 = 0x02;

/// Fixed-format sense data: ILLEGAL REQUEST, INVALID FIELD IN COMMAND INFORMATION UNIT.
const SENSE_INVALID_FIELD_IN_COMMAND_IU: [u8; 18] = [
    0x70, 0, 0x05, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x0e, 0x03, 0, 0, 0, 0,
];

/// Fixed-format sense data: ABORTED COMMAND, PROTOCOL SERVICE CRC ERROR (RFC 7143 §11.4.7.2).
pub(crate) const SENSE_PROTOCOL_SERVICE_CRC_ERROR: [u8; 18] = [
    0x70, 0, 0x0b, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x47, 0x05, 0, 0, 0, 0,
];

/// The residual of a command: overflow when the CDB asked for more than the expected length;
/// otherwise underflow by what was not transferred (the data sent for reads, the CDB's length
/// for writes and commands without data).
pub(crate) fn residual(
    expected_len_bytes: u32,
    read: bool,
    scsi_transfer_len_bytes: u32,
    data_in_sent_bytes: u32,
) -> Residual {
    if scsi_transfer_len_bytes > expected_len_bytes {
        return Residual::Overflow(scsi_transfer_len_bytes - expected_len_bytes);
    }
    let transferred = if read {
        data_in_sent_bytes
    } else {
        scsi_transfer_len_bytes
    };
    if transferred < expected_len_bytes {
        Residual::Underflow(expected_len_bytes - transferred)
    } else {
        Residual::None
    }
}

impl Connection {
    /// Queues the response of a command; with `buffer`, its data-in is borrowed from that
    /// reactor buffer instead of copied (returns whether the response refers to it).
    pub(crate) fn complete_command(
        &mut self,
        itt: u32,
        result: &CommandResult<'_>,
        buffer: Option<u64>,
    ) -> bool {
        if !matches!(
            self.tasks.get(itt).map(|t| &t.state),
            Some(TaskState::Executing)
        ) {
            tracing::debug!(itt, "completion for a task that is not executing");
            return false;
        }
        let Some(task) = self.tasks.remove(itt) else {
            return false;
        };
        self.seq.release();
        let mut borrowed = false;
        if task.aborted {
            tracing::debug!(itt, "aborted command finished; its response is dropped");
            self.on_aborted_task_done(itt);
        } else {
            borrowed = self.send_command_result(&task, result, buffer);
        }
        if let Some(logout) = self.logout {
            if self.tasks.executing() == 0 {
                let mut actions: Vec<Action> = Vec::new();
                self.finish_logout(logout.itt, &mut actions);
                self.deferred_actions.append(&mut actions);
            }
        }
        borrowed
    }

    fn send_command_result(
        &mut self,
        task: &Task,
        result: &CommandResult<'_>,
        buffer: Option<u64>,
    ) -> bool {
        let data_in: &[u8] = if task.read {
            let len = result.data_in.len().min(task.expected_len_bytes as usize);
            &result.data_in[..len]
        } else {
            &[]
        };
        let residual = residual(
            task.expected_len_bytes,
            task.read,
            result.scsi_transfer_len_bytes,
            data_in.len() as u32,
        );
        let status_in_data =
            result.status == STATUS_GOOD && result.sense.is_empty() && !data_in.is_empty();
        let status = status_in_data.then_some((result.status, residual));
        let data_pdus = self.send_data_in(task, data_in, status, buffer);
        if !status_in_data {
            self.send_scsi_response(
                task.itt,
                result.status,
                result.sense,
                residual,
                data_pdus.wrapping_add(task.r2ts_sent),
            );
        }
        buffer.is_some() && data_pdus > 0
    }

    /// Sends `data` as Data-In PDUs (borrowed from the reactor's `buffer`, whose start `data`
    /// is, when given); the last one carries `status` when given. Returns the number of PDUs
    /// sent.
    fn send_data_in(
        &mut self,
        task: &Task,
        data: &[u8],
        status: Option<(u8, Residual)>,
        buffer: Option<u64>,
    ) -> u32 {
        let max_pdu = self.params.max_xmit_data_segment_len_bytes.max(1) as usize;
        let max_burst = self.params.max_burst_len_bytes.max(1) as usize;
        let mut offset = 0usize;
        let mut data_sn = 0u32;
        let mut burst_left = max_burst;
        while offset < data.len() {
            let len = max_pdu.min(data.len() - offset).min(burst_left);
            let end = offset + len;
            let last = end == data.len();
            burst_left -= len;
            let ends_sequence = last || burst_left == 0;
            if burst_left == 0 {
                burst_left = max_burst;
            }
            let (pdu_status, seq) = match status.filter(|_| last) {
                Some((status, residual)) => {
                    let seq = self.seq.take();
                    (
                        Some(DataInStatus {
                            status,
                            residual,
                            stat_sn: seq.stat_sn,
                        }),
                        seq,
                    )
                }
                None => (None, self.seq.peek()),
            };
            let header = DataInHeader::new(
                task.lun_field,
                task.itt,
                data_sn,
                offset as u32,
                ends_sequence,
                pdu_status,
                seq,
            );
            match buffer {
                Some(buffer) => {
                    self.send
                        .push_borrowed(&header, &data[offset..end], buffer, offset)
                }
                None => self.send.push(&header, &[&data[offset..end]]),
            }
            data_sn = data_sn.wrapping_add(1);
            offset = end;
        }
        data_sn
    }

    pub(crate) fn send_scsi_response(
        &mut self,
        itt: u32,
        status: u8,
        sense: &[u8],
        residual: Residual,
        exp_data_sn: u32,
    ) {
        let header = ScsiResponseHeader::new(itt, status, residual, exp_data_sn, self.seq.take());
        if sense.is_empty() {
            self.send.push(&header, &[]);
            return;
        }
        // SenseLength, then the sense data, within what the initiator accepts.
        let max_sense = (self.params.max_xmit_data_segment_len_bytes as usize)
            .saturating_sub(2)
            .min(usize::from(u16::MAX));
        let sense = &sense[..sense.len().min(max_sense)];
        let sense_len = (sense.len() as u16).to_be_bytes();
        self.send.push(&header, &[&sense_len, sense]);
    }

    /// Answers a command the target will not execute with CHECK CONDITION.
    pub(crate) fn send_refusal(&mut self, itt: u32, refusal: Refusal, r2ts_sent: u32) {
        tracing::debug!(itt, ?refusal, "command refused");
        let sense = match refusal {
            Refusal::Bidirectional | Refusal::WriteTooLong => &SENSE_INVALID_FIELD_IN_COMMAND_IU,
            Refusal::DataDigestError => &SENSE_PROTOCOL_SERVICE_CRC_ERROR,
        };
        self.send_scsi_response(
            itt,
            STATUS_CHECK_CONDITION,
            sense,
            Residual::None,
            r2ts_sent,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn residuals_follow_libiscsi_expectations() {
        // READ(10) of one 512-byte block.
        assert_eq!(residual(0, true, 512, 0), Residual::Overflow(512));
        assert_eq!(residual(10_000, true, 512, 512), Residual::Underflow(9488));
        assert_eq!(residual(200, true, 512, 200), Residual::Overflow(312));
        assert_eq!(residual(512, true, 1024, 512), Residual::Overflow(512));
        assert_eq!(residual(512, true, 512, 512), Residual::None);
        // MODE SENSE(6) with allocation length 255 returning less.
        assert_eq!(residual(255, true, 255, 36), Residual::Underflow(219));
        // WRITE(10) of one block.
        assert_eq!(residual(1024, false, 512, 0), Residual::Underflow(512));
        assert_eq!(residual(200, false, 512, 0), Residual::Overflow(312));
        assert_eq!(residual(0, false, 0, 0), Residual::None);
    }
}
