//! [`VolumeMap`]: a layout compiled for planning, and the planning API the reactors call
//! (`plan_io`, `plan_read_retry`, the older `plan`) plus the queries the control thread uses
//! (`segments_in`, `devices`, `devices_used`).

use std::fmt;

use crate::chooser::LegChooser;
use crate::error::LayoutError;
use crate::layout::{DeviceId, Extent, Layout, PlanError};
use crate::node::Node;
use crate::planner::{ExtentSink, SegmentFinder, StepPlanner};
use crate::ranges::{device_ranges, DeviceRange};
use crate::split::{split, Reach};
use crate::step::{IoOp, LegRef, PlanOutcome, PlanStep, SegmentPiece};

/// An immutable compiled volume mapping.
///
/// `root` and `size_bytes` are the layout and its size; treat them as read-only (the lookup
/// tables are derived from them at construction).
#[derive(Clone, PartialEq, Eq)]
pub struct VolumeMap {
    pub root: Layout,
    pub size_bytes: u64,
    compiled: Node,
    /// Every device the layout names, ascending, each once.
    devices: Box<[DeviceId]>,
    direct: bool,
}

impl VolumeMap {
    /// Compile a layout, or explain why it is not a usable volume. The control plane uses this
    /// for every layout it did not build itself.
    pub fn try_new(root: Layout) -> Result<Self, LayoutError> {
        let size_bytes = root.validate()?;
        let compiled = Node::compile(&root);
        debug_assert_eq!(compiled.size_bytes(), size_bytes);
        Ok(VolumeMap::from_parts(root, size_bytes, compiled))
    }

    /// Compile a layout that is known to be valid. Never panics: an invalid layout (one that
    /// [`VolumeMap::try_new`] rejects) gives a map of size 0, on which every non-empty request
    /// is [`PlanError::OutOfRange`].
    pub fn new(root: Layout) -> Self {
        match root.validate() {
            Ok(size_bytes) => {
                let compiled = Node::compile(&root);
                VolumeMap::from_parts(root, size_bytes, compiled)
            }
            Err(_) => VolumeMap::from_parts(root, 0, Node::empty()),
        }
    }

    fn from_parts(root: Layout, size_bytes: u64, compiled: Node) -> Self {
        let mut devices = Vec::new();
        compiled.collect_devices(&mut devices);
        devices.sort_unstable();
        devices.dedup();
        VolumeMap {
            root,
            size_bytes,
            direct: compiled.is_direct(),
            compiled,
            devices: devices.into_boxed_slice(),
        }
    }

    /// Whether every byte lives on exactly one device with no state (the layout has no mirror
    /// and no segment table): the maps [`VolumeMap::plan`] serves.
    pub fn is_direct(&self) -> bool {
        self.direct
    }

    /// Every device the layout names (leaves, and segment locations in use), ascending, each
    /// once, whatever the health of the legs they are on: the devices a flush goes to.
    pub fn devices(&self) -> &[DeviceId] {
        &self.devices
    }

    /// The byte ranges of each device the volume uses, sorted and merged (see
    /// [`DeviceRange`]). Costs a walk of the tree and of the located segments.
    pub fn devices_used(&self) -> Vec<DeviceRange> {
        device_ranges(&self.compiled, self.size_bytes)
    }

    /// Append the extents of `[offset, offset+len)` to `out` in request order, for a direct
    /// map ([`VolumeMap::is_direct`]); use [`VolumeMap::plan_io`] for every map.
    ///
    /// The appended extents are never empty, each lies inside one `Linear` member, and their
    /// `request_offset_bytes` run contiguously from 0 to `len_bytes`. A zero-length request
    /// inside the volume appends nothing. On a map that is not direct, every non-empty
    /// request is refused with `OutOfRange` and `size_bytes` 0. On error `out` is left as it
    /// was.
    pub fn plan(
        &self,
        offset_bytes: u64,
        len_bytes: u64,
        out: &mut Vec<Extent>,
    ) -> Result<(), PlanError> {
        self.check_range(offset_bytes, len_bytes)?;
        if len_bytes == 0 {
            return Ok(());
        }
        if !self.direct {
            return Err(PlanError::OutOfRange {
                offset_bytes,
                len_bytes,
                size_bytes: 0,
            });
        }
        let mut sink = ExtentSink::new(out);
        split(
            &self.compiled,
            offset_bytes,
            len_bytes,
            Reach::request_start(),
            &mut sink,
        );
        Ok(())
    }

    /// Plan a read or a write of `[offset_bytes, offset_bytes + len_bytes)`, appending its steps
    /// to `out` (see [`PlanStep`]).
    ///
    /// [`PlanOutcome::Ready`]: the appended Device, Zero and Error steps cover the request in
    /// request order; a read covers each byte once (mirror legs picked by `chooser` among the
    /// legs that can serve the piece), a write covers each mirrored byte once per writable leg.
    /// [`PlanOutcome::Faulted`]: the appended steps are only the faults the request hits, each
    /// segment once; park the command. Appends nothing for a zero-length request; nothing is
    /// allocated beyond pushing to `out`. On error `out` is left as it was.
    pub fn plan_io<C: LegChooser>(
        &self,
        op: IoOp,
        offset_bytes: u64,
        len_bytes: u64,
        chooser: &mut C,
        out: &mut Vec<PlanStep>,
    ) -> Result<PlanOutcome, PlanError> {
        self.plan_excluding(op, offset_bytes, len_bytes, &[], chooser, out)
    }

    /// Plan a read again after it failed on some mirror legs: as [`VolumeMap::plan_io`] for a
    /// read, but no piece goes to a leg in `excluding` (the `mirror_leg` of the failed Device
    /// or Error steps). Where a mirror has no other leg for a piece, the piece is an Error
    /// step carrying the enclosing mirror's leg, if any (add it to `excluding` and retry), or
    /// none (fail the command).
    pub fn plan_read_retry<C: LegChooser>(
        &self,
        offset_bytes: u64,
        len_bytes: u64,
        excluding: &[LegRef],
        chooser: &mut C,
        out: &mut Vec<PlanStep>,
    ) -> Result<PlanOutcome, PlanError> {
        self.plan_excluding(IoOp::Read, offset_bytes, len_bytes, excluding, chooser, out)
    }

    fn plan_excluding<C: LegChooser>(
        &self,
        op: IoOp,
        offset_bytes: u64,
        len_bytes: u64,
        excluding: &[LegRef],
        chooser: &mut C,
        out: &mut Vec<PlanStep>,
    ) -> Result<PlanOutcome, PlanError> {
        self.check_range(offset_bytes, len_bytes)?;
        let mut planner = StepPlanner::new(op, chooser, excluding, out);
        if len_bytes > 0 {
            split(
                &self.compiled,
                offset_bytes,
                len_bytes,
                Reach::request_start(),
                &mut planner,
            );
        }
        Ok(planner.outcome())
    }

    /// Append every segment piece of `[offset_bytes, offset_bytes + len_bytes)`, on every
    /// mirror leg whatever its health, in walk order: which segments a write there would
    /// allocate or copy, which a migration range covers. Parts of the range on plain
    /// extents append nothing. On error `out` is left as it was.
    pub fn segments_in(
        &self,
        offset_bytes: u64,
        len_bytes: u64,
        out: &mut Vec<SegmentPiece>,
    ) -> Result<(), PlanError> {
        self.check_range(offset_bytes, len_bytes)?;
        if len_bytes > 0 {
            let mut finder = SegmentFinder::new(out);
            split(
                &self.compiled,
                offset_bytes,
                len_bytes,
                Reach::request_start(),
                &mut finder,
            );
        }
        Ok(())
    }

    fn check_range(&self, offset_bytes: u64, len_bytes: u64) -> Result<(), PlanError> {
        let in_range = offset_bytes
            .checked_add(len_bytes)
            .is_some_and(|end_bytes| end_bytes <= self.size_bytes);
        match in_range {
            true => Ok(()),
            false => Err(PlanError::OutOfRange {
                offset_bytes,
                len_bytes,
                size_bytes: self.size_bytes,
            }),
        }
    }
}

impl fmt::Debug for VolumeMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VolumeMap")
            .field("root", &self.root)
            .field("size_bytes", &self.size_bytes)
            .finish_non_exhaustive()
    }
}
