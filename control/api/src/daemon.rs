//! Types of the `daemon_info` method.

use serde::{Deserialize, Serialize};

/// `daemon_info` result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaemonInfo {
    /// Version of lunard.
    pub version: String,
    /// [`crate::API_VERSION`] of the daemon.
    pub api_version: u32,
    /// iSCSI portal, `ip:port`.
    pub iscsi_listen: String,
    pub rpc_socket: String,
    pub state_dir: String,
    /// Generation of the table the reactors currently serve.
    pub generation: u64,
    /// CPU ids the reactors are pinned to.
    pub cores: Vec<usize>,
    /// `busy` or `adaptive`.
    pub poll_mode: String,
}
