//! Why a layout is not a usable volume, and where in the tree the problem is.

use std::fmt;

/// Where a node sits in a layout tree: the member index (leg index for a mirror) at each level,
/// from the root.
/// Displayed as `root` for the root itself and `root[2][0]` for member 0 of member 2 of the root.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LayoutPath {
    /// Member indices from the root down.
    pub member_indices: Vec<usize>,
}

impl fmt::Display for LayoutPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("root")?;
        for index in &self.member_indices {
            write!(f, "[{index}]")?;
        }
        Ok(())
    }
}

/// A layout that cannot be compiled into a volume. Control-path error: messages name the node.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    #[error("layout node {at}: concat has no members")]
    EmptyConcat { at: LayoutPath },
    #[error("layout node {at}: linear extent on device {device} has size 0")]
    EmptyLinear { at: LayoutPath, device: u32 },
    #[error(
        "layout node {at}: linear extent on device {device} at offset {offset_bytes} with size \
         {size_bytes} ends beyond the largest byte address (2^64)"
    )]
    DeviceRangeOverflow {
        at: LayoutPath,
        device: u32,
        offset_bytes: u64,
        size_bytes: u64,
    },
    #[error("layout node {at}: its members add up to more than 2^64 bytes")]
    SizeOverflow { at: LayoutPath },
    #[error("layout node {at}: stripe has no members")]
    EmptyStripe { at: LayoutPath },
    #[error("layout node {at}: stripe unit is 0 bytes")]
    ZeroStripeUnit { at: LayoutPath },
    #[error(
        "layout node {at}: stripe member {member} has {member_size_bytes} bytes, less than one \
         stripe unit of {unit_bytes} bytes"
    )]
    StripeMemberTooSmall {
        at: LayoutPath,
        member: usize,
        member_size_bytes: u64,
        unit_bytes: u64,
    },
    #[error("layout node {at}: the tree is nested more than {max_depth} levels deep")]
    TooDeep { at: LayoutPath, max_depth: usize },
    #[error("layout node {at}: mirror has no legs")]
    EmptyMirror { at: LayoutPath },
    #[error("layout node {at}: mirror has {legs} legs, more than the {max_legs} allowed")]
    TooManyMirrorLegs {
        at: LayoutPath,
        legs: usize,
        max_legs: usize,
    },
    #[error(
        "layout node {at}: mirror leg {leg} has {leg_size_bytes} bytes but leg 0 has \
         {first_leg_size_bytes}; mirror legs must be the same size"
    )]
    MirrorLegSizeMismatch {
        at: LayoutPath,
        leg: usize,
        leg_size_bytes: u64,
        first_leg_size_bytes: u64,
    },
    #[error(
        "layout node {at}: mirror leg {leg} resyncs up to byte {up_to_bytes}, beyond its \
         {leg_size_bytes} bytes"
    )]
    ResyncPointBeyondLeg {
        at: LayoutPath,
        leg: usize,
        up_to_bytes: u64,
        leg_size_bytes: u64,
    },
    #[error("layout node {at}: segment table {id} has size 0")]
    EmptySegmented { at: LayoutPath, id: u32 },
    #[error("layout node {at}: segment table {id} has a segment size of 0 bytes")]
    ZeroSegmentSize { at: LayoutPath, id: u32 },
    #[error(
        "layout node {at}: segment table {id} has {actual} entries, but its size cut into \
         segments needs {expected}"
    )]
    SegmentCountMismatch {
        at: LayoutPath,
        id: u32,
        expected: u64,
        actual: u64,
    },
    #[error("layout node {at}: node id {id} is already used by another node of the volume")]
    DuplicateNodeId { at: LayoutPath, id: u32 },
}

impl LayoutError {
    /// The node the error is about.
    pub fn at(&self) -> &LayoutPath {
        match self {
            LayoutError::EmptyConcat { at }
            | LayoutError::EmptyLinear { at, .. }
            | LayoutError::DeviceRangeOverflow { at, .. }
            | LayoutError::SizeOverflow { at }
            | LayoutError::EmptyStripe { at }
            | LayoutError::ZeroStripeUnit { at }
            | LayoutError::StripeMemberTooSmall { at, .. }
            | LayoutError::TooDeep { at, .. }
            | LayoutError::EmptyMirror { at }
            | LayoutError::TooManyMirrorLegs { at, .. }
            | LayoutError::MirrorLegSizeMismatch { at, .. }
            | LayoutError::ResyncPointBeyondLeg { at, .. }
            | LayoutError::EmptySegmented { at, .. }
            | LayoutError::ZeroSegmentSize { at, .. }
            | LayoutError::SegmentCountMismatch { at, .. }
            | LayoutError::DuplicateNodeId { at, .. } => at,
        }
    }

    /// Record that the node this error is about is member `index` of its parent. Called while
    /// the error travels up the tree, so indices are added innermost first.
    pub(crate) fn inside_member(mut self, index: usize) -> Self {
        self.at_mut().member_indices.insert(0, index);
        self
    }

    fn at_mut(&mut self) -> &mut LayoutPath {
        match self {
            LayoutError::EmptyConcat { at }
            | LayoutError::EmptyLinear { at, .. }
            | LayoutError::DeviceRangeOverflow { at, .. }
            | LayoutError::SizeOverflow { at }
            | LayoutError::EmptyStripe { at }
            | LayoutError::ZeroStripeUnit { at }
            | LayoutError::StripeMemberTooSmall { at, .. }
            | LayoutError::TooDeep { at, .. }
            | LayoutError::EmptyMirror { at }
            | LayoutError::TooManyMirrorLegs { at, .. }
            | LayoutError::MirrorLegSizeMismatch { at, .. }
            | LayoutError::ResyncPointBeyondLeg { at, .. }
            | LayoutError::EmptySegmented { at, .. }
            | LayoutError::ZeroSegmentSize { at, .. }
            | LayoutError::SegmentCountMismatch { at, .. }
            | LayoutError::DuplicateNodeId { at, .. } => at,
        }
    }
}
