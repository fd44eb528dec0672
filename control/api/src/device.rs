//! Types of the `device_*` methods: backing block devices and files.

use serde::{Deserialize, Serialize};

/// `device_add`: open a backing block device or file and give it a name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceAddParams {
    /// 1-64 characters from `A-Z a-z 0-9 . _ -`, starting with a letter or digit.
    pub name: String,
    /// Absolute path of the block device or file.
    pub path: String,
}

/// `device_remove`: forget a device (refused while a volume uses it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceRemoveParams {
    pub name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceKind {
    Block,
    File,
}

/// One device, as returned by `device_add` and `device_list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceInfo {
    pub name: String,
    pub path: String,
    pub kind: DeviceKind,
    pub size_bytes: u64,
    /// Logical block size of the device.
    pub block_size: u32,
    /// Opened with O_DIRECT.
    pub direct: bool,
    /// Volumes with at least one extent on this device.
    #[serde(default)]
    pub used_by: Vec<String>,
    /// The pool the device belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<String>,
}

/// `device_list` result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceListResult {
    pub devices: Vec<DeviceInfo>,
}
