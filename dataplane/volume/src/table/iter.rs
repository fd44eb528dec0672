//! [`SegmentsInState`]: the entries of a table in one state, found by descending only into
//! subtrees whose counts say they hold some.

use super::tree::{span_entries, Leaf, Tree, CHUNK_ENTRIES};
use super::{SegmentEntry, SegmentState, SegmentTable};

/// Iterator over `(index, entry)` of a table's entries in one state, ascending.
#[derive(Clone)]
pub struct SegmentsInState<'a> {
    table: &'a SegmentTable,
    state: SegmentState,
    /// The next index to look at.
    next: u64,
    /// The chunk being scanned and the index of its first entry.
    chunk: Option<(&'a Leaf, u64)>,
}

impl<'a> SegmentsInState<'a> {
    pub(super) fn new(table: &'a SegmentTable, state: SegmentState) -> Self {
        SegmentsInState {
            table,
            state,
            next: 0,
            chunk: None,
        }
    }
}

impl Iterator for SegmentsInState<'_> {
    type Item = (u64, SegmentEntry);

    fn next(&mut self) -> Option<Self::Item> {
        let len = self.table.len_entries;
        loop {
            if self.next >= len {
                return None;
            }
            if let Some((chunk, base)) = self.chunk {
                let end = base.saturating_add(CHUNK_ENTRIES as u64).min(len);
                while self.next < end {
                    let index = self.next;
                    self.next += 1;
                    let entry = chunk.entries[(index - base) as usize];
                    if entry.state() == self.state {
                        return Some((index, entry));
                    }
                }
                self.chunk = None;
                continue;
            }
            let (root, height) = self.table.root();
            match first_chunk_with(root, height, 0, self.next, len, self.state) {
                Some((chunk, base)) => {
                    self.next = self.next.max(base);
                    self.chunk = Some((chunk, base));
                }
                None => {
                    self.next = len;
                    return None;
                }
            }
        }
    }
}

/// The first chunk at or after index `from` (and before `len`) whose counts hold `state`,
/// with the index of its first entry. `base` is the first index `node` covers.
fn first_chunk_with(
    node: &Tree,
    height: u32,
    base: u128,
    from: u64,
    len: u64,
    state: SegmentState,
) -> Option<(&Leaf, u64)> {
    let span = span_entries(height);
    if node.counts().get(state) == 0 || base + span <= u128::from(from) {
        return None;
    }
    match node {
        Tree::Leaf(leaf) => Some((leaf, u64::try_from(base).ok()?)),
        Tree::Branch(branch) => {
            let child_span = span_entries(height.saturating_sub(1));
            branch
                .children
                .iter()
                .enumerate()
                .map(|(slot, child)| (base + child_span * slot as u128, child))
                .take_while(|(child_base, _)| *child_base < u128::from(len))
                .find_map(|(child_base, child)| {
                    first_chunk_with(
                        child,
                        height.saturating_sub(1),
                        child_base,
                        from,
                        len,
                        state,
                    )
                })
        }
    }
}
