//! Types of the `pool_*` methods: pools of whole devices that thin volumes, snapshots and clones
//! allocate fixed-size segments from.

use serde::{Deserialize, Serialize};

/// Segment size of a pool created without `segment_bytes`.
pub const DEFAULT_SEGMENT_BYTES: u64 = 1 << 20;
/// Smallest segment size (and the unit every segment size is a multiple of).
pub const MIN_SEGMENT_BYTES: u64 = 4096;
/// Largest segment size (a copy-on-write copies one segment).
pub const MAX_SEGMENT_BYTES: u64 = 64 << 20;

/// `pool_create`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolCreateParams {
    /// 1-64 characters from `A-Z a-z 0-9 . _ -`, starting with a letter or digit.
    pub name: String,
    /// Devices the pool owns whole (no volume extent may be on them).
    pub devices: Vec<String>,
    /// A power of two from 4096 to 64 MiB (default 1 MiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment_bytes: Option<u64>,
}

/// `pool_delete` (refused while a volume allocates from the pool).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolDeleteParams {
    pub name: String,
}

/// One pool, as returned by `pool_create` and `pool_list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolInfo {
    pub name: String,
    pub devices: Vec<String>,
    pub segment_bytes: u64,
    /// Whole segments of every device.
    pub size_bytes: u64,
    /// Segments no volume holds.
    pub free_bytes: u64,
    /// Segments some volume holds (a segment shared by snapshots counts once).
    pub allocated_bytes: u64,
    /// Segments released by their volumes but still reachable by writes in flight; they become
    /// free once those complete.
    #[serde(default)]
    pub releasing_bytes: u64,
    /// Volumes allocating from the pool.
    #[serde(default)]
    pub used_by: Vec<String>,
}

/// `pool_list` result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolListResult {
    pub pools: Vec<PoolInfo>,
}
