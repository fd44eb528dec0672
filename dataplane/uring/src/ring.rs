//! The ring: one io_uring per reactor, owning the registered buffer pool so the buffers live as
//! long as any operation that may use them. Pushing never blocks: a full submission queue is
//! flushed once and, if still full, the entry is handed back for the caller to park.

use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

use io_uring::{squeue, types, IoUring};

use crate::buffers::BufPool;
use crate::files::{self, FileRef, FileSlots};
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
    /// The registered-file table's free slots; `None` when the kernel refused the table.
    file_slots: Option<FileSlots>,
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
        // A sparse table (kernels from 5.19): without it every file is used by descriptor.
        let slots = files::slot_count();
        let file_slots = (slots > 0 && ring.submitter().register_files_sparse(slots).is_ok())
            .then(|| FileSlots::new(slots));
        Ok(Ring {
            ring,
            recv_buffers: None,
            pool,
            fixed_buffers,
            file_slots,
        })
    }

    /// Register `fd` in a slot of the file table, for the operations on it to name the slot.
    /// Falls back to the descriptor itself when the table is missing or full, or the kernel
    /// refuses. The caller unregisters the returned reference before closing `fd`.
    pub fn register_file(&mut self, fd: RawFd) -> FileRef {
        let Some(slots) = self.file_slots.as_mut() else {
            return FileRef::Raw(fd);
        };
        let Some(slot) = slots.take() else {
            return FileRef::Raw(fd);
        };
        match self.ring.submitter().register_files_update(slot, &[fd]) {
            Ok(1) => FileRef::Fixed(slot),
            _ => {
                slots.give_back(slot);
                FileRef::Raw(fd)
            }
        }
    }

    /// Empty the slot of a reference [`Ring::register_file`] returned (nothing to do for a
    /// plain descriptor). Operations still in flight on it keep the file until they complete.
    pub fn unregister_file(&mut self, file: FileRef) {
        let FileRef::Fixed(slot) = file else {
            return;
        };
        let Some(slots) = self.file_slots.as_mut() else {
            return;
        };
        // Emptying a slot fails only for a bad slot number, which this table never hands out:
        // on failure the slot is not reused, so no other file is ever reached through it.
        if self
            .ring
            .submitter()
            .register_files_update(slot, &[-1])
            .is_ok()
        {
            slots.give_back(slot);
        }
    }

    /// Free slots left in the file table (0 without a table).
    pub fn free_file_slots(&self) -> usize {
        self.file_slots.as_ref().map_or(0, FileSlots::free_count)
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

    /// How many entries are queued but not yet submitted.
    pub fn unsubmitted(&mut self) -> usize {
        self.ring.submission().len()
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

    fn run_one(ring: &mut Ring, entry: squeue::Entry) -> i32 {
        // SAFETY: callers pass entries whose buffers and files outlive this wait.
        unsafe { ring.push(&entry.user_data(1)) }.unwrap();
        let mut done = Vec::new();
        while done.is_empty() {
            ring.submit_and_wait(Duration::from_secs(1)).unwrap();
            ring.reap(&mut done, 8);
        }
        done[0].result
    }

    #[test]
    fn a_registered_file_is_reached_by_its_slot_until_unregistered() {
        use crate::{with_file, FileRef};
        use std::os::unix::fs::FileExt;
        let pool = BufPool::new(1, 4096, 1, 4096).unwrap();
        let mut ring = Ring::new(8, pool).unwrap();
        let free_before = ring.free_file_slots();
        assert!(
            free_before > 0,
            "kernels with io_uring here have sparse file tables"
        );
        let file = tempfile::tempfile().unwrap();
        let registered = ring.register_file(file.as_raw_fd());
        assert_eq!(registered, FileRef::Fixed(0));
        assert_eq!(ring.free_file_slots(), free_before - 1);

        let data = *b"through the slot";
        let entry = with_file!(registered, |fd| opcode::Write::new(
            fd,
            data.as_ptr(),
            data.len() as u32
        )
        .offset(0)
        .build());
        assert_eq!(run_one(&mut ring, entry), data.len() as i32);
        let mut back = [0u8; 16];
        file.read_exact_at(&mut back, 0).unwrap();
        assert_eq!(back, data);

        ring.unregister_file(registered);
        assert_eq!(ring.free_file_slots(), free_before);
        let mut buf = [0u8; 4];
        let entry = with_file!(registered, |fd| opcode::Read::new(fd, buf.as_mut_ptr(), 4)
            .build());
        assert_eq!(
            run_one(&mut ring, entry),
            -libc::EBADF,
            "an empty slot reaches nothing"
        );

        // The slot is reused; a descriptor still works as one.
        let other = tempfile::tempfile().unwrap();
        assert_eq!(ring.register_file(other.as_raw_fd()), FileRef::Fixed(0));
        let raw = FileRef::Raw(file.as_raw_fd());
        let entry = with_file!(raw, |fd| opcode::Read::new(fd, buf.as_mut_ptr(), 4)
            .offset(0)
            .build());
        assert_eq!(run_one(&mut ring, entry), 4);
        assert_eq!(&buf, b"thro");
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
