//! Contract between the reactor and one iSCSI connection (session = connection at ERL 0 with
//! MaxConnections=1): the configuration, the events the reactor feeds in, the [`Action`]s it
//! gets back, and the [`Connection`] type itself. Received bytes are framed in `intake` and
//! routed to the phase that owns them: the `login` module until the session is up, then the
//! full feature phase (`ffp`, `command`, `completion`, `tmf`). Timers live in `keepalive`.

use std::fmt;

use lunar_wire::iscsi::{DigestKind, FrameLimits};

pub use crate::catalog::{ChapConfig, ChapConfigError, TargetCatalog};
pub use crate::cdb_bytes::CdbBytes;
use crate::data_out_buf::DataOutBuf;
use crate::data_stream::DataOutStream;
use crate::entropy::Entropy;
use crate::keepalive::KeepAlive;
use crate::login::LoginState;
use crate::params::SessionParams;
pub use crate::sendq::BorrowedData;
use crate::sendq::{SendQueue, SEND_HIGH_WATER_BYTES};
use crate::seq::Sequencer;
use crate::tasks::Tasks;
use crate::text_exchange::TextExchange;
use crate::tmf::{Fence, PendingTmf};

/// Identifies a SCSI task within one connection: the Initiator Task Tag the host chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TaskId(pub u32);

/// Limits and identity a connection is created with.
#[derive(Debug, Clone)]
pub struct ConnConfig {
    /// Target portal group tag reported at login and in SendTargets.
    pub portal_group_tag: u16,
    /// Upper bound of our MaxRecvDataSegmentLength offer (bytes).
    pub max_recv_data_segment_len_bytes: u32,
    /// Upper bound for MaxBurstLength / FirstBurstLength the target accepts (bytes).
    pub max_burst_len_bytes: u32,
    /// Commands a session may have outstanding (CmdSN window width).
    pub session_queue_depth: u32,
    /// Idle time after which the target sends a NOP-In ping (ms).
    pub nop_in_interval_ms: u64,
    /// Time a NOP-In ping may stay unanswered before the connection is dropped (ms).
    pub nop_in_timeout_ms: u64,
    /// Time allowed to finish login (ms); a connection stuck in login is dropped.
    pub login_timeout_ms: u64,
    /// Time a write may wait for the Data-Out PDUs it solicited (or announced as unsolicited)
    /// without any arriving (ms); past it the connection is dropped.
    pub data_out_timeout_ms: u64,
}

impl Default for ConnConfig {
    fn default() -> Self {
        ConnConfig {
            portal_group_tag: 1,
            max_recv_data_segment_len_bytes: 256 * 1024,
            max_burst_len_bytes: 1024 * 1024,
            session_queue_depth: 128,
            nop_in_interval_ms: 5_000,
            nop_in_timeout_ms: 15_000,
            login_timeout_ms: 15_000,
            data_out_timeout_ms: 30_000,
        }
    }
}

/// Kind of session negotiated at login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionKind {
    Discovery,
    Normal,
}

/// Who is logged in on a connection: the session identity of RFC 7143 §4.4.1 (initiator name
/// and ISID, per target) and the TSIH the target assigned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionIdentity {
    pub kind: SessionKind,
    /// Lowercase initiator name.
    pub initiator: String,
    /// Lowercase target name (normal sessions).
    pub target: Option<String>,
    pub isid: [u8; 6],
    pub tsih: u16,
}

/// A SCSI command whose data-out (if any) has fully arrived, ready for the device model.
#[derive(Debug)]
pub struct ScsiCommand {
    pub task: TaskId,
    /// LUN number decoded from the SAM LUN field (peripheral or flat space addressing, see
    /// [`lunar_wire::iscsi::lun::decode`]); other addressing forms give a value of at least
    /// 16384 that matches no configured LUN.
    pub lun: u64,
    /// CDB bytes (16 for the BHS CDB, longer with an Additional Header Segment).
    pub cdb: CdbBytes,
    /// Expected Data Transfer Length from the SCSI Command PDU.
    pub expected_len_bytes: u32,
    /// Whether the initiator set the R (read) / W (write) flags.
    pub read: bool,
    pub write: bool,
    /// All data-out received for this command (immediate + unsolicited + solicited), in order.
    /// Its length is at most `expected_len_bytes`; its storage is aligned for `O_DIRECT`.
    /// Give it back with [`Connection::recycle`].
    pub data_out: DataOutBuf,
}

/// How a SCSI command finished, as the device model reports it.
#[derive(Debug, Clone, Copy)]
pub struct CommandResult<'a> {
    /// SCSI status byte (GOOD 0x00, CHECK CONDITION 0x02, ...).
    pub status: u8,
    /// Sense data (fixed or descriptor format) for CHECK CONDITION; empty otherwise.
    pub sense: &'a [u8],
    /// Data-in produced by the command (before truncation to the expected length).
    pub data_in: &'a [u8],
    /// Bytes the CDB itself asked to transfer (either direction), used to compute residuals
    /// against the Expected Data Transfer Length.
    pub scsi_transfer_len_bytes: u32,
}

/// Why a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    Logout,
    ProtocolError(String),
    LoginFailed(String),
    KeepAliveTimeout,
    PeerClosed,
    /// A PDU's header digest did not match: the byte stream cannot be trusted any more.
    HeaderDigestError,
    /// A write's Data-Out PDUs did not come within `ConnConfig::data_out_timeout_ms`.
    DataOutTimeout,
    /// A new login with the same initiator name and ISID replaced this session.
    Reinstated,
    /// A TARGET COLD RESET ended every session.
    TargetColdReset,
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseReason::Logout => f.write_str("logged out"),
            CloseReason::ProtocolError(reason) => write!(f, "protocol error: {reason}"),
            CloseReason::LoginFailed(reason) => write!(f, "login failed: {reason}"),
            CloseReason::KeepAliveTimeout => f.write_str("NOP-In ping not answered in time"),
            CloseReason::PeerClosed => f.write_str("peer closed the connection"),
            CloseReason::HeaderDigestError => f.write_str("header digest error"),
            CloseReason::DataOutTimeout => f.write_str("solicited Data-Out did not arrive in time"),
            CloseReason::Reinstated => f.write_str("session reinstated by a new login"),
            CloseReason::TargetColdReset => f.write_str("target cold reset"),
        }
    }
}

/// Names a reset the reactor carries out for a connection (the ITT of the TMF request).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ResetId(pub u32);

/// A task management function whose effects reach beyond this connection's own tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetFunction {
    /// Abort every task of the LU, from every I_T nexus (SAM: shared task set).
    ClearTaskSet {
        lun: u64,
    },
    LogicalUnitReset {
        lun: u64,
    },
    TargetWarmReset,
    /// A warm reset after which every session of the target is closed.
    TargetColdReset,
    /// Abort this nexus's tasks on every LU, as if the nexus was lost.
    ItNexusReset,
}

/// Which tasks a reset concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetScope {
    /// Every task of one LU of the target, from every session.
    Lun(u64),
    /// Every task of every LU of the target, from every session.
    Target,
    /// This session's tasks only.
    Nexus,
}

impl ResetFunction {
    pub fn scope(self) -> ResetScope {
        match self {
            ResetFunction::ClearTaskSet { lun } | ResetFunction::LogicalUnitReset { lun } => {
                ResetScope::Lun(lun)
            }
            ResetFunction::TargetWarmReset | ResetFunction::TargetColdReset => ResetScope::Target,
            ResetFunction::ItNexusReset => ResetScope::Nexus,
        }
    }
}

/// How the reactor finished a reset; becomes the TMF response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetOutcome {
    Complete,
    LunDoesNotExist,
    NotSupported,
    /// The initiator may not reset this (e.g. a target reset it is not authorized for).
    NotAuthorized,
}

/// What the connection asks of the reactor after an event.
#[derive(Debug)]
pub enum Action {
    /// Run this command through the SCSI device model and report with `on_command_done`.
    Execute(ScsiCommand),
    /// Login completed; from now on commands may arrive. If another session of the same
    /// target has the same initiator name and ISID, the reactor ends it with
    /// [`Connection::close_for_reinstatement`] (RFC 7143 §6.3.5).
    LoggedIn {
        kind: SessionKind,
        initiator: String,
        target: Option<String>,
        isid: [u8; 6],
        tsih: u16,
    },
    /// Flush pending send bytes, then close the socket.
    Close(CloseReason),
    /// Carry out a reset beyond this connection: abort the tasks in `function.scope()` on the
    /// target's other connections ([`Connection::abort_tasks`]), wait for their I/O, apply the
    /// device-model side (unit attentions, reservations), then call
    /// [`Connection::on_reset_done`] on this connection. This connection's own tasks in scope
    /// are already aborted and its response waits for their I/O as well.
    Reset {
        id: ResetId,
        function: ResetFunction,
    },
}

/// Where the connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Login,
    FullFeature,
    /// `Action::Close` was emitted (or is queued): nothing more is received or sent.
    Closed,
}

/// Who is logged in, fixed when the login completes.
#[derive(Debug, Clone)]
pub(crate) struct SessionInfo {
    pub identity: SessionIdentity,
    pub cid: u16,
}

/// A logout accepted while commands were still executing: its response waits for them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PendingLogout {
    pub itt: u32,
}

/// One iSCSI connection's state machine. See the module docs of the crate.
pub struct Connection {
    pub(crate) config: ConnConfig,
    pub(crate) phase: Phase,
    pub(crate) created_ms: u64,
    /// Bytes of a PDU not yet complete; never more than one PDU of the current limits.
    pub(crate) recv: Vec<u8>,
    /// A write data PDU (SCSI Command with immediate data, or Data-Out) whose data is being
    /// taken as it arrives (`recv` is empty meanwhile); see `data_stream`.
    pub(crate) stream: Option<DataOutStream>,
    pub(crate) send: SendQueue,
    pub(crate) seq: Sequencer,
    pub(crate) params: SessionParams,
    pub(crate) login: LoginState,
    pub(crate) session: Option<SessionInfo>,
    pub(crate) tasks: Tasks,
    pub(crate) text: TextExchange,
    pub(crate) keepalive: KeepAlive,
    pub(crate) tmfs: Vec<PendingTmf>,
    /// Task-set TMFs whose earlier commands have not all arrived yet.
    pub(crate) fences: Vec<Fence>,
    pub(crate) logout: Option<PendingLogout>,
    /// Actions produced outside `on_recv`/`on_tick` (in `on_command_done`), handed out at the
    /// next call that takes an action list.
    pub(crate) deferred_actions: Vec<Action>,
    pub(crate) ttt: TagAllocator,
    pub(crate) entropy: Entropy,
    /// The latest time any event brought (ms), for work started outside an event with a time.
    pub(crate) clock_ms: u64,
}

/// Hands out target transfer tags (R2T, NOP-In pings, text continuations); never the reserved
/// value and never zero.
#[derive(Debug)]
pub(crate) struct TagAllocator {
    next: u32,
}

impl TagAllocator {
    pub fn next(&mut self) -> u32 {
        let tag = self.next;
        self.next = match tag.wrapping_add(1) {
            lunar_wire::iscsi::RESERVED_TAG | 0 => 1,
            next => next,
        };
        tag
    }
}

impl Connection {
    /// A connection that reads its CHAP challenges from `/dev/urandom` (once per CHAP login).
    pub fn new(config: ConnConfig, now_ms: u64) -> Self {
        Self::with_entropy_source(config, now_ms, Entropy::Os)
    }

    /// A connection whose CHAP challenges derive from `seed`, which the caller draws from a
    /// cryptographically secure source (fresh per connection); no file is read.
    pub fn with_entropy(config: ConnConfig, now_ms: u64, seed: [u8; 32]) -> Self {
        Self::with_entropy_source(config, now_ms, Entropy::seeded(seed))
    }

    fn with_entropy_source(config: ConnConfig, now_ms: u64, entropy: Entropy) -> Self {
        let queue_depth = config.session_queue_depth.max(1);
        Connection {
            seq: Sequencer::new(queue_depth),
            tasks: Tasks::new(queue_depth),
            config,
            phase: Phase::Login,
            created_ms: now_ms,
            recv: Vec::new(),
            stream: None,
            send: SendQueue::default(),
            params: SessionParams::rfc_defaults(),
            login: LoginState::default(),
            session: None,
            text: TextExchange::default(),
            keepalive: KeepAlive::new(now_ms),
            tmfs: Vec::new(),
            fences: Vec::new(),
            logout: None,
            deferred_actions: Vec::new(),
            ttt: TagAllocator { next: 1 },
            entropy,
            clock_ms: now_ms,
        }
    }

    /// Report completion of a command previously emitted with `Action::Execute`. Its response
    /// is queued at once (unless the command was aborted); an action it causes (the `Close`
    /// after a logout or cold reset that waited for this command) is handed out by the next
    /// `on_tick` or `on_recv`.
    pub fn on_command_done(&mut self, task: TaskId, result: CommandResult<'_>, now_ms: u64) {
        self.clock_ms = self.clock_ms.max(now_ms);
        if self.phase != Phase::FullFeature {
            return;
        }
        self.complete_command(task.0, &result, None);
    }

    /// [`Connection::on_command_done`] for data-in that stays in the reactor's buffer
    /// `buffer`: `result.data_in` is that buffer's content from its start. Returns true when
    /// the queued response refers to it ([`BorrowedData`]): the reactor keeps the buffer
    /// unchanged until those bytes are sent. False when nothing refers to it (no data sent,
    /// the task was aborted, the connection is not in its full feature phase).
    pub fn on_command_done_borrowing(
        &mut self,
        task: TaskId,
        result: CommandResult<'_>,
        buffer: u64,
        now_ms: u64,
    ) -> bool {
        self.clock_ms = self.clock_ms.max(now_ms);
        if self.phase != Phase::FullFeature {
            return false;
        }
        self.complete_command(task.0, &result, Some(buffer))
    }

    /// Advance timers (NOP-In keep-alive, login timeout, Data-Out timeout).
    pub fn on_tick(&mut self, now_ms: u64, actions: &mut Vec<Action>) {
        self.clock_ms = self.clock_ms.max(now_ms);
        actions.append(&mut self.deferred_actions);
        self.check_timers(now_ms, actions);
    }

    /// Bytes waiting to be sent, for a reader that consumes them in place with
    /// [`Connection::consume_sent`] (it never uses [`Connection::on_command_done_borrowing`],
    /// whose data only [`Connection::take_send`] hands out).
    pub fn send_buf(&self) -> &[u8] {
        self.send.pending()
    }

    /// The reactor sent `n` bytes of `send_buf()`.
    pub fn consume_sent(&mut self, n: usize) {
        self.send.consume(n);
    }

    /// Move everything waiting to be sent to the end of `bytes` and `borrowed` (see
    /// [`BorrowedData`]), without copying when both are empty: the buffers trade places, so
    /// their allocations are reused for what comes next. The reactor sends from them while
    /// the state machine keeps queueing.
    pub fn take_send(&mut self, bytes: &mut Vec<u8>, borrowed: &mut Vec<BorrowedData>) {
        self.send.take_into(bytes, borrowed);
    }

    /// Bytes waiting to be sent, borrowed data included.
    pub fn send_pending_len_bytes(&self) -> usize {
        self.send.len_bytes()
    }

    /// Whether the reactor should keep reading from the socket (false while the connection is
    /// applying backpressure or closing).
    pub fn wants_recv(&self) -> bool {
        self.wants_recv_while_sending(0)
    }

    /// [`Connection::wants_recv`] when `in_flight_bytes` taken with
    /// [`Connection::take_send`] are not sent yet: they count against the same bound.
    pub fn wants_recv_while_sending(&self, in_flight_bytes: usize) -> bool {
        self.phase != Phase::Closed
            && self.send.len_bytes().saturating_add(in_flight_bytes) < SEND_HIGH_WATER_BYTES
            && self.tasks.executing() < self.seq.queue_depth()
    }

    /// Hand a data-out buffer back for reuse.
    pub fn recycle(&mut self, buf: DataOutBuf) {
        self.tasks.recycle(buf);
    }

    /// Bytes of a partially received PDU currently buffered.
    pub fn recv_buffered_len_bytes(&self) -> usize {
        self.recv.len()
    }

    /// The most [`Connection::recv_buffered_len_bytes`] can ever be: one PDU at the largest
    /// limits this connection may negotiate.
    pub fn max_recv_buffered_len_bytes(&self) -> usize {
        let login = FrameLimits::LOGIN.max_pdu_len_bytes();
        let ffp = FrameLimits {
            max_data_segment_len_bytes: crate::params::declared_max_recv_data_segment_len(
                &self.config,
            ),
            header_digest: DigestKind::Crc32c,
            data_digest: DigestKind::Crc32c,
        }
        .max_pdu_len_bytes();
        login.max(ffp)
    }

    /// The session on this connection once login completed.
    pub fn session_identity(&self) -> Option<&SessionIdentity> {
        self.session.as_ref().map(|s| &s.identity)
    }

    /// Ends this session because a new login reinstates it (same initiator name and ISID,
    /// TSIH 0): every task is aborted without a response, then the connection closes with
    /// [`CloseReason::Reinstated`]. Commands still executing in the reactor finish their I/O
    /// and their completions are ignored.
    pub fn close_for_reinstatement(&mut self, actions: &mut Vec<Action>) {
        self.terminate(CloseReason::Reinstated, actions);
    }

    /// Ends the session from outside (reinstatement, another session's TARGET COLD RESET,
    /// shutdown): tasks are dropped without responses and the connection closes.
    pub fn terminate(&mut self, reason: CloseReason, actions: &mut Vec<Action>) {
        if self.phase == Phase::Closed {
            return;
        }
        tracing::debug!(%reason, "ending iSCSI session from outside");
        for itt in self.tasks.tags_where(|_| true) {
            self.drop_task(itt);
        }
        self.tmfs.clear();
        self.fences.clear();
        self.logout = None;
        self.close(reason, actions);
    }

    /// The limits received PDUs are checked against in the current phase.
    pub(crate) fn frame_limits(&self) -> FrameLimits {
        match self.phase {
            Phase::FullFeature => FrameLimits {
                max_data_segment_len_bytes: self.params.max_recv_data_segment_len_bytes,
                header_digest: self.params.header_digest,
                data_digest: self.params.data_digest,
            },
            Phase::Login | Phase::Closed => FrameLimits::LOGIN,
        }
    }

    /// Ends the connection: the reactor flushes what is queued and closes the socket.
    pub(crate) fn close(&mut self, reason: CloseReason, actions: &mut Vec<Action>) {
        if self.phase == Phase::Closed {
            return;
        }
        // The reactor logs the close with the peer's address; this is the state machine's view.
        tracing::debug!(%reason, "closing iSCSI connection");
        self.phase = Phase::Closed;
        self.recv = Vec::new();
        actions.push(Action::Close(reason));
    }
}
