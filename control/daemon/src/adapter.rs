//! The real data plane behind the [`crate::plane`] traits.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use lunar_reactor::{
    BackendError, BackendFile, DataPlane, PortalError, PublishError, RangeLocks, ReactorLoadStats,
    ReactorRequest, RequestId, Snapshot, VolumeStats,
};
use lunar_scsi::ScsiReply;

use crate::plane::{DeviceOpener, Publisher};

/// Opens devices with [`BackendFile::open`] (O_DIRECT when the filesystem allows it).
#[derive(Debug, Clone, Copy, Default)]
pub struct BackendOpener;

impl DeviceOpener for BackendOpener {
    fn open(&self, path: &Path) -> Result<BackendFile, BackendError> {
        BackendFile::open(path)
    }
}

impl Publisher for DataPlane {
    fn publish(&mut self, snapshot: Snapshot) -> Result<u64, PublishError> {
        DataPlane::publish(self, snapshot)
    }

    fn wait_drained(&mut self, generation: u64) -> Result<(), PublishError> {
        DataPlane::wait_drained(self, generation)
    }

    fn is_drained(&mut self, generation: u64) -> bool {
        DataPlane::is_drained(self, generation)
    }

    fn range_locks(&self, volume_uid: u64) -> Option<Arc<RangeLocks>> {
        DataPlane::range_locks(self, volume_uid)
    }

    fn stats(&mut self) -> Vec<VolumeStats> {
        DataPlane::stats(self)
    }

    fn reactor_load(&mut self) -> Vec<ReactorLoadStats> {
        DataPlane::reactor_load(self)
    }

    fn portals(&self) -> Vec<SocketAddr> {
        DataPlane::portals(self)
    }

    fn add_portal(&mut self, addr: SocketAddr) -> Result<SocketAddr, PortalError> {
        DataPlane::add_portal(self, addr)
    }

    fn remove_portal(&mut self, addr: SocketAddr) -> Result<(), PortalError> {
        DataPlane::remove_portal(self, addr)
    }

    fn poll(&mut self) -> Vec<ReactorRequest> {
        DataPlane::poll(self)
    }

    fn has_undelivered(&self) -> bool {
        DataPlane::has_undelivered(self)
    }

    fn answer(&mut self, id: RequestId, reply: ScsiReply) {
        DataPlane::answer(self, id, reply)
    }

    fn abort_tasks(
        &mut self,
        volume_uid: u64,
        initiator_ports: &[String],
    ) -> Result<(), PublishError> {
        DataPlane::abort_tasks(self, volume_uid, initiator_ports)
    }

    fn shutdown(self: Box<Self>) {
        DataPlane::shutdown(*self)
    }
}
