//! `volume_create`, `volume_list`, `volume_delete`.

use lunar_api::volume::{
    VolumeCreateParams, VolumeDeleteParams, VolumeHealth, VolumeInfo, VolumeListResult,
    DEFAULT_VOLUME_BLOCK_SIZE,
};
use lunar_api::Empty;

use super::Controller;
use crate::config::{Config, LayoutConfig, LegHealthConfig, Uid, VolumeConfig};
use crate::error::ControlError;
use crate::layout::{check_block_size, check_layout, resolve, to_spec, Devices};
use crate::names::check_object_name;

/// Rules a new volume obeys given the configuration before it.
pub(super) fn check_new_volume(
    config: &Config,
    devices: &Devices,
    volume: &VolumeConfig,
) -> Result<u64, ControlError> {
    check_object_name("volume", &volume.name).map_err(ControlError::InvalidParams)?;
    check_block_size(volume.block_size)?;
    if config.volume(&volume.name).is_some() {
        return Err(ControlError::already_exists("volume", &volume.name));
    }
    if let Some(twin) = config.volumes.iter().find(|v| v.uid == volume.uid) {
        return Err(ControlError::Conflict(format!(
            "volume '{}' has the same uid {} as volume '{}'",
            volume.name, volume.uid, twin.name
        )));
    }
    if let Some(device) = first_unknown_device(config, volume) {
        return Err(ControlError::not_found("device", &device));
    }
    if volume.snapshot_of.is_some() && volume.clone_of.is_some() {
        return Err(ControlError::InvalidParams(format!(
            "volume '{}' cannot be both a snapshot and a clone",
            volume.name
        )));
    }
    check_layout(
        &volume.name,
        &volume.layout,
        volume.block_size,
        devices,
        config,
    )
}

fn first_unknown_device(config: &Config, volume: &VolumeConfig) -> Option<String> {
    let mut unknown = None;
    volume.layout.for_each_extent(&mut |device, _, _| {
        if unknown.is_none() && config.device(device).is_none() {
            unknown = Some(device.to_string());
        }
    });
    unknown
}

/// A new random uid no volume of `config` has.
/// Degraded if a mirror leg is faulty anywhere in `layout`, else resyncing if one is being
/// copied onto, else healthy.
fn health_of(layout: &LayoutConfig) -> VolumeHealth {
    let mut faulty = false;
    let mut resyncing = false;
    let mut stack = vec![layout];
    while let Some(node) = stack.pop() {
        if let LayoutConfig::Mirror { legs, .. } = node {
            for leg in legs {
                match leg.health {
                    LegHealthConfig::Faulty => faulty = true,
                    LegHealthConfig::Resyncing { .. } => resyncing = true,
                    LegHealthConfig::Healthy => {}
                }
            }
        }
        stack.extend(node.members());
    }
    match (faulty, resyncing) {
        (true, _) => VolumeHealth::Degraded,
        (false, true) => VolumeHealth::Resyncing,
        (false, false) => VolumeHealth::Healthy,
    }
}

pub(super) fn new_uid(config: &Config) -> Result<Uid, ControlError> {
    let taken: Vec<Uid> = config.volumes.iter().map(|v| v.uid).collect();
    Uid::random(&taken)
        .map_err(|e| ControlError::Internal(format!("cannot read /dev/urandom: {e}")))
}

impl Controller {
    /// A volume as `volume_create` and `volume_list` show it.
    pub(super) fn volume_info(&self, volume: &VolumeConfig) -> VolumeInfo {
        let mut exported_by = self.config.targets_exporting(&volume.name);
        exported_by.sort();
        let refs = |pool: &str, location| self.slot_refs(pool, location);
        VolumeInfo {
            name: volume.name.clone(),
            uid: volume.uid.to_string(),
            size_bytes: volume.layout.size_bytes(),
            block_size: volume.block_size,
            layout: to_spec(&volume.layout, &refs),
            exported_by,
            snapshot: volume.is_snapshot(),
            snapshot_of: volume.snapshot_of.clone(),
            clone_of: volume.clone_of.clone(),
            health: health_of(&volume.layout),
        }
    }

    pub fn volume_create(
        &mut self,
        params: VolumeCreateParams,
    ) -> Result<VolumeInfo, ControlError> {
        check_object_name("volume", &params.name).map_err(ControlError::InvalidParams)?;
        let block_size = params.block_size.unwrap_or(DEFAULT_VOLUME_BLOCK_SIZE);
        check_block_size(block_size)?;
        if self.config.volume(&params.name).is_some() {
            return Err(ControlError::already_exists("volume", &params.name));
        }
        let layout = resolve(
            &params.layout,
            block_size,
            &self.devices,
            &self.config.pools,
        )?;
        let volume = VolumeConfig {
            name: params.name,
            uid: new_uid(&self.config)?,
            block_size,
            layout,
            reservations: None,
            snapshot_of: None,
            clone_of: None,
            dirty_regions: None,
        };
        check_new_volume(&self.config, &self.devices, &volume)?;
        let mut config = self.config.clone();
        config.volumes.push(volume.clone());
        let devices = self.devices.clone();
        self.commit(config, devices)?;
        Ok(self.volume_info(&volume))
    }

    pub fn volume_list(&mut self, _params: Empty) -> Result<VolumeListResult, ControlError> {
        let mut volumes: Vec<VolumeInfo> = self
            .config
            .volumes
            .iter()
            .map(|v| self.volume_info(v))
            .collect();
        volumes.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(VolumeListResult { volumes })
    }

    /// Delete a volume; the pool slots only it held become free once the commands that could
    /// still use them have completed (the answer waits for that).
    pub fn volume_delete(&mut self, params: VolumeDeleteParams) -> Result<Empty, ControlError> {
        let name = params.name;
        let Some(volume) = self.config.volume(&name).cloned() else {
            return Err(ControlError::not_found("volume", &name));
        };
        let mut users = self.config.targets_exporting(&name);
        if !users.is_empty() {
            users.sort();
            return Err(ControlError::in_use(
                "volume",
                &name,
                "exported by",
                "target",
                &users,
            ));
        }
        let mut config = self.config.clone();
        config.volumes.retain(|v| v.name != name);
        let devices = self.devices.clone();
        let generation = self.commit(config, devices)?;
        self.drop_volume_refs(&volume, generation);
        self.wait_drained_serving(generation)?;
        Ok(Empty {})
    }

    /// Drop the references of every segment of `volume` to its slots, as of `generation`.
    pub(super) fn drop_volume_refs(&mut self, volume: &VolumeConfig, generation: u64) {
        let ledgers = &mut self.ledgers;
        volume.layout.for_each_thin(&mut |_, pool, _, table| {
            if let Some(ledger) = ledgers.get_mut(pool) {
                for (_, location, _) in table.located() {
                    ledger.drop_ref(location, generation);
                }
            }
        });
    }
}
