//! Behaviour of the control logic against fake devices, publisher and store.

use lunar_api::device::{DeviceAddParams, DeviceRemoveParams};
use lunar_api::stats::StatsGetParams;
use lunar_api::target::{LunSpec, TargetCreateParams, TargetDeleteParams};
use lunar_api::volume::{LayoutSpec, LinearSpec, VolumeCreateParams, VolumeDeleteParams};
use lunar_api::Empty;
use lunar_reactor::VolumeStats;
use lunar_volume::layout::Layout;

use super::*;
use crate::testing::{controller, standard_opener, FakePlane, MemoryStore};

pub(super) fn add_device(c: &mut Controller, name: &str, path: &str) {
    c.device_add(DeviceAddParams {
        name: name.into(),
        path: path.into(),
    })
    .expect("device_add");
}

pub(super) fn linear(device: &str, offset_bytes: u64, size_bytes: Option<u64>) -> LayoutSpec {
    LayoutSpec::Linear(LinearSpec {
        device: device.into(),
        offset_bytes,
        size_bytes,
    })
}

pub(super) fn create_volume(
    c: &mut Controller,
    name: &str,
    layout: LayoutSpec,
) -> Result<lunar_api::volume::VolumeInfo, ControlError> {
    c.volume_create(VolumeCreateParams {
        name: name.into(),
        layout,
        block_size: None,
    })
}

pub(super) fn lun(lun: u64, volume: &str) -> LunSpec {
    LunSpec {
        lun,
        volume: volume.into(),
        read_only: false,
        removable: false,
    }
}

pub(super) fn create_target(
    c: &mut Controller,
    iqn: &str,
    luns: Vec<LunSpec>,
) -> Result<lunar_api::target::TargetInfo, ControlError> {
    c.target_create(TargetCreateParams {
        iqn: iqn.into(),
        luns,
    })
}

/// disk1 + vol1 (first MiB of disk1) + target exporting vol1 as LUN 0.
pub(super) fn populated() -> (Controller, FakePlane, MemoryStore) {
    let (mut c, plane, store) = controller();
    add_device(&mut c, "disk1", "/dev/disk1");
    create_volume(&mut c, "vol1", linear("disk1", 0, Some(1 << 20))).expect("vol1");
    create_target(&mut c, "iqn.2026-11.dev.lunar:t1", vec![lun(0, "vol1")]).expect("target");
    (c, plane, store)
}

#[test]
fn start_publishes_the_empty_configuration() {
    let (c, plane, _) = controller();
    assert_eq!(c.generation(), 1);
    let first = plane.last();
    assert!(first.devices.is_empty() && first.volumes.is_empty() && first.targets.is_empty());
}

#[test]
fn full_configuration_is_persisted_and_published() {
    let (c, plane, store) = populated();
    assert_eq!(c.generation(), 4);
    let saved = store.state().saved.last().cloned().expect("saved");
    assert_eq!(&saved, c.config());
    let published = plane.last();
    assert_eq!(published.generation, 4);
    assert_eq!(published.devices, vec![Some("/dev/disk1".into())]);
    let volume = &published.volumes[0];
    assert_eq!(volume.name, "vol1");
    assert_ne!(volume.uid, 0);
    assert_eq!(volume.block_size, 512);
    assert_eq!(volume.size_bytes, 1 << 20);
    assert_eq!(
        volume.layout,
        Layout::Linear {
            device: 0,
            offset_bytes: 0,
            size_bytes: 1 << 20
        }
    );
    assert_eq!(
        published.targets,
        vec![("iqn.2026-11.dev.lunar:t1".to_string(), vec![(0, 0, false)])]
    );
}

#[test]
fn device_add_reports_geometry_and_refuses_duplicates() {
    let (mut c, _, _) = controller();
    let info = c
        .device_add(DeviceAddParams {
            name: "d4".into(),
            path: "/dev/disk4k".into(),
        })
        .expect("add");
    assert_eq!(
        (info.size_bytes, info.block_size, info.direct),
        (1 << 30, 4096, true)
    );
    let again = c.device_add(DeviceAddParams {
        name: "d4".into(),
        path: "/dev/disk1".into(),
    });
    assert_eq!(
        again.expect_err("dup name").to_string(),
        "device 'd4' already exists"
    );
    let same_path = c
        .device_add(DeviceAddParams {
            name: "other".into(),
            path: "/dev/disk4k".into(),
        })
        .expect_err("dup path");
    assert_eq!(same_path.code(), lunar_api::code::ALREADY_EXISTS);
    assert!(same_path
        .to_string()
        .contains("already added as device 'd4'"));
}

#[test]
fn device_add_errors() {
    let (mut c, plane, store) = controller();
    let relative = c
        .device_add(DeviceAddParams {
            name: "d".into(),
            path: "dev/disk1".into(),
        })
        .expect_err("relative");
    assert!(matches!(relative, ControlError::InvalidParams(_)));
    let missing = c
        .device_add(DeviceAddParams {
            name: "d".into(),
            path: "/dev/nothing".into(),
        })
        .expect_err("missing");
    assert_eq!(missing.code(), lunar_api::code::DEVICE_ERROR);
    assert!(missing.to_string().contains("device 'd'"), "{missing}");
    assert!(missing.to_string().contains("/dev/nothing"), "{missing}");
    let bad_name = c
        .device_add(DeviceAddParams {
            name: "a/b".into(),
            path: "/dev/disk1".into(),
        })
        .expect_err("bad name");
    assert!(matches!(bad_name, ControlError::InvalidParams(_)));
    assert_eq!(plane.state().published.len(), 1, "nothing published");
    assert!(store.state().saved.is_empty(), "nothing saved");
}

#[test]
fn device_ids_are_stable_and_reused_after_removal() {
    let (mut c, plane, _) = controller();
    add_device(&mut c, "a", "/dev/disk1");
    add_device(&mut c, "b", "/dev/disk2");
    c.device_remove(DeviceRemoveParams { name: "a".into() })
        .expect("remove");
    assert_eq!(plane.last().devices, vec![None, Some("/dev/disk2".into())]);
    add_device(&mut c, "c", "/dev/disk4k");
    assert_eq!(
        plane.last().devices,
        vec![Some("/dev/disk4k".into()), Some("/dev/disk2".into())]
    );
}

#[test]
fn device_in_use_cannot_be_removed() {
    let (mut c, _, _) = populated();
    let error = c
        .device_remove(DeviceRemoveParams {
            name: "disk1".into(),
        })
        .expect_err("in use");
    assert_eq!(error.to_string(), "device 'disk1' is used by volume 'vol1'");
    assert_eq!(error.code(), lunar_api::code::IN_USE);
    let unknown = c
        .device_remove(DeviceRemoveParams { name: "zz".into() })
        .expect_err("unknown");
    assert_eq!(unknown.to_string(), "device 'zz' not found");
}

#[test]
fn volume_create_validates_against_devices() {
    let (mut c, _, _) = controller();
    add_device(&mut c, "disk1", "/dev/disk1");
    add_device(&mut c, "d4", "/dev/disk4k");
    let unknown = create_volume(&mut c, "v", linear("nope", 0, None)).expect_err("unknown");
    assert_eq!(unknown.to_string(), "device 'nope' not found");
    let beyond =
        create_volume(&mut c, "v", linear("disk1", 1 << 30, Some(512))).expect_err("beyond");
    assert_eq!(beyond.code(), lunar_api::code::CONFLICT);
    let misaligned =
        create_volume(&mut c, "v", linear("disk1", 512, Some(1000))).expect_err("align");
    assert_eq!(misaligned.code(), lunar_api::code::CONFLICT);
    let small_block =
        create_volume(&mut c, "v", linear("d4", 0, Some(4096))).expect_err("4k device");
    assert!(
        small_block.to_string().contains("logical block size 4096"),
        "{small_block}"
    );
    let odd_block = c
        .volume_create(VolumeCreateParams {
            name: "v".into(),
            layout: linear("disk1", 0, None),
            block_size: Some(1024),
        })
        .expect_err("1024");
    assert_eq!(odd_block.code(), lunar_api::code::INVALID_PARAMS);
    let v4k = c
        .volume_create(VolumeCreateParams {
            name: "v4k".into(),
            layout: linear("d4", 0, None),
            block_size: Some(4096),
        })
        .expect("4k volume");
    assert_eq!(v4k.size_bytes, 1 << 30);
    assert_eq!(v4k.uid.len(), 16);
}

#[test]
fn volume_create_concat_and_names() {
    let (mut c, plane, _) = controller();
    add_device(&mut c, "disk1", "/dev/disk1");
    add_device(&mut c, "disk2", "/dev/disk2");
    let info = create_volume(
        &mut c,
        "cat",
        LayoutSpec::Concat(vec![
            linear("disk1", 0, Some(4096)),
            linear("disk2", 8192, None),
        ]),
    )
    .expect("concat");
    assert_eq!(info.size_bytes, 4096 + (1 << 30) - 8192);
    assert_eq!(
        info.layout,
        LayoutSpec::Concat(vec![
            linear("disk1", 0, Some(4096)),
            linear("disk2", 8192, Some((1 << 30) - 8192))
        ])
    );
    let overlap =
        create_volume(&mut c, "v2", linear("disk2", 0, Some(16384))).expect_err("overlap");
    assert!(
        overlap.to_string().contains("overlaps volume 'cat'"),
        "{overlap}"
    );
    let dup = create_volume(&mut c, "cat", linear("disk1", 1 << 20, None)).expect_err("dup");
    assert_eq!(dup.to_string(), "volume 'cat' already exists");
    let bad = create_volume(&mut c, "", linear("disk1", 1 << 20, None)).expect_err("empty name");
    assert_eq!(bad.code(), lunar_api::code::INVALID_PARAMS);
    let published = plane.last();
    assert_eq!(published.volumes.len(), 1);
    assert!(matches!(published.volumes[0].layout, Layout::Concat(ref m) if m.len() == 2));
    assert_eq!(published.volumes[0].size_bytes, info.size_bytes);
}

#[test]
fn volume_uids_are_distinct() {
    let (mut c, _, _) = controller();
    add_device(&mut c, "disk1", "/dev/disk1");
    let a = create_volume(&mut c, "a", linear("disk1", 0, Some(4096))).expect("a");
    let b = create_volume(&mut c, "b", linear("disk1", 4096, Some(4096))).expect("b");
    assert_ne!(a.uid, b.uid);
    let listed = c.volume_list(Empty {}).expect("list");
    assert_eq!(listed.volumes[0].uid, a.uid);
    assert_eq!(listed.volumes[1].uid, b.uid);
}

#[test]
fn exported_volume_cannot_be_deleted_until_target_is() {
    let (mut c, plane, _) = populated();
    let error = c
        .volume_delete(VolumeDeleteParams {
            name: "vol1".into(),
        })
        .expect_err("exported");
    assert_eq!(
        error.to_string(),
        "volume 'vol1' is exported by target 'iqn.2026-11.dev.lunar:t1'"
    );
    c.target_delete(TargetDeleteParams {
        iqn: "IQN.2026-11.dev.lunar:T1".into(),
    })
    .expect("target delete (case-insensitive)");
    let generation = c.generation();
    assert_eq!(plane.state().drained.last(), Some(&generation));
    c.volume_delete(VolumeDeleteParams {
        name: "vol1".into(),
    })
    .expect("volume delete");
    c.device_remove(DeviceRemoveParams {
        name: "disk1".into(),
    })
    .expect("device remove");
    let last = plane.last();
    assert!(last.volumes.is_empty() && last.targets.is_empty() && last.devices.is_empty());
    assert_eq!(c.config(), &Config::default());
}

#[test]
fn target_create_validation() {
    let (mut c, _, _) = populated();
    let cases = [
        (
            "bogus",
            vec![lun(0, "vol1")],
            lunar_api::code::INVALID_PARAMS,
        ),
        (
            "iqn.2026-11.dev.lunar:t2",
            vec![],
            lunar_api::code::INVALID_PARAMS,
        ),
        (
            "iqn.2026-11.dev.lunar:t2",
            vec![lun(16384, "vol1")],
            lunar_api::code::INVALID_PARAMS,
        ),
        (
            "iqn.2026-11.dev.lunar:t2",
            vec![lun(1, "vol1"), lun(1, "vol1")],
            lunar_api::code::INVALID_PARAMS,
        ),
        (
            "iqn.2026-11.dev.lunar:t2",
            vec![lun(0, "nope")],
            lunar_api::code::NOT_FOUND,
        ),
        (
            "iqn.2026-11.dev.lunar:T1",
            vec![lun(0, "vol1")],
            lunar_api::code::ALREADY_EXISTS,
        ),
    ];
    for (iqn, luns, code) in cases {
        let error = create_target(&mut c, iqn, luns.clone()).expect_err(iqn);
        assert_eq!(error.code(), code, "{iqn} {luns:?}: {error}");
    }
    let twice = create_target(
        &mut c,
        "iqn.2026-11.dev.lunar:t2",
        vec![lun(3, "vol1"), lun(2, "vol1")],
    )
    .expect("same volume twice is allowed");
    assert_eq!(
        twice.luns.iter().map(|l| l.lun).collect::<Vec<_>>(),
        vec![2, 3]
    );
    let error = create_target(&mut c, "iqn.2026-11.dev.lunar:t3", vec![lun(16383, "nope")])
        .expect_err("nope");
    assert_eq!(error.to_string(), "volume 'nope' not found");
}

#[test]
fn persist_failure_changes_nothing() {
    let (mut c, plane, store) = populated();
    let before = c.config().clone();
    let generation = c.generation();
    store.state().fail = true;
    let error =
        create_volume(&mut c, "vol2", linear("disk1", 1 << 20, Some(4096))).expect_err("persist");
    assert_eq!(error.code(), lunar_api::code::PERSIST_FAILED);
    assert!(error.to_string().contains("nothing changed"), "{error}");
    assert_eq!(c.config(), &before);
    assert_eq!(c.generation(), generation);
    assert_eq!(plane.state().published.len() as u64, generation);
    let error = c
        .target_delete(TargetDeleteParams {
            iqn: "iqn.2026-11.dev.lunar:t1".into(),
        })
        .expect_err("persist");
    assert_eq!(error.code(), lunar_api::code::PERSIST_FAILED);
    store.state().fail = false;
    create_volume(&mut c, "vol2", linear("disk1", 1 << 20, Some(4096))).expect("works again");
}

#[test]
fn publish_failure_restores_the_saved_configuration() {
    let (mut c, plane, store) = populated();
    let before = c.config().clone();
    plane.state().fail_publish = true;
    let error =
        create_volume(&mut c, "vol2", linear("disk1", 1 << 20, Some(4096))).expect_err("publish");
    assert_eq!(error.code(), lunar_api::code::PUBLISH_FAILED);
    assert_eq!(c.config(), &before);
    assert_eq!(store.state().saved.last(), Some(&before));
}

#[test]
fn restored_configuration_is_checked_and_republished() {
    let (c, _, _) = populated();
    let config = c.config().clone();
    let opener = standard_opener();
    let devices = open_devices(&config, &opener).expect("open");
    let plane = FakePlane::default();
    let restored = Controller::new(
        config.clone(),
        devices,
        Parts {
            opener: Box::new(opener),
            publisher: Box::new(plane.clone()),
            store: Box::new(MemoryStore::default()),
            about: About::default(),
        },
    )
    .expect("restore");
    assert_eq!(restored.config(), &config);
    assert_eq!(plane.last().volumes.len(), 1);
    assert_eq!(plane.last().targets.len(), 1);
}

#[test]
fn restore_refuses_missing_device_by_name() {
    let (c, _, _) = populated();
    let error =
        open_devices(c.config(), &crate::testing::FakeOpener::default()).expect_err("missing");
    let text = error.to_string();
    assert!(text.contains("cannot open device 'disk1'"), "{text}");
    assert!(text.contains("/dev/disk1"), "{text}");
}

#[test]
fn restore_refuses_inconsistent_configuration() {
    let (c, _, _) = populated();
    let devices = open_devices(c.config(), &standard_opener()).expect("open");
    let mut broken = c.config().clone();
    broken.targets[0].luns[0].volume = "ghost".into();
    let error = check_config(&broken, &devices).expect_err("ghost volume");
    assert_eq!(error.to_string(), "volume 'ghost' not found");
    let mut shrunk = c.config().clone();
    if let crate::config::LayoutConfig::Linear { size_bytes, .. } = &mut shrunk.volumes[0].layout {
        *size_bytes = 2 << 30;
    }
    let error = check_config(&shrunk, &devices).expect_err("beyond device");
    assert!(
        error
            .to_string()
            .contains("beyond the end of device 'disk1'"),
        "{error}"
    );
    let mut duplicate = c.config().clone();
    duplicate.volumes.push(duplicate.volumes[0].clone());
    assert!(check_config(&duplicate, &devices).is_err());
}

#[test]
fn stats_cover_every_volume() {
    let (mut c, plane, _) = populated();
    create_volume(&mut c, "a-vol", linear("disk1", 1 << 20, Some(4096))).expect("a-vol");
    plane.state().stats = vec![VolumeStats {
        name: "vol1".into(),
        read_ops: 3,
        read_bytes: 12288,
        latency_us_p99: 40,
        ..VolumeStats::default()
    }];
    let all = c.stats_get(StatsGetParams::default()).expect("stats");
    let names: Vec<&str> = all.volumes.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, vec!["a-vol", "vol1"]);
    assert_eq!(all.volumes[0].read_ops, 0);
    assert_eq!(
        (
            all.volumes[1].read_ops,
            all.volumes[1].read_bytes,
            all.volumes[1].latency_us_p99
        ),
        (3, 12288, 40)
    );
    let one = c
        .stats_get(StatsGetParams {
            volume: Some("vol1".into()),
        })
        .expect("one");
    assert_eq!(one.volumes.len(), 1);
    assert!(all.reactors.is_empty() && one.reactors.is_empty());
    let missing = c
        .stats_get(StatsGetParams {
            volume: Some("zz".into()),
        })
        .expect_err("missing");
    assert_eq!(missing.code(), lunar_api::code::NOT_FOUND);
}

#[test]
fn stats_report_every_reactor_in_microseconds() {
    let (mut c, plane, _) = populated();
    plane.state().reactor_load = vec![
        lunar_reactor::ReactorLoadStats {
            reactor: 0,
            core: 2,
            load: lunar_reactor::ReactorLoad {
                busy_ns: 3_000_999,
                idle_poll_ns: 1_000_000,
                sleep_ns: 0,
            },
        },
        lunar_reactor::ReactorLoadStats {
            reactor: 1,
            core: 3,
            load: lunar_reactor::ReactorLoad {
                busy_ns: 0,
                idle_poll_ns: 0,
                sleep_ns: 5_000,
            },
        },
    ];
    let stats = c
        .stats_get(StatsGetParams {
            volume: Some("vol1".into()),
        })
        .expect("stats");
    let seen: Vec<(usize, usize, u64, u64, u64)> = stats
        .reactors
        .iter()
        .map(|r| (r.reactor, r.core, r.busy_us, r.idle_poll_us, r.sleep_us))
        .collect();
    assert_eq!(seen, vec![(0, 2, 3_000, 1_000, 0), (1, 3, 0, 0, 5)]);
    assert_eq!(stats.reactors[0].busy_percent(), 75.0);
}

#[test]
fn lists_show_relations() {
    let (mut c, _, _) = populated();
    let devices = c.device_list(Empty {}).expect("devices");
    assert_eq!(devices.devices[0].used_by, vec!["vol1".to_string()]);
    let volumes = c.volume_list(Empty {}).expect("volumes");
    assert_eq!(
        volumes.volumes[0].exported_by,
        vec!["iqn.2026-11.dev.lunar:t1".to_string()]
    );
    assert_eq!(volumes.volumes[0].size_bytes, 1 << 20);
    let targets = c.target_list(Empty {}).expect("targets");
    assert_eq!(targets.targets[0].luns, vec![lun(0, "vol1")]);
    let info = c.daemon_info();
    assert_eq!(info.generation, c.generation());
    assert_eq!(info.api_version, lunar_api::API_VERSION);
}

#[test]
fn shutdown_stops_the_publisher() {
    let (c, plane, _) = controller();
    c.shutdown();
    assert!(plane.state().shut_down);
}

#[test]
fn a_restart_from_the_state_directory_restores_everything() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = crate::store::FileStore::new(dir.path());
    let parts = |plane: &FakePlane| Parts {
        opener: Box::new(standard_opener()),
        publisher: Box::new(plane.clone()),
        store: Box::new(store.clone()),
        about: About::default(),
    };
    let first_plane = FakePlane::default();
    let mut first = Controller::new(Config::default(), Devices::new(), parts(&first_plane))
        .expect("first start");
    add_device(&mut first, "disk1", "/dev/disk1");
    add_device(&mut first, "disk2", "/dev/disk2");
    let vol = create_volume(&mut first, "vol1", linear("disk2", 0, Some(1 << 20))).expect("vol1");
    create_target(&mut first, "iqn.2026-11.dev.lunar:t1", vec![lun(5, "vol1")]).expect("target");
    first
        .device_remove(DeviceRemoveParams {
            name: "disk1".into(),
        })
        .expect("remove");
    let before = first.config().clone();
    drop(first);

    let loaded = store.load().expect("load");
    assert_eq!(loaded.config, before);
    let devices = open_devices(&loaded.config, &standard_opener()).expect("open");
    let plane = FakePlane::default();
    let mut second = Controller::new(loaded.config, devices, parts(&plane)).expect("restart");
    let published = plane.last();
    assert_eq!(
        published.devices,
        vec![None, Some("/dev/disk2".into())],
        "device ids kept"
    );
    assert_eq!(
        published.volumes[0].uid,
        u64::from_str_radix(&vol.uid, 16).expect("hex")
    );
    assert_eq!(published.targets[0].1, vec![(5, 0, false)]);
    let listed = second.volume_list(Empty {}).expect("list");
    assert_eq!(
        listed.volumes[0].uid, vol.uid,
        "uid is stable across restarts"
    );
}
