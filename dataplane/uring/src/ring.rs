//! The ring: one io_uring per reactor, owning the registered buffer pool so the buffers live as
//! long as any operation that may use them. Pushing never blocks: a full submission queue is
//! flushed once and, if still full, the entry is handed back for the caller to park.

use std::io;
use std::time::Duration;

use io_uring::{squeue, types, IoUring};

use crate::buffers::BufPool;
use crate::slab::UserData;

/// A reaped completion.
#[derive(Debug, Clone, Copy)]
pub struct Completion {
    pub user_data: UserData,
    /// Result: bytes transferred or `-errno`.
    pub result: i32,
    pub flags: u32,
}

/// The submission queue stayed full after a flush: park the work and retry later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SqFull;

pub struct Ring {
    ring: IoUring,
    pool: BufPool,
    /// Whether `pool` is registered with the ring (fixed-buffer operations allowed).
    fixed_buffers: bool,
}

impl Ring {
    /// A ring of `entries` submission slots with `pool` registered as fixed buffers.
    pub fn new(entries: u32, mut pool: BufPool) -> io::Result<Ring> {
        // Completion work (socket and block completions) waits until the reactor enters the
        // ring to collect it, instead of interrupting it: the taskrun flag tells when.
        // Kernels before 6.1 lack deferred task work, those before 5.19 cooperative task
        // running: fall back step by step.
        let ring = IoUring::builder()
            .setup_single_issuer()
            .setup_defer_taskrun()
            .setup_taskrun_flag()
            .build(entries)
            .or_else(|_| {
                IoUring::builder()
                    .setup_single_issuer()
                    .setup_coop_taskrun()
                    .setup_taskrun_flag()
                    .build(entries)
            })
            .or_else(|_| IoUring::new(entries))?;
        let iovecs = pool.iovecs();
        // SAFETY: the iovecs point into `pool`'s mappings, which `Ring` owns and which outlive
        // the ring's registration (the ring field drops first, unregistering on close).
        let fixed_buffers = match unsafe { ring.submitter().register_buffers(&iovecs) } {
            Ok(()) => true,
            // Registration pins memory against RLIMIT_MEMLOCK, which is small for unprivileged
            // users: run with plain (unregistered) buffers instead.
            Err(e) if e.raw_os_error() == Some(libc::ENOMEM) => false,
            Err(e) => return Err(e),
        };
        Ok(Ring {
            ring,
            pool,
            fixed_buffers,
        })
    }

    /// Whether the pool's buffers are registered, so `ReadFixed`/`WriteFixed` may be used;
    /// otherwise plain `Read`/`Write` on the same buffers.
    pub fn fixed_buffers(&self) -> bool {
        self.fixed_buffers
    }

    pub fn bufs(&self) -> &BufPool {
        &self.pool
    }

    pub fn bufs_mut(&mut self) -> &mut BufPool {
        &mut self.pool
    }

    /// Queue `entry`.
    ///
    /// # Safety
    /// Every buffer and fd the entry refers to must stay valid (not moved, freed or closed)
    /// until its completion has been reaped.
    pub unsafe fn push(&mut self, entry: &squeue::Entry) -> Result<(), SqFull> {
        // SAFETY: forwarded from this function's contract.
        if unsafe { self.ring.submission().push(entry) }.is_ok() {
            return Ok(());
        }
        if self.ring.submit().is_err() {
            return Err(SqFull);
        }
        // SAFETY: as above.
        unsafe { self.ring.submission().push(entry) }.map_err(|_| SqFull)
    }

    /// Free submission-queue slots (after a submit, the whole queue).
    pub fn sq_space(&mut self) -> usize {
        let sq = self.ring.submission();
        sq.capacity() - sq.len()
    }

    /// Make room for `n` entries, submitting what is queued if needed. False when the queue
    /// cannot hold `n` entries now (the caller parks its work).
    pub fn ensure_sq_space(&mut self, n: usize) -> bool {
        if self.sq_space() >= n {
            return true;
        }
        let _ = self.submit();
        self.sq_space() >= n
    }

    /// Whether an io_uring_enter is needed now: entries are queued, the kernel has deferred
    /// completion work for us (socket completions run as task work), or completions overflowed.
    /// Otherwise completions can be reaped from shared memory without a syscall.
    pub fn needs_enter(&mut self) -> bool {
        let sq = self.ring.submission();
        !sq.is_empty() || sq.taskrun() || sq.cq_overflow()
    }

    /// Whether entries are queued but not yet submitted.
    pub fn has_unsubmitted(&mut self) -> bool {
        !self.ring.submission().is_empty()
    }

    /// Submit what is queued without waiting.
    pub fn submit(&mut self) -> io::Result<usize> {
        match self.ring.submit() {
            Ok(n) => Ok(n),
            Err(e) if is_transient(&e) => Ok(0),
            Err(e) => Err(e),
        }
    }

    /// Submit and sleep until a completion arrives or `timeout` passes.
    pub fn submit_and_wait(&mut self, timeout: Duration) -> io::Result<()> {
        let ts = types::Timespec::from(timeout);
        let args = types::SubmitArgs::new().timespec(&ts);
        match self.ring.submitter().submit_with_args(1, &args) {
            Ok(_) => Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::ETIME) || is_transient(&e) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Move up to `max` completions into `out`; returns how many.
    pub fn reap(&mut self, out: &mut Vec<Completion>, max: usize) -> usize {
        let mut n = 0;
        for cqe in self.ring.completion().take(max) {
            out.push(Completion {
                user_data: UserData(cqe.user_data()),
                result: cqe.result(),
                flags: cqe.flags(),
            });
            n += 1;
        }
        n
    }
}

fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EINTR) | Some(libc::EAGAIN) | Some(libc::EBUSY)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slab::OpSlab;
    use io_uring::opcode;
    use std::os::fd::AsRawFd;

    #[test]
    fn fixed_write_then_read_round_trips_through_a_file() {
        let pool = BufPool::new(2, 4096, 1, 65536).unwrap();
        let mut ring = Ring::new(8, pool).unwrap();
        let file = tempfile::tempfile().unwrap();
        let fd = types::Fd(file.as_raw_fd());
        let mut slab = OpSlab::with_capacity(4);

        let wbuf = ring.bufs_mut().alloc(4096).unwrap();
        ring.bufs_mut().slice_mut(wbuf)[..4096].fill(0xA5);
        let ptr = ring.bufs_mut().ptr(wbuf, 0);
        let id = slab.insert("write").unwrap();
        let entry = opcode::WriteFixed::new(fd, ptr, 4096, BufPool::registered_index(wbuf))
            .offset(8192)
            .build()
            .user_data(id.0);
        // SAFETY: the buffer lives in the ring's pool and the file outlives the wait below.
        unsafe { ring.push(&entry) }.unwrap();
        let mut done = Vec::new();
        while done.is_empty() {
            ring.submit_and_wait(Duration::from_secs(1)).unwrap();
            ring.reap(&mut done, 8);
        }
        assert_eq!(done[0].result, 4096);
        assert_eq!(slab.remove(done[0].user_data), Some("write"));

        let rbuf = ring.bufs_mut().alloc(4096).unwrap();
        let ptr = ring.bufs_mut().ptr(rbuf, 0);
        let id = slab.insert("read").unwrap();
        let entry = opcode::ReadFixed::new(fd, ptr, 4096, BufPool::registered_index(rbuf))
            .offset(8192)
            .build()
            .user_data(id.0);
        // SAFETY: as above.
        unsafe { ring.push(&entry) }.unwrap();
        done.clear();
        while done.is_empty() {
            ring.submit_and_wait(Duration::from_secs(1)).unwrap();
            ring.reap(&mut done, 8);
        }
        assert_eq!(done[0].result, 4096);
        assert!(ring.bufs().slice(rbuf)[..4096].iter().all(|&b| b == 0xA5));
    }

    #[test]
    fn wait_times_out_without_work() {
        let pool = BufPool::new(1, 4096, 1, 4096).unwrap();
        let mut ring = Ring::new(4, pool).unwrap();
        let started = std::time::Instant::now();
        ring.submit_and_wait(Duration::from_millis(20)).unwrap();
        assert!(started.elapsed() >= Duration::from_millis(15));
    }
}
