//! Checking a resolved layout before it is used: the tree's shape (depth, member counts, node
//! ids, stripe units, equal mirror legs, thin nodes matching their pools), every linear extent
//! (inside its device, aligned, not on a pool's device) and no overlap with the extents of the
//! same or other volumes.

use std::collections::HashSet;

use lunar_volume::layout::{NodeId, MAX_MIRROR_LEGS};
use lunar_volume::SegmentTable;

use super::{too_deep, too_many_extents, Devices, MAX_LAYOUT_DEPTH, MAX_LAYOUT_EXTENTS};
use crate::config::{Config, LayoutConfig, LegHealthConfig, VolumeConfig};
use crate::error::ControlError;

/// One extent of some volume on some device.
struct Placed<'a> {
    device: &'a str,
    start_bytes: u64,
    end_bytes: u64,
    volume: &'a str,
}

/// Check a resolved layout for volume `name` against `config` (its devices, pools and other
/// volumes; a volume of the same name there is not compared with): shape, every extent
/// non-empty, aligned to `block_size` and to its device's logical block size, inside its
/// device and not on a pool's device, no overlap with itself or with the other volumes.
/// Returns the volume size.
pub fn check_layout(
    name: &str,
    layout: &LayoutConfig,
    block_size: u32,
    devices: &Devices,
    config: &Config,
) -> Result<u64, ControlError> {
    let mut shape = Shape {
        block: u64::from(block_size),
        config,
        ids: HashSet::new(),
    };
    let total_bytes = shape.check(layout, 1)?;
    let mut extents: Vec<(&str, u64, u64)> = Vec::new();
    layout.for_each_extent(&mut |d, o, s| extents.push((d, o, s)));
    if extents.len() > MAX_LAYOUT_EXTENTS {
        return Err(too_many_extents());
    }
    let block = u64::from(block_size);
    for &(device, offset_bytes, size_bytes) in &extents {
        let file = devices
            .get(device)
            .ok_or_else(|| ControlError::not_found("device", device))?;
        let at = format!("extent of device '{device}' at offset {offset_bytes}");
        if let Some(pool) = config.pool_of_device(device) {
            return Err(ControlError::Conflict(format!(
                "{at}: device '{device}' belongs to pool '{}' (a pool's devices hold thin segments only)",
                pool.name
            )));
        }
        if size_bytes == 0 {
            return Err(ControlError::InvalidParams(format!(
                "{at}: size_bytes is 0"
            )));
        }
        let device_block = u64::from(file.logical_block_bytes);
        if device_block > block {
            return Err(ControlError::Conflict(format!(
                "volume block size {block_size} is smaller than the logical block size {device_block} of device '{device}'"
            )));
        }
        if offset_bytes % block != 0 || size_bytes % block != 0 {
            return Err(ControlError::Conflict(format!(
                "{at}: offset and size ({size_bytes}) must be multiples of the volume block size {block_size}"
            )));
        }
        if device_block != 0 && (offset_bytes % device_block != 0 || size_bytes % device_block != 0)
        {
            return Err(ControlError::Conflict(format!(
                "{at}: offset and size ({size_bytes}) must be multiples of the logical block size {device_block} of device '{device}'"
            )));
        }
        let end_bytes = offset_bytes.checked_add(size_bytes);
        if end_bytes.is_none_or(|end| end > file.size_bytes) {
            return Err(ControlError::Conflict(format!(
                "{at}: size {size_bytes} goes beyond the end of device '{device}' ({} bytes)",
                file.size_bytes
            )));
        }
    }
    check_overlaps(name, &extents, &config.volumes)?;
    Ok(total_bytes)
}

struct Shape<'a> {
    block: u64,
    config: &'a Config,
    ids: HashSet<NodeId>,
}

impl Shape<'_> {
    fn node_id(&mut self, id: NodeId) -> Result<(), ControlError> {
        if id == 0 || !self.ids.insert(id) {
            return Err(ControlError::InvalidParams(format!(
                "layout node id {id} is 0 or used twice"
            )));
        }
        Ok(())
    }

    fn members(
        &mut self,
        kind: &str,
        members: Vec<&LayoutConfig>,
        depth: usize,
    ) -> Result<Vec<u64>, ControlError> {
        if members.is_empty() {
            return Err(ControlError::InvalidParams(format!(
                "{kind} needs at least one member"
            )));
        }
        if members.len() > MAX_LAYOUT_EXTENTS {
            return Err(too_many_extents());
        }
        members.iter().map(|m| self.check(m, depth + 1)).collect()
    }

    /// Check the node at `depth` and return its size.
    fn check(&mut self, layout: &LayoutConfig, depth: usize) -> Result<u64, ControlError> {
        if depth > MAX_LAYOUT_DEPTH {
            return Err(too_deep());
        }
        let overflow = || ControlError::InvalidParams("volume size exceeds 2^64 bytes".to_string());
        match layout {
            LayoutConfig::Linear { size_bytes, .. } => Ok(*size_bytes),
            LayoutConfig::Concat(members) => self
                .members("concat", members.iter().collect(), depth)?
                .into_iter()
                .try_fold(0u64, |total, size| total.checked_add(size))
                .ok_or_else(overflow),
            LayoutConfig::Stripe {
                unit_bytes,
                members,
            } => {
                if *unit_bytes == 0 || unit_bytes % self.block != 0 {
                    return Err(ControlError::InvalidParams(format!(
                        "stripe unit_bytes {unit_bytes} must be a non-zero multiple of the volume block size {}",
                        self.block
                    )));
                }
                let sizes = self.members("stripe", members.iter().collect(), depth)?;
                let smallest = sizes.iter().copied().min().unwrap_or(0);
                if let Some(index) = sizes.iter().position(|&size| size < *unit_bytes) {
                    return Err(ControlError::InvalidParams(format!(
                        "stripe member {index} ({} bytes) is smaller than one unit of {unit_bytes} bytes",
                        sizes[index]
                    )));
                }
                (smallest / unit_bytes)
                    .checked_mul(*unit_bytes)
                    .and_then(|per_member| per_member.checked_mul(sizes.len() as u64))
                    .ok_or_else(overflow)
            }
            LayoutConfig::Mirror { id, legs, .. } => {
                self.node_id(*id)?;
                if legs.len() > MAX_MIRROR_LEGS {
                    return Err(ControlError::InvalidParams(format!(
                        "a mirror has at most {MAX_MIRROR_LEGS} legs"
                    )));
                }
                let sizes = self.members("mirror", layout.members(), depth)?;
                if let Some(index) = sizes.iter().position(|&size| size != sizes[0]) {
                    return Err(ControlError::InvalidParams(format!(
                        "mirror legs must have the same size: leg 0 has {} bytes, leg {index} has {}",
                        sizes[0], sizes[index]
                    )));
                }
                for (index, leg) in legs.iter().enumerate() {
                    if let LegHealthConfig::Resyncing { up_to_bytes } = leg.health {
                        if up_to_bytes > sizes[0] {
                            return Err(ControlError::InvalidParams(format!(
                                "mirror leg {index} is resynced up to {up_to_bytes}, beyond its {} bytes",
                                sizes[0]
                            )));
                        }
                    }
                }
                Ok(sizes[0])
            }
            LayoutConfig::Thin {
                id,
                pool,
                size_bytes,
                table,
            } => {
                self.node_id(*id)?;
                let config = self
                    .config
                    .pool(pool)
                    .ok_or_else(|| ControlError::not_found("pool", pool))?;
                if *size_bytes == 0 || size_bytes % self.block != 0 {
                    return Err(ControlError::InvalidParams(format!(
                        "thin size_bytes {size_bytes} must be a non-zero multiple of the volume block size {}",
                        self.block
                    )));
                }
                let segments = SegmentTable::entries_for(*size_bytes, config.segment_bytes);
                if table.segment_bytes != config.segment_bytes
                    || segments != Some(table.entries.len())
                {
                    return Err(ControlError::Conflict(format!(
                        "the segment table of a thin node of pool '{pool}' has {} segments of {} bytes; the pool has {}-byte segments and the node {size_bytes} bytes",
                        table.entries.len(),
                        table.segment_bytes,
                        config.segment_bytes
                    )));
                }
                Ok(*size_bytes)
            }
        }
    }
}

fn check_overlaps(
    name: &str,
    extents: &[(&str, u64, u64)],
    others: &[VolumeConfig],
) -> Result<(), ControlError> {
    let mut placed: Vec<Placed<'_>> = Vec::new();
    for other in others.iter().filter(|v| v.name != name) {
        other.layout.for_each_extent(&mut |device, offset, size| {
            placed.push(Placed {
                device,
                start_bytes: offset,
                end_bytes: offset.saturating_add(size),
                volume: &other.name,
            })
        });
    }
    for (index, &(device, offset_bytes, size_bytes)) in extents.iter().enumerate() {
        let end_bytes = offset_bytes.saturating_add(size_bytes);
        let overlaps = |p: &Placed<'_>| {
            p.device == device && p.start_bytes < end_bytes && offset_bytes < p.end_bytes
        };
        if let Some(hit) = placed.iter().find(|p| overlaps(p)) {
            return Err(ControlError::Conflict(format!(
                "extent of device '{device}' at offset {offset_bytes} overlaps volume '{}' ({}..{})",
                hit.volume, hit.start_bytes, hit.end_bytes
            )));
        }
        let earlier = extents[..index]
            .iter()
            .any(|&(d, o, s)| d == device && o < end_bytes && offset_bytes < o.saturating_add(s));
        if earlier {
            return Err(ControlError::Conflict(format!(
                "extent of device '{device}' at offset {offset_bytes} overlaps another extent of the same volume"
            )));
        }
    }
    Ok(())
}
