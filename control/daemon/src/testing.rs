//! Test doubles for the control logic: a device opener with made-up devices, a publisher
//! that records what it was given, and a store that keeps configurations in memory and can be
//! told to fail.

use std::collections::HashMap;
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use lunar_reactor::{BackendError, BackendFile, BackendKind, PublishError, Snapshot, VolumeStats};
use lunar_volume::layout::Layout;

use crate::config::Config;
use crate::controller::{About, Controller, Parts};
use crate::layout::Devices;
use crate::plane::{DeviceOpener, Publisher};
use crate::store::{Persist, StoreError};

/// A `BackendFile` over /dev/null claiming the given geometry.
pub fn fake_device(path: &str, size_bytes: u64, logical_block_bytes: u32) -> BackendFile {
    let file = std::fs::File::open("/dev/null").expect("open /dev/null");
    BackendFile {
        fd: OwnedFd::from(file),
        path: PathBuf::from(path),
        kind: BackendKind::File,
        size_bytes,
        logical_block_bytes,
        direct: true,
    }
}

/// Opens only the paths it was given, with their `(size_bytes, logical_block_bytes)`.
#[derive(Debug, Clone, Default)]
pub struct FakeOpener {
    pub devices: HashMap<PathBuf, (u64, u32)>,
}

impl FakeOpener {
    pub fn with(devices: &[(&str, u64, u32)]) -> FakeOpener {
        FakeOpener {
            devices: devices
                .iter()
                .map(|&(path, size, block)| (PathBuf::from(path), (size, block)))
                .collect(),
        }
    }
}

impl DeviceOpener for FakeOpener {
    fn open(&self, path: &Path) -> Result<BackendFile, BackendError> {
        match self.devices.get(path) {
            Some(&(size, block)) => Ok(fake_device(&path.display().to_string(), size, block)),
            None => Err(BackendError::Open {
                path: path.to_path_buf(),
                source: io::Error::from(io::ErrorKind::NotFound),
            }),
        }
    }
}

/// A published volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedVolume {
    pub name: String,
    pub uid: u64,
    pub block_size: u32,
    pub layout: Layout,
    /// Size of the compiled map.
    pub size_bytes: u64,
}

/// `(lun, volume index, read_only)`.
pub type PublishedLun = (u64, usize, bool);

/// What a published snapshot contained, in comparable form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub generation: u64,
    pub devices: Vec<Option<PathBuf>>,
    pub volumes: Vec<PublishedVolume>,
    /// `(iqn, [(lun, volume index, read_only)])`.
    pub targets: Vec<(String, Vec<PublishedLun>)>,
}

#[derive(Debug, Default)]
pub struct PlaneState {
    pub published: Vec<Published>,
    pub drained: Vec<u64>,
    pub fail_publish: bool,
    pub stats: Vec<VolumeStats>,
    pub shut_down: bool,
}

/// A publisher recording every snapshot; clones share the record.
#[derive(Debug, Clone, Default)]
pub struct FakePlane {
    state: Arc<Mutex<PlaneState>>,
}

impl FakePlane {
    pub fn state(&self) -> MutexGuard<'_, PlaneState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn last(&self) -> Published {
        self.state()
            .published
            .last()
            .cloned()
            .expect("something published")
    }
}

impl Publisher for FakePlane {
    fn publish(&mut self, snapshot: Snapshot) -> Result<u64, PublishError> {
        let mut state = self.state();
        let generation = state.published.len() as u64 + 1;
        if state.fail_publish {
            return Err(PublishError::NotAcknowledged(0, generation));
        }
        state.published.push(Published {
            generation,
            devices: snapshot
                .devices
                .iter()
                .map(|d| d.as_ref().map(|f| f.path.clone()))
                .collect(),
            volumes: snapshot
                .volumes
                .iter()
                .map(|v| PublishedVolume {
                    name: v.name.clone(),
                    uid: v.uid,
                    block_size: v.block_size,
                    layout: v.map.root.clone(),
                    size_bytes: v.map.size_bytes,
                })
                .collect(),
            targets: snapshot
                .targets
                .iter()
                .map(|t| {
                    (
                        t.iqn.clone(),
                        t.luns
                            .iter()
                            .map(|l| (l.lun, l.volume, l.read_only))
                            .collect(),
                    )
                })
                .collect(),
        });
        Ok(generation)
    }

    fn wait_drained(&mut self, generation: u64) -> Result<(), PublishError> {
        self.state().drained.push(generation);
        Ok(())
    }

    fn stats(&mut self) -> Vec<VolumeStats> {
        self.state().stats.clone()
    }

    fn shutdown(self: Box<Self>) {
        self.state().shut_down = true;
    }
}

#[derive(Debug, Default)]
pub struct StoreState {
    pub saved: Vec<Config>,
    pub fail: bool,
}

/// A store in memory; clones share the record.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    state: Arc<Mutex<StoreState>>,
}

impl MemoryStore {
    pub fn state(&self) -> MutexGuard<'_, StoreState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Persist for MemoryStore {
    fn save(&mut self, config: &Config) -> Result<(), StoreError> {
        let mut state = self.state();
        if state.fail {
            return Err(StoreError::Io {
                op: "write",
                path: PathBuf::from("/state/state.json.tmp"),
                source: io::Error::from(io::ErrorKind::StorageFull),
            });
        }
        state.saved.push(config.clone());
        Ok(())
    }
}

/// The devices every controller test can add.
pub fn standard_opener() -> FakeOpener {
    FakeOpener::with(&[
        ("/dev/disk1", 1 << 30, 512),
        ("/dev/disk2", 1 << 30, 512),
        ("/dev/disk4k", 1 << 30, 4096),
    ])
}

/// A controller over an empty configuration with fakes.
pub fn controller() -> (Controller, FakePlane, MemoryStore) {
    let plane = FakePlane::default();
    let store = MemoryStore::default();
    let controller = Controller::new(
        Config::default(),
        Devices::new(),
        Parts {
            opener: Box::new(standard_opener()),
            publisher: Box::new(plane.clone()),
            store: Box::new(store.clone()),
            about: About {
                iscsi_listen: "127.0.0.1:3260".into(),
                rpc_socket: "/tmp/lunard.sock".into(),
                state_dir: "/tmp".into(),
                cores: vec![0],
                poll_mode: "adaptive".into(),
            },
        },
    )
    .expect("controller");
    (controller, plane, store)
}
