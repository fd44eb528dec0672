//! Building the data plane's [`Snapshot`] from a configuration and its open devices.

use std::collections::HashMap;
use std::sync::Arc;

use lunar_reactor::{LunEntry, Snapshot, TargetEntry, VolumeEntry};
use lunar_volume::VolumeMap;

use super::Reservations;
use crate::chap;
use crate::config::Config;
use crate::error::ControlError;
use crate::layout::{to_layout, Devices};

/// The snapshot of `config`: devices at their ids, volumes in configuration order, targets
/// with LUNs pointing at volume indices and their access rules (initiator allow-list, CHAP),
/// discovery's CHAP, and each volume's reservation state (`reservations`, by uid; default when
/// absent). LUNs of snapshot volumes are read-only whatever their configuration says.
/// `generation` is left for the publisher to set.
pub fn build_snapshot(
    config: &Config,
    devices: &Devices,
    reservations: &Reservations,
) -> Result<Snapshot, ControlError> {
    let slots = config
        .devices
        .iter()
        .map(|d| d.id as usize + 1)
        .max()
        .unwrap_or(0);
    let mut device_slots = vec![None; slots];
    let mut ids = HashMap::new();
    for device in &config.devices {
        let file = devices.get(&device.name).ok_or_else(|| {
            ControlError::Internal(format!("device '{}' is not open", device.name))
        })?;
        let slot = device_slots.get_mut(device.id as usize).ok_or_else(|| {
            ControlError::Internal(format!("device id {} out of range", device.id))
        })?;
        *slot = Some(file.clone());
        ids.insert(device.name.as_str(), device.id);
    }
    let device_id = |name: &str| ids.get(name).copied();
    let mut volume_index = HashMap::new();
    let mut volumes = Vec::with_capacity(config.volumes.len());
    for (index, volume) in config.volumes.iter().enumerate() {
        volume_index.insert(volume.name.as_str(), index);
        volumes.push(VolumeEntry {
            name: volume.name.clone(),
            uid: volume.uid.0,
            block_size: volume.block_size,
            map: VolumeMap::try_new(to_layout(&volume.layout, &device_id)?).map_err(|e| {
                ControlError::Conflict(format!(
                    "the layout of volume '{}' is not usable: {e}",
                    volume.name
                ))
            })?,
            reservations: reservations.get(&volume.uid.0).cloned().unwrap_or_default(),
            dirty_regions: volume.dirty_regions.as_ref().map(|dirty| {
                Arc::new(super::mirrors::dirty_regions(
                    dirty,
                    volume.layout.size_bytes(),
                ))
            }),
        });
    }
    let mut targets = Vec::with_capacity(config.targets.len());
    for target in &config.targets {
        let mut luns = Vec::with_capacity(target.luns.len());
        for lun in &target.luns {
            let volume = *volume_index.get(lun.volume.as_str()).ok_or_else(|| {
                ControlError::Internal(format!("LUN names unknown volume '{}'", lun.volume))
            })?;
            let snapshot = config.volumes.get(volume).is_some_and(|v| v.is_snapshot());
            luns.push(LunEntry {
                lun: lun.lun,
                volume,
                read_only: lun.read_only || snapshot,
                removable: lun.removable,
            });
        }
        targets.push(TargetEntry {
            iqn: target.iqn.clone(),
            luns,
            allowed_initiators: target.allowed_initiators.clone(),
            chap: target.chap.as_ref().map(chap::to_snapshot),
        });
    }
    Ok(Snapshot {
        generation: 0,
        devices: device_slots,
        volumes,
        targets,
        discovery_chap: config.discovery_chap.as_ref().map(chap::to_snapshot),
    })
}
