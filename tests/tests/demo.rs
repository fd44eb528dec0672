//! `lunard --demo`: a 1 GiB volume on a sparse file in the state directory, exported as
//! `iqn.2026-11.dev.lunar:demo` LUN 0, reachable by libiscsi's tools.

use std::fs;

use lunar_tests::backing::allocated_bytes;
use lunar_tests::daemon::{DaemonOptions, Lunard};
use lunar_tests::fixture::state_dir;
use lunar_tests::libiscsi::{
    iscsi_inq, iscsi_ls, iscsi_readcapacity16, parse_inq_field, parse_ls_targets,
    parse_readcapacity16,
};

const DEMO_IQN: &str = "iqn.2026-11.dev.lunar:demo";
const DEMO_LEN_BYTES: u64 = 1 << 30;

fn demo(state: &std::path::Path) -> Lunard {
    Lunard::start_with(
        state,
        &DaemonOptions {
            demo: true,
            ..DaemonOptions::default()
        },
    )
}

#[test]
fn the_demo_target_answers_libiscsi_tools() {
    let state = state_dir();
    let daemon = demo(state.path());
    let url = daemon.url(DEMO_IQN, 0);

    let ls = iscsi_ls(&daemon.portal());
    assert!(
        ls.success() && parse_ls_targets(&ls.output).iter().any(|t| t == DEMO_IQN),
        "{}",
        daemon.failure(&format!("iscsi-ls does not list the demo target: {ls}"))
    );
    let inq = iscsi_inq(&url);
    assert!(
        inq.success()
            && parse_inq_field(&inq.output, "Peripheral Device Type") == Some("DIRECT_ACCESS"),
        "{}",
        daemon.failure(&format!("iscsi-inq {url}: {inq}"))
    );
    let capacity = iscsi_readcapacity16(&url);
    assert!(
        capacity.success()
            && parse_readcapacity16(&capacity.output).map(|(len, _)| len) == Some(DEMO_LEN_BYTES),
        "{}",
        daemon.failure(&format!("the demo volume must be 1 GiB: {capacity}"))
    );
}

#[test]
fn the_demo_volume_is_a_sparse_file_in_the_state_dir() {
    let state = state_dir();
    let daemon = demo(state.path());
    let files: Vec<_> = fs::read_dir(state.path())
        .unwrap_or_else(|err| panic!("read {}: {err}", state.path().display()))
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.is_file())
        .collect();
    let backing = files
        .iter()
        .find(|path| fs::metadata(path).is_ok_and(|m| m.len() >= DEMO_LEN_BYTES));
    let Some(backing) = backing else {
        panic!(
            "{}",
            daemon.failure(&format!(
                "no file of 1 GiB or more in the state dir: {files:?}"
            ))
        );
    };
    assert!(
        allocated_bytes(backing) < 64 << 20,
        "{}",
        daemon.failure(&format!("{} is not sparse", backing.display()))
    );
}

#[test]
fn the_demo_restarts_in_the_same_state_dir() {
    let state = state_dir();
    let mut first = demo(state.path());
    let stopped = first.stop();
    assert!(
        !stopped.forced,
        "{}",
        first.failure("lunard --demo did not stop on SIGTERM")
    );
    let second = demo(state.path());
    let inq = iscsi_inq(&second.url(DEMO_IQN, 0));
    assert!(
        inq.success(),
        "{}",
        second.failure(&format!("demo after restart: {inq}"))
    );
}
