//! Block-by-block oracle: random nested layouts and random requests, planned and then applied
//! to per-device byte arrays, must read and write exactly what a naive byte-at-a-time walk of
//! the layout tree says. One block is one byte here, so every boundary case is reachable.

use lunar_volume::{Extent, Layout, PlanError, VolumeMap};
use proptest::prelude::*;

const DEVICE_COUNT: u32 = 3;

/// A leaf of the tree, as the oracle sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Leaf {
    device: u32,
    offset_bytes: u64,
    size_bytes: u64,
}

/// Size of a layout, computed independently of the crate.
fn oracle_size(layout: &Layout) -> u64 {
    match layout {
        Layout::Linear { size_bytes, .. } => *size_bytes,
        Layout::Concat(members) => members.iter().map(oracle_size).sum(),
        Layout::Stripe {
            unit_bytes,
            members,
        } => {
            let smallest = members.iter().map(oracle_size).min().unwrap_or(0);
            (smallest / unit_bytes) * unit_bytes * members.len() as u64
        }
    }
}

/// Where virtual byte `at` lives: (leaf, byte offset on the device). Linear scans only.
fn oracle_locate(layout: &Layout, at: u64) -> (Leaf, u64) {
    match layout {
        Layout::Linear {
            device,
            offset_bytes,
            size_bytes,
        } => {
            assert!(at < *size_bytes);
            let leaf = Leaf {
                device: *device,
                offset_bytes: *offset_bytes,
                size_bytes: *size_bytes,
            };
            (leaf, offset_bytes + at)
        }
        Layout::Concat(members) => {
            let mut start = 0;
            for member in members {
                let size = oracle_size(member);
                if at < start + size {
                    return oracle_locate(member, at - start);
                }
                start += size;
            }
            panic!("byte {at} beyond concat");
        }
        Layout::Stripe {
            unit_bytes,
            members,
        } => {
            let unit = at / unit_bytes;
            let member = (unit % members.len() as u64) as usize;
            let row = unit / members.len() as u64;
            oracle_locate(&members[member], row * unit_bytes + at % unit_bytes)
        }
    }
}

fn leaves(layout: &Layout, out: &mut Vec<Leaf>) {
    match layout {
        Layout::Linear {
            device,
            offset_bytes,
            size_bytes,
        } => out.push(Leaf {
            device: *device,
            offset_bytes: *offset_bytes,
            size_bytes: *size_bytes,
        }),
        Layout::Concat(members) | Layout::Stripe { members, .. } => {
            members.iter().for_each(|member| leaves(member, out))
        }
    }
}

/// Device arrays big enough for every leaf; each byte holds a value unique across devices.
fn devices_for(layout: &Layout) -> Vec<Vec<u32>> {
    let mut all = Vec::new();
    leaves(layout, &mut all);
    (0..DEVICE_COUNT)
        .map(|device| {
            let len = all
                .iter()
                .filter(|leaf| leaf.device == device)
                .map(|leaf| leaf.offset_bytes + leaf.size_bytes)
                .max()
                .unwrap_or(0);
            (0..len as u32).map(|i| device << 24 | i).collect()
        })
        .collect()
}

fn arb_layout() -> impl Strategy<Value = Layout> {
    let leaf =
        (0..DEVICE_COUNT, 0u64..40, 1u64..24).prop_map(|(device, offset_bytes, size_bytes)| {
            Layout::Linear {
                device,
                offset_bytes,
                size_bytes,
            }
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
    .prop_filter("layout must be valid", |layout| layout.validate().is_ok())
}

/// A layout and a request inside it.
fn arb_layout_and_request() -> impl Strategy<Value = (Layout, u64, u64)> {
    arb_layout().prop_flat_map(|layout| {
        let size = oracle_size(&layout);
        (Just(layout), 0..=size)
            .prop_flat_map(move |(layout, offset)| (Just(layout), Just(offset), 0..=size - offset))
    })
}

fn planned(map: &VolumeMap, offset: u64, len: u64) -> Vec<Extent> {
    let mut out = Vec::new();
    map.plan(offset, len, &mut out)
        .expect("request is inside the volume");
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn size_matches_oracle(layout in arb_layout()) {
        let map = VolumeMap::try_new(layout.clone()).unwrap();
        prop_assert_eq!(map.size_bytes, oracle_size(&layout));
        prop_assert_eq!(layout.validate(), Ok(map.size_bytes));
    }

    #[test]
    fn extents_are_ordered_contiguous_nonempty_and_inside_one_leaf(
        (layout, offset, len) in arb_layout_and_request()
    ) {
        let map = VolumeMap::try_new(layout.clone()).unwrap();
        let extents = planned(&map, offset, len);
        let mut next_request_offset = 0;
        for extent in &extents {
            prop_assert!(extent.len_bytes > 0, "empty extent {:?}", extent);
            prop_assert_eq!(extent.request_offset_bytes, next_request_offset);
            next_request_offset += extent.len_bytes;
            // The leaf holding the extent's first byte holds all of it.
            let (leaf, device_offset) = oracle_locate(&layout, offset + extent.request_offset_bytes);
            prop_assert_eq!(leaf.device, extent.device);
            prop_assert_eq!(device_offset, extent.device_offset_bytes);
            prop_assert!(extent.device_offset_bytes >= leaf.offset_bytes);
            prop_assert!(
                extent.device_offset_bytes + extent.len_bytes <= leaf.offset_bytes + leaf.size_bytes,
                "extent {:?} leaves its member {:?}", extent, leaf
            );
        }
        prop_assert_eq!(next_request_offset, len);
    }

    #[test]
    fn reads_return_what_the_oracle_reads((layout, offset, len) in arb_layout_and_request()) {
        let map = VolumeMap::try_new(layout.clone()).unwrap();
        let devices = devices_for(&layout);
        let mut buffer = vec![u32::MAX; len as usize];
        for extent in planned(&map, offset, len) {
            let device = &devices[extent.device as usize];
            for i in 0..extent.len_bytes {
                buffer[(extent.request_offset_bytes + i) as usize] =
                    device[(extent.device_offset_bytes + i) as usize];
            }
        }
        for (i, value) in buffer.iter().enumerate() {
            let (leaf, device_offset) = oracle_locate(&layout, offset + i as u64);
            prop_assert_eq!(*value, devices[leaf.device as usize][device_offset as usize], "byte {}", i);
        }
    }

    #[test]
    fn writes_land_where_the_oracle_writes((layout, offset, len) in arb_layout_and_request()) {
        let map = VolumeMap::try_new(layout.clone()).unwrap();
        let before = devices_for(&layout);
        let data: Vec<u32> = (0..len as u32).map(|i| 0xff00_0000 | i).collect();

        let mut written = before.clone();
        for extent in planned(&map, offset, len) {
            for i in 0..extent.len_bytes {
                written[extent.device as usize][(extent.device_offset_bytes + i) as usize] =
                    data[(extent.request_offset_bytes + i) as usize];
            }
        }
        let mut expected = before;
        for (i, value) in data.iter().enumerate() {
            let (leaf, device_offset) = oracle_locate(&layout, offset + i as u64);
            expected[leaf.device as usize][device_offset as usize] = *value;
        }
        prop_assert_eq!(written, expected);
    }

    #[test]
    fn requests_beyond_the_end_are_refused(layout in arb_layout(), past in 1u64..10, len in 0u64..10) {
        let map = VolumeMap::try_new(layout).unwrap();
        let mut out = Vec::new();
        let offset = map.size_bytes + past - 1;
        let len = if offset == map.size_bytes { len.max(1) } else { len };
        prop_assert_eq!(
            map.plan(offset, len, &mut out),
            Err(PlanError::OutOfRange { offset_bytes: offset, len_bytes: len, size_bytes: map.size_bytes })
        );
        prop_assert!(out.is_empty());
    }

    #[test]
    fn planning_is_deterministic_and_appends((layout, offset, len) in arb_layout_and_request()) {
        let map = VolumeMap::try_new(layout).unwrap();
        let first = planned(&map, offset, len);
        let mut out = first.clone();
        map.plan(offset, len, &mut out).unwrap();
        prop_assert_eq!(out.len(), 2 * first.len());
        prop_assert_eq!(&out[first.len()..], &first[..]);
    }
}
