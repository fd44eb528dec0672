//! Mirror legs and tasks, fed directly: a failed leg taken out (durably, once, never the last
//! healthy one), dirty regions marked before writes, stale leg numbers ignored, legs added and
//! removed, migrations copied by the task runner to the end (bytes checked on the devices),
//! rolled back on a copy error, and resumed from the saved state after a restart.

use lunar_api::mirror::{
    MirrorLegAddParams, MirrorLegRejoinParams, MirrorLegRemoveParams, VolumeMigrateParams,
};
use lunar_api::task::{TaskGetParams, TaskState};
use lunar_api::volume::{LayoutSpec, MirrorSpec, VolumeCreateParams};
use lunar_reactor::{ReactorRequest, RequestId, RequestKind};
use lunar_volume::LegRef;
use lunar_wire::scsi::{Asc, SenseKey};

use super::tests::{add_device, linear};
use super::tests_thin::{assert_good, sense_of, serve_one, MIB};
use super::*;
use crate::config::{LayoutConfig, LegHealthConfig, TaskStateConfig};
use crate::testing::{controller, FakePlane, MemoryStore};

/// disk1 and disk2, and volume `m`: a 2-leg mirror over their first 4 MiB (node id 1).
fn mirrored() -> (Controller, FakePlane, MemoryStore) {
    let (mut c, plane, store) = controller();
    add_device(&mut c, "disk1", "/dev/disk1");
    add_device(&mut c, "disk2", "/dev/disk2");
    c.volume_create(VolumeCreateParams {
        name: "m".into(),
        layout: LayoutSpec::Mirror(MirrorSpec {
            legs: vec![
                linear("disk1", 0, Some(4 * MIB)),
                linear("disk2", 0, Some(4 * MIB)),
            ],
            read_policy: None,
            health: Vec::new(),
        }),
        block_size: None,
    })
    .expect("mirror volume");
    (c, plane, store)
}

/// disk1 and disk2, and volume `v`: the first 2 MiB of disk1.
fn linear_volume() -> (Controller, MemoryStore) {
    let (mut c, _plane, store) = controller();
    add_device(&mut c, "disk1", "/dev/disk1");
    add_device(&mut c, "disk2", "/dev/disk2");
    c.volume_create(VolumeCreateParams {
        name: "v".into(),
        layout: linear("disk1", 0, Some(2 * MIB)),
        block_size: None,
    })
    .expect("volume");
    (c, store)
}

fn uid(c: &Controller, name: &str) -> u64 {
    c.config().volume(name).expect("volume").uid.0
}

fn request(seq: u64, kind: RequestKind) -> ReactorRequest {
    ReactorRequest {
        id: RequestId { reactor: 0, seq },
        kind,
    }
}

fn leg_failed(c: &Controller, leg: u32, write: bool) -> RequestKind {
    RequestKind::LegFailed {
        volume_uid: uid(c, "m"),
        generation: c.generation(),
        leg: LegRef { mirror: 1, leg },
        write,
    }
}

fn health(c: &Controller, name: &str) -> Vec<LegHealthConfig> {
    match &c.config().volume(name).expect("volume").layout {
        LayoutConfig::Mirror { legs, .. } => legs.iter().map(|l| l.health).collect(),
        other => panic!("not a mirror: {other:?}"),
    }
}

fn run_until_done(c: &mut Controller, id: u64) -> lunar_api::task::TaskInfo {
    for _ in 0..10_000 {
        c.run_tasks();
        let task = c.task_get(TaskGetParams { id }).expect("task");
        if task.state != TaskState::Running {
            return task;
        }
    }
    panic!("task {id} did not end");
}

#[test]
fn a_failed_leg_is_taken_out_durably_once_and_never_the_last() {
    let (mut c, plane, store) = mirrored();
    let published = plane.state().published.len();
    let kind = leg_failed(&c, 1, true);
    assert_good(&serve_one(&mut c, &plane, request(1, kind)));
    assert_eq!(
        health(&c, "m"),
        vec![LegHealthConfig::Healthy, LegHealthConfig::Faulty]
    );
    let saved = store.state().saved.last().cloned().expect("saved");
    assert!(
        saved.volume("m").expect("m").dirty_regions.is_some(),
        "dirty tracking is saved with the faulty leg"
    );
    assert_eq!(plane.state().published.len(), published + 1);
    let table = plane.last();
    assert!(table.volumes[0].dirty_regions.is_some(), "and published");
    // Reported again (another command, same failure): nothing changes.
    let kind = leg_failed(&c, 1, false);
    assert_good(&serve_one(&mut c, &plane, request(2, kind)));
    assert_eq!(plane.state().published.len(), published + 1);
    // Leg 0 is the last healthy one: it stays, and the write gets a medium error.
    let kind = leg_failed(&c, 0, true);
    let reply = serve_one(&mut c, &plane, request(3, kind));
    assert_eq!(sense_of(&reply), (SenseKey::MediumError, Asc::WRITE_ERROR));
    assert_eq!(health(&c, "m")[0], LegHealthConfig::Healthy);
}

#[test]
fn writes_to_a_degraded_volume_mark_their_regions_before_they_go() {
    let (mut c, plane, store) = mirrored();
    let kind = leg_failed(&c, 1, true);
    assert_good(&serve_one(&mut c, &plane, request(1, kind)));
    let volume_uid = uid(&c, "m");
    let log = |generation, offset_bytes, len_bytes| RequestKind::LogWrites {
        volume_uid,
        generation,
        offset_bytes,
        len_bytes,
    };
    let kind = log(c.generation(), MIB - 512, 1024);
    assert_good(&serve_one(&mut c, &plane, request(2, kind)));
    let dirty = plane.last().volumes[0]
        .dirty_regions
        .clone()
        .expect("dirty regions");
    assert_eq!(dirty.marked().collect::<Vec<_>>(), vec![0, 1]);
    let saved = store.state().saved.last().cloned().expect("saved");
    assert_eq!(
        saved
            .volume("m")
            .and_then(|v| v.dirty_regions.clone())
            .map(|d| d.runs),
        Some(vec![(0, 2)]),
        "saved before the answer"
    );
    // Already marked: no new table.
    let published = plane.state().published.len();
    let kind = log(c.generation(), 0, 4096);
    assert_good(&serve_one(&mut c, &plane, request(3, kind)));
    assert_eq!(plane.state().published.len(), published);
}

#[test]
fn a_failure_reported_before_the_legs_were_renumbered_is_ignored() {
    let (mut c, plane, _) = mirrored();
    let before = c.generation();
    let task = c
        .mirror_leg_add(MirrorLegAddParams {
            volume: "m".into(),
            leg: linear("disk1", 8 * MIB, Some(4 * MIB)),
        })
        .expect("leg add");
    run_until_done(&mut c, task.id);
    c.mirror_leg_remove(MirrorLegRemoveParams {
        volume: "m".into(),
        index: 0,
    })
    .expect("remove leg 0");
    // "Leg 1" of a plan made before the removal is today's leg 0.
    let stale = RequestKind::LegFailed {
        volume_uid: uid(&c, "m"),
        generation: before,
        leg: LegRef { mirror: 1, leg: 1 },
        write: true,
    };
    assert_good(&serve_one(&mut c, &plane, request(1, stale)));
    assert_eq!(
        health(&c, "m"),
        vec![LegHealthConfig::Healthy, LegHealthConfig::Healthy]
    );
}

#[test]
fn an_added_leg_is_copied_onto_and_a_removed_one_goes() {
    let (mut c, store) = linear_volume();
    let source = c.devices.get("disk1").expect("disk1").clone();
    let data: Vec<u8> = (0..2 * MIB).map(|i| (i % 251) as u8).collect();
    crate::thin::device_io::write_all_at(&source, &data, 0).expect("write the volume's data");
    let task = c
        .mirror_leg_add(MirrorLegAddParams {
            volume: "v".into(),
            leg: linear("disk2", 8 * MIB, Some(2 * MIB)),
        })
        .expect("leg add");
    assert_eq!(task.total_bytes, 2 * MIB);
    assert!(
        matches!(
            store.state().saved.last().expect("saved").tasks.last(),
            Some(t) if t.state == TaskStateConfig::Running
        ),
        "the task is saved before it runs"
    );
    let done = run_until_done(&mut c, task.id);
    assert_eq!(done.state, TaskState::Done);
    assert_eq!(done.copied_bytes, 2 * MIB);
    let target = c.devices.get("disk2").expect("disk2").clone();
    let mut copied = vec![0u8; (2 * MIB) as usize];
    crate::thin::device_io::read_exact_at(&target, &mut copied, 8 * MIB).expect("read the leg");
    assert!(copied == data, "the new leg holds the volume's bytes");
    assert_eq!(
        health(&c, "v"),
        vec![LegHealthConfig::Healthy, LegHealthConfig::Healthy]
    );
    // The old leg goes; the volume is the new leg's extent alone.
    c.mirror_leg_remove(MirrorLegRemoveParams {
        volume: "v".into(),
        index: 0,
    })
    .expect("remove");
    assert!(matches!(
        &c.config().volume("v").expect("v").layout,
        LayoutConfig::Linear { device, offset_bytes, .. } if device == "disk2" && *offset_bytes == 8 * MIB
    ));
    // The last leg cannot be removed; nor a leg of a volume that is not a mirror.
    let error = c
        .mirror_leg_remove(MirrorLegRemoveParams {
            volume: "v".into(),
            index: 0,
        })
        .expect_err("not a mirror");
    assert!(error.to_string().contains("not a mirror"), "{error}");
}

#[test]
fn a_migration_that_cannot_write_its_target_goes_back_to_the_old_layout() {
    let (mut c, _) = linear_volume();
    let task = c
        .volume_migrate(VolumeMigrateParams {
            name: "v".into(),
            layout: linear("disk2", 0, Some(2 * MIB)),
        })
        .expect("migrate");
    // Another change is refused while the task runs.
    let busy = c
        .volume_migrate(VolumeMigrateParams {
            name: "v".into(),
            layout: linear("disk2", 4 * MIB, Some(2 * MIB)),
        })
        .expect_err("one task at a time");
    assert!(busy.to_string().contains("task"), "{busy}");
    // The target device turns read-only under the task: every copy fails.
    let read_only = crate::testing::read_only_device(2 << 30);
    c.devices
        .insert("disk2".into(), std::sync::Arc::new(read_only));
    c.tasks = tasks::TaskRunner::default();
    let ended = run_until_done(&mut c, task.id);
    assert_eq!(ended.state, TaskState::Failed, "{ended:?}");
    assert!(ended.message.is_some());
    assert!(matches!(
        &c.config().volume("v").expect("v").layout,
        LayoutConfig::Linear { device, .. } if device == "disk1"
    ));
}

#[test]
fn a_running_task_resumes_from_the_saved_state() {
    let (mut c, _plane, store) = mirrored();
    let healthy = LegHealthConfig::Healthy;
    // Leg 1 fails and comes back: a resync over the dirty regions.
    let kind = leg_failed(&c, 1, true);
    let plane = _plane;
    assert_good(&serve_one(&mut c, &plane, request(1, kind)));
    let task = c
        .mirror_leg_rejoin(MirrorLegRejoinParams {
            volume: "m".into(),
            index: 1,
        })
        .expect("rejoin");
    // A restart from what was saved: the task is there, running, and ends.
    let saved = store.state().saved.last().cloned().expect("saved");
    let devices = c.devices.clone();
    let mut restarted = Controller::new(
        saved,
        devices,
        Parts {
            opener: Box::new(crate::testing::standard_opener()),
            publisher: Box::new(FakePlane::default()),
            store: Box::new(MemoryStore::default()),
            about: About::default(),
        },
    )
    .expect("restart");
    let done = run_until_done(&mut restarted, task.id);
    assert_eq!(done.state, TaskState::Done);
    assert_eq!(
        done.copied_bytes, 0,
        "nothing was written while the leg was out"
    );
    assert_eq!(health(&restarted, "m"), vec![healthy, healthy]);
    assert!(restarted
        .config()
        .volume("m")
        .expect("m")
        .dirty_regions
        .is_none());
}

#[test]
fn large_volumes_get_larger_dirty_regions_not_more_of_them() {
    use super::mirrors::{no_dirty_regions, DIRTY_REGIONS_MAX};
    assert_eq!(no_dirty_regions(4 * MIB).region_bytes, MIB);
    assert_eq!(no_dirty_regions(8 << 30).region_bytes, MIB);
    assert_eq!(no_dirty_regions(1 << 40).region_bytes, 128 * MIB);
    for size in [1u64, MIB + 1, 3 << 30, (1 << 40) + 7, 1 << 50] {
        let region = no_dirty_regions(size).region_bytes;
        assert!(size.div_ceil(region) <= DIRTY_REGIONS_MAX, "{size}");
        assert!(region.is_power_of_two());
    }
}
