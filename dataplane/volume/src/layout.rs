//! The contract between the control plane and the data path: the layout tree a volume is built
//! from (linear extents, concats, stripes, mirrors, segment tables), the extents a request is
//! planned into by [`VolumeMap::plan`], and the [`VolumeMap`] the reactors plan against.

use crate::error::LayoutError;
use crate::table::SegmentTable;

pub use crate::map::VolumeMap;

/// Index of a backing device in the published table.
pub type DeviceId = u32;

/// Identifier of a mirror or segment table node, chosen by the control plane and unique within
/// a volume's tree. It names the node across generations: in plan steps
/// ([`crate::LegRef`], [`crate::SegmentRef`]), in faults sent to the control thread and in the
/// per-leg read statistics of the reactors.
pub type NodeId = u32;

/// How many levels a layout tree may nest (a lone `Linear` is one level). Bounds the recursion of
/// validation and planning; real trees (mirror of stripes of concats of segment tables) use a few.
pub const MAX_LAYOUT_DEPTH: usize = 16;

/// The most legs a mirror may have (leg sets are one 32-bit word).
pub const MAX_MIRROR_LEGS: usize = 32;

/// A node of a volume's layout tree. Addresses are bytes; a node's size is derived from its
/// members (see [`Layout::validate`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// `size_bytes` bytes of `device`, starting at `offset_bytes` on the device.
    Linear {
        device: DeviceId,
        offset_bytes: u64,
        size_bytes: u64,
    },
    /// Members one after another: member `i + 1` starts where member `i` ends.
    Concat(Vec<Layout>),
    /// Stripe units of `unit_bytes` dealt round-robin over `members`: unit `k` of the volume is
    /// unit `k / members.len()` of member `k % members.len()`. Every member contributes the same
    /// number of whole units (the smallest member's size rounded down to a unit); bytes beyond
    /// that on larger members are not used.
    Stripe {
        unit_bytes: u64,
        members: Vec<Layout>,
    },
    /// The same bytes on every leg; all legs have the same size. Writes go to every Healthy or
    /// Resyncing leg; reads to one leg chosen by `read_policy` among the Healthy legs and the
    /// Resyncing legs below their resync point.
    Mirror {
        id: NodeId,
        read_policy: ReadPolicy,
        legs: Vec<MirrorLeg>,
    },
    /// `size_bytes` cut into segments of `segment_bytes` (the last one may be shorter), each
    /// served as its entry says (see [`crate::SegmentEntry`]). `entries` has exactly
    /// `ceil(size_bytes / segment_bytes)` entries. Thin volumes, snapshots, clones and
    /// migrating volumes are segment tables.
    Segmented {
        id: NodeId,
        size_bytes: u64,
        segment_bytes: u64,
        entries: SegmentTable,
    },
}

/// One leg of a mirror and its health.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorLeg {
    pub layout: Layout,
    pub health: LegHealth,
}

/// Whether a mirror leg holds the volume's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LegHealth {
    /// In sync: reads and writes.
    #[default]
    Healthy,
    /// Failed or removed: neither reads nor writes.
    Faulty,
    /// Being copied to from the other legs, which have reached `up_to_bytes` (mirror
    /// addresses): takes every write, and reads that end at or below `up_to_bytes`.
    Resyncing { up_to_bytes: u64 },
}

impl LegHealth {
    /// Whether a read ending at `end_bytes` (mirror address) may go to this leg.
    pub fn can_read(&self, end_bytes: u64) -> bool {
        match self {
            LegHealth::Healthy => true,
            LegHealth::Faulty => false,
            LegHealth::Resyncing { up_to_bytes } => end_bytes <= *up_to_bytes,
        }
    }

    pub fn can_write(&self) -> bool {
        !matches!(self, LegHealth::Faulty)
    }
}

/// Which leg a mirror read goes to, among the legs that can serve it. The choice is made by the
/// reactor's [`crate::LegChooser`], which holds the per-leg state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReadPolicy {
    /// Each read to the next leg in turn.
    #[default]
    RoundRobin,
    /// The leg with the fewest reads in flight (ties in turn).
    LeastOutstanding,
}

impl Layout {
    /// Check that the tree describes a usable volume and return its size in bytes: no empty
    /// concat, stripe or mirror, no zero-sized extent or segment table, no zero stripe unit or
    /// segment size, no stripe member smaller than one unit, mirror legs of equal size (at most
    /// [`MAX_MIRROR_LEGS`]) with resync points inside them, segment tables with one entry per
    /// segment, node ids unique, no arithmetic beyond 2^64, at most [`MAX_LAYOUT_DEPTH`] levels.
    pub fn validate(&self) -> Result<u64, LayoutError> {
        crate::validate::validate(self)
    }

    /// A thin volume: a segment table of `size_bytes` whose segments all start Zero.
    pub fn thin(id: NodeId, size_bytes: u64, segment_bytes: u64) -> Layout {
        let len_entries = SegmentTable::entries_for(size_bytes, segment_bytes).unwrap_or(0);
        Layout::Segmented {
            id,
            size_bytes,
            segment_bytes,
            entries: SegmentTable::all_zero(len_entries),
        }
    }

    /// The node's id, for the kinds that have one (Mirror, Segmented).
    pub fn id(&self) -> Option<NodeId> {
        match self {
            Layout::Mirror { id, .. } | Layout::Segmented { id, .. } => Some(*id),
            Layout::Linear { .. } | Layout::Concat(_) | Layout::Stripe { .. } => None,
        }
    }

    /// The direct members of this node, in order (mirror legs included).
    pub fn members(&self) -> Vec<&Layout> {
        match self {
            Layout::Linear { .. } | Layout::Segmented { .. } => Vec::new(),
            Layout::Concat(members) | Layout::Stripe { members, .. } => members.iter().collect(),
            Layout::Mirror { legs, .. } => legs.iter().map(|leg| &leg.layout).collect(),
        }
    }

    /// The mirror or segment table node with `id` (searched at most [`MAX_LAYOUT_DEPTH`] levels
    /// deep): where the control thread applies a fault's resolution or a leg's new health.
    pub fn find(&self, id: NodeId) -> Option<&Layout> {
        self.find_within(id, MAX_LAYOUT_DEPTH)
    }

    fn find_within(&self, id: NodeId, levels: usize) -> Option<&Layout> {
        if self.id() == Some(id) {
            return Some(self);
        }
        let below = levels.checked_sub(1).filter(|&below| below > 0)?;
        self.members()
            .into_iter()
            .find_map(|member| member.find_within(id, below))
    }

    /// Mutable form of [`Layout::find`], to build the next generation's layout.
    pub fn find_mut(&mut self, id: NodeId) -> Option<&mut Layout> {
        self.find_within_mut(id, MAX_LAYOUT_DEPTH)
    }

    fn find_within_mut(&mut self, id: NodeId, levels: usize) -> Option<&mut Layout> {
        if self.id() == Some(id) {
            return Some(self);
        }
        let below = levels.checked_sub(1).filter(|&below| below > 0)?;
        match self {
            Layout::Linear { .. } | Layout::Segmented { .. } => None,
            Layout::Concat(members) | Layout::Stripe { members, .. } => members
                .iter_mut()
                .find_map(|member| member.find_within_mut(id, below)),
            Layout::Mirror { legs, .. } => legs
                .iter_mut()
                .find_map(|leg| leg.layout.find_within_mut(id, below)),
        }
    }
}

/// One piece of a planned request on one device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extent {
    pub device: DeviceId,
    pub device_offset_bytes: u64,
    pub len_bytes: u64,
    /// Offset of this piece within the request's buffer.
    pub request_offset_bytes: u64,
}

/// Why a request cannot be planned. Small and `Copy`: it travels on the hot path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// The range is not inside the volume. [`VolumeMap::plan`] also reports this, with
    /// `size_bytes` 0, for every non-empty request on a map that is not direct
    /// ([`VolumeMap::is_direct`]): plain extents cannot express mirror legs or segment states.
    #[error("range {offset_bytes}+{len_bytes} is beyond the volume end {size_bytes}")]
    OutOfRange {
        offset_bytes: u64,
        len_bytes: u64,
        size_bytes: u64,
    },
}
