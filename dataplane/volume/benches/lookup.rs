//! Mapping lookup of one 4 KiB request at pseudo-random aligned offsets, at volume sizes from
//! 1 GiB to 64 TiB: `VolumeMap::plan` (direct maps: linear, concat, stripe, a stripe of
//! concats) and `VolumeMap::plan_io`, what the reactors call for every chunk (the same plus
//! mirror reads and writes, and thin segment tables, allocated or not). The member count of
//! each layout is fixed, so the time per lookup must not grow with the volume size: a concat is
//! a binary search over its members, a stripe is arithmetic, a segment table is a walk of a
//! fixed-depth tree of chunks.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use lunar_volume::layout::Layout;
use lunar_volume::{
    Extent, IoOp, LegHealth, Location, MirrorLeg, PlanStep, ReadBalancer, ReadPolicy, SegmentEntry,
    SegmentTable, VolumeMap,
};

const GIB: u64 = 1 << 30;
const TIB: u64 = 1 << 40;
const REQUEST_BYTES: u64 = 4096;
const STRIPE_UNIT_BYTES: u64 = 64 * 1024;
const CONCAT_MEMBERS: u64 = 16;
const STRIPE_MEMBERS: u64 = 8;
/// Offsets cycled through per benchmark (a power of two, so the index is a mask).
const OFFSETS: usize = 4096;

fn linear(device: u32, offset_bytes: u64, size_bytes: u64) -> Layout {
    Layout::Linear {
        device,
        offset_bytes,
        size_bytes,
    }
}

fn concat(size_bytes: u64, members: u64, first_device: u32) -> Layout {
    let member_bytes = size_bytes / members;
    Layout::Concat(
        (0..members)
            .map(|i| linear(first_device + i as u32, 1 << 20, member_bytes))
            .collect(),
    )
}

fn stripe(size_bytes: u64) -> Layout {
    let member_bytes = size_bytes / STRIPE_MEMBERS;
    Layout::Stripe {
        unit_bytes: STRIPE_UNIT_BYTES,
        members: (0..STRIPE_MEMBERS)
            .map(|i| linear(i as u32, 0, member_bytes))
            .collect(),
    }
}

/// A stripe over four concats of four members each.
fn stripe_of_concats(size_bytes: u64) -> Layout {
    let member_bytes = size_bytes / 4;
    Layout::Stripe {
        unit_bytes: STRIPE_UNIT_BYTES,
        members: (0..4).map(|i| concat(member_bytes, 4, 4 * i)).collect(),
    }
}

/// 4 KiB-aligned offsets spread over the whole volume (splitmix64).
fn offsets(size_bytes: u64) -> Vec<u64> {
    let slots = (size_bytes - REQUEST_BYTES) / REQUEST_BYTES;
    let mut state = 0x1234_5678_u64;
    (0..OFFSETS)
        .map(|_| {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            (((u128::from(z) * u128::from(slots)) >> 64) as u64) * REQUEST_BYTES
        })
        .collect()
}

/// Builds a layout of the given size.
type Builder = fn(u64) -> Layout;

fn size_label(size_bytes: u64) -> String {
    if size_bytes >= TIB {
        format!("{}TiB", size_bytes / TIB)
    } else {
        format!("{}GiB", size_bytes / GIB)
    }
}

fn lookup(c: &mut Criterion) {
    let layouts: [(&str, Builder); 4] = [
        ("linear", |size| linear(0, 1 << 20, size)),
        ("concat16", |size| concat(size, CONCAT_MEMBERS, 0)),
        ("stripe8", stripe),
        ("stripe4_of_concat4", stripe_of_concats),
    ];
    let mut group = c.benchmark_group("plan_4KiB");
    group.throughput(Throughput::Elements(1));
    for (name, build) in layouts {
        for size_bytes in [GIB, TIB, 16 * TIB, 64 * TIB] {
            let map = VolumeMap::try_new(build(size_bytes)).expect("valid layout");
            let offsets = offsets(map.size_bytes);
            let mut out: Vec<Extent> = Vec::with_capacity(4);
            let mut next = 0usize;
            group.bench_with_input(
                BenchmarkId::new(name, size_label(size_bytes)),
                &map,
                |b, map| {
                    b.iter(|| {
                        out.clear();
                        let offset = offsets[next & (OFFSETS - 1)];
                        next = next.wrapping_add(1);
                        let planned = map.plan(black_box(offset), REQUEST_BYTES, &mut out);
                        black_box((planned.is_ok(), out.len()))
                    })
                },
            );
        }
    }
    group.finish();
}

/// A two-leg mirror of linear extents.
fn mirror(size_bytes: u64) -> Layout {
    Layout::Mirror {
        id: 1,
        read_policy: ReadPolicy::RoundRobin,
        legs: (0..2)
            .map(|i| MirrorLeg {
                layout: linear(i, 0, size_bytes),
                health: LegHealth::Healthy,
            })
            .collect(),
    }
}

const SEGMENT_BYTES: u64 = 1 << 20;

/// A thin volume of 1 MiB segments, every one allocated (the table shares its chunks, as
/// generations of a real table share their unchanged ones).
fn thin_allocated(size_bytes: u64) -> Layout {
    let location = Location {
        device: 0,
        offset_bytes: 0,
    };
    let entries = SegmentTable::entries_for(size_bytes, SEGMENT_BYTES).expect("entries");
    Layout::Segmented {
        id: 1,
        size_bytes,
        segment_bytes: SEGMENT_BYTES,
        entries: SegmentTable::filled(entries, SegmentEntry::Mapped(location)),
    }
}

/// A thin volume never written: reads are zero fills.
fn thin_empty(size_bytes: u64) -> Layout {
    Layout::thin(1, size_bytes, SEGMENT_BYTES)
}

fn lookup_io(c: &mut Criterion) {
    let layouts: [(&str, Builder, IoOp); 7] = [
        ("linear", |size| linear(0, 1 << 20, size), IoOp::Read),
        ("stripe8", stripe, IoOp::Read),
        ("mirror2_read", mirror, IoOp::Read),
        ("mirror2_write", mirror, IoOp::Write),
        ("thin_read", thin_allocated, IoOp::Read),
        ("thin_write", thin_allocated, IoOp::Write),
        ("thin_empty_read", thin_empty, IoOp::Read),
    ];
    let mut group = c.benchmark_group("plan_io_4KiB");
    group.throughput(Throughput::Elements(1));
    for (name, build, op) in layouts {
        for size_bytes in [GIB, TIB, 16 * TIB, 64 * TIB] {
            let map = VolumeMap::try_new(build(size_bytes)).expect("valid layout");
            let offsets = offsets(map.size_bytes);
            let mut out: Vec<PlanStep> = Vec::with_capacity(4);
            let mut balancer = ReadBalancer::new();
            let mut next = 0usize;
            group.bench_with_input(
                BenchmarkId::new(name, size_label(size_bytes)),
                &map,
                |b, map| {
                    b.iter(|| {
                        out.clear();
                        let offset = offsets[next & (OFFSETS - 1)];
                        next = next.wrapping_add(1);
                        let planned = map.plan_io(
                            op,
                            black_box(offset),
                            REQUEST_BYTES,
                            &mut balancer,
                            &mut out,
                        );
                        black_box((planned.is_ok(), out.len()))
                    })
                },
            );
        }
    }
    group.finish();
}

criterion_group!(benches, lookup, lookup_io);
criterion_main!(benches);
