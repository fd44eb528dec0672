//! Contract between the reactor and one iSCSI connection (session = connection at ERL 0 with
//! MaxConnections=1), and the [`Connection`] type that receives bytes and events and routes
//! them to the phase that owns them: the `login` module until the session is up, then the full
//! feature phase (`ffp`, `command`, `completion`). Timers live in `keepalive`.

use lunar_wire::iscsi::{next_frame, FrameLimits, FrameStatus};

use crate::keepalive::KeepAlive;
use crate::login::LoginState;
use crate::params::SessionParams;
use crate::sendq::{SendQueue, SEND_HIGH_WATER_BYTES};
use crate::seq::Sequencer;
use crate::tasks::Tasks;
use crate::text_exchange::TextExchange;
use crate::tmf::PendingTmf;

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
        }
    }
}

/// What the connection needs to know about configured targets. The reactor implements it over
/// its current table snapshot.
pub trait TargetCatalog {
    /// Whether a target with this IQN exists (normal-session login).
    fn target_exists(&self, iqn: &str) -> bool;
    /// Targets to report in SendTargets: `(iqn, addresses)` with each address formatted as
    /// `ip:port,tpgt` (IPv6 in brackets). `only` restricts to one IQN (`SendTargets=<iqn>`).
    fn send_targets(&self, only: Option<&str>) -> Vec<(String, Vec<String>)>;
}

/// Kind of session negotiated at login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionKind {
    Discovery,
    Normal,
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
    pub cdb: Vec<u8>,
    /// Expected Data Transfer Length from the SCSI Command PDU.
    pub expected_len_bytes: u32,
    /// Whether the initiator set the R (read) / W (write) flags.
    pub read: bool,
    pub write: bool,
    /// All data-out received for this command (immediate + unsolicited + solicited), in order.
    /// Its length is at most `expected_len_bytes`. Give it back with [`Connection::recycle`].
    pub data_out: Vec<u8>,
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
}

/// What the connection asks of the reactor after an event.
#[derive(Debug)]
pub enum Action {
    /// Run this command through the SCSI device model and report with `on_command_done`.
    Execute(ScsiCommand),
    /// Login completed; from now on commands may arrive.
    LoggedIn {
        kind: SessionKind,
        initiator: String,
        target: Option<String>,
    },
    /// Flush pending send bytes, then close the socket.
    Close(CloseReason),
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
    pub kind: SessionKind,
    /// Normalised (lowercase) target name of a normal session.
    pub target: Option<String>,
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
    pub(crate) send: SendQueue,
    pub(crate) seq: Sequencer,
    pub(crate) params: SessionParams,
    pub(crate) login: LoginState,
    pub(crate) session: Option<SessionInfo>,
    pub(crate) tasks: Tasks,
    pub(crate) text: TextExchange,
    pub(crate) keepalive: KeepAlive,
    pub(crate) tmfs: Vec<PendingTmf>,
    pub(crate) logout: Option<PendingLogout>,
    /// Actions produced outside `on_recv`/`on_tick` (in `on_command_done`), handed out at the
    /// next call that takes an action list.
    pub(crate) deferred_actions: Vec<Action>,
    pub(crate) ttt: TagAllocator,
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
    pub fn new(config: ConnConfig, now_ms: u64) -> Self {
        let queue_depth = config.session_queue_depth.max(1);
        Connection {
            seq: Sequencer::new(queue_depth),
            tasks: Tasks::new(queue_depth),
            config,
            phase: Phase::Login,
            created_ms: now_ms,
            recv: Vec::new(),
            send: SendQueue::default(),
            params: SessionParams::rfc_defaults(),
            login: LoginState::default(),
            session: None,
            text: TextExchange::default(),
            keepalive: KeepAlive::new(now_ms),
            tmfs: Vec::new(),
            logout: None,
            deferred_actions: Vec::new(),
            ttt: TagAllocator { next: 1 },
        }
    }

    /// Feed received bytes. Complete PDUs are processed; partial ones are kept (bounded by the
    /// negotiated limits; an oversized PDU is a protocol error, never an allocation).
    pub fn on_recv(
        &mut self,
        bytes: &[u8],
        catalog: &dyn TargetCatalog,
        now_ms: u64,
        actions: &mut Vec<Action>,
    ) {
        actions.append(&mut self.deferred_actions);
        if self.phase == Phase::Closed || bytes.is_empty() {
            return;
        }
        self.keepalive.on_activity(now_ms);
        let mut input = bytes;
        // Finish the PDU whose beginning is buffered, then take whole PDUs straight from the
        // input and keep only the incomplete tail.
        while !self.recv.is_empty() && self.phase != Phase::Closed {
            let limits = self.frame_limits();
            match next_frame(&self.recv, &limits) {
                Ok(FrameStatus::NeedMore { needed_len_bytes }) => {
                    let take = needed_len_bytes
                        .saturating_sub(self.recv.len())
                        .min(input.len());
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
                    self.recv.extend_from_slice(input);
                    return;
                }
                Err(err) => {
                    self.on_frame_error(input, err, actions);
                    return;
                }
            }
        }
    }

    /// Report completion of a command previously emitted with `Action::Execute`. Its response
    /// is queued at once; an action it causes (the `Close` after a logout that waited for this
    /// command) is handed out by the next `on_tick` or `on_recv`.
    pub fn on_command_done(&mut self, task: TaskId, result: CommandResult<'_>, now_ms: u64) {
        if self.phase != Phase::FullFeature {
            return;
        }
        self.complete_command(task.0, &result, now_ms);
    }

    /// Advance timers (NOP-In keep-alive, login timeout).
    pub fn on_tick(&mut self, now_ms: u64, actions: &mut Vec<Action>) {
        actions.append(&mut self.deferred_actions);
        self.check_timers(now_ms, actions);
    }

    /// Bytes waiting to be sent.
    pub fn send_buf(&self) -> &[u8] {
        self.send.pending()
    }

    /// The reactor sent `n` bytes of `send_buf()`.
    pub fn consume_sent(&mut self, n: usize) {
        self.send.consume(n);
    }

    /// Whether the reactor should keep reading from the socket (false while the connection is
    /// applying backpressure or closing).
    pub fn wants_recv(&self) -> bool {
        self.phase != Phase::Closed
            && self.send.len_bytes() < SEND_HIGH_WATER_BYTES
            && self.tasks.executing() < self.seq.queue_depth()
    }

    /// Hand a data-out buffer back for reuse.
    pub fn recycle(&mut self, buf: Vec<u8>) {
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
            ..FrameLimits::LOGIN
        }
        .max_pdu_len_bytes();
        login.max(ffp)
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
        tracing::debug!(?reason, "closing iSCSI connection");
        self.phase = Phase::Closed;
        self.recv = Vec::new();
        actions.push(Action::Close(reason));
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
        frame: &lunar_wire::iscsi::Frame<'_>,
        catalog: &dyn TargetCatalog,
        now_ms: u64,
        actions: &mut Vec<Action>,
    ) {
        match self.phase {
            Phase::Login => self.on_login_phase_pdu(frame, catalog, now_ms, actions),
            Phase::FullFeature => self.on_ffp_pdu(frame, catalog, now_ms, actions),
            Phase::Closed => {}
        }
    }

    fn on_frame_error(
        &mut self,
        bytes: &[u8],
        err: lunar_wire::iscsi::FrameError,
        actions: &mut Vec<Action>,
    ) {
        let reason = format!("malformed PDU: {err}");
        match (
            self.phase,
            bytes.first_chunk::<{ lunar_wire::iscsi::BHS_LEN_BYTES }>(),
        ) {
            (Phase::Login, _) => self.fail_login_with(
                lunar_wire::iscsi::codes::login_status::INITIATOR_ERROR,
                reason,
                actions,
            ),
            (Phase::FullFeature, Some(bhs)) => {
                let bhs = *bhs;
                self.protocol_error(&bhs, reason, actions);
            }
            _ => self.close(CloseReason::ProtocolError(reason), actions),
        }
    }
}
