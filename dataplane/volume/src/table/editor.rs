//! [`SegmentTableEditor`]: batches changes to a segment table into its next generation,
//! copying each touched chunk (and the branches above it) once.

use std::ops::Range;
use std::sync::Arc;

use super::{SegmentEntry, SegmentIndexError, SegmentTable};
use crate::layout::DeviceId;

/// A segment table being changed; [`SegmentTableEditor::finish`] gives the new generation.
/// The table it was made from is never changed.
#[derive(Debug)]
pub struct SegmentTableEditor {
    table: SegmentTable,
}

impl SegmentTableEditor {
    pub(super) fn new(table: SegmentTable) -> Self {
        SegmentTableEditor { table }
    }

    pub fn len(&self) -> u64 {
        self.table.len_entries
    }

    pub fn is_empty(&self) -> bool {
        self.table.len_entries == 0
    }

    /// The entry as changed so far.
    pub fn get(&self, index: u64) -> Option<SegmentEntry> {
        self.table.get(index)
    }

    /// Set entry `index`; returns the entry it replaces. Setting an entry to its current value
    /// copies nothing.
    pub fn set(
        &mut self,
        index: u64,
        entry: SegmentEntry,
    ) -> Result<SegmentEntry, SegmentIndexError> {
        let table = &mut self.table;
        let old = table.get(index).ok_or(SegmentIndexError {
            index,
            len_entries: table.len_entries,
        })?;
        if old == entry {
            return Ok(old);
        }
        table.root.set(index, table.height, entry);
        if old.location().map(|l| l.device) != entry.location().map(|l| l.device) {
            let devices = Arc::make_mut(&mut table.devices);
            if let Some(location) = old.location() {
                forget_one(devices, location.device);
            }
            if let Some(location) = entry.location() {
                count_one(devices, location.device);
            }
        }
        Ok(old)
    }

    /// Set every entry in `indices` (for example: a range returned to Zero, or a migrating
    /// range made NoWrite). Checks the whole range before changing anything.
    pub fn set_range(
        &mut self,
        indices: Range<u64>,
        entry: SegmentEntry,
    ) -> Result<(), SegmentIndexError> {
        if indices.end > self.table.len_entries && indices.start < indices.end {
            return Err(SegmentIndexError {
                index: indices.end - 1,
                len_entries: self.table.len_entries,
            });
        }
        for index in indices {
            self.set(index, entry)?;
        }
        Ok(())
    }

    pub fn finish(self) -> SegmentTable {
        self.table
    }
}

fn count_one(devices: &mut Vec<(DeviceId, u64)>, device: DeviceId) {
    match devices.binary_search_by_key(&device, |(d, _)| *d) {
        Ok(at) => devices[at].1 += 1,
        Err(at) => devices.insert(at, (device, 1)),
    }
}

fn forget_one(devices: &mut Vec<(DeviceId, u64)>, device: DeviceId) {
    if let Ok(at) = devices.binary_search_by_key(&device, |(d, _)| *d) {
        devices[at].1 -= 1;
        if devices[at].1 == 0 {
            devices.remove(at);
        }
    }
}
