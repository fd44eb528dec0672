//! Requests a reactor cannot serve alone, carried to the control thread and answered there:
//! SCSI commands that change state every I_T nexus of a logical unit shares (persistent
//! reservations, RESERVE/RELEASE), and events every reactor must hear of (a session reinstated,
//! a logical unit or target reset). The command that caused a request stays pinned on its reactor
//! until the answer comes back.

/// Identifies one request: the reactor that sent it and its sequence number there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RequestId {
    pub reactor: usize,
    pub seq: u64,
}

/// The I_T nexus a command arrived on (SPC-4 port names).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Nexus {
    /// `InitiatorName,i,0xISID`.
    pub initiator_port: String,
    /// `TargetName,t,0xTPGT`.
    pub target_port: String,
}

/// A request the control thread must answer with [`DataPlane::answer`](crate::DataPlane::answer).
#[derive(Debug)]
pub struct ReactorRequest {
    pub id: RequestId,
    pub kind: RequestKind,
}

#[derive(Debug)]
pub enum RequestKind {
    /// A command changing logical-unit state shared by every nexus. Apply it, persist the new
    /// state, publish a table carrying it, then answer with the SCSI reply for the host.
    SharedStateCommand {
        target: String,
        lun: u64,
        volume_uid: u64,
        nexus: Nexus,
        cdb: Vec<u8>,
        data_out: Vec<u8>,
    },
    /// A session ended (logout, connection lost, reinstated): its I_T nexus is gone. SPC-2
    /// reservations it held on the target's logical units end. No answer is expected.
    NexusLost { target: String, nexus: Nexus },
    /// A LOGICAL UNIT RESET (`lun: Some`) or TARGET WARM/COLD RESET (`lun: None`, `cold`)
    /// happened on `target`: reset the logical units' shared state as SAM says (SPC-2
    /// reservations end, every nexus gets the unit attention), publish it, then answer (any
    /// reply): the task management response waits for it.
    Reset {
        target: String,
        lun: Option<u64>,
        cold: bool,
    },
    /// GET LBA STATUS: find which parts of `ranges` are allocated on their devices
    /// (SEEK_DATA / SEEK_HOLE) and answer with `lunar_scsi::lba_status_reply(&io, extents)`,
    /// extents in volume blocks of `block_size` bytes.
    AllocationStatus {
        io: lunar_scsi::BlockIo,
        block_size: u64,
        ranges: Vec<DeviceRange>,
    },
}

/// One piece of a volume range on a backing device, by the descriptor the pinned table keeps
/// open while the request is outstanding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceRange {
    pub fd: std::os::fd::RawFd,
    pub device_offset_bytes: u64,
    pub len_bytes: u64,
    /// Where the piece starts in the volume.
    pub volume_offset_bytes: u64,
}
