//! `volume_snapshot_create` and `volume_clone_create`.
//!
//! A snapshot is a new read-only volume whose thin table shares every slot of its origin's:
//! both tables mark those segments NoWrite, so the next write to either side copies the
//! segment first. Taking one: publish the two tables, then wait until no command planned on an
//! older generation is in flight (those may still be writing into the now shared slots: the
//! image is the volume as it is once they have landed). Meanwhile the control thread keeps
//! serving the data plane, but the origin's writes that need it wait (a copy made now could
//! miss a write still landing); then save and answer. If the drain or the save fails, the
//! snapshot is taken back.
//!
//! A clone is a writable thin volume sharing a snapshot's slots; no drain is needed (nothing
//! writes into a snapshot's slots).

use lunar_api::volume::{VolumeCloneCreateParams, VolumeInfo, VolumeSnapshotCreateParams};
use lunar_volume::{SegmentEntry, SegmentState};

use super::volumes::{check_new_volume, new_uid};
use super::Controller;
use crate::config::{LayoutConfig, ThinTable, VolumeConfig};
use crate::error::ControlError;
use crate::names::check_object_name;

/// A snapshot being taken: writes of its origin (and of itself) planned on `generation` or
/// later wait until the older generations have drained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Fence {
    pub origin_uid: u64,
    pub snapshot_uid: u64,
    /// The generation that published the snapshot.
    pub generation: u64,
}

impl Fence {
    pub(super) fn covers(&self, volume_uid: u64) -> bool {
        volume_uid == self.origin_uid || volume_uid == self.snapshot_uid
    }
}

impl Controller {
    fn check_new_name(&self, name: &str) -> Result<(), ControlError> {
        check_object_name("volume", name).map_err(ControlError::InvalidParams)?;
        if self.config.volume(name).is_some() {
            return Err(ControlError::already_exists("volume", name));
        }
        Ok(())
    }

    /// Add one reference to every slot `layout`'s thin nodes hold (a new volume shares them).
    fn share_slots(&mut self, layout: &LayoutConfig) -> Result<(), ControlError> {
        let mut failure = None;
        let ledgers = &mut self.ledgers;
        layout.for_each_thin(&mut |_, pool, _, table| {
            let Some(ledger) = ledgers.get_mut(pool) else {
                failure = Some(format!("pool '{pool}' has no ledger"));
                return;
            };
            for (_, location, _) in table.located() {
                if let Err(why) = ledger.add_ref(location) {
                    failure.get_or_insert(why);
                }
            }
        });
        match failure {
            None => Ok(()),
            Some(why) => Err(ControlError::Internal(why)),
        }
    }

    pub fn volume_snapshot_create(
        &mut self,
        params: VolumeSnapshotCreateParams,
    ) -> Result<VolumeInfo, ControlError> {
        self.check_new_name(&params.name)?;
        let Some(origin_index) = self
            .config
            .volumes
            .iter()
            .position(|v| v.name == params.volume)
        else {
            return Err(ControlError::not_found("volume", &params.volume));
        };
        let origin = &self.config.volumes[origin_index];
        let LayoutConfig::Thin {
            id,
            pool,
            size_bytes,
            table,
        } = &origin.layout
        else {
            return Err(ControlError::Conflict(format!(
                "volume '{}' is not a thin volume: snapshots need a thin volume (layout {{\"thin\": {{\"pool\", \"size_bytes\"}}}})",
                origin.name
            )));
        };
        let previous = table.clone();
        let mut shared = table.clone();
        shared.entries = table.entries.with_mapped_as_no_write();
        let snapshot = VolumeConfig {
            name: params.name,
            uid: new_uid(&self.config)?,
            block_size: origin.block_size,
            layout: LayoutConfig::Thin {
                id: *id,
                pool: pool.clone(),
                size_bytes: *size_bytes,
                table: shared.clone(),
            },
            reservations: None,
            snapshot_of: Some(origin.name.clone()),
            clone_of: None,
            dirty_regions: None,
        };
        check_new_volume(&self.config, &self.devices, &snapshot)?;
        let origin_uid = origin.uid.0;
        let mut config = self.config.clone();
        if let LayoutConfig::Thin { table, .. } = &mut config.volumes[origin_index].layout {
            *table = shared;
        }
        config.volumes.push(snapshot.clone());
        let devices = self.devices.clone();
        let reservations = self.reservations.clone();
        let generation = self.install(config, devices, reservations, false)?;
        self.share_slots(&snapshot.layout)?;
        self.fence = Some(Fence {
            origin_uid,
            snapshot_uid: snapshot.uid.0,
            generation,
        });
        let taken = self
            .wait_drained_serving(generation)
            .and_then(|()| self.store.save(&self.config).map_err(ControlError::Persist));
        if let Err(error) = taken {
            self.take_back_snapshot(origin_uid, snapshot.uid.0, &previous);
            self.fence = None;
            return Err(error);
        }
        self.fence = None;
        let info = self
            .config
            .volumes
            .iter()
            .find(|v| v.uid == snapshot.uid)
            .map(|v| self.volume_info(v))
            .ok_or_else(|| ControlError::Internal("the new snapshot vanished".to_string()))?;
        Ok(info)
    }

    /// Undo a snapshot that could not be completed: remove it, and make writable again the
    /// origin's segments that were writable before it (`previous`: the origin's table then; a
    /// deallocation during the drain may have changed some since). Best effort: a failure is
    /// logged.
    fn take_back_snapshot(&mut self, origin_uid: u64, snapshot_uid: u64, previous: &ThinTable) {
        let mut config = self.config.clone();
        let Some(index) = config.volumes.iter().position(|v| v.uid.0 == snapshot_uid) else {
            return;
        };
        let snapshot = config.volumes.remove(index);
        let origin = config.volumes.iter_mut().find(|v| v.uid.0 == origin_uid);
        if let Some(LayoutConfig::Thin { table, .. }) = origin.map(|o| &mut o.layout) {
            let mut editor = table.entries.edit();
            for (index, before) in previous.entries.in_state(SegmentState::Mapped) {
                let Some(location) = before.location() else {
                    continue;
                };
                if editor.get(index) == Some(SegmentEntry::NoWrite(location)) {
                    let _ = editor.set(index, before);
                }
            }
            table.entries = editor.finish();
        }
        let devices = self.devices.clone();
        let committed = match self.commit(config.clone(), devices.clone()) {
            // The saved file has no snapshot unless a change made during the drain saved it:
            // serve the configuration without it anyway.
            Err(ControlError::Persist(error)) => {
                tracing::error!(
                    "snapshot '{}' is taken back but the configuration could not be saved: {error}",
                    snapshot.name
                );
                let reservations = self.reservations.clone();
                self.install(config, devices, reservations, false)
            }
            other => other,
        };
        match committed {
            Ok(generation) => self.drop_volume_refs(&snapshot, generation),
            Err(error) => tracing::error!(
                "snapshot '{}' could not be taken back: {error}",
                snapshot.name
            ),
        }
    }

    pub fn volume_clone_create(
        &mut self,
        params: VolumeCloneCreateParams,
    ) -> Result<VolumeInfo, ControlError> {
        self.check_new_name(&params.name)?;
        let Some(source) = self.config.volume(&params.snapshot) else {
            return Err(ControlError::not_found("volume", &params.snapshot));
        };
        if !source.is_snapshot() {
            return Err(ControlError::Conflict(format!(
                "volume '{}' is not a snapshot: volume_clone_create clones a snapshot (take one with volume_snapshot_create)",
                source.name
            )));
        }
        let mut layout = source.layout.clone();
        if let LayoutConfig::Thin { table, .. } = &mut layout {
            // A snapshot's segments are all NoWrite already; a clone must never share a
            // writable one.
            table.entries = table.entries.with_mapped_as_no_write();
        }
        let clone = VolumeConfig {
            name: params.name,
            uid: new_uid(&self.config)?,
            block_size: source.block_size,
            layout,
            reservations: None,
            snapshot_of: None,
            clone_of: Some(source.name.clone()),
            dirty_regions: None,
        };
        check_new_volume(&self.config, &self.devices, &clone)?;
        let mut config = self.config.clone();
        config.volumes.push(clone.clone());
        let devices = self.devices.clone();
        self.commit(config, devices)?;
        self.share_slots(&clone.layout)?;
        Ok(self.volume_info(&clone))
    }
}
