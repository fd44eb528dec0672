//! What [`crate::VolumeMap::plan_io`] produces: the steps a reactor carries out for one request,
//! and the references (mirror leg, segment) they carry back to the control thread.

use crate::layout::{DeviceId, NodeId};
use crate::table::SegmentEntry;

/// The direction of a planned request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoOp {
    Read,
    Write,
}

/// Leg `leg` of mirror node `mirror`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LegRef {
    pub mirror: NodeId,
    pub leg: u32,
}

/// Entry `index` of segment table node `node`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SegmentRef {
    pub node: NodeId,
    pub index: u64,
}

/// Why a request needs the control thread before it can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FaultReason {
    /// The segment is Invalid (being changed by the control thread): reads and writes wait.
    Invalid,
    /// A write to a NoWrite segment: copy-on-write of a shared segment, or a migrating range.
    WriteToNoWrite,
    /// A write to a Zero segment: thin allocation.
    WriteToZero,
}

/// One thing to do for a planned request. Request offsets are relative to the request's first
/// byte (its buffer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanStep {
    /// Read or write `len_bytes` at `device_offset_bytes` of `device`, to or from the buffer at
    /// `request_offset_bytes`. `mirror_leg` is the innermost mirror leg the bytes belong to:
    /// a failed read is planned again without it ([`crate::VolumeMap::plan_read_retry`]), a
    /// failed write makes it faulty. Pieces that continue each other on the same device and
    /// leg (segments allocated one after another) are one step.
    Device {
        device: DeviceId,
        device_offset_bytes: u64,
        len_bytes: u64,
        request_offset_bytes: u64,
        mirror_leg: Option<LegRef>,
    },
    /// A read of Zero segments: fill the buffer range with zeros, no I/O.
    Zero {
        request_offset_bytes: u64,
        len_bytes: u64,
    },
    /// The segment needs the control thread first: park the whole command, send the fault, and
    /// plan the command again against the next table. When a plan has a fault, it has only
    /// faults (each segment once).
    Fault {
        segment: SegmentRef,
        reason: FaultReason,
    },
    /// The range cannot be served: an Error segment, or a mirror with no leg left for the
    /// operation. With `mirror_leg` set and a read, plan the range again without that leg (it is
    /// the leg of an enclosing mirror that led here); otherwise fail the command with a medium
    /// error.
    Error {
        request_offset_bytes: u64,
        len_bytes: u64,
        mirror_leg: Option<LegRef>,
    },
}

impl PlanStep {
    /// `(request_offset_bytes, len_bytes)` of the buffer range the step covers; `None` for a
    /// fault, which covers the whole command.
    pub fn request_range(&self) -> Option<(u64, u64)> {
        match *self {
            PlanStep::Device {
                request_offset_bytes,
                len_bytes,
                ..
            }
            | PlanStep::Zero {
                request_offset_bytes,
                len_bytes,
            }
            | PlanStep::Error {
                request_offset_bytes,
                len_bytes,
                ..
            } => Some((request_offset_bytes, len_bytes)),
            PlanStep::Fault { .. } => None,
        }
    }
}

/// How planning went; the steps are in the caller's `Vec`.
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanOutcome {
    /// The steps are Device, Zero and Error steps covering the request (a mirror write covers
    /// its range once per writable leg).
    Ready,
    /// The steps are only faults: park the command until the control thread publishes a table
    /// that resolves them.
    Faulted,
}

/// A request's piece inside one segment, found by [`crate::VolumeMap::segments_in`]: which
/// segment, its entry, and which bytes of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentPiece {
    pub segment: SegmentRef,
    pub entry: SegmentEntry,
    /// Where the piece starts inside the segment.
    pub segment_offset_bytes: u64,
    pub len_bytes: u64,
    pub request_offset_bytes: u64,
    /// The innermost mirror leg the segment table sits on.
    pub mirror_leg: Option<LegRef>,
}
