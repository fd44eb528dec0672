//! Deallocation (UNMAP, WRITE SAME with UNMAP, deallocating WRITE ZEROES) of volumes with
//! segment tables, served on the control thread. A segment the ranges cover whole goes back to
//! Zero and drops its reference to its slot (free once every generation that could still write
//! into it has drained). The bytes of a partly covered segment must read back as zeros: they
//! are zeroed where the segment is (holes punched, or zeros written), except in a slot another
//! volume still shares, which is first copied to a new slot. Zero segments need nothing.
//!
//! Parts of the range on plain extents (a mirror of linear extents, a concat of a thin node and
//! an extent) are zeroed on every writable leg, as a write would reach them.
//!
//! A deallocation planned before a snapshot of the volume that is still being taken belongs
//! before the snapshot's point in time: it is applied to the snapshot too, in place, like the
//! older writes that are still landing in the shared slots. One planned after waits for the
//! snapshot to complete.

use std::collections::HashMap;

use lunar_volume::{Location, SegmentEntry, SegmentRef};

use super::extents::plain_extents;
use super::faults::{
    coverage, internal_failure, space_allocation_failed, volume_gone, write_protected,
};
use super::requests::{good, Served, Wait};
use super::segments::{SlotError, TableEdit};
use super::Controller;
use crate::error::ControlError;

/// The parts of one segment a deallocation covers: `(offset in the segment, len)`.
type Pieces = Vec<(u64, u64)>;

impl Controller {
    /// Deallocate `ranges` (`(offset, len)` bytes) of volume `volume_uid`, planned on
    /// `generation`.
    pub(super) fn serve_deallocate(
        &mut self,
        volume_uid: u64,
        generation: u64,
        ranges: &[(u64, u64)],
    ) -> Served {
        let Some(volume) = self.volume_index(volume_uid) else {
            return Served::Answer(volume_gone());
        };
        if self.config.volumes[volume].is_snapshot() {
            return Served::Answer(write_protected());
        }
        let mut volumes = vec![volume];
        let mut before_snapshot = false;
        if let Some(fence) = self.fence.as_ref().filter(|f| f.covers(volume_uid)) {
            if generation >= fence.generation {
                return Served::Wait(Wait::FenceLifted);
            }
            if let Some(snapshot) = self.volume_index(fence.snapshot_uid) {
                volumes.push(snapshot);
            }
            before_snapshot = true;
        }
        let mut edit = TableEdit::default();
        let result = self.deallocate_ranges(&mut edit, &volumes, ranges, before_snapshot);
        if let Err(error) = result {
            self.abandon_edit(edit);
            return Served::Answer(match error {
                SlotError::PoolFull => space_allocation_failed(),
                SlotError::Internal(why) => {
                    tracing::error!(volume_uid, "deallocation failed: {why}");
                    internal_failure()
                }
            });
        }
        if edit.is_empty() {
            return Served::Answer(good());
        }
        match self.commit_edit(edit) {
            Ok(_) => Served::Answer(good()),
            Err(error) => {
                tracing::error!(volume_uid, "a deallocation was not committed: {error}");
                Served::Answer(internal_failure())
            }
        }
    }

    fn deallocate_ranges(
        &mut self,
        edit: &mut TableEdit,
        volumes: &[usize],
        ranges: &[(u64, u64)],
        before_snapshot: bool,
    ) -> Result<(), SlotError> {
        let internal = |e: ControlError| SlotError::Internal(e.to_string());
        let volume = volumes[0];
        let map = self.volume_map(volume).map_err(internal)?;
        for &(offset, len) in ranges {
            let in_range = offset
                .checked_add(len)
                .is_some_and(|end| end <= map.size_bytes);
            if !in_range {
                return Err(SlotError::Internal(format!(
                    "range {offset}+{len} is beyond the volume's {} bytes",
                    map.size_bytes
                )));
            }
            let mut plain = Vec::new();
            plain_extents(&map.root, offset, len, &mut plain);
            for (device, at, bytes) in plain {
                let start = Location {
                    device,
                    offset_bytes: at,
                };
                self.zero_in_slot(edit, start, 0, bytes).map_err(internal)?;
            }
            let mut segments: Vec<(SegmentRef, Pieces)> = Vec::new();
            let mut position: HashMap<SegmentRef, usize> = HashMap::new();
            coverage(&map, offset, len, &mut |piece| {
                if piece.entry == SegmentEntry::Zero {
                    return;
                }
                let at = *position.entry(piece.segment).or_insert_with(|| {
                    segments.push((piece.segment, Vec::new()));
                    segments.len() - 1
                });
                segments[at]
                    .1
                    .push((piece.segment_offset_bytes, piece.len_bytes));
            })
            .map_err(internal)?;
            for (segment, pieces) in segments {
                self.deallocate_segment(edit, volumes, segment, &pieces, before_snapshot)?;
            }
        }
        Ok(())
    }

    fn deallocate_segment(
        &mut self,
        edit: &mut TableEdit,
        volumes: &[usize],
        segment: SegmentRef,
        pieces: &[(u64, u64)],
        before_snapshot: bool,
    ) -> Result<(), SlotError> {
        let internal = |e: ControlError| SlotError::Internal(e.to_string());
        let volume = volumes[0];
        let Some(entry) = self.entry_of(edit, volume, segment) else {
            return Ok(());
        };
        let Some(location) = entry.location() else {
            // Zero needs nothing; Invalid and Error segments keep their state.
            return Ok(());
        };
        let (pool, segment_bytes) = self
            .thin_pool(volume, segment.node)
            .ok_or_else(|| SlotError::Internal("thin node vanished".to_string()))?;
        let length = self.segment_len(volume, segment).map_err(internal)?;
        let covered: u64 = pieces.iter().map(|&(_, len)| len).sum();
        if covered >= length {
            for &each in volumes {
                if let Some(held) = self
                    .entry_of(edit, each, segment)
                    .and_then(|e| e.location())
                {
                    self.set_entry(edit, each, segment, SegmentEntry::Zero)
                        .map_err(internal)?;
                    edit.drop_ref(&pool, held);
                }
            }
            return Ok(());
        }
        let shared = self.slot_refs(&pool, location) > 1;
        let zero_at = match entry {
            SegmentEntry::NoWrite(_) if before_snapshot => location,
            SegmentEntry::NoWrite(_) if shared => {
                let slot = self.take_slot(edit, &pool)?;
                self.copy_slot(edit, location, slot, segment_bytes)
                    .map_err(internal)?;
                self.set_entry(edit, volume, segment, SegmentEntry::Mapped(slot))
                    .map_err(internal)?;
                edit.drop_ref(&pool, location);
                slot
            }
            SegmentEntry::NoWrite(_) => {
                self.set_entry(edit, volume, segment, SegmentEntry::Mapped(location))
                    .map_err(internal)?;
                location
            }
            _ => location,
        };
        for &(offset, len) in pieces {
            self.zero_in_slot(edit, zero_at, offset, len)
                .map_err(internal)?;
        }
        Ok(())
    }

    /// Bytes of segment `segment` of volume `volume` (the last segment of a node may be short).
    fn segment_len(&self, volume: usize, segment: SegmentRef) -> Result<u64, ControlError> {
        let mut found = None;
        if let Some(config) = self.config.volumes.get(volume) {
            config
                .layout
                .for_each_thin(&mut |id, _, size_bytes, table| {
                    if id == segment.node {
                        let start = segment.index.saturating_mul(table.segment_bytes);
                        found = Some(size_bytes.saturating_sub(start).min(table.segment_bytes));
                    }
                });
        }
        found.ok_or_else(|| {
            ControlError::Internal(format!(
                "volume index {volume} has no thin node {}",
                segment.node
            ))
        })
    }
}
