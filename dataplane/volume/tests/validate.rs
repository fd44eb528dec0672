//! Validation of mirrors and segment tables: each mistake is refused with an error that names
//! the node and says what is wrong.

use lunar_volume::{
    Layout, LayoutError, LegHealth, MirrorLeg, ReadPolicy, SegmentTable, VolumeMap, MAX_MIRROR_LEGS,
};

fn linear(device: u32, size_bytes: u64) -> Layout {
    Layout::Linear {
        device,
        offset_bytes: 0,
        size_bytes,
    }
}

fn mirror(id: u32, legs: Vec<(Layout, LegHealth)>) -> Layout {
    Layout::Mirror {
        id,
        read_policy: ReadPolicy::RoundRobin,
        legs: legs
            .into_iter()
            .map(|(layout, health)| MirrorLeg { layout, health })
            .collect(),
    }
}

fn error_of(layout: Layout) -> String {
    VolumeMap::try_new(layout).unwrap_err().to_string()
}

#[test]
fn mirror_sizes_are_the_size_of_their_legs() {
    let layout = mirror(
        1,
        vec![
            (linear(0, 10), LegHealth::Healthy),
            (
                Layout::Concat(vec![linear(1, 4), linear(2, 6)]),
                LegHealth::Faulty,
            ),
            (linear(3, 10), LegHealth::Resyncing { up_to_bytes: 10 }),
        ],
    );
    assert_eq!(layout.validate(), Ok(10));
}

#[test]
fn mirror_mistakes_are_named() {
    assert_eq!(
        error_of(mirror(1, vec![])),
        "layout node root: mirror has no legs"
    );
    assert_eq!(
        error_of(Layout::Concat(vec![
            linear(9, 1),
            mirror(
                1,
                vec![
                    (linear(0, 10), LegHealth::Healthy),
                    (linear(1, 12), LegHealth::Healthy)
                ]
            )
        ])),
        "layout node root[1]: mirror leg 1 has 12 bytes but leg 0 has 10; mirror legs must be \
         the same size"
    );
    assert_eq!(
        error_of(mirror(
            1,
            vec![
                (linear(0, 10), LegHealth::Healthy),
                (linear(1, 10), LegHealth::Resyncing { up_to_bytes: 11 })
            ]
        )),
        "layout node root: mirror leg 1 resyncs up to byte 11, beyond its 10 bytes"
    );
    let too_many = (0..=MAX_MIRROR_LEGS as u32)
        .map(|device| (linear(device, 10), LegHealth::Healthy))
        .collect();
    assert_eq!(
        error_of(mirror(1, too_many)),
        "layout node root: mirror has 33 legs, more than the 32 allowed"
    );
    // A mistake inside a leg is named by the leg's path.
    let err = VolumeMap::try_new(mirror(
        1,
        vec![
            (linear(0, 10), LegHealth::Healthy),
            (Layout::Concat(vec![]), LegHealth::Healthy),
        ],
    ))
    .unwrap_err();
    assert!(matches!(err, LayoutError::EmptyConcat { .. }));
    assert_eq!(err.at().member_indices, vec![1]);
}

#[test]
fn segment_table_mistakes_are_named() {
    assert_eq!(Layout::thin(4, 10, 4).validate(), Ok(10));
    assert_eq!(
        error_of(Layout::thin(4, 0, 4)),
        "layout node root: segment table 4 has size 0"
    );
    assert_eq!(
        error_of(Layout::thin(4, 10, 0)),
        "layout node root: segment table 4 has a segment size of 0 bytes"
    );
    assert_eq!(
        error_of(Layout::Segmented {
            id: 4,
            size_bytes: 10,
            segment_bytes: 4,
            entries: SegmentTable::all_zero(2),
        }),
        "layout node root: segment table 4 has 2 entries, but its size cut into segments needs 3"
    );
}

#[test]
fn node_ids_are_unique_within_a_volume() {
    let layout = Layout::Concat(vec![
        Layout::thin(7, 10, 5),
        mirror(
            8,
            vec![
                (linear(0, 10), LegHealth::Healthy),
                (Layout::thin(7, 10, 5), LegHealth::Healthy),
            ],
        ),
    ]);
    let err = VolumeMap::try_new(layout).unwrap_err();
    assert_eq!(
        err.to_string(),
        "layout node root[1][1]: node id 7 is already used by another node of the volume"
    );
    assert!(matches!(err, LayoutError::DuplicateNodeId { id: 7, .. }));
}

#[test]
fn find_reaches_nodes_by_id_for_the_next_generation() {
    let mut layout = Layout::Stripe {
        unit_bytes: 4,
        members: vec![
            mirror(
                1,
                vec![
                    (Layout::thin(2, 8, 4), LegHealth::Healthy),
                    (linear(0, 8), LegHealth::Healthy),
                ],
            ),
            Layout::thin(3, 8, 4),
        ],
    };
    assert!(matches!(layout.find(3), Some(Layout::Segmented { .. })));
    assert_eq!(layout.find(99), None);
    // Mark leg 1 of mirror 1 faulty.
    match layout.find_mut(1) {
        Some(Layout::Mirror { legs, .. }) => legs[1].health = LegHealth::Faulty,
        other => panic!("mirror expected: {other:?}"),
    }
    let Some(Layout::Mirror { legs, .. }) = layout.find(1) else {
        panic!("mirror expected");
    };
    assert_eq!(legs[1].health, LegHealth::Faulty);
    assert_eq!(layout.find(2).and_then(Layout::id), Some(2));
}
