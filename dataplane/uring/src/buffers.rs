//! Registered, aligned I/O buffers: two size classes carved out of anonymous mappings at start
//! (page-aligned, so every buffer satisfies O_DIRECT alignment), registered with the ring as one
//! fixed buffer per class. After start nothing is allocated: `alloc` returns `None` when a class
//! is exhausted, and the caller parks the command until a buffer is freed.

use std::io;

use memmap2::MmapMut;

/// Alignment every buffer honours (the largest logical block size we serve).
pub const BUF_ALIGN_BYTES: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BufClass {
    Small = 0,
    Large = 1,
}

/// A buffer lent out by the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BufId {
    class: BufClass,
    index: u32,
}

impl BufId {
    pub fn class(self) -> BufClass {
        self.class
    }

    /// The id as a number, for code that names buffers without knowing the pool (the iSCSI
    /// state machine's borrowed data); [`BufId::from_token`] turns it back.
    pub fn token(self) -> u64 {
        (self.class as u64) << 32 | u64::from(self.index)
    }

    /// The id a [`BufId::token`] came from; `None` for a number no id gives.
    pub fn from_token(token: u64) -> Option<BufId> {
        let class = match token >> 32 {
            0 => BufClass::Small,
            1 => BufClass::Large,
            _ => return None,
        };
        Some(BufId {
            class,
            index: token as u32,
        })
    }
}

struct Class {
    map: MmapMut,
    buf_bytes: usize,
    free: Vec<u32>,
    count: usize,
}

impl Class {
    fn new(count: usize, buf_bytes: usize) -> io::Result<Class> {
        assert!(count > 0 && buf_bytes > 0 && buf_bytes.is_multiple_of(BUF_ALIGN_BYTES));
        let map = MmapMut::map_anon(count * buf_bytes)?;
        Ok(Class {
            map,
            buf_bytes,
            free: (0..count as u32).rev().collect(),
            count,
        })
    }
}

/// Fixed pool of aligned buffers in two size classes.
pub struct BufPool {
    classes: [Class; 2],
}

impl BufPool {
    /// `small_count` buffers of `small_bytes` and `large_count` of `large_bytes`; sizes must be
    /// multiples of [`BUF_ALIGN_BYTES`].
    pub fn new(
        small_count: usize,
        small_bytes: usize,
        large_count: usize,
        large_bytes: usize,
    ) -> io::Result<BufPool> {
        Ok(BufPool {
            classes: [
                Class::new(small_count, small_bytes)?,
                Class::new(large_count, large_bytes)?,
            ],
        })
    }

    /// Largest request a buffer can hold.
    pub fn max_len_bytes(&self) -> usize {
        self.classes[1].buf_bytes
    }

    /// Lend a buffer of at least `len_bytes` (a small one if one is free, else a large one), or
    /// `None` when none is free (backpressure) or the length exceeds the large class.
    pub fn alloc(&mut self, len_bytes: usize) -> Option<BufId> {
        if len_bytes <= self.classes[0].buf_bytes {
            if let Some(index) = self.classes[0].free.pop() {
                return Some(BufId {
                    class: BufClass::Small,
                    index,
                });
            }
        }
        if len_bytes > self.classes[1].buf_bytes {
            return None;
        }
        let index = self.classes[1].free.pop()?;
        Some(BufId {
            class: BufClass::Large,
            index,
        })
    }

    pub fn free(&mut self, id: BufId) {
        let class = &mut self.classes[id.class as usize];
        debug_assert!(!class.free.contains(&id.index), "double free of {id:?}");
        debug_assert!(class.free.len() < class.count);
        class.free.push(id.index);
    }

    pub fn available(&self, class: BufClass) -> usize {
        self.classes[class as usize].free.len()
    }

    fn range(&self, id: BufId) -> std::ops::Range<usize> {
        let class = &self.classes[id.class as usize];
        let start = id.index as usize * class.buf_bytes;
        start..start + class.buf_bytes
    }

    pub fn slice(&self, id: BufId) -> &[u8] {
        let range = self.range(id);
        &self.classes[id.class as usize].map[range]
    }

    pub fn slice_mut(&mut self, id: BufId) -> &mut [u8] {
        let range = self.range(id);
        &mut self.classes[id.class as usize].map[range]
    }

    /// Address of byte `offset` of buffer `id`, for an io_uring entry.
    pub fn ptr(&mut self, id: BufId, offset: usize) -> *mut u8 {
        let range = self.range(id);
        assert!(offset <= range.len());
        self.classes[id.class as usize].map[range][offset..].as_mut_ptr()
    }

    /// Index of the registered fixed buffer that contains `id`.
    pub fn registered_index(id: BufId) -> u16 {
        id.class as u16
    }

    /// One iovec per class, for `register_buffers`.
    pub(crate) fn iovecs(&mut self) -> Vec<libc::iovec> {
        self.classes
            .iter_mut()
            .map(|c| libc::iovec {
                iov_base: c.map.as_mut_ptr().cast(),
                iov_len: c.map.len(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_aligned_and_bounded() {
        let mut pool = BufPool::new(2, 4096, 1, 65536).unwrap();
        let a = pool.alloc(100).unwrap();
        let b = pool.alloc(4096).unwrap();
        assert_eq!(a.class(), BufClass::Small);
        assert_eq!(b.class(), BufClass::Small);
        let c = pool.alloc(10).unwrap();
        assert_eq!(
            c.class(),
            BufClass::Large,
            "small class exhausted spills to large"
        );
        assert!(pool.alloc(10).is_none(), "exhausted pool is backpressure");
        assert_eq!(pool.ptr(a, 0) as usize % BUF_ALIGN_BYTES, 0);
        assert_eq!(pool.ptr(b, 0) as usize % BUF_ALIGN_BYTES, 0);
        assert_eq!(pool.ptr(c, 0) as usize % BUF_ALIGN_BYTES, 0);
        assert!(pool.alloc(65537).is_none());
        pool.free(a);
        assert_eq!(pool.available(BufClass::Small), 1);
        pool.slice_mut(b)[0] = 7;
        assert_eq!(pool.slice(b)[0], 7);
        for id in [a, b, c] {
            assert_eq!(BufId::from_token(id.token()), Some(id));
        }
        assert_eq!(BufId::from_token(2 << 32), None);
    }
}
