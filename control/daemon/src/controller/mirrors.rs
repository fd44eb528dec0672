//! Mirror legs, online. A leg whose I/O fails is taken out (faulty: the volume runs degraded,
//! hosts see no error while a leg is left) and from then on every write marks its regions
//! dirty, durably, before it is issued. `mirror_leg_add` adds a leg and copies everything onto
//! it; `mirror_leg_rejoin` brings a faulty leg back and copies only its dirty regions;
//! `mirror_leg_remove` takes a leg out for good; `volume_migrate` makes the volume a temporary
//! two-leg mirror of its old and new layouts, copies, then keeps only the new one. The copying
//! is the task runner's (`tasks`).
//!
//! Leg operations work on the volume's top-level mirror (a volume that is not a mirror becomes
//! one when a leg is added).

use lunar_api::mirror::{
    MirrorLegAddParams, MirrorLegRejoinParams, MirrorLegRemoveParams, VolumeMigrateParams,
};
use lunar_api::task::TaskInfo;
use lunar_api::Empty;
use lunar_reactor::DirtyRegions;
use lunar_scsi::ScsiReply;
use lunar_volume::layout::NodeId;
use lunar_volume::{LegRef, MAX_MIRROR_LEGS};
use lunar_wire::scsi::{status, Asc, Sense, SenseKey};

use super::requests::check_condition;
use super::Controller;
use crate::config::{
    Config, DirtyRegionsConfig, LayoutConfig, LegConfig, LegHealthConfig, ReadPolicyConfig,
    TaskKindConfig, VolumeConfig,
};
use crate::error::ControlError;
use crate::layout::{check_layout, resolve_avoiding};

/// Smallest dirty region of a degraded volume.
pub const DIRTY_REGION_MIN_BYTES: u64 = 1 << 20;
/// Most dirty regions of one volume: each first write to a region saves the configuration, so
/// a large volume gets larger regions (1 TiB: 128 MiB) rather than more saves.
pub const DIRTY_REGIONS_MAX: u64 = 8192;

/// Empty dirty regions for a volume of `size_bytes`: 1 MiB regions, or larger ones (a power of
/// two) keeping their number at most [`DIRTY_REGIONS_MAX`].
pub(super) fn no_dirty_regions(size_bytes: u64) -> DirtyRegionsConfig {
    let mut region_bytes = DIRTY_REGION_MIN_BYTES;
    while size_bytes.div_ceil(region_bytes) > DIRTY_REGIONS_MAX {
        region_bytes *= 2;
    }
    DirtyRegionsConfig {
        region_bytes,
        runs: Vec::new(),
    }
}

fn good() -> ScsiReply {
    ScsiReply {
        status: status::GOOD,
        sense: Vec::new(),
        data_in: Vec::new(),
        transfer_len_bytes: 0,
    }
}

/// The legs of mirror node `id` anywhere in `layout`.
pub(super) fn mirror_legs_mut(
    layout: &mut LayoutConfig,
    id: NodeId,
) -> Option<&mut Vec<LegConfig>> {
    if matches!(layout, LayoutConfig::Mirror { id: this, .. } if *this == id) {
        return match layout {
            LayoutConfig::Mirror { legs, .. } => Some(legs),
            _ => None,
        };
    }
    match layout {
        LayoutConfig::Mirror { legs, .. } => legs
            .iter_mut()
            .find_map(|leg| mirror_legs_mut(&mut leg.layout, id)),
        LayoutConfig::Concat(members) | LayoutConfig::Stripe { members, .. } => members
            .iter_mut()
            .find_map(|member| mirror_legs_mut(member, id)),
        LayoutConfig::Linear { .. } | LayoutConfig::Thin { .. } => None,
    }
}

/// The dirty regions of a volume as the data plane reads them.
pub(super) fn dirty_regions(config: &DirtyRegionsConfig, size_bytes: u64) -> DirtyRegions {
    let mut dirty = DirtyRegions::new(config.region_bytes, size_bytes);
    for &(first, count) in &config.runs {
        for region in first..first.saturating_add(count) {
            dirty.mark(region);
        }
    }
    dirty
}

/// The stored form of `dirty`: runs of marked regions.
fn dirty_runs(dirty: &DirtyRegions) -> DirtyRegionsConfig {
    let mut runs: Vec<(u64, u64)> = Vec::new();
    for region in dirty.marked() {
        match runs.last_mut() {
            Some((first, count)) if *first + *count == region => *count += 1,
            _ => runs.push((region, 1)),
        }
    }
    DirtyRegionsConfig {
        region_bytes: dirty.region_bytes(),
        runs,
    }
}

fn volume_mut<'a>(
    config: &'a mut Config,
    name: &str,
) -> Result<&'a mut VolumeConfig, ControlError> {
    config
        .volumes
        .iter_mut()
        .find(|v| v.name == name)
        .ok_or_else(|| ControlError::not_found("volume", name))
}

/// The top-level mirror of a volume: its id and legs.
fn root_mirror(volume: &mut VolumeConfig) -> Result<(NodeId, &mut Vec<LegConfig>), ControlError> {
    match &mut volume.layout {
        LayoutConfig::Mirror { id, legs, .. } => Ok((*id, legs)),
        _ => Err(ControlError::Conflict(format!(
            "volume '{}' is not a mirror (add a leg with mirror_leg_add first)",
            volume.name
        ))),
    }
}

fn leg_index(legs: &[LegConfig], index: u32, volume: &str) -> Result<usize, ControlError> {
    let at = index as usize;
    if at < legs.len() {
        Ok(at)
    } else {
        Err(ControlError::InvalidParams(format!(
            "volume '{volume}' has {} mirror legs: there is no leg {index}",
            legs.len()
        )))
    }
}

impl Controller {
    /// A reactor's I/O failed on a mirror leg: take it out, unless it is the last leg holding
    /// the data (then a write fails with a medium error, as it would without a mirror).
    pub(super) fn leg_failed(
        &mut self,
        volume_uid: u64,
        generation: u64,
        leg: LegRef,
        write: bool,
    ) -> ScsiReply {
        if self
            .legs_renumbered
            .get(&volume_uid)
            .is_some_and(|&since| generation < since)
        {
            // Planned before the legs were renumbered: the reactor plans again and reports
            // again with the current numbering if the leg is still failing.
            return good();
        }
        let mut config = self.config.clone();
        let Some(volume) = config.volumes.iter_mut().find(|v| v.uid.0 == volume_uid) else {
            return good();
        };
        let size_bytes = volume.layout.size_bytes();
        let name = volume.name.clone();
        let Some(legs) = mirror_legs_mut(&mut volume.layout, leg.mirror) else {
            return good();
        };
        let Some(failed) = legs.get(leg.leg as usize) else {
            return good();
        };
        if failed.health == LegHealthConfig::Faulty {
            return good();
        }
        let healthy_left = legs
            .iter()
            .enumerate()
            .filter(|(i, l)| *i != leg.leg as usize && l.health == LegHealthConfig::Healthy)
            .count();
        if healthy_left == 0 {
            tracing::error!(
                volume = %name,
                leg = leg.leg,
                "I/O failed on the last healthy mirror leg; it stays in"
            );
            return check_condition(
                Sense::new(
                    SenseKey::MediumError,
                    if write {
                        Asc::WRITE_ERROR
                    } else {
                        Asc::UNRECOVERED_READ_ERROR
                    },
                ),
                0,
            );
        }
        let failed = &mut legs[leg.leg as usize];
        failed.stale |= matches!(failed.health, LegHealthConfig::Resyncing { .. });
        failed.health = LegHealthConfig::Faulty;
        tracing::warn!(
            volume = %name,
            mirror = leg.mirror,
            leg = leg.leg,
            write,
            "mirror leg failed and was taken out: the volume is degraded"
        );
        if volume.dirty_regions.is_none() {
            volume.dirty_regions = Some(no_dirty_regions(size_bytes));
        }
        self.fail_tasks_on_leg(&mut config, volume_uid, leg, "the leg failed");
        let devices = self.devices.clone();
        match self.commit(config, devices) {
            Ok(_) => good(),
            Err(e) => {
                tracing::error!(volume = %name, "taking a failed mirror leg out failed: {e}");
                check_condition(
                    Sense::new(SenseKey::HardwareError, Asc::INTERNAL_TARGET_FAILURE),
                    0,
                )
            }
        }
    }

    /// Mark the regions of writes to degraded volumes dirty, durably, before they are issued:
    /// `(volume uid, offset, len)` each, all in one saved and published table.
    pub(super) fn log_writes(&mut self, writes: &[(u64, u64, u64)]) -> ScsiReply {
        let mut config = self.config.clone();
        let mut changed = false;
        for &(volume_uid, offset_bytes, len_bytes) in writes {
            let Some(volume) = config.volumes.iter_mut().find(|v| v.uid.0 == volume_uid) else {
                continue;
            };
            let size_bytes = volume.layout.size_bytes();
            // No dirty regions: the volume is whole again, the reactor plans again unmarked.
            let Some(stored) = volume.dirty_regions.as_ref() else {
                continue;
            };
            let mut dirty = dirty_regions(stored, size_bytes);
            if dirty.covers(offset_bytes, len_bytes) {
                continue;
            }
            dirty.mark_range(offset_bytes, len_bytes);
            volume.dirty_regions = Some(dirty_runs(&dirty));
            changed = true;
        }
        if !changed {
            return good();
        }
        let devices = self.devices.clone();
        match self.commit(config, devices) {
            Ok(_) => good(),
            Err(e) => {
                tracing::error!("marking dirty regions failed: {e}");
                check_condition(
                    Sense::new(SenseKey::HardwareError, Asc::INTERNAL_TARGET_FAILURE),
                    0,
                )
            }
        }
    }

    pub fn mirror_leg_add(&mut self, params: MirrorLegAddParams) -> Result<TaskInfo, ControlError> {
        let mut config = self.config.clone();
        let volume = volume_mut(&mut config, &params.volume)?;
        self.check_changeable(volume)?;
        let leg = self.resolve_copy_of(volume, &params.leg, "the new leg")?;
        let mut taken = volume.layout.node_ids();
        taken.extend(leg.node_ids());
        let new_leg = LegConfig {
            layout: leg,
            health: LegHealthConfig::Resyncing { up_to_bytes: 0 },
            stale: false,
        };
        let (mirror, index) = match &mut volume.layout {
            LayoutConfig::Mirror { id, legs, .. } => {
                if legs.len() >= MAX_MIRROR_LEGS {
                    return Err(ControlError::Conflict(format!(
                        "volume '{}' already has {MAX_MIRROR_LEGS} mirror legs",
                        params.volume
                    )));
                }
                legs.push(new_leg);
                (*id, legs.len() as u32 - 1)
            }
            other => {
                let id = taken.iter().copied().max().unwrap_or(0) + 1;
                let old = std::mem::replace(other, LayoutConfig::Concat(Vec::new()));
                *other = LayoutConfig::Mirror {
                    id,
                    read_policy: ReadPolicyConfig::default(),
                    legs: vec![
                        LegConfig {
                            layout: old,
                            health: LegHealthConfig::Healthy,
                            stale: false,
                        },
                        new_leg,
                    ],
                };
                (id, 1)
            }
        };
        self.start_copy_task(
            config,
            &params.volume,
            TaskKindConfig::Resync,
            mirror,
            index,
            false,
        )
    }

    pub fn mirror_leg_rejoin(
        &mut self,
        params: MirrorLegRejoinParams,
    ) -> Result<TaskInfo, ControlError> {
        let mut config = self.config.clone();
        let volume = volume_mut(&mut config, &params.volume)?;
        self.check_changeable(volume)?;
        let has_dirty_regions = volume.dirty_regions.is_some();
        let (mirror, legs) = root_mirror(volume)?;
        let at = leg_index(legs, params.index, &params.volume)?;
        if legs[at].health != LegHealthConfig::Faulty {
            return Err(ControlError::Conflict(format!(
                "leg {} of volume '{}' is not faulty: only a faulty leg can rejoin",
                params.index, params.volume
            )));
        }
        // A leg that was in sync when it went out lacks only the dirty regions.
        let dirty_only = has_dirty_regions && !legs[at].stale;
        legs[at].health = LegHealthConfig::Resyncing { up_to_bytes: 0 };
        self.start_copy_task(
            config,
            &params.volume,
            TaskKindConfig::Resync,
            mirror,
            params.index,
            dirty_only,
        )
    }

    pub fn mirror_leg_remove(
        &mut self,
        params: MirrorLegRemoveParams,
    ) -> Result<Empty, ControlError> {
        let mut config = self.config.clone();
        let volume = volume_mut(&mut config, &params.volume)?;
        // Removing a leg is allowed while a task runs: the task on that leg fails below.
        check_not_snapshot(volume)?;
        let uid = volume.uid.0;
        let (mirror, legs) = root_mirror(volume)?;
        let at = leg_index(legs, params.index, &params.volume)?;
        let healthy_left = legs
            .iter()
            .enumerate()
            .filter(|(i, l)| *i != at && l.health == LegHealthConfig::Healthy)
            .count();
        if healthy_left == 0 {
            return Err(ControlError::Conflict(format!(
                "leg {} is the last healthy leg of volume '{}': removing it would lose the data",
                params.index, params.volume
            )));
        }
        let removed = legs.remove(at);
        let all_healthy = legs.iter().all(|l| l.health == LegHealthConfig::Healthy);
        if legs.len() == 1 {
            let last = legs.pop().expect("one leg");
            volume.layout = last.layout;
        }
        if all_healthy {
            volume.dirty_regions = None;
        }
        let removed_leg = LegRef {
            mirror,
            leg: params.index,
        };
        self.fail_tasks_on_leg(&mut config, uid, removed_leg, "the leg was removed");
        self.renumber_task_legs(&mut config, uid, mirror, params.index);
        let devices = self.devices.clone();
        let generation = self.commit(config, devices)?;
        self.legs_renumbered.insert(uid, generation);
        self.release_layout(&removed.layout, generation);
        self.wait_drained_serving(generation)?;
        Ok(Empty {})
    }

    pub fn volume_migrate(
        &mut self,
        params: VolumeMigrateParams,
    ) -> Result<TaskInfo, ControlError> {
        let mut config = self.config.clone();
        let volume = volume_mut(&mut config, &params.name)?;
        self.check_changeable(volume)?;
        let target = self.resolve_copy_of(volume, &params.layout, "the new layout")?;
        let mut taken = volume.layout.node_ids();
        taken.extend(target.node_ids());
        let id = taken.iter().copied().max().unwrap_or(0) + 1;
        let old = std::mem::replace(&mut volume.layout, LayoutConfig::Concat(Vec::new()));
        volume.layout = LayoutConfig::Mirror {
            id,
            read_policy: ReadPolicyConfig::default(),
            legs: vec![
                LegConfig {
                    layout: old,
                    health: LegHealthConfig::Healthy,
                    stale: false,
                },
                LegConfig {
                    layout: target,
                    health: LegHealthConfig::Resyncing { up_to_bytes: 0 },
                    stale: false,
                },
            ],
        };
        self.start_copy_task(config, &params.name, TaskKindConfig::Migrate, id, 1, false)
    }

    /// Resolve `spec` as a second copy of `volume` (a leg, a migration target): its node ids
    /// after the volume's, exactly the volume's size.
    fn resolve_copy_of(
        &self,
        volume: &VolumeConfig,
        spec: &lunar_api::volume::LayoutSpec,
        what: &str,
    ) -> Result<LayoutConfig, ControlError> {
        let size_bytes = volume.layout.size_bytes();
        let resolved = resolve_avoiding(
            spec,
            volume.block_size,
            &self.devices,
            &self.config.pools,
            &volume.layout.node_ids(),
        )?;
        if resolved.size_bytes() != size_bytes {
            return Err(ControlError::InvalidParams(format!(
                "{what} has {} bytes; volume '{}' has {size_bytes}: it must be exactly as large (resize the volume first to grow it)",
                resolved.size_bytes(),
                volume.name
            )));
        }
        Ok(resolved)
    }

    /// Refuse a layout change on a snapshot or on a volume with a task running.
    fn check_changeable(&self, volume: &VolumeConfig) -> Result<(), ControlError> {
        check_not_snapshot(volume)?;
        if let Some(task) = self.running_task_of(volume.uid.0) {
            return Err(ControlError::Conflict(format!(
                "volume '{}' has task {} running; wait for it to end (task_get)",
                volume.name, task
            )));
        }
        Ok(())
    }

    /// Check a changed volume's layout against the devices, pools and the other volumes.
    pub(super) fn check_changed_layout(
        &self,
        config: &Config,
        name: &str,
    ) -> Result<(), ControlError> {
        let volume = config
            .volume(name)
            .ok_or_else(|| ControlError::not_found("volume", name))?;
        check_layout(
            &volume.name,
            &volume.layout,
            volume.block_size,
            &self.devices,
            config,
        )
        .map(|_| ())
    }
}

/// Refuse a layout change on a snapshot: its layout is its origin's at one point in time.
fn check_not_snapshot(volume: &VolumeConfig) -> Result<(), ControlError> {
    if volume.is_snapshot() {
        return Err(ControlError::Conflict(format!(
            "volume '{}' is a snapshot: its layout does not change",
            volume.name
        )));
    }
    Ok(())
}
