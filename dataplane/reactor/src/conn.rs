//! The reactor's side of a connection: the socket, its receive and send sides (`incoming`,
//! `outgoing`), the iSCSI state machine it feeds, and the lifecycle (accept → serve → flush →
//! shutdown → close).
//! A connection is freed only when no socket operation and no command still refers to it.

use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd};

use io_uring::{opcode, types};
use lunar_iscsi::{Action, ChapConfig, CloseReason, Connection, SessionKind, TargetCatalog};
use std::sync::Arc;

use lunar_scsi::{NexusId, NexusState};
use lunar_uring::{with_file, FileRef, UserData};
use lunar_wire::keyhash::KeyHashMap;

use crate::incoming::Incoming;
use crate::mailbox::FromReactor;
use crate::net;
use crate::outgoing::{Outgoing, SendPlan};
use crate::reactor::{Op, Reactor};
use crate::requests::{Nexus, RequestKind};
use crate::snapshot::ChapAuth;
use crate::tables::InstalledTable;

/// How long a closing connection may take to flush what it still has to send.
pub const CLOSE_LINGER_MS: u64 = 2_000;

pub struct Conn {
    fd: Option<OwnedFd>,
    /// How receives and sends name the socket: its slot in the ring's file table once the
    /// connection is admitted (emptied before the descriptor is closed).
    file: FileRef,
    pub(crate) iscsi: Connection,
    peer: Option<SocketAddr>,
    /// `ip:port,tpgt` of the portals to report in SendTargets, this connection's own first.
    pub(crate) portals: Vec<String>,
    /// The receive side (see `incoming`).
    pub(crate) incoming: Incoming,
    /// What is being sent: taken from the state machine (by swapping buffers), with the read
    /// data it borrows; stable while a send is armed.
    pub(crate) out: Outgoing,
    send_armed: bool,
    /// The connection is in the reactor's list of connections to flush this turn.
    flush_queued: bool,
    /// Commands issued by this connection that have not completed.
    pub(crate) commands: u32,
    closing_since_ms: Option<u64>,
    shutdown_sent: bool,
    /// The shutdown operation is in flight: io_uring runs it on a worker thread, so the fd must
    /// not be closed (and its number reused by a new connection) before it completed.
    shutdown_armed: bool,
    pub(crate) target: Option<String>,
    /// `InitiatorName,i,0xISID|TargetName`: sessions with the same key reinstate each other.
    pub(crate) session_key: Option<String>,
    /// The I_T nexus of this session, for the device model (reservations, unit attentions).
    pub(crate) nexus_id: Option<Arc<NexusId>>,
    pub(crate) nexus: KeyHashMap<u64, NexusState>,
}

impl Conn {
    pub(crate) fn raw_fd(&self) -> i32 {
        self.fd.as_ref().map(|f| f.as_raw_fd()).unwrap_or(-1)
    }

    /// The socket as the data path's operations name it.
    pub(crate) fn file(&self) -> FileRef {
        self.file
    }

    /// The device-model state of this nexus for `lun`, created on first use.
    pub(crate) fn nexus_for(&mut self, lun: u64) -> &mut NexusState {
        let identity = self.nexus_id.clone();
        self.nexus.entry(lun).or_insert_with(|| match identity {
            Some(identity) => NexusState::for_nexus(identity),
            None => NexusState::new(),
        })
    }

    pub(crate) fn is_closing(&self) -> bool {
        self.closing_since_ms.is_some()
    }

    fn has_unsent(&self) -> bool {
        self.out.unsent_bytes() > 0 || self.iscsi.send_pending_len_bytes() > 0
    }
}

/// Target lookups for the iSCSI state machine over one table generation.
pub(crate) struct CatalogView<'a> {
    pub(crate) table: &'a InstalledTable,
    /// `ip:port,tpgt` of every portal, the connection's own first.
    pub(crate) portals: &'a [String],
}

impl TargetCatalog for CatalogView<'_> {
    fn target_exists(&self, iqn: &str) -> bool {
        self.table.target_index(iqn).is_some()
    }

    fn send_targets(&self, only: Option<&str>) -> Vec<(String, Vec<String>)> {
        self.table
            .targets
            .iter()
            .filter(|t| only.is_none_or(|iqn| t.iqn == iqn))
            .map(|t| (t.iqn.clone(), self.portals.to_vec()))
            .collect()
    }

    fn chap(&self, target: Option<&str>) -> Option<ChapConfig> {
        let auth = match target {
            None => self.table.snapshot.discovery_chap.as_ref(),
            Some(iqn) => self
                .table
                .target_index(iqn)
                .and_then(|i| self.table.snapshot.targets[i].chap.as_ref()),
        };
        auth.map(chap_config)
    }

    fn initiator_allowed(&self, target: &str, initiator: &str) -> bool {
        let Some(index) = self.table.target_index(target) else {
            return false;
        };
        let allowed = &self.table.snapshot.targets[index].allowed_initiators;
        allowed.is_empty() || allowed.iter().any(|a| a.eq_ignore_ascii_case(initiator))
    }
}

fn chap_config(auth: &ChapAuth) -> ChapConfig {
    ChapConfig {
        username: auth.initiator.username.clone(),
        secret: auth.initiator.secret.clone(),
        mutual: auth
            .mutual
            .as_ref()
            .map(|m| (m.username.clone(), m.secret.clone())),
    }
}

/// `InitiatorName,i,0xISID` (SPC-4 / RFC 7143 initiator port name).
fn initiator_port(initiator: &str, isid: [u8; 6]) -> String {
    let mut port = format!("{initiator},i,0x");
    for byte in isid {
        port.push_str(&format!("{byte:02x}"));
    }
    port
}

fn portal_string(addr: SocketAddr, tpgt: u16) -> String {
    match addr {
        SocketAddr::V4(v4) => format!("{}:{},{}", v4.ip(), v4.port(), tpgt),
        SocketAddr::V6(v6) => format!("[{}]:{},{}", v6.ip(), v6.port(), tpgt),
    }
}

impl Reactor {
    pub(crate) fn on_accept(&mut self, result: i32) {
        if result < 0 {
            if result != -libc::ECANCELED {
                tracing::warn!(
                    reactor = self.id,
                    "accept failed: {}",
                    std::io::Error::from_raw_os_error(-result)
                );
            }
            return;
        }
        // SAFETY: a successful accept returns a new descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(result) };
        if self.shutting_down {
            return;
        }
        let _ = net::set_nodelay(fd.as_raw_fd());
        let local = net::local_addr(&fd).ok();
        let peer = peer_addr(&fd);
        let tpgt = self.conn_config.portal_group_tag;
        let mut portals: Vec<String> = local.map(|a| portal_string(a, tpgt)).into_iter().collect();
        for addr in self.listeners.addrs() {
            // A wildcard listener is reached at the address this connection came in on.
            let addr = match (addr.ip().is_unspecified(), local) {
                (true, Some(local)) => SocketAddr::new(local.ip(), addr.port()),
                _ => addr,
            };
            let portal = portal_string(addr, tpgt);
            if !portals.contains(&portal) {
                portals.push(portal);
            }
        }
        let file = FileRef::Raw(fd.as_raw_fd());
        let conn = Conn {
            fd: Some(fd),
            file,
            iscsi: Connection::new(self.conn_config.clone(), self.now_ms()),
            peer,
            portals,
            incoming: Incoming::default(),
            out: Outgoing::default(),
            send_armed: false,
            flush_queued: false,
            commands: 0,
            closing_since_ms: None,
            shutdown_sent: false,
            shutdown_armed: false,
            target: None,
            session_key: None,
            nexus_id: None,
            nexus: KeyHashMap::default(),
        };
        match self.conns.insert(conn) {
            Ok(id) => {
                tracing::debug!(reactor = self.id, peer = ?peer, "connection accepted");
                let conn = self.conns.get_mut(id).expect("just inserted");
                conn.file = self.ring.register_file(conn.raw_fd());
                self.pump(id);
            }
            Err(_) => {
                tracing::warn!(
                    reactor = self.id,
                    peer = ?peer,
                    "connection refused: this reactor already serves its maximum of connections"
                );
            }
        }
    }

    pub(crate) fn on_send(&mut self, id: UserData, result: i32) {
        let Some(conn) = self.conns.get_mut(id) else {
            return;
        };
        conn.send_armed = false;
        if result < 0 {
            if result == -libc::EAGAIN || result == -libc::EINTR {
                self.pump(id);
                return;
            }
            let reason = CloseReason::ProtocolError(format!(
                "send failed: {}",
                std::io::Error::from_raw_os_error(-result)
            ));
            self.begin_close(id, reason, true);
            return;
        }
        conn.out.sent(result as usize);
        self.pump(id);
    }

    pub(crate) fn tick_connection(&mut self, id: UserData, now: u64) {
        let Some(conn) = self.conns.get_mut(id) else {
            return;
        };
        if let Some(since) = conn.closing_since_ms {
            if now.saturating_sub(since) > CLOSE_LINGER_MS && !conn.shutdown_sent {
                self.shutdown_socket(id);
            }
            self.pump(id);
            return;
        }
        let mut actions = std::mem::take(&mut self.actions);
        conn.iscsi.on_tick(now, &mut actions);
        self.apply_actions(id, &mut actions);
        self.actions = actions;
        self.pump(id);
    }

    /// Carry out what the state machine asked for.
    pub(crate) fn apply_actions(&mut self, id: UserData, actions: &mut Vec<Action>) {
        for action in actions.drain(..) {
            match action {
                Action::Execute(command) => self.execute(id, command),
                Action::LoggedIn {
                    kind,
                    initiator,
                    target,
                    isid,
                    tsih,
                } => self.on_logged_in(id, kind, initiator, target, isid, tsih),
                Action::Reset {
                    id: reset,
                    function,
                } => self.on_reset(id, reset, function),
                Action::Close(reason) => self.begin_close(id, reason, false),
            }
        }
    }

    fn on_logged_in(
        &mut self,
        id: UserData,
        kind: SessionKind,
        initiator: String,
        target: Option<String>,
        isid: [u8; 6],
        tsih: u16,
    ) {
        let tpgt = self.conn_config.portal_group_tag;
        let reactor = self.id;
        let Some(conn) = self.conns.get_mut(id) else {
            return;
        };
        tracing::info!(
            reactor,
            peer = ?conn.peer,
            ?kind,
            initiator = %initiator,
            target = target.as_deref().unwrap_or("-"),
            tsih,
            "login complete"
        );
        let port = initiator_port(&initiator, isid);
        if let (SessionKind::Normal, Some(target)) = (kind, target.as_deref()) {
            conn.nexus_id = Some(Arc::new(NexusId {
                initiator_port: port.clone(),
                target_port: format!("{target},t,0x{tpgt:04x}"),
                relative_target_port_id: tpgt,
            }));
            let key = format!("{port}|{target}");
            conn.session_key = Some(key.clone());
            self.send_to_control(FromReactor::SessionLogin {
                reactor,
                conn: id.0,
                initiator_port: key,
            });
        }
        if let Some(conn) = self.conns.get_mut(id) {
            conn.target = target;
        }
    }

    /// Start closing: stop reading, flush what is queued (unless `now`), then shut the socket
    /// down and close it once nothing refers to it.
    pub(crate) fn begin_close(&mut self, id: UserData, reason: CloseReason, now: bool) {
        let now_ms = self.now_ms();
        let Some(conn) = self.conns.get_mut(id) else {
            return;
        };
        if conn.closing_since_ms.is_none() {
            conn.closing_since_ms = Some(now_ms);
            // The nexus ends now: its SPC-2 reservations must be gone before the initiator,
            // told its logout succeeded, asks for them again.
            if let (Some(nexus), Some(target)) = (conn.nexus_id.take(), conn.target.clone()) {
                let lost = RequestKind::NexusLost {
                    target,
                    nexus: Nexus {
                        initiator_port: nexus.initiator_port.clone(),
                        target_port: nexus.target_port.clone(),
                    },
                };
                self.notify_control(lost);
            }
            let Some(conn) = self.conns.get_mut(id) else {
                return;
            };
            let peer = conn.peer;
            match &reason {
                CloseReason::Logout | CloseReason::PeerClosed => {
                    tracing::debug!(reactor = self.id, peer = ?peer, ?reason, "connection closing")
                }
                _ => {
                    tracing::warn!(reactor = self.id, peer = ?peer, ?reason, "dropping connection")
                }
            }
        }
        if now {
            self.shutdown_socket(id);
        }
        self.pump(id);
    }

    fn shutdown_socket(&mut self, id: UserData) {
        let Some(conn) = self.conns.get_mut(id) else {
            return;
        };
        if conn.shutdown_sent {
            return;
        }
        conn.shutdown_sent = true;
        conn.shutdown_armed = true;
        let fd = conn.raw_fd();
        let entry = opcode::Shutdown::new(types::Fd(fd), libc::SHUT_RDWR).build();
        // SAFETY: the fd stays open until the connection is freed, which waits for every
        // socket operation, this shutdown included; shutdown itself uses no buffer.
        if unsafe { self.push_op(entry, Op::Shutdown(id)) }.is_none() {
            if let Some(conn) = self.conns.get_mut(id) {
                conn.shutdown_sent = false;
                conn.shutdown_armed = false;
            }
            self.starved_conns.push(id);
        }
    }

    pub(crate) fn on_shutdown_done(&mut self, id: UserData) {
        if let Some(conn) = self.conns.get_mut(id) {
            conn.shutdown_armed = false;
        }
        self.pump(id);
    }

    /// Ask for the connection to be moved forward at the end of this loop turn (see
    /// [`Reactor::flush_connections`]), so that everything it queues during the turn goes
    /// out in one send.
    pub(crate) fn pump(&mut self, id: UserData) {
        let Some(conn) = self.conns.get_mut(id) else {
            return;
        };
        if !conn.flush_queued {
            conn.flush_queued = true;
            self.to_flush.push(id);
        }
    }

    /// Move forward every connection asked for this turn: one send of everything queued, a
    /// receive kept armed, closing finished.
    pub(crate) fn flush_connections(&mut self) {
        // Flushing may ask for more (appended, and flushed by this same walk).
        let mut next = 0;
        while let Some(&id) = self.to_flush.get(next) {
            next += 1;
            self.flush(id);
        }
        self.to_flush.clear();
    }

    fn flush(&mut self, id: UserData) {
        let Reactor { conns, ring, .. } = self;
        let Some(conn) = conns.get_mut(id) else {
            return;
        };
        conn.flush_queued = false;
        if !conn.send_armed && !conn.shutdown_sent {
            conn.out.refill(&mut conn.iscsi, ring.bufs_mut());
            if let Some(plan) = conn.out.plan(ring.bufs_mut()) {
                let entry = with_file!(conn.file(), |fd| match plan {
                    SendPlan::Contiguous { ptr, len } => opcode::Send::new(fd, ptr, len)
                        .flags(libc::MSG_NOSIGNAL)
                        .build(),
                    SendPlan::Gathered { msg } => opcode::SendMsg::new(fd, msg)
                        .flags(libc::MSG_NOSIGNAL as u32)
                        .build(),
                });
                // SAFETY: the bytes, the iovecs, the message header and the borrowed pool
                // buffers are not touched or freed while `send_armed` is set, and the
                // connection (and its fd) lives until no socket operation is armed.
                if unsafe { self.push_op(entry, Op::Send(id)) }.is_some() {
                    self.conns.get_mut(id).expect("live").send_armed = true;
                } else {
                    self.starved_conns.push(id);
                }
            }
        }
        self.keep_receiving(id);
        self.finish_close_if_idle(id);
    }

    fn finish_close_if_idle(&mut self, id: UserData) {
        let Some(conn) = self.conns.get_mut(id) else {
            return;
        };
        if !conn.is_closing() {
            return;
        }
        if !conn.shutdown_sent && !conn.has_unsent() {
            self.shutdown_socket(id);
            return;
        }
        let conn = self.conns.get_mut(id).expect("live");
        // An armed receive completes with 0 once the shutdown lands.
        if conn.incoming.armed
            || conn.send_armed
            || conn.shutdown_armed
            || conn.commands > 0
            || !conn.shutdown_sent
        {
            return;
        }
        let Some(mut conn) = self.conns.remove(id) else {
            return;
        };
        conn.out.release(self.ring.bufs_mut());
        if let (Some(nexus), Some(target)) = (conn.nexus_id.take(), conn.target.take()) {
            self.notify_control(RequestKind::NexusLost {
                target,
                nexus: Nexus {
                    initiator_port: nexus.initiator_port.clone(),
                    target_port: nexus.target_port.clone(),
                },
            });
        }
        self.ring.unregister_file(conn.file);
        if let Some(fd) = conn.fd.take() {
            self.close_fd_async(fd.into_raw_fd());
        }
        tracing::debug!(reactor = self.id, peer = ?conn.peer, "connection closed");
    }
}

fn peer_addr(fd: &OwnedFd) -> Option<SocketAddr> {
    let stream = std::mem::ManuallyDrop::new(
        // SAFETY: borrowed view of a live descriptor; ManuallyDrop keeps it from being closed.
        unsafe { std::net::TcpStream::from_raw_fd(fd.as_raw_fd()) },
    );
    stream.peer_addr().ok()
}
