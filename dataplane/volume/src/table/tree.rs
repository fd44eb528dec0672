//! The persistent radix tree a segment table is stored in: leaves ("chunks") of
//! [`CHUNK_ENTRIES`] entries, branches of [`FANOUT`] children, every node behind an `Arc` and
//! counting the states of the entries below it. Changing an entry copies the path from the root
//! to its chunk (one chunk and at most [`MAX_HEIGHT`] branches of pointers); everything else
//! stays shared with the previous generation. Subtrees whose entries are all alike (a fresh
//! thin volume: all Zero) are one shared allocation per level, so a table costs memory in
//! proportion to what was changed, not to the volume size.
//!
//! Indices are masked into every array, so no lookup can go out of bounds even on a tree a
//! caller did not build through this module.

use std::sync::Arc;

use super::entry::{SegmentEntry, StateCounts};

/// Entries per chunk (leaf).
pub const CHUNK_ENTRIES: usize = 1 << CHUNK_BITS;
const CHUNK_BITS: u32 = 8;
/// Children per branch.
pub(crate) const FANOUT: usize = 1 << FANOUT_BITS;
const FANOUT_BITS: u32 = 6;
/// Branch levels above the chunks needed for 2^64 entries: 8 + 6 * 10 >= 64.
pub(crate) const MAX_HEIGHT: u32 = 10;

/// What entries beyond the table's length hold; never read, never counted.
const PADDING: SegmentEntry = SegmentEntry::Invalid;

#[derive(Clone)]
pub(crate) enum Tree {
    Leaf(Arc<Leaf>),
    Branch(Arc<Branch>),
}

#[derive(Clone)]
pub(crate) struct Leaf {
    /// States of the real entries (padding excluded).
    pub(crate) counts: StateCounts,
    pub(crate) entries: [SegmentEntry; CHUNK_ENTRIES],
}

#[derive(Clone)]
pub(crate) struct Branch {
    /// Sum of the counts of the children that hold real entries.
    pub(crate) counts: StateCounts,
    pub(crate) children: [Tree; FANOUT],
}

/// Entries a subtree of `height` covers (height 0: one chunk). Exact for every height up to
/// [`MAX_HEIGHT`].
pub(crate) fn span_entries(height: u32) -> u128 {
    (CHUNK_ENTRIES as u128) << (FANOUT_BITS * height.min(MAX_HEIGHT))
}

/// The smallest height whose tree holds `len_entries` entries.
pub(crate) fn height_for(len_entries: u64) -> u32 {
    let mut height = 0;
    while span_entries(height) < u128::from(len_entries) && height < MAX_HEIGHT {
        height += 1;
    }
    height
}

/// Slot of `index` in its chunk.
pub(crate) fn slot_in_chunk(index: u64) -> usize {
    (index as usize) & (CHUNK_ENTRIES - 1)
}

/// Child of a branch at `height` (>= 1) on the way to `index`.
pub(crate) fn child_slot(index: u64, height: u32) -> usize {
    let shift = CHUNK_BITS + FANOUT_BITS * (height.clamp(1, MAX_HEIGHT) - 1);
    ((index >> shift) as usize) & (FANOUT - 1)
}

/// How many of a branch's first `real` entries fall into child `slot`, when each child covers
/// `child_span` entries.
pub(crate) fn real_in_child(real: u64, slot: usize, child_span: u128) -> u64 {
    let start = child_span * slot as u128;
    let in_child = u128::from(real).saturating_sub(start).min(child_span);
    // `in_child <= real`, a u64.
    u64::try_from(in_child).unwrap_or(u64::MAX)
}

impl Tree {
    pub(crate) fn counts(&self) -> &StateCounts {
        match self {
            Tree::Leaf(leaf) => &leaf.counts,
            Tree::Branch(branch) => &branch.counts,
        }
    }

    /// Pointer identity of this node's allocation.
    pub(crate) fn ptr(&self) -> *const () {
        match self {
            Tree::Leaf(leaf) => Arc::as_ptr(leaf).cast(),
            Tree::Branch(branch) => Arc::as_ptr(branch).cast(),
        }
    }

    /// The chunk holding `index` (which the caller checked against the length).
    pub(crate) fn chunk(&self, index: u64, height: u32) -> &Arc<Leaf> {
        let mut node = self;
        let mut level = height;
        loop {
            match node {
                Tree::Leaf(leaf) => return leaf,
                Tree::Branch(branch) => {
                    node = &branch.children[child_slot(index, level)];
                    level = level.saturating_sub(1);
                }
            }
        }
    }

    pub(crate) fn get(&self, index: u64, height: u32) -> SegmentEntry {
        self.chunk(index, height).entries[slot_in_chunk(index)]
    }

    /// Store `entry` at `index`, copying each shared node on the path, and return the entry
    /// it replaced. Counts on the path follow.
    pub(crate) fn set(&mut self, index: u64, height: u32, entry: SegmentEntry) -> SegmentEntry {
        match self {
            Tree::Leaf(leaf) => {
                let leaf = Arc::make_mut(leaf);
                let slot = &mut leaf.entries[slot_in_chunk(index)];
                let old = std::mem::replace(slot, entry);
                leaf.counts.replace(old.state(), entry.state());
                old
            }
            Tree::Branch(branch) => {
                let branch = Arc::make_mut(branch);
                let child = &mut branch.children[child_slot(index, height)];
                let old = child.set(index, height.saturating_sub(1), entry);
                branch.counts.replace(old.state(), entry.state());
                old
            }
        }
    }

    /// A tree of `height` holding `len` copies of `entry` (and padding after them). Full
    /// subtrees are one shared allocation per level.
    pub(crate) fn filled(len: u64, height: u32, entry: SegmentEntry) -> Tree {
        let mut full: Vec<Tree> = Vec::with_capacity(height as usize);
        for level in 0..height {
            // Below the root's height every full subtree has fewer than `len` <= u64::MAX
            // entries, so its counts fit.
            let span = u64::try_from(span_entries(level)).unwrap_or(u64::MAX);
            let node = match full.last() {
                None => Tree::Leaf(Arc::new(leaf_of(entry, CHUNK_ENTRIES))),
                Some(child) => {
                    let mut counts = StateCounts::default();
                    counts.add(entry.state(), span);
                    Tree::Branch(Arc::new(Branch {
                        counts,
                        children: std::array::from_fn(|_| child.clone()),
                    }))
                }
            };
            full.push(node);
        }
        partial(len, height, entry, &full)
    }
}

/// A subtree of `height` whose first `real` entries are `entry`; `full[h]` is the shared full
/// subtree of height `h` for every `h < height`.
fn partial(real: u64, height: u32, entry: SegmentEntry, full: &[Tree]) -> Tree {
    if let Some(shared) = full.get(height as usize) {
        if u128::from(real) == span_entries(height) {
            return shared.clone();
        }
    }
    if height == 0 {
        let real_slots = usize::try_from(real).unwrap_or(CHUNK_ENTRIES);
        return Tree::Leaf(Arc::new(leaf_of(entry, real_slots.min(CHUNK_ENTRIES))));
    }
    let child_span = span_entries(height - 1);
    let mut counts = StateCounts::default();
    counts.add(entry.state(), real);
    let children = std::array::from_fn(|slot| {
        let child_real = real_in_child(real, slot, child_span);
        match (child_real, full.get(height as usize - 1)) {
            // Padding: any subtree will do; share the full one.
            (0, Some(shared)) => shared.clone(),
            _ => partial(child_real, height - 1, entry, full),
        }
    });
    Tree::Branch(Arc::new(Branch { counts, children }))
}

fn leaf_of(entry: SegmentEntry, real_slots: usize) -> Leaf {
    let mut counts = StateCounts::default();
    counts.add(entry.state(), real_slots as u64);
    Leaf {
        counts,
        entries: std::array::from_fn(|slot| if slot < real_slots { entry } else { PADDING }),
    }
}
