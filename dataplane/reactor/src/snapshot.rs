//! The immutable, generation-numbered table the control thread publishes to every reactor.

use std::sync::Arc;

use lunar_scsi::pr::ReservationState;
use lunar_volume::VolumeMap;

use crate::backend::BackendFile;
use crate::dirty::DirtyRegions;

/// Everything a reactor needs to serve I/O. Immutable once published; reactors pin it per
/// command with an `Arc` clone.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Set by `DataPlane::publish`; strictly increasing.
    pub generation: u64,
    /// Indexed by `lunar_volume::layout::DeviceId`.
    pub devices: Vec<Option<Arc<BackendFile>>>,
    pub volumes: Vec<VolumeEntry>,
    pub targets: Vec<TargetEntry>,
    /// CHAP required of initiators in discovery sessions (`None`: no authentication).
    pub discovery_chap: Option<ChapAuth>,
}

/// A CHAP name and secret. Debug output never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct ChapSecret {
    pub username: String,
    pub secret: String,
}

impl std::fmt::Debug for ChapSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChapSecret")
            .field("username", &self.username)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// CHAP settings of a target (or of discovery).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChapAuth {
    /// What initiators must prove they know.
    pub initiator: ChapSecret,
    /// For mutual CHAP: what the target proves to the initiator.
    pub mutual: Option<ChapSecret>,
}

#[derive(Debug, Clone)]
pub struct VolumeEntry {
    pub name: String,
    /// Stable identifier (NAA designator, serial number).
    pub uid: u64,
    pub block_size: u32,
    pub map: VolumeMap,
    /// State every I_T nexus of the volume's logical unit shares (persistent reservations):
    /// owned by the control thread, which publishes a new one with each change.
    pub reservations: Arc<ReservationState>,
    /// While a mirror leg of the volume is out: the regions written since. A write to a region
    /// not marked here waits until the control thread marked it
    /// ([`crate::RequestKind::LogWrites`]). `None`: writes need no mark.
    pub dirty_regions: Option<Arc<DirtyRegions>>,
}

#[derive(Debug, Clone)]
pub struct TargetEntry {
    pub iqn: String,
    pub luns: Vec<LunEntry>,
    /// Initiator names allowed to see and log in to this target; empty means everyone.
    pub allowed_initiators: Vec<String>,
    /// CHAP required of initiators logging in (`None`: no authentication).
    pub chap: Option<ChapAuth>,
}

#[derive(Debug, Clone)]
pub struct LunEntry {
    pub lun: u64,
    /// Index into `Snapshot::volumes`.
    pub volume: usize,
    pub read_only: bool,
    /// Exported as removable medium (the medium state lives in the shared reservation state).
    pub removable: bool,
}
