//! The compiled layout tree the planner walks: each `Layout` node with the lookup tables it
//! needs precomputed. Built only from validated layouts, so every lookup is in bounds.

use crate::concat::Concat;
use crate::layout::{DeviceId, Layout};
use crate::stripe::Stripe;

/// One compiled node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Node {
    Linear(Linear),
    Concat(Concat),
    Stripe(Stripe),
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
        }
    }
}
