//! Changing the segment tables of thin nodes, as faults, deallocations, snapshots and resizes
//! do: a [`TableEdit`] gathers the new entries (one editor per table, so each touched chunk is
//! copied once), the pool slots it takes (given back if the change is not committed), the
//! references it drops (released once committed, then free after the drain) and the devices it
//! wrote (synced before the change is saved, so a saved mapping never points at bytes that are
//! not on the device).

use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use lunar_reactor::BackendFile;
use lunar_volume::layout::{DeviceId, NodeId};
use lunar_volume::{Location, SegmentEntry, SegmentRef, SegmentTableEditor, VolumeMap};

use super::Controller;
use crate::error::ControlError;
use crate::layout::to_layout;
use crate::thin::device_io;

/// A change to segment tables being prepared.
#[derive(Debug, Default)]
pub(super) struct TableEdit {
    /// Editors by (volume index, thin node id).
    editors: HashMap<(usize, NodeId), SegmentTableEditor>,
    /// Slots taken from pools by this change.
    taken: Vec<(String, Location)>,
    /// References this change drops, released once it is committed.
    dropped: Vec<(String, Location)>,
    /// Devices written by this change.
    written: BTreeSet<DeviceId>,
}

/// Why a slot could not be taken.
#[derive(Debug)]
pub(super) enum SlotError {
    PoolFull,
    Internal(String),
}

impl TableEdit {
    pub(super) fn is_empty(&self) -> bool {
        self.editors.is_empty() && self.taken.is_empty() && self.dropped.is_empty()
    }

    /// A reference to drop once committed.
    pub(super) fn drop_ref(&mut self, pool: &str, location: Location) {
        self.dropped.push((pool.to_string(), location));
    }

    /// A device this change wrote.
    pub(super) fn wrote(&mut self, device: DeviceId) {
        self.written.insert(device);
    }
}

impl Controller {
    /// The entry of segment `segment` of volume `volume` as `edit` has it so far.
    pub(super) fn entry_of(
        &self,
        edit: &TableEdit,
        volume: usize,
        segment: SegmentRef,
    ) -> Option<SegmentEntry> {
        if let Some(editor) = edit.editors.get(&(volume, segment.node)) {
            return editor.get(segment.index);
        }
        let (_, table) = self
            .config
            .volumes
            .get(volume)?
            .layout
            .thin_node(segment.node)?;
        table.entries.get(segment.index)
    }

    /// Set segment `segment` of volume `volume` to `entry` in `edit`.
    pub(super) fn set_entry(
        &self,
        edit: &mut TableEdit,
        volume: usize,
        segment: SegmentRef,
        entry: SegmentEntry,
    ) -> Result<(), ControlError> {
        let editor = match edit.editors.entry((volume, segment.node)) {
            Entry::Occupied(editor) => editor.into_mut(),
            Entry::Vacant(vacant) => {
                let (_, table) = self
                    .config
                    .volumes
                    .get(volume)
                    .and_then(|v| v.layout.thin_node(segment.node))
                    .ok_or_else(|| {
                        ControlError::Internal(format!(
                            "volume index {volume} has no thin node {}",
                            segment.node
                        ))
                    })?;
                vacant.insert(table.entries.edit())
            }
        };
        editor
            .set(segment.index, entry)
            .map(|_| ())
            .map_err(|e| ControlError::Internal(e.to_string()))
    }

    /// Take a free slot of `pool` for `edit`.
    pub(super) fn take_slot(
        &mut self,
        edit: &mut TableEdit,
        pool: &str,
    ) -> Result<Location, SlotError> {
        let ledger = self
            .ledgers
            .get_mut(pool)
            .ok_or_else(|| SlotError::Internal(format!("pool '{pool}' has no ledger")))?;
        let location = ledger.allocate().ok_or(SlotError::PoolFull)?;
        edit.taken.push((pool.to_string(), location));
        Ok(location)
    }

    /// The open device with id `id`.
    pub(super) fn device_by_id(&self, id: DeviceId) -> Result<Arc<BackendFile>, ControlError> {
        self.config
            .device_name(id)
            .and_then(|name| self.devices.get(name))
            .cloned()
            .ok_or_else(|| ControlError::Internal(format!("no open device with id {id}")))
    }

    /// Make `len_bytes` at `offset_bytes` from `location` (a slot, or any device offset) read
    /// as zeros.
    pub(super) fn zero_in_slot(
        &self,
        edit: &mut TableEdit,
        location: Location,
        offset_bytes: u64,
        len_bytes: u64,
    ) -> Result<(), ControlError> {
        let device = self.device_by_id(location.device)?;
        device_io::zero_range(&device, location.offset_bytes + offset_bytes, len_bytes)
            .map_err(|e| ControlError::Device(e.to_string()))?;
        edit.wrote(location.device);
        Ok(())
    }

    /// Copy `len_bytes` from the slot at `from` to the slot at `to`.
    pub(super) fn copy_slot(
        &self,
        edit: &mut TableEdit,
        from: Location,
        to: Location,
        len_bytes: u64,
    ) -> Result<(), ControlError> {
        let source = self.device_by_id(from.device)?;
        let target = self.device_by_id(to.device)?;
        device_io::copy_range(
            &source,
            from.offset_bytes,
            &target,
            to.offset_bytes,
            len_bytes,
        )
        .map_err(|e| ControlError::Device(e.to_string()))?;
        edit.wrote(to.device);
        Ok(())
    }

    /// Give back the slots `edit` took; nothing of it is committed.
    pub(super) fn abandon_edit(&mut self, edit: TableEdit) {
        for (pool, location) in edit.taken {
            if let Some(ledger) = self.ledgers.get_mut(&pool) {
                ledger.unallocate(location);
            }
        }
    }

    /// Sync the devices `edit` wrote, then save and publish the configuration with its tables.
    /// On success the references it dropped are released (free once this generation has
    /// drained); on failure nothing changed and its slots are given back.
    pub(super) fn commit_edit(&mut self, mut edit: TableEdit) -> Result<u64, ControlError> {
        let prepared = self.prepare_edit(&mut edit);
        let config = match prepared {
            Ok(config) => config,
            Err(error) => {
                self.abandon_edit(edit);
                return Err(error);
            }
        };
        let devices = self.devices.clone();
        match self.commit(config, devices) {
            Ok(generation) => {
                for (pool, location) in edit.dropped {
                    if let Some(ledger) = self.ledgers.get_mut(&pool) {
                        ledger.drop_ref(location, generation);
                    }
                }
                Ok(generation)
            }
            Err(error) => {
                self.abandon_edit(edit);
                Err(error)
            }
        }
    }

    fn prepare_edit(&self, edit: &mut TableEdit) -> Result<crate::config::Config, ControlError> {
        for &device in &edit.written {
            let file = self.device_by_id(device)?;
            device_io::sync(&file).map_err(|e| ControlError::Device(e.to_string()))?;
        }
        let mut config = self.config.clone();
        for ((volume, node), editor) in edit.editors.drain() {
            let table = config
                .volumes
                .get_mut(volume)
                .and_then(|v| v.layout.thin_table_mut(node))
                .ok_or_else(|| {
                    ControlError::Internal(format!("volume index {volume} has no thin node {node}"))
                })?;
            table.entries = editor.finish();
        }
        Ok(config)
    }

    /// The compiled map of volume `volume` as the configuration has it now.
    pub(super) fn volume_map(&self, volume: usize) -> Result<VolumeMap, ControlError> {
        let config =
            self.config.volumes.get(volume).ok_or_else(|| {
                ControlError::Internal(format!("volume index {volume} out of range"))
            })?;
        let device_id = |name: &str| self.config.device(name).map(|d| d.id);
        VolumeMap::try_new(to_layout(&config.layout, &device_id)?).map_err(|e| {
            ControlError::Internal(format!(
                "the layout of volume '{}' is not usable: {e}",
                config.name
            ))
        })
    }

    /// Index of the volume with uid `uid`.
    pub(super) fn volume_index(&self, uid: u64) -> Option<usize> {
        self.config.volumes.iter().position(|v| v.uid.0 == uid)
    }

    /// The pool and segment size of thin node `node` of volume `volume`.
    pub(super) fn thin_pool(&self, volume: usize, node: NodeId) -> Option<(String, u64)> {
        let (pool, table) = self.config.volumes.get(volume)?.layout.thin_node(node)?;
        Some((pool.to_string(), table.segment_bytes))
    }

    /// References to the slot at `location` of `pool`.
    pub(super) fn slot_refs(&self, pool: &str, location: Location) -> u32 {
        self.ledgers.get(pool).map_or(0, |l| l.refs(location))
    }
}
