//! `volume_resize`: thin tables grow keeping their segments, other layouts grow by a
//! concatenated extent or in place, shrinking and odd sizes are refused, and every nexus gets
//! CAPACITY DATA HAS CHANGED with the new table.

use lunar_api::code;
use lunar_api::volume::{VolumeResizeParams, VolumeSnapshotCreateParams};
use lunar_scsi::UnitAttention;
use lunar_volume::SegmentEntry;
use serde_json::json;

use super::tests::{add_device, create_volume, linear};
use super::tests_thin::*;
use super::*;
use crate::config::LayoutConfig;
use crate::testing::controller;

fn resize(
    c: &mut Controller,
    name: &str,
    size_bytes: u64,
    extend: Option<serde_json::Value>,
) -> Result<lunar_api::volume::VolumeInfo, ControlError> {
    c.volume_resize(VolumeResizeParams {
        name: name.into(),
        size_bytes,
        extend: extend.map(|v| serde_json::from_value(v).expect("layout")),
    })
}

fn capacity_changed(c: &Controller, volume: &str) -> bool {
    let uid = c.config().volume(volume).expect("volume").uid.0;
    c.reservation_state(uid)
        .events()
        .iter()
        .any(|e| e.attention == UnitAttention::CapacityDataChanged)
}

#[test]
fn a_thin_volume_grows_its_table() {
    let (mut c, plane, store, uid) = thin_setup();
    let generation = c.generation();
    assert_good(&serve_one(
        &mut c,
        &plane,
        fault(1, uid, generation, &[15], Some((15 * MIB, 512))),
    ));
    let slot = location(&c, "t", 15);
    assert!(!capacity_changed(&c, "t"));
    let info = resize(&mut c, "t", 32 * MIB + 512, None).expect("grow");
    assert_eq!(info.size_bytes, 32 * MIB + 512);
    assert_eq!(entry(&c, "t", 15), SegmentEntry::Mapped(slot));
    assert_eq!(
        entry(&c, "t", 32),
        SegmentEntry::Zero,
        "the new partial segment"
    );
    assert!(capacity_changed(&c, "t"));
    let published = plane.last();
    let volume = published.volumes.iter().find(|v| v.name == "t").expect("t");
    assert_eq!(volume.size_bytes, 32 * MIB + 512);
    assert!(volume
        .reservations
        .events()
        .iter()
        .any(|e| e.attention == UnitAttention::CapacityDataChanged));
    assert_eq!(store.state().saved.last(), Some(c.config()));
    let extend = resize(
        &mut c,
        "t",
        40 * MIB,
        Some(json!({"linear": {"device": "disk2"}})),
    )
    .expect_err("thin with extend");
    assert!(
        extend.to_string().contains("leave 'extend' out"),
        "{extend}"
    );
    assert_ledgers_consistent(&c);
}

#[test]
fn shrinking_odd_sizes_and_snapshots_are_refused() {
    let (mut c, _, _, _) = thin_setup();
    let shrink = resize(&mut c, "t", 8 * MIB, None).expect_err("shrink");
    assert_eq!(shrink.code(), code::CONFLICT);
    assert!(shrink.to_string().contains("only grows"), "{shrink}");
    let odd = resize(&mut c, "t", 16 * MIB + 100, None).expect_err("odd");
    assert_eq!(odd.code(), code::INVALID_PARAMS);
    let missing = resize(&mut c, "nope", MIB, None).expect_err("missing");
    assert_eq!(missing.code(), code::NOT_FOUND);
    c.volume_snapshot_create(VolumeSnapshotCreateParams {
        volume: "t".into(),
        name: "s".into(),
    })
    .expect("snapshot");
    let snapshot = resize(&mut c, "s", 32 * MIB, None).expect_err("snapshot");
    assert!(snapshot.to_string().contains("snapshot"), "{snapshot}");
    let same = resize(&mut c, "t", 16 * MIB, None).expect("same size");
    assert_eq!(same.size_bytes, 16 * MIB);
    assert!(
        !capacity_changed(&c, "t"),
        "nothing changed, nothing to report"
    );
}

#[test]
fn a_linear_volume_grows_in_place_when_its_device_has_room() {
    let (mut c, _, _) = controller();
    add_device(&mut c, "disk1", "/dev/disk1");
    add_device(&mut c, "disk2", "/dev/disk2");
    create_volume(&mut c, "v", linear("disk1", 0, Some(MIB))).expect("v");
    create_volume(&mut c, "w", linear("disk1", 4 * MIB, Some(MIB))).expect("w");
    let info = resize(&mut c, "v", 3 * MIB, None).expect("in place");
    assert_eq!(info.size_bytes, 3 * MIB);
    assert_eq!(
        c.config().volume("v").expect("v").layout,
        LayoutConfig::Linear {
            device: "disk1".into(),
            offset_bytes: 0,
            size_bytes: 3 * MIB
        }
    );
    assert!(capacity_changed(&c, "v"));
    let blocked = resize(&mut c, "v", 5 * MIB, None).expect_err("w is in the way");
    assert!(blocked.to_string().contains("volume 'w'"), "{blocked}");
    assert!(blocked.to_string().contains("'extend'"), "{blocked}");
    let info = resize(
        &mut c,
        "v",
        5 * MIB,
        Some(json!({"linear": {"device": "disk2", "offset_bytes": 0}})),
    )
    .expect("extend");
    assert_eq!(info.size_bytes, 5 * MIB);
    assert_eq!(
        c.config().volume("v").expect("v").layout,
        LayoutConfig::Concat(vec![
            LayoutConfig::Linear {
                device: "disk1".into(),
                offset_bytes: 0,
                size_bytes: 3 * MIB
            },
            LayoutConfig::Linear {
                device: "disk2".into(),
                offset_bytes: 0,
                size_bytes: 2 * MIB
            },
        ])
    );
    // The concat's last extent grows in place next.
    resize(&mut c, "v", 6 * MIB, None).expect("grow the last member");
    let mismatch = resize(
        &mut c,
        "v",
        8 * MIB,
        Some(
            json!({"linear": {"device": "disk2", "offset_bytes": 16777216, "size_bytes": 1048576}}),
        ),
    )
    .expect_err("wrong size");
    assert!(mismatch.to_string().contains("must be equal"), "{mismatch}");
    let overlap = resize(
        &mut c,
        "v",
        7 * MIB,
        Some(json!({"linear": {"device": "disk1", "offset_bytes": 4194304}})),
    )
    .expect_err("onto w");
    assert!(
        overlap.to_string().contains("overlaps volume 'w'"),
        "{overlap}"
    );
}

#[test]
fn other_layouts_grow_by_a_concatenated_layout_with_fresh_node_ids() {
    let (mut c, _, _) = controller();
    add_device(&mut c, "disk1", "/dev/disk1");
    add_device(&mut c, "disk2", "/dev/disk2");
    add_device(&mut c, "small", "/dev/pool4m");
    create_pool(&mut c, "p", &["small"], None).expect("pool");
    let mirror: lunar_api::volume::LayoutSpec = serde_json::from_value(json!({"mirror": {"legs": [
        {"linear": {"device": "disk1", "size_bytes": 1048576}},
        {"linear": {"device": "disk2", "size_bytes": 1048576}}]}}))
    .expect("layout");
    create_volume(&mut c, "m", mirror).expect("mirror");
    let needs = resize(&mut c, "m", 2 * MIB, None).expect_err("no extend");
    assert!(needs.to_string().contains("'extend'"), "{needs}");
    resize(
        &mut c,
        "m",
        2 * MIB,
        Some(json!({"thin": {"pool": "p", "size_bytes": 1048576}})),
    )
    .expect("grow by a thin node");
    let layout = &c.config().volume("m").expect("m").layout;
    assert_eq!(layout.node_ids(), vec![1, 2]);
    assert_eq!(layout.size_bytes(), 2 * MIB);
}

#[test]
fn a_volume_with_a_running_task_keeps_its_size() {
    let (mut c, _, _) = controller();
    add_device(&mut c, "disk1", "/dev/disk1");
    add_device(&mut c, "disk2", "/dev/disk2");
    create_volume(&mut c, "v", linear("disk1", 0, Some(MIB))).expect("v");
    let task = c
        .volume_migrate(lunar_api::mirror::VolumeMigrateParams {
            name: "v".into(),
            layout: linear("disk2", 0, Some(MIB)),
        })
        .expect("migrate");
    let busy = resize(&mut c, "v", 2 * MIB, None).expect_err("task running");
    assert_eq!(busy.code(), code::CONFLICT);
    assert!(
        busy.to_string().contains(&format!("task {}", task.id)),
        "{busy}"
    );
}
