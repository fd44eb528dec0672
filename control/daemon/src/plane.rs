//! What the control logic needs from the data plane, as traits: opening backing devices and
//! publishing table snapshots. The real implementations are in [`crate::adapter`]; tests use
//! fakes.

use std::path::Path;

use lunar_reactor::{BackendError, BackendFile, PublishError, Snapshot, VolumeStats};

/// Opens backing devices and files.
pub trait DeviceOpener {
    fn open(&self, path: &Path) -> Result<BackendFile, BackendError>;
}

/// Publishes table snapshots to the reactors.
pub trait Publisher {
    /// Install `snapshot` on every reactor; returns its generation.
    fn publish(&mut self, snapshot: Snapshot) -> Result<u64, PublishError>;
    /// Returns once no in-flight command uses a generation older than `generation`.
    fn wait_drained(&mut self, generation: u64) -> Result<(), PublishError>;
    /// Per-volume counters, summed over reactors.
    fn stats(&mut self) -> Vec<VolumeStats>;
    /// Stop the reactors.
    fn shutdown(self: Box<Self>);
}
