//! Resolving, checking, showing and compiling layouts.

use std::sync::Arc;

use super::*;
use crate::config::{Config, PoolConfig, ThinTable, Uid, VolumeConfig};
use crate::testing::fake_device;

fn devices() -> Devices {
    let mut devices = Devices::new();
    devices.insert("d1".into(), Arc::new(fake_device("/dev/d1", 1 << 20, 512)));
    devices.insert(
        "d4k".into(),
        Arc::new(fake_device("/dev/d4k", 1 << 20, 4096)),
    );
    devices
}

fn linear(device: &str, offset_bytes: u64, size_bytes: u64) -> LayoutConfig {
    LayoutConfig::Linear {
        device: device.into(),
        offset_bytes,
        size_bytes,
    }
}

fn spec(device: &str, offset_bytes: u64, size_bytes: Option<u64>) -> LayoutSpec {
    LayoutSpec::Linear(LinearSpec {
        device: device.into(),
        offset_bytes,
        size_bytes,
    })
}

fn with_volumes(volumes: &[VolumeConfig]) -> Config {
    Config {
        volumes: volumes.to_vec(),
        ..Config::default()
    }
}

fn volume(name: &str, layout: LayoutConfig) -> VolumeConfig {
    VolumeConfig {
        name: name.into(),
        uid: Uid(1),
        block_size: 512,
        layout,
        reservations: None,
        snapshot_of: None,
        clone_of: None,
        dirty_regions: None,
    }
}

#[test]
fn missing_size_is_rest_of_device_in_whole_blocks() {
    let resolved = resolve(&spec("d1", 4096, None), 4096, &devices(), &[]).expect("resolve");
    assert_eq!(resolved, linear("d1", 4096, (1 << 20) - 4096));
    let tail = resolve(&spec("d1", (1 << 20) - 1024, None), 4096, &devices(), &[]);
    assert!(matches!(tail, Err(ControlError::Conflict(_))), "{tail:?}");
    let beyond = resolve(&spec("d1", 2 << 20, None), 512, &devices(), &[]);
    assert!(
        matches!(beyond, Err(ControlError::Conflict(_))),
        "{beyond:?}"
    );
}

#[test]
fn resolve_refuses_unknown_device_and_empty_concat() {
    let unknown = resolve(&spec("nope", 0, None), 512, &devices(), &[]).expect_err("unknown");
    assert_eq!(unknown.to_string(), "device 'nope' not found");
    let empty = resolve(&LayoutSpec::Concat(vec![]), 512, &devices(), &[]).expect_err("empty");
    assert!(matches!(empty, ControlError::InvalidParams(_)));
}

#[test]
fn deep_layouts_are_refused() {
    let mut deep = spec("d1", 0, Some(512));
    for _ in 0..MAX_LAYOUT_DEPTH {
        deep = LayoutSpec::Concat(vec![deep]);
    }
    let error = resolve(&deep, 512, &devices(), &[]).expect_err("too deep");
    assert!(error.to_string().contains("nested"), "{error}");
}

#[test]
fn extents_must_fit_and_align() {
    let d = devices();
    assert_eq!(
        check_layout("v", &linear("d1", 0, 1 << 20), 512, &d, &Config::default()).ok(),
        Some(1 << 20)
    );
    let cases = [
        (linear("d1", 512, 1 << 20), 512, "beyond the end"),
        (
            linear("d1", 100, 512),
            512,
            "multiples of the volume block size",
        ),
        (
            linear("d1", 0, 1000),
            512,
            "multiples of the volume block size",
        ),
        (
            linear("d1", 512, 4096),
            4096,
            "multiples of the volume block size",
        ),
        (
            linear("d4k", 0, 4096),
            512,
            "smaller than the logical block size",
        ),
        (linear("d1", u64::MAX - 511, 512), 512, "beyond the end"),
    ];
    for (layout, block_size, expected) in cases {
        let error =
            check_layout("v", &layout, block_size, &d, &Config::default()).expect_err(expected);
        assert!(matches!(error, ControlError::Conflict(_)), "{error:?}");
        assert!(error.to_string().contains(expected), "{error}");
    }
    let zero =
        check_layout("v", &linear("d1", 0, 0), 512, &d, &Config::default()).expect_err("zero");
    assert!(matches!(zero, ControlError::InvalidParams(_)));
}

#[test]
fn overlaps_are_refused() {
    let d = devices();
    let others = [volume("a", linear("d1", 4096, 4096))];
    let hit = check_layout("v", &linear("d1", 0, 8192), 512, &d, &with_volumes(&others))
        .expect_err("overlap");
    assert!(hit.to_string().contains("overlaps volume 'a'"), "{hit}");
    assert_eq!(
        check_layout("v", &linear("d1", 0, 4096), 512, &d, &with_volumes(&others)).ok(),
        Some(4096)
    );
    assert_eq!(
        check_layout(
            "v",
            &linear("d1", 8192, 512),
            512,
            &d,
            &with_volumes(&others)
        )
        .ok(),
        Some(512)
    );
    let twice = LayoutConfig::Concat(vec![linear("d1", 0, 1024), linear("d1", 512, 1024)]);
    let own = check_layout("v", &twice, 512, &d, &Config::default()).expect_err("self overlap");
    assert!(own.to_string().contains("same volume"), "{own}");
    // A volume is not compared with its own stored copy.
    let itself = [volume("v", linear("d1", 0, 4096))];
    assert!(check_layout("v", &linear("d1", 0, 4096), 512, &d, &with_volumes(&itself)).is_ok());
}

#[test]
fn concat_sizes_add_up_and_compile_by_device_id() {
    let d = devices();
    let layout = LayoutConfig::Concat(vec![linear("d1", 0, 4096), linear("d4k", 4096, 8192)]);
    assert_eq!(
        check_layout("v", &layout, 4096, &d, &Config::default()).ok(),
        Some(12288)
    );
    let ids = |name: &str| match name {
        "d1" => Some(3),
        "d4k" => Some(5),
        _ => None,
    };
    let compiled = to_layout(&layout, &ids).expect("compile");
    assert_eq!(
        compiled,
        Layout::Concat(vec![
            Layout::Linear {
                device: 3,
                offset_bytes: 0,
                size_bytes: 4096
            },
            Layout::Linear {
                device: 5,
                offset_bytes: 4096,
                size_bytes: 8192
            },
        ])
    );
    let spec_back = to_spec(&layout, &|_, _| 1);
    assert_eq!(resolve(&spec_back, 4096, &d, &[]).expect("resolve"), layout);
}

#[test]
fn block_sizes() {
    assert!(check_block_size(512).is_ok());
    assert!(check_block_size(4096).is_ok());
    let error = check_block_size(1024).expect_err("1024");
    assert!(matches!(error, ControlError::InvalidParams(_)));
    assert!(error.to_string().contains("block_size 1024"));
}

fn thin_config(id: u32, size_bytes: u64, segments: u64) -> LayoutConfig {
    LayoutConfig::Thin {
        id,
        pool: "p".into(),
        size_bytes,
        table: ThinTable::all_zero(4096, segments),
    }
}

fn with_pool() -> Config {
    Config {
        pools: vec![PoolConfig {
            name: "p".into(),
            devices: vec!["d4k".into()],
            segment_bytes: 4096,
        }],
        ..Config::default()
    }
}

#[test]
fn nodes_are_numbered_and_result_fields_refused() {
    let d = devices();
    let pools = with_pool().pools;
    let spec: LayoutSpec = serde_json::from_str(
        r#"{"concat":[{"mirror":{"legs":[{"thin":{"pool":"p","size_bytes":8192}},
                                          {"thin":{"pool":"p","size_bytes":8192}}]}},
                      {"thin":{"pool":"p","size_bytes":4096}}]}"#,
    )
    .expect("spec");
    let resolved = resolve(&spec, 512, &d, &pools).expect("resolve");
    assert_eq!(resolved.node_ids(), vec![1, 2, 3, 4]);
    let above = resolve_avoiding(&spec, 512, &d, &pools, &[7, 3]).expect("resolve");
    assert_eq!(above.node_ids(), vec![8, 9, 10, 11]);
    let health: LayoutSpec = serde_json::from_str(
        r#"{"mirror":{"legs":[{"linear":{"device":"d1"}}],"health":[{"state":"faulty"}]}}"#,
    )
    .expect("spec");
    let error = resolve(&health, 512, &d, &pools).expect_err("health is not set");
    assert!(
        error.to_string().contains("reported by volume_list"),
        "{error}"
    );
    let unknown = resolve(
        &LayoutSpec::Thin(lunar_api::volume::ThinSpec {
            pool: "q".into(),
            size_bytes: 4096,
            segment_bytes: None,
            allocated_bytes: None,
            shared_bytes: None,
        }),
        512,
        &d,
        &pools,
    )
    .expect_err("no pool");
    assert_eq!(unknown.to_string(), "pool 'q' not found");
}

#[test]
fn stored_trees_with_bad_ids_or_tables_are_refused() {
    let d = devices();
    let config = with_pool();
    let twice = LayoutConfig::Concat(vec![thin_config(1, 4096, 1), thin_config(1, 4096, 1)]);
    let error = check_layout("v", &twice, 512, &d, &config).expect_err("same id");
    assert!(error.to_string().contains("used twice"), "{error}");
    let short = thin_config(1, 8192, 1);
    let error = check_layout("v", &short, 512, &d, &config).expect_err("one segment short");
    assert!(error.to_string().contains("has 1 segments"), "{error}");
    assert_eq!(
        check_layout("v", &thin_config(1, 8192, 2), 512, &d, &config).ok(),
        Some(8192)
    );
    let on_pool = linear("d4k", 0, 4096);
    let error = check_layout("v", &on_pool, 4096, &d, &config).expect_err("pool device");
    assert!(error.to_string().contains("belongs to pool 'p'"), "{error}");
}

#[test]
fn thin_nodes_compile_to_segment_tables_and_show_their_allocation() {
    let mut table = ThinTable::all_zero(4096, 3);
    let location = lunar_volume::Location {
        device: 9,
        offset_bytes: 8192,
    };
    table.entries = table
        .entries
        .with_entry(1, lunar_volume::SegmentEntry::NoWrite(location))
        .expect("set");
    let node = LayoutConfig::Thin {
        id: 4,
        pool: "p".into(),
        size_bytes: 12288,
        table: table.clone(),
    };
    let compiled = to_layout(&node, &|_| None).expect("no device needed");
    assert_eq!(
        compiled,
        Layout::Segmented {
            id: 4,
            size_bytes: 12288,
            segment_bytes: 4096,
            entries: table.entries.clone(),
        }
    );
    let shared = to_spec(&node, &|_, _| 2);
    let LayoutSpec::Thin(shown) = shared else {
        panic!("not thin");
    };
    assert_eq!(
        (
            shown.segment_bytes,
            shown.allocated_bytes,
            shown.shared_bytes
        ),
        (Some(4096), Some(4096), Some(4096))
    );
    let LayoutSpec::Thin(alone) = to_spec(&node, &|_, _| 1) else {
        panic!("not thin");
    };
    assert_eq!(alone.shared_bytes, Some(0));
}
