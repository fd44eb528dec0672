//! `volume_create`, `volume_list`, `volume_delete`.

use lunar_api::volume::{
    VolumeCreateParams, VolumeDeleteParams, VolumeInfo, VolumeListResult, DEFAULT_VOLUME_BLOCK_SIZE,
};
use lunar_api::Empty;

use super::Controller;
use crate::config::{Config, Uid, VolumeConfig};
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
    check_layout(
        &volume.name,
        &volume.layout,
        volume.block_size,
        devices,
        &config.volumes,
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

fn info(config: &Config, volume: &VolumeConfig) -> VolumeInfo {
    let mut exported_by = config.targets_exporting(&volume.name);
    exported_by.sort();
    VolumeInfo {
        name: volume.name.clone(),
        uid: volume.uid.to_string(),
        size_bytes: volume.layout.size_bytes(),
        block_size: volume.block_size,
        layout: to_spec(&volume.layout),
        exported_by,
    }
}

impl Controller {
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
        let layout = resolve(&params.layout, block_size, &self.devices)?;
        let taken: Vec<Uid> = self.config.volumes.iter().map(|v| v.uid).collect();
        let uid = Uid::random(&taken)
            .map_err(|e| ControlError::Internal(format!("cannot read /dev/urandom: {e}")))?;
        let volume = VolumeConfig {
            name: params.name,
            uid,
            block_size,
            layout,
            reservations: None,
        };
        check_new_volume(&self.config, &self.devices, &volume)?;
        let mut config = self.config.clone();
        config.volumes.push(volume.clone());
        let devices = self.devices.clone();
        self.commit(config, devices)?;
        Ok(info(&self.config, &volume))
    }

    pub fn volume_list(&mut self, _params: Empty) -> Result<VolumeListResult, ControlError> {
        let mut volumes: Vec<VolumeInfo> = self
            .config
            .volumes
            .iter()
            .map(|v| info(&self.config, v))
            .collect();
        volumes.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(VolumeListResult { volumes })
    }

    pub fn volume_delete(&mut self, params: VolumeDeleteParams) -> Result<Empty, ControlError> {
        let name = params.name;
        if self.config.volume(&name).is_none() {
            return Err(ControlError::not_found("volume", &name));
        }
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
        self.commit_and_drain(config, devices)?;
        Ok(Empty {})
    }
}
