//! lunar-api: the JSON-RPC 2.0 interface of `lunard`, shared by the daemon, `lunarctl` and any
//! other client.
//!
//! One module per subsystem holds the parameter and result types of its methods
//! (`<object>_<verb>`); [`rpc`] holds the envelope, the error codes and the framing bound, and
//! [`client`] a small blocking client over the daemon's unix socket.
//!
//! Schema rules: parameters reject unknown fields (a typo is an error, not a silent default);
//! results may grow new fields in later versions, so readers must ignore fields they do not
//! know. [`API_VERSION`] changes only when an existing field changes meaning or disappears.

pub mod auth;
pub mod client;
pub mod daemon;
pub mod device;
pub mod mirror;
pub mod pool;
pub mod portal;
pub mod rpc;
pub mod stats;
pub mod target;
pub mod task;
pub mod volume;

pub use client::{Client, ClientError};
pub use rpc::{code, RpcError, MAX_REQUEST_LINE_BYTES};

/// Version of the method schemas in this crate (reported by `daemon_info`).
pub const API_VERSION: u32 = 1;

/// Method names, one constant per method.
pub mod method {
    pub const DEVICE_ADD: &str = "device_add";
    pub const DEVICE_LIST: &str = "device_list";
    pub const DEVICE_REMOVE: &str = "device_remove";
    pub const VOLUME_CREATE: &str = "volume_create";
    pub const VOLUME_LIST: &str = "volume_list";
    pub const VOLUME_DELETE: &str = "volume_delete";
    pub const VOLUME_SNAPSHOT_CREATE: &str = "volume_snapshot_create";
    pub const VOLUME_CLONE_CREATE: &str = "volume_clone_create";
    pub const VOLUME_RESIZE: &str = "volume_resize";
    pub const POOL_CREATE: &str = "pool_create";
    pub const POOL_LIST: &str = "pool_list";
    pub const POOL_DELETE: &str = "pool_delete";
    pub const TARGET_CREATE: &str = "target_create";
    pub const TARGET_LIST: &str = "target_list";
    pub const TARGET_DELETE: &str = "target_delete";
    pub const TARGET_AUTH_SET: &str = "target_auth_set";
    pub const TARGET_ACL_SET: &str = "target_acl_set";
    pub const DISCOVERY_AUTH_SET: &str = "discovery_auth_set";
    pub const DISCOVERY_AUTH_GET: &str = "discovery_auth_get";
    pub const PORTAL_ADD: &str = "portal_add";
    pub const PORTAL_REMOVE: &str = "portal_remove";
    pub const PORTAL_LIST: &str = "portal_list";
    pub const STATS_GET: &str = "stats_get";
    pub const DAEMON_INFO: &str = "daemon_info";
    pub const MIRROR_LEG_ADD: &str = "mirror_leg_add";
    pub const MIRROR_LEG_REMOVE: &str = "mirror_leg_remove";
    pub const MIRROR_LEG_REJOIN: &str = "mirror_leg_rejoin";
    pub const VOLUME_MIGRATE: &str = "volume_migrate";
    pub const TASK_GET: &str = "task_get";
    pub const TASK_LIST: &str = "task_list";

    /// Every method the daemon serves.
    pub const ALL: &[&str] = &[
        DEVICE_ADD,
        DEVICE_LIST,
        DEVICE_REMOVE,
        VOLUME_CREATE,
        VOLUME_LIST,
        VOLUME_DELETE,
        VOLUME_SNAPSHOT_CREATE,
        VOLUME_CLONE_CREATE,
        VOLUME_RESIZE,
        POOL_CREATE,
        POOL_LIST,
        POOL_DELETE,
        TARGET_CREATE,
        TARGET_LIST,
        TARGET_DELETE,
        TARGET_AUTH_SET,
        TARGET_ACL_SET,
        DISCOVERY_AUTH_SET,
        DISCOVERY_AUTH_GET,
        PORTAL_ADD,
        PORTAL_REMOVE,
        PORTAL_LIST,
        STATS_GET,
        DAEMON_INFO,
        MIRROR_LEG_ADD,
        MIRROR_LEG_REMOVE,
        MIRROR_LEG_REJOIN,
        VOLUME_MIGRATE,
        TASK_GET,
        TASK_LIST,
    ];
}

/// Result of methods that return nothing but success (`device_remove`, `volume_delete`,
/// `pool_delete`, `target_delete`, `portal_remove`), and the parameters of methods that take none
/// (`device_list`, ...).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Empty {}
