//! The generations a reactor holds: the current table plus older ones still pinned by in-flight
//! commands. Each installed generation carries what the reactor derives from it once, at install
//! time (SCSI logical-unit descriptions per target LUN), so nothing is derived per command.
//! Generations only grow; an old generation is handed back to the control thread once no command
//! is pinned to it.

use std::collections::VecDeque;
use std::sync::Arc;

use lunar_scsi::LogicalUnit;
use lunar_uring::FileRef;

use crate::range_locks::RangeLocks;
use crate::snapshot::Snapshot;

/// Largest transfer one command may ask for; also the size of the large I/O buffers.
pub const MAX_TRANSFER_BYTES: u32 = 1024 * 1024;

/// One exported LUN as the SCSI model sees it.
#[derive(Debug)]
pub struct InstalledLun {
    pub lun: u64,
    /// Index into `Snapshot::volumes`.
    pub volume: usize,
    pub unit: LogicalUnit,
}

#[derive(Debug)]
pub struct InstalledTarget {
    pub iqn: String,
    pub luns: Vec<InstalledLun>,
    /// LUN numbers, sorted, for REPORT LUNS.
    pub lun_ids: Vec<u64>,
}

impl InstalledTarget {
    pub fn lun(&self, lun: u64) -> Option<&InstalledLun> {
        self.luns.iter().find(|l| l.lun == lun)
    }
}

/// A generation with its derived data and pin count.
pub struct InstalledTable {
    pub snapshot: Arc<Snapshot>,
    /// Range locks per volume (same index as `snapshot.volumes`), shared by every reactor.
    pub locks: Arc<Vec<Arc<RangeLocks>>>,
    pub targets: Vec<InstalledTarget>,
    /// How operations name each device (same index as `snapshot.devices`): its slot in the
    /// ring's file table (see `device_files`).
    pub device_files: Vec<Option<FileRef>>,
    /// Commands pinned to this generation.
    pub pinned: u32,
}

impl InstalledTable {
    pub fn new(
        snapshot: Arc<Snapshot>,
        locks: Arc<Vec<Arc<RangeLocks>>>,
        device_files: Vec<Option<FileRef>>,
    ) -> Self {
        let targets = snapshot
            .targets
            .iter()
            .map(|t| {
                let luns: Vec<InstalledLun> = t
                    .luns
                    .iter()
                    .filter_map(|l| {
                        let v = snapshot.volumes.get(l.volume)?;
                        let block_size = v.block_size.max(512);
                        Some(InstalledLun {
                            lun: l.lun,
                            volume: l.volume,
                            unit: LogicalUnit {
                                block_size,
                                num_blocks: v.map.size_bytes / block_size as u64,
                                read_only: l.read_only,
                                volume_uid: v.uid,
                                volume_name: v.name.clone(),
                                max_transfer_blocks: MAX_TRANSFER_BYTES / block_size,
                                write_cache: true,
                                removable: l.removable,
                                thin_provisioning: true,
                                unmap_reads_zeroes: true,
                                // One logical block per physical block: every block is a
                                // unit of allocation and unmapping (UNMAP granularity 1).
                                physical_block_exponent: 0,
                                max_atomic_transfer_blocks: 0,
                                reservations: v.reservations.clone(),
                            },
                        })
                    })
                    .collect();
                let mut lun_ids: Vec<u64> = luns.iter().map(|l| l.lun).collect();
                lun_ids.sort_unstable();
                InstalledTarget {
                    iqn: t.iqn.clone(),
                    luns,
                    lun_ids,
                }
            })
            .collect();
        InstalledTable {
            snapshot,
            locks,
            targets,
            device_files,
            pinned: 0,
        }
    }

    pub fn generation(&self) -> u64 {
        self.snapshot.generation
    }

    pub fn target_index(&self, iqn: &str) -> Option<usize> {
        self.targets.iter().position(|t| t.iqn == iqn)
    }
}

/// The live generations of one reactor, oldest first; the last is current.
pub struct Tables {
    live: VecDeque<InstalledTable>,
    drained_below: u64,
}

impl Tables {
    pub fn new(initial: Arc<Snapshot>, device_files: Vec<Option<FileRef>>) -> Self {
        let drained_below = initial.generation;
        let mut live = VecDeque::new();
        live.push_back(InstalledTable::new(initial, Arc::default(), device_files));
        Tables {
            live,
            drained_below,
        }
    }

    pub fn current(&self) -> &InstalledTable {
        self.live
            .back()
            .expect("at least the current table is live")
    }

    pub fn current_generation(&self) -> u64 {
        self.current().generation()
    }

    /// Whether `generation` would be installed: generations only grow.
    pub fn is_newer(&self, generation: u64) -> bool {
        generation > self.current_generation()
    }

    /// Install a newer generation. Returns false (and ignores it) if it is not newer.
    pub fn install(
        &mut self,
        snapshot: Arc<Snapshot>,
        locks: Arc<Vec<Arc<RangeLocks>>>,
        device_files: Vec<Option<FileRef>>,
    ) -> bool {
        if !self.is_newer(snapshot.generation) {
            return false;
        }
        self.live
            .push_back(InstalledTable::new(snapshot, locks, device_files));
        true
    }

    /// The device of `generation` at `device`, as operations name it.
    pub fn device_file(&self, generation: u64, device: usize) -> Option<FileRef> {
        self.get(generation)?.device_files.get(device).copied()?
    }

    /// Pin the current generation for a new command; returns it.
    pub fn pin_current(&mut self) -> u64 {
        let table = self.live.back_mut().expect("current table");
        table.pinned += 1;
        table.generation()
    }

    pub fn get(&self, generation: u64) -> Option<&InstalledTable> {
        self.live.iter().find(|t| t.generation() == generation)
    }

    pub fn unpin(&mut self, generation: u64) {
        if let Some(t) = self.live.iter_mut().find(|t| t.generation() == generation) {
            debug_assert!(t.pinned > 0);
            t.pinned = t.pinned.saturating_sub(1);
        }
    }

    /// Retire old generations nobody pins. Returns the released snapshots (for the control
    /// thread to drop) and, if it advanced, the new "drained below" generation.
    pub fn retire(&mut self, released: &mut Vec<Arc<Snapshot>>) -> Option<u64> {
        while self.live.len() > 1 && self.live.front().is_some_and(|t| t.pinned == 0) {
            if let Some(t) = self.live.pop_front() {
                released.push(t.snapshot);
            }
        }
        let oldest = self.live.front().map(|t| t.generation()).unwrap_or(0);
        if oldest > self.drained_below {
            self.drained_below = oldest;
            Some(oldest)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(generation: u64) -> Arc<Snapshot> {
        Arc::new(Snapshot {
            generation,
            ..Snapshot::default()
        })
    }

    #[test]
    fn old_generation_drains_only_when_unpinned() {
        let mut tables = Tables::new(snap(1), Vec::new());
        let g = tables.pin_current();
        assert_eq!(g, 1);
        assert!(tables.install(snap(2), Arc::default(), Vec::new()));
        let mut released = Vec::new();
        assert_eq!(tables.retire(&mut released), None, "gen 1 still pinned");
        assert!(released.is_empty());
        tables.unpin(1);
        assert_eq!(tables.retire(&mut released), Some(2));
        assert_eq!(released.len(), 1);
        assert_eq!(released[0].generation, 1);
    }

    #[test]
    fn generations_only_grow() {
        let mut tables = Tables::new(snap(3), Vec::new());
        assert!(!tables.install(snap(3), Arc::default(), Vec::new()));
        assert!(!tables.install(snap(2), Arc::default(), Vec::new()));
        assert_eq!(tables.current_generation(), 3);
    }
}
