//! Worked examples of `plan_io`: thin volumes, snapshots, mirrors in every health, read retry
//! through nested mirrors, faults in striped thin volumes, and a 64 TiB thin volume.

use lunar_volume::{
    DeviceRange, FaultReason, FirstReadable, IoOp, Layout, LegHealth, LegRef, Location, MirrorLeg,
    PlanOutcome, PlanStep, ReadBalancer, ReadPolicy, SegmentEntry, SegmentRef, SegmentTable,
    VolumeMap,
};

const MIB: u64 = 1 << 20;

fn linear(device: u32, offset_bytes: u64, size_bytes: u64) -> Layout {
    Layout::Linear {
        device,
        offset_bytes,
        size_bytes,
    }
}

fn leg(layout: Layout, health: LegHealth) -> MirrorLeg {
    MirrorLeg { layout, health }
}

fn mirror(id: u32, legs: Vec<MirrorLeg>) -> Layout {
    Layout::Mirror {
        id,
        read_policy: ReadPolicy::RoundRobin,
        legs,
    }
}

fn mapped(device: u32, offset_bytes: u64) -> SegmentEntry {
    SegmentEntry::Mapped(Location {
        device,
        offset_bytes,
    })
}

fn device(
    device: u32,
    device_offset_bytes: u64,
    len_bytes: u64,
    request_offset_bytes: u64,
    mirror_leg: Option<(u32, u32)>,
) -> PlanStep {
    PlanStep::Device {
        device,
        device_offset_bytes,
        len_bytes,
        request_offset_bytes,
        mirror_leg: mirror_leg.map(|(mirror, leg)| LegRef { mirror, leg }),
    }
}

fn fault(node: u32, index: u64, reason: FaultReason) -> PlanStep {
    PlanStep::Fault {
        segment: SegmentRef { node, index },
        reason,
    }
}

fn plan(map: &VolumeMap, op: IoOp, offset: u64, len: u64) -> (PlanOutcome, Vec<PlanStep>) {
    let mut out = Vec::new();
    let outcome = map
        .plan_io(op, offset, len, &mut FirstReadable, &mut out)
        .unwrap();
    (outcome, out)
}

/// The `entries` of the segment table node `id` of a layout.
fn table_of(layout: &mut Layout, id: u32) -> &mut SegmentTable {
    match layout.find_mut(id) {
        Some(Layout::Segmented { entries, .. }) => entries,
        other => panic!("no segment table {id}: {other:?}"),
    }
}

#[test]
fn thin_volume_reads_zeros_and_its_first_writes_fault_until_allocated() {
    let mut layout = Layout::thin(7, 4 * MIB, MIB);
    let map = VolumeMap::try_new(layout.clone()).unwrap();
    // Reads of Zero segments: one zero fill, however many segments.
    assert_eq!(
        plan(&map, IoOp::Read, 512, 2 * MIB),
        (
            PlanOutcome::Ready,
            vec![PlanStep::Zero {
                request_offset_bytes: 0,
                len_bytes: 2 * MIB
            }]
        )
    );
    // A write across two segments faults on both, and on nothing else.
    assert_eq!(
        plan(&map, IoOp::Write, MIB - 512, 1024),
        (
            PlanOutcome::Faulted,
            vec![
                fault(7, 0, FaultReason::WriteToZero),
                fault(7, 1, FaultReason::WriteToZero)
            ]
        )
    );
    // The control thread allocates both segments next to each other on device 3.
    let table = table_of(&mut layout, 7);
    let mut editor = table.edit();
    editor.set(0, mapped(3, 64 * MIB)).unwrap();
    editor.set(1, mapped(3, 65 * MIB)).unwrap();
    *table = editor.finish();
    let map = VolumeMap::try_new(layout).unwrap();
    assert_eq!(
        plan(&map, IoOp::Write, MIB - 512, 1024),
        (
            PlanOutcome::Ready,
            vec![device(3, 65 * MIB - 512, 1024, 0, None)]
        )
    );
    assert_eq!(map.devices(), &[3]);
    assert_eq!(
        map.devices_used(),
        vec![DeviceRange {
            device: 3,
            offset_bytes: 64 * MIB,
            len_bytes: 2 * MIB
        }]
    );
}

#[test]
fn snapshot_segments_read_in_place_and_fault_on_write() {
    let origin = SegmentTable::from_entries(&[mapped(1, 0), SegmentEntry::Zero]);
    let layout = Layout::Segmented {
        id: 2,
        size_bytes: 2 * MIB,
        segment_bytes: MIB,
        entries: origin.with_mapped_as_no_write(),
    };
    let map = VolumeMap::try_new(layout).unwrap();
    assert_eq!(
        plan(&map, IoOp::Read, 0, 2 * MIB),
        (
            PlanOutcome::Ready,
            vec![
                device(1, 0, MIB, 0, None),
                PlanStep::Zero {
                    request_offset_bytes: MIB,
                    len_bytes: MIB
                }
            ]
        )
    );
    assert_eq!(
        plan(&map, IoOp::Write, 4096, 4096),
        (
            PlanOutcome::Faulted,
            vec![fault(2, 0, FaultReason::WriteToNoWrite)]
        )
    );
}

#[test]
fn invalid_segments_fault_both_ways_and_error_segments_fail_both_ways() {
    let layout = Layout::Segmented {
        id: 4,
        size_bytes: 20,
        segment_bytes: 10,
        entries: SegmentTable::from_entries(&[SegmentEntry::Invalid, SegmentEntry::Error]),
    };
    let map = VolumeMap::try_new(layout).unwrap();
    for op in [IoOp::Read, IoOp::Write] {
        assert_eq!(
            plan(&map, op, 5, 15),
            (
                PlanOutcome::Faulted,
                vec![fault(4, 0, FaultReason::Invalid)]
            )
        );
        let error = PlanStep::Error {
            request_offset_bytes: 0,
            len_bytes: 10,
            mirror_leg: None,
        };
        assert_eq!(plan(&map, op, 10, 10), (PlanOutcome::Ready, vec![error]));
    }
}

#[test]
fn a_fault_drops_the_steps_already_planned_and_keeps_what_was_appended_before() {
    let layout = Layout::Concat(vec![linear(0, 0, 10), Layout::thin(1, 10, 5)]);
    let map = VolumeMap::try_new(layout).unwrap();
    let earlier = PlanStep::Zero {
        request_offset_bytes: 99,
        len_bytes: 1,
    };
    let mut out = vec![earlier];
    let outcome = map
        .plan_io(IoOp::Write, 0, 20, &mut FirstReadable, &mut out)
        .unwrap();
    assert_eq!(outcome, PlanOutcome::Faulted);
    assert_eq!(
        out,
        vec![
            earlier,
            fault(1, 0, FaultReason::WriteToZero),
            fault(1, 1, FaultReason::WriteToZero)
        ]
    );
}

#[test]
fn striped_thin_volume_reports_each_segment_once() {
    // Stripe unit 4 KiB over two thin members with 64 KiB segments: a 128 KiB write visits
    // each member's segment 0 sixteen times.
    let layout = Layout::Stripe {
        unit_bytes: 4096,
        members: vec![
            Layout::thin(10, MIB, 64 * 1024),
            Layout::thin(11, MIB, 64 * 1024),
        ],
    };
    let map = VolumeMap::try_new(layout).unwrap();
    let (outcome, steps) = plan(&map, IoOp::Write, 0, 128 * 1024);
    assert_eq!(outcome, PlanOutcome::Faulted);
    assert_eq!(
        steps,
        vec![
            fault(10, 0, FaultReason::WriteToZero),
            fault(11, 0, FaultReason::WriteToZero)
        ]
    );
}

#[test]
fn mirror_writes_go_to_every_writable_leg_and_reads_to_one() {
    let layout = mirror(
        5,
        vec![
            leg(linear(0, 0, MIB), LegHealth::Healthy),
            leg(linear(1, 0, MIB), LegHealth::Faulty),
            leg(
                linear(2, 0, MIB),
                LegHealth::Resyncing {
                    up_to_bytes: MIB / 2,
                },
            ),
        ],
    );
    let map = VolumeMap::try_new(layout).unwrap();
    assert_eq!(
        plan(&map, IoOp::Write, 4096, 4096),
        (
            PlanOutcome::Ready,
            vec![
                device(0, 4096, 4096, 0, Some((5, 0))),
                device(2, 4096, 4096, 0, Some((5, 2))),
            ]
        )
    );
    // Round-robin alternates between the healthy leg and the resyncing leg below its point.
    let mut balancer = ReadBalancer::new();
    let mut legs = Vec::new();
    for _ in 0..4 {
        let mut out = Vec::new();
        let outcome = map
            .plan_io(IoOp::Read, 0, 4096, &mut balancer, &mut out)
            .unwrap();
        assert_eq!(outcome, PlanOutcome::Ready);
        let [PlanStep::Device { mirror_leg, .. }] = out[..] else {
            panic!("one device step expected: {out:?}");
        };
        legs.push(mirror_leg.unwrap().leg);
    }
    assert_eq!(legs, vec![0, 2, 0, 2]);
    // Above the resync point only the healthy leg reads.
    let mut out = Vec::new();
    for _ in 0..3 {
        out.clear();
        let _ = map
            .plan_io(IoOp::Read, MIB - 4096, 4096, &mut balancer, &mut out)
            .unwrap();
        assert_eq!(out, vec![device(0, MIB - 4096, 4096, 0, Some((5, 0)))]);
    }
}

#[test]
fn a_read_across_the_resync_point_is_cut_there() {
    let layout = mirror(
        1,
        vec![
            leg(linear(0, 0, 100), LegHealth::Faulty),
            leg(linear(1, 0, 100), LegHealth::Resyncing { up_to_bytes: 60 }),
        ],
    );
    let map = VolumeMap::try_new(layout).unwrap();
    assert_eq!(
        plan(&map, IoOp::Read, 40, 40),
        (
            PlanOutcome::Ready,
            vec![
                device(1, 40, 20, 0, Some((1, 1))),
                PlanStep::Error {
                    request_offset_bytes: 20,
                    len_bytes: 20,
                    mirror_leg: None
                },
            ]
        )
    );
}

#[test]
fn a_mirror_with_every_leg_faulty_fails_reads_and_writes() {
    let layout = mirror(
        1,
        vec![
            leg(linear(0, 0, 100), LegHealth::Faulty),
            leg(linear(1, 0, 100), LegHealth::Faulty),
        ],
    );
    let map = VolumeMap::try_new(layout).unwrap();
    let error = PlanStep::Error {
        request_offset_bytes: 0,
        len_bytes: 10,
        mirror_leg: None,
    };
    for op in [IoOp::Read, IoOp::Write] {
        assert_eq!(plan(&map, op, 0, 10), (PlanOutcome::Ready, vec![error]));
    }
}

#[test]
fn read_retry_walks_out_of_nested_mirrors() {
    // Mirror 10: leg 0 is mirror 11 (devices 0 and 1), leg 1 is device 2.
    let inner = mirror(
        11,
        vec![
            leg(linear(0, 0, 100), LegHealth::Healthy),
            leg(linear(1, 0, 100), LegHealth::Healthy),
        ],
    );
    let layout = mirror(
        10,
        vec![
            leg(inner, LegHealth::Healthy),
            leg(linear(2, 0, 100), LegHealth::Healthy),
        ],
    );
    let map = VolumeMap::try_new(layout).unwrap();
    let retry = |excluding: &[LegRef]| {
        let mut out = Vec::new();
        let outcome = map
            .plan_read_retry(10, 5, excluding, &mut FirstReadable, &mut out)
            .unwrap();
        assert_eq!(outcome, PlanOutcome::Ready);
        out
    };
    let leg_ref = |mirror, leg| LegRef { mirror, leg };
    assert_eq!(retry(&[]), vec![device(0, 10, 5, 0, Some((11, 0)))]);
    // Device 0 failed: its sibling in mirror 11.
    assert_eq!(
        retry(&[leg_ref(11, 0)]),
        vec![device(1, 10, 5, 0, Some((11, 1)))]
    );
    // Both legs of mirror 11 failed: an error naming mirror 10's leg 0, the leg to give up.
    assert_eq!(
        retry(&[leg_ref(11, 0), leg_ref(11, 1)]),
        vec![PlanStep::Error {
            request_offset_bytes: 0,
            len_bytes: 5,
            mirror_leg: Some(leg_ref(10, 0))
        }]
    );
    assert_eq!(
        retry(&[leg_ref(11, 0), leg_ref(11, 1), leg_ref(10, 0)]),
        vec![device(2, 10, 5, 0, Some((10, 1)))]
    );
    // Nothing left: an error with no leg to blame, for the host.
    assert_eq!(
        retry(&[leg_ref(10, 0), leg_ref(10, 1)]),
        vec![PlanStep::Error {
            request_offset_bytes: 0,
            len_bytes: 5,
            mirror_leg: None
        }]
    );
}

#[test]
fn an_error_segment_on_one_leg_is_retried_on_the_other() {
    let leg0 = Layout::Segmented {
        id: 2,
        size_bytes: 10,
        segment_bytes: 10,
        entries: SegmentTable::from_entries(&[SegmentEntry::Error]),
    };
    let layout = mirror(
        1,
        vec![
            leg(leg0, LegHealth::Healthy),
            leg(linear(7, 0, 10), LegHealth::Healthy),
        ],
    );
    let map = VolumeMap::try_new(layout).unwrap();
    let failed = LegRef { mirror: 1, leg: 0 };
    assert_eq!(
        plan(&map, IoOp::Read, 0, 10).1,
        vec![PlanStep::Error {
            request_offset_bytes: 0,
            len_bytes: 10,
            mirror_leg: Some(failed)
        }]
    );
    let mut out = Vec::new();
    let _ = map
        .plan_read_retry(0, 10, &[failed], &mut FirstReadable, &mut out)
        .unwrap();
    assert_eq!(out, vec![device(7, 0, 10, 0, Some((1, 1)))]);
}

#[test]
fn segments_in_lists_every_legs_segments() {
    let layout = mirror(
        1,
        vec![
            leg(Layout::thin(2, 100, 10), LegHealth::Healthy),
            leg(Layout::thin(3, 100, 25), LegHealth::Faulty),
        ],
    );
    let map = VolumeMap::try_new(layout).unwrap();
    let mut pieces = Vec::new();
    map.segments_in(15, 20, &mut pieces).unwrap();
    let found: Vec<(u32, u64, u64, u64)> = pieces
        .iter()
        .map(|p| {
            (
                p.segment.node,
                p.segment.index,
                p.segment_offset_bytes,
                p.len_bytes,
            )
        })
        .collect();
    assert_eq!(
        found,
        vec![
            (2, 1, 5, 5),
            (2, 2, 0, 10),
            (2, 3, 0, 5),
            (3, 0, 15, 10),
            (3, 1, 0, 10)
        ]
    );
}

#[test]
fn plan_io_on_a_64_tib_thin_volume() {
    let size_bytes = 64 << 40;
    let mut layout = Layout::thin(1, size_bytes, MIB);
    let map = VolumeMap::try_new(layout.clone()).unwrap();
    assert_eq!(map.size_bytes, size_bytes);
    assert_eq!(
        plan(&map, IoOp::Read, size_bytes - 8192, 8192),
        (
            PlanOutcome::Ready,
            vec![PlanStep::Zero {
                request_offset_bytes: 0,
                len_bytes: 8192
            }]
        )
    );
    let last = (size_bytes / MIB) - 1;
    assert_eq!(
        plan(&map, IoOp::Write, size_bytes - 8192, 8192),
        (
            PlanOutcome::Faulted,
            vec![fault(1, last, FaultReason::WriteToZero)]
        )
    );
    let table = table_of(&mut layout, 1);
    *table = table.with_entry(last, mapped(9, 0)).unwrap();
    assert!(table.distinct_allocations() < 20);
    let map = VolumeMap::try_new(layout).unwrap();
    assert_eq!(
        plan(&map, IoOp::Write, size_bytes - 8192, 8192).1,
        vec![device(9, MIB - 8192, 8192, 0, None)]
    );
    assert_eq!(
        map.devices_used(),
        vec![DeviceRange {
            device: 9,
            offset_bytes: 0,
            len_bytes: MIB
        }]
    );
}

#[test]
fn plan_refuses_maps_with_mirrors_or_segments() {
    let map = VolumeMap::try_new(Layout::thin(1, 100, 10)).unwrap();
    assert!(!map.is_direct());
    let mut extents = Vec::new();
    assert!(map.plan(0, 10, &mut extents).is_err());
    assert_eq!(map.plan(0, 0, &mut extents), Ok(()));
    assert!(extents.is_empty());
}

#[test]
fn least_outstanding_sends_reads_to_the_idle_leg() {
    let layout = Layout::Mirror {
        id: 3,
        read_policy: ReadPolicy::LeastOutstanding,
        legs: vec![
            leg(linear(0, 0, 100), LegHealth::Healthy),
            leg(linear(1, 0, 100), LegHealth::Healthy),
        ],
    };
    let map = VolumeMap::try_new(layout).unwrap();
    let mut balancer = ReadBalancer::new();
    let busy = LegRef { mirror: 3, leg: 0 };
    balancer.read_issued(busy);
    for _ in 0..3 {
        let mut out = Vec::new();
        let _ = map
            .plan_io(IoOp::Read, 0, 10, &mut balancer, &mut out)
            .unwrap();
        assert_eq!(out, vec![device(1, 0, 10, 0, Some((3, 1)))]);
    }
}

#[test]
fn the_largest_thin_volume_plans_at_both_ends() {
    // 2^64 - 1 one-byte segments: the table is a few shared allocations.
    let map = VolumeMap::try_new(Layout::thin(1, u64::MAX, 1)).unwrap();
    for offset in [0, u64::MAX - 4096] {
        assert_eq!(
            plan(&map, IoOp::Read, offset, 4096),
            (
                PlanOutcome::Ready,
                vec![PlanStep::Zero {
                    request_offset_bytes: 0,
                    len_bytes: 4096
                }]
            )
        );
    }
    assert_eq!(
        plan(&map, IoOp::Write, u64::MAX - 2, 2),
        (
            PlanOutcome::Faulted,
            vec![
                fault(1, u64::MAX - 2, FaultReason::WriteToZero),
                fault(1, u64::MAX - 1, FaultReason::WriteToZero)
            ]
        )
    );
}
