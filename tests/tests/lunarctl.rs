//! `lunarctl`: prints JSON results, and on any error exits non-zero with exactly one line.

use serde_json::{json, Value};

use std::time::{Duration, Instant};

use lunar_tests::cli::{lunarctl, lunarctl_call, non_empty_lines};
use lunar_tests::libiscsi::{iscsi_inq, iscsi_readcapacity16};
use lunar_tests::process::ToolOutput;
use lunar_tests::rpc::json_mentions;
use lunar_tests::{Backing, Export};

const BACKING_LEN_BYTES: u64 = 16 << 20;

fn assert_one_line_error(export: &Export, out: &ToolOutput, what: &str) {
    let lines = non_empty_lines(&out.output);
    assert!(
        !out.success() && !out.timed_out && out.status.is_some() && lines.len() == 1,
        "{}",
        export.failure(&format!(
            "{what}: lunarctl must exit non-zero with one line: {out}"
        ))
    );
}

#[test]
fn call_prints_the_json_result() {
    let export = Export::whole(Backing::sparse_file(BACKING_LEN_BYTES), "ctl-list");
    let out = lunarctl_call(export.daemon.rpc_socket(), "device_list", "{}");
    assert!(out.success(), "{}", export.failure(&out.to_string()));
    let result: Value = serde_json::from_str(out.output.trim()).unwrap_or_else(|err| {
        panic!(
            "{}",
            export.failure(&format!("output is not JSON ({err}): {out}"))
        )
    });
    assert!(
        json_mentions(&result, "name", &export.spec.device),
        "{}",
        export.failure(&format!("device_list through lunarctl: {out}"))
    );
}

#[test]
fn errors_exit_non_zero_with_one_line() {
    let export = Export::whole(Backing::sparse_file(BACKING_LEN_BYTES), "ctl-errors");
    let socket = export.daemon.rpc_socket();
    let unknown = lunarctl_call(socket, "no_such_method", "{}");
    assert_one_line_error(&export, &unknown, "unknown method");
    let params = json!({"name": export.spec.device}).to_string();
    let in_use = lunarctl_call(socket, "device_remove", &params);
    assert_one_line_error(&export, &in_use, "device_remove of a device in use");
    let bad_json = lunarctl_call(socket, "device_list", "{not json");
    assert_one_line_error(&export, &bad_json, "params that are not JSON");
}

#[test]
fn a_missing_socket_is_one_line() {
    let export = Export::whole(Backing::sparse_file(BACKING_LEN_BYTES), "ctl-nosocket");
    let missing = export.state.path().join("no-such.sock");
    let out = lunarctl_call(&missing, "device_list", "{}");
    assert_one_line_error(&export, &out, "a socket nobody listens on");
}

#[test]
fn device_add_subcommand_adds_a_device() {
    let export = Export::whole(Backing::sparse_file(BACKING_LEN_BYTES), "ctl-add");
    let extra = Backing::sparse_file(BACKING_LEN_BYTES);
    let path = extra.path().to_string_lossy().into_owned();
    let out = lunarctl(
        export.daemon.rpc_socket(),
        &["device", "add", "extra-dev", &path],
    );
    assert!(out.success(), "{}", export.failure(&out.to_string()));
    let devices = export.daemon.call("device_list", json!({}));
    assert!(
        json_mentions(&devices, "name", "extra-dev"),
        "{}",
        export.failure(&format!(
            "`lunarctl device add` did not add the device: {devices}"
        ))
    );
}

/// Per reactor: (busy, idle poll, sleep) in µs, from a `stats_get` result.
fn reactor_times(stats: &Value) -> Vec<(u64, u64, u64)> {
    let field = |r: &Value, name: &str| r[name].as_u64().expect("a count of µs");
    stats["reactors"]
        .as_array()
        .expect("stats_get lists the reactors")
        .iter()
        .map(|r| {
            (
                field(r, "busy_us"),
                field(r, "idle_poll_us"),
                field(r, "sleep_us"),
            )
        })
        .collect()
}

#[test]
fn stats_account_for_all_of_each_reactors_time() {
    let export = Export::whole(Backing::sparse_file(BACKING_LEN_BYTES), "ctl-load");
    let sample = || {
        let sent = Instant::now();
        let stats = export.daemon.call("stats_get", json!({}));
        (sent, Instant::now(), reactor_times(&stats))
    };
    let (first_sent, first_back, before) = sample();
    for out in [
        iscsi_inq(&export.url()),
        iscsi_readcapacity16(&export.url()),
    ] {
        assert!(out.success(), "{}", export.failure(&out.to_string()));
    }
    std::thread::sleep(Duration::from_millis(300));
    let (second_sent, second_back, after) = sample();
    assert!(!before.is_empty() && before.len() == after.len());
    // Each reactor answers at the start of a turn of its loop, between the request and the
    // answer; the time counted in between must be the time that passed, all of it.
    let slack = Duration::from_millis(1);
    let least = second_sent.duration_since(first_back).saturating_sub(slack);
    let most = second_back.duration_since(first_sent) + slack;
    for (index, (b, a)) in before.iter().zip(&after).enumerate() {
        let counted = Duration::from_micros((a.0 + a.1 + a.2) - (b.0 + b.1 + b.2));
        assert!(
            counted >= least && counted <= most,
            "{}",
            export.failure(&format!(
                "reactor {index} counted {counted:?} between samples {least:?} to {most:?} apart"
            ))
        );
    }
    let busy: u64 = before.iter().zip(&after).map(|(b, a)| a.0 - b.0).sum();
    assert!(
        busy > 0,
        "{}",
        export.failure("logins and commands counted no busy time")
    );
    let out = lunarctl(export.daemon.rpc_socket(), &["stats"]);
    assert!(out.success(), "{}", export.failure(&out.to_string()));
    let header = non_empty_lines(&out.output)
        .into_iter()
        .position(|line| line.starts_with("REACTOR"));
    assert!(
        header.is_some_and(|at| non_empty_lines(&out.output).len() == at + 1 + after.len()),
        "{}",
        export.failure(&format!("`lunarctl stats` shows a line per reactor: {out}"))
    );
}
