//! The ring: one io_uring per reactor, owning the registered buffer pool so the buffers live as
//! long as any operation that may use them. Pushing never blocks: a full submission queue is
//! flushed once and, if still full, the entry is handed back for the caller to park.

use std::io;
use std::time::Duration;

use io_uring::{squeue, types, IoUring};

use crate::buffers::BufPool;
use crate::recv_buffers::RecvBuffers;
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
    /// Dropped first: the kernel lets go of the buffers below before they are unmapped.
    ring: IoUring,
    recv_buffers: Option<RecvBuffers>,
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
            recv_buffers: None,
            pool,
            fixed_buffers,
        })
    }

    /// Register `buffers` as the provided buffers of socket receives (see
    /// [`crate::recv_buffers`]). Fails on kernels without buffer rings (before 5.19); the
    /// caller then receives into buffers of its own.
    pub fn provide_recv_buffers(&mut self, buffers: RecvBuffers) -> io::Result<()> {
        buffers.register(&self.ring)?;
        self.recv_buffers = Some(buffers);
        Ok(())
    }

    /// The provided receive buffers, when registered.
    pub fn recv_buffers(&self) -> Option<&RecvBuffers> {
        self.recv_buffers.as_ref()
    }

    pub fn recv_buffers_mut(&mut self) -> Option<&mut RecvBuffers> {
        self.recv_buffers.as_mut()
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

    /// Whether completions wait to be reaped.
    pub fn has_completions(&mut self) -> bool {
        !self.ring.completion().is_empty()
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
    fn a_multishot_receive_fills_provided_buffers_until_cancelled() {
        use crate::recv_buffers::RECV_BUFFER_GROUP;
        use std::io::Write;
        let pool = BufPool::new(1, 4096, 1, 4096).unwrap();
        let mut ring = Ring::new(8, pool).unwrap();
        ring.provide_recv_buffers(RecvBuffers::new(4, 8).unwrap())
            .unwrap();
        let (mut ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
        let entry = opcode::RecvMulti::new(types::Fd(theirs.as_raw_fd()), RECV_BUFFER_GROUP)
            .build()
            .user_data(7);
        // SAFETY: the socket outlives the ring's use of it below; the buffers are the ring's.
        unsafe { ring.push(&entry) }.unwrap();
        ring.submit().unwrap();
        let mut received = Vec::new();
        let mut done = Vec::new();
        for chunk in [&b"hello"[..], b"0123456789abcdef"] {
            ours.write_all(chunk).unwrap();
            let want = received.len() + chunk.len();
            while received.len() < want {
                ring.submit_and_wait(Duration::from_secs(1)).unwrap();
                done.clear();
                ring.reap(&mut done, 8);
                for c in &done {
                    assert_eq!(c.user_data, UserData(7));
                    assert!(io_uring::cqueue::more(c.flags), "still armed");
                    let id = io_uring::cqueue::buffer_select(c.flags).expect("a buffer");
                    let bufs = ring.recv_buffers_mut().unwrap();
                    received.extend_from_slice(bufs.get(id, c.result as usize));
                    bufs.recycle(id);
                }
            }
        }
        assert_eq!(received, b"hello0123456789abcdef");
        let cancel = opcode::AsyncCancel::new(7).build().user_data(8);
        // SAFETY: no buffer involved.
        unsafe { ring.push(&cancel) }.unwrap();
        let mut ended = false;
        while !ended {
            ring.submit_and_wait(Duration::from_secs(1)).unwrap();
            done.clear();
            ring.reap(&mut done, 8);
            ended = done
                .iter()
                .any(|c| c.user_data == UserData(7) && !io_uring::cqueue::more(c.flags));
        }
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
