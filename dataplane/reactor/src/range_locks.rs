//! Range locks shared by every reactor for one volume, so that COMPARE AND WRITE and ORWRITE
//! are atomic against every other command touching their range, whichever reactor runs it.
//!
//! The volume is cut into regions of [`REGION_BYTES`]; each region hashes to one of
//! [`LOCK_SLOTS`] atomic words (a collision only makes unrelated ranges wait for each other,
//! never lets two conflicting ones run together). A word counts the ordinary commands in flight
//! on its regions (shared) and has one bit for a serialized command (exclusive) and one for a
//! serialized command waiting (so new shared holders stand back and it cannot starve).
//! Nothing blocks: a command that cannot take its locks is parked and retried.

use std::sync::atomic::{AtomicU32, Ordering};

/// Bytes of volume one lock word covers.
pub const REGION_BYTES: u64 = 1 << 20;
/// Lock words per volume.
pub const LOCK_SLOTS: usize = 1024;

const EXCLUSIVE: u32 = 1 << 31;
const WAITING: u32 = 1 << 30;
const SHARED_MASK: u32 = WAITING - 1;

/// The lock words of one volume.
pub struct RangeLocks {
    slots: Box<[AtomicU32]>,
}

impl Default for RangeLocks {
    fn default() -> Self {
        RangeLocks {
            slots: (0..LOCK_SLOTS).map(|_| AtomicU32::new(0)).collect(),
        }
    }
}

impl std::fmt::Debug for RangeLocks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RangeLocks")
    }
}

/// The distinct slots a byte range touches, in ascending order (at most `LOCK_SLOTS`).
fn slots_of(offset_bytes: u64, len_bytes: u64, mut each: impl FnMut(usize) -> bool) -> bool {
    if len_bytes == 0 {
        return true;
    }
    let first = offset_bytes / REGION_BYTES;
    let last = (offset_bytes + len_bytes - 1) / REGION_BYTES;
    if last - first + 1 >= LOCK_SLOTS as u64 {
        return (0..LOCK_SLOTS).all(each);
    }
    // Regions map to slots by modulo, so a run shorter than LOCK_SLOTS visits distinct slots;
    // visit them in ascending slot order to keep a global lock order.
    let start = (first % LOCK_SLOTS as u64) as usize;
    let count = (last - first + 1) as usize;
    let wraps = start + count > LOCK_SLOTS;
    let (low, high) = if wraps {
        (0..start + count - LOCK_SLOTS, start..LOCK_SLOTS)
    } else {
        (0..0, start..start + count)
    };
    low.chain(high).all(&mut each)
}

impl RangeLocks {
    /// Undo the first `count` slots of the range with `undo`.
    fn undo_first(
        &self,
        offset_bytes: u64,
        len_bytes: u64,
        count: usize,
        undo: impl Fn(&AtomicU32),
    ) {
        let mut left = count;
        slots_of(offset_bytes, len_bytes, |slot| {
            if left == 0 {
                return false;
            }
            left -= 1;
            undo(&self.slots[slot]);
            true
        });
    }

    /// Take shared locks on the range; false (nothing held) when a serialized command holds or
    /// waits for one of them.
    pub fn try_shared(&self, offset_bytes: u64, len_bytes: u64) -> bool {
        let mut taken = 0usize;
        let ok = slots_of(offset_bytes, len_bytes, |slot| {
            let word = &self.slots[slot];
            let mut current = word.load(Ordering::Acquire);
            loop {
                if current & (EXCLUSIVE | WAITING) != 0 || current & SHARED_MASK == SHARED_MASK {
                    return false;
                }
                match word.compare_exchange_weak(
                    current,
                    current + 1,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                ) {
                    Ok(_) => {
                        taken += 1;
                        return true;
                    }
                    Err(actual) => current = actual,
                }
            }
        });
        if !ok {
            self.undo_first(offset_bytes, len_bytes, taken, |word| {
                word.fetch_sub(1, Ordering::AcqRel);
            });
        }
        ok
    }

    pub fn release_shared(&self, offset_bytes: u64, len_bytes: u64) {
        slots_of(offset_bytes, len_bytes, |slot| {
            let previous = self.slots[slot].fetch_sub(1, Ordering::AcqRel);
            debug_assert!(
                previous & SHARED_MASK > 0,
                "shared release without a holder"
            );
            true
        });
    }

    /// Try to take the range exclusively (false: nothing held). While shared holders drain,
    /// the WAITING bit keeps new ones out; call again until it returns true.
    pub fn try_exclusive(&self, offset_bytes: u64, len_bytes: u64) -> bool {
        let mut taken = 0usize;
        let ok = slots_of(offset_bytes, len_bytes, |slot| {
            let word = &self.slots[slot];
            let current = word.load(Ordering::Acquire);
            if current & EXCLUSIVE == 0 && current & SHARED_MASK == 0 {
                if word
                    .compare_exchange(current, EXCLUSIVE, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
                {
                    taken += 1;
                    return true;
                }
            } else if current & EXCLUSIVE == 0 {
                word.fetch_or(WAITING, Ordering::AcqRel);
            }
            false
        });
        if !ok {
            self.undo_first(offset_bytes, len_bytes, taken, |word| {
                word.fetch_and(!EXCLUSIVE, Ordering::AcqRel);
            });
        }
        ok
    }

    /// Give up waiting for the range after a [`RangeLocks::try_exclusive`] that returned false
    /// (the caller will not call again soon): new shared holders are let in again. A
    /// serialized command still waiting sets the bit again on its next try.
    pub fn stop_waiting(&self, offset_bytes: u64, len_bytes: u64) {
        slots_of(offset_bytes, len_bytes, |slot| {
            let word = &self.slots[slot];
            let current = word.load(Ordering::Acquire);
            if current & EXCLUSIVE == 0 {
                word.fetch_and(!WAITING, Ordering::AcqRel);
            }
            true
        });
    }

    pub fn release_exclusive(&self, offset_bytes: u64, len_bytes: u64) {
        slots_of(offset_bytes, len_bytes, |slot| {
            self.slots[slot].fetch_and(!(EXCLUSIVE | WAITING), Ordering::AcqRel);
            true
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_waiter_that_gives_up_lets_shared_holders_in_again() {
        let locks = RangeLocks::default();
        assert!(locks.try_shared(0, 4096));
        assert!(!locks.try_exclusive(0, 4096), "a shared holder is in");
        assert!(
            !locks.try_shared(0, 4096),
            "the waiting bit holds new ones back"
        );
        locks.stop_waiting(0, 4096);
        assert!(locks.try_shared(0, 4096), "let in once the waiter gave up");
        locks.release_shared(0, 4096);
        locks.release_shared(0, 4096);
        assert!(locks.try_exclusive(0, 4096));
        locks.stop_waiting(0, 4096);
        assert!(
            !locks.try_shared(0, 4096),
            "an exclusive holder keeps its range"
        );
        locks.release_exclusive(0, 4096);
        assert!(locks.try_shared(0, 4096));
    }

    #[test]
    fn exclusive_waits_for_shared_and_blocks_new_shared() {
        let locks = RangeLocks::default();
        assert!(locks.try_shared(0, 4096));
        assert!(!locks.try_exclusive(0, 4096), "a write is in flight");
        assert!(
            !locks.try_shared(0, 4096),
            "the waiting exclusive holds new ones back"
        );
        assert!(
            locks.try_shared(8 * REGION_BYTES, 4096),
            "other regions are free"
        );
        locks.release_shared(0, 4096);
        assert!(locks.try_exclusive(0, 4096));
        assert!(!locks.try_shared(0, 512));
        locks.release_exclusive(0, 4096);
        assert!(locks.try_shared(0, 512));
    }

    #[test]
    fn ranges_spanning_many_regions_take_every_slot_once() {
        let locks = RangeLocks::default();
        let huge = (LOCK_SLOTS as u64 + 5) * REGION_BYTES;
        assert!(locks.try_shared(REGION_BYTES / 2, huge));
        assert!(!locks.try_exclusive(0, 1));
        locks.release_shared(REGION_BYTES / 2, huge);
        assert!(locks.try_exclusive(0, 1));
    }
}
