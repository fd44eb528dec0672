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
}
