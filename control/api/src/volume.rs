//! Types of the `volume_*` methods: virtual volumes built from extents of devices.

use serde::{Deserialize, Serialize};

/// Block sizes a volume may have.
pub const VOLUME_BLOCK_SIZES: [u32; 2] = [512, 4096];
/// Block size of a volume created without `block_size`.
pub const DEFAULT_VOLUME_BLOCK_SIZE: u32 = 512;

/// Layout tree of a volume: `{"linear": {...}}` or `{"concat": [LAYOUT, ...]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum LayoutSpec {
    /// A contiguous extent of one device.
    Linear(LinearSpec),
    /// Members one after the other.
    Concat(Vec<LayoutSpec>),
}

/// An extent of one device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinearSpec {
    /// Device name.
    pub device: String,
    /// Start of the extent on the device (default 0).
    #[serde(default)]
    pub offset_bytes: u64,
    /// Length of the extent. When absent at creation: the rest of the device from
    /// `offset_bytes`, rounded down to the volume block size. Always present in results.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<u64>,
}

/// `volume_create`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VolumeCreateParams {
    /// 1-64 characters from `A-Z a-z 0-9 . _ -`, starting with a letter or digit.
    pub name: String,
    pub layout: LayoutSpec,
    /// 512 or 4096 (default 512).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_size: Option<u32>,
}

/// `volume_delete` (refused while a target exports the volume).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VolumeDeleteParams {
    pub name: String,
}

/// One volume, as returned by `volume_create` and `volume_list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeInfo {
    pub name: String,
    /// Stable 64-bit identifier (16 lowercase hex digits), the base of the SCSI identifiers.
    pub uid: String,
    pub size_bytes: u64,
    pub block_size: u32,
    /// The layout with every size resolved.
    pub layout: LayoutSpec,
    /// Targets exporting this volume.
    #[serde(default)]
    pub exported_by: Vec<String>,
}

/// `volume_list` result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeListResult {
    pub volumes: Vec<VolumeInfo>,
}
