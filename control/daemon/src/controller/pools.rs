//! `pool_create`, `pool_list`, `pool_delete`: pools of whole devices that thin nodes allocate
//! segments from. A pool's device holds no linear extent, and belongs to one pool only.

use lunar_api::pool::{
    PoolCreateParams, PoolDeleteParams, PoolInfo, PoolListResult, DEFAULT_SEGMENT_BYTES,
    MAX_SEGMENT_BYTES, MIN_SEGMENT_BYTES,
};
use lunar_api::Empty;

use super::Controller;
use crate::config::{Config, PoolConfig};
use crate::error::ControlError;
use crate::layout::Devices;
use crate::names::check_object_name;
use crate::thin::PoolLedger;

/// Most devices in one pool.
pub const MAX_POOL_DEVICES: usize = 256;

/// Rules a new pool obeys given the configuration before it.
pub(super) fn check_new_pool(
    config: &Config,
    devices: &Devices,
    pool: &PoolConfig,
) -> Result<(), ControlError> {
    check_object_name("pool", &pool.name).map_err(ControlError::InvalidParams)?;
    if config.pool(&pool.name).is_some() {
        return Err(ControlError::already_exists("pool", &pool.name));
    }
    let segment_bytes = pool.segment_bytes;
    if !segment_bytes.is_power_of_two()
        || !(MIN_SEGMENT_BYTES..=MAX_SEGMENT_BYTES).contains(&segment_bytes)
    {
        return Err(ControlError::InvalidParams(format!(
            "segment_bytes {segment_bytes} must be a power of two from {MIN_SEGMENT_BYTES} to {MAX_SEGMENT_BYTES}"
        )));
    }
    if pool.devices.is_empty() {
        return Err(ControlError::InvalidParams(
            "a pool needs at least one device".to_string(),
        ));
    }
    if pool.devices.len() > MAX_POOL_DEVICES {
        return Err(ControlError::InvalidParams(format!(
            "a pool has at most {MAX_POOL_DEVICES} devices"
        )));
    }
    for (index, name) in pool.devices.iter().enumerate() {
        if pool.devices[..index].contains(name) {
            return Err(ControlError::InvalidParams(format!(
                "device '{name}' is listed twice"
            )));
        }
        if config.device(name).is_none() {
            return Err(ControlError::not_found("device", name));
        }
        let file = devices
            .get(name)
            .ok_or_else(|| ControlError::Internal(format!("device '{name}' is not open")))?;
        if let Some(other) = config.pool_of_device(name) {
            return Err(ControlError::in_use(
                "device",
                name,
                "used by",
                "pool",
                std::slice::from_ref(&other.name),
            ));
        }
        let mut users = config.volumes_using_device(name);
        if !users.is_empty() {
            users.sort();
            return Err(ControlError::in_use(
                "device", name, "used by", "volume", &users,
            ));
        }
        if file.size_bytes < segment_bytes {
            return Err(ControlError::Conflict(format!(
                "device '{name}' ({} bytes) is smaller than one {segment_bytes}-byte segment",
                file.size_bytes
            )));
        }
        if u64::from(file.logical_block_bytes) > segment_bytes {
            return Err(ControlError::Conflict(format!(
                "device '{name}' has {}-byte blocks, larger than the {segment_bytes}-byte segments",
                file.logical_block_bytes
            )));
        }
    }
    Ok(())
}

/// The ledger of a new pool: every slot free.
fn new_ledger(config: &Config, devices: &Devices, pool: &PoolConfig) -> PoolLedger {
    let slots: Vec<(u32, u64)> = pool
        .devices
        .iter()
        .filter_map(|name| {
            let id = config.device(name)?.id;
            let size = devices.get(name)?.size_bytes;
            Some((id, size))
        })
        .collect();
    PoolLedger::new(pool.segment_bytes, &slots)
}

impl Controller {
    fn pool_info(&self, pool: &PoolConfig) -> PoolInfo {
        let mut used_by = self.config.volumes_using_pool(&pool.name);
        used_by.sort();
        let segment_bytes = pool.segment_bytes;
        let bytes = |slots: u64| slots.saturating_mul(segment_bytes);
        let ledger = self.ledgers.get(&pool.name);
        PoolInfo {
            name: pool.name.clone(),
            devices: pool.devices.clone(),
            segment_bytes,
            size_bytes: bytes(ledger.map_or(0, PoolLedger::total_slots)),
            free_bytes: bytes(ledger.map_or(0, PoolLedger::free_slots)),
            allocated_bytes: bytes(ledger.map_or(0, PoolLedger::held_slots)),
            releasing_bytes: bytes(ledger.map_or(0, PoolLedger::releasing_slots)),
            used_by,
        }
    }

    pub fn pool_create(&mut self, params: PoolCreateParams) -> Result<PoolInfo, ControlError> {
        let pool = PoolConfig {
            name: params.name,
            devices: params.devices,
            segment_bytes: params.segment_bytes.unwrap_or(DEFAULT_SEGMENT_BYTES),
        };
        check_new_pool(&self.config, &self.devices, &pool)?;
        let mut config = self.config.clone();
        config.pools.push(pool.clone());
        let devices = self.devices.clone();
        self.commit(config, devices)?;
        let ledger = new_ledger(&self.config, &self.devices, &pool);
        self.ledgers.insert(&pool.name, ledger);
        Ok(self.pool_info(&pool))
    }

    pub fn pool_list(&mut self, _params: Empty) -> Result<PoolListResult, ControlError> {
        self.release_drained_slots();
        let mut pools: Vec<PoolInfo> = self
            .config
            .pools
            .iter()
            .map(|p| self.pool_info(p))
            .collect();
        pools.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(PoolListResult { pools })
    }

    pub fn pool_delete(&mut self, params: PoolDeleteParams) -> Result<Empty, ControlError> {
        let name = params.name;
        if self.config.pool(&name).is_none() {
            return Err(ControlError::not_found("pool", &name));
        }
        let mut users = self.config.volumes_using_pool(&name);
        if !users.is_empty() {
            users.sort();
            return Err(ControlError::in_use(
                "pool", &name, "used by", "volume", &users,
            ));
        }
        let mut config = self.config.clone();
        config.pools.retain(|p| p.name != name);
        let devices = self.devices.clone();
        self.commit(config, devices)?;
        self.ledgers.remove(&name);
        Ok(Empty {})
    }
}
