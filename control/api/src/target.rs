//! Types of the `target_*` methods: iSCSI targets and their logical units.

use serde::{Deserialize, Serialize};

use crate::auth::{present_or_null, ChapCredentials, ChapInfo};

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
    /// Exported as removable medium (INQUIRY RMB=1): START STOP UNIT can eject and load it and
    /// PREVENT ALLOW MEDIUM REMOVAL holds it, as a virtual tape or optical drive would.
    #[serde(default)]
    pub removable: bool,
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

/// `target_auth_set`: the CHAP credentials initiators must prove to log in to a target.
/// `chap` must be given: `null` turns authentication off. `mutual_chap` (optional, needs
/// `chap`) is what the target proves to the initiator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetAuthSetParams {
    pub iqn: String,
    #[serde(deserialize_with = "present_or_null")]
    pub chap: Option<ChapCredentials>,
    #[serde(default)]
    pub mutual_chap: Option<ChapCredentials>,
}

/// Most initiator names one target's access list holds.
pub const MAX_ACL_INITIATORS: usize = 1024;

/// `target_acl_set`: the initiators allowed to discover and log in to a target (iSCSI names,
/// stored normalised). An empty list allows every initiator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetAclSetParams {
    pub iqn: String,
    pub initiators: Vec<String>,
}

/// One target, as returned by `target_create`, `target_list`, `target_auth_set` and
/// `target_acl_set`. Secrets are never returned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetInfo {
    pub iqn: String,
    pub luns: Vec<LunSpec>,
    /// Initiators allowed to see and log in to the target; empty: every initiator.
    #[serde(default)]
    pub initiators: Vec<String>,
    /// CHAP initiators must pass (`null`: none).
    #[serde(default)]
    pub chap: Option<ChapInfo>,
    /// Mutual CHAP: what the target proves to initiators (`null`: none).
    #[serde(default)]
    pub mutual_chap: Option<ChapInfo>,
}

/// `target_list` result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetListResult {
    pub targets: Vec<TargetInfo>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn auth_set_needs_chap_even_if_null() {
        let off: TargetAuthSetParams =
            serde_json::from_value(json!({"iqn": "iqn.2026-11.a.b", "chap": null})).expect("off");
        assert_eq!((off.chap, off.mutual_chap), (None, None));
        let missing =
            serde_json::from_value::<TargetAuthSetParams>(json!({"iqn": "iqn.2026-11.a.b"}))
                .expect_err("missing");
        assert!(
            missing.to_string().contains("missing field `chap`"),
            "{missing}"
        );
    }

    #[test]
    fn target_info_from_older_daemons_reads() {
        let info: TargetInfo = serde_json::from_value(
            json!({"iqn": "iqn.t", "luns": [{"lun": 0, "volume": "v", "read_only": false}]}),
        )
        .expect("old form");
        assert!(info.initiators.is_empty());
        assert_eq!((info.chap, info.mutual_chap), (None, None));
    }
}
