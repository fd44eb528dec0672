//! The control thread ↔ reactor mailboxes: one bounded lock-free ring in each direction per
//! reactor (each used by exactly one producer and one consumer), an eventfd the control thread
//! writes to wake a reactor sleeping in io_uring_enter, and the [`Doorbell`] a reactor rings to
//! wake the control thread. A full ring hands the message back (`try_send`), so neither side
//! ever blocks on the other.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;

use crossbeam_queue::ArrayQueue;

use lunar_iscsi::ResetFunction;
use lunar_scsi::ScsiReply;

use crate::doorbell::Doorbell;
use crate::range_locks::RangeLocks;
use crate::requests::ReactorRequest;
use crate::snapshot::Snapshot;
use crate::stats::ReactorReport;

/// Messages a reactor can hold queued from the control thread.
pub const TO_REACTOR_RING_CAPACITY: usize = 64;
/// Messages the control thread can hold queued from one reactor.
pub const FROM_REACTOR_RING_CAPACITY: usize = 256;

/// Control thread → reactor.
#[derive(Debug)]
pub enum ToReactor {
    /// Install this table generation between commands; `locks[i]` are the range locks of
    /// `snapshot.volumes[i]`, shared by every reactor.
    Install {
        snapshot: Arc<Snapshot>,
        locks: Arc<Vec<Arc<RangeLocks>>>,
    },
    /// Send back the per-volume counters.
    StatsRequest,
    /// Close every connection and exit once in-flight I/O finished.
    Shutdown,
    /// The answer to request `seq` this reactor sent.
    Answer { seq: u64, reply: ScsiReply },
    /// Start accepting on another portal (a listener bound with SO_REUSEPORT).
    AddListener(OwnedFd),
    /// Stop accepting on this portal (connections already there stay).
    RemoveListener(std::net::SocketAddr),
    /// Close the sessions of this initiator port (`InitiatorName,i,0xISID`) except `keep`, a
    /// connection of reactor `keep.0`: a new login reinstated the session.
    CloseSessions {
        initiator_port: String,
        keep: Option<(usize, u64)>,
    },
    /// PREEMPT AND ABORT: abort the tasks of volume `volume_uid`'s logical unit that arrived
    /// from these initiator ports (no response for them), and answer `TasksAborted { id }`
    /// once their I/O finished.
    AbortTasks {
        id: u64,
        volume_uid: u64,
        initiator_ports: Vec<String>,
    },
    /// Another session reset a logical unit or the whole target: abort the tasks in scope on
    /// this reactor's sessions to that target and raise the unit attention.
    Reset {
        target: String,
        function: ResetFunction,
    },
}

/// Reactor → control thread.
#[derive(Debug)]
pub enum FromReactor {
    /// Generation `n` is now the one new commands are planned against.
    Installed(u64),
    /// No in-flight command is pinned to a generation older than `n`.
    Drained(u64),
    /// A table no reactor command uses any more; dropped by the control thread so the data
    /// path never frees it.
    Release(Arc<Snapshot>),
    Stats(ReactorReport),
    /// The reactor left its loop.
    Stopped,
    /// Something only the control thread can answer.
    Request(ReactorRequest),
    /// The tasks of `AbortTasks { id }` are gone from this reactor.
    TasksAborted {
        id: u64,
    },
    /// A login completed for this initiator port on connection `conn` of reactor `reactor`:
    /// other sessions with the same initiator port are to be closed.
    SessionLogin {
        reactor: usize,
        conn: u64,
        initiator_port: String,
    },
    /// A session on reactor `reactor` reset a logical unit or target: every other reactor must
    /// abort the tasks in scope and raise the unit attention.
    Reset {
        reactor: usize,
        target: String,
        function: ResetFunction,
    },
}

/// One direction of a mailbox.
pub struct Ring<T> {
    queue: ArrayQueue<T>,
}

impl<T> Ring<T> {
    pub fn new(capacity: usize) -> Self {
        Ring {
            queue: ArrayQueue::new(capacity),
        }
    }
    /// Push, or hand the message back when the ring is full.
    pub fn try_send(&self, message: T) -> Result<(), T> {
        self.queue.push(message)
    }
    pub fn try_recv(&self) -> Option<T> {
        self.queue.pop()
    }
}

/// Everything shared between the control thread and one reactor.
pub struct Mailbox {
    pub to_reactor: Ring<ToReactor>,
    pub from_reactor: Ring<FromReactor>,
    waker: OwnedFd,
    control_bell: Arc<Doorbell>,
}

impl Mailbox {
    /// A mailbox whose reactor rings `control_bell` (shared by every reactor) for each
    /// message it sends the control thread.
    pub fn new(control_bell: Arc<Doorbell>) -> std::io::Result<Arc<Mailbox>> {
        // SAFETY: eventfd has no memory-safety preconditions; the result is checked.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Arc::new(Mailbox {
            to_reactor: Ring::new(TO_REACTOR_RING_CAPACITY),
            from_reactor: Ring::new(FROM_REACTOR_RING_CAPACITY),
            // SAFETY: `fd` was just returned by eventfd and is owned by nobody else.
            waker: unsafe { OwnedFd::from_raw_fd(fd) },
            control_bell,
        }))
    }

    /// Queue a message for the control thread and ring its doorbell (reactor side); a full
    /// ring hands the message back.
    // The message handed back is kept in the reactor's backlog: boxing it would cost an
    // allocation on every send, full or not.
    #[allow(clippy::result_large_err)]
    pub fn send_to_control(&self, message: FromReactor) -> Result<(), FromReactor> {
        self.from_reactor.try_send(message)?;
        self.control_bell.ring();
        Ok(())
    }

    /// The eventfd the reactor keeps a read armed on.
    pub fn waker_fd(&self) -> RawFd {
        self.waker.as_raw_fd()
    }

    /// Wake the reactor if it sleeps (control thread side).
    pub fn wake(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to an eventfd we own; a failure (counter
        // overflow, impossible in practice) only means the reactor is already awake.
        let _ = unsafe {
            libc::write(
                self.waker.as_raw_fd(),
                (&one as *const u64).cast(),
                std::mem::size_of::<u64>(),
            )
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_ring_hands_the_message_back() {
        let ring = Ring::new(1);
        ring.try_send(1u32).unwrap();
        assert_eq!(ring.try_send(2), Err(2));
        assert_eq!(ring.try_recv(), Some(1));
        assert_eq!(ring.try_recv(), None);
    }
}
