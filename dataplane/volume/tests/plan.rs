//! Worked examples of planning: concat, nested concat, stripe, edges of the volume, and the
//! behaviour of maps built from invalid layouts.

use lunar_volume::{Extent, Layout, LayoutError, PlanError, VolumeMap};

fn linear(device: u32, offset_bytes: u64, size_bytes: u64) -> Layout {
    Layout::Linear {
        device,
        offset_bytes,
        size_bytes,
    }
}

fn extent(
    device: u32,
    device_offset_bytes: u64,
    len_bytes: u64,
    request_offset_bytes: u64,
) -> Extent {
    Extent {
        device,
        device_offset_bytes,
        len_bytes,
        request_offset_bytes,
    }
}

fn plan(map: &VolumeMap, offset_bytes: u64, len_bytes: u64) -> Result<Vec<Extent>, PlanError> {
    let mut out = Vec::new();
    map.plan(offset_bytes, len_bytes, &mut out).map(|()| out)
}

#[test]
fn linear_shifts_by_its_device_offset() {
    let map = VolumeMap::try_new(linear(3, 4096, 8192)).unwrap();
    assert_eq!(map.size_bytes, 8192);
    assert_eq!(plan(&map, 512, 1024), Ok(vec![extent(3, 4608, 1024, 0)]));
}

#[test]
fn concat_cuts_at_member_boundaries() {
    let map = VolumeMap::try_new(Layout::Concat(vec![
        linear(0, 0, 1000),
        linear(1, 500, 200),
        linear(0, 5000, 300),
    ]))
    .unwrap();
    assert_eq!(map.size_bytes, 1500);
    assert_eq!(
        plan(&map, 900, 500),
        Ok(vec![
            extent(0, 900, 100, 0),
            extent(1, 500, 200, 100),
            extent(0, 5000, 200, 300),
        ])
    );
    // Exactly one member, ending on its boundary.
    assert_eq!(plan(&map, 1000, 200), Ok(vec![extent(1, 500, 200, 0)]));
}

#[test]
fn nested_concat_resolves_to_leaves() {
    let map = VolumeMap::try_new(Layout::Concat(vec![
        Layout::Concat(vec![linear(0, 0, 10), linear(1, 0, 10)]),
        Layout::Concat(vec![
            Layout::Concat(vec![linear(2, 100, 5)]),
            linear(3, 7, 5),
        ]),
    ]))
    .unwrap();
    assert_eq!(map.size_bytes, 30);
    assert_eq!(
        plan(&map, 5, 25),
        Ok(vec![
            extent(0, 5, 5, 0),
            extent(1, 0, 10, 5),
            extent(2, 100, 5, 15),
            extent(3, 7, 5, 20),
        ])
    );
}

#[test]
fn stripe_cuts_at_units_and_skips_unused_tail() {
    let map = VolumeMap::try_new(Layout::Stripe {
        unit_bytes: 4,
        members: vec![linear(0, 0, 9), linear(1, 100, 8)],
    })
    .unwrap();
    // 2 whole units per member.
    assert_eq!(map.size_bytes, 16);
    assert_eq!(
        plan(&map, 2, 12),
        Ok(vec![
            extent(0, 2, 2, 0),
            extent(1, 100, 4, 2),
            extent(0, 4, 4, 6),
            extent(1, 104, 2, 10),
        ])
    );
}

#[test]
fn stripe_of_concats_and_concat_of_stripes() {
    let map = VolumeMap::try_new(Layout::Concat(vec![
        linear(9, 0, 3),
        Layout::Stripe {
            unit_bytes: 2,
            members: vec![
                Layout::Concat(vec![linear(0, 0, 1), linear(1, 0, 3)]),
                linear(2, 10, 4),
            ],
        },
    ]))
    .unwrap();
    assert_eq!(map.size_bytes, 11);
    assert_eq!(
        plan(&map, 2, 9),
        Ok(vec![
            extent(9, 2, 1, 0),
            // stripe unit 0 = member 0 bytes 0..2 = dev0[0], dev1[0]
            extent(0, 0, 1, 1),
            extent(1, 0, 1, 2),
            // unit 1 = member 1 bytes 0..2
            extent(2, 10, 2, 3),
            // unit 2 = member 0 bytes 2..4 = dev1[1..3]
            extent(1, 1, 2, 5),
            // unit 3 = member 1 bytes 2..4
            extent(2, 12, 2, 7),
        ])
    );
}

#[test]
fn requests_past_the_end_are_refused_and_leave_out_untouched() {
    let map = VolumeMap::try_new(Layout::Concat(vec![linear(0, 0, 10), linear(1, 0, 10)])).unwrap();
    let mut out = vec![extent(7, 7, 7, 7)];
    let refused = [(0, 21), (20, 1), (21, 0), (u64::MAX, 2), (1, u64::MAX)];
    for (offset_bytes, len_bytes) in refused {
        assert_eq!(
            map.plan(offset_bytes, len_bytes, &mut out),
            Err(PlanError::OutOfRange {
                offset_bytes,
                len_bytes,
                size_bytes: 20
            })
        );
    }
    assert_eq!(out, vec![extent(7, 7, 7, 7)]);
}

#[test]
fn plan_appends_and_empty_requests_append_nothing() {
    let map = VolumeMap::try_new(linear(0, 0, 10)).unwrap();
    let mut out = vec![extent(7, 7, 7, 7)];
    map.plan(10, 0, &mut out).unwrap();
    map.plan(0, 0, &mut out).unwrap();
    assert_eq!(out.len(), 1);
    map.plan(0, 10, &mut out).unwrap();
    assert_eq!(out, vec![extent(7, 7, 7, 7), extent(0, 0, 10, 0)]);
}

#[test]
fn whole_u64_address_space_is_usable() {
    let map = VolumeMap::try_new(Layout::Concat(vec![
        linear(0, 0, u64::MAX - 1),
        linear(1, u64::MAX - 1, 1),
    ]))
    .unwrap();
    assert_eq!(map.size_bytes, u64::MAX);
    assert_eq!(
        plan(&map, u64::MAX - 2, 2),
        Ok(vec![
            extent(0, u64::MAX - 2, 1, 0),
            extent(1, u64::MAX - 1, 1, 1)
        ])
    );
}

#[test]
fn try_new_explains_and_new_gives_an_empty_map() {
    let bad = Layout::Concat(vec![linear(0, 0, 8), linear(1, 0, 0)]);
    let err = VolumeMap::try_new(bad.clone()).unwrap_err();
    assert!(matches!(err, LayoutError::EmptyLinear { device: 1, .. }));
    let map = VolumeMap::new(bad.clone());
    assert_eq!(map.root, bad);
    assert_eq!(map.size_bytes, 0);
    assert!(plan(&map, 0, 1).is_err());
    assert_eq!(plan(&map, 0, 0), Ok(vec![]));
}

#[test]
fn new_and_try_new_agree_on_valid_layouts() {
    let layout = Layout::Concat(vec![linear(0, 0, 8), linear(1, 0, 8)]);
    assert_eq!(
        VolumeMap::new(layout.clone()),
        VolumeMap::try_new(layout).unwrap()
    );
}

#[test]
fn deep_layouts_are_refused_at_the_depth_limit() {
    fn nested(depth: usize) -> Layout {
        let mut layout = linear(0, 0, 1);
        for _ in 1..depth {
            layout = Layout::Concat(vec![layout]);
        }
        layout
    }
    let limit = lunar_volume::MAX_LAYOUT_DEPTH;
    assert_eq!(
        VolumeMap::try_new(nested(limit)).map(|map| map.size_bytes),
        Ok(1)
    );
    for depth in [limit + 1, 1000] {
        assert!(matches!(
            VolumeMap::try_new(nested(depth)),
            Err(LayoutError::TooDeep { .. })
        ));
        assert_eq!(VolumeMap::new(nested(depth)).size_bytes, 0);
    }
}
