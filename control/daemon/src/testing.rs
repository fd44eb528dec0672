//! Test doubles for the control logic: a device opener with made-up devices, a data plane
//! that records what it was given (snapshots, portals, answers to its requests), and a store
//! that keeps configurations in memory and can be told to fail.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use lunar_reactor::{
    BackendError, BackendFile, BackendKind, ChapAuth, PortalError, PublishError, RangeLocks,
    ReactorLoadStats, ReactorRequest, RequestId, Snapshot, VolumeStats,
};
use lunar_scsi::{ReservationState, ScsiReply};
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

/// A `BackendFile` over a sparse temporary file of `size_bytes` that reads and writes for real.
pub fn file_device(size_bytes: u64) -> BackendFile {
    let file = tempfile::tempfile().expect("temporary file");
    file.set_len(size_bytes).expect("set_len");
    BackendFile {
        fd: OwnedFd::from(file),
        path: PathBuf::from("/tmp/lunar-test-device"),
        kind: BackendKind::File,
        size_bytes,
        logical_block_bytes: 512,
        direct: false,
    }
}

/// A `BackendFile` whose writes fail (a sparse temporary file opened read-only).
pub fn read_only_device(size_bytes: u64) -> BackendFile {
    let file = tempfile::NamedTempFile::new().expect("temporary file");
    file.as_file().set_len(size_bytes).expect("set_len");
    let read_only = std::fs::File::open(file.path()).expect("reopen read-only");
    BackendFile {
        fd: OwnedFd::from(read_only),
        path: PathBuf::from("/tmp/lunar-test-read-only-device"),
        kind: BackendKind::File,
        size_bytes,
        logical_block_bytes: 512,
        direct: false,
    }
}

/// Opens only the paths it was given, with their `(size_bytes, logical_block_bytes)`. Each path
/// is a sparse temporary file, made at its first opening and shared by later ones (and by the
/// opener's clones), so bytes written through one opening are read through the next.
#[derive(Debug, Clone, Default)]
pub struct FakeOpener {
    pub devices: HashMap<PathBuf, (u64, u32)>,
    files: Arc<Mutex<HashMap<PathBuf, std::fs::File>>>,
}

impl FakeOpener {
    pub fn with(devices: &[(&str, u64, u32)]) -> FakeOpener {
        FakeOpener {
            devices: devices
                .iter()
                .map(|&(path, size, block)| (PathBuf::from(path), (size, block)))
                .collect(),
            files: Arc::default(),
        }
    }
}

impl DeviceOpener for FakeOpener {
    fn open(&self, path: &Path) -> Result<BackendFile, BackendError> {
        let Some(&(size_bytes, logical_block_bytes)) = self.devices.get(path) else {
            return Err(BackendError::Open {
                path: path.to_path_buf(),
                source: io::Error::from(io::ErrorKind::NotFound),
            });
        };
        let open_error = |source: io::Error| BackendError::Open {
            path: path.to_path_buf(),
            source,
        };
        let mut files = self.files.lock().unwrap_or_else(|e| e.into_inner());
        let file = match files.get(path) {
            Some(file) => file.try_clone().map_err(open_error)?,
            None => {
                let file = tempfile::tempfile().map_err(open_error)?;
                file.set_len(size_bytes).map_err(open_error)?;
                files.insert(path.to_path_buf(), file.try_clone().map_err(open_error)?);
                file
            }
        };
        Ok(BackendFile {
            fd: OwnedFd::from(file),
            path: path.to_path_buf(),
            kind: BackendKind::File,
            size_bytes,
            logical_block_bytes,
            direct: true,
        })
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
    /// The logical unit's shared state (reservations).
    pub reservations: ReservationState,
    /// Regions marked written while a mirror leg is out.
    pub dirty_regions: Option<lunar_reactor::DirtyRegions>,
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
    /// `(iqn, allowed initiators, CHAP)` of each target, in table order.
    pub access: Vec<(String, Vec<String>, Option<ChapAuth>)>,
    pub discovery_chap: Option<ChapAuth>,
}

/// The address the fake data plane serves first (the `--listen` address).
pub const FAKE_LISTEN: &str = "127.0.0.1:3260";
/// First port the fake data plane picks for a port 0 portal.
pub const FAKE_FIRST_FREE_PORT: u16 = 40000;

#[derive(Debug)]
pub struct PlaneState {
    pub published: Vec<Published>,
    /// Generations found drained, in order.
    pub drained: Vec<u64>,
    /// Commands pinned on this generation are still in flight: no newer generation has
    /// drained (`None`: everything drains at once).
    pub in_flight_on: Option<u64>,
    /// After this many more drain queries that found `in_flight_on` pinned, those commands
    /// complete.
    pub completes_after_queries: Option<u32>,
    pub fail_publish: bool,
    pub stats: Vec<VolumeStats>,
    pub reactor_load: Vec<ReactorLoadStats>,
    pub shut_down: bool,
    /// Portals served, the listen address first.
    pub portals: Vec<SocketAddr>,
    /// Addresses `add_portal` cannot bind.
    pub unbindable: Vec<SocketAddr>,
    /// Port the next port 0 portal gets.
    pub next_free_port: u16,
    /// Requests handed out by the next `poll`.
    pub requests: Vec<ReactorRequest>,
    /// Every answer given, in order.
    pub answers: Vec<(RequestId, ScsiReply)>,
    /// `abort_tasks` calls: volume uid and initiator ports.
    pub aborted: Vec<(u64, Vec<String>)>,
    /// Range locks handed out, by volume uid.
    pub range_locks: HashMap<u64, Arc<RangeLocks>>,
}

impl Default for PlaneState {
    fn default() -> PlaneState {
        PlaneState {
            published: Vec::new(),
            drained: Vec::new(),
            in_flight_on: None,
            completes_after_queries: None,
            fail_publish: false,
            stats: Vec::new(),
            reactor_load: Vec::new(),
            shut_down: false,
            portals: vec![FAKE_LISTEN.parse().expect("listen address")],
            unbindable: Vec::new(),
            next_free_port: FAKE_FIRST_FREE_PORT,
            requests: Vec::new(),
            answers: Vec::new(),
            aborted: Vec::new(),
            range_locks: HashMap::new(),
        }
    }
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
                    reservations: (*v.reservations).clone(),
                    dirty_regions: v.dirty_regions.as_deref().cloned(),
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
            access: snapshot
                .targets
                .iter()
                .map(|t| (t.iqn.clone(), t.allowed_initiators.clone(), t.chap.clone()))
                .collect(),
            discovery_chap: snapshot.discovery_chap.clone(),
        });
        Ok(generation)
    }

    fn wait_drained(&mut self, generation: u64) -> Result<(), PublishError> {
        if self.is_drained(generation) {
            Ok(())
        } else {
            Err(PublishError::NotAcknowledged(0, generation))
        }
    }

    fn is_drained(&mut self, generation: u64) -> bool {
        let mut state = self.state();
        if let Some(pinned) = state.in_flight_on {
            if generation > pinned {
                match &mut state.completes_after_queries {
                    Some(0) => {
                        state.in_flight_on = None;
                        state.completes_after_queries = None;
                    }
                    Some(left) => {
                        *left -= 1;
                        return false;
                    }
                    None => return false,
                }
            }
        }
        state.drained.push(generation);
        true
    }

    fn range_locks(&self, volume_uid: u64) -> Option<Arc<RangeLocks>> {
        Some(
            self.state()
                .range_locks
                .entry(volume_uid)
                .or_default()
                .clone(),
        )
    }

    fn stats(&mut self) -> Vec<VolumeStats> {
        self.state().stats.clone()
    }

    fn reactor_load(&mut self) -> Vec<ReactorLoadStats> {
        self.state().reactor_load.clone()
    }

    fn portals(&self) -> Vec<SocketAddr> {
        self.state().portals.clone()
    }

    fn add_portal(&mut self, addr: SocketAddr) -> Result<SocketAddr, PortalError> {
        let mut state = self.state();
        if state.unbindable.contains(&addr) {
            return Err(PortalError::Listen {
                addr,
                source: io::Error::from(io::ErrorKind::AddrNotAvailable),
            });
        }
        let mut bound = addr;
        if bound.port() == 0 {
            bound.set_port(state.next_free_port);
            state.next_free_port += 1;
        }
        if state.portals.contains(&bound) {
            return Err(PortalError::Exists(bound));
        }
        state.portals.push(bound);
        Ok(bound)
    }

    fn remove_portal(&mut self, addr: SocketAddr) -> Result<(), PortalError> {
        let mut state = self.state();
        if !state.portals.contains(&addr) {
            return Err(PortalError::NotFound(addr));
        }
        if state.portals.len() == 1 {
            return Err(PortalError::Last(addr));
        }
        state.portals.retain(|p| *p != addr);
        Ok(())
    }

    fn poll(&mut self) -> Vec<ReactorRequest> {
        std::mem::take(&mut self.state().requests)
    }

    fn answer(&mut self, id: RequestId, reply: ScsiReply) {
        self.state().answers.push((id, reply));
    }

    fn abort_tasks(
        &mut self,
        volume_uid: u64,
        initiator_ports: &[String],
    ) -> Result<(), PublishError> {
        self.state()
            .aborted
            .push((volume_uid, initiator_ports.to_vec()));
        Ok(())
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
        ("/dev/pool4m", 4 << 20, 512),
        ("/dev/pool256k", 256 << 10, 512),
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
