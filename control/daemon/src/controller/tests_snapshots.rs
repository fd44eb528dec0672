//! Snapshots and clones: sharing, read-only export, copy-on-write of shared and unshared
//! segments, the drain a snapshot waits for (with the origin's copy-on-write faults held back
//! meanwhile), taking a failed snapshot back, deallocations around a snapshot, and deletions
//! releasing only what the deleted volume held alone.

use lunar_api::volume::{
    LayoutSpec, VolumeCloneCreateParams, VolumeDeleteParams, VolumeSnapshotCreateParams,
};
use lunar_api::Empty;
use lunar_volume::SegmentEntry;

use super::tests::{add_device, create_target, create_volume, linear, lun};
use super::tests_thin::*;
use super::*;
use crate::testing::controller;

fn snapshot(
    c: &mut Controller,
    volume: &str,
    name: &str,
) -> Result<lunar_api::volume::VolumeInfo, ControlError> {
    c.volume_snapshot_create(VolumeSnapshotCreateParams {
        volume: volume.into(),
        name: name.into(),
    })
}

fn clone_of(
    c: &mut Controller,
    snapshot: &str,
    name: &str,
) -> Result<lunar_api::volume::VolumeInfo, ControlError> {
    c.volume_clone_create(VolumeCloneCreateParams {
        snapshot: snapshot.into(),
        name: name.into(),
    })
}

/// `thin_setup` with segments 0 and 1 of `t` written (slot bytes 0x11 and 0x22).
fn written_setup() -> (
    Controller,
    crate::testing::FakePlane,
    crate::testing::MemoryStore,
    u64,
) {
    let (mut c, plane, store, uid) = thin_setup();
    let generation = c.generation();
    assert_good(&serve_one(
        &mut c,
        &plane,
        fault(1, uid, generation, &[0, 1], Some((0, 2 * MIB))),
    ));
    for (index, byte) in [(0, 0x11u8), (1, 0x22)] {
        let slot = location(&c, "t", index);
        write_device(&c, "disk2", slot.offset_bytes, &vec![byte; MIB as usize]);
    }
    (c, plane, store, uid)
}

#[test]
fn snapshots_need_a_thin_volume() {
    let (mut c, _, _) = controller();
    add_device(&mut c, "disk1", "/dev/disk1");
    create_volume(&mut c, "plain", linear("disk1", 0, Some(MIB))).expect("volume");
    let error = snapshot(&mut c, "plain", "s").expect_err("not thin");
    assert!(
        error.to_string().contains("snapshots need a thin volume"),
        "{error}"
    );
    assert_eq!(error.code(), lunar_api::code::CONFLICT);
    let missing = snapshot(&mut c, "nope", "s").expect_err("missing");
    assert_eq!(missing.code(), lunar_api::code::NOT_FOUND);
    let taken = snapshot(&mut c, "plain", "plain").expect_err("name taken");
    assert_eq!(taken.code(), lunar_api::code::ALREADY_EXISTS);
}

#[test]
fn a_snapshot_shares_every_segment_and_is_exported_read_only() {
    let (mut c, plane, store, _) = written_setup();
    let info = snapshot(&mut c, "t", "s").expect("snapshot");
    assert!(info.snapshot);
    assert_eq!(info.snapshot_of.as_deref(), Some("t"));
    let LayoutSpec::Thin(thin) = &info.layout else {
        panic!("{:?}", info.layout);
    };
    assert_eq!(
        (thin.allocated_bytes, thin.shared_bytes),
        (Some(2 * MIB), Some(2 * MIB))
    );
    for index in [0, 1] {
        let slot = location(&c, "t", index);
        assert_eq!(entry(&c, "t", index), SegmentEntry::NoWrite(slot));
        assert_eq!(entry(&c, "s", index), SegmentEntry::NoWrite(slot));
    }
    assert_eq!(entry(&c, "s", 2), SegmentEntry::Zero);
    assert_eq!(
        store.state().saved.last(),
        Some(c.config()),
        "saved before the answer"
    );
    assert_eq!(
        pool_free_bytes(&mut c, "p0").1,
        2 * MIB,
        "shared slots count once"
    );
    let exported =
        create_target(&mut c, "iqn.2026-11.dev.lunar:s", vec![lun(0, "s")]).expect("export");
    assert!(exported.luns[0].read_only, "listed read-only too");
    let published = plane.last();
    let (_, luns) = published
        .targets
        .iter()
        .find(|(iqn, _)| iqn == "iqn.2026-11.dev.lunar:s")
        .expect("target");
    assert!(luns[0].2, "the snapshot's LUN is read-only");
    let listed = c.volume_list(Empty {}).expect("list");
    let origin = listed.volumes.iter().find(|v| v.name == "t").expect("t");
    assert!(!origin.snapshot && origin.snapshot_of.is_none());
    assert_ledgers_consistent(&c);
}

#[test]
fn a_write_to_a_shared_segment_copies_it_first() {
    let (mut c, plane, _, uid) = written_setup();
    snapshot(&mut c, "t", "s").expect("snapshot");
    let shared = location(&c, "t", 0);
    let generation = c.generation();
    assert_good(&serve_one(
        &mut c,
        &plane,
        fault(2, uid, generation, &[0], Some((4096, 512))),
    ));
    let copy = location(&c, "t", 0);
    assert_ne!(copy, shared);
    assert_eq!(entry(&c, "t", 0), SegmentEntry::Mapped(copy));
    assert_eq!(
        entry(&c, "s", 0),
        SegmentEntry::NoWrite(shared),
        "the snapshot keeps its slot"
    );
    assert!(read_device(&c, "disk2", copy.offset_bytes, MIB as usize)
        .iter()
        .all(|&b| b == 0x11));
    // A write covering the whole segment needs no copy.
    let generation = c.generation();
    assert_good(&serve_one(
        &mut c,
        &plane,
        fault(3, uid, generation, &[1], Some((MIB, MIB))),
    ));
    let fresh = location(&c, "t", 1);
    assert!(read_device(&c, "disk2", fresh.offset_bytes, 4096)
        .iter()
        .all(|&b| b == 0));
    let refs = c.ledgers().references();
    assert_eq!(refs["p0"][&shared], 1);
    assert_eq!(refs["p0"][&copy], 1);
    assert_ledgers_consistent(&c);
}

#[test]
fn a_segment_nothing_shares_any_more_becomes_writable_in_place() {
    let (mut c, plane, _, uid) = written_setup();
    snapshot(&mut c, "t", "s").expect("snapshot");
    let slot = location(&c, "t", 0);
    c.volume_delete(VolumeDeleteParams { name: "s".into() })
        .expect("delete snapshot");
    assert_eq!(entry(&c, "t", 0), SegmentEntry::NoWrite(slot));
    let free_before = pool_free_bytes(&mut c, "p0").0;
    let generation = c.generation();
    assert_good(&serve_one(
        &mut c,
        &plane,
        fault(2, uid, generation, &[0], Some((0, 512))),
    ));
    assert_eq!(entry(&c, "t", 0), SegmentEntry::Mapped(slot));
    assert_eq!(
        pool_free_bytes(&mut c, "p0").0,
        free_before,
        "no slot taken"
    );
    assert_ledgers_consistent(&c);
}

#[test]
fn copy_on_write_waits_for_the_snapshot_drain() {
    let (mut c, plane, store, uid) = written_setup();
    let before = c.generation();
    let snapshot_generation = before + 1;
    // A write planned before the snapshot is still in flight, and the reactors already sent
    // two faults: one planned on the snapshot's table (must wait), one on an older table (must
    // plan again, releasing its pin on that table).
    {
        let mut state = plane.state();
        state.in_flight_on = Some(before);
        state.completes_after_queries = Some(5);
        state.requests = vec![
            fault(10, uid, snapshot_generation, &[0], Some((0, 512))),
            fault(11, uid, before, &[1], Some((MIB, 512))),
        ];
    }
    let shared = location(&c, "t", 0);
    snapshot(&mut c, "t", "s").expect("snapshot");
    let answered: Vec<u64> = plane.state().answers.iter().map(|(id, _)| id.seq).collect();
    assert_eq!(
        answered,
        vec![11],
        "the old-table fault plans again; the other waits"
    );
    assert_eq!(c.deferred_len(), 1);
    assert_eq!(
        entry(&c, "t", 0),
        SegmentEntry::NoWrite(shared),
        "no copy during the drain"
    );
    assert!(store
        .state()
        .saved
        .last()
        .is_some_and(|saved| saved.volume("s").is_some()));
    plane.state().answers.clear();
    let answers = serve(&mut c, &plane, Vec::new());
    assert_eq!(answers.len(), 1);
    assert_eq!(answers[0].0, 10);
    assert_good(&answers[0].1);
    let copy = location(&c, "t", 0);
    assert_ne!(copy, shared);
    assert!(read_device(&c, "disk2", copy.offset_bytes, 4096)
        .iter()
        .all(|&b| b == 0x11));
    assert_ledgers_consistent(&c);
}

#[test]
fn a_snapshot_whose_drain_times_out_is_taken_back() {
    let (mut c, plane, store, _) = written_setup();
    let before = c.config().clone();
    c.set_drain_timeout(std::time::Duration::from_millis(50));
    plane.state().in_flight_on = Some(c.generation());
    let error = snapshot(&mut c, "t", "s").expect_err("drain never completes");
    assert_eq!(error.code(), lunar_api::code::PUBLISH_FAILED);
    assert!(error.to_string().contains("did not complete"), "{error}");
    assert_eq!(c.config(), &before, "origin writable again, no snapshot");
    assert_eq!(store.state().saved.last(), Some(&before));
    assert!(plane.last().volumes.iter().all(|v| v.name != "s"));
    assert_ledgers_consistent(&c);
    assert_eq!(c.ledgers().references()["p0"].values().max(), Some(&1));
}

#[test]
fn a_snapshot_that_cannot_be_saved_is_taken_back() {
    let (mut c, plane, store, _) = written_setup();
    let before = c.config().clone();
    store.state().fail = true;
    let error = snapshot(&mut c, "t", "s").expect_err("save fails");
    assert_eq!(error.code(), lunar_api::code::PERSIST_FAILED);
    assert_eq!(c.config(), &before);
    assert!(plane.last().volumes.iter().all(|v| v.name != "s"));
    assert_ledgers_consistent(&c);
}

#[test]
fn a_deallocation_planned_before_the_snapshot_lands_in_it_too() {
    let (mut c, plane, _, uid) = written_setup();
    let before = c.generation();
    {
        let mut state = plane.state();
        state.in_flight_on = Some(before);
        state.completes_after_queries = Some(3);
        state.requests = vec![
            deallocate(20, uid, before, &[(0, MIB), (MIB + 4096, 4096)]),
            deallocate(21, uid, before + 1, &[(MIB, 4096)]),
        ];
    }
    let kept = location(&c, "t", 1);
    snapshot(&mut c, "t", "s").expect("snapshot");
    let answered: Vec<u64> = plane.state().answers.iter().map(|(id, _)| id.seq).collect();
    assert_eq!(answered, vec![20]);
    assert_eq!(entry(&c, "t", 0), SegmentEntry::Zero);
    assert_eq!(
        entry(&c, "s", 0),
        SegmentEntry::Zero,
        "before the point: in the snapshot too"
    );
    assert_eq!(entry(&c, "s", 1), SegmentEntry::NoWrite(kept));
    let bytes = read_device(&c, "disk2", kept.offset_bytes, 12288);
    assert!(
        bytes[4096..8192].iter().all(|&b| b == 0),
        "zeroed in the shared slot"
    );
    assert!(bytes[..4096].iter().all(|&b| b == 0x22));
    plane.state().answers.clear();
    // The one planned on the snapshot's table waited; now it copies before zeroing.
    let answers = serve(&mut c, &plane, Vec::new());
    assert_eq!(answers.len(), 1);
    assert_good(&answers[0].1);
    let copy = location(&c, "t", 1);
    assert_ne!(copy, kept);
    let copied = read_device(&c, "disk2", copy.offset_bytes, 12288);
    assert!(
        copied[..4096].iter().all(|&b| b == 0),
        "this range is deallocated"
    );
    assert!(copied[8192..].iter().all(|&b| b == 0x22));
    assert!(read_device(&c, "disk2", kept.offset_bytes, 4096)
        .iter()
        .all(|&b| b == 0x22));
    assert_ledgers_consistent(&c);
}

#[test]
fn partial_deallocation_of_a_shared_segment_copies_then_zeroes() {
    let (mut c, plane, _, uid) = written_setup();
    snapshot(&mut c, "t", "s").expect("snapshot");
    let shared = location(&c, "t", 0);
    let generation = c.generation();
    assert_good(&serve_one(
        &mut c,
        &plane,
        deallocate(1, uid, generation, &[(8192, 4096)]),
    ));
    let copy = location(&c, "t", 0);
    assert_ne!(copy, shared);
    assert_eq!(entry(&c, "t", 0), SegmentEntry::Mapped(copy));
    let bytes = read_device(&c, "disk2", copy.offset_bytes, 16384);
    assert!(bytes[..8192].iter().all(|&b| b == 0x11));
    assert!(bytes[8192..12288].iter().all(|&b| b == 0));
    assert!(bytes[12288..].iter().all(|&b| b == 0x11));
    assert!(read_device(&c, "disk2", shared.offset_bytes, 16384)
        .iter()
        .all(|&b| b == 0x11));
    // A whole shared segment just drops the origin's reference.
    let shared_one = location(&c, "t", 1);
    let generation = c.generation();
    assert_good(&serve_one(
        &mut c,
        &plane,
        deallocate(2, uid, generation, &[(MIB, MIB)]),
    ));
    assert_eq!(entry(&c, "t", 1), SegmentEntry::Zero);
    assert_eq!(c.ledgers().references()["p0"][&shared_one], 1);
    assert_ledgers_consistent(&c);
}

#[test]
fn clones_share_a_snapshot_and_write_their_own_copies() {
    let (mut c, plane, _, _) = written_setup();
    let refused = clone_of(&mut c, "t", "c").expect_err("not a snapshot");
    assert!(
        refused.to_string().contains("is not a snapshot"),
        "{refused}"
    );
    snapshot(&mut c, "t", "s").expect("snapshot");
    let info = clone_of(&mut c, "s", "c").expect("clone");
    assert!(!info.snapshot);
    assert_eq!(info.clone_of.as_deref(), Some("s"));
    let shared = location(&c, "s", 0);
    assert_eq!(c.ledgers().references()["p0"][&shared], 3);
    create_target(&mut c, "iqn.2026-11.dev.lunar:c", vec![lun(0, "c")]).expect("export");
    let published = plane.last();
    let (_, luns) = published
        .targets
        .iter()
        .find(|(iqn, _)| iqn == "iqn.2026-11.dev.lunar:c")
        .expect("target");
    assert!(!luns[0].2, "a clone is writable");
    let clone_uid = c.config().volume("c").expect("c").uid.0;
    let generation = c.generation();
    assert_good(&serve_one(
        &mut c,
        &plane,
        fault(5, clone_uid, generation, &[0], Some((0, 512))),
    ));
    let copy = location(&c, "c", 0);
    assert_ne!(copy, shared);
    assert!(read_device(&c, "disk2", copy.offset_bytes, 4096)
        .iter()
        .all(|&b| b == 0x11));
    assert_eq!(c.ledgers().references()["p0"][&shared], 2);
    assert_ledgers_consistent(&c);
}

#[test]
fn deleting_releases_only_what_the_volume_held_alone() {
    let (mut c, plane, _, uid) = written_setup();
    snapshot(&mut c, "t", "s").expect("snapshot");
    let generation = c.generation();
    assert_good(&serve_one(
        &mut c,
        &plane,
        fault(2, uid, generation, &[0, 5], Some((0, 512))),
    ));
    // t holds: a copy of 0, 1 (shared), 5; s holds: old 0, 1 (shared).
    assert_eq!(pool_free_bytes(&mut c, "p0"), (1020 * MIB, 4 * MIB, 0));
    c.target_delete(lunar_api::target::TargetDeleteParams {
        iqn: "iqn.2026-11.dev.lunar:t".into(),
    })
    .expect("unexport");
    c.volume_delete(VolumeDeleteParams { name: "t".into() })
        .expect("delete origin");
    assert_eq!(pool_free_bytes(&mut c, "p0"), (1022 * MIB, 2 * MIB, 0));
    let listed = c.volume_list(Empty {}).expect("list");
    assert_eq!(
        listed.volumes[0].snapshot_of.as_deref(),
        Some("t"),
        "still says where it came from"
    );
    c.volume_delete(VolumeDeleteParams { name: "s".into() })
        .expect("delete snapshot");
    assert_eq!(pool_free_bytes(&mut c, "p0"), (1024 * MIB, 0, 0));
    assert_ledgers_consistent(&c);
}
