//! Contract of the data plane handle the control thread owns.

use std::net::SocketAddr;

use crate::snapshot::Snapshot;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollMode {
    /// Spin forever (dedicated cores).
    Busy,
    /// Spin briefly, then sleep in io_uring_enter until work or a wake-up arrives.
    Adaptive,
}

#[derive(Debug, Clone)]
pub struct DataPlaneConfig {
    /// CPU ids to pin one reactor each to.
    pub cores: Vec<usize>,
    pub poll_mode: PollMode,
    pub listen: SocketAddr,
    pub connection: lunar_iscsi::ConnConfig,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot set up io_uring: {0}")]
    Ring(std::io::Error),
}

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("reactor {0} did not acknowledge generation {1}")]
    NotAcknowledged(usize, u64),
}

/// Per-volume I/O statistics, summed over reactors.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VolumeStats {
    pub name: String,
    pub read_ops: u64,
    pub write_ops: u64,
    pub read_bytes: u64,
    pub write_bytes: u64,
    pub latency_us_p50: u64,
    pub latency_us_p90: u64,
    pub latency_us_p99: u64,
    pub latency_us_p999: u64,
    pub latency_us_max: u64,
}

/// Handle to the running reactors.
pub struct DataPlane {
    _private: (),
}

impl DataPlane {
    pub fn start(_config: DataPlaneConfig) -> Result<DataPlane, StartError> {
        unimplemented!("contract only")
    }
    /// Publish a new table to every reactor; returns once every reactor installed it (the
    /// returned generation). Older generations are released once every reactor drained them.
    pub fn publish(&mut self, _snapshot: Snapshot) -> Result<u64, PublishError> {
        unimplemented!("contract only")
    }
    /// Returns once no in-flight command on any reactor still uses a generation older than
    /// `generation`.
    pub fn wait_drained(&mut self, _generation: u64) -> Result<(), PublishError> {
        unimplemented!("contract only")
    }
    pub fn stats(&mut self) -> Vec<VolumeStats> {
        Vec::new()
    }
    pub fn listen_addr(&self) -> SocketAddr {
        unimplemented!("contract only")
    }
    pub fn shutdown(self) {}
}
