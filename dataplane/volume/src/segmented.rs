//! Segmented: a volume cut into fixed-size segments, each served as its table entry says.
//! Owns the arithmetic from a byte to (segment, offset in segment).

use crate::layout::NodeId;
use crate::table::{SegmentEntry, SegmentTable};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Segmented {
    pub(crate) id: NodeId,
    size_bytes: u64,
    segment_bytes: u64,
    table: SegmentTable,
}

/// The segment holding a byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SegmentSpot {
    pub(crate) index: u64,
    pub(crate) entry: SegmentEntry,
    pub(crate) segment_offset_bytes: u64,
    pub(crate) until_boundary_bytes: u64,
}

impl Segmented {
    /// Build from a non-zero segment size and a table with one entry per segment (validated).
    pub(crate) fn new(
        id: NodeId,
        size_bytes: u64,
        segment_bytes: u64,
        table: SegmentTable,
    ) -> Segmented {
        Segmented {
            id,
            size_bytes,
            segment_bytes: segment_bytes.max(1),
            table,
        }
    }

    pub(crate) fn size_bytes(&self) -> u64 {
        self.size_bytes
    }

    pub(crate) fn segment_bytes(&self) -> u64 {
        self.segment_bytes
    }

    pub(crate) fn table(&self) -> &SegmentTable {
        &self.table
    }

    /// The segment holding byte `offset_bytes` (below the size); the piece runs to the end of
    /// the segment or of the volume.
    pub(crate) fn spot(&self, offset_bytes: u64) -> SegmentSpot {
        let index = offset_bytes / self.segment_bytes;
        let segment_offset_bytes = offset_bytes % self.segment_bytes;
        let until_boundary_bytes = (self.segment_bytes - segment_offset_bytes)
            .min(self.size_bytes.saturating_sub(offset_bytes));
        SegmentSpot {
            index,
            // Validation made the table one entry per segment; a missing entry is Invalid.
            entry: self.table.get(index).unwrap_or(SegmentEntry::Invalid),
            segment_offset_bytes,
            until_boundary_bytes,
        }
    }
}
