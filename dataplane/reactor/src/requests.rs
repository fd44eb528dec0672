//! Requests a reactor cannot serve alone, carried to the control thread and answered there:
//! SCSI commands that change state every I_T nexus of a logical unit shares (persistent
//! reservations, RESERVE/RELEASE), events every reactor must hear of (a session reinstated,
//! a logical unit or target reset), and the mapping faults of DESIGN.md §3 (a segment the plan
//! may not use, a mirror leg that failed). The command that caused a request stays pinned on its
//! reactor until the answer comes back.

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
    ///
    /// `ranges` is filled for volumes the reactor can map directly ([`VolumeMap::is_direct`]);
    /// for a volume with segment tables it is empty and the control thread answers from the
    /// segment states of `volume_uid` (Zero segments are deallocated).
    ///
    /// [`VolumeMap::is_direct`]: lunar_volume::VolumeMap::is_direct
    AllocationStatus {
        io: lunar_scsi::BlockIo,
        block_size: u64,
        volume_uid: u64,
        ranges: Vec<DeviceRange>,
    },
    /// A read or write planned on `generation` met segments it may not use
    /// ([`lunar_volume::PlanStep::Fault`]): Invalid segments, writes to Zero (thin allocation)
    /// or NoWrite (copy-on-write) segments of volume `volume_uid`. Resolve every fault, persist,
    /// publish the table that resolves them, then answer: GOOD means "plan again on the newest
    /// table" (the reactor re-plans the command, and may fault again); CHECK CONDITION is the
    /// host's answer (a full pool: DATA PROTECT, SPACE ALLOCATION FAILED WRITE PROTECT).
    /// `write_bytes`, for a write, is the byte range of the volume it covers (`(offset, len)`):
    /// a fault for a segment the write covers whole needs no zeroing or copying first.
    Fault {
        volume_uid: u64,
        generation: u64,
        faults: Vec<(lunar_volume::SegmentRef, lunar_volume::FaultReason)>,
        write_bytes: Option<(u64, u64)>,
    },
    /// I/O to mirror leg `leg` of volume `volume_uid` failed (planned on `generation`). Mark
    /// the leg faulty (persisted), publish, then answer GOOD: the reactor plans the command
    /// again without that leg (a write is written again to the legs left, a read goes to
    /// another leg). Answering GOOD without taking the leg out of the table makes the reactor
    /// retry on the same leg, so the answer must follow the publish.
    LegFailed {
        volume_uid: u64,
        generation: u64,
        leg: lunar_volume::LegRef,
        write: bool,
    },
    /// A write to `[offset_bytes, offset_bytes + len_bytes)` of volume `volume_uid` touches
    /// regions its table's [`DirtyRegions`](crate::DirtyRegions) do not mark (a mirror leg is
    /// out). Mark them, persist, publish, then answer GOOD: the reactor plans the write again.
    LogWrites {
        volume_uid: u64,
        generation: u64,
        offset_bytes: u64,
        len_bytes: u64,
    },
    /// UNMAP, WRITE SAME with UNMAP, or a deallocating WRITE ZEROES on a volume with segment
    /// tables: deallocate these byte ranges `(offset, len)` of volume `volume_uid`. Whole
    /// segments go back to Zero and to their pool; the rest must read back as zeros. Persist,
    /// publish, then answer with the host's reply (GOOD when done).
    Deallocate {
        volume_uid: u64,
        generation: u64,
        io: lunar_scsi::BlockIo,
        ranges: Vec<(u64, u64)>,
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
