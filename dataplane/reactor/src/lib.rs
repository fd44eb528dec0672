//! lunar-reactor: the per-core data plane. It wires the layers together: sockets and backend
//! files on each reactor's own io_uring, the iSCSI connection state machines, the SCSI device
//! model and the volume planner, and the SPSC mailboxes that carry table generations from the
//! control thread. The only crate besides `lunar-uring` with unsafe code: socket set-up,
//! eventfds, and the buffers lent to in-flight io_uring operations.

pub mod backend;
mod chunks;
mod command;
mod conn;
mod control_requests;
pub mod dataplane;
mod device_files;
mod dirty;
mod doorbell;
mod incoming;
mod mailbox;
mod net;
mod outgoing;
mod pieces;
mod portals;
mod range_locks;
mod reactor;
pub mod requests;
mod resets;
pub mod snapshot;
mod stats;
mod steps;
mod tables;

pub use backend::{BackendError, BackendFile, BackendKind};
pub use dataplane::{
    DataPlane, DataPlaneConfig, PollMode, PortalError, PublishError, ReactorLoadStats, StartError,
    VolumeStats,
};
pub use dirty::DirtyRegions;
pub use doorbell::Doorbell;
pub use range_locks::RangeLocks;
pub use requests::{DeviceRange, Nexus, ReactorRequest, RequestId, RequestKind};
pub use snapshot::{ChapAuth, ChapSecret, LunEntry, Snapshot, TargetEntry, VolumeEntry};
pub use stats::ReactorLoad;
pub use tables::MAX_TRANSFER_BYTES;
