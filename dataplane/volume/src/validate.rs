//! Validation of a layout tree: the checks that make every later lookup infallible (non-empty
//! nodes, equal mirror legs, one table entry per segment, unique node ids, no arithmetic past
//! 2^64, bounded depth), and the volume size they yield.

use std::collections::HashSet;

use crate::error::{LayoutError, LayoutPath};
use crate::layout::{Layout, LegHealth, NodeId, MAX_LAYOUT_DEPTH, MAX_MIRROR_LEGS};
use crate::table::SegmentTable;

/// Check `layout` and return its size in bytes.
pub(crate) fn validate(layout: &Layout) -> Result<u64, LayoutError> {
    size_of(layout, 1, &mut HashSet::new())
}

/// Size of `layout`, which sits `depth` levels down (the root is level 1); `ids` collects the
/// node ids seen so far. Recursion stops at [`MAX_LAYOUT_DEPTH`], so even a hostile tree costs
/// bounded stack.
fn size_of(layout: &Layout, depth: usize, ids: &mut HashSet<NodeId>) -> Result<u64, LayoutError> {
    let at = LayoutPath::default;
    if depth > MAX_LAYOUT_DEPTH {
        return Err(LayoutError::TooDeep {
            at: at(),
            max_depth: MAX_LAYOUT_DEPTH,
        });
    }
    if let Some(id) = layout.id() {
        if !ids.insert(id) {
            return Err(LayoutError::DuplicateNodeId { at: at(), id });
        }
    }
    match layout {
        Layout::Linear {
            device,
            offset_bytes,
            size_bytes,
        } => {
            if *size_bytes == 0 {
                return Err(LayoutError::EmptyLinear {
                    at: at(),
                    device: *device,
                });
            }
            if offset_bytes.checked_add(*size_bytes).is_none() {
                return Err(LayoutError::DeviceRangeOverflow {
                    at: at(),
                    device: *device,
                    offset_bytes: *offset_bytes,
                    size_bytes: *size_bytes,
                });
            }
            Ok(*size_bytes)
        }
        Layout::Concat(members) => {
            if members.is_empty() {
                return Err(LayoutError::EmptyConcat { at: at() });
            }
            let mut total_bytes: u64 = 0;
            for (index, member) in members.iter().enumerate() {
                let member_bytes =
                    size_of(member, depth + 1, ids).map_err(|e| e.inside_member(index))?;
                total_bytes = total_bytes
                    .checked_add(member_bytes)
                    .ok_or(LayoutError::SizeOverflow { at: at() })?;
            }
            Ok(total_bytes)
        }
        Layout::Stripe {
            unit_bytes,
            members,
        } => {
            if members.is_empty() {
                return Err(LayoutError::EmptyStripe { at: at() });
            }
            if *unit_bytes == 0 {
                return Err(LayoutError::ZeroStripeUnit { at: at() });
            }
            let mut smallest_bytes = u64::MAX;
            for (index, member) in members.iter().enumerate() {
                let member_bytes =
                    size_of(member, depth + 1, ids).map_err(|e| e.inside_member(index))?;
                if member_bytes < *unit_bytes {
                    return Err(LayoutError::StripeMemberTooSmall {
                        at: at(),
                        member: index,
                        member_size_bytes: member_bytes,
                        unit_bytes: *unit_bytes,
                    });
                }
                smallest_bytes = smallest_bytes.min(member_bytes);
            }
            let used_per_member_bytes = stripe_used_per_member_bytes(smallest_bytes, *unit_bytes);
            u64::try_from(members.len())
                .ok()
                .and_then(|width| used_per_member_bytes.checked_mul(width))
                .ok_or(LayoutError::SizeOverflow { at: at() })
        }
        Layout::Mirror { legs, .. } => {
            if legs.is_empty() {
                return Err(LayoutError::EmptyMirror { at: at() });
            }
            if legs.len() > MAX_MIRROR_LEGS {
                return Err(LayoutError::TooManyMirrorLegs {
                    at: at(),
                    legs: legs.len(),
                    max_legs: MAX_MIRROR_LEGS,
                });
            }
            let mut first_leg_size_bytes = None;
            for (index, leg) in legs.iter().enumerate() {
                let leg_size_bytes =
                    size_of(&leg.layout, depth + 1, ids).map_err(|e| e.inside_member(index))?;
                let first_leg_size_bytes = *first_leg_size_bytes.get_or_insert(leg_size_bytes);
                if leg_size_bytes != first_leg_size_bytes {
                    return Err(LayoutError::MirrorLegSizeMismatch {
                        at: at(),
                        leg: index,
                        leg_size_bytes,
                        first_leg_size_bytes,
                    });
                }
                if let LegHealth::Resyncing { up_to_bytes } = leg.health {
                    if up_to_bytes > leg_size_bytes {
                        return Err(LayoutError::ResyncPointBeyondLeg {
                            at: at(),
                            leg: index,
                            up_to_bytes,
                            leg_size_bytes,
                        });
                    }
                }
            }
            Ok(first_leg_size_bytes.unwrap_or(0))
        }
        Layout::Segmented {
            id,
            size_bytes,
            segment_bytes,
            entries,
        } => {
            let id = *id;
            if *size_bytes == 0 {
                return Err(LayoutError::EmptySegmented { at: at(), id });
            }
            let expected = SegmentTable::entries_for(*size_bytes, *segment_bytes)
                .ok_or(LayoutError::ZeroSegmentSize { at: at(), id })?;
            if entries.len() != expected {
                return Err(LayoutError::SegmentCountMismatch {
                    at: at(),
                    id,
                    expected,
                    actual: entries.len(),
                });
            }
            Ok(*size_bytes)
        }
    }
}

/// Bytes of each stripe member in use: the smallest member's size in whole units.
pub(crate) fn stripe_used_per_member_bytes(smallest_member_bytes: u64, unit_bytes: u64) -> u64 {
    smallest_member_bytes - smallest_member_bytes % unit_bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn linear(device: u32, offset_bytes: u64, size_bytes: u64) -> Layout {
        Layout::Linear {
            device,
            offset_bytes,
            size_bytes,
        }
    }

    #[test]
    fn sizes_add_up_through_nesting() {
        let layout = Layout::Concat(vec![
            linear(0, 0, 10),
            Layout::Concat(vec![linear(1, 5, 7), linear(0, 100, 3)]),
        ]);
        assert_eq!(layout.validate(), Ok(20));
    }

    #[test]
    fn stripe_size_is_width_times_smallest_member_in_whole_units() {
        let layout = Layout::Stripe {
            unit_bytes: 4,
            members: vec![linear(0, 0, 11), linear(1, 0, 30), linear(2, 0, 9)],
        };
        // Smallest member 9 bytes -> 2 whole units of 4 -> 8 bytes used on each of 3 members.
        assert_eq!(layout.validate(), Ok(24));
    }

    #[test]
    fn empty_concat_is_named_by_its_path() {
        let layout = Layout::Concat(vec![linear(0, 0, 1), Layout::Concat(vec![])]);
        let err = layout.validate().unwrap_err();
        assert_eq!(
            err,
            LayoutError::EmptyConcat {
                at: LayoutPath {
                    member_indices: vec![1]
                }
            }
        );
        assert_eq!(
            err.to_string(),
            "layout node root[1]: concat has no members"
        );
    }

    #[test]
    fn zero_sized_linear_is_rejected_with_its_device() {
        let layout = Layout::Concat(vec![
            linear(0, 0, 1),
            Layout::Concat(vec![linear(2, 0, 4), linear(3, 8, 0)]),
        ]);
        let err = layout.validate().unwrap_err();
        assert_eq!(
            err.to_string(),
            "layout node root[1][1]: linear extent on device 3 has size 0"
        );
    }

    #[test]
    fn empty_root_concat_is_reported_at_root() {
        let err = Layout::Concat(vec![]).validate().unwrap_err();
        assert_eq!(err.to_string(), "layout node root: concat has no members");
    }

    #[test]
    fn device_range_past_two_to_the_64_is_rejected() {
        let err = linear(7, u64::MAX - 3, 4).validate().unwrap_err();
        assert!(matches!(
            err,
            LayoutError::DeviceRangeOverflow {
                device: 7,
                size_bytes: 4,
                ..
            }
        ));
        assert!(err.to_string().contains("beyond the largest byte address"));
        assert_eq!(linear(7, u64::MAX - 4, 4).validate(), Ok(4));
    }

    #[test]
    fn concat_size_overflow_is_rejected() {
        let layout = Layout::Concat(vec![linear(0, 0, u64::MAX), linear(1, 0, 1)]);
        let err = layout.validate().unwrap_err();
        assert_eq!(
            err,
            LayoutError::SizeOverflow {
                at: LayoutPath::default()
            }
        );
        assert_eq!(
            err.to_string(),
            "layout node root: its members add up to more than 2^64 bytes"
        );
    }

    #[test]
    fn stripe_size_overflow_is_rejected() {
        let layout = Layout::Stripe {
            unit_bytes: 1 << 62,
            members: vec![linear(0, 0, 1 << 62); 4],
        };
        assert!(matches!(
            layout.validate(),
            Err(LayoutError::SizeOverflow { .. })
        ));
    }

    #[test]
    fn stripe_checks_unit_members_and_member_size() {
        let no_members = Layout::Stripe {
            unit_bytes: 4,
            members: vec![],
        };
        assert_eq!(
            no_members.validate().unwrap_err().to_string(),
            "layout node root: stripe has no members"
        );
        let zero_unit = Layout::Stripe {
            unit_bytes: 0,
            members: vec![linear(0, 0, 8)],
        };
        assert_eq!(
            zero_unit.validate().unwrap_err().to_string(),
            "layout node root: stripe unit is 0 bytes"
        );
        let too_small = Layout::Stripe {
            unit_bytes: 8,
            members: vec![linear(0, 0, 8), linear(1, 0, 7)],
        };
        assert_eq!(
            too_small.validate().unwrap_err().to_string(),
            "layout node root: stripe member 1 has 7 bytes, less than one stripe unit of 8 bytes"
        );
    }

    #[test]
    fn depth_is_bounded_and_the_limit_itself_is_allowed() {
        let mut at_limit = linear(0, 0, 1);
        for _ in 1..MAX_LAYOUT_DEPTH {
            at_limit = Layout::Concat(vec![at_limit]);
        }
        assert_eq!(at_limit.validate(), Ok(1));
        let too_deep = Layout::Concat(vec![at_limit]);
        let err = too_deep.validate().unwrap_err();
        assert!(
            matches!(err, LayoutError::TooDeep { max_depth, .. } if max_depth == MAX_LAYOUT_DEPTH)
        );
        assert_eq!(err.at().member_indices, vec![0; MAX_LAYOUT_DEPTH]);
    }

    #[test]
    fn first_error_in_member_order_wins() {
        let layout = Layout::Concat(vec![Layout::Concat(vec![]), linear(0, 0, 0)]);
        assert!(matches!(
            layout.validate(),
            Err(LayoutError::EmptyConcat { .. })
        ));
    }
}
