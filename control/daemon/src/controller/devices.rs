//! `device_add`, `device_list`, `device_remove`.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use lunar_api::device::{
    DeviceAddParams, DeviceInfo, DeviceKind, DeviceListResult, DeviceRemoveParams,
};
use lunar_api::Empty;
use lunar_reactor::{BackendFile, BackendKind};

use super::Controller;
use crate::config::{Config, DeviceConfig};
use crate::error::ControlError;
use crate::names::check_object_name;

/// Most devices (device ids are below this).
pub const MAX_DEVICES: u32 = 4096;

/// Rules a new device obeys given the devices before it (names, path, id).
pub(super) fn check_new_device(config: &Config, device: &DeviceConfig) -> Result<(), ControlError> {
    check_object_name("device", &device.name).map_err(ControlError::InvalidParams)?;
    if !device.path.is_absolute() {
        return Err(ControlError::InvalidParams(format!(
            "device path '{}' is not absolute",
            device.path.display()
        )));
    }
    if config.device(&device.name).is_some() {
        return Err(ControlError::already_exists("device", &device.name));
    }
    if let Some(other) = config
        .devices
        .iter()
        .find(|d| d.path == device.path || same_file(&d.path, &device.path))
    {
        return Err(ControlError::AlreadyExists(format!(
            "{} is already added as device '{}'",
            device.path.display(),
            other.name
        )));
    }
    if device.id >= MAX_DEVICES {
        return Err(ControlError::Conflict(format!(
            "device id {} is beyond the limit of {MAX_DEVICES} devices",
            device.id
        )));
    }
    if config.devices.iter().any(|d| d.id == device.id) {
        return Err(ControlError::Internal(format!(
            "device id {} is used twice",
            device.id
        )));
    }
    Ok(())
}

/// Whether two paths name the same block device or the same file (best effort: false when
/// either cannot be examined).
fn same_file(a: &Path, b: &Path) -> bool {
    let (Ok(a), Ok(b)) = (std::fs::metadata(a), std::fs::metadata(b)) else {
        return false;
    };
    if a.file_type().is_block_device() && b.file_type().is_block_device() {
        a.rdev() == b.rdev()
    } else {
        a.dev() == b.dev() && a.ino() == b.ino()
    }
}

fn info(config: &Config, name: &str, path: &Path, file: &BackendFile) -> DeviceInfo {
    let mut used_by = config.volumes_using_device(name);
    used_by.sort();
    DeviceInfo {
        name: name.to_string(),
        path: path.display().to_string(),
        kind: match file.kind {
            BackendKind::BlockDevice => DeviceKind::Block,
            BackendKind::File => DeviceKind::File,
        },
        size_bytes: file.size_bytes,
        block_size: file.logical_block_bytes,
        direct: file.direct,
        used_by,
        pool: config.pool_of_device(name).map(|p| p.name.clone()),
    }
}

impl Controller {
    pub fn device_add(&mut self, params: DeviceAddParams) -> Result<DeviceInfo, ControlError> {
        let id = self.config.free_device_id();
        let device = DeviceConfig {
            name: params.name,
            path: PathBuf::from(params.path),
            id,
        };
        check_new_device(&self.config, &device)?;
        let file = self
            .opener
            .open(&device.path)
            .map_err(|e| ControlError::Device(format!("device '{}': {e}", device.name)))?;
        let file = Arc::new(file);
        let mut config = self.config.clone();
        config.devices.push(device.clone());
        let mut devices = self.devices.clone();
        devices.insert(device.name.clone(), file.clone());
        self.commit(config, devices)?;
        Ok(info(&self.config, &device.name, &device.path, &file))
    }

    pub fn device_list(&mut self, _params: Empty) -> Result<DeviceListResult, ControlError> {
        let mut devices = Vec::with_capacity(self.config.devices.len());
        for device in &self.config.devices {
            let file = self.devices.get(&device.name).ok_or_else(|| {
                ControlError::Internal(format!("device '{}' is not open", device.name))
            })?;
            devices.push(info(&self.config, &device.name, &device.path, file));
        }
        devices.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(DeviceListResult { devices })
    }

    pub fn device_remove(&mut self, params: DeviceRemoveParams) -> Result<Empty, ControlError> {
        let name = params.name;
        if self.config.device(&name).is_none() {
            return Err(ControlError::not_found("device", &name));
        }
        let mut users = self.config.volumes_using_device(&name);
        if !users.is_empty() {
            users.sort();
            return Err(ControlError::in_use(
                "device", &name, "used by", "volume", &users,
            ));
        }
        if let Some(pool) = self.config.pool_of_device(&name) {
            return Err(ControlError::in_use(
                "device",
                &name,
                "used by",
                "pool",
                std::slice::from_ref(&pool.name),
            ));
        }
        let mut config = self.config.clone();
        config.devices.retain(|d| d.name != name);
        let mut devices = self.devices.clone();
        devices.remove(&name);
        self.commit_and_drain(config, devices)?;
        Ok(Empty {})
    }
}
