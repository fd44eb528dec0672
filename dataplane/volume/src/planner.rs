//! The walks `split` drives: [`StepPlanner`] turns a read or a write into [`PlanStep`]s (the
//! segment state table of DESIGN.md §3 and the mirror leg rules live here), [`ExtentSink`]
//! gives the plain extents of a direct map, and [`SegmentFinder`] lists the segments a range
//! touches on every leg.

use crate::chooser::{LegChooser, LegSet};
use crate::layout::{DeviceId, Extent};
use crate::mirror::Mirror;
use crate::segmented::{SegmentSpot, Segmented};
use crate::split::{Reach, Visitor};
use crate::step::{FaultReason, IoOp, LegRef, PlanOutcome, PlanStep, SegmentPiece, SegmentRef};
use crate::table::SegmentEntry;

/// Plans one read or write into steps appended to `out`. Once a fault is found, the steps
/// already appended are dropped and only faults are kept (each segment once).
pub(crate) struct StepPlanner<'a, C: LegChooser> {
    op: IoOp,
    chooser: &'a mut C,
    /// Legs a read must not use (they failed this read before).
    excluded: &'a [LegRef],
    out: &'a mut Vec<PlanStep>,
    /// Length of `out` before planning: what is ours starts here.
    start: usize,
    faulted: bool,
}

impl<'a, C: LegChooser> StepPlanner<'a, C> {
    pub(crate) fn new(
        op: IoOp,
        chooser: &'a mut C,
        excluded: &'a [LegRef],
        out: &'a mut Vec<PlanStep>,
    ) -> Self {
        let start = out.len();
        StepPlanner {
            op,
            chooser,
            excluded,
            out,
            start,
            faulted: false,
        }
    }

    pub(crate) fn outcome(&self) -> PlanOutcome {
        if self.faulted {
            PlanOutcome::Faulted
        } else {
            PlanOutcome::Ready
        }
    }

    /// Append a step, or extend the previous one when the two are one contiguous range
    /// (sequentially allocated segments, runs of Zero segments): fewer I/Os.
    fn push(&mut self, step: PlanStep) {
        if self.faulted {
            return;
        }
        let ours = &mut self.out[self.start..];
        if let Some(last) = ours.last_mut() {
            if let Some(merged) = merged(*last, step) {
                *last = merged;
                return;
            }
        }
        self.out.push(step);
    }

    fn push_error(&mut self, len_bytes: u64, at: Reach) {
        self.push(PlanStep::Error {
            request_offset_bytes: at.request_offset_bytes,
            len_bytes,
            mirror_leg: at.mirror_leg,
        });
    }

    fn push_fault(&mut self, segment: SegmentRef, reason: FaultReason) {
        if !self.faulted {
            self.out.truncate(self.start);
            self.faulted = true;
        }
        // A walk reaches the segments of one table in ascending order, so a repeat can only
        // be of the table's latest fault.
        let latest_of_table = self.out[self.start..]
            .iter()
            .rev()
            .find_map(|step| match step {
                PlanStep::Fault { segment: seen, .. } if seen.node == segment.node => Some(*seen),
                _ => None,
            });
        if latest_of_table != Some(segment) {
            self.out.push(PlanStep::Fault { segment, reason });
        }
    }
}

/// `first` and `second` as one step, if `second` continues `first` in the request and, for
/// device steps, on the same device and mirror leg.
fn merged(first: PlanStep, second: PlanStep) -> Option<PlanStep> {
    let (first_start, first_len) = first.request_range()?;
    let (second_start, second_len) = second.request_range()?;
    if first_start.checked_add(first_len) != Some(second_start) {
        return None;
    }
    let len_bytes = first_len.checked_add(second_len)?;
    match (first, second) {
        (
            PlanStep::Device {
                device,
                device_offset_bytes,
                mirror_leg,
                ..
            },
            PlanStep::Device {
                device: second_device,
                device_offset_bytes: second_offset,
                mirror_leg: second_leg,
                ..
            },
        ) if device == second_device
            && mirror_leg == second_leg
            && device_offset_bytes.checked_add(first_len) == Some(second_offset) =>
        {
            Some(PlanStep::Device {
                device,
                device_offset_bytes,
                len_bytes,
                request_offset_bytes: first_start,
                mirror_leg,
            })
        }
        (PlanStep::Zero { .. }, PlanStep::Zero { .. }) => Some(PlanStep::Zero {
            request_offset_bytes: first_start,
            len_bytes,
        }),
        (
            PlanStep::Error { mirror_leg, .. },
            PlanStep::Error {
                mirror_leg: second_leg,
                ..
            },
        ) if mirror_leg == second_leg => Some(PlanStep::Error {
            request_offset_bytes: first_start,
            len_bytes,
            mirror_leg,
        }),
        _ => None,
    }
}

impl<C: LegChooser> Visitor for StepPlanner<'_, C> {
    fn cuts_at_resync_points(&self) -> bool {
        self.op == IoOp::Read
    }

    fn device(&mut self, device: DeviceId, device_offset_bytes: u64, len_bytes: u64, at: Reach) {
        self.push(PlanStep::Device {
            device,
            device_offset_bytes,
            len_bytes,
            request_offset_bytes: at.request_offset_bytes,
            mirror_leg: at.mirror_leg,
        });
    }

    fn segment(&mut self, segmented: &Segmented, spot: SegmentSpot, len_bytes: u64, at: Reach) {
        let segment = SegmentRef {
            node: segmented.id,
            index: spot.index,
        };
        match (self.op, spot.entry) {
            (_, SegmentEntry::Mapped(location)) | (IoOp::Read, SegmentEntry::NoWrite(location)) => {
                let device_offset = location
                    .offset_bytes
                    .checked_add(spot.segment_offset_bytes)
                    .filter(|start| start.checked_add(len_bytes).is_some());
                match device_offset {
                    Some(device_offset_bytes) => {
                        self.device(location.device, device_offset_bytes, len_bytes, at)
                    }
                    // A location too close to 2^64 for its segment: not servable.
                    None => self.push_error(len_bytes, at),
                }
            }
            (IoOp::Write, SegmentEntry::NoWrite(_)) => {
                self.push_fault(segment, FaultReason::WriteToNoWrite)
            }
            (IoOp::Read, SegmentEntry::Zero) => self.push(PlanStep::Zero {
                request_offset_bytes: at.request_offset_bytes,
                len_bytes,
            }),
            (IoOp::Write, SegmentEntry::Zero) => self.push_fault(segment, FaultReason::WriteToZero),
            (_, SegmentEntry::Invalid) => self.push_fault(segment, FaultReason::Invalid),
            (_, SegmentEntry::Error) => self.push_error(len_bytes, at),
        }
    }

    fn legs(&mut self, mirror: &Mirror, offset_bytes: u64, len_bytes: u64) -> LegSet {
        match self.op {
            IoOp::Write => mirror.writable_legs(),
            IoOp::Read => {
                let candidates = self
                    .excluded
                    .iter()
                    .filter(|excluded| excluded.mirror == mirror.id)
                    .fold(
                        mirror.readable_legs(offset_bytes, len_bytes),
                        |set, excluded| set.without(excluded.leg),
                    );
                if candidates.is_empty() {
                    return LegSet::EMPTY;
                }
                let chosen = self
                    .chooser
                    .choose_leg(mirror.id, mirror.read_policy, candidates);
                match candidates.contains(chosen) {
                    true => LegSet::single(chosen),
                    false => candidates.first().map_or(LegSet::EMPTY, LegSet::single),
                }
            }
        }
    }

    fn no_leg(&mut self, len_bytes: u64, at: Reach) {
        self.push_error(len_bytes, at);
    }
}

/// The extents of a direct map (only Linear, Concat and Stripe nodes).
pub(crate) struct ExtentSink<'a> {
    out: &'a mut Vec<Extent>,
}

impl<'a> ExtentSink<'a> {
    pub(crate) fn new(out: &'a mut Vec<Extent>) -> Self {
        ExtentSink { out }
    }
}

impl Visitor for ExtentSink<'_> {
    fn cuts_at_resync_points(&self) -> bool {
        false
    }

    fn device(&mut self, device: DeviceId, device_offset_bytes: u64, len_bytes: u64, at: Reach) {
        debug_assert!(len_bytes > 0);
        self.out.push(Extent {
            device,
            device_offset_bytes,
            len_bytes,
            request_offset_bytes: at.request_offset_bytes,
        });
    }

    // A direct map has no segments and no mirrors.
    fn segment(&mut self, _: &Segmented, _: SegmentSpot, _: u64, _: Reach) {}

    fn legs(&mut self, _: &Mirror, _: u64, _: u64) -> LegSet {
        LegSet::EMPTY
    }

    fn no_leg(&mut self, _: u64, _: Reach) {}
}

/// Every segment piece of a range, on every mirror leg whatever its health.
pub(crate) struct SegmentFinder<'a> {
    out: &'a mut Vec<SegmentPiece>,
}

impl<'a> SegmentFinder<'a> {
    pub(crate) fn new(out: &'a mut Vec<SegmentPiece>) -> Self {
        SegmentFinder { out }
    }
}

impl Visitor for SegmentFinder<'_> {
    fn cuts_at_resync_points(&self) -> bool {
        false
    }

    fn device(&mut self, _: DeviceId, _: u64, _: u64, _: Reach) {}

    fn segment(&mut self, segmented: &Segmented, spot: SegmentSpot, len_bytes: u64, at: Reach) {
        self.out.push(SegmentPiece {
            segment: SegmentRef {
                node: segmented.id,
                index: spot.index,
            },
            entry: spot.entry,
            segment_offset_bytes: spot.segment_offset_bytes,
            len_bytes,
            request_offset_bytes: at.request_offset_bytes,
            mirror_leg: at.mirror_leg,
        });
    }

    fn legs(&mut self, mirror: &Mirror, _: u64, _: u64) -> LegSet {
        mirror.all_legs()
    }

    fn no_leg(&mut self, _: u64, _: Reach) {}
}
