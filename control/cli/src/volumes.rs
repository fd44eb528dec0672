//! The `volume` and `pool` subcommands: the calls they make and how their answers are shown.

use lunar_api::method;
use lunar_api::pool::{PoolInfo, PoolListResult};
use lunar_api::volume::{
    LayoutSpec, LegHealthInfo, ReadPolicySpec, VolumeHealth, VolumeInfo, VolumeListResult,
};
use serde_json::{json, Value};

use crate::args::{PoolCommand, VolumeCommand, VolumeCreateArgs};
use crate::commands::{call, dash_if_empty, typed, Call};
use crate::size::format_size;
use crate::table::render;

fn layout_json(text: &str, option: &str) -> Result<Value, String> {
    serde_json::from_str(text).map_err(|e| format!("{option} is not valid JSON: {e}"))
}

fn create_call(args: &VolumeCreateArgs) -> Result<Call, String> {
    let layout = if let Some(text) = &args.layout {
        layout_json(text, "--layout")?
    } else if let Some(pool) = &args.pool {
        json!({"thin": {"pool": pool, "size_bytes": args.size.unwrap_or_default()}})
    } else {
        let mut linear = json!({"device": args.device, "offset_bytes": args.offset});
        if let Some(size) = args.size {
            linear["size_bytes"] = json!(size);
        }
        json!({"linear": linear})
    };
    Ok(call(
        method::VOLUME_CREATE,
        json!({"name": args.name, "layout": layout, "block_size": args.block_size}),
    ))
}

/// The call a `volume` subcommand makes.
pub fn volume_call(command: &VolumeCommand) -> Result<Call, String> {
    Ok(match command {
        VolumeCommand::Create(args) => create_call(args)?,
        VolumeCommand::List => call(method::VOLUME_LIST, json!({})),
        VolumeCommand::Delete { name } => call(method::VOLUME_DELETE, json!({"name": name})),
        VolumeCommand::Snapshot { volume, name } => call(
            method::VOLUME_SNAPSHOT_CREATE,
            json!({"volume": volume, "name": name}),
        ),
        VolumeCommand::Clone { snapshot, name } => call(
            method::VOLUME_CLONE_CREATE,
            json!({"snapshot": snapshot, "name": name}),
        ),
        VolumeCommand::Migrate(args) => crate::tasks::migrate_call(args)?,
        VolumeCommand::Resize { name, size, extend } => {
            let mut params = json!({"name": name, "size_bytes": size});
            if let Some(text) = extend {
                params["extend"] = layout_json(text, "--extend")?;
            }
            call(method::VOLUME_RESIZE, params)
        }
    })
}

/// The call a `pool` subcommand makes.
pub fn pool_call(command: &PoolCommand) -> Call {
    match command {
        PoolCommand::Create {
            name,
            devices,
            segment,
        } => {
            let mut params = json!({"name": name, "devices": devices});
            if let Some(segment) = segment {
                params["segment_bytes"] = json!(segment);
            }
            call(method::POOL_CREATE, params)
        }
        PoolCommand::List => call(method::POOL_LIST, json!({})),
        PoolCommand::Delete { name } => call(method::POOL_DELETE, json!({"name": name})),
    }
}

fn summary(volume: &VolumeInfo) -> String {
    format!(
        "{}, block size {}, uid {}, {}",
        format_size(volume.size_bytes),
        volume.block_size,
        volume.uid,
        layout_text(&volume.layout)
    )
}

fn origin(volume: &VolumeInfo) -> String {
    match (&volume.snapshot_of, &volume.clone_of) {
        (Some(of), _) => format!("snapshot of {of}"),
        (None, Some(of)) => format!("clone of {of}"),
        (None, None) => "-".to_string(),
    }
}

/// What a `volume` subcommand prints.
pub fn show_volume(command: &VolumeCommand, result: &Value) -> Result<String, String> {
    Ok(match command {
        VolumeCommand::Create(_) => {
            let volume: VolumeInfo = typed(result)?;
            format!("volume {} created: {}", volume.name, summary(&volume))
        }
        VolumeCommand::Snapshot { volume: of, .. } => {
            let volume: VolumeInfo = typed(result)?;
            format!(
                "snapshot {} of {of} created (read-only): {}",
                volume.name,
                summary(&volume)
            )
        }
        VolumeCommand::Clone { snapshot, .. } => {
            let volume: VolumeInfo = typed(result)?;
            format!(
                "clone {} of {snapshot} created: {}",
                volume.name,
                summary(&volume)
            )
        }
        VolumeCommand::Migrate(_) => crate::tasks::show_task(result)?,
        VolumeCommand::Resize { .. } => {
            let volume: VolumeInfo = typed(result)?;
            format!("volume {} resized: {}", volume.name, summary(&volume))
        }
        VolumeCommand::List => {
            let list: VolumeListResult = typed(result)?;
            let rows = list
                .volumes
                .iter()
                .map(|v| {
                    vec![
                        v.name.clone(),
                        format_size(v.size_bytes),
                        v.block_size.to_string(),
                        v.uid.clone(),
                        layout_text(&v.layout),
                        volume_health_text(v.health).to_string(),
                        origin(v),
                        dash_if_empty(v.exported_by.join(",")),
                    ]
                })
                .collect::<Vec<_>>();
            render(
                &[
                    "NAME",
                    "SIZE",
                    "BLOCK",
                    "UID",
                    "LAYOUT",
                    "HEALTH",
                    "ORIGIN",
                    "EXPORTED BY",
                ],
                &rows,
            )
        }
        VolumeCommand::Delete { name } => format!("volume {name} deleted"),
    })
}

fn volume_health_text(health: VolumeHealth) -> &'static str {
    match health {
        VolumeHealth::Healthy => "healthy",
        VolumeHealth::Resyncing => "resyncing",
        VolumeHealth::Degraded => "degraded",
    }
}

fn pool_summary(pool: &PoolInfo) -> String {
    format!(
        "{} in {}-byte segments on {}, {} free",
        format_size(pool.size_bytes),
        pool.segment_bytes,
        pool.devices.join(","),
        format_size(pool.free_bytes)
    )
}

/// What a `pool` subcommand prints.
pub fn show_pool(command: &PoolCommand, result: &Value) -> Result<String, String> {
    Ok(match command {
        PoolCommand::Create { .. } => {
            let pool: PoolInfo = typed(result)?;
            format!("pool {} created: {}", pool.name, pool_summary(&pool))
        }
        PoolCommand::List => {
            let list: PoolListResult = typed(result)?;
            let rows = list
                .pools
                .iter()
                .map(|p| {
                    vec![
                        p.name.clone(),
                        format_size(p.segment_bytes),
                        format_size(p.size_bytes),
                        format_size(p.free_bytes),
                        format_size(p.allocated_bytes),
                        format_size(p.releasing_bytes),
                        p.devices.join(","),
                        dash_if_empty(p.used_by.join(",")),
                    ]
                })
                .collect::<Vec<_>>();
            render(
                &[
                    "NAME",
                    "SEGMENT",
                    "SIZE",
                    "FREE",
                    "ALLOCATED",
                    "RELEASING",
                    "DEVICES",
                    "USED BY",
                ],
                &rows,
            )
        }
        PoolCommand::Delete { name } => format!("pool {name} deleted"),
    })
}

fn joined(members: &[LayoutSpec]) -> String {
    members
        .iter()
        .map(layout_text)
        .collect::<Vec<_>>()
        .join(", ")
}

fn health_text(health: &LegHealthInfo) -> String {
    match health {
        LegHealthInfo::Healthy => "healthy".to_string(),
        LegHealthInfo::Faulty => "faulty".to_string(),
        LegHealthInfo::Resyncing { percent, .. } => format!("resyncing {percent}%"),
    }
}

/// `disk1[0+1 GiB]`, `concat(disk1[0+4 KiB], disk2[1 MiB+2 GiB])`,
/// `stripe(64 KiB: a[0+1 GiB], b[0+1 GiB])`, `mirror(a[0+1 GiB] healthy, b[0+1 GiB] faulty)`,
/// `thin(pool0 10 GiB, 3 MiB allocated)`.
pub fn layout_text(layout: &LayoutSpec) -> String {
    match layout {
        LayoutSpec::Linear(linear) => format!(
            "{}[{}+{}]",
            linear.device,
            if linear.offset_bytes == 0 {
                "0".to_string()
            } else {
                format_size(linear.offset_bytes)
            },
            linear
                .size_bytes
                .map(format_size)
                .unwrap_or_else(|| "rest".to_string())
        ),
        LayoutSpec::Concat(members) => format!("concat({})", joined(members)),
        LayoutSpec::Stripe(stripe) => format!(
            "stripe({}: {})",
            format_size(stripe.unit_bytes),
            joined(&stripe.members)
        ),
        LayoutSpec::Mirror(mirror) => {
            let legs = mirror
                .legs
                .iter()
                .enumerate()
                .map(|(index, leg)| match mirror.health.get(index) {
                    Some(health) => format!("{} {}", layout_text(leg), health_text(health)),
                    None => layout_text(leg),
                })
                .collect::<Vec<_>>()
                .join(", ");
            let policy = match mirror.read_policy {
                Some(ReadPolicySpec::LeastOutstanding) => "least outstanding: ",
                _ => "",
            };
            format!("mirror({policy}{legs})")
        }
        LayoutSpec::Thin(thin) => {
            let mut text = format!("thin({} {}", thin.pool, format_size(thin.size_bytes));
            if let Some(allocated) = thin.allocated_bytes {
                text.push_str(&format!(", {} allocated", format_size(allocated)));
            }
            if let Some(shared) = thin.shared_bytes.filter(|&bytes| bytes > 0) {
                text.push_str(&format!(", {} shared", format_size(shared)));
            }
            text.push(')');
            text
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::{Cli, Command};
    use clap::Parser;

    fn parse(args: &[&str]) -> Result<Command, clap::Error> {
        Cli::try_parse_from(std::iter::once("lunarctl").chain(args.iter().copied()))
            .map(|cli| cli.command)
    }

    fn volume_call_of(args: &[&str]) -> Result<Call, String> {
        match parse(args).map_err(|e| e.to_string())? {
            Command::Volume(command) => volume_call(&command),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn create_takes_a_device_a_pool_or_a_layout() {
        let thin = volume_call_of(&["volume", "create", "t", "--pool", "p", "--size", "1G"])
            .expect("thin");
        assert_eq!(
            thin.params,
            json!({"name": "t", "block_size": 512, "layout": {"thin": {"pool": "p", "size_bytes": 1u64 << 30}}})
        );
        let tree = r#"{"stripe":{"unit_bytes":65536,"members":[{"linear":{"device":"a"}},{"linear":{"device":"b"}}]}}"#;
        let layout = volume_call_of(&[
            "volume",
            "create",
            "s",
            "--layout",
            tree,
            "--block-size",
            "4096",
        ])
        .expect("layout");
        assert_eq!(layout.method, "volume_create");
        assert_eq!(
            layout.params["layout"]["stripe"]["unit_bytes"],
            json!(65536)
        );
        assert_eq!(layout.params["block_size"], json!(4096));
        let bad =
            volume_call_of(&["volume", "create", "s", "--layout", "{oops"]).expect_err("json");
        assert!(bad.contains("--layout is not valid JSON"), "{bad}");
        for refused in [
            &["volume", "create", "v"][..],
            &[
                "volume", "create", "v", "--device", "d", "--pool", "p", "--size", "1G",
            ],
            &["volume", "create", "v", "--pool", "p"],
            &["volume", "create", "v", "--layout", "{}", "--size", "1G"],
            &["volume", "create", "v", "--layout", "{}", "--device", "d"],
        ] {
            assert!(parse(refused).is_err(), "{refused:?}");
        }
    }

    #[test]
    fn snapshot_clone_and_resize_calls() {
        let snapshot = volume_call_of(&["volume", "snapshot", "v", "s1"]).expect("snapshot");
        assert_eq!(
            (snapshot.method.as_str(), snapshot.params),
            (
                "volume_snapshot_create",
                json!({"volume": "v", "name": "s1"})
            )
        );
        let clone = volume_call_of(&["volume", "clone", "s1", "c1"]).expect("clone");
        assert_eq!(
            (clone.method.as_str(), clone.params),
            (
                "volume_clone_create",
                json!({"snapshot": "s1", "name": "c1"})
            )
        );
        let resize = volume_call_of(&["volume", "resize", "v", "2G"]).expect("resize");
        assert_eq!(
            (resize.method.as_str(), resize.params),
            (
                "volume_resize",
                json!({"name": "v", "size_bytes": 2u64 << 30})
            )
        );
        let extended = volume_call_of(&[
            "volume",
            "resize",
            "v",
            "3G",
            "--extend",
            r#"{"linear":{"device":"d2"}}"#,
        ])
        .expect("extend");
        assert_eq!(
            extended.params["extend"],
            json!({"linear": {"device": "d2"}})
        );
    }

    #[test]
    fn pool_calls() {
        let Command::Pool(create) =
            parse(&["pool", "create", "p", "d1", "d2", "--segment", "4M"]).expect("parse")
        else {
            panic!("not a pool command");
        };
        let created = pool_call(&create);
        assert_eq!(
            created.params,
            json!({"name": "p", "devices": ["d1", "d2"], "segment_bytes": 4u64 << 20})
        );
        assert!(
            parse(&["pool", "create", "p"]).is_err(),
            "devices are required"
        );
        let Command::Pool(delete) = parse(&["pool", "delete", "p"]).expect("parse") else {
            panic!("not a pool command");
        };
        assert_eq!(pool_call(&delete).params, json!({"name": "p"}));
    }

    #[test]
    fn trees_and_pools_are_shown() {
        let volumes = json!({"volumes": [
            {"name": "m", "uid": "0000000000000001", "size_bytes": 4096, "block_size": 512,
             "layout": {"mirror": {"legs": [{"linear": {"device": "a", "offset_bytes": 0, "size_bytes": 4096}},
                                             {"stripe": {"unit_bytes": 2048, "members": [
                                                 {"linear": {"device": "b", "offset_bytes": 0, "size_bytes": 2048}},
                                                 {"linear": {"device": "c", "offset_bytes": 0, "size_bytes": 2048}}]}}],
                                   "read_policy": "round_robin",
                                   "health": [{"state": "healthy"}, {"state": "resyncing", "resynced_bytes": 2048, "percent": 50}]}},
             "exported_by": []},
            {"name": "s", "uid": "0000000000000002", "size_bytes": 1073741824u64, "block_size": 512,
             "layout": {"thin": {"pool": "p", "size_bytes": 1073741824u64, "segment_bytes": 1048576, "allocated_bytes": 3145728, "shared_bytes": 1048576}},
             "exported_by": [], "snapshot": true, "snapshot_of": "v"}]});
        let text = show_volume(&VolumeCommand::List, &volumes).expect("show");
        assert!(
            text.contains(
                "mirror(a[0+4 KiB] healthy, stripe(2 KiB: b[0+2 KiB], c[0+2 KiB]) resyncing 50%)"
            ),
            "{text}"
        );
        let snapshot_row = text.lines().nth(2).unwrap_or_default();
        assert!(
            snapshot_row.contains("thin(p 1 GiB, 3 MiB allocated, 1 MiB shared)")
                && snapshot_row.contains("snapshot of v"),
            "{text}"
        );
        let pools = json!({"pools": [{"name": "p", "devices": ["d1", "d2"], "segment_bytes": 1048576,
            "size_bytes": 2147483648u64, "free_bytes": 1073741824u64, "allocated_bytes": 1073741824u64,
            "releasing_bytes": 0, "used_by": ["s", "v"]}]});
        let text = show_pool(&PoolCommand::List, &pools).expect("show");
        assert!(text.starts_with("NAME  SEGMENT"), "{text}");
        assert!(
            text.contains("p     1 MiB    2 GiB  1 GiB  1 GiB      0 B        d1,d2    s,v"),
            "{text}"
        );
    }
}
