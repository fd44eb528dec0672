//! Types of the `portal_*` methods: the addresses lunard accepts iSCSI connections on.

use serde::{Deserialize, Serialize};

/// `portal_add`: serve iSCSI on one more address (`ip:port`, IPv6 as `[addr]:port`; port 0
/// picks a free port). Saved, and served again after a restart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortalAddParams {
    pub address: String,
}

/// `portal_remove`: stop accepting on a portal (connections already there stay). Removing the
/// last portal served is refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortalRemoveParams {
    pub address: String,
}

/// One portal, as returned by `portal_add` and `portal_list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortalInfo {
    /// `ip:port` as bound (a port 0 request shows the port picked).
    pub address: String,
    /// lunard accepts connections on it now. A saved portal that could not be bound at start
    /// is listed with `false` until it is added again or removed.
    pub listening: bool,
    /// Saved in the state file (`false` for the `--listen` address, which comes from the
    /// command line at every start).
    pub persistent: bool,
}

/// `portal_list` result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortalListResult {
    pub portals: Vec<PortalInfo>,
}
