//! The control thread's handle on the data plane: starts one pinned reactor per core, publishes
//! table generations to all of them over their mailboxes and waits for "installed", tracks
//! "drained" reports, drops released tables, and gathers statistics. Blocking waits happen here,
//! on the control thread, never on a reactor.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use lunar_scsi::ScsiReply;

use crate::doorbell::Doorbell;
use crate::mailbox::{FromReactor, Mailbox, ToReactor};
use crate::net;
use crate::range_locks::RangeLocks;
use crate::reactor::Reactor;
use crate::requests::{ReactorRequest, RequestId};
use crate::snapshot::Snapshot;
use crate::stats::{ReactorLoad, ReactorReport, VolumeCounters};

/// How long the control thread waits for every reactor to acknowledge a message.
pub const REACTOR_ACK_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the control thread looks at the reactors' outboxes while waiting.
const CONTROL_POLL_INTERVAL: Duration = Duration::from_micros(200);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollMode {
    /// Spin forever (dedicated cores).
    Busy,
    /// Spin briefly, then sleep in io_uring_enter until work or a wake-up arrives.
    Adaptive,
}

#[derive(Debug, Clone)]
pub struct DataPlaneConfig {
    /// CPU ids to pin one reactor each to.
    pub cores: Vec<usize>,
    pub poll_mode: PollMode,
    pub listen: SocketAddr,
    pub connection: lunar_iscsi::ConnConfig,
    /// Rung by a reactor whenever it leaves the control thread a message (a request, a drained
    /// generation, statistics): the control thread can sleep until then instead of polling.
    pub control_bell: Arc<Doorbell>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot set up io_uring: {0}")]
    Ring(std::io::Error),
    #[error("no cores given to run reactors on")]
    NoCores,
}

#[derive(Debug, thiserror::Error)]
pub enum PortalError {
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("portal {0} is already served")]
    Exists(SocketAddr),
    #[error("no portal {0}")]
    NotFound(SocketAddr),
    #[error("portal {0} is the last one; add another before removing it")]
    Last(SocketAddr),
    #[error("reactor {0} did not take the portal change")]
    Unreachable(usize),
}

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("reactor {0} did not acknowledge generation {1}")]
    NotAcknowledged(usize, u64),
}

/// Where one reactor's time went since it started (see [`ReactorLoad`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReactorLoadStats {
    /// The reactor's index (its thread is `lunar-reactor-<index>`).
    pub reactor: usize,
    /// The core it is pinned to.
    pub core: usize,
    pub load: ReactorLoad,
}

/// Per-volume I/O statistics, summed over reactors.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VolumeStats {
    pub name: String,
    pub read_ops: u64,
    pub write_ops: u64,
    pub read_bytes: u64,
    pub write_bytes: u64,
    pub latency_us_p50: u64,
    pub latency_us_p90: u64,
    pub latency_us_p99: u64,
    pub latency_us_p999: u64,
    pub latency_us_max: u64,
}

struct ReactorHandle {
    mailbox: Arc<Mailbox>,
    thread: Option<JoinHandle<()>>,
    installed: u64,
    drained_below: u64,
    /// The core the reactor is pinned to.
    core: usize,
    stats: Option<ReactorReport>,
    stopped: bool,
    /// Newest `AbortTasks` id this reactor finished.
    tasks_aborted: u64,
}

/// Handle to the running reactors.
pub struct DataPlane {
    reactors: Vec<ReactorHandle>,
    generation: u64,
    listen: SocketAddr,
    /// Every portal served (the first is `listen`).
    portals: Vec<SocketAddr>,
    /// Requests received from reactors, handed out by `poll`.
    requests: Vec<ReactorRequest>,
    /// Messages for reactors that could not be queued yet (reactor index, message).
    outgoing: Vec<(usize, ToReactor)>,
    /// Ids of `abort_tasks` calls.
    abort_seq: u64,
    /// Range locks of every volume by uid, kept across generations.
    locks: HashMap<u64, Arc<RangeLocks>>,
    /// The newest published table (for naming volumes in statistics).
    current: Arc<Snapshot>,
    /// The doorbell every reactor rings; answered before the mailboxes are drained.
    control_bell: Arc<Doorbell>,
}

impl DataPlane {
    pub fn start(config: DataPlaneConfig) -> Result<DataPlane, StartError> {
        if config.cores.is_empty() {
            return Err(StartError::NoCores);
        }
        net::check_port_free(config.listen).map_err(|source| StartError::Listen {
            addr: config.listen,
            source,
        })?;
        let first = net::listen(config.listen).map_err(|source| StartError::Listen {
            addr: config.listen,
            source,
        })?;
        let listen = net::local_addr(&first).map_err(|source| StartError::Listen {
            addr: config.listen,
            source,
        })?;
        let mut listeners = vec![first];
        for _ in 1..config.cores.len() {
            listeners.push(net::listen(listen).map_err(|source| StartError::Listen {
                addr: listen,
                source,
            })?);
        }
        let initial = Arc::new(Snapshot::default());
        let mut reactors = Vec::new();
        for (index, (core, listener)) in config.cores.iter().zip(listeners).enumerate() {
            let mailbox = Mailbox::new(config.control_bell.clone()).map_err(StartError::Ring)?;
            let core = *core;
            let (ready_tx, ready_rx) = std::sync::mpsc::channel();
            let thread_mailbox = mailbox.clone();
            let thread_initial = initial.clone();
            let connection = config.connection.clone();
            let poll_mode = config.poll_mode;
            // The ring is created on the reactor's own thread: it is its only submitter.
            let thread = std::thread::Builder::new()
                .name(format!("lunar-reactor-{index}"))
                .spawn(move || {
                    if !core_affinity::set_for_current(core_affinity::CoreId { id: core }) {
                        tracing::warn!(reactor = index, core, "could not pin reactor to its core");
                    }
                    let reactor = Reactor::new(
                        index,
                        listener,
                        thread_mailbox,
                        thread_initial,
                        connection,
                        poll_mode,
                    );
                    match reactor {
                        Ok(reactor) => {
                            let _ = ready_tx.send(Ok(()));
                            let run =
                                std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
                                    reactor.run()
                                }));
                            if run.is_err() {
                                // A reactor that lost its state cannot keep its promises to
                                // hosts; stop the whole daemon rather than limp on.
                                tracing::error!(reactor = index, "reactor panicked; aborting");
                                std::process::abort();
                            }
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                        }
                    }
                })
                .map_err(StartError::Ring)?;
            let ready = ready_rx
                .recv()
                .unwrap_or_else(|_| Err(std::io::Error::other("reactor thread exited")));
            if let Err(e) = ready {
                let _ = thread.join();
                return Err(StartError::Ring(e));
            }
            reactors.push(ReactorHandle {
                mailbox,
                thread: Some(thread),
                installed: 0,
                drained_below: 0,
                core,
                stats: None,
                stopped: false,
                tasks_aborted: 0,
            });
        }
        Ok(DataPlane {
            reactors,
            generation: 0,
            listen,
            portals: vec![listen],
            requests: Vec::new(),
            outgoing: Vec::new(),
            locks: HashMap::new(),
            abort_seq: 0,
            current: initial,
            control_bell: config.control_bell,
        })
    }

    pub fn listen_addr(&self) -> SocketAddr {
        self.listen
    }

    /// The newest published generation.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    fn send(&mut self, index: usize, mut message: ToReactor) -> Result<(), ()> {
        let deadline = Instant::now() + REACTOR_ACK_TIMEOUT;
        loop {
            let mailbox = self.reactors[index].mailbox.clone();
            match mailbox.to_reactor.try_send(message) {
                Ok(()) => {
                    mailbox.wake();
                    return Ok(());
                }
                Err(back) => {
                    message = back;
                    if Instant::now() > deadline {
                        return Err(());
                    }
                    mailbox.wake();
                    self.drain_outboxes();
                    std::thread::sleep(CONTROL_POLL_INTERVAL);
                }
            }
        }
    }

    /// Take every message the reactors sent; fan out the ones every reactor must hear.
    fn drain_outboxes(&mut self) {
        let count = self.reactors.len();
        // One answer for every reactor's rings: a ring after it notifies again.
        self.control_bell.answer();
        for handle in &mut self.reactors {
            while let Some(message) = handle.mailbox.from_reactor.try_recv() {
                match message {
                    FromReactor::Installed(generation) => {
                        debug_assert!(generation > handle.installed, "generations only grow");
                        handle.installed = handle.installed.max(generation);
                    }
                    FromReactor::Drained(below) => {
                        handle.drained_below = handle.drained_below.max(below)
                    }
                    FromReactor::Release(snapshot) => drop(snapshot),
                    FromReactor::Stats(stats) => handle.stats = Some(stats),
                    FromReactor::Stopped => handle.stopped = true,
                    FromReactor::Request(request) => self.requests.push(request),
                    FromReactor::TasksAborted { id } => {
                        handle.tasks_aborted = handle.tasks_aborted.max(id)
                    }
                    FromReactor::SessionLogin {
                        reactor,
                        conn,
                        initiator_port,
                    } => {
                        for index in 0..count {
                            self.outgoing.push((
                                index,
                                ToReactor::CloseSessions {
                                    initiator_port: initiator_port.clone(),
                                    keep: Some((reactor, conn)),
                                },
                            ));
                        }
                    }
                    FromReactor::Reset {
                        reactor,
                        target,
                        function,
                    } => {
                        for index in (0..count).filter(|&i| i != reactor) {
                            self.outgoing.push((
                                index,
                                ToReactor::Reset {
                                    target: target.clone(),
                                    function,
                                },
                            ));
                        }
                    }
                }
            }
        }
        self.flush_outgoing();
    }

    /// Whether messages for reactors wait for room in their mailboxes: they go out at the
    /// next [`poll`](DataPlane::poll) or [`answer`](DataPlane::answer), and no reactor rings to
    /// say there is room.
    pub fn has_undelivered(&self) -> bool {
        !self.outgoing.is_empty()
    }

    /// Queue what waits for reactors, without blocking; what does not fit is kept.
    fn flush_outgoing(&mut self) {
        let pending = std::mem::take(&mut self.outgoing);
        for (index, message) in pending {
            let mailbox = &self.reactors[index].mailbox;
            match mailbox.to_reactor.try_send(message) {
                Ok(()) => mailbox.wake(),
                Err(message) => self.outgoing.push((index, message)),
            }
        }
    }

    /// Requests reactors sent since the last call (each must be answered with [`answer`]);
    /// also carries reactor-to-reactor events. Call it whenever the config's `control_bell`
    /// notifies (or often, with a bell nobody hears).
    ///
    /// [`answer`]: DataPlane::answer
    pub fn poll(&mut self) -> Vec<ReactorRequest> {
        self.drain_outboxes();
        std::mem::take(&mut self.requests)
    }

    /// Answer a request from [`poll`](DataPlane::poll).
    pub fn answer(&mut self, id: RequestId, reply: ScsiReply) {
        if id.reactor < self.reactors.len() {
            self.outgoing
                .push((id.reactor, ToReactor::Answer { seq: id.seq, reply }));
            self.flush_outgoing();
        }
    }

    /// PREEMPT AND ABORT: abort, on every reactor, the tasks of volume `volume_uid`'s logical
    /// unit that arrived from these initiator ports; returns once their I/O finished (so the
    /// PERSISTENT RESERVE OUT can be answered).
    pub fn abort_tasks(
        &mut self,
        volume_uid: u64,
        initiator_ports: &[String],
    ) -> Result<(), PublishError> {
        self.abort_seq += 1;
        let id = self.abort_seq;
        for index in 0..self.reactors.len() {
            let message = ToReactor::AbortTasks {
                id,
                volume_uid,
                initiator_ports: initiator_ports.to_vec(),
            };
            self.send(index, message)
                .map_err(|()| PublishError::NotAcknowledged(index, self.generation))?;
        }
        self.wait_for(|h| h.tasks_aborted >= id)
            .map_err(|index| PublishError::NotAcknowledged(index, self.generation))
    }

    /// Every portal served; the first is the `--listen` address.
    pub fn portals(&self) -> Vec<SocketAddr> {
        self.portals.clone()
    }

    /// Serve iSCSI on another address too (port 0 picks a free port); returns the bound address.
    pub fn add_portal(&mut self, addr: SocketAddr) -> Result<SocketAddr, PortalError> {
        let listen_error = |source| PortalError::Listen { addr, source };
        net::check_port_free(addr).map_err(listen_error)?;
        let first = net::listen(addr).map_err(listen_error)?;
        let bound = net::local_addr(&first).map_err(listen_error)?;
        if self.portals.contains(&bound) {
            return Err(PortalError::Exists(bound));
        }
        let mut listeners = vec![first];
        for _ in 1..self.reactors.len() {
            listeners.push(net::listen(bound).map_err(|source| PortalError::Listen {
                addr: bound,
                source,
            })?);
        }
        for (index, listener) in listeners.into_iter().enumerate() {
            self.send(index, ToReactor::AddListener(listener))
                .map_err(|()| PortalError::Unreachable(index))?;
        }
        self.portals.push(bound);
        Ok(bound)
    }

    /// Stop accepting on a portal (its open connections stay until they end).
    pub fn remove_portal(&mut self, addr: SocketAddr) -> Result<(), PortalError> {
        if !self.portals.contains(&addr) {
            return Err(PortalError::NotFound(addr));
        }
        if self.portals.len() == 1 {
            return Err(PortalError::Last(addr));
        }
        for index in 0..self.reactors.len() {
            self.send(index, ToReactor::RemoveListener(addr))
                .map_err(|()| PortalError::Unreachable(index))?;
        }
        self.portals.retain(|p| *p != addr);
        Ok(())
    }

    fn wait_for(&mut self, done: impl Fn(&ReactorHandle) -> bool) -> Result<(), usize> {
        let deadline = Instant::now() + REACTOR_ACK_TIMEOUT;
        loop {
            self.drain_outboxes();
            match self.reactors.iter().position(|h| !done(h)) {
                None => return Ok(()),
                Some(index) if Instant::now() > deadline => return Err(index),
                Some(_) => std::thread::sleep(CONTROL_POLL_INTERVAL),
            }
        }
    }

    /// Publish a new table to every reactor; returns once every reactor installed it (the
    /// returned generation). Older generations are released once every reactor drained them.
    pub fn publish(&mut self, mut snapshot: Snapshot) -> Result<u64, PublishError> {
        self.generation += 1;
        let generation = self.generation;
        snapshot.generation = generation;
        let locks: Vec<Arc<RangeLocks>> = snapshot
            .volumes
            .iter()
            .map(|v| self.locks.entry(v.uid).or_default().clone())
            .collect();
        let uids: Vec<u64> = snapshot.volumes.iter().map(|v| v.uid).collect();
        self.locks.retain(|uid, _| uids.contains(uid));
        let locks = Arc::new(locks);
        let snapshot = Arc::new(snapshot);
        self.current = snapshot.clone();
        for index in 0..self.reactors.len() {
            let message = ToReactor::Install {
                snapshot: snapshot.clone(),
                locks: locks.clone(),
            };
            self.send(index, message)
                .map_err(|()| PublishError::NotAcknowledged(index, generation))?;
        }
        drop(snapshot);
        self.wait_for(|h| h.installed >= generation)
            .map_err(|index| PublishError::NotAcknowledged(index, generation))?;
        Ok(generation)
    }

    /// Returns once no in-flight command on any reactor still uses a generation older than
    /// `generation`.
    pub fn wait_drained(&mut self, generation: u64) -> Result<(), PublishError> {
        self.wait_for(|h| h.drained_below >= generation)
            .map_err(|index| PublishError::NotAcknowledged(index, generation))
    }

    /// Whether no in-flight command on any reactor still uses a generation older than
    /// `generation` (without waiting: the control thread keeps serving requests meanwhile).
    pub fn is_drained(&mut self, generation: u64) -> bool {
        self.drain_outboxes();
        self.reactors.iter().all(|h| h.drained_below >= generation)
    }

    /// The range locks every reactor takes on volume `volume_uid` (for as long as the volume
    /// is published): the control thread takes them too, to copy a range (mirror resync,
    /// migration) with no host write to it in flight.
    pub fn range_locks(&self, volume_uid: u64) -> Option<Arc<RangeLocks>> {
        self.locks.get(&volume_uid).cloned()
    }

    /// Ask every reactor for its counters and wait for the answers (a reactor that does not
    /// answer in time is left out).
    fn collect_reports(&mut self) {
        for handle in &mut self.reactors {
            handle.stats = None;
        }
        for index in 0..self.reactors.len() {
            let _ = self.send(index, ToReactor::StatsRequest);
        }
        let _ = self.wait_for(|h| h.stats.is_some());
    }

    /// Where each reactor's time went since it started.
    pub fn reactor_load(&mut self) -> Vec<ReactorLoadStats> {
        self.collect_reports();
        self.reactors
            .iter_mut()
            .enumerate()
            .filter_map(|(reactor, handle)| {
                let report = handle.stats.take()?;
                Some(ReactorLoadStats {
                    reactor,
                    core: handle.core,
                    load: report.load,
                })
            })
            .collect()
    }

    /// Per-volume statistics of the volumes in the newest table, summed over reactors.
    pub fn stats(&mut self) -> Vec<VolumeStats> {
        self.collect_reports();
        let mut merged: Vec<VolumeCounters> = Vec::new();
        for handle in &mut self.reactors {
            let volumes = handle.stats.take().map(|r| r.volumes).unwrap_or_default();
            for counters in volumes {
                match merged.iter_mut().find(|m| m.uid == counters.uid) {
                    Some(m) => m.merge(&counters),
                    None => merged.push(counters),
                }
            }
        }
        self.current
            .volumes
            .iter()
            .map(|v| {
                let mut stats = VolumeStats {
                    name: v.name.clone(),
                    ..VolumeStats::default()
                };
                if let Some(c) = merged.iter().find(|c| c.uid == v.uid) {
                    let q = |p: f64| c.latency_us.value_at_quantile(p);
                    stats.read_ops = c.read_ops;
                    stats.write_ops = c.write_ops;
                    stats.read_bytes = c.read_bytes;
                    stats.write_bytes = c.write_bytes;
                    stats.latency_us_p50 = q(0.50);
                    stats.latency_us_p90 = q(0.90);
                    stats.latency_us_p99 = q(0.99);
                    stats.latency_us_p999 = q(0.999);
                    stats.latency_us_max = c.latency_us.max();
                }
                stats
            })
            .collect()
    }

    /// Stop every reactor (closing their connections) and join the threads.
    pub fn shutdown(mut self) {
        for index in 0..self.reactors.len() {
            let _ = self.send(index, ToReactor::Shutdown);
        }
        let _ = self.wait_for(|h| h.stopped);
        for handle in &mut self.reactors {
            if let Some(thread) = handle.thread.take() {
                let _ = thread.join();
            }
        }
        self.drain_outboxes();
    }
}
