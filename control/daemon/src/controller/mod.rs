//! The control logic: owns the configuration, the open devices, the pools' slot ledgers and the
//! data plane handle, and executes one request at a time: validate -> build the new
//! configuration -> build its snapshot -> persist -> publish -> answer. A request that fails at
//! any step changes nothing.

mod access;
mod allocation;
mod deallocate;
mod devices;
mod drain;
mod extents;
mod faults;
mod mirrors;
mod pools;
mod portals;
mod requests;
mod reservations;
mod resize;
mod segments;
mod snapshot;
mod targets;
mod tasks;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_access;
#[cfg(test)]
mod tests_mirrors;
#[cfg(test)]
mod tests_pools;
#[cfg(test)]
mod tests_portals;
#[cfg(test)]
mod tests_requests;
#[cfg(test)]
mod tests_resize;
#[cfg(test)]
mod tests_snapshots;
#[cfg(test)]
mod tests_thin;
#[cfg(test)]
mod tests_thin_model;
mod volume_snapshots;
mod volumes;

use std::sync::Arc;
use std::time::Duration;

use lunar_api::daemon::DaemonInfo;
use lunar_api::stats::{ReactorLoadInfo, StatsGetParams, StatsGetResult, VolumeStatsInfo};
use lunar_api::API_VERSION;

use crate::config::Config;
use crate::error::ControlError;
use crate::layout::Devices;
use crate::plane::{DeviceOpener, Publisher};
use crate::store::Persist;
use crate::thin::Ledgers;

pub use devices::MAX_DEVICES;
pub use drain::DRAIN_TIMEOUT;
pub use requests::SharedCommand;
pub use reservations::{encode_saved, restore_reservations, Reservations};
pub use snapshot::build_snapshot;

/// Facts about the running daemon reported by `daemon_info`.
#[derive(Debug, Clone, Default)]
pub struct About {
    pub iscsi_listen: String,
    pub rpc_socket: String,
    pub state_dir: String,
    pub cores: Vec<usize>,
    pub poll_mode: String,
}

/// Everything the control logic drives.
pub struct Parts {
    pub opener: Box<dyn DeviceOpener>,
    pub publisher: Box<dyn Publisher>,
    pub store: Box<dyn Persist>,
    pub about: About,
}

pub struct Controller {
    config: Config,
    devices: Devices,
    opener: Box<dyn DeviceOpener>,
    publisher: Box<dyn Publisher>,
    store: Box<dyn Persist>,
    about: About,
    generation: u64,
    /// Reservation state of each volume's logical unit (see `reservations`).
    reservations: Reservations,
    /// Which pool slots are free, held or being released (derived from the tables).
    ledgers: Ledgers,
    /// Requests from the data plane that wait for something before they are served.
    deferred: Vec<requests::Deferred>,
    /// While a snapshot is being taken: its origin's writes wait for the drain.
    fence: Option<volume_snapshots::Fence>,
    /// How long to wait for commands on older generations to complete.
    drain_timeout: Duration,
    /// The background copying of resyncs and migrations.
    tasks: tasks::TaskRunner,
    /// Per volume uid: the generation from which its mirror legs have their current numbers
    /// (a leg failure reported on an older plan names a leg by its old number).
    legs_renumbered: std::collections::HashMap<u64, u64>,
}

/// Open every device of a restored configuration. A device that cannot be opened is an error
/// naming it: lunard refuses to start rather than serve volumes with missing extents.
pub fn open_devices(config: &Config, opener: &dyn DeviceOpener) -> Result<Devices, ControlError> {
    let mut devices = Devices::new();
    for device in &config.devices {
        let file = opener.open(&device.path).map_err(|e| {
            ControlError::Device(format!(
                "cannot open device '{}': {e}; make it available (or remove it from the state file) and restart",
                device.name
            ))
        })?;
        devices.insert(device.name.clone(), Arc::new(file));
    }
    Ok(devices)
}

/// Check a whole configuration (one read from disk) with the same rules requests obey, by
/// replaying it object by object.
pub fn check_config(config: &Config, devices: &Devices) -> Result<(), ControlError> {
    let mut so_far = Config::default();
    for device in &config.devices {
        devices::check_new_device(&so_far, device)?;
        if !devices.contains_key(&device.name) {
            return Err(ControlError::Internal(format!(
                "device '{}' is not open",
                device.name
            )));
        }
        so_far.devices.push(device.clone());
    }
    for pool in &config.pools {
        pools::check_new_pool(&so_far, devices, pool)?;
        so_far.pools.push(pool.clone());
    }
    for volume in &config.volumes {
        volumes::check_new_volume(&so_far, devices, volume)?;
        so_far.volumes.push(volume.clone());
    }
    restore_reservations(config)?;
    for target in &config.targets {
        targets::check_new_target(&so_far, target)?;
        so_far.targets.push(target.clone());
    }
    access::check_discovery(config)?;
    portals::check_portals(config)?;
    Ledgers::derive(config, devices).map(|_| ())
}

impl Controller {
    /// Take over a checked configuration and its open devices, publish it, and serve its
    /// saved portals.
    pub fn new(config: Config, devices: Devices, parts: Parts) -> Result<Controller, ControlError> {
        check_config(&config, &devices)?;
        let ledgers = Ledgers::derive(&config, &devices)?;
        let reservations = restore_reservations(&config)?;
        let snapshot = build_snapshot(&config, &devices, &reservations)?;
        let mut publisher = parts.publisher;
        let generation = publisher.publish(snapshot).map_err(ControlError::Publish)?;
        let mut controller = Controller {
            config,
            devices,
            opener: parts.opener,
            publisher,
            store: parts.store,
            about: parts.about,
            generation,
            reservations,
            ledgers,
            deferred: Vec::new(),
            fence: None,
            drain_timeout: DRAIN_TIMEOUT,
            tasks: tasks::TaskRunner::default(),
            legs_renumbered: std::collections::HashMap::new(),
        };
        controller.restore_portals();
        Ok(controller)
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Generation of the table the reactors serve.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Set the iSCSI address reported by `daemon_info`.
    pub fn about_mut(&mut self) -> &mut About {
        &mut self.about
    }

    /// Stop the data plane.
    pub fn shutdown(self) {
        self.publisher.shutdown();
    }

    /// Make `config` (with `devices` open) the running configuration: snapshot, persist,
    /// publish. On error nothing changed (a publish failure restores the saved file).
    fn commit(&mut self, config: Config, devices: Devices) -> Result<u64, ControlError> {
        let reservations = self.reservations.clone();
        self.install(config, devices, reservations, true)
    }

    /// [`Controller::commit`] with new reservation states too; the configuration is saved
    /// only when `save` (changes that are not durable are only published).
    fn install(
        &mut self,
        config: Config,
        devices: Devices,
        mut reservations: Reservations,
        save: bool,
    ) -> Result<u64, ControlError> {
        reservations.retain(|uid, _| config.volumes.iter().any(|v| v.uid.0 == *uid));
        let snapshot = build_snapshot(&config, &devices, &reservations)?;
        if save {
            self.store.save(&config).map_err(ControlError::Persist)?;
        }
        match self.publisher.publish(snapshot) {
            Ok(generation) => {
                self.config = config;
                self.devices = devices;
                self.reservations = reservations;
                self.generation = generation;
                Ok(generation)
            }
            Err(error) => {
                if save {
                    if let Err(restore) = self.store.save(&self.config) {
                        tracing::error!(
                            "publish failed and the previous configuration could not be saved back: {restore}"
                        );
                    }
                }
                Err(ControlError::Publish(error))
            }
        }
    }

    /// [`Controller::commit`], then wait until no in-flight I/O uses an older generation (for
    /// removals: the answer means the removed object is no longer in use).
    fn commit_and_drain(&mut self, config: Config, devices: Devices) -> Result<u64, ControlError> {
        let generation = self.commit(config, devices)?;
        self.wait_drained_serving(generation)?;
        Ok(generation)
    }

    pub fn stats_get(&mut self, params: StatsGetParams) -> Result<StatsGetResult, ControlError> {
        if let Some(name) = &params.volume {
            if self.config.volume(name).is_none() {
                return Err(ControlError::not_found("volume", name));
            }
        }
        let stats = self.publisher.stats();
        let mut names: Vec<&str> = self
            .config
            .volumes
            .iter()
            .map(|v| v.name.as_str())
            .collect();
        names.sort_unstable();
        let volumes = names
            .into_iter()
            .filter(|name| params.volume.as_deref().is_none_or(|only| only == *name))
            .map(|name| match stats.iter().find(|s| s.name == name) {
                Some(s) => VolumeStatsInfo {
                    name: name.to_string(),
                    read_ops: s.read_ops,
                    write_ops: s.write_ops,
                    read_bytes: s.read_bytes,
                    write_bytes: s.write_bytes,
                    latency_us_p50: s.latency_us_p50,
                    latency_us_p90: s.latency_us_p90,
                    latency_us_p99: s.latency_us_p99,
                    latency_us_p999: s.latency_us_p999,
                    latency_us_max: s.latency_us_max,
                },
                None => VolumeStatsInfo {
                    name: name.to_string(),
                    ..VolumeStatsInfo::default()
                },
            })
            .collect();
        let reactors = self
            .publisher
            .reactor_load()
            .into_iter()
            .map(|r| ReactorLoadInfo {
                reactor: r.reactor,
                core: r.core,
                busy_us: r.load.busy_ns / 1_000,
                idle_poll_us: r.load.idle_poll_ns / 1_000,
                sleep_us: r.load.sleep_ns / 1_000,
            })
            .collect();
        Ok(StatsGetResult { volumes, reactors })
    }

    pub fn daemon_info(&self) -> DaemonInfo {
        DaemonInfo {
            version: env!("CARGO_PKG_VERSION").to_string(),
            api_version: API_VERSION,
            iscsi_listen: self.about.iscsi_listen.clone(),
            rpc_socket: self.about.rpc_socket.clone(),
            state_dir: self.about.state_dir.clone(),
            generation: self.generation,
            cores: self.about.cores.clone(),
            poll_mode: self.about.poll_mode.clone(),
        }
    }
}

#[cfg(test)]
impl Controller {
    /// Replace the device opener (tests).
    pub fn set_opener(&mut self, opener: Box<dyn DeviceOpener>) {
        self.opener = opener;
    }

    /// Shorten the drain timeout (tests).
    pub fn set_drain_timeout(&mut self, timeout: Duration) {
        self.drain_timeout = timeout;
    }

    /// The pools' slot ledgers (tests).
    pub fn ledgers(&self) -> &Ledgers {
        &self.ledgers
    }

    /// How many requests wait (tests).
    pub fn deferred_len(&self) -> usize {
        self.deferred.len()
    }

    /// The ledgers rebuilt from the configuration as it is now (tests: they must hold the same
    /// references as the ones kept in step).
    pub fn rederived_ledgers(&self) -> Result<Ledgers, ControlError> {
        Ledgers::derive(&self.config, &self.devices)
    }

    /// The open device `name` (tests).
    pub fn device_file(&self, name: &str) -> Arc<lunar_reactor::BackendFile> {
        self.devices.get(name).cloned().expect("device open")
    }

    /// Set one segment entry of a volume's thin node, saved and published (tests: states no
    /// request produces, like Invalid).
    pub fn set_segment(
        &mut self,
        volume: &str,
        segment: lunar_volume::SegmentRef,
        entry: lunar_volume::SegmentEntry,
    ) {
        let index = self
            .config
            .volumes
            .iter()
            .position(|v| v.name == volume)
            .expect("volume");
        let mut edit = segments::TableEdit::default();
        self.set_entry(&mut edit, index, segment, entry)
            .expect("set");
        self.commit_edit(edit).expect("commit");
    }
}
