//! Volume layouts on the control path: resolving a requested [`LayoutSpec`] into a stored
//! [`LayoutConfig`] (sizes filled in, mirror and thin nodes numbered, thin tables made),
//! checking it against the devices, the pools and the other volumes ([`check`]), showing it
//! back as the API's tree, and compiling it into the data plane's [`Layout`].

mod check;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::Arc;

use lunar_api::volume::{
    LayoutSpec, LegHealthInfo, LinearSpec, MirrorSpec, ReadPolicySpec, StripeSpec, ThinSpec,
    VOLUME_BLOCK_SIZES,
};
use lunar_reactor::BackendFile;
use lunar_volume::layout::{DeviceId, Layout, LegHealth, MirrorLeg, NodeId, ReadPolicy};
use lunar_volume::{Location, SegmentTable};

use crate::config::{
    LayoutConfig, LegConfig, LegHealthConfig, PoolConfig, ReadPolicyConfig, ThinTable,
};
use crate::error::ControlError;

pub use check::check_layout;

/// Open devices by name.
pub type Devices = BTreeMap<String, Arc<BackendFile>>;

/// Deepest layout tree accepted (a lone linear extent is depth 1).
pub const MAX_LAYOUT_DEPTH: usize = 8;
/// Most linear extents in one volume (and most members of one node).
pub const MAX_LAYOUT_EXTENTS: usize = 1024;

/// Check a volume block size given by a client.
pub fn check_block_size(block_size: u32) -> Result<(), ControlError> {
    if VOLUME_BLOCK_SIZES.contains(&block_size) {
        Ok(())
    } else {
        Err(ControlError::InvalidParams(format!(
            "block_size {block_size} is not supported: use 512 or 4096"
        )))
    }
}

/// Fill in what the client left out (offsets default to 0 in the spec already; a missing size
/// is the rest of the device rounded down to `block_size`), number the mirror and thin nodes
/// from 1, and give each thin node an all-Zero table in its pool's segments.
pub fn resolve(
    spec: &LayoutSpec,
    block_size: u32,
    devices: &Devices,
    pools: &[PoolConfig],
) -> Result<LayoutConfig, ControlError> {
    resolve_avoiding(spec, block_size, devices, pools, &[])
}

/// [`resolve`], numbering nodes above every id in `taken` (a layout added to an existing
/// volume's tree).
pub fn resolve_avoiding(
    spec: &LayoutSpec,
    block_size: u32,
    devices: &Devices,
    pools: &[PoolConfig],
    taken: &[NodeId],
) -> Result<LayoutConfig, ControlError> {
    let mut resolver = Resolver {
        block_size,
        devices,
        pools,
        next_id: taken.iter().copied().max().unwrap_or(0).saturating_add(1),
    };
    resolver.resolve(spec, 1)
}

struct Resolver<'a> {
    block_size: u32,
    devices: &'a Devices,
    pools: &'a [PoolConfig],
    next_id: NodeId,
}

impl Resolver<'_> {
    fn new_id(&mut self) -> Result<NodeId, ControlError> {
        let id = self.next_id;
        self.next_id = id
            .checked_add(1)
            .ok_or_else(|| ControlError::InvalidParams("layout has too many nodes".to_string()))?;
        Ok(id)
    }

    fn members(
        &mut self,
        kind: &str,
        specs: &[LayoutSpec],
        depth: usize,
    ) -> Result<Vec<LayoutConfig>, ControlError> {
        if specs.is_empty() {
            return Err(ControlError::InvalidParams(format!(
                "{kind} needs at least one member"
            )));
        }
        if specs.len() > MAX_LAYOUT_EXTENTS {
            return Err(too_many_extents());
        }
        specs.iter().map(|m| self.resolve(m, depth + 1)).collect()
    }

    fn resolve(&mut self, spec: &LayoutSpec, depth: usize) -> Result<LayoutConfig, ControlError> {
        if depth > MAX_LAYOUT_DEPTH {
            return Err(too_deep());
        }
        match spec {
            LayoutSpec::Linear(linear) => self.linear(linear),
            LayoutSpec::Concat(members) => Ok(LayoutConfig::Concat(
                self.members("concat", members, depth)?,
            )),
            LayoutSpec::Stripe(StripeSpec {
                unit_bytes,
                members,
            }) => Ok(LayoutConfig::Stripe {
                unit_bytes: *unit_bytes,
                members: self.members("stripe", members, depth)?,
            }),
            LayoutSpec::Mirror(MirrorSpec {
                legs,
                read_policy,
                health,
            }) => {
                if !health.is_empty() {
                    return Err(ControlError::InvalidParams(
                        "mirror 'health' is reported by volume_list, not set: leave it out"
                            .to_string(),
                    ));
                }
                let id = self.new_id()?;
                let legs = self
                    .members("mirror", legs, depth)?
                    .into_iter()
                    .map(|layout| LegConfig {
                        layout,
                        health: LegHealthConfig::Healthy,
                        stale: false,
                    })
                    .collect();
                Ok(LayoutConfig::Mirror {
                    id,
                    read_policy: match read_policy {
                        None | Some(ReadPolicySpec::RoundRobin) => ReadPolicyConfig::RoundRobin,
                        Some(ReadPolicySpec::LeastOutstanding) => {
                            ReadPolicyConfig::LeastOutstanding
                        }
                    },
                    legs,
                })
            }
            LayoutSpec::Thin(thin) => self.thin(thin),
        }
    }

    fn linear(&self, spec: &LinearSpec) -> Result<LayoutConfig, ControlError> {
        let LinearSpec {
            device,
            offset_bytes,
            size_bytes,
        } = spec;
        let file = self
            .devices
            .get(device)
            .ok_or_else(|| ControlError::not_found("device", device))?;
        let block_size = self.block_size;
        let size_bytes = match size_bytes {
            Some(size) => *size,
            None => {
                let rest = file.size_bytes.checked_sub(*offset_bytes).ok_or_else(|| {
                    ControlError::Conflict(format!(
                        "offset {offset_bytes} is beyond the end of device '{device}' ({} bytes)",
                        file.size_bytes
                    ))
                })?;
                let whole = rest / u64::from(block_size) * u64::from(block_size);
                if whole == 0 {
                    return Err(ControlError::Conflict(format!(
                        "device '{device}' has no whole {block_size}-byte block after offset {offset_bytes}"
                    )));
                }
                whole
            }
        };
        Ok(LayoutConfig::Linear {
            device: device.clone(),
            offset_bytes: *offset_bytes,
            size_bytes,
        })
    }

    fn thin(&mut self, spec: &ThinSpec) -> Result<LayoutConfig, ControlError> {
        let ThinSpec {
            pool,
            size_bytes,
            segment_bytes,
            allocated_bytes,
            shared_bytes,
        } = spec;
        if segment_bytes.is_some() || allocated_bytes.is_some() || shared_bytes.is_some() {
            return Err(ControlError::InvalidParams(
                "thin 'segment_bytes', 'allocated_bytes' and 'shared_bytes' are reported by volume_list, not set: give only 'pool' and 'size_bytes'"
                    .to_string(),
            ));
        }
        let config = self
            .pools
            .iter()
            .find(|p| &p.name == pool)
            .ok_or_else(|| ControlError::not_found("pool", pool))?;
        let segments = SegmentTable::entries_for(*size_bytes, config.segment_bytes)
            .ok_or_else(|| ControlError::Internal(format!("pool '{pool}' has 0-byte segments")))?;
        Ok(LayoutConfig::Thin {
            id: self.new_id()?,
            pool: pool.clone(),
            size_bytes: *size_bytes,
            table: ThinTable::all_zero(config.segment_bytes, segments),
        })
    }
}

fn too_deep() -> ControlError {
    ControlError::InvalidParams(format!(
        "layout is nested more than {MAX_LAYOUT_DEPTH} levels deep"
    ))
}

fn too_many_extents() -> ControlError {
    ControlError::InvalidParams(format!("layout has more than {MAX_LAYOUT_EXTENTS} extents"))
}

/// The references to each pool slot, as [`to_spec`] needs them to tell shared segments.
pub type SlotRefs<'a> = &'a dyn Fn(&str, Location) -> u32;

/// The stored layout as the API shows it: sizes, leg health, and for thin nodes the segment
/// size, the bytes with pool space and the bytes shared with another volume (`refs` gives the
/// references to a slot of a pool).
pub fn to_spec(layout: &LayoutConfig, refs: SlotRefs<'_>) -> LayoutSpec {
    match layout {
        LayoutConfig::Linear {
            device,
            offset_bytes,
            size_bytes,
        } => LayoutSpec::Linear(LinearSpec {
            device: device.clone(),
            offset_bytes: *offset_bytes,
            size_bytes: Some(*size_bytes),
        }),
        LayoutConfig::Concat(members) => {
            LayoutSpec::Concat(members.iter().map(|m| to_spec(m, refs)).collect())
        }
        LayoutConfig::Stripe {
            unit_bytes,
            members,
        } => LayoutSpec::Stripe(StripeSpec {
            unit_bytes: *unit_bytes,
            members: members.iter().map(|m| to_spec(m, refs)).collect(),
        }),
        LayoutConfig::Mirror {
            read_policy, legs, ..
        } => LayoutSpec::Mirror(MirrorSpec {
            legs: legs.iter().map(|leg| to_spec(&leg.layout, refs)).collect(),
            read_policy: Some(match read_policy {
                ReadPolicyConfig::RoundRobin => ReadPolicySpec::RoundRobin,
                ReadPolicyConfig::LeastOutstanding => ReadPolicySpec::LeastOutstanding,
            }),
            health: legs
                .iter()
                .map(|leg| health_info(leg.health, leg.layout.size_bytes()))
                .collect(),
        }),
        LayoutConfig::Thin {
            pool,
            size_bytes,
            table,
            ..
        } => {
            let shared = table
                .located()
                .filter(|&(_, location, _)| refs(pool, location) > 1)
                .count() as u64;
            LayoutSpec::Thin(ThinSpec {
                pool: pool.clone(),
                size_bytes: *size_bytes,
                segment_bytes: Some(table.segment_bytes),
                allocated_bytes: Some(table.located_count().saturating_mul(table.segment_bytes)),
                shared_bytes: Some(shared.saturating_mul(table.segment_bytes)),
            })
        }
    }
}

fn health_info(health: LegHealthConfig, leg_bytes: u64) -> LegHealthInfo {
    match health {
        LegHealthConfig::Healthy => LegHealthInfo::Healthy,
        LegHealthConfig::Faulty => LegHealthInfo::Faulty,
        LegHealthConfig::Resyncing { up_to_bytes } => LegHealthInfo::Resyncing {
            resynced_bytes: up_to_bytes,
            percent: u128::from(up_to_bytes)
                .saturating_mul(100)
                .checked_div(u128::from(leg_bytes))
                .map_or(0, |p| p.min(100) as u8),
        },
    }
}

/// Compile the stored layout into the data plane's tree, devices by id.
pub fn to_layout(
    layout: &LayoutConfig,
    device_id: &dyn Fn(&str) -> Option<DeviceId>,
) -> Result<Layout, ControlError> {
    let members = |members: &[LayoutConfig]| {
        members
            .iter()
            .map(|m| to_layout(m, device_id))
            .collect::<Result<Vec<_>, _>>()
    };
    match layout {
        LayoutConfig::Linear {
            device,
            offset_bytes,
            size_bytes,
        } => Ok(Layout::Linear {
            device: device_id(device).ok_or_else(|| {
                ControlError::Internal(format!("layout names unknown device '{device}'"))
            })?,
            offset_bytes: *offset_bytes,
            size_bytes: *size_bytes,
        }),
        LayoutConfig::Concat(children) => Ok(Layout::Concat(members(children)?)),
        LayoutConfig::Stripe {
            unit_bytes,
            members: children,
        } => Ok(Layout::Stripe {
            unit_bytes: *unit_bytes,
            members: members(children)?,
        }),
        LayoutConfig::Mirror {
            id,
            read_policy,
            legs,
        } => Ok(Layout::Mirror {
            id: *id,
            read_policy: match read_policy {
                ReadPolicyConfig::RoundRobin => ReadPolicy::RoundRobin,
                ReadPolicyConfig::LeastOutstanding => ReadPolicy::LeastOutstanding,
            },
            legs: legs
                .iter()
                .map(|leg| {
                    Ok(MirrorLeg {
                        layout: to_layout(&leg.layout, device_id)?,
                        health: match leg.health {
                            LegHealthConfig::Healthy => LegHealth::Healthy,
                            LegHealthConfig::Faulty => LegHealth::Faulty,
                            LegHealthConfig::Resyncing { up_to_bytes } => {
                                LegHealth::Resyncing { up_to_bytes }
                            }
                        },
                    })
                })
                .collect::<Result<Vec<_>, ControlError>>()?,
        }),
        LayoutConfig::Thin {
            id,
            size_bytes,
            table,
            ..
        } => Ok(Layout::Segmented {
            id: *id,
            size_bytes: *size_bytes,
            segment_bytes: table.segment_bytes,
            entries: table.entries.clone(),
        }),
    }
}
