//! Which byte ranges of which devices a volume uses: what the control thread checks before
//! handing a device range to another volume or returning it to a pool.

use crate::layout::DeviceId;
use crate::node::Node;
use crate::table::SegmentState;

/// `len_bytes` bytes of `device` from `offset_bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DeviceRange {
    pub device: DeviceId,
    pub offset_bytes: u64,
    pub len_bytes: u64,
}

impl DeviceRange {
    /// The end (exclusive), capped at 2^64 - 1.
    pub fn end_bytes(&self) -> u64 {
        self.offset_bytes.saturating_add(self.len_bytes)
    }
}

/// The device ranges the first `prefix_bytes` of `node` use, sorted by device and offset,
/// overlapping and adjacent ranges merged. Mirror legs count whatever their health; segments
/// count if they have a location (Mapped, NoWrite); unused stripe member tails do not count.
pub(crate) fn device_ranges(node: &Node, prefix_bytes: u64) -> Vec<DeviceRange> {
    let mut ranges = Vec::new();
    collect(node, prefix_bytes, &mut ranges);
    ranges.sort_unstable();
    let mut merged: Vec<DeviceRange> = Vec::with_capacity(ranges.len());
    for range in ranges {
        match merged.last_mut() {
            Some(last) if last.device == range.device && range.offset_bytes <= last.end_bytes() => {
                let end_bytes = last.end_bytes().max(range.end_bytes());
                last.len_bytes = end_bytes - last.offset_bytes;
            }
            _ => merged.push(range),
        }
    }
    merged
}

fn collect(node: &Node, prefix_bytes: u64, out: &mut Vec<DeviceRange>) {
    if prefix_bytes == 0 {
        return;
    }
    match node {
        Node::Linear(linear) => out.push(DeviceRange {
            device: linear.device,
            offset_bytes: linear.offset_bytes,
            len_bytes: prefix_bytes.min(linear.size_bytes),
        }),
        Node::Concat(concat) => {
            let mut left_bytes = prefix_bytes;
            for member in concat.members() {
                let take_bytes = left_bytes.min(member.size_bytes());
                collect(member, take_bytes, out);
                left_bytes -= take_bytes;
            }
        }
        Node::Stripe(stripe) => {
            let unit_bytes = stripe.unit_bytes();
            let members = stripe.members();
            let row_bytes = unit_bytes.saturating_mul(members.len() as u64);
            if row_bytes == 0 {
                return;
            }
            let prefix_bytes = prefix_bytes.min(stripe.size_bytes());
            let full_rows = prefix_bytes / row_bytes;
            let rest_bytes = prefix_bytes % row_bytes;
            for (index, member) in members.iter().enumerate() {
                let before_bytes = unit_bytes.saturating_mul(index as u64);
                let partial_bytes = rest_bytes.saturating_sub(before_bytes).min(unit_bytes);
                let used_bytes = full_rows.saturating_mul(unit_bytes) + partial_bytes;
                collect(member, used_bytes, out);
            }
        }
        Node::Mirror(mirror) => {
            for leg in mirror.legs() {
                collect(&leg.node, prefix_bytes, out);
            }
        }
        Node::Segmented(segmented) => {
            let segment_bytes = segmented.segment_bytes();
            let prefix_bytes = prefix_bytes.min(segmented.size_bytes());
            for state in [SegmentState::Mapped, SegmentState::NoWrite] {
                for (index, entry) in segmented.table().in_state(state) {
                    let Some(start_bytes) = index
                        .checked_mul(segment_bytes)
                        .filter(|start| *start < prefix_bytes)
                    else {
                        break;
                    };
                    let Some(location) = entry.location() else {
                        continue;
                    };
                    let len_bytes = segment_bytes
                        .min(prefix_bytes - start_bytes)
                        .min(u64::MAX - location.offset_bytes);
                    out.push(DeviceRange {
                        device: location.device,
                        offset_bytes: location.offset_bytes,
                        len_bytes,
                    });
                }
            }
        }
    }
}
