//! The run loop of one thread: its sessions on one epoll set (mio), kept full to their queue
//! depth until the measured window ends, then drained and logged out. Order per turn: submit
//! into every session with room, flush every socket that can take bytes, wait for readiness,
//! read and handle what arrived.

use std::io::{ErrorKind, Read, Write};
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

use crate::session::{Completion, Session};
use crate::stats::Stats;
use crate::workload::Generator;

/// Longest wait in epoll when nothing is due sooner.
const POLL_WAIT_MAX: Duration = Duration::from_millis(10);
/// Time commands may stay unanswered, with none finishing anywhere, before the run fails.
const STALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Time the target has to answer the logouts.
const LOGOUT_TIMEOUT: Duration = Duration::from_secs(5);
/// Readiness events handled per wait.
const EVENTS_CAPACITY: usize = 1024;

/// One session and its socket and workload.
pub struct Conn {
    pub index: usize,
    pub session: Session,
    pub stream: TcpStream,
    pub generator: Generator,
    writable: bool,
    broken: bool,
}

impl Conn {
    pub fn new(index: usize, session: Session, stream: TcpStream, generator: Generator) -> Conn {
        Conn {
            index,
            session,
            stream,
            generator,
            writable: true,
            broken: false,
        }
    }
}

/// When things happen in a run.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    /// Completions from here on count.
    pub measure_start: Instant,
    /// No new I/O from here on; in-flight I/O drains, then every session logs out.
    pub measure_end: Instant,
    /// Submit I/O (false: hold the sessions idle until `measure_end`).
    pub load: bool,
    /// Never sleep in epoll.
    pub busy_poll: bool,
}

/// Runs `conns` to the end of the schedule and returns what they counted.
pub fn run(mut conns: Vec<Conn>, schedule: Schedule) -> Stats {
    let mut stats = Stats::new();
    let mut poll = match Poll::new() {
        Ok(poll) => poll,
        Err(e) => {
            stats.fail(format!("epoll: {e}"));
            return stats;
        }
    };
    for (i, conn) in conns.iter_mut().enumerate() {
        if let Err(e) = poll.registry().register(
            &mut conn.stream,
            Token(i),
            Interest::READABLE | Interest::WRITABLE,
        ) {
            stats.fail(format!("session {}: epoll register: {e}", conn.index));
            conn.broken = true;
        }
    }
    let mut events = Events::with_capacity(EVENTS_CAPACITY);
    let mut last_progress = Instant::now();
    let mut logout_deadline: Option<Instant> = None;
    loop {
        let now = Instant::now();
        let submitting = schedule.load && now < schedule.measure_end;
        if submitting {
            for conn in conns.iter_mut().filter(|c| !c.broken) {
                submit_all(conn, now, &mut stats);
            }
        }
        let in_flight: usize = conns
            .iter()
            .filter(|c| !c.broken)
            .map(|c| c.session.in_flight())
            .sum();
        if now >= schedule.measure_end && in_flight == 0 {
            match logout_deadline {
                None => {
                    for conn in conns.iter_mut().filter(|c| !c.broken) {
                        conn.session.logout();
                    }
                    logout_deadline = Some(now + LOGOUT_TIMEOUT);
                }
                Some(deadline) => {
                    let all_out = conns.iter().all(|c| c.broken || c.session.logged_out());
                    if all_out || now >= deadline {
                        break;
                    }
                }
            }
        }
        if in_flight > 0 && now.duration_since(last_progress) > STALL_TIMEOUT {
            stats.fail(format!(
                "{in_flight} commands unanswered for {} s",
                STALL_TIMEOUT.as_secs()
            ));
            break;
        }
        if in_flight == 0 {
            last_progress = now;
        }
        for conn in conns.iter_mut().filter(|c| !c.broken && c.writable) {
            flush(conn, &mut stats);
        }
        let wait = if schedule.busy_poll {
            Duration::ZERO
        } else if now < schedule.measure_end {
            POLL_WAIT_MAX.min(schedule.measure_end - now)
        } else {
            POLL_WAIT_MAX
        };
        if let Err(e) = poll.poll(&mut events, Some(wait)) {
            if e.kind() != ErrorKind::Interrupted {
                stats.fail(format!("epoll wait: {e}"));
                break;
            }
        }
        for event in events.iter() {
            let Some(conn) = conns.get_mut(event.token().0) else {
                continue;
            };
            if conn.broken {
                continue;
            }
            if event.is_writable() {
                conn.writable = true;
            }
            if event.is_readable() || event.is_read_closed() || event.is_error() {
                let before = conn.session.in_flight();
                receive(conn, &schedule, &mut stats);
                if conn.session.in_flight() < before {
                    last_progress = Instant::now();
                }
            }
        }
    }
    stats
}

/// Fills the session to its queue depth (or the CmdSN window).
fn submit_all(conn: &mut Conn, now: Instant, stats: &mut Stats) {
    while conn.session.can_submit() {
        let Some(op) = conn.generator.next_op() else {
            return;
        };
        let generator = &conn.generator;
        if let Err(e) = conn
            .session
            .submit(op, now, |buffer| generator.fill(&op, buffer))
        {
            stats.fail(format!("session {}: submit: {e}", conn.index));
            conn.broken = true;
            return;
        }
    }
}

/// Writes queued bytes until they are gone or the socket is full.
fn flush(conn: &mut Conn, stats: &mut Stats) {
    loop {
        let pending = conn.session.pending_tx();
        if pending.is_empty() {
            return;
        }
        let want = pending.len();
        match conn.stream.write(pending) {
            Ok(0) => {
                broken(conn, stats, "the connection closed while sending".into());
                return;
            }
            Ok(n) => {
                conn.session.advance_tx(n);
                if n < want {
                    // The socket is full; an edge-triggered writable event follows when it
                    // drains.
                    conn.writable = false;
                    return;
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                conn.writable = false;
                return;
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => {
                broken(conn, stats, format!("send: {e}"));
                return;
            }
        }
    }
}

/// Reads what arrived and handles every whole PDU, recording finished commands.
fn receive(conn: &mut Conn, schedule: &Schedule, stats: &mut Stats) {
    loop {
        let spare = conn.session.rx_spare();
        let room = spare.len();
        let n = match conn.stream.read(spare) {
            Ok(0) => {
                if !conn.session.logged_out() {
                    broken(conn, stats, "the target closed the connection".into());
                }
                return;
            }
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => {
                broken(conn, stats, format!("receive: {e}"));
                return;
            }
        };
        conn.session.commit_rx(n);
        let now = Instant::now();
        let in_window = now >= schedule.measure_start && now < schedule.measure_end;
        let generator = &mut conn.generator;
        let result = conn
            .session
            .process(now, &mut |completion: &Completion, data: &[u8]| {
                let check = generator.complete(completion, data);
                stats.record(completion, check, in_window);
            });
        if let Err(e) = result {
            broken(conn, stats, e.to_string());
            return;
        }
        if n < room {
            // A short read drained the socket; new data raises a new edge-triggered event.
            return;
        }
    }
}

fn broken(conn: &mut Conn, stats: &mut Stats, message: String) {
    stats.fail(format!("session {}: {message}", conn.index));
    conn.broken = true;
}
