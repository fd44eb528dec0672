//! Contract between the reactor and one iSCSI connection (session = connection at ERL 0 with
//! MaxConnections=1). The implementation lives in sibling modules; this file fixes the API.

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
    /// `ip:port,tpgt` (IPv6 in brackets). `only` restricts to one IQN (SendTargets=<iqn>).
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

/// One iSCSI connection's state machine. See the module docs of the crate.
pub struct Connection {
    _private: (),
}

impl Connection {
    pub fn new(_config: ConnConfig, _now_ms: u64) -> Self {
        unimplemented!("contract only")
    }
    /// Feed received bytes. Complete PDUs are processed; partial ones are kept (bounded by the
    /// negotiated limits; an oversized PDU is a protocol error, never an allocation).
    pub fn on_recv(
        &mut self,
        _bytes: &[u8],
        _catalog: &dyn TargetCatalog,
        _now_ms: u64,
        _actions: &mut Vec<Action>,
    ) {
    }
    /// Report completion of a command previously emitted with `Action::Execute`.
    pub fn on_command_done(&mut self, _task: TaskId, _result: CommandResult<'_>, _now_ms: u64) {}
    /// Advance timers (NOP-In keep-alive, login timeout).
    pub fn on_tick(&mut self, _now_ms: u64, _actions: &mut Vec<Action>) {}
    /// Bytes waiting to be sent.
    pub fn send_buf(&self) -> &[u8] {
        &[]
    }
    /// The reactor sent `n` bytes of `send_buf()`.
    pub fn consume_sent(&mut self, _n: usize) {}
    /// Whether the reactor should keep reading from the socket (false while the connection is
    /// applying backpressure or closing).
    pub fn wants_recv(&self) -> bool {
        true
    }
    /// Hand a data-out buffer back for reuse.
    pub fn recycle(&mut self, _buf: Vec<u8>) {}
}
