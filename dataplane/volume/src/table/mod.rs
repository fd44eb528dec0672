//! Segment tables (DESIGN.md §3): a volume cut into fixed-size segments, each with an entry
//! saying how reads and writes of it are served ([`SegmentEntry`]). Thin volumes start all Zero,
//! snapshots share segments marked NoWrite, a migrating range is NoWrite.
//!
//! A [`SegmentTable`] is immutable and cheap to clone; a new generation is made with
//! [`SegmentTable::with_entry`] or, for many changes at once, [`SegmentTable::edit`]. Both copy
//! only the chunks they change (see `tree`): untouched chunks stay shared with the previous
//! generation ([`SegmentTable::shares_chunk_with`]). Lookups walk a fixed number of levels
//! (at most 11 for 2^64 entries) whatever the volume size, and every subtree counts its states,
//! so [`SegmentTable::count`] is O(1) and [`SegmentTable::in_state`] skips subtrees without
//! entries in the state.

mod editor;
mod entry;
mod iter;
mod tree;

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use crate::layout::DeviceId;
use tree::{height_for, real_in_child, span_entries, Tree};

pub use editor::SegmentTableEditor;
pub use entry::{Location, SegmentEntry, SegmentState, StateCounts};
pub use iter::SegmentsInState;
pub use tree::CHUNK_ENTRIES;

/// An entry index at or beyond the end of a table. Control-path error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("segment {index} is beyond the end of a table of {len_entries} segments")]
pub struct SegmentIndexError {
    pub index: u64,
    pub len_entries: u64,
}

/// A fixed-length table of segment entries; see the module documentation.
#[derive(Clone)]
pub struct SegmentTable {
    len_entries: u64,
    height: u32,
    root: Tree,
    /// Sorted by device: how many entries have a location on each device.
    devices: Arc<Vec<(DeviceId, u64)>>,
}

impl SegmentTable {
    /// A table of `len_entries` copies of `entry`, in memory proportional to the tree height.
    pub fn filled(len_entries: u64, entry: SegmentEntry) -> SegmentTable {
        let height = height_for(len_entries);
        let devices = match entry.location() {
            Some(location) if len_entries > 0 => vec![(location.device, len_entries)],
            _ => Vec::new(),
        };
        SegmentTable {
            len_entries,
            height,
            root: Tree::filled(len_entries, height, entry),
            devices: Arc::new(devices),
        }
    }

    /// The table of a new thin volume: every segment Zero.
    pub fn all_zero(len_entries: u64) -> SegmentTable {
        SegmentTable::filled(len_entries, SegmentEntry::Zero)
    }

    /// A table holding `entries` in order.
    pub fn from_entries(entries: &[SegmentEntry]) -> SegmentTable {
        let mut editor = SegmentTable::filled(entries.len() as u64, SegmentEntry::Invalid).edit();
        for (index, entry) in entries.iter().enumerate() {
            // In range by construction.
            let _ = editor.set(index as u64, *entry);
        }
        editor.finish()
    }

    /// Segments needed for a volume of `size_bytes` cut into `segment_bytes` segments (the
    /// last one may be partial); `None` for a zero segment size.
    pub fn entries_for(size_bytes: u64, segment_bytes: u64) -> Option<u64> {
        let whole = size_bytes.checked_div(segment_bytes)?;
        Some(whole + u64::from(!size_bytes.is_multiple_of(segment_bytes)))
    }

    pub fn len(&self) -> u64 {
        self.len_entries
    }

    pub fn is_empty(&self) -> bool {
        self.len_entries == 0
    }

    pub fn get(&self, index: u64) -> Option<SegmentEntry> {
        (index < self.len_entries).then(|| self.root.get(index, self.height))
    }

    /// How many entries are in each state.
    pub fn counts(&self) -> StateCounts {
        *self.root.counts()
    }

    pub fn count(&self, state: SegmentState) -> u64 {
        self.root.counts().get(state)
    }

    /// The devices entries are located on, ascending, each once.
    pub fn devices(&self) -> impl Iterator<Item = DeviceId> + '_ {
        self.devices.iter().map(|(device, _)| *device)
    }

    /// `(index, entry)` of every entry in `state`, ascending.
    pub fn in_state(&self, state: SegmentState) -> SegmentsInState<'_> {
        SegmentsInState::new(self, state)
    }

    /// The next generation with one entry changed.
    pub fn with_entry(
        &self,
        index: u64,
        entry: SegmentEntry,
    ) -> Result<SegmentTable, SegmentIndexError> {
        let mut editor = self.edit();
        editor.set(index, entry)?;
        Ok(editor.finish())
    }

    /// Start the next generation: changes made through the editor copy each touched chunk
    /// once, however many of its entries change.
    pub fn edit(&self) -> SegmentTableEditor {
        SegmentTableEditor::new(self.clone())
    }

    /// The next generation with every Mapped entry turned NoWrite at the same location: what
    /// a snapshot does to the segments it starts sharing.
    pub fn with_mapped_as_no_write(&self) -> SegmentTable {
        let mut editor = self.edit();
        for (index, entry) in self.in_state(SegmentState::Mapped) {
            if let Some(location) = entry.location() {
                let _ = editor.set(index, SegmentEntry::NoWrite(location));
            }
        }
        editor.finish()
    }

    /// Whether the chunk holding entry `index` is the same allocation in both tables (false if
    /// either table is too short).
    pub fn shares_chunk_with(&self, other: &SegmentTable, index: u64) -> bool {
        index < self.len_entries
            && index < other.len_entries
            && Arc::ptr_eq(
                self.root.chunk(index, self.height),
                other.root.chunk(index, other.height),
            )
    }

    /// How many distinct chunk and branch allocations the table is made of: a measure of its
    /// memory (about 6 KiB per chunk, 0.5 KiB per branch) that shared subtrees count once.
    pub fn distinct_allocations(&self) -> usize {
        let mut seen = HashSet::new();
        let mut stack = vec![&self.root];
        while let Some(node) = stack.pop() {
            if !seen.insert(node.ptr()) {
                continue;
            }
            if let Tree::Branch(branch) = node {
                stack.extend(branch.children.iter());
            }
        }
        seen.len()
    }

    pub(crate) fn root(&self) -> (&Tree, u32) {
        (&self.root, self.height)
    }
}

impl PartialEq for SegmentTable {
    fn eq(&self, other: &Self) -> bool {
        self.len_entries == other.len_entries
            && self.height == other.height
            && same_entries(&self.root, &other.root, self.height, self.len_entries)
    }
}

impl Eq for SegmentTable {}

/// Whether the first `real` entries of two subtrees of `height` are equal; shared subtrees are
/// equal without looking inside.
fn same_entries(a: &Tree, b: &Tree, height: u32, real: u64) -> bool {
    if real == 0 || a.ptr() == b.ptr() {
        return true;
    }
    match (a, b) {
        (Tree::Leaf(a), Tree::Leaf(b)) => {
            let real = usize::try_from(real)
                .unwrap_or(CHUNK_ENTRIES)
                .min(CHUNK_ENTRIES);
            a.entries[..real] == b.entries[..real]
        }
        (Tree::Branch(a), Tree::Branch(b)) => {
            let child_span = span_entries(height.saturating_sub(1));
            a.children
                .iter()
                .zip(b.children.iter())
                .enumerate()
                .all(|(slot, (a, b))| {
                    let child_real = real_in_child(real, slot, child_span);
                    same_entries(a, b, height.saturating_sub(1), child_real)
                })
        }
        _ => false,
    }
}

impl fmt::Debug for SegmentTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let counts = self.counts();
        f.debug_struct("SegmentTable")
            .field("len_entries", &self.len_entries)
            .field("mapped", &counts.get(SegmentState::Mapped))
            .field("no_write", &counts.get(SegmentState::NoWrite))
            .field("zero", &counts.get(SegmentState::Zero))
            .field("invalid", &counts.get(SegmentState::Invalid))
            .field("error", &counts.get(SegmentState::Error))
            .finish()
    }
}
