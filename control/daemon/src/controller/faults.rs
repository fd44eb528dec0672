//! Mapping faults of segment tables (DESIGN.md §3), served on the control thread: a write to a
//! Zero segment allocates a slot from the node's pool (thin allocation), a write to a NoWrite
//! segment copies it to a new slot while another volume still shares it (copy-on-write) or
//! just makes it writable when nothing shares it any more. The slot is zeroed (or the shared
//! bytes copied; zeroed when the write covers the whole slot, since that write may never land
//! and a slot must not show a deleted volume's bytes), the devices written are synced, and
//! every fault of one request goes into one saved and published table; then the reactor is told
//! to plan the command again (GOOD).
//!
//! A full pool answers DATA PROTECT, SPACE ALLOCATION FAILED WRITE PROTECT; a pool whose
//! released slots are still reachable by older generations makes the command wait for that
//! drain instead (or re-plan first, when the command itself pins one of those generations).
//! While a snapshot of the volume is being taken, its writes wait until the older generations
//! have drained: a write planned before the snapshot may still be writing into a slot the
//! snapshot now shares.

use std::collections::HashMap;

use lunar_scsi::ScsiReply;
use lunar_volume::{FaultReason, Location, SegmentEntry, SegmentPiece, SegmentRef};
use lunar_wire::scsi::{Asc, Sense, SenseKey};

use super::requests::{check_condition, good, Served, Wait};
use super::segments::{SlotError, TableEdit};
use super::Controller;
use crate::error::ControlError;

/// Bytes of a volume looked at per call of `segments_in` (bounds the pieces held at once).
pub(super) const SEGMENT_WINDOW_BYTES: u64 = 256 << 20;

/// What a fault needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    /// A Zero segment: a new slot.
    Allocate,
    /// A NoWrite segment at a shared slot: a new slot with its bytes.
    Copy(Location),
    /// A NoWrite segment nothing else holds: writable where it is.
    Unshare(Location),
}

pub(super) fn sense_reply(key: SenseKey, asc: Asc) -> ScsiReply {
    check_condition(Sense::new(key, asc), 0)
}

pub(super) fn space_allocation_failed() -> ScsiReply {
    sense_reply(
        SenseKey::DataProtect,
        Asc::SPACE_ALLOCATION_FAILED_WRITE_PROTECT,
    )
}

pub(super) fn write_protected() -> ScsiReply {
    sense_reply(SenseKey::DataProtect, Asc::WRITE_PROTECTED)
}

pub(super) fn volume_gone() -> ScsiReply {
    sense_reply(SenseKey::IllegalRequest, Asc::LOGICAL_UNIT_NOT_SUPPORTED)
}

pub(super) fn internal_failure() -> ScsiReply {
    sense_reply(SenseKey::HardwareError, Asc::INTERNAL_TARGET_FAILURE)
}

/// Sum per segment of the bytes of `[offset, offset + len)` of `map` inside it.
pub(super) fn coverage(
    map: &lunar_volume::VolumeMap,
    offset_bytes: u64,
    len_bytes: u64,
    visit: &mut dyn FnMut(&SegmentPiece),
) -> Result<(), ControlError> {
    let end = offset_bytes
        .checked_add(len_bytes)
        .filter(|&end| end <= map.size_bytes)
        .ok_or_else(|| {
            ControlError::Internal(format!(
                "range {offset_bytes}+{len_bytes} is beyond the volume's {} bytes",
                map.size_bytes
            ))
        })?;
    let mut pieces = Vec::new();
    let mut at = offset_bytes;
    while at < end {
        let window = (end - at).min(SEGMENT_WINDOW_BYTES);
        pieces.clear();
        map.segments_in(at, window, &mut pieces)
            .map_err(|e| ControlError::Internal(e.to_string()))?;
        for piece in &pieces {
            let mut shifted = *piece;
            shifted.request_offset_bytes += at - offset_bytes;
            visit(&shifted);
        }
        at += window;
    }
    Ok(())
}

impl Controller {
    /// Resolve the faults of one command planned on `generation` (see the module
    /// documentation).
    pub(super) fn serve_fault(
        &mut self,
        volume_uid: u64,
        generation: u64,
        faults: &[(SegmentRef, FaultReason)],
        write_bytes: Option<(u64, u64)>,
    ) -> Served {
        let Some(volume) = self.volume_index(volume_uid) else {
            return Served::Answer(volume_gone());
        };
        let write = write_bytes.is_some();
        if write && self.config.volumes[volume].is_snapshot() {
            return Served::Answer(write_protected());
        }
        if write {
            if let Some(served) = self.fenced(volume_uid, generation) {
                return served;
            }
        }
        let mut work: Vec<(SegmentRef, String, Action)> = Vec::new();
        let nothing = TableEdit::default();
        for &(segment, _) in faults {
            let Some(entry) = self.entry_of(&nothing, volume, segment) else {
                // The node or segment is gone from the newest table: plan again.
                continue;
            };
            let Some((pool, _)) = self.thin_pool(volume, segment.node) else {
                continue;
            };
            let action = match entry {
                SegmentEntry::Invalid => return Served::Wait(Wait::SegmentsValid),
                _ if !write => continue,
                SegmentEntry::Zero => Action::Allocate,
                SegmentEntry::NoWrite(location) if self.slot_refs(&pool, location) > 1 => {
                    Action::Copy(location)
                }
                SegmentEntry::NoWrite(location) => Action::Unshare(location),
                SegmentEntry::Mapped(_) | SegmentEntry::Error => continue,
            };
            if !work.iter().any(|(s, _, _)| *s == segment) {
                work.push((segment, pool, action));
            }
        }
        if work.is_empty() {
            return Served::Answer(good());
        }
        if let Some(served) = self.lacking_slots(&work, generation) {
            return served;
        }
        let covered = match write_bytes {
            Some((offset, len)) => self.covered_by(volume, offset, len),
            None => HashMap::new(),
        };
        let mut edit = TableEdit::default();
        if let Err(error) = self.resolve_faults(&mut edit, volume, &work, &covered) {
            self.abandon_edit(edit);
            return Served::Answer(match error {
                SlotError::PoolFull => space_allocation_failed(),
                SlotError::Internal(why) => {
                    tracing::error!(volume_uid, "resolving a mapping fault failed: {why}");
                    internal_failure()
                }
            });
        }
        match self.commit_edit(edit) {
            Ok(_) => Served::Answer(good()),
            Err(error) => {
                tracing::error!(volume_uid, "a thin allocation was not committed: {error}");
                Served::Answer(internal_failure())
            }
        }
    }

    /// A write to a volume being snapshotted: planned before the snapshot's table, plan it again
    /// (it pins a generation the snapshot waits for); planned after, wait for the snapshot.
    pub(super) fn fenced(&self, volume_uid: u64, generation: u64) -> Option<Served> {
        let fence = self.fence.as_ref().filter(|f| f.covers(volume_uid))?;
        Some(if generation < fence.generation {
            Served::Answer(good())
        } else {
            Served::Wait(Wait::FenceLifted)
        })
    }

    /// `None` when every pool has the slots `work` needs; otherwise the answer: wait for (or
    /// first re-plan past) released slots that will be enough, or the pool is full.
    fn lacking_slots(
        &mut self,
        work: &[(SegmentRef, String, Action)],
        generation: u64,
    ) -> Option<Served> {
        self.release_drained_slots();
        let mut needs: HashMap<&str, u64> = HashMap::new();
        for (_, pool, action) in work {
            if matches!(action, Action::Allocate | Action::Copy(_)) {
                *needs.entry(pool.as_str()).or_default() += 1;
            }
        }
        for (pool, needed) in needs {
            let ledger = self.ledgers.get(pool)?;
            if ledger.free_slots() >= needed {
                continue;
            }
            if ledger.free_slots() + ledger.releasing_slots() >= needed {
                if let Some(pending) = ledger.newest_pending_generation() {
                    return Some(if generation < pending {
                        Served::Answer(good())
                    } else {
                        Served::Wait(Wait::Drained(pending))
                    });
                }
            }
            return Some(Served::Answer(space_allocation_failed()));
        }
        None
    }

    /// Bytes of each segment a write of `[offset, offset + len)` covers.
    fn covered_by(&self, volume: usize, offset: u64, len: u64) -> HashMap<SegmentRef, u64> {
        let mut covered: HashMap<SegmentRef, u64> = HashMap::new();
        let Ok(map) = self.volume_map(volume) else {
            return covered;
        };
        let counted = coverage(&map, offset, len, &mut |piece| {
            *covered.entry(piece.segment).or_default() += piece.len_bytes;
        });
        if counted.is_err() {
            // Out of range for the newest table: zero or copy every segment.
            covered.clear();
        }
        covered
    }

    fn resolve_faults(
        &mut self,
        edit: &mut TableEdit,
        volume: usize,
        work: &[(SegmentRef, String, Action)],
        covered: &HashMap<SegmentRef, u64>,
    ) -> Result<(), SlotError> {
        let internal = |e: ControlError| SlotError::Internal(e.to_string());
        for (segment, pool, action) in work {
            let (_, segment_bytes) = self
                .thin_pool(volume, segment.node)
                .ok_or_else(|| SlotError::Internal("thin node vanished".to_string()))?;
            let whole = covered
                .get(segment)
                .is_some_and(|&bytes| bytes >= segment_bytes);
            let entry = match *action {
                // A slot may hold a deleted volume's bytes: it is zeroed (or copied over)
                // before it is mapped, even for a write covering it whole, which might never
                // land (a crash) and must not leave another volume's data readable.
                Action::Allocate => {
                    let slot = self.take_slot(edit, pool)?;
                    self.zero_in_slot(edit, slot, 0, segment_bytes)
                        .map_err(internal)?;
                    SegmentEntry::Mapped(slot)
                }
                Action::Copy(from) => {
                    let slot = self.take_slot(edit, pool)?;
                    if whole {
                        self.zero_in_slot(edit, slot, 0, segment_bytes)
                            .map_err(internal)?;
                    } else {
                        self.copy_slot(edit, from, slot, segment_bytes)
                            .map_err(internal)?;
                    }
                    edit.drop_ref(pool, from);
                    SegmentEntry::Mapped(slot)
                }
                Action::Unshare(at) => SegmentEntry::Mapped(at),
            };
            self.set_entry(edit, volume, *segment, entry)
                .map_err(internal)?;
        }
        Ok(())
    }
}
