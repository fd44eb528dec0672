//! The plain device extents under a volume range: where the bytes of `[offset, offset + len)`
//! live on linear extents, through concats, stripes and every writable mirror leg (segment
//! tables are left out: their segments are found with `VolumeMap::segments_in`). Deallocation
//! zeroes these, as a write to the range would reach them.
//!
//! A stripe member's share of any volume range is one contiguous member range (the rows between
//! the first and the last are whole), so a range costs one piece per member, not one per unit.

use lunar_volume::layout::{DeviceId, Layout, MAX_LAYOUT_DEPTH};

/// A piece of a volume range on one device: `(device, device offset, len)`.
pub(super) type DevicePiece = (DeviceId, u64, u64);

/// Size of a layout node (the layout is valid: sizes do not overflow).
fn size_of(layout: &Layout) -> u64 {
    match layout {
        Layout::Linear { size_bytes, .. } | Layout::Segmented { size_bytes, .. } => *size_bytes,
        Layout::Concat(members) => members.iter().map(size_of).sum(),
        Layout::Stripe {
            unit_bytes,
            members,
        } => {
            let smallest = members.iter().map(size_of).min().unwrap_or(0);
            (smallest / unit_bytes.max(&1)) * unit_bytes * members.len() as u64
        }
        Layout::Mirror { legs, .. } => legs.first().map_or(0, |leg| size_of(&leg.layout)),
    }
}

/// Append the plain extents of `[offset, offset + len)` of `layout` to `out`.
pub(super) fn plain_extents(layout: &Layout, offset: u64, len: u64, out: &mut Vec<DevicePiece>) {
    walk(layout, offset, len, out, MAX_LAYOUT_DEPTH);
}

fn walk(layout: &Layout, offset: u64, len: u64, out: &mut Vec<DevicePiece>, levels: usize) {
    if len == 0 || levels == 0 {
        return;
    }
    let below = levels - 1;
    match layout {
        Layout::Linear {
            device,
            offset_bytes,
            ..
        } => out.push((*device, offset_bytes + offset, len)),
        Layout::Segmented { .. } => {}
        Layout::Concat(members) => {
            let end = offset + len;
            let mut start = 0u64;
            for member in members {
                let size = size_of(member);
                let from = offset.max(start);
                let to = end.min(start + size);
                if from < to {
                    walk(member, from - start, to - from, out, below);
                }
                start += size;
                if start >= end {
                    break;
                }
            }
        }
        Layout::Stripe {
            unit_bytes,
            members,
        } => {
            let unit = *unit_bytes;
            let count = members.len() as u64;
            if unit == 0 || count == 0 {
                return;
            }
            let last = offset + len - 1;
            let member_offset = |byte: u64| (byte / unit / count) * unit + byte % unit;
            let (first_unit, last_unit) = (offset / unit, last / unit);
            for (index, member) in members.iter().enumerate() {
                let index = index as u64;
                let first = first_unit + (index + count - first_unit % count) % count;
                let Some(final_unit) =
                    last_unit.checked_sub((last_unit % count + count - index) % count)
                else {
                    continue;
                };
                if first > final_unit {
                    continue;
                }
                let start = if first == first_unit {
                    offset
                } else {
                    first * unit
                };
                let end = if final_unit == last_unit {
                    last
                } else {
                    final_unit * unit + unit - 1
                };
                let from = member_offset(start);
                walk(member, from, member_offset(end) + 1 - from, out, below);
            }
        }
        Layout::Mirror { legs, .. } => {
            for leg in legs.iter().filter(|leg| leg.health.can_write()) {
                walk(&leg.layout, offset, len, out, below);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lunar_volume::layout::{LegHealth, MirrorLeg, ReadPolicy};
    use lunar_volume::SegmentTable;
    use proptest::prelude::*;

    fn linear(device: DeviceId, offset_bytes: u64, size_bytes: u64) -> Layout {
        Layout::Linear {
            device,
            offset_bytes,
            size_bytes,
        }
    }

    /// Byte by byte: where each byte of the range lands, on every writable leg.
    fn oracle(layout: &Layout, offset: u64, len: u64) -> Vec<(DeviceId, u64)> {
        let mut bytes = Vec::new();
        for byte in offset..offset + len {
            locate(layout, byte, &mut bytes);
        }
        bytes.sort_unstable();
        bytes
    }

    fn locate(layout: &Layout, byte: u64, out: &mut Vec<(DeviceId, u64)>) {
        match layout {
            Layout::Linear {
                device,
                offset_bytes,
                ..
            } => out.push((*device, offset_bytes + byte)),
            Layout::Segmented { .. } => {}
            Layout::Concat(members) => {
                let mut start = 0;
                for member in members {
                    let size = size_of(member);
                    if byte < start + size {
                        return locate(member, byte - start, out);
                    }
                    start += size;
                }
            }
            Layout::Stripe {
                unit_bytes,
                members,
            } => {
                let unit = byte / unit_bytes;
                let n = members.len() as u64;
                let within = (unit / n) * unit_bytes + byte % unit_bytes;
                locate(&members[(unit % n) as usize], within, out);
            }
            Layout::Mirror { legs, .. } => {
                for leg in legs.iter().filter(|l| l.health.can_write()) {
                    locate(&leg.layout, byte, out);
                }
            }
        }
    }

    fn expand(pieces: &[DevicePiece]) -> Vec<(DeviceId, u64)> {
        let mut bytes: Vec<(DeviceId, u64)> = pieces
            .iter()
            .flat_map(|&(device, offset, len)| (offset..offset + len).map(move |b| (device, b)))
            .collect();
        bytes.sort_unstable();
        bytes
    }

    fn sample() -> Layout {
        Layout::Concat(vec![
            linear(0, 100, 40),
            Layout::Stripe {
                unit_bytes: 8,
                members: vec![linear(1, 0, 40), linear(2, 1000, 35), linear(3, 0, 64)],
            },
            Layout::Mirror {
                id: 1,
                read_policy: ReadPolicy::RoundRobin,
                legs: vec![
                    MirrorLeg {
                        layout: linear(4, 0, 30),
                        health: LegHealth::Healthy,
                    },
                    MirrorLeg {
                        layout: linear(5, 0, 30),
                        health: LegHealth::Faulty,
                    },
                    MirrorLeg {
                        layout: Layout::Concat(vec![
                            linear(6, 7, 10),
                            Layout::Segmented {
                                id: 2,
                                size_bytes: 20,
                                segment_bytes: 8,
                                entries: SegmentTable::all_zero(3),
                            },
                        ]),
                        health: LegHealth::Resyncing { up_to_bytes: 0 },
                    },
                ],
            },
        ])
    }

    #[test]
    fn stripes_give_one_piece_per_member() {
        let stripe = Layout::Stripe {
            unit_bytes: 4096,
            members: vec![linear(1, 0, 1 << 30), linear(2, 0, 1 << 30)],
        };
        let mut out = Vec::new();
        plain_extents(&stripe, 1024, (1 << 30) - 2048, &mut out);
        assert_eq!(out.len(), 2, "{out:?}");
    }

    #[test]
    fn faulty_legs_and_segment_tables_get_nothing() {
        let mut out = Vec::new();
        let layout = sample();
        plain_extents(&layout, 0, size_of(&layout), &mut out);
        assert!(out.iter().all(|&(device, _, _)| device != 5));
        assert_eq!(expand(&out), oracle(&layout, 0, size_of(&layout)));
    }

    proptest! {
        #[test]
        fn every_byte_lands_where_a_write_would(offset in 0u64..136, len in 0u64..136) {
            let layout = sample();
            let size = size_of(&layout);
            prop_assume!(offset + len <= size);
            let mut out = Vec::new();
            plain_extents(&layout, offset, len, &mut out);
            prop_assert_eq!(expand(&out), oracle(&layout, offset, len));
        }
    }
}
