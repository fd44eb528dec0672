//! What each subcommand asks lunard (method and parameters), and how its answer is shown.
//! Pure functions; the socket is handled in `main`.

use lunar_api::daemon::DaemonInfo;
use lunar_api::device::{DeviceInfo, DeviceKind, DeviceListResult};
use lunar_api::method;
use lunar_api::stats::{ReactorLoadInfo, StatsGetResult};
use lunar_api::target::{LunSpec, TargetInfo, TargetListResult};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use crate::access;
use crate::args::{Command, DeviceCommand, TargetCommand};
use crate::size::format_size;
use crate::table::render;
use crate::volumes;

/// A method call to make.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub method: String,
    pub params: Value,
    /// `main` replaces `params` with the JSON read from standard input.
    pub params_from_stdin: bool,
}

pub(crate) fn call(method_name: &str, params: Value) -> Call {
    Call {
        method: method_name.to_string(),
        params,
        params_from_stdin: false,
    }
}

/// `call METHOD -` reads the parameters from standard input (keeps secrets out of the
/// process list).
pub const PARAMS_FROM_STDIN: &str = "-";

fn parse_params(text: &str) -> Result<Value, String> {
    serde_json::from_str(text).map_err(|e| format!("parameters are not valid JSON: {e}"))
}

/// Read a call's JSON parameters from `reader` (standard input).
pub fn params_from(mut reader: impl std::io::Read) -> Result<Value, String> {
    let mut text = String::new();
    reader
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read parameters from standard input: {e}"))?;
    parse_params(&text)
}

/// The call a command makes. Relative device paths are made absolute against the current
/// directory (lunard resolves nothing relative to its own).
pub fn call_for(command: &Command) -> Result<Call, String> {
    Ok(match command {
        Command::Call { method, params } if params == PARAMS_FROM_STDIN => Call {
            params_from_stdin: true,
            ..call(method, json!({}))
        },
        Command::Call { method, params } => call(method, parse_params(params)?),
        Command::Device(DeviceCommand::Add { name, path }) => {
            let path = std::path::absolute(path)
                .map_err(|e| format!("cannot make {} absolute: {e}", path.display()))?;
            let path = path
                .to_str()
                .ok_or_else(|| format!("path {} is not valid UTF-8", path.display()))?;
            call(method::DEVICE_ADD, json!({"name": name, "path": path}))
        }
        Command::Device(DeviceCommand::List) => call(method::DEVICE_LIST, json!({})),
        Command::Device(DeviceCommand::Remove { name }) => {
            call(method::DEVICE_REMOVE, json!({"name": name}))
        }
        Command::Volume(command) => volumes::volume_call(command)?,
        Command::Pool(command) => volumes::pool_call(command),
        Command::Target(TargetCommand::Create { iqn, luns }) => {
            let luns: Vec<Value> = luns
                .iter()
                .map(|l| {
                    json!({"lun": l.lun, "volume": l.volume, "read_only": l.read_only, "removable": l.removable})
                })
                .collect();
            call(method::TARGET_CREATE, json!({"iqn": iqn, "luns": luns}))
        }
        Command::Target(TargetCommand::List) => call(method::TARGET_LIST, json!({})),
        Command::Target(TargetCommand::Delete { iqn }) => {
            call(method::TARGET_DELETE, json!({"iqn": iqn}))
        }
        Command::Target(TargetCommand::Auth { iqn, auth }) => access::target_auth_call(iqn, auth),
        Command::Target(TargetCommand::Acl { iqn, initiators }) => {
            access::target_acl_call(iqn, initiators)
        }
        Command::Discovery(command) => access::discovery_call(command),
        Command::Portal(command) => access::portal_call(command),
        Command::Stats { volume } => match volume {
            Some(volume) => call(method::STATS_GET, json!({"volume": volume})),
            None => call(method::STATS_GET, json!({})),
        },
        Command::Mirror(command) => crate::tasks::mirror_call(command)?,
        Command::Task(command) => crate::tasks::task_call(command),
        Command::Info => call(method::DAEMON_INFO, json!({})),
    })
}

pub(crate) fn typed<T: DeserializeOwned>(result: &Value) -> Result<T, String> {
    serde_json::from_value(result.clone())
        .map_err(|e| format!("unexpected answer from lunard: {e}"))
}

/// The text to print for a command's result (without the final newline for one-liners).
pub fn show(command: &Command, result: &Value, as_json: bool) -> Result<String, String> {
    if as_json || matches!(command, Command::Call { .. }) {
        return serde_json::to_string_pretty(result).map_err(|e| e.to_string());
    }
    Ok(match command {
        Command::Call { .. } => String::new(),
        Command::Device(DeviceCommand::Add { .. }) => {
            let device: DeviceInfo = typed(result)?;
            format!(
                "device {} added: {}, {}, block size {}{}",
                device.name,
                device.path,
                format_size(device.size_bytes),
                device.block_size,
                if device.direct {
                    ", O_DIRECT"
                } else {
                    ", buffered"
                }
            )
        }
        Command::Device(DeviceCommand::List) => {
            let list: DeviceListResult = typed(result)?;
            let rows = list
                .devices
                .iter()
                .map(|d| {
                    vec![
                        d.name.clone(),
                        d.path.clone(),
                        match d.kind {
                            DeviceKind::Block => "block".to_string(),
                            DeviceKind::File => "file".to_string(),
                        },
                        format_size(d.size_bytes),
                        d.block_size.to_string(),
                        if d.direct { "yes" } else { "no" }.to_string(),
                        dash_if_empty(d.used_by.join(",")),
                    ]
                })
                .collect::<Vec<_>>();
            render(
                &["NAME", "PATH", "KIND", "SIZE", "BLOCK", "DIRECT", "USED BY"],
                &rows,
            )
        }
        Command::Device(DeviceCommand::Remove { name }) => format!("device {name} removed"),
        Command::Volume(command) => volumes::show_volume(command, result)?,
        Command::Pool(command) => volumes::show_pool(command, result)?,
        Command::Target(TargetCommand::Create { .. }) => {
            let target: TargetInfo = typed(result)?;
            let luns = target
                .luns
                .iter()
                .map(|l| format!("LUN {} -> {} ({})", l.lun, l.volume, mode(l)))
                .collect::<Vec<_>>()
                .join(", ");
            format!("target {} created: {luns}", target.iqn)
        }
        Command::Target(TargetCommand::List) => {
            let list: TargetListResult = typed(result)?;
            let mut rows = Vec::new();
            for target in &list.targets {
                for lun in &target.luns {
                    rows.push(vec![
                        target.iqn.clone(),
                        lun.lun.to_string(),
                        lun.volume.clone(),
                        mode(lun).to_string(),
                        access::auth_column(target).to_string(),
                        access::initiators_column(target),
                    ]);
                }
            }
            render(
                &["TARGET", "LUN", "VOLUME", "MODE", "AUTH", "INITIATORS"],
                &rows,
            )
        }
        Command::Target(TargetCommand::Delete { iqn }) => format!("target {iqn} deleted"),
        Command::Target(TargetCommand::Auth { .. }) => access::show_target_auth(result)?,
        Command::Target(TargetCommand::Acl { .. }) => access::show_target_acl(result)?,
        Command::Discovery(_) => access::show_discovery(result)?,
        Command::Portal(command) => access::show_portal(command, result)?,
        Command::Stats { .. } => {
            let stats: StatsGetResult = typed(result)?;
            let rows = stats
                .volumes
                .iter()
                .map(|s| {
                    vec![
                        s.name.clone(),
                        s.read_ops.to_string(),
                        s.write_ops.to_string(),
                        format_size(s.read_bytes),
                        format_size(s.write_bytes),
                        s.latency_us_p50.to_string(),
                        s.latency_us_p99.to_string(),
                        s.latency_us_max.to_string(),
                    ]
                })
                .collect::<Vec<_>>();
            let volumes = render(
                &[
                    "VOLUME", "READS", "WRITES", "READ", "WRITTEN", "P50 us", "P99 us", "MAX us",
                ],
                &rows,
            );
            if stats.reactors.is_empty() {
                volumes
            } else {
                format!("{volumes}\n{}", show_reactor_load(&stats.reactors))
            }
        }
        Command::Mirror(crate::tasks::MirrorCommand::Remove { volume, index }) => {
            format!("leg {index} of volume {volume} removed")
        }
        Command::Mirror(_) => crate::tasks::show_task(result)?,
        Command::Task(crate::tasks::TaskCommand::List) => crate::tasks::show_task_list(result)?,
        Command::Task(_) => crate::tasks::show_task(result)?,
        Command::Info => {
            let info: DaemonInfo = typed(result)?;
            format!(
                "version     {}\napi version {}\niscsi       {}\nrpc socket  {}\nstate dir   {}\ngeneration  {}\ncores       {:?}\npoll mode   {}",
                info.version,
                info.api_version,
                info.iscsi_listen,
                info.rpc_socket,
                info.state_dir,
                info.generation,
                info.cores,
                info.poll_mode
            )
        }
    })
}

fn mode(lun: &LunSpec) -> &'static str {
    match (lun.read_only, lun.removable) {
        (true, false) => "ro",
        (false, false) => "rw",
        (true, true) => "ro,removable",
        (false, true) => "rw,removable",
    }
}

/// The reactors' time since the daemon started: busy, polling with nothing to do, asleep.
fn show_reactor_load(reactors: &[ReactorLoadInfo]) -> String {
    let seconds = |us: u64| format!("{:.1}", us as f64 / 1e6);
    let rows = reactors
        .iter()
        .map(|r| {
            vec![
                r.reactor.to_string(),
                r.core.to_string(),
                format!("{:.1}%", r.busy_percent()),
                seconds(r.busy_us),
                seconds(r.idle_poll_us),
                seconds(r.sleep_us),
            ]
        })
        .collect::<Vec<_>>();
    render(
        &[
            "REACTOR",
            "CORE",
            "BUSY",
            "BUSY s",
            "IDLE POLL s",
            "SLEEP s",
        ],
        &rows,
    )
}

pub(crate) fn dash_if_empty(text: String) -> String {
    if text.is_empty() {
        "-".to_string()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::{Cli, LunArg, VolumeCommand, VolumeCreateArgs};
    use clap::Parser;

    fn command(args: &[&str]) -> Command {
        Cli::try_parse_from(std::iter::once("lunarctl").chain(args.iter().copied()))
            .expect("parse")
            .command
    }

    #[test]
    fn calls_for_commands() {
        let c = call_for(&command(&[
            "volume", "create", "v", "--device", "d", "--size", "1M",
        ]))
        .expect("call");
        assert_eq!(c.method, "volume_create");
        assert_eq!(
            c.params,
            json!({"name": "v", "block_size": 512, "layout": {"linear": {"device": "d", "offset_bytes": 0, "size_bytes": 1048576}}})
        );
        let c = call_for(&Command::Volume(VolumeCommand::Create(VolumeCreateArgs {
            name: "w".into(),
            device: Some("d".into()),
            offset: 4096,
            size: None,
            pool: None,
            layout: None,
            block_size: 4096,
        })))
        .expect("call");
        assert!(c.params["layout"]["linear"].get("size_bytes").is_none());
        let c = call_for(&Command::Target(TargetCommand::Create {
            iqn: "iqn.x".into(),
            luns: vec![LunArg {
                lun: 2,
                volume: "v".into(),
                read_only: true,
                removable: false,
            }],
        }))
        .expect("call");
        assert_eq!(
            c.params,
            json!({"iqn": "iqn.x", "luns": [{"lun": 2, "volume": "v", "read_only": true, "removable": false}]})
        );
        let c = call_for(&command(&["stats", "v"])).expect("call");
        assert_eq!(
            (c.method.as_str(), c.params),
            ("stats_get", json!({"volume": "v"}))
        );
        let c = call_for(&command(&["call", "device_remove", r#"{"name":"d"}"#])).expect("call");
        assert_eq!(
            (c.method.as_str(), c.params),
            ("device_remove", json!({"name": "d"}))
        );
        let bad = call_for(&command(&["call", "x", "{oops"])).expect_err("bad json");
        assert!(bad.contains("not valid JSON"), "{bad}");
        let c = call_for(&command(&["call", "target_auth_set", "-"])).expect("from stdin");
        assert!(c.params_from_stdin);
        assert!(
            !call_for(&command(&["call", "device_list"]))
                .expect("call")
                .params_from_stdin
        );
        assert_eq!(
            params_from(&b"{\"iqn\": \"iqn.t\", \"chap\": null}\n"[..]),
            Ok(json!({"iqn": "iqn.t", "chap": null}))
        );
        assert!(params_from(&b"{"[..]).is_err());
    }

    #[test]
    fn device_paths_become_absolute() {
        let c = call_for(&command(&["device", "add", "d", "img/disk.img"])).expect("call");
        let path = c.params["path"].as_str().expect("path");
        assert!(path.starts_with('/'), "{path}");
        assert!(path.ends_with("img/disk.img"), "{path}");
    }

    #[test]
    fn tables_and_lines() {
        let list = json!({"devices": [{"name": "disk1", "path": "/dev/loop0", "kind": "block", "size_bytes": 1073741824u64, "block_size": 512, "direct": true, "used_by": ["v"]}]});
        let text = show(&command(&["device", "list"]), &list, false).expect("show");
        assert!(text.starts_with("NAME   PATH"), "{text}");
        assert!(
            text.contains("disk1  /dev/loop0  block  1 GiB  512    yes     v"),
            "{text}"
        );
        let volumes = json!({"volumes": [{"name": "v", "uid": "00000000000000ff", "size_bytes": 8192, "block_size": 512,
            "layout": {"concat": [{"linear": {"device": "a", "offset_bytes": 0, "size_bytes": 4096}}, {"linear": {"device": "b", "offset_bytes": 1048576, "size_bytes": 4096}}]},
            "exported_by": []}]});
        let text = show(&command(&["volume", "list"]), &volumes, false).expect("show");
        assert!(
            text.contains("concat(a[0+4 KiB], b[1 MiB+4 KiB])"),
            "{text}"
        );
        assert!(
            text.lines().nth(1).is_some_and(|l| l.ends_with('-')),
            "{text}"
        );
        let removed = show(&command(&["device", "remove", "d"]), &json!({}), false).expect("show");
        assert_eq!(removed, "device d removed");
        let targets = json!({"targets": [{"iqn": "iqn.t", "luns": [{"lun": 0, "volume": "v", "read_only": true}]}]});
        let text = show(&command(&["target", "list"]), &targets, false).expect("show");
        assert!(
            text.contains("iqn.t   0    v       ro    none  any"),
            "{text}"
        );
        let guarded = json!({"targets": [{"iqn": "iqn.t", "luns": [{"lun": 0, "volume": "v", "read_only": false}],
            "initiators": ["iqn.a", "iqn.b"], "chap": {"username": "u", "secret_set": true}, "mutual_chap": null}]});
        let text = show(&command(&["target", "list"]), &guarded, false).expect("show");
        assert!(text.contains("rw    chap  iqn.a,iqn.b"), "{text}");
    }

    #[test]
    fn stats_show_volumes_then_reactors() {
        let stats = json!({"volumes": [{"name": "v", "read_ops": 5, "write_ops": 0, "read_bytes": 20480,
            "write_bytes": 0, "latency_us_p50": 60, "latency_us_p90": 70, "latency_us_p99": 90,
            "latency_us_p999": 100, "latency_us_max": 120}],
            "reactors": [{"reactor": 0, "core": 1, "busy_us": 3_000_000, "idle_poll_us": 500_000, "sleep_us": 500_000}]});
        let text = show(&command(&["stats"]), &stats, false).expect("show");
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("VOLUME"), "{text}");
        assert!(lines[1].starts_with("v  "), "{text}");
        assert!(lines[3].starts_with("REACTOR  CORE  BUSY"), "{text}");
        assert!(
            lines[4].contains("0        1     75.0%  3.0     0.5          0.5"),
            "{text}"
        );
        // A daemon that reports no reactors prints the volumes alone.
        let old = json!({"volumes": []});
        let text = show(&command(&["stats"]), &old, false).expect("show");
        assert!(!text.contains("REACTOR"), "{text}");
    }

    #[test]
    fn json_output_is_the_result() {
        let result = json!({"devices": []});
        let text = show(&command(&["device", "list"]), &result, true).expect("show");
        assert_eq!(serde_json::from_str::<Value>(&text).expect("json"), result);
        let text = show(&command(&["call", "device_list"]), &result, false).expect("show");
        assert_eq!(serde_json::from_str::<Value>(&text).expect("json"), result);
    }

    #[test]
    fn unexpected_answers_are_errors() {
        let error =
            show(&command(&["device", "list"]), &json!({"nope": 1}), false).expect_err("bad");
        assert!(error.contains("unexpected answer"), "{error}");
    }
}
