//! The SCSI tasks of a connection, keyed by Initiator Task Tag: where each one is (receiving
//! data-out or executing in the reactor), the state of its write data (unsolicited sequence,
//! outstanding R2Ts), the data-out buffer pool, and the named bounds on buffered write data.

use std::collections::VecDeque;

use lunar_wire::keyhash::KeyHashMap;

use crate::cdb_bytes::CdbBytes;
use crate::data_out_buf::DataOutBuf;

/// Largest Expected Data Transfer Length accepted for a write; larger writes are refused with
/// CHECK CONDITION before any data is solicited. The device model should report a maximum
/// transfer length within it.
pub const MAX_COMMAND_DATA_OUT_BYTES: u32 = 16 * 1024 * 1024;

/// Write data a connection solicits at once (sum of the expected lengths of the writes that
/// have R2Ts out). A write that would exceed it waits for earlier writes to complete; one write
/// is always allowed so that progress never stops.
pub const MAX_SOLICITED_DATA_OUT_BYTES: u64 = 32 * 1024 * 1024;

/// Data-out buffers kept for reuse.
const POOL_MAX_BUFFERS: usize = 64;
/// Larger buffers are freed instead of pooled.
const POOL_MAX_BUFFER_CAPACITY_BYTES: usize = 4 * 1024 * 1024;
/// Tags of tasks ended by the target whose stray Data-Out PDUs are dropped quietly.
const RECENTLY_ENDED_TAGS: usize = 64;

/// Why a command is answered with CHECK CONDITION instead of being executed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Both R and W set: bidirectional commands are not supported.
    Bidirectional,
    /// Expected Data Transfer Length above [`MAX_COMMAND_DATA_OUT_BYTES`].
    WriteTooLong,
    /// A Data-Out PDU of the command failed its data digest: the data cannot be requested
    /// again at ERL 0, so the command ends once its outstanding data is in.
    DataDigestError,
}

/// The unsolicited Data-Out sequence that follows a command sent with F=0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct UnsolicitedSeq {
    pub next_data_sn: u32,
    /// Unsolicited data may reach this offset: min(FirstBurstLength, expected length).
    pub limit_bytes: u32,
}

/// One outstanding R2T and the Data-Out sequence answering it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct R2tSeq {
    pub ttt: u32,
    pub offset_bytes: u32,
    pub len_bytes: u32,
    pub received_bytes: u32,
    pub next_data_sn: u32,
}

/// Write data of a command still receiving it.
#[derive(Debug, Default)]
pub(crate) struct WriteProgress {
    /// Data received so far, from offset 0 (stays empty for refused commands).
    pub data: DataOutBuf,
    pub received_bytes: u32,
    pub unsolicited: Option<UnsolicitedSeq>,
    pub r2ts: VecDeque<R2tSeq>,
    /// Offset up to which data has been solicited or sent unsolicited.
    pub next_r2t_offset_bytes: u32,
    pub next_r2t_sn: u32,
    /// Whether this write holds a share of [`MAX_SOLICITED_DATA_OUT_BYTES`].
    pub granted: bool,
    /// When the write last made progress (command received, R2T sent, data received); the
    /// Data-Out timeout counts from here while data is expected.
    pub progress_ms: u64,
}

impl WriteProgress {
    /// Whether the initiator owes data right now (an unsolicited sequence or an R2T is open).
    pub fn expects_data(&self) -> bool {
        self.unsolicited.is_some() || !self.r2ts.is_empty()
    }
}

#[derive(Debug)]
pub(crate) enum TaskState {
    Receiving(WriteProgress),
    Executing,
}

#[derive(Debug)]
pub(crate) struct Task {
    pub itt: u32,
    pub lun: u64,
    pub lun_field: [u8; 8],
    pub cdb: CdbBytes,
    pub expected_len_bytes: u32,
    pub read: bool,
    pub write: bool,
    pub refusal: Option<Refusal>,
    pub state: TaskState,
    /// R2Ts sent, for ExpDataSN in the SCSI Response.
    pub r2ts_sent: u32,
    /// Set when a task management function (of this session or another) aborted the task
    /// while executing: its response is suppressed.
    pub aborted: bool,
}

#[derive(Debug)]
pub(crate) struct Tasks {
    map: KeyHashMap<u32, Task>,
    pool: Vec<DataOutBuf>,
    solicited_bytes: u64,
    /// Writes waiting for a share of the solicited data budget, oldest first.
    pub waiting_for_budget: VecDeque<u32>,
    recently_ended: VecDeque<u32>,
    executing: u32,
}

impl Tasks {
    pub fn new(queue_depth: u32) -> Tasks {
        Tasks {
            map: KeyHashMap::with_capacity_and_hasher(queue_depth as usize, Default::default()),
            pool: Vec::new(),
            solicited_bytes: 0,
            waiting_for_budget: VecDeque::new(),
            recently_ended: VecDeque::new(),
            executing: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn contains(&self, itt: u32) -> bool {
        self.map.contains_key(&itt)
    }

    pub fn get(&self, itt: u32) -> Option<&Task> {
        self.map.get(&itt)
    }

    pub fn get_mut(&mut self, itt: u32) -> Option<&mut Task> {
        self.map.get_mut(&itt)
    }

    pub fn insert(&mut self, task: Task) {
        if matches!(task.state, TaskState::Executing) {
            self.executing += 1;
        }
        self.map.insert(task.itt, task);
    }

    /// Removes a task, releasing its budget share and buffer; returns it.
    pub fn remove(&mut self, itt: u32) -> Option<Task> {
        let mut task = self.map.remove(&itt)?;
        match &mut task.state {
            TaskState::Executing => self.executing = self.executing.saturating_sub(1),
            TaskState::Receiving(write) => {
                if write.granted {
                    write.granted = false;
                    self.solicited_bytes = self
                        .solicited_bytes
                        .saturating_sub(u64::from(task.expected_len_bytes));
                }
                self.recycle(std::mem::take(&mut write.data));
                self.waiting_for_budget.retain(|&t| t != itt);
            }
        }
        Some(task)
    }

    /// Marks a receiving task as executing and hands out its data-out buffer.
    pub fn start_executing(&mut self, itt: u32) -> Option<DataOutBuf> {
        let task = self.map.get_mut(&itt)?;
        let data = match std::mem::replace(&mut task.state, TaskState::Executing) {
            TaskState::Receiving(mut write) => {
                if write.granted {
                    self.solicited_bytes = self
                        .solicited_bytes
                        .saturating_sub(u64::from(task.expected_len_bytes));
                }
                std::mem::take(&mut write.data)
            }
            TaskState::Executing => return None,
        };
        self.executing += 1;
        Some(data)
    }

    /// Tasks executing in the reactor.
    pub fn executing(&self) -> u32 {
        self.executing
    }

    /// Restarts the Data-Out clock of every write still receiving (the connection is not
    /// reading, so the data may well be waiting in the socket).
    pub fn restart_data_waits(&mut self, now_ms: u64) {
        for task in self.map.values_mut() {
            if let TaskState::Receiving(write) = &mut task.state {
                write.progress_ms = write.progress_ms.max(now_ms);
            }
        }
    }

    /// The oldest moment a write still expecting data last made progress.
    pub fn oldest_data_wait_ms(&self) -> Option<u64> {
        self.map
            .values()
            .filter_map(|t| match &t.state {
                TaskState::Receiving(write) if write.expects_data() => Some(write.progress_ms),
                _ => None,
            })
            .min()
    }

    /// Tries to reserve the solicited-data budget for a write of `len_bytes`.
    pub fn try_grant(&mut self, len_bytes: u32) -> bool {
        let len = u64::from(len_bytes);
        if self.solicited_bytes == 0 || self.solicited_bytes + len <= MAX_SOLICITED_DATA_OUT_BYTES {
            self.solicited_bytes += len;
            true
        } else {
            false
        }
    }

    /// Tags of tasks matching `pred`.
    pub fn tags_where(&self, pred: impl Fn(&Task) -> bool) -> Vec<u32> {
        let mut tags: Vec<u32> = self
            .map
            .values()
            .filter(|t| pred(t))
            .map(|t| t.itt)
            .collect();
        tags.sort_unstable();
        tags
    }

    /// A buffer with room for `len_bytes`, from the pool when possible.
    pub fn buffer(&mut self, len_bytes: usize) -> DataOutBuf {
        let mut buf = self.pool.pop().unwrap_or_default();
        buf.clear();
        buf.reserve_exact(len_bytes);
        buf
    }

    pub fn recycle(&mut self, mut buf: DataOutBuf) {
        if buf.capacity() == 0
            || buf.capacity() > POOL_MAX_BUFFER_CAPACITY_BYTES
            || self.pool.len() >= POOL_MAX_BUFFERS
        {
            return;
        }
        buf.clear();
        self.pool.push(buf);
    }

    /// Remembers that the target ended task `itt` early, so that Data-Out PDUs already in
    /// flight for it are dropped without a Reject.
    pub fn note_ended(&mut self, itt: u32) {
        if self.recently_ended.len() == RECENTLY_ENDED_TAGS {
            self.recently_ended.pop_front();
        }
        self.recently_ended.push_back(itt);
    }

    pub fn recently_ended(&self, itt: u32) -> bool {
        self.recently_ended.contains(&itt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receiving(itt: u32, len: u32) -> Task {
        Task {
            itt,
            lun: 0,
            lun_field: [0; 8],
            cdb: CdbBytes::new(&[0x2a], &[]),
            expected_len_bytes: len,
            read: false,
            write: true,
            refusal: None,
            state: TaskState::Receiving(WriteProgress::default()),
            r2ts_sent: 0,
            aborted: false,
        }
    }

    #[test]
    fn budget_admits_one_write_always_and_more_within_the_bound() {
        let mut tasks = Tasks::new(4);
        assert!(tasks.try_grant(MAX_COMMAND_DATA_OUT_BYTES * 4));
        assert!(!tasks.try_grant(1));
        let mut tasks = Tasks::new(4);
        assert!(tasks.try_grant(MAX_COMMAND_DATA_OUT_BYTES));
        assert!(tasks.try_grant(MAX_COMMAND_DATA_OUT_BYTES));
        assert!(!tasks.try_grant(1));
    }

    #[test]
    fn removing_or_executing_returns_the_budget() {
        let mut tasks = Tasks::new(4);
        let mut task = receiving(1, MAX_COMMAND_DATA_OUT_BYTES * 2);
        assert!(tasks.try_grant(task.expected_len_bytes));
        if let TaskState::Receiving(w) = &mut task.state {
            w.granted = true;
        }
        tasks.insert(task);
        assert!(!tasks.try_grant(1));
        assert!(tasks.start_executing(1).is_some());
        assert_eq!(tasks.executing(), 1);
        assert!(tasks.try_grant(1));
        assert!(tasks.remove(1).is_some());
        assert_eq!(tasks.executing(), 0);
    }

    #[test]
    fn pool_reuses_and_bounds_buffers() {
        let mut tasks = Tasks::new(1);
        tasks.recycle(DataOutBuf::with_capacity(100));
        let buf = tasks.buffer(10);
        assert!(buf.capacity() >= 100);
        tasks.recycle(DataOutBuf::with_capacity(
            POOL_MAX_BUFFER_CAPACITY_BYTES + 1,
        ));
        assert!(tasks.pool.is_empty());
    }

    #[test]
    fn recently_ended_is_bounded() {
        let mut tasks = Tasks::new(1);
        for itt in 0..(RECENTLY_ENDED_TAGS as u32 + 5) {
            tasks.note_ended(itt);
        }
        assert!(!tasks.recently_ended(0));
        assert!(tasks.recently_ended(RECENTLY_ENDED_TAGS as u32 + 4));
    }
}
