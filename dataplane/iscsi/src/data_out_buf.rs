//! The buffer a write's data-out is gathered in: a byte vector whose storage starts on a
//! 4 KiB boundary, so the reactor can hand it to an `O_DIRECT` device write as it is, with no
//! copy into an I/O buffer of its own. Bytes are only appended (received data) or the whole
//! buffer cleared; growth beyond the capacity moves the bytes to a larger aligned block.

use std::alloc::{self, Layout};
use std::fmt;
use std::ops::Deref;
use std::ptr::NonNull;

/// Alignment of every [`DataOutBuf`]'s storage: the largest logical block size served, and
/// the page size, so `O_DIRECT` accepts it for any block device.
pub const DATA_OUT_ALIGN_BYTES: usize = 4096;

/// A growable byte buffer with 4 KiB-aligned storage.
pub struct DataOutBuf {
    /// Start of the storage; dangling, and never read, while `capacity` is zero.
    ptr: NonNull<u8>,
    len: usize,
    capacity: usize,
}

// SAFETY: a DataOutBuf owns its storage exclusively, like a Vec<u8>; moving it to another
// thread moves that ownership with it.
unsafe impl Send for DataOutBuf {}
// SAFETY: shared references only read the initialized bytes.
unsafe impl Sync for DataOutBuf {}

impl DataOutBuf {
    /// An empty buffer; allocates nothing.
    pub const fn new() -> Self {
        DataOutBuf {
            ptr: NonNull::dangling(),
            len: 0,
            capacity: 0,
        }
    }

    /// An empty buffer with room for `capacity` bytes.
    pub fn with_capacity(capacity: usize) -> Self {
        let mut buf = DataOutBuf::new();
        buf.reserve_exact(capacity);
        buf
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn as_slice(&self) -> &[u8] {
        if self.capacity == 0 {
            return &[];
        }
        // SAFETY: `ptr` points to `capacity` bytes this buffer owns, of which the first `len`
        // were written by `extend_from_slice`.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    /// Forgets the contents and keeps the storage.
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Makes room for at least `additional` more bytes with at most one move of the storage.
    pub fn reserve_exact(&mut self, additional: usize) {
        let wanted = self.len.saturating_add(additional);
        if wanted <= self.capacity {
            return;
        }
        let layout = Self::layout(wanted);
        // SAFETY: the layout has a non-zero size (`wanted > capacity >= 0`).
        let fresh = unsafe { alloc::alloc(layout) };
        let Some(fresh) = NonNull::new(fresh) else {
            alloc::handle_alloc_error(layout);
        };
        if self.capacity > 0 {
            // SAFETY: the old storage holds `len` initialized bytes, the new one has room for
            // `wanted >= len`, and two live allocations never overlap; the old storage was
            // allocated with `layout(capacity)`.
            unsafe {
                std::ptr::copy_nonoverlapping(self.ptr.as_ptr(), fresh.as_ptr(), self.len);
                alloc::dealloc(self.ptr.as_ptr(), Self::layout(self.capacity));
            }
        }
        self.ptr = fresh;
        self.capacity = wanted;
    }

    /// Appends `bytes`, growing the storage when they do not fit.
    pub fn extend_from_slice(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        if self.capacity - self.len < bytes.len() {
            // Grow at least geometrically, so appends without a reservation stay linear.
            let additional = bytes.len().max(self.capacity);
            self.reserve_exact(additional);
        }
        // SAFETY: the storage has room for `len + bytes.len()` bytes (reserved above), and
        // `bytes` cannot alias storage this buffer exclusively owns.
        unsafe {
            std::ptr::copy_nonoverlapping(
                bytes.as_ptr(),
                self.ptr.as_ptr().add(self.len),
                bytes.len(),
            );
        }
        self.len += bytes.len();
    }

    fn layout(capacity: usize) -> Layout {
        Layout::from_size_align(capacity, DATA_OUT_ALIGN_BYTES)
            .expect("data-out buffers are bounded far below isize::MAX")
    }
}

impl Drop for DataOutBuf {
    fn drop(&mut self) {
        if self.capacity > 0 {
            // SAFETY: the storage was allocated with `layout(capacity)` and is freed once.
            unsafe { alloc::dealloc(self.ptr.as_ptr(), Self::layout(self.capacity)) }
        }
    }
}

impl Default for DataOutBuf {
    fn default() -> Self {
        DataOutBuf::new()
    }
}

impl Deref for DataOutBuf {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl fmt::Debug for DataOutBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DataOutBuf")
            .field("len", &self.len)
            .field("capacity", &self.capacity)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_aligned(buf: &DataOutBuf) -> bool {
        (buf.as_ptr() as usize).is_multiple_of(DATA_OUT_ALIGN_BYTES)
    }

    #[test]
    fn an_empty_buffer_allocates_nothing_and_reads_empty() {
        let buf = DataOutBuf::new();
        assert_eq!(buf.capacity(), 0);
        assert!(buf.is_empty());
        assert_eq!(&buf[..], &[] as &[u8]);
    }

    #[test]
    fn appends_keep_every_byte_in_order_across_growth() {
        let mut buf = DataOutBuf::new();
        let mut expected = Vec::new();
        for round in 0..40u32 {
            let piece: Vec<u8> = (0..round * 37 + 1).map(|i| (i ^ round) as u8).collect();
            buf.extend_from_slice(&piece);
            expected.extend_from_slice(&piece);
            assert_eq!(&buf[..], &expected[..]);
            assert!(is_aligned(&buf));
        }
    }

    #[test]
    fn a_reservation_is_kept_by_the_appends_it_covers() {
        let mut buf = DataOutBuf::new();
        buf.reserve_exact(8192);
        let storage = buf.as_ptr();
        buf.extend_from_slice(&[1; 4096]);
        buf.extend_from_slice(&[2; 4096]);
        assert_eq!(buf.as_ptr(), storage, "no move within the reservation");
        assert_eq!(buf.capacity(), 8192);
        assert!(is_aligned(&buf));
    }

    #[test]
    fn clearing_keeps_the_storage_for_reuse() {
        let mut buf = DataOutBuf::new();
        buf.extend_from_slice(&[7; 100]);
        let capacity = buf.capacity();
        buf.clear();
        assert!(buf.is_empty());
        assert_eq!(buf.capacity(), capacity);
        buf.extend_from_slice(&[9; 10]);
        assert_eq!(&buf[..], &[9; 10]);
    }
}
