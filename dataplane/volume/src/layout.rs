//! The contract between the control plane and the data path: the layout tree a volume is built
//! from, the extents a request is planned into, and [`VolumeMap`], the compiled immutable mapping
//! the reactors plan against.

use std::fmt;

use crate::error::LayoutError;
use crate::node::Node;
use crate::split::{split, Sink};

/// Index of a backing device in the published table.
pub type DeviceId = u32;

/// How many levels a layout tree may nest (a lone `Linear` is one level). Bounds the recursion of
/// validation and planning; real trees (mirror of stripes of concats of segment tables) use a few.
pub const MAX_LAYOUT_DEPTH: usize = 16;

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
}

impl Layout {
    /// Check that the tree describes a usable volume and return its size in bytes: no empty
    /// concat or stripe, no zero-sized extent, no zero stripe unit, no stripe member smaller
    /// than one unit, no arithmetic beyond 2^64, at most [`MAX_LAYOUT_DEPTH`] levels.
    pub fn validate(&self) -> Result<u64, LayoutError> {
        crate::validate::validate(self)
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
    #[error("range {offset_bytes}+{len_bytes} is beyond the volume end {size_bytes}")]
    OutOfRange {
        offset_bytes: u64,
        len_bytes: u64,
        size_bytes: u64,
    },
}

/// An immutable compiled volume mapping.
///
/// `root` and `size_bytes` are the layout and its size; treat them as read-only (the lookup
/// tables are derived from them at construction).
#[derive(Clone, PartialEq, Eq)]
pub struct VolumeMap {
    pub root: Layout,
    pub size_bytes: u64,
    compiled: Node,
}

impl VolumeMap {
    /// Compile a layout, or explain why it is not a usable volume. The control plane uses this
    /// for every layout it did not build itself.
    pub fn try_new(root: Layout) -> Result<Self, LayoutError> {
        let size_bytes = root.validate()?;
        let compiled = Node::compile(&root);
        debug_assert_eq!(compiled.size_bytes(), size_bytes);
        Ok(VolumeMap {
            root,
            size_bytes,
            compiled,
        })
    }

    /// Compile a layout that is known to be valid. Never panics: an invalid layout (one that
    /// [`VolumeMap::try_new`] rejects) gives a map of size 0, on which every non-empty request
    /// is [`PlanError::OutOfRange`].
    pub fn new(root: Layout) -> Self {
        match root.validate() {
            Ok(size_bytes) => {
                let compiled = Node::compile(&root);
                VolumeMap {
                    root,
                    size_bytes,
                    compiled,
                }
            }
            Err(_) => VolumeMap {
                root,
                size_bytes: 0,
                compiled: Node::empty(),
            },
        }
    }

    /// Append the extents of `[offset, offset+len)` to `out` in request order.
    ///
    /// The appended extents are never empty, each lies inside one `Linear` member, and their
    /// `request_offset_bytes` run contiguously from 0 to `len_bytes`. A zero-length request
    /// inside the volume appends nothing. On error `out` is left as it was.
    pub fn plan(
        &self,
        offset_bytes: u64,
        len_bytes: u64,
        out: &mut Vec<Extent>,
    ) -> Result<(), PlanError> {
        let in_range = offset_bytes
            .checked_add(len_bytes)
            .is_some_and(|end_bytes| end_bytes <= self.size_bytes);
        if !in_range {
            return Err(PlanError::OutOfRange {
                offset_bytes,
                len_bytes,
                size_bytes: self.size_bytes,
            });
        }
        if len_bytes > 0 {
            split(
                &self.compiled,
                offset_bytes,
                len_bytes,
                0,
                &mut Sink::new(out),
            );
        }
        Ok(())
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
