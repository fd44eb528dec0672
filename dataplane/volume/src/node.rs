//! The compiled layout tree the planner walks: each `Layout` node with the lookup tables it
//! needs precomputed. Built only from validated layouts, so every lookup is in bounds.

use crate::concat::Concat;
use crate::layout::{DeviceId, Layout};
use crate::mirror::{Mirror, MirrorLegNode};
use crate::segmented::Segmented;
use crate::stripe::Stripe;

/// One compiled node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Node {
    Linear(Linear),
    Concat(Concat),
    Stripe(Stripe),
    Mirror(Mirror),
    Segmented(Segmented),
}

/// A range of one device; the leaf every request piece ends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Linear {
    pub(crate) device: DeviceId,
    pub(crate) offset_bytes: u64,
    pub(crate) size_bytes: u64,
}

/// The part of a request that one member serves: the member, where in the member the piece
/// starts, and how many bytes the member holds from there before the node's next boundary.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Piece<'a> {
    pub(crate) member: &'a Node,
    pub(crate) member_offset_bytes: u64,
    pub(crate) until_boundary_bytes: u64,
}

impl Node {
    /// Compile a layout that `Layout::validate` accepted.
    pub(crate) fn compile(layout: &Layout) -> Node {
        match layout {
            Layout::Linear {
                device,
                offset_bytes,
                size_bytes,
            } => Node::Linear(Linear {
                device: *device,
                offset_bytes: *offset_bytes,
                size_bytes: *size_bytes,
            }),
            Layout::Concat(members) => {
                Node::Concat(Concat::new(members.iter().map(Node::compile).collect()))
            }
            Layout::Stripe {
                unit_bytes,
                members,
            } => Node::Stripe(Stripe::new(
                *unit_bytes,
                members.iter().map(Node::compile).collect(),
            )),
            Layout::Mirror {
                id,
                read_policy,
                legs,
            } => Node::Mirror(Mirror::new(
                *id,
                *read_policy,
                legs.iter()
                    .map(|leg| MirrorLegNode {
                        node: Node::compile(&leg.layout),
                        health: leg.health,
                    })
                    .collect(),
            )),
            Layout::Segmented {
                id,
                size_bytes,
                segment_bytes,
                entries,
            } => Node::Segmented(Segmented::new(
                *id,
                *size_bytes,
                *segment_bytes,
                entries.clone(),
            )),
        }
    }

    /// The node of a map whose layout was invalid: size 0, never planned into.
    pub(crate) fn empty() -> Node {
        Node::Concat(Concat::new(Vec::new()))
    }

    pub(crate) fn size_bytes(&self) -> u64 {
        match self {
            Node::Linear(linear) => linear.size_bytes,
            Node::Concat(concat) => concat.size_bytes(),
            Node::Stripe(stripe) => stripe.size_bytes(),
            Node::Mirror(mirror) => mirror.size_bytes(),
            Node::Segmented(segmented) => segmented.size_bytes(),
        }
    }

    /// Whether every byte lives on exactly one device, with no state: only Linear, Concat and
    /// Stripe nodes.
    pub(crate) fn is_direct(&self) -> bool {
        match self {
            Node::Linear(_) => true,
            Node::Concat(concat) => concat.members().iter().all(Node::is_direct),
            Node::Stripe(stripe) => stripe.members().iter().all(Node::is_direct),
            Node::Mirror(_) | Node::Segmented(_) => false,
        }
    }

    /// Every device the node names (leaves and segment locations), possibly repeated.
    pub(crate) fn collect_devices(&self, out: &mut Vec<DeviceId>) {
        match self {
            Node::Linear(linear) => out.push(linear.device),
            Node::Concat(concat) => concat.members().iter().for_each(|m| m.collect_devices(out)),
            Node::Stripe(stripe) => stripe.members().iter().for_each(|m| m.collect_devices(out)),
            Node::Mirror(mirror) => mirror
                .legs()
                .iter()
                .for_each(|leg| leg.node.collect_devices(out)),
            Node::Segmented(segmented) => out.extend(segmented.table().devices()),
        }
    }
}
