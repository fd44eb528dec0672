//! No layout and no request makes the planner panic: arbitrary trees (empty members, zero
//! sizes, values near 2^64, deep nesting) and arbitrary ranges either plan consistently or are
//! refused.

use lunar_volume::{Layout, VolumeMap};
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
    leaf.prop_recursive(20, 64, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Layout::Concat),
            (any_u64(), prop::collection::vec(inner, 0..4)).prop_map(|(unit_bytes, members)| {
                Layout::Stripe {
                    unit_bytes,
                    members,
                }
            }),
        ]
    })
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
            if in_range && len > (1 << 20) {
                continue;
            }
            let planned = map.plan(offset, len, &mut out);
            prop_assert_eq!(planned.is_ok(), in_range);
            if in_range {
                prop_assert_eq!(out.iter().map(|e| e.len_bytes).sum::<u64>(), len);
            } else {
                prop_assert!(out.is_empty());
            }
        }
    }
}
