//! `volume_resize`: growing a volume while hosts use it. A thin volume's table grows (the new
//! segments are Zero); any other layout grows by a layout concatenated at its end, or, for a
//! linear or concat volume without one, by growing its last extent in place. Every I_T nexus of
//! the volume's logical units gets CAPACITY DATA HAS CHANGED with the new table. Shrinking is
//! refused: hosts may hold data beyond the new end.

use lunar_api::volume::{LayoutSpec, VolumeInfo, VolumeResizeParams};
use lunar_scsi::UnitAttention;
use lunar_volume::SegmentTable;

use super::Controller;
use crate::config::{LayoutConfig, ThinTable, VolumeConfig};
use crate::error::ControlError;
use crate::layout::{check_layout, resolve_avoiding};

/// `table` grown to `segments` segments, the new ones Zero.
fn grown_table(table: &ThinTable, segments: u64) -> ThinTable {
    let mut editor = SegmentTable::all_zero(segments).edit();
    for state in [
        lunar_volume::SegmentState::Mapped,
        lunar_volume::SegmentState::NoWrite,
        lunar_volume::SegmentState::Error,
    ] {
        for (index, entry) in table.entries.in_state(state) {
            let _ = editor.set(index, entry);
        }
    }
    ThinTable {
        segment_bytes: table.segment_bytes,
        entries: editor.finish(),
    }
}

/// The last linear extent of a linear or concat tree (concats descended into their last
/// member).
fn last_extent(layout: &mut LayoutConfig) -> Option<&mut LayoutConfig> {
    match layout {
        LayoutConfig::Linear { .. } => Some(layout),
        LayoutConfig::Concat(members) => members.last_mut().and_then(last_extent),
        _ => None,
    }
}

impl Controller {
    pub fn volume_resize(
        &mut self,
        params: VolumeResizeParams,
    ) -> Result<VolumeInfo, ControlError> {
        let Some(index) = self
            .config
            .volumes
            .iter()
            .position(|v| v.name == params.name)
        else {
            return Err(ControlError::not_found("volume", &params.name));
        };
        let volume = &self.config.volumes[index];
        if volume.is_snapshot() {
            return Err(ControlError::Conflict(format!(
                "volume '{}' is a snapshot: snapshots keep the size they were taken with",
                volume.name
            )));
        }
        if let Some(task) = self.running_task_of(volume.uid.0) {
            return Err(ControlError::Conflict(format!(
                "volume '{}' has task {task} running; resize it once the task has ended (task_get)",
                volume.name
            )));
        }
        let old_bytes = volume.layout.size_bytes();
        let new_bytes = params.size_bytes;
        if new_bytes < old_bytes {
            return Err(ControlError::Conflict(format!(
                "volume '{}' has {old_bytes} bytes: shrinking it to {new_bytes} is not supported (volume_resize only grows)",
                volume.name
            )));
        }
        let block = u64::from(volume.block_size);
        if !new_bytes.is_multiple_of(block) {
            return Err(ControlError::InvalidParams(format!(
                "size_bytes {new_bytes} is not a multiple of the volume block size {block}"
            )));
        }
        if new_bytes == old_bytes && params.extend.is_none() {
            return Ok(self.volume_info(volume));
        }
        let layout = self.grown_layout(volume, new_bytes - old_bytes, params.extend.as_ref())?;
        let mut grown = volume.clone();
        grown.layout = layout;
        let size = check_layout(
            &grown.name,
            &grown.layout,
            grown.block_size,
            &self.devices,
            &self.config,
        )?;
        if size != new_bytes {
            return Err(ControlError::Internal(format!(
                "the grown layout has {size} bytes instead of {new_bytes}"
            )));
        }
        let uid = grown.uid.0;
        let mut config = self.config.clone();
        config.volumes[index] = grown;
        let devices = self.devices.clone();
        let mut reservations = self.reservations.clone();
        let state = self.reservation_state(uid);
        reservations.insert(
            uid,
            std::sync::Arc::new(
                state.with_unit_attention_for_all(UnitAttention::CapacityDataChanged),
            ),
        );
        self.install(config, devices, reservations, true)?;
        Ok(self.volume_info(&self.config.volumes[index]))
    }

    /// The layout of `volume` grown by `added_bytes`.
    fn grown_layout(
        &self,
        volume: &VolumeConfig,
        added_bytes: u64,
        extend: Option<&LayoutSpec>,
    ) -> Result<LayoutConfig, ControlError> {
        let name = &volume.name;
        if let LayoutConfig::Thin {
            id,
            pool,
            size_bytes,
            table,
        } = &volume.layout
        {
            if extend.is_some() {
                return Err(ControlError::InvalidParams(format!(
                    "volume '{name}' is thin: it grows its own table, leave 'extend' out"
                )));
            }
            let new_size = size_bytes + added_bytes;
            let segments = SegmentTable::entries_for(new_size, table.segment_bytes)
                .ok_or_else(|| ControlError::Internal("0-byte segments".to_string()))?;
            return Ok(LayoutConfig::Thin {
                id: *id,
                pool: pool.clone(),
                size_bytes: new_size,
                table: grown_table(table, segments),
            });
        }
        let Some(spec) = extend else {
            return self.grown_in_place(volume, added_bytes);
        };
        let mut spec = spec.clone();
        if let LayoutSpec::Linear(linear) = &mut spec {
            linear.size_bytes.get_or_insert(added_bytes);
        }
        let added = resolve_avoiding(
            &spec,
            volume.block_size,
            &self.devices,
            &self.config.pools,
            &volume.layout.node_ids(),
        )?;
        let extend_bytes = added.size_bytes();
        if extend_bytes != added_bytes {
            return Err(ControlError::InvalidParams(format!(
                "'extend' has {extend_bytes} bytes but volume '{name}' grows by {added_bytes} bytes: they must be equal"
            )));
        }
        Ok(match volume.layout.clone() {
            LayoutConfig::Concat(mut members) => {
                members.push(added);
                LayoutConfig::Concat(members)
            }
            other => LayoutConfig::Concat(vec![other, added]),
        })
    }

    /// A linear or concat layout whose last extent grows by `added_bytes` on its device.
    fn grown_in_place(
        &self,
        volume: &VolumeConfig,
        added_bytes: u64,
    ) -> Result<LayoutConfig, ControlError> {
        let name = &volume.name;
        let mut layout = volume.layout.clone();
        let Some(LayoutConfig::Linear {
            device,
            offset_bytes,
            size_bytes,
        }) = last_extent(&mut layout)
        else {
            return Err(ControlError::InvalidParams(format!(
                "volume '{name}' is not a linear or concat volume: give the layout to add as 'extend'"
            )));
        };
        let grown = size_bytes.checked_add(added_bytes).ok_or_else(|| {
            ControlError::InvalidParams("volume size exceeds 2^64 bytes".to_string())
        })?;
        let room = |why: String| {
            ControlError::Conflict(format!(
                "the last extent of volume '{name}' (device '{device}' at offset {offset_bytes}) cannot grow by {added_bytes} bytes in place: {why}; give the layout to add as 'extend'"
            ))
        };
        let end = offset_bytes.saturating_add(grown);
        let device_bytes = self
            .devices
            .get(device.as_str())
            .map_or(0, |f| f.size_bytes);
        if end > device_bytes {
            return Err(room(format!("the device has {device_bytes} bytes")));
        }
        let mut blocker = None;
        let old_end = offset_bytes.saturating_add(*size_bytes);
        for other in &self.config.volumes {
            other.layout.for_each_extent(&mut |d, o, s| {
                let overlaps = d == device.as_str() && o < end && old_end < o.saturating_add(s);
                if overlaps && blocker.is_none() {
                    blocker = Some(format!(
                        "volume '{}' uses {o}..{}",
                        other.name,
                        o.saturating_add(s)
                    ));
                }
            });
        }
        if let Some(why) = blocker {
            return Err(room(why));
        }
        *size_bytes = grown;
        Ok(layout)
    }
}
