//! Random layouts for the oracle tests: every kind of node nested at random, segment tables
//! with random states, mirror legs of equal size with random health; devices and node ids are
//! given afterwards so that no two pieces of a volume alias.

use lunar_volume::{
    Layout, LegHealth, LegRef, Location, MirrorLeg, ReadPolicy, SegmentEntry, SegmentTable,
};
use proptest::prelude::*;

use super::size;

fn arb_entry() -> impl Strategy<Value = SegmentEntry> {
    let location = (0u64..30).prop_map(|offset_bytes| Location {
        device: 0,
        offset_bytes,
    });
    prop_oneof![
        4 => location.clone().prop_map(SegmentEntry::Mapped),
        2 => location.prop_map(SegmentEntry::NoWrite),
        2 => Just(SegmentEntry::Zero),
        1 => Just(SegmentEntry::Invalid),
        1 => Just(SegmentEntry::Error),
    ]
}

fn arb_segmented() -> impl Strategy<Value = Layout> {
    (1u64..24, 1u64..7).prop_flat_map(|(size_bytes, segment_bytes)| {
        let count = SegmentTable::entries_for(size_bytes, segment_bytes).unwrap() as usize;
        prop::collection::vec(arb_entry(), count).prop_map(move |entries| Layout::Segmented {
            id: 0,
            size_bytes,
            segment_bytes,
            entries: SegmentTable::from_entries(&entries),
        })
    })
}

fn arb_health() -> impl Strategy<Value = LegHealth> {
    prop_oneof![
        3 => Just(LegHealth::Healthy),
        1 => Just(LegHealth::Faulty),
        2 => (0u64..30).prop_map(|up_to_bytes| LegHealth::Resyncing { up_to_bytes }),
    ]
}

fn arb_policy() -> impl Strategy<Value = ReadPolicy> {
    prop_oneof![
        Just(ReadPolicy::RoundRobin),
        Just(ReadPolicy::LeastOutstanding)
    ]
}

/// A small deterministic generator for the parts derived from a seed.
fn next(seed: &mut u64) -> u64 {
    *seed = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    *seed >> 33
}

/// Another leg of `size_bytes` for a mirror whose first leg is `first`.
fn leg_like(first: &Layout, size_bytes: u64, kind: u8, mut seed: u64) -> Layout {
    let linear = |offset_bytes, size_bytes| Layout::Linear {
        device: 0,
        offset_bytes,
        size_bytes,
    };
    match kind {
        0 => first.clone(),
        1 => linear(next(&mut seed) % 20, size_bytes),
        2 if size_bytes > 1 => {
            let cut = 1 + next(&mut seed) % (size_bytes - 1);
            Layout::Concat(vec![
                linear(0, cut),
                linear(next(&mut seed) % 9, size_bytes - cut),
            ])
        }
        _ => {
            let segment_bytes = 1 + next(&mut seed) % 5;
            let count = SegmentTable::entries_for(size_bytes, segment_bytes).unwrap();
            let entries: Vec<SegmentEntry> = (0..count)
                .map(|_| match next(&mut seed) % 8 {
                    0..=3 => SegmentEntry::Mapped(Location {
                        device: 0,
                        offset_bytes: next(&mut seed) % 20,
                    }),
                    4 => SegmentEntry::NoWrite(Location {
                        device: 0,
                        offset_bytes: 0,
                    }),
                    5 => SegmentEntry::Zero,
                    6 => SegmentEntry::Invalid,
                    _ => SegmentEntry::Error,
                })
                .collect();
            Layout::Segmented {
                id: 0,
                size_bytes,
                segment_bytes,
                entries: SegmentTable::from_entries(&entries),
            }
        }
    }
}

/// Random trees of every kind of node. Devices, node ids and segment locations are given
/// afterwards by [`renumber`]: every leaf and every located segment gets a device of its own,
/// so no two pieces of the volume alias and each device byte names one volume byte.
pub fn arb_layout() -> impl Strategy<Value = Layout> {
    let leaf = prop_oneof![
        3 => (0u64..40, 1u64..24).prop_map(|(offset_bytes, size_bytes)| Layout::Linear {
            device: 0,
            offset_bytes,
            size_bytes,
        }),
        2 => arb_segmented(),
    ];
    leaf.prop_recursive(4, 48, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 1..4).prop_map(Layout::Concat),
            (1u64..6, prop::collection::vec(inner.clone(), 1..4)).prop_map(
                |(unit_bytes, members)| Layout::Stripe {
                    unit_bytes,
                    members,
                }
            ),
            (
                inner,
                arb_health(),
                prop::collection::vec((0u8..4, arb_health(), any::<u64>()), 0..3),
                arb_policy(),
            )
                .prop_map(|(first, first_health, others, read_policy)| {
                    let size_bytes = size(&first);
                    let mut legs = vec![MirrorLeg {
                        layout: first.clone(),
                        health: first_health,
                    }];
                    for (kind, health, seed) in others {
                        legs.push(MirrorLeg {
                            layout: leg_like(&first, size_bytes, kind, seed),
                            health,
                        });
                    }
                    Layout::Mirror {
                        id: 0,
                        read_policy,
                        legs,
                    }
                }),
        ]
    })
    .prop_map(|mut layout| {
        renumber(&mut layout, &mut Numbers::default());
        layout
    })
    .prop_filter("layout must be valid", |layout| layout.validate().is_ok())
}

/// Layouts of plain extents only (what `VolumeMap::plan` serves).
pub fn arb_direct_layout() -> impl Strategy<Value = Layout> {
    let leaf = (0u64..40, 1u64..24).prop_map(|(offset_bytes, size_bytes)| Layout::Linear {
        device: 0,
        offset_bytes,
        size_bytes,
    });
    leaf.prop_recursive(4, 40, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 1..5).prop_map(Layout::Concat),
            (1u64..6, prop::collection::vec(inner, 1..4)).prop_map(|(unit_bytes, members)| {
                Layout::Stripe {
                    unit_bytes,
                    members,
                }
            }),
        ]
    })
    .prop_map(|mut layout| {
        renumber(&mut layout, &mut Numbers::default());
        layout
    })
    .prop_filter("layout must be valid", |layout| layout.validate().is_ok())
}

#[derive(Default)]
struct Numbers {
    device: u32,
    node: u32,
}

/// Give every leaf and located segment its own device and every mirror and table its own id,
/// and keep resync points inside their legs.
fn renumber(layout: &mut Layout, numbers: &mut Numbers) {
    match layout {
        Layout::Linear { device, .. } => {
            *device = numbers.device;
            numbers.device += 1;
        }
        Layout::Concat(members) | Layout::Stripe { members, .. } => members
            .iter_mut()
            .for_each(|member| renumber(member, numbers)),
        Layout::Mirror { id, legs, .. } => {
            *id = numbers.node;
            numbers.node += 1;
            for leg in legs {
                renumber(&mut leg.layout, numbers);
                if let LegHealth::Resyncing { up_to_bytes } = &mut leg.health {
                    *up_to_bytes = (*up_to_bytes).min(size(&leg.layout));
                }
            }
        }
        Layout::Segmented { id, entries, .. } => {
            *id = numbers.node;
            numbers.node += 1;
            let mut editor = entries.edit();
            for index in 0..editor.len() {
                let renumbered = match editor.get(index).unwrap() {
                    SegmentEntry::Mapped(location) => SegmentEntry::Mapped(Location {
                        device: numbers.device,
                        ..location
                    }),
                    SegmentEntry::NoWrite(location) => SegmentEntry::NoWrite(Location {
                        device: numbers.device,
                        ..location
                    }),
                    other => other,
                };
                numbers.device += 1;
                editor.set(index, renumbered).unwrap();
            }
            *entries = editor.finish();
        }
    }
}

/// Every (mirror, leg) of the tree.
pub fn all_legs(layout: &Layout, out: &mut Vec<LegRef>) {
    for member in layout.members() {
        all_legs(member, out);
    }
    if let Layout::Mirror { id, legs, .. } = layout {
        for leg in 0..legs.len() as u32 {
            out.push(LegRef { mirror: *id, leg });
        }
    }
}

/// A layout and a request inside it.
pub fn with_request(
    layouts: impl Strategy<Value = Layout>,
) -> impl Strategy<Value = (Layout, u64, u64)> {
    layouts.prop_flat_map(|layout| {
        let size = size(&layout);
        (Just(layout), 0..=size)
            .prop_flat_map(move |(layout, offset)| (Just(layout), Just(offset), 0..=size - offset))
    })
}
