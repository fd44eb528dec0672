//! Ready-made setups: a lunard exporting one linear volume over a backing store as LUN 0 of one
//! target, configured through the JSON-RPC methods a user would call.

use serde_json::{json, Value};
use tempfile::TempDir;

use crate::backing::{Backing, SparseFile};
use crate::daemon::{DaemonOptions, Lunard};

/// A fresh, empty state directory for one lunard.
pub fn state_dir() -> TempDir {
    tempfile::Builder::new()
        .prefix("lunar-state-")
        .tempdir()
        .expect("create a temporary state directory")
}

/// A lunard in a fresh state directory with devices named as given, each over a sparse file
/// of the given length. Returns the daemon, its state directory and the files (keep them as
/// long as the daemon runs).
pub fn start_with_devices(devices: &[(&str, u64)]) -> (Lunard, TempDir, Vec<(String, SparseFile)>) {
    let state = state_dir();
    let daemon = Lunard::start(state.path());
    let mut files = Vec::new();
    for &(name, len_bytes) in devices {
        let file = SparseFile::create(len_bytes);
        let path = file.path().to_string_lossy().into_owned();
        daemon.call("device_add", json!({"name": name, "path": path}));
        files.push((name.to_string(), file));
    }
    (daemon, state, files)
}

/// What to export: device, volume and target names, and the extent of the device used.
#[derive(Debug, Clone)]
pub struct VolumeSpec {
    /// Name for `device_add`.
    pub device: String,
    /// Name for `volume_create`.
    pub volume: String,
    /// Target name for `target_create`; the volume is its LUN 0.
    pub iqn: String,
    /// Start of the extent on the device.
    pub offset_bytes: u64,
    /// Length of the extent (the volume's size).
    pub size_bytes: u64,
    /// Volume block size; `None` leaves the daemon's default.
    pub block_size: Option<u32>,
}

impl VolumeSpec {
    /// A volume over all of a `len_bytes` store, exported as `iqn.2026-11.dev.lunar.test:<tag>`.
    pub fn whole(tag: &str, len_bytes: u64) -> VolumeSpec {
        VolumeSpec {
            device: format!("{tag}-dev"),
            volume: format!("{tag}-vol"),
            iqn: format!("iqn.2026-11.dev.lunar.test:{tag}"),
            offset_bytes: 0,
            size_bytes: len_bytes,
            block_size: None,
        }
    }

    /// The `volume_create` parameters.
    pub fn volume_params(&self) -> Value {
        let mut params = json!({
            "name": self.volume,
            "layout": {"linear": {
                "device": self.device,
                "offset_bytes": self.offset_bytes,
                "size_bytes": self.size_bytes,
            }},
        });
        if let Some(block_size) = self.block_size {
            params["block_size"] = json!(block_size);
        }
        params
    }

    /// The `target_create` parameters (the volume as LUN 0, writable).
    pub fn target_params(&self) -> Value {
        json!({"iqn": self.iqn, "luns": [{"lun": 0, "volume": self.volume, "read_only": false}]})
    }
}

/// Adds the device, creates the volume and the target on `daemon`; panics (with lunard's
/// stderr) if any call fails.
pub fn configure(daemon: &Lunard, backing: &Backing, spec: &VolumeSpec) {
    let path = backing.path().to_string_lossy().into_owned();
    daemon.call("device_add", json!({"name": spec.device, "path": path}));
    daemon.call("volume_create", spec.volume_params());
    daemon.call("target_create", spec.target_params());
}

/// A lunard exporting one volume. Fields drop in order: the daemon stops before its backing
/// store is detached and its state directory removed.
pub struct Export {
    /// The daemon.
    pub daemon: Lunard,
    /// The store under the volume.
    pub backing: Backing,
    /// What was exported.
    pub spec: VolumeSpec,
    /// The daemon's state directory (kept across restarts).
    pub state: TempDir,
}

impl Export {
    /// Starts lunard in a fresh state directory and exports `spec` over `backing`.
    pub fn start(backing: Backing, spec: VolumeSpec) -> Export {
        Export::start_with(backing, spec, &DaemonOptions::default())
    }

    /// Like [`Export::start`], with lunard started with `options`.
    pub fn start_with(backing: Backing, spec: VolumeSpec, options: &DaemonOptions) -> Export {
        let state = state_dir();
        let daemon = Lunard::start_with(state.path(), options);
        configure(&daemon, &backing, &spec);
        Export {
            daemon,
            backing,
            spec,
            state,
        }
    }

    /// A volume over all of `backing`, exported as `iqn.2026-11.dev.lunar.test:<tag>`.
    pub fn whole(backing: Backing, tag: &str) -> Export {
        let spec = VolumeSpec::whole(tag, backing.len_bytes());
        Export::start(backing, spec)
    }

    /// The libiscsi URL of LUN 0.
    pub fn url(&self) -> String {
        self.daemon.url(&self.spec.iqn, 0)
    }

    /// `message` with lunard's output appended.
    pub fn failure(&self, message: &str) -> String {
        self.daemon
            .failure(&format!("{message} [{}]", self.backing.describe()))
    }
}
