//! What the control logic needs from the data plane, as traits: opening backing devices, and
//! driving the reactors (publishing table snapshots, portals, answering their requests). The
//! real implementations are in [`crate::adapter`]; tests use fakes.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use lunar_reactor::{
    BackendError, BackendFile, PortalError, PublishError, RangeLocks, ReactorLoadStats,
    ReactorRequest, RequestId, Snapshot, VolumeStats,
};
use lunar_scsi::ScsiReply;

/// Opens backing devices and files.
pub trait DeviceOpener {
    fn open(&self, path: &Path) -> Result<BackendFile, BackendError>;
}

/// The reactors, as the control thread drives them.
pub trait Publisher {
    /// Install `snapshot` on every reactor; returns its generation.
    fn publish(&mut self, snapshot: Snapshot) -> Result<u64, PublishError>;
    /// Returns once no in-flight command uses a generation older than `generation`.
    fn wait_drained(&mut self, generation: u64) -> Result<(), PublishError>;
    /// Whether no in-flight command uses a generation older than `generation`, without
    /// waiting.
    fn is_drained(&mut self, generation: u64) -> bool;
    /// The range locks the reactors take on volume `volume_uid` (while it is published).
    fn range_locks(&self, volume_uid: u64) -> Option<Arc<RangeLocks>>;
    /// Per-volume counters, summed over reactors.
    fn stats(&mut self) -> Vec<VolumeStats>;
    /// Where each reactor's time went since it started.
    fn reactor_load(&mut self) -> Vec<ReactorLoadStats>;
    /// Every portal served now (the `--listen` address first, unless it was removed).
    fn portals(&self) -> Vec<SocketAddr>;
    /// Serve iSCSI on `addr` too; returns the bound address (port 0 picks one).
    fn add_portal(&mut self, addr: SocketAddr) -> Result<SocketAddr, PortalError>;
    /// Stop accepting on `addr`.
    fn remove_portal(&mut self, addr: SocketAddr) -> Result<(), PortalError>;
    /// Requests the reactors sent since the last call; each must be [`Publisher::answer`]ed.
    fn poll(&mut self) -> Vec<ReactorRequest>;
    /// Whether messages for the reactors wait for room in their mailboxes (the next
    /// [`Publisher::poll`] retries them; no reactor says when there is room).
    fn has_undelivered(&self) -> bool {
        false
    }
    /// Answer a request from [`Publisher::poll`].
    fn answer(&mut self, id: RequestId, reply: ScsiReply);
    /// PREEMPT AND ABORT: abort the tasks of volume `volume_uid` from these initiator ports on
    /// every reactor; returns once their I/O finished.
    fn abort_tasks(
        &mut self,
        volume_uid: u64,
        initiator_ports: &[String],
    ) -> Result<(), PublishError>;
    /// Stop the reactors.
    fn shutdown(self: Box<Self>);
}
