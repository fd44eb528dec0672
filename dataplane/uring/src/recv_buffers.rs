//! Provided buffers for socket receives: a fixed number of equal buffers, carved out of one
//! anonymous mapping at start and handed to the kernel through a registered buffer ring (one
//! buffer group). A multishot receive takes a buffer for every chunk it brings in and names it
//! in its completion; the reactor gives the buffer back once it has parsed the bytes. The
//! buffers are shared by every connection of the ring, so an idle connection holds no receive
//! memory. When all of them are in use, a multishot receive ends with ENOBUFS and is armed
//! again later (backpressure).

use std::io;
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::types::BufRingEntry;
use io_uring::IoUring;
use memmap2::MmapMut;

/// Buffer group id the ring registers its receive buffers under.
pub const RECV_BUFFER_GROUP: u16 = 0;

pub struct RecvBuffers {
    /// The ring of entries the kernel takes buffers from (`count` entries of 16 bytes; the
    /// tail lives in the first entry's reserved field).
    ring: MmapMut,
    data: MmapMut,
    count: u16,
    buf_bytes: usize,
    /// Our copy of the tail: the next entry to fill.
    tail: u16,
}

impl RecvBuffers {
    /// `count` buffers (a power of two, at most 32768) of `buf_bytes` each, every one in the
    /// ring.
    pub fn new(count: u16, buf_bytes: usize) -> io::Result<RecvBuffers> {
        if !count.is_power_of_two() || count > 1 << 15 || buf_bytes == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "receive buffers: the count must be a power of two up to 32768",
            ));
        }
        let ring = MmapMut::map_anon(usize::from(count) * std::mem::size_of::<BufRingEntry>())?;
        let data = MmapMut::map_anon(usize::from(count) * buf_bytes)?;
        let mut buffers = RecvBuffers {
            ring,
            data,
            count,
            buf_bytes,
            tail: 0,
        };
        for id in 0..count {
            buffers.put(id);
        }
        buffers.publish();
        Ok(buffers)
    }

    /// Register the ring with `ring` as [`RECV_BUFFER_GROUP`].
    pub(crate) fn register(&self, ring: &IoUring) -> io::Result<()> {
        // SAFETY: the entries live in `self.ring`, a mapping the `Ring` owns alongside the
        // io_uring and drops after it; the kernel reads entries and the tail from it.
        unsafe {
            ring.submitter().register_buf_ring_with_flags(
                self.ring.as_ptr() as u64,
                self.count,
                RECV_BUFFER_GROUP,
                0,
            )
        }
    }

    /// Bytes each buffer holds (the most one receive completion brings).
    pub fn buf_bytes(&self) -> usize {
        self.buf_bytes
    }

    /// The first `len_bytes` of buffer `id` (as a completion named it).
    pub fn get(&self, id: u16, len_bytes: usize) -> &[u8] {
        let start = usize::from(id % self.count) * self.buf_bytes;
        &self.data[start..start + len_bytes.min(self.buf_bytes)]
    }

    /// Give buffer `id` back to the kernel.
    pub fn recycle(&mut self, id: u16) {
        self.put(id % self.count);
        self.publish();
    }

    fn put(&mut self, id: u16) {
        let index = usize::from(self.tail & (self.count - 1));
        let addr = self.data[usize::from(id) * self.buf_bytes..].as_mut_ptr() as u64;
        let base = self.ring.as_mut_ptr().cast::<BufRingEntry>();
        // SAFETY: `index < count`, so the entry lies inside the ring mapping; the kernel does
        // not read entries at or past the published tail, and this one is past it.
        let entry = unsafe { &mut *base.add(index) };
        entry.set_addr(addr);
        entry.set_len(self.buf_bytes as u32);
        entry.set_bid(id);
        self.tail = self.tail.wrapping_add(1);
    }

    /// Make the entries put so far visible to the kernel.
    fn publish(&mut self) {
        let base = self.ring.as_ptr().cast::<BufRingEntry>();
        // SAFETY: the tail is a naturally aligned u16 inside the first entry of the mapping,
        // which the kernel only reads; the release store orders the entries before it.
        let tail = unsafe { &*(BufRingEntry::tail(base) as *const AtomicU16) };
        tail.store(self.tail, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_must_be_powers_of_two() {
        assert!(RecvBuffers::new(3, 4096).is_err());
        assert!(RecvBuffers::new(0, 4096).is_err());
        let buffers = RecvBuffers::new(4, 4096).unwrap();
        assert_eq!(buffers.buf_bytes(), 4096);
        assert_eq!(buffers.get(1, 10_000).len(), 4096);
    }
}
