//! Mapping lookup: `VolumeMap::plan` of one 4 KiB request at pseudo-random aligned offsets, for
//! every layout (linear, concat, stripe, and a stripe of concats), at volume sizes from 1 GiB
//! to 64 TiB. The member count of each layout is fixed, so the time per lookup must not grow
//! with the volume size: a concat is a binary search over its members, a stripe is arithmetic.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use lunar_volume::{Extent, Layout, VolumeMap};

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

criterion_group!(benches, lookup);
criterion_main!(benches);
