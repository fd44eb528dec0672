//! Pools and layout trees through the RPCs: pool rules, pool and device exclusivity, stripe,
//! mirror and thin nodes resolved, numbered, checked, listed and published.

use lunar_api::device::DeviceRemoveParams;
use lunar_api::pool::PoolDeleteParams;
use lunar_api::volume::{
    LayoutSpec, LegHealthInfo, MirrorSpec, ReadPolicySpec, StripeSpec, VolumeCreateParams,
};
use lunar_api::{code, Empty};
use lunar_volume::layout::{Layout, LegHealth, ReadPolicy};

use super::tests::{add_device, create_volume, linear};
use super::tests_thin::*;
use super::*;
use crate::config::LayoutConfig;
use crate::testing::controller;

fn stripe(unit_bytes: u64, members: Vec<LayoutSpec>) -> LayoutSpec {
    LayoutSpec::Stripe(StripeSpec {
        unit_bytes,
        members,
    })
}

fn mirror(legs: Vec<LayoutSpec>, read_policy: Option<ReadPolicySpec>) -> LayoutSpec {
    LayoutSpec::Mirror(MirrorSpec {
        legs,
        read_policy,
        health: Vec::new(),
    })
}

fn devices(c: &mut Controller) {
    add_device(c, "disk1", "/dev/disk1");
    add_device(c, "disk2", "/dev/disk2");
    add_device(c, "small", "/dev/pool4m");
}

#[test]
fn pool_create_checks_its_parameters() {
    let (mut c, _, _) = controller();
    devices(&mut c);
    create_volume(&mut c, "v", linear("disk1", 0, Some(MIB))).expect("volume");
    /// Name, devices, segment size, the error code and part of its message.
    type Case<'a> = (&'a str, &'a [&'a str], Option<u64>, i64, &'a str);
    let cases: &[Case] = &[
        (
            "p",
            &["disk2"],
            Some(3 * 4096),
            code::INVALID_PARAMS,
            "power of two",
        ),
        (
            "p",
            &["disk2"],
            Some(2048),
            code::INVALID_PARAMS,
            "power of two from 4096",
        ),
        (
            "p",
            &["disk2"],
            Some(128 << 20),
            code::INVALID_PARAMS,
            "power of two",
        ),
        ("p", &[], None, code::INVALID_PARAMS, "at least one device"),
        (
            "p",
            &["disk2", "disk2"],
            None,
            code::INVALID_PARAMS,
            "listed twice",
        ),
        (
            "p",
            &["nope"],
            None,
            code::NOT_FOUND,
            "device 'nope' not found",
        ),
        ("p", &["disk1"], None, code::IN_USE, "used by volume 'v'"),
        (
            "p",
            &["small"],
            Some(8 << 20),
            code::CONFLICT,
            "smaller than one",
        ),
        ("bad name", &["disk2"], None, code::INVALID_PARAMS, "pool"),
    ];
    for &(name, pool_devices, segment, expected_code, expected) in cases {
        let error = create_pool(&mut c, name, pool_devices, segment).expect_err(expected);
        assert_eq!(error.code(), expected_code, "{error}");
        assert!(error.to_string().contains(expected), "{error}");
    }
    let info = create_pool(&mut c, "p", &["disk2", "small"], Some(4 * MIB)).expect("pool");
    assert_eq!(info.segment_bytes, 4 * MIB);
    assert_eq!(info.size_bytes, (1 << 30) + 4 * MIB);
    assert_eq!(
        (info.free_bytes, info.allocated_bytes),
        (info.size_bytes, 0)
    );
    let again = create_pool(&mut c, "p", &["disk2"], None).expect_err("exists");
    assert_eq!(again.code(), code::ALREADY_EXISTS);
    let twice = create_pool(&mut c, "q", &["small"], None).expect_err("in a pool");
    assert!(twice.to_string().contains("used by pool 'p'"), "{twice}");
}

#[test]
fn pool_devices_and_extents_exclude_each_other() {
    let (mut c, _, _) = controller();
    devices(&mut c);
    create_pool(&mut c, "p", &["disk2"], None).expect("pool");
    let extent =
        create_volume(&mut c, "v", linear("disk2", 0, Some(MIB))).expect_err("pool device");
    assert!(
        extent.to_string().contains("belongs to pool 'p'"),
        "{extent}"
    );
    let removed = c
        .device_remove(DeviceRemoveParams {
            name: "disk2".into(),
        })
        .expect_err("in a pool");
    assert!(
        removed.to_string().contains("used by pool 'p'"),
        "{removed}"
    );
    let listed = c.device_list(Empty {}).expect("devices");
    let disk2 = listed
        .devices
        .iter()
        .find(|d| d.name == "disk2")
        .expect("disk2");
    assert_eq!(disk2.pool.as_deref(), Some("p"));
    create_thin(&mut c, "t", "p", 8 * MIB).expect("thin");
    let busy = c
        .pool_delete(PoolDeleteParams { name: "p".into() })
        .expect_err("used");
    assert_eq!(busy.code(), code::IN_USE);
    assert!(busy.to_string().contains("used by volume 't'"), "{busy}");
    let listed = c.pool_list(Empty {}).expect("pools");
    assert_eq!(listed.pools[0].used_by, vec!["t".to_string()]);
    c.volume_delete(lunar_api::volume::VolumeDeleteParams { name: "t".into() })
        .expect("delete");
    c.pool_delete(PoolDeleteParams { name: "p".into() })
        .expect("pool_delete");
    assert!(c.pool_list(Empty {}).expect("pools").pools.is_empty());
    c.device_remove(DeviceRemoveParams {
        name: "disk2".into(),
    })
    .expect("device free again");
    let missing = create_thin(&mut c, "t", "p", MIB).expect_err("no pool");
    assert_eq!(missing.code(), code::NOT_FOUND);
}

#[test]
fn thin_sizes_follow_the_volume_block_size() {
    let (mut c, _, _) = controller();
    devices(&mut c);
    create_pool(&mut c, "p", &["disk2"], None).expect("pool");
    let odd = create_thin(&mut c, "t", "p", MIB + 100).expect_err("odd size");
    assert!(
        odd.to_string()
            .contains("multiple of the volume block size"),
        "{odd}"
    );
    let zero = create_thin(&mut c, "t", "p", 0).expect_err("empty");
    assert_eq!(zero.code(), code::INVALID_PARAMS);
    let info = create_thin(&mut c, "t", "p", MIB + 512).expect("last segment partial");
    assert_eq!(info.size_bytes, MIB + 512);
    let reported = c
        .volume_create(VolumeCreateParams {
            name: "u".into(),
            layout: LayoutSpec::Thin(lunar_api::volume::ThinSpec {
                pool: "p".into(),
                size_bytes: MIB,
                segment_bytes: Some(MIB),
                allocated_bytes: None,
                shared_bytes: None,
            }),
            block_size: None,
        })
        .expect_err("result-only field");
    assert!(
        reported.to_string().contains("reported by volume_list"),
        "{reported}"
    );
}

#[test]
fn stripes_and_mirrors_are_checked_numbered_and_published() {
    let (mut c, plane, _) = controller();
    devices(&mut c);
    create_pool(&mut c, "p", &["small"], None).expect("pool");
    let unaligned = create_volume(
        &mut c,
        "s",
        stripe(
            1000,
            vec![linear("disk1", 0, Some(MIB)), linear("disk2", 0, Some(MIB))],
        ),
    )
    .expect_err("unit");
    assert!(
        unaligned.to_string().contains("unit_bytes 1000"),
        "{unaligned}"
    );
    let tiny = create_volume(
        &mut c,
        "s",
        stripe(
            MIB,
            vec![
                linear("disk1", 0, Some(MIB)),
                linear("disk2", 0, Some(4096)),
            ],
        ),
    )
    .expect_err("member smaller than a unit");
    assert!(tiny.to_string().contains("smaller than one unit"), "{tiny}");
    let uneven = create_volume(
        &mut c,
        "m",
        mirror(
            vec![
                linear("disk1", 0, Some(MIB)),
                linear("disk2", 0, Some(2 * MIB)),
            ],
            None,
        ),
    )
    .expect_err("legs differ");
    assert!(uneven.to_string().contains("same size"), "{uneven}");
    let empty = create_volume(&mut c, "m", mirror(Vec::new(), None)).expect_err("no legs");
    assert!(empty.to_string().contains("at least one member"), "{empty}");
    // A mirror of a stripe and a thin node.
    let layout = mirror(
        vec![
            stripe(
                64 << 10,
                vec![linear("disk1", 0, Some(MIB)), linear("disk2", 0, Some(MIB))],
            ),
            thin("p", 2 * MIB),
        ],
        Some(ReadPolicySpec::LeastOutstanding),
    );
    let info = create_volume(&mut c, "m", layout).expect("nested volume");
    assert_eq!(info.size_bytes, 2 * MIB);
    let LayoutSpec::Mirror(shown) = &info.layout else {
        panic!("{:?}", info.layout);
    };
    assert_eq!(
        shown.health,
        vec![LegHealthInfo::Healthy, LegHealthInfo::Healthy]
    );
    assert_eq!(shown.read_policy, Some(ReadPolicySpec::LeastOutstanding));
    let LayoutConfig::Mirror { id, legs, .. } = &c.config().volume("m").expect("m").layout else {
        panic!("not a mirror");
    };
    assert_eq!(*id, 1);
    assert_eq!(legs[1].layout.id(), Some(2));
    let published = plane.last();
    let volume = published
        .volumes
        .iter()
        .find(|v| v.name == "m")
        .expect("published");
    let Layout::Mirror {
        id,
        read_policy,
        legs,
    } = &volume.layout
    else {
        panic!("{:?}", volume.layout);
    };
    assert_eq!((*id, *read_policy), (1, ReadPolicy::LeastOutstanding));
    assert_eq!(legs[0].health, LegHealth::Healthy);
    assert!(
        matches!(&legs[0].layout, Layout::Stripe { unit_bytes, members } if *unit_bytes == 64 << 10 && members.len() == 2)
    );
    assert!(
        matches!(&legs[1].layout, Layout::Segmented { id: 2, segment_bytes, .. } if *segment_bytes == MIB)
    );
    // The stripe's extents count against other volumes like any extent.
    let overlap =
        create_volume(&mut c, "o", linear("disk2", 4096, Some(4096))).expect_err("overlap");
    assert!(
        overlap.to_string().contains("overlaps volume 'm'"),
        "{overlap}"
    );
}

#[test]
fn a_restart_keeps_node_ids_and_leg_health() {
    let (mut c, _, store) = controller();
    devices(&mut c);
    create_volume(
        &mut c,
        "m",
        mirror(
            vec![linear("disk1", 0, Some(MIB)), linear("disk2", 0, Some(MIB))],
            None,
        ),
    )
    .expect("mirror");
    let mut saved = store.state().saved.last().cloned().expect("saved");
    if let LayoutConfig::Mirror { legs, .. } = &mut saved.volumes[0].layout {
        legs[1].health = crate::config::LegHealthConfig::Resyncing {
            up_to_bytes: MIB / 4,
        };
    }
    let bytes = crate::store::encode(&saved).expect("encode");
    let decoded = crate::store::decode(&bytes).expect("decode");
    assert_eq!(decoded, saved);
    let devices = open_devices(&decoded, &crate::testing::standard_opener()).expect("open");
    check_config(&decoded, &devices).expect("valid");
    let mut restarted = Controller::new(
        decoded,
        devices,
        Parts {
            opener: Box::new(crate::testing::standard_opener()),
            publisher: Box::new(crate::testing::FakePlane::default()),
            store: Box::new(crate::testing::MemoryStore::default()),
            about: About::default(),
        },
    )
    .expect("restart");
    let listed = restarted.volume_list(Empty {}).expect("list");
    let LayoutSpec::Mirror(shown) = &listed.volumes[0].layout else {
        panic!("not a mirror");
    };
    assert_eq!(
        shown.health[1],
        LegHealthInfo::Resyncing {
            resynced_bytes: MIB / 4,
            percent: 25
        }
    );
}
