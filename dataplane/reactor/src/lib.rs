//! lunar-reactor: the per-core data plane. It wires the layers together: sockets and backend
//! files on each reactor's own io_uring, the iSCSI connection state machines, the SCSI device
//! model and the volume planner, and the SPSC mailboxes that carry table generations from the
//! control thread.

pub mod backend;
pub mod dataplane;
pub mod snapshot;

pub use backend::{BackendError, BackendFile, BackendKind};
pub use dataplane::{DataPlane, DataPlaneConfig, PollMode, PublishError, StartError, VolumeStats};
pub use snapshot::{LunEntry, Snapshot, TargetEntry, VolumeEntry};
