//! The immutable, generation-numbered table the control thread publishes to every reactor.

use std::sync::Arc;

use lunar_volume::VolumeMap;

use crate::backend::BackendFile;

/// Everything a reactor needs to serve I/O. Immutable once published; reactors pin it per
/// command with an `Arc` clone.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Set by `DataPlane::publish`; strictly increasing.
    pub generation: u64,
    /// Indexed by `lunar_volume::layout::DeviceId`.
    pub devices: Vec<Option<Arc<BackendFile>>>,
    pub volumes: Vec<VolumeEntry>,
    pub targets: Vec<TargetEntry>,
}

#[derive(Debug, Clone)]
pub struct VolumeEntry {
    pub name: String,
    /// Stable identifier (NAA designator, serial number).
    pub uid: u64,
    pub block_size: u32,
    pub map: VolumeMap,
}

#[derive(Debug, Clone)]
pub struct TargetEntry {
    pub iqn: String,
    pub luns: Vec<LunEntry>,
}

#[derive(Debug, Clone)]
pub struct LunEntry {
    pub lun: u64,
    /// Index into `Snapshot::volumes`.
    pub volume: usize,
    pub read_only: bool,
}
