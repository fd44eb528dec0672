//! The setup every `ALL.*` suite runs against, and which URLs each suite gets:
//!
//! - a lunard with a writable 1 GiB volume (a sparse file, like the demo's) as LUN 0 of one
//!   target, for every suite (destructive tests included);
//! - a read-only volume as LUN 0 of a second target, for `ALL.ReadOnly`;
//! - a second portal (`portal_add`) for `ALL.MultipathIO`, whose second path then goes
//!   through another address. A lunard without `portal_add` gets one path only: the suite
//!   skips its multipath tests, and [`ConformanceRig::multipath_note`] says so.
//!
//! [`Targets`] maps suites to URLs for any target, this rig or one given on a command line.

use serde_json::json;
use tempfile::TempDir;

use crate::backing::Backing;
use crate::daemon::Lunard;
use crate::fixture::{configure, state_dir, VolumeSpec};
use crate::libiscsi::iscsi_url;
use crate::rpc::{code, RpcError};

/// Size of the writable volume (sparse: only what the tests write is allocated).
pub const WRITABLE_LEN_BYTES: u64 = 1 << 30;
/// Size of the read-only volume.
pub const READ_ONLY_LEN_BYTES: u64 = 64 << 20;
/// The writable target.
pub const WRITABLE_IQN: &str = "iqn.2026-11.dev.lunar.test:conformance";
/// The target whose LUN 0 is read-only.
pub const READ_ONLY_IQN: &str = "iqn.2026-11.dev.lunar.test:conformance-ro";
/// The suite that needs a read-only LUN.
pub const READ_ONLY_SUITE: &str = "ALL.ReadOnly";
/// The target whose LUN 0 is removable medium.
pub const REMOVABLE_IQN: &str = "iqn.2026-11.dev.lunar.test:conformance-removable";
/// The suites about removable medium (they skip themselves on a fixed disk).
pub const REMOVABLE_SUITES: [&str; 3] = ["ALL.PreventAllow", "ALL.StartStopUnit", "ALL.NoMedia"];
/// Size of the removable LUN (after the read-only one on the backing file).
pub const REMOVABLE_LEN_BYTES: u64 = 64 << 20;
/// The suite that needs a second path to the same LUN.
pub const MULTIPATH_SUITE: &str = "ALL.MultipathIO";

/// Where the suites go: the main URL, and the special ones if there are any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Targets {
    /// The writable LUN.
    pub url: String,
    /// A read-only LUN for `ALL.ReadOnly`; without it the suite runs against `url`.
    pub read_only_url: Option<String>,
    /// The writable LUN through another portal for `ALL.MultipathIO`; without it the suite
    /// gets `url` only.
    pub multipath_url: Option<String>,
    /// A removable-medium LUN for [`REMOVABLE_SUITES`]; without it they run against `url`.
    pub removable_url: Option<String>,
}

impl Targets {
    /// The URLs to give `iscsi-test-cu` for `suite`.
    pub fn urls_for(&self, suite: &str) -> Vec<String> {
        match (suite, &self.read_only_url, &self.multipath_url) {
            (READ_ONLY_SUITE, Some(read_only), _) => vec![read_only.clone()],
            (MULTIPATH_SUITE, _, Some(second)) => vec![self.url.clone(), second.clone()],
            _ => match &self.removable_url {
                Some(removable) if REMOVABLE_SUITES.contains(&suite) => vec![removable.clone()],
                _ => vec![self.url.clone()],
            },
        }
    }

    /// What the special suites got, one line each, for the report.
    pub fn notes(&self) -> Vec<String> {
        let read_only = match &self.read_only_url {
            Some(url) => format!("{READ_ONLY_SUITE}: read-only LUN {url}"),
            None => format!(
                "{READ_ONLY_SUITE}: no read-only LUN given, run against the writable one \
                 (its write-protect tests skip themselves)"
            ),
        };
        let multipath = match &self.multipath_url {
            Some(url) => format!("{MULTIPATH_SUITE}: second path {url}"),
            None => format!(
                "{MULTIPATH_SUITE}: one path only (no second portal), its multipath tests \
                 skip themselves"
            ),
        };
        let removable = match &self.removable_url {
            Some(url) => format!(
                "{}: removable-medium LUN {url}",
                REMOVABLE_SUITES.join(", ")
            ),
            None => format!(
                "{}: no removable LUN, run against the fixed disk (their medium tests skip \
                 themselves)",
                REMOVABLE_SUITES.join(", ")
            ),
        };
        vec![read_only, multipath, removable]
    }
}

/// A lunard set up for the whole conformance run. Fields drop in order: the daemon stops
/// before its backing file and state directory go.
pub struct ConformanceRig {
    /// The daemon.
    pub daemon: Lunard,
    /// Where each suite goes.
    pub targets: Targets,
    /// Why `ALL.MultipathIO` has one path only, if it has.
    pub multipath_note: Option<String>,
    _backing: Backing,
    _state: TempDir,
}

impl ConformanceRig {
    /// Starts lunard and configures it; the error says what failed, with lunard's output.
    pub fn start() -> Result<ConformanceRig, String> {
        let state = state_dir();
        let backing =
            Backing::sparse_file(WRITABLE_LEN_BYTES + READ_ONLY_LEN_BYTES + REMOVABLE_LEN_BYTES);
        let daemon = Lunard::try_start(state.path(), &Default::default())?;
        let writable = VolumeSpec {
            device: "conformance-dev".to_string(),
            volume: "conformance-rw".to_string(),
            iqn: WRITABLE_IQN.to_string(),
            offset_bytes: 0,
            size_bytes: WRITABLE_LEN_BYTES,
            block_size: None,
        };
        configure(&daemon, &backing, &writable);
        let read_only_volume = "conformance-ro";
        let calls = [
            (
                "volume_create",
                json!({"name": read_only_volume, "layout": {"linear": {
                    "device": writable.device,
                    "offset_bytes": WRITABLE_LEN_BYTES,
                    "size_bytes": READ_ONLY_LEN_BYTES,
                }}}),
            ),
            (
                "target_create",
                json!({"iqn": READ_ONLY_IQN,
                       "luns": [{"lun": 0, "volume": read_only_volume, "read_only": true}]}),
            ),
            (
                "volume_create",
                json!({"name": "conformance-removable", "layout": {"linear": {
                    "device": writable.device,
                    "offset_bytes": WRITABLE_LEN_BYTES + READ_ONLY_LEN_BYTES,
                    "size_bytes": REMOVABLE_LEN_BYTES,
                }}}),
            ),
            (
                "target_create",
                json!({"iqn": REMOVABLE_IQN,
                       "luns": [{"lun": 0, "volume": "conformance-removable", "removable": true}]}),
            ),
        ];
        for (method, params) in calls {
            daemon
                .try_call(method, params.clone())
                .map_err(|err| daemon.failure(&format!("RPC {method} {params}: {err}")))?;
        }
        let (multipath_url, multipath_note) = match second_portal(&daemon) {
            Ok(portal) => (Some(iscsi_url(&portal, WRITABLE_IQN, 0)), None),
            Err(note) => (None, Some(note)),
        };
        let targets = Targets {
            url: daemon.url(WRITABLE_IQN, 0),
            read_only_url: Some(daemon.url(READ_ONLY_IQN, 0)),
            multipath_url,
            removable_url: Some(daemon.url(REMOVABLE_IQN, 0)),
        };
        Ok(ConformanceRig {
            daemon,
            targets,
            multipath_note,
            _backing: backing,
            _state: state,
        })
    }
}

/// Adds a portal on another loopback port; `Err` explains why there is none.
fn second_portal(daemon: &Lunard) -> Result<String, String> {
    match daemon.try_call("portal_add", json!({"address": "127.0.0.1:0"})) {
        Ok(portal) => portal
            .get("address")
            .and_then(|address| address.as_str())
            .map(str::to_string)
            .ok_or_else(|| format!("portal_add answered without an address: {portal}")),
        Err(err @ RpcError::Remote { .. }) if err.code() == Some(code::METHOD_NOT_FOUND) => {
            Err("lunard has no portal_add method yet".to_string())
        }
        Err(err) => Err(format!("portal_add failed: {err}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn targets(read_only: bool, multipath: bool) -> Targets {
        Targets {
            url: "iscsi://a/t/0".to_string(),
            read_only_url: read_only.then(|| "iscsi://a/ro/0".to_string()),
            multipath_url: multipath.then(|| "iscsi://b/t/0".to_string()),
            removable_url: multipath.then(|| "iscsi://a/rm/0".to_string()),
        }
    }

    #[test]
    fn special_suites_get_their_urls() {
        let all = targets(true, true);
        assert_eq!(all.urls_for("ALL.Read10"), vec!["iscsi://a/t/0"]);
        assert_eq!(all.urls_for(READ_ONLY_SUITE), vec!["iscsi://a/ro/0"]);
        assert_eq!(
            all.urls_for(MULTIPATH_SUITE),
            vec!["iscsi://a/t/0", "iscsi://b/t/0"]
        );
        let plain = targets(false, false);
        assert_eq!(plain.urls_for(READ_ONLY_SUITE), vec!["iscsi://a/t/0"]);
        assert_eq!(plain.urls_for(MULTIPATH_SUITE), vec!["iscsi://a/t/0"]);
        assert!(plain.notes()[1].contains("one path only"));
        assert!(all.notes()[1].contains("iscsi://b/t/0"));
        assert_eq!(all.urls_for("ALL.PreventAllow"), vec!["iscsi://a/rm/0"]);
        assert_eq!(plain.urls_for("ALL.PreventAllow"), vec!["iscsi://a/t/0"]);
    }
}
