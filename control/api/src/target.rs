//! Types of the `target_*` methods: iSCSI targets and their logical units.

use serde::{Deserialize, Serialize};

/// LUN numbers must be below this (flat and peripheral addressing, SAM-5).
pub const LUN_LIMIT: u64 = 16384;

/// One logical unit of a target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LunSpec {
    pub lun: u64,
    /// Volume name.
    pub volume: String,
    #[serde(default)]
    pub read_only: bool,
}

/// `target_create`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetCreateParams {
    /// iSCSI name (`iqn.`, `eui.` or `naa.` format). Stored in normalised (lowercase) form.
    pub iqn: String,
    pub luns: Vec<LunSpec>,
}

/// `target_delete`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetDeleteParams {
    pub iqn: String,
}

/// One target, as returned by `target_create` and `target_list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetInfo {
    pub iqn: String,
    pub luns: Vec<LunSpec>,
}

/// `target_list` result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetListResult {
    pub targets: Vec<TargetInfo>,
}
