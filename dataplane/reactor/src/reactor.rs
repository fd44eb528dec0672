//! One reactor: a thread pinned to a core that owns an io_uring, its listener, its connections
//! and the commands they issue. The loop, in this order each turn:
//!
//! 1. mailbox — install new table generations, answer stats requests, shutdown;
//! 2. reap — a bounded batch of completions, each dispatched by its [`Op`]; whenever
//!    [`EARLY_SUBMIT_ENTRIES`] entries wait in the submission queue meanwhile, they are
//!    submitted at once, so the device (a kernel worker on another core, for a loop device)
//!    starts on the first reads of a burst while the rest of it is still being dispatched;
//! 3. connections — timers (keep-alive, close linger) every tick, parked commands retried;
//!    then every connection that has something to send gets one send with all of it, and a
//!    receive is kept armed;
//! 4. generations — retire old tables nothing pins, report "drained";
//! 5. submit — one io_uring_enter for everything still queued this turn (the sends);
//! 6. spin or park — busy mode loops at once; adaptive mode spins a while, then sleeps in
//!    io_uring_enter until a completion, the mailbox eventfd or the tick timeout wakes it.

use std::collections::VecDeque;
use std::os::fd::{OwnedFd, RawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use io_uring::{opcode, types};
use lunar_iscsi::{Action, ConnConfig};
use lunar_uring::{BufPool, Completion, OpSlab, RecvBuffers, Ring, UserData};
use lunar_volume::{Extent, PlanStep, ReadBalancer};
use lunar_wire::keyhash::KeyHashMap;

use crate::command::Cmd;
use crate::conn::Conn;
use crate::control_requests::ControlRequests;
use crate::dataplane::PollMode;
use crate::device_files::DeviceFiles;
use crate::incoming::{RECV_BUFFERS, RECV_BUFFER_BYTES};
use crate::mailbox::{FromReactor, Mailbox, ToReactor};
use crate::portals::Listeners;
use crate::resets::Resets;
use crate::snapshot::Snapshot;
use crate::stats::{ReactorStats, Turn};
use crate::tables::{Tables, MAX_TRANSFER_BYTES};

/// Submission queue entries per ring.
pub const RING_ENTRIES: u32 = 1024;
/// Operations (socket and backend) in flight per reactor.
pub const OPS_IN_FLIGHT_MAX: usize = 8192;
/// Connections one reactor serves.
pub const CONNECTIONS_PER_REACTOR_MAX: usize = 1024;
/// SCSI commands in flight per reactor.
pub const COMMANDS_IN_FLIGHT_MAX: usize = 4096;
/// Completions handled per loop turn before looking at the mailbox again.
pub const REAP_BATCH: usize = 256;
/// Entries queued while completions are dispatched that are submitted without waiting for the
/// end of the turn. Measured with lunar-load on a loop device over tmpfs (busy mode, one core,
/// alternating with the same build submitting once a turn): 8 sessions x QD16 of 4 KiB gained
/// 1–9% (random reads and writes alike), 64 sessions x QD2 5–10%; one session at QD32 and
/// iscsi-perf moved by -4% to +2%, QD1 by -1 to -2%, within the noise of the machine. With 1,
/// every command read from a socket costs a system call of its own, and iscsi-perf at QD32
/// lost up to 8%.
pub const EARLY_SUBMIT_ENTRIES: usize = 2;
/// Small I/O buffers (64 KiB each) and large ones (`MAX_TRANSFER_BYTES` each) per reactor.
pub const SMALL_BUFFERS: usize = 256;
pub const SMALL_BUFFER_BYTES: usize = 64 * 1024;
pub const LARGE_BUFFERS: usize = 32;
/// Timer resolution for keep-alive and linger checks.
pub const TICK_MS: u64 = 100;
/// How long an adaptive reactor keeps spinning after its last work before it sleeps.
pub const ADAPTIVE_SPIN: Duration = Duration::from_micros(50);
/// How long an adaptive reactor sleeps while commands are parked (waiting for a range lock
/// another thread holds, a buffer, or submission-queue space).
pub const PARKED_RETRY: Duration = Duration::from_micros(100);
/// Longest wait at exit for operations still in flight (socket closes, cancelled accepts).
pub const SHUTDOWN_DRAIN: Duration = Duration::from_millis(500);

/// What a submitted entry was for.
#[derive(Debug, Clone, Copy)]
pub enum Op {
    /// An accept on the listener with this id.
    Accept(u32),
    Wake,
    /// A receive of this connection (a multishot one completes many times).
    Recv(UserData),
    Send(UserData),
    /// A connection's socket shutdown (its fd stays open until this completes).
    Shutdown(UserData),
    /// Fire-and-forget (close, cancel); the result is ignored.
    Ignore,
    Backend {
        cmd: UserData,
        piece: crate::pieces::Piece,
    },
}

pub struct Reactor {
    pub(crate) id: usize,
    pub(crate) ring: Ring,
    pub(crate) ops: OpSlab<Op>,
    pub(crate) conns: OpSlab<Conn>,
    pub(crate) cmds: OpSlab<Cmd>,
    pub(crate) tables: Tables,
    pub(crate) mailbox: Arc<Mailbox>,
    pub(crate) listeners: Listeners,
    wake_buf: Box<[u8; 8]>,
    wake_armed: bool,
    pub(crate) conn_config: ConnConfig,
    poll_mode: PollMode,
    started: Instant,
    /// The loop turn's clock: read once at the top of every turn, so the per-command
    /// timestamps and timers cost no clock read each.
    now: Instant,
    pub(crate) stats: ReactorStats,
    pub(crate) requests: ControlRequests,
    pub(crate) resets: Resets,
    /// Commands waiting for a buffer or submission-queue space, retried each turn.
    pub(crate) parked: VecDeque<UserData>,
    /// Connections whose send or receive could not be queued, retried each turn.
    pub(crate) starved_conns: Vec<UserData>,
    /// Connections to move forward at the end of this turn (each at most once).
    pub(crate) to_flush: Vec<UserData>,
    pub(crate) actions: Vec<Action>,
    pub(crate) extents: Vec<Extent>,
    /// Plans of finished commands, kept for reuse (no allocation per command).
    pub(crate) step_lists: Vec<Vec<PlanStep>>,
    /// Mirror read balancing, per volume uid.
    pub(crate) balancers: KeyHashMap<u64, ReadBalancer>,
    completions: Vec<Completion>,
    /// The devices of live generations, registered in the ring's file table.
    device_files: DeviceFiles,
    released: Vec<Arc<Snapshot>>,
    outbox_backlog: VecDeque<FromReactor>,
    pub(crate) shutting_down: bool,
    last_tick_ms: u64,
}

impl Reactor {
    pub fn new(
        id: usize,
        listener: OwnedFd,
        mailbox: Arc<Mailbox>,
        initial: Arc<Snapshot>,
        conn_config: ConnConfig,
        poll_mode: PollMode,
    ) -> std::io::Result<Reactor> {
        let mut listeners = Listeners::default();
        listeners.add(listener);
        let pool = BufPool::new(
            SMALL_BUFFERS,
            SMALL_BUFFER_BYTES,
            LARGE_BUFFERS,
            MAX_TRANSFER_BYTES as usize,
        )?;
        let mut ring = Ring::new(RING_ENTRIES, pool)?;
        let recv_buffers = RecvBuffers::new(RECV_BUFFERS, RECV_BUFFER_BYTES)?;
        if let Err(e) = ring.provide_recv_buffers(recv_buffers) {
            tracing::warn!(
                reactor = id,
                "no provided receive buffers ({e}): each connection receives into its own"
            );
        }
        let mut device_files = DeviceFiles::default();
        let initial_files = device_files.acquire(&mut ring, &initial);
        Ok(Reactor {
            id,
            ring,
            ops: OpSlab::with_capacity(OPS_IN_FLIGHT_MAX),
            conns: OpSlab::with_capacity(CONNECTIONS_PER_REACTOR_MAX),
            cmds: OpSlab::with_capacity(COMMANDS_IN_FLIGHT_MAX),
            tables: Tables::new(initial, initial_files),
            device_files,
            mailbox,
            listeners,
            wake_buf: Box::new([0; 8]),
            wake_armed: false,
            conn_config,
            poll_mode,
            started: Instant::now(),
            now: Instant::now(),
            stats: ReactorStats::default(),
            requests: ControlRequests::default(),
            resets: Resets::default(),
            parked: VecDeque::new(),
            starved_conns: Vec::new(),
            to_flush: Vec::with_capacity(CONNECTIONS_PER_REACTOR_MAX),
            actions: Vec::new(),
            extents: Vec::new(),
            step_lists: Vec::new(),
            balancers: KeyHashMap::default(),
            completions: Vec::with_capacity(REAP_BATCH),
            released: Vec::new(),
            outbox_backlog: VecDeque::new(),
            shutting_down: false,
            last_tick_ms: 0,
        })
    }

    /// Milliseconds since the reactor started, at the current loop turn.
    pub(crate) fn now_ms(&self) -> u64 {
        self.now.saturating_duration_since(self.started).as_millis() as u64
    }

    /// The current loop turn's clock.
    pub(crate) fn now(&self) -> Instant {
        self.now
    }

    /// Queue an entry tracked by `op`. Returns false (with nothing queued) when the op table or
    /// the submission queue is full; the caller parks its work.
    ///
    /// # Safety
    /// Buffers and fds in `entry` must stay valid until the completion is reaped.
    pub(crate) unsafe fn push_op(
        &mut self,
        entry: io_uring::squeue::Entry,
        op: Op,
    ) -> Option<UserData> {
        let Ok(id) = self.ops.insert(op) else {
            return None;
        };
        let entry = entry.user_data(id.0);
        // SAFETY: forwarded from this function's contract.
        if unsafe { self.ring.push(&entry) }.is_err() {
            self.ops.remove(id);
            return None;
        }
        Some(id)
    }

    pub(crate) fn send_to_control(&mut self, message: FromReactor) {
        if let Err(message) = self.mailbox.send_to_control(message) {
            self.outbox_backlog.push_back(message);
        }
    }

    fn flush_outbox_backlog(&mut self) {
        while let Some(message) = self.outbox_backlog.pop_front() {
            if let Err(message) = self.mailbox.send_to_control(message) {
                self.outbox_backlog.push_front(message);
                break;
            }
        }
    }

    fn arm_wake(&mut self) {
        if self.wake_armed {
            return;
        }
        let fd: RawFd = self.mailbox.waker_fd();
        let ptr = self.wake_buf.as_mut_ptr();
        let entry = opcode::Read::new(types::Fd(fd), ptr, 8).build();
        // SAFETY: `wake_buf` is boxed and owned by the reactor, which outlives the ring's
        // operations; the eventfd is kept open by the mailbox the reactor holds.
        self.wake_armed = unsafe { self.push_op(entry, Op::Wake) }.is_some();
    }

    /// Run until shut down.
    pub fn run(mut self) {
        if self.ring.fixed_buffers() {
            tracing::info!(reactor = self.id, "reactor started");
        } else {
            tracing::warn!(
                reactor = self.id,
                "reactor started with unregistered I/O buffers: RLIMIT_MEMLOCK is too small to \
                 register them (raise it, e.g. `ulimit -l unlimited`, for the fixed-buffer path)"
            );
        }
        // The end of the last turn that did work: the adaptive spin counts from there.
        let mut last_work = Instant::now();
        let mut previous_turn = Turn::Polled;
        let mut shutdown_deadline = u64::MAX;
        loop {
            let turn_started = self.now;
            self.now = Instant::now();
            let turn_ns = self.now.saturating_duration_since(turn_started).as_nanos() as u64;
            self.stats.count_turn(previous_turn, turn_ns);
            if previous_turn == Turn::Worked {
                last_work = self.now;
            }
            let mut worked = self.poll_mailbox();
            if self.shutting_down && shutdown_deadline == u64::MAX {
                shutdown_deadline = self.now_ms() + 5_000;
            }
            self.arm_accepts();
            self.arm_wake();
            worked |= self.reap_and_dispatch();
            self.service_connections();
            self.flush_connections();
            self.retire_tables();
            self.flush_outbox_backlog();
            if self.shutting_down
                && ((self.conns.is_empty() && self.cmds.is_empty() && self.nothing_left_to_reap())
                    || self.now_ms() > shutdown_deadline)
            {
                break;
            }
            if self.ring.needs_enter() {
                self.submit_queued();
            }
            if worked {
                previous_turn = Turn::Worked;
                continue;
            }
            previous_turn = Turn::Polled;
            if self.poll_mode == PollMode::Adaptive
                && self.now.saturating_duration_since(last_work) > ADAPTIVE_SPIN
            {
                previous_turn = Turn::Slept;
                // A command parked on a range lock is released by another thread, which does
                // not wake this ring: look again soon rather than at the next tick.
                let wait = if self.parked.is_empty() {
                    Duration::from_millis(TICK_MS)
                } else {
                    PARKED_RETRY
                };
                if let Err(e) = self.ring.submit_and_wait(wait) {
                    tracing::error!(reactor = self.id, "io_uring wait failed: {e}");
                }
            } else {
                std::hint::spin_loop();
            }
        }
        self.finish_queued_operations();
        self.send_to_control(FromReactor::Stopped);
        self.flush_outbox_backlog();
        tracing::info!(reactor = self.id, "reactor stopped");
    }

    fn poll_mailbox(&mut self) -> bool {
        let mut worked = false;
        while let Some(message) = self.mailbox.to_reactor.try_recv() {
            worked = true;
            match message {
                ToReactor::Install { snapshot, locks } => {
                    let generation = snapshot.generation;
                    if self.tables.is_newer(generation) {
                        let files = self.device_files.acquire(&mut self.ring, &snapshot);
                        self.tables.install(snapshot, locks, files);
                        self.send_to_control(FromReactor::Installed(generation));
                    } else {
                        tracing::error!(
                            reactor = self.id,
                            generation,
                            current = self.tables.current_generation(),
                            "ignored a table generation that is not newer than the current one"
                        );
                    }
                }
                ToReactor::StatsRequest => {
                    let stats = self.stats.snapshot();
                    self.send_to_control(FromReactor::Stats(stats));
                }
                ToReactor::Answer { seq, reply } => self.on_control_answer(seq, reply),
                ToReactor::AddListener(fd) => self.add_listener(fd),
                ToReactor::RemoveListener(addr) => self.remove_listener(addr),
                ToReactor::CloseSessions {
                    initiator_port,
                    keep,
                } => self.close_sessions(&initiator_port, keep),
                ToReactor::Reset { target, function } => {
                    self.reset_from_elsewhere(&target, function)
                }
                ToReactor::AbortTasks {
                    id,
                    volume_uid,
                    initiator_ports,
                } => self.abort_tasks_of(id, volume_uid, &initiator_ports),
                ToReactor::Shutdown => {
                    self.shutting_down = true;
                    for id in self.conns.ids() {
                        self.begin_close(id, lunar_iscsi::CloseReason::PeerClosed, true);
                    }
                }
            }
        }
        worked
    }

    /// At exit: submit what is still queued (the closes of the last sockets) and wait a little
    /// for the closes in flight, so no descriptor is left open behind the ring.
    fn finish_queued_operations(&mut self) {
        let deadline = Instant::now() + SHUTDOWN_DRAIN;
        let closing = |ops: &OpSlab<Op>| {
            ops.ids()
                .into_iter()
                .any(|id| matches!(ops.get(id), Some(Op::Ignore | Op::Shutdown(_))))
        };
        if let Err(e) = self.ring.submit() {
            tracing::warn!(reactor = self.id, "io_uring submit at exit failed: {e}");
        }
        while closing(&self.ops) && Instant::now() < deadline {
            if let Err(e) = self.ring.submit_and_wait(Duration::from_millis(10)) {
                tracing::warn!(reactor = self.id, "io_uring wait at exit failed: {e}");
                break;
            }
            self.reap_and_dispatch();
        }
    }

    /// Submit what is queued (a close, a shutdown) and let the kernel post the completions it
    /// still holds as deferred work (an accept that raced the shutdown); true when none came.
    fn nothing_left_to_reap(&mut self) -> bool {
        self.submit_queued();
        !self.ring.has_completions()
    }

    /// Submit what is queued without waiting; a failure is logged.
    fn submit_queued(&mut self) {
        if let Err(e) = self.ring.submit() {
            tracing::error!(reactor = self.id, "io_uring submit failed: {e}");
        }
    }

    fn reap_and_dispatch(&mut self) -> bool {
        let mut completions = std::mem::take(&mut self.completions);
        completions.clear();
        let n = self.ring.reap(&mut completions, REAP_BATCH);
        for completion in completions.drain(..) {
            // A multishot operation stays in flight while its completions say more follow.
            let op = if io_uring::cqueue::more(completion.flags) {
                self.ops.get(completion.user_data).copied()
            } else {
                self.ops.remove(completion.user_data)
            };
            let Some(op) = op else {
                continue;
            };
            match op {
                Op::Accept(listener) => self.on_accept_done(listener, completion.result),
                Op::Wake => self.wake_armed = false,
                Op::Recv(conn) => self.on_recv(conn, completion.result, completion.flags),
                Op::Send(conn) => self.on_send(conn, completion.result),
                Op::Shutdown(conn) => self.on_shutdown_done(conn),
                Op::Ignore => {}
                Op::Backend { cmd, piece } => self.on_backend(cmd, piece, completion.result),
            }
            if self.ring.unsubmitted() >= EARLY_SUBMIT_ENTRIES {
                self.submit_queued();
            }
        }
        self.completions = completions;
        n > 0
    }

    fn service_connections(&mut self) {
        let starved = std::mem::take(&mut self.starved_conns);
        for id in starved {
            self.pump(id);
        }
        let parked = self.parked.len();
        for _ in 0..parked {
            let Some(cmd) = self.parked.pop_front() else {
                break;
            };
            self.advance(cmd);
        }
        let now = self.now_ms();
        if now.saturating_sub(self.last_tick_ms) >= TICK_MS {
            self.last_tick_ms = now;
            for id in self.conns.ids() {
                self.tick_connection(id, now);
            }
        }
    }

    fn retire_tables(&mut self) {
        if let Some(drained_below) = self.tables.retire(&mut self.released) {
            let released = std::mem::take(&mut self.released);
            for snapshot in released {
                // Out of the file table before the control thread may close the devices.
                self.device_files.release(&mut self.ring, &snapshot);
                self.send_to_control(FromReactor::Release(snapshot));
            }
            self.send_to_control(FromReactor::Drained(drained_below));
        }
    }
}
