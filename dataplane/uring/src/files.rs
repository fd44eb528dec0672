//! The ring's registered-file table: descriptors the reactor uses on every I/O (sockets of
//! connections, backing devices) are registered once in a slot, and operations name the slot
//! instead of the descriptor. The kernel then skips looking the descriptor up and taking and
//! dropping a reference on its file for each operation.
//!
//! The table is sparse, made at ring setup; a slot is filled when a file is registered and
//! emptied when it is unregistered. A file keeps its slot's reference until then, even if its
//! descriptor is closed, so the owner unregisters before it closes. Operations in flight hold
//! their own reference: emptying a slot never pulls a file from under them. Where registration
//! is not possible (an old kernel, a full table) a file is used through its descriptor, as
//! [`FileRef::Raw`], and every operation behaves the same.

use std::os::fd::RawFd;

/// At most this many slots per ring (fewer if RLIMIT_NOFILE is lower, which caps the table).
pub const MAX_FILE_SLOTS: u32 = 8192;

/// How an operation names its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileRef {
    /// A slot of the ring's registered-file table.
    Fixed(u32),
    /// A plain descriptor.
    Raw(RawFd),
}

/// Build an io_uring entry for a file named by a [`FileRef`]: `$body` is evaluated with `$fd`
/// bound to `types::Fixed` or `types::Fd`, whichever the reference is.
///
/// ```ignore
/// let entry = with_file!(file, |fd| opcode::Send::new(fd, ptr, len).build());
/// ```
#[macro_export]
macro_rules! with_file {
    ($file:expr, |$fd:ident| $body:expr) => {
        match $file {
            $crate::FileRef::Fixed(slot) => {
                let $fd = $crate::io_uring_types::Fixed(slot);
                $body
            }
            $crate::FileRef::Raw(raw) => {
                let $fd = $crate::io_uring_types::Fd(raw);
                $body
            }
        }
    };
}

/// The free slots of a ring's table.
#[derive(Debug, Default)]
pub struct FileSlots {
    /// Unused slots, the lowest last (handed out first).
    free: Vec<u32>,
}

impl FileSlots {
    /// A table of `count` slots, all free.
    pub fn new(count: u32) -> FileSlots {
        FileSlots {
            free: (0..count).rev().collect(),
        }
    }

    pub fn take(&mut self) -> Option<u32> {
        self.free.pop()
    }

    pub fn give_back(&mut self, slot: u32) {
        debug_assert!(!self.free.contains(&slot), "slot {slot} freed twice");
        self.free.push(slot);
    }

    pub fn free_count(&self) -> usize {
        self.free.len()
    }
}

/// How many slots to ask for: the process's descriptor limit caps a registered table.
pub fn slot_count() -> u32 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own and pass by pointer.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0;
    if !ok {
        return 0;
    }
    limit.rlim_cur.min(MAX_FILE_SLOTS as libc::rlim_t) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_handed_out_lowest_first_and_reused() {
        let mut slots = FileSlots::new(3);
        assert_eq!(slots.take(), Some(0));
        assert_eq!(slots.take(), Some(1));
        slots.give_back(0);
        assert_eq!(slots.take(), Some(0));
        assert_eq!(slots.take(), Some(2));
        assert_eq!(slots.take(), None);
        assert_eq!(slots.free_count(), 0);
    }

    #[test]
    fn the_table_size_follows_the_descriptor_limit() {
        let n = slot_count();
        assert!(n > 0 && n <= MAX_FILE_SLOTS, "{n}");
    }
}
