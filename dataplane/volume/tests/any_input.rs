//! No layout and no request makes the planner panic: arbitrary trees (empty members, zero
//! sizes, values near 2^64, deep nesting, mirrors with any legs and health, segment tables of
//! any length with locations anywhere, repeated node ids) and arbitrary ranges either plan
//! consistently or are refused.

use lunar_volume::{
    FirstReadable, IoOp, Layout, LegHealth, Location, MirrorLeg, PlanOutcome, ReadBalancer,
    ReadPolicy, SegmentEntry, SegmentTable, VolumeMap,
};
use proptest::prelude::*;

fn any_u64() -> impl Strategy<Value = u64> {
    prop_oneof![
        0u64..64,
        Just(u64::MAX),
        (u64::MAX - 64)..=u64::MAX,
        any::<u64>(),
        (0u32..64).prop_map(|shift| 1u64 << shift),
    ]
}

fn any_layout() -> impl Strategy<Value = Layout> {
    let leaf =
        (any::<u32>(), any_u64(), any_u64()).prop_map(|(device, offset_bytes, size_bytes)| {
            Layout::Linear {
                device,
                offset_bytes,
                size_bytes,
            }
        });
    let leaf = prop_oneof![leaf, any_segmented()];
    leaf.prop_recursive(20, 64, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Layout::Concat),
            (any_u64(), prop::collection::vec(inner.clone(), 0..4)).prop_map(
                |(unit_bytes, members)| Layout::Stripe {
                    unit_bytes,
                    members,
                }
            ),
            (
                any_id(),
                any::<bool>(),
                prop::collection::vec((inner.clone(), any_health()), 0..4)
            )
                .prop_map(|(id, least_outstanding, legs)| Layout::Mirror {
                    id,
                    read_policy: match least_outstanding {
                        true => ReadPolicy::LeastOutstanding,
                        false => ReadPolicy::RoundRobin,
                    },
                    legs: legs
                        .into_iter()
                        .map(|(layout, health)| MirrorLeg { layout, health })
                        .collect(),
                }),
            // Legs of equal size, so that more mirrors get past validation.
            (
                any_id(),
                inner.clone(),
                prop::collection::vec(any_health(), 1..4)
            )
                .prop_map(|(id, layout, healths)| Layout::Mirror {
                    id,
                    read_policy: ReadPolicy::RoundRobin,
                    legs: healths
                        .into_iter()
                        .enumerate()
                        .map(|(index, health)| {
                            let mut layout = layout.clone();
                            shift_ids(&mut layout, index as u32 * 1000);
                            MirrorLeg { layout, health }
                        })
                        .collect(),
                }),
        ]
    })
}

/// Node ids: mostly distinct, sometimes repeated.
fn any_id() -> impl Strategy<Value = u32> {
    prop_oneof![3 => any::<u32>(), 1 => 0u32..4]
}

/// Add `by` to every node id of `layout` (mirror legs copied from one another keep their ids
/// apart).
fn shift_ids(layout: &mut Layout, by: u32) {
    match layout {
        Layout::Linear { .. } => {}
        Layout::Concat(members) | Layout::Stripe { members, .. } => {
            members.iter_mut().for_each(|member| shift_ids(member, by))
        }
        Layout::Mirror { id, legs, .. } => {
            *id = id.wrapping_add(by);
            legs.iter_mut()
                .for_each(|leg| shift_ids(&mut leg.layout, by))
        }
        Layout::Segmented { id, .. } => *id = id.wrapping_add(by),
    }
}

fn any_health() -> impl Strategy<Value = LegHealth> {
    prop_oneof![
        Just(LegHealth::Healthy),
        Just(LegHealth::Faulty),
        any_u64().prop_map(|up_to_bytes| LegHealth::Resyncing { up_to_bytes }),
    ]
}

fn any_entry() -> impl Strategy<Value = SegmentEntry> {
    let location = || {
        (any::<u32>(), any_u64()).prop_map(|(device, offset_bytes)| Location {
            device,
            offset_bytes,
        })
    };
    prop_oneof![
        location().prop_map(SegmentEntry::Mapped),
        location().prop_map(SegmentEntry::NoWrite),
        Just(SegmentEntry::Zero),
        Just(SegmentEntry::Invalid),
        Just(SegmentEntry::Error),
    ]
}

/// Segment tables whose length is right for their size or anything at all, filled with one
/// entry or with a few different ones.
fn any_segmented() -> impl Strategy<Value = Layout> {
    (
        any_id(),
        any_u64(),
        any_u64(),
        any::<bool>(),
        any_u64(),
        any_entry(),
        prop::collection::vec((any_u64(), any_entry()), 0..4),
    )
        .prop_map(
            |(id, size_bytes, segment_bytes, right_length, any_length, fill, changes)| {
                let len = match right_length {
                    true => SegmentTable::entries_for(size_bytes, segment_bytes).unwrap_or(0),
                    false => any_length,
                };
                let mut editor = SegmentTable::filled(len, fill).edit();
                for (index, entry) in changes {
                    let _ = editor.set(index % len.max(1), entry);
                }
                Layout::Segmented {
                    id,
                    size_bytes,
                    segment_bytes,
                    entries: editor.finish(),
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn any_layout_and_request_plans_or_is_refused(
        layout in any_layout(),
        requests in prop::collection::vec((any_u64(), any_u64()), 1..8),
    ) {
        let validated = layout.validate();
        let map = VolumeMap::new(layout.clone());
        match (&validated, VolumeMap::try_new(layout)) {
            (Ok(size_bytes), Ok(checked)) => {
                prop_assert_eq!(map.size_bytes, *size_bytes);
                prop_assert_eq!(&map, &checked);
            }
            (Err(expected), Err(error)) => {
                prop_assert_eq!(expected, &error);
                prop_assert_eq!(map.size_bytes, 0);
            }
            (validated, checked) => {
                prop_assert!(false, "validate {:?} but try_new {:?}", validated, checked.map(|m| m.size_bytes));
            }
        }
        for (offset, len) in requests {
            let mut out = Vec::new();
            let in_range = offset.checked_add(len).is_some_and(|end| end <= map.size_bytes);
            // Huge in-range requests on huge volumes are fine to plan, but may produce many
            // extents: bound the work by skipping those whose pieces could be numerous.
            if in_range && len > (1 << 16) {
                continue;
            }
            let planned = map.plan(offset, len, &mut out);
            prop_assert_eq!(planned.is_ok(), in_range && (map.is_direct() || len == 0));
            if planned.is_ok() {
                prop_assert_eq!(out.iter().map(|e| e.len_bytes).sum::<u64>(), len);
            } else {
                prop_assert!(out.is_empty());
            }
            let mut balancer = ReadBalancer::new();
            for op in [IoOp::Read, IoOp::Write] {
                let mut steps = Vec::new();
                let planned = match op {
                    IoOp::Read => map.plan_io(op, offset, len, &mut balancer, &mut steps),
                    IoOp::Write => map.plan_io(op, offset, len, &mut FirstReadable, &mut steps),
                };
                prop_assert_eq!(planned.is_ok(), in_range);
                if planned == Ok(PlanOutcome::Ready) && op == IoOp::Read {
                    let covered: u64 = steps.iter().filter_map(|s| s.request_range()).map(|(_, l)| l).sum();
                    prop_assert_eq!(covered, len);
                }
                if planned.is_err() {
                    prop_assert!(steps.is_empty());
                }
            }
            let mut pieces = Vec::new();
            prop_assert_eq!(map.segments_in(offset, len, &mut pieces).is_ok(), in_range);
        }
        if map.size_bytes < 1 << 16 {
            for range in map.devices_used() {
                prop_assert!(map.devices().contains(&range.device));
            }
        }
    }
}
