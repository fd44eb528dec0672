//! Running lunard out of file descriptors: lunard runs with a small RLIMIT_NOFILE and a client
//! opens more connections than it can accept. Resource exhaustion is backpressure (DESIGN §2,
//! invariant 6): the connections it cannot take yet wait in the listen backlog, the
//! well-behaved client keeps being served, accept failures are logged a bounded number of
//! times (not once per retry of a busy loop), memory stays bounded, and once the attacker
//! goes away new clients log in again.

use std::thread;
use std::time::Duration;

use lunar_tests::daemon::DaemonOptions;
use lunar_tests::hostile::{MemoryBudget, RawSocket, Rig, UNLOGGED_CONNECTION_KIB};
use lunar_tests::procfs::raise_open_files_limit;

/// lunard's RLIMIT_NOFILE in this test: room for its own files and a few dozen connections.
const LUNARD_OPEN_FILES: u64 = 128;
/// Connections the attacker opens: more than lunard can hold.
const ATTACK_CONNECTIONS: u64 = 300;
/// How long the attacker holds them, so that lunard keeps hitting the limit meanwhile.
const HOLD: Duration = Duration::from_secs(3);
/// Log lines about failed accepts allowed over the whole episode.
const ACCEPT_FAILURE_LINES_MAX: usize = 100;
/// What lunard logs when an accept fails.
const ACCEPT_FAILURE_MARKER: &str = "accept failed";

#[test]
fn running_out_of_descriptors_is_backpressure() {
    if let Err(why) = raise_open_files_limit(ATTACK_CONNECTIONS + 256) {
        panic!("cannot open {ATTACK_CONNECTIONS} connections: {why}");
    }
    let options = DaemonOptions {
        open_files_limit: Some(LUNARD_OPEN_FILES),
        ..DaemonOptions::default()
    };
    let rig = Rig::start_with("descriptors", &options);
    let mut sockets = Vec::new();
    for n in 0..ATTACK_CONNECTIONS {
        match RawSocket::connect(rig.addr()) {
            Ok(socket) => sockets.push(socket),
            Err(err) => rig.fail(&format!("attacking connection {n}: connect: {err}")),
        }
    }
    rig.assert_good_client_served("with lunard out of descriptors");
    thread::sleep(HOLD);
    rig.assert_good_client_served("with lunard out of descriptors");
    rig.assert_memory_within(
        MemoryBudget {
            connections: ATTACK_CONNECTIONS,
            per_connection_kib: UNLOGGED_CONNECTION_KIB,
        },
        "with lunard out of descriptors",
    );
    drop(sockets);

    let failures = rig
        .daemon()
        .log_lines(|line| line.contains(ACCEPT_FAILURE_MARKER));
    if failures.len() > ACCEPT_FAILURE_LINES_MAX {
        rig.fail(&format!(
            "lunard logged {} `{ACCEPT_FAILURE_MARKER}` lines while out of descriptors (at \
             most {ACCEPT_FAILURE_LINES_MAX} allowed: back off and log once per episode); \
             first: {:?}",
            failures.len(),
            failures.first()
        ));
    }
    rig.finish(MemoryBudget {
        connections: ATTACK_CONNECTIONS,
        per_connection_kib: UNLOGGED_CONNECTION_KIB,
    });
}
