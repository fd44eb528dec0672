//! One entry of a segment table: the state of a segment and, for the states that read from a
//! device, where the segment lives. Also the per-state counters every subtree of a table keeps.

use crate::layout::DeviceId;

/// Where a segment's bytes start on a backing device; the segment occupies `segment_bytes`
/// (the last segment of a table: what is left of the volume) from there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Location {
    pub device: DeviceId,
    pub offset_bytes: u64,
}

/// A segment's entry (DESIGN.md §3).
///
/// | entry   | reads                    | writes                        |
/// |---------|--------------------------|-------------------------------|
/// | Mapped  | the location             | the location                  |
/// | NoWrite | the location             | fault (copy-on-write, migration) |
/// | Zero    | zeros, no I/O            | fault (thin allocation)       |
/// | Invalid | fault                    | fault                         |
/// | Error   | error to the host        | error to the host             |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SegmentEntry {
    Mapped(Location),
    NoWrite(Location),
    Zero,
    Invalid,
    Error,
}

impl SegmentEntry {
    pub fn state(&self) -> SegmentState {
        match self {
            SegmentEntry::Mapped(_) => SegmentState::Mapped,
            SegmentEntry::NoWrite(_) => SegmentState::NoWrite,
            SegmentEntry::Zero => SegmentState::Zero,
            SegmentEntry::Invalid => SegmentState::Invalid,
            SegmentEntry::Error => SegmentState::Error,
        }
    }

    /// The device location, for the states that have one (Mapped, NoWrite).
    pub fn location(&self) -> Option<Location> {
        match self {
            SegmentEntry::Mapped(location) | SegmentEntry::NoWrite(location) => Some(*location),
            SegmentEntry::Zero | SegmentEntry::Invalid | SegmentEntry::Error => None,
        }
    }
}

/// The state part of a [`SegmentEntry`], for counting and searching.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SegmentState {
    Mapped,
    NoWrite,
    Zero,
    Invalid,
    Error,
}

impl SegmentState {
    pub const ALL: [SegmentState; STATE_COUNT] = [
        SegmentState::Mapped,
        SegmentState::NoWrite,
        SegmentState::Zero,
        SegmentState::Invalid,
        SegmentState::Error,
    ];

    fn index(self) -> usize {
        match self {
            SegmentState::Mapped => 0,
            SegmentState::NoWrite => 1,
            SegmentState::Zero => 2,
            SegmentState::Invalid => 3,
            SegmentState::Error => 4,
        }
    }
}

const STATE_COUNT: usize = 5;

/// How many entries of a table (or of one of its subtrees) are in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StateCounts {
    entries: [u64; STATE_COUNT],
}

impl StateCounts {
    pub fn get(&self, state: SegmentState) -> u64 {
        self.entries[state.index()]
    }

    /// Count `n` more entries in `state`. Counts never exceed the table length, itself a `u64`;
    /// saturation only guards against a broken caller.
    pub(crate) fn add(&mut self, state: SegmentState, n: u64) {
        let count = &mut self.entries[state.index()];
        *count = count.saturating_add(n);
    }

    pub(crate) fn remove(&mut self, state: SegmentState, n: u64) {
        let count = &mut self.entries[state.index()];
        *count = count.saturating_sub(n);
    }

    /// Replace one entry in `old`'s state by one in `new`'s.
    pub(crate) fn replace(&mut self, old: SegmentState, new: SegmentState) {
        self.remove(old, 1);
        self.add(new, 1);
    }
}
