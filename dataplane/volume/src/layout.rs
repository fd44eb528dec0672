//! Contract of the layout tree and planner; implementation to follow in sibling modules.

/// Index of a backing device in the published table.
pub type DeviceId = u32;

/// A node of a volume's layout tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    Linear {
        device: DeviceId,
        offset_bytes: u64,
        size_bytes: u64,
    },
    Concat(Vec<Layout>),
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

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("range {offset_bytes}+{len_bytes} is beyond the volume end {size_bytes}")]
    OutOfRange {
        offset_bytes: u64,
        len_bytes: u64,
        size_bytes: u64,
    },
}

/// An immutable compiled volume mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeMap {
    pub root: Layout,
    pub size_bytes: u64,
}

impl VolumeMap {
    pub fn new(root: Layout) -> Self {
        let size_bytes = 0;
        let _ = &root;
        VolumeMap { root, size_bytes }
    }
    /// Append the extents of `[offset, offset+len)` to `out` in request order.
    pub fn plan(
        &self,
        _offset_bytes: u64,
        _len_bytes: u64,
        _out: &mut Vec<Extent>,
    ) -> Result<(), PlanError> {
        unimplemented!("contract only")
    }
}
