//! A thousand idle connections: opened, never a byte sent. While they are all open a
//! well-behaved client keeps being served and lunard's memory stays within a per-connection
//! bound; then lunard drops each one at its login timeout, with a log line each, and closes
//! their sockets.

use std::time::Instant;

use lunar_tests::hostile::{MemoryBudget, RawSocket, Rig, DROP_TIMEOUT, UNLOGGED_CONNECTION_KIB};
use lunar_tests::procfs::raise_open_files_limit;

/// Idle connections opened at once. One reactor (as the tests run lunard) serves at most 1024
/// connections; the well-behaved client and `iscsi-inq` need room too.
const IDLE_CONNECTIONS: u64 = 1000;
/// Descriptors this process needs beyond the idle sockets (lunard inherits the same limit
/// and needs as many plus its own files and rings).
const FD_HEADROOM: u64 = 256;

#[test]
fn a_thousand_idle_connections_cost_only_their_senders() {
    if let Err(why) = raise_open_files_limit(IDLE_CONNECTIONS + FD_HEADROOM) {
        panic!("cannot open {IDLE_CONNECTIONS} connections: {why}");
    }
    let rig = Rig::start("idle");
    let budget = MemoryBudget {
        connections: IDLE_CONNECTIONS,
        per_connection_kib: UNLOGGED_CONNECTION_KIB,
    };
    let mut sockets = Vec::new();
    for n in 0..IDLE_CONNECTIONS {
        match RawSocket::connect(rig.addr()) {
            Ok(socket) => sockets.push(socket),
            Err(err) => rig.fail(&format!("idle connection {n}: connect: {err}")),
        }
    }
    let ports: Vec<u16> = sockets.iter().map(RawSocket::port).collect();

    rig.assert_good_client_served("with 1000 idle connections open");
    rig.assert_memory_within(budget, "with 1000 idle connections open");

    // lunard's login timeout ends them all; the guard is generous, nothing is timed.
    let deadline = Instant::now() + DROP_TIMEOUT;
    let still_open: Vec<u16> = sockets
        .iter_mut()
        .filter_map(|socket| {
            let left = deadline.saturating_duration_since(Instant::now());
            (!socket.wait_for_close(left).ended()).then(|| socket.port())
        })
        .collect();
    if !still_open.is_empty() {
        rig.fail(&format!(
            "{} of {IDLE_CONNECTIONS} idle connections still open after {DROP_TIMEOUT:?} \
             (ports {:?}...)",
            still_open.len(),
            &still_open[..still_open.len().min(10)]
        ));
    }
    rig.assert_drops_logged(&ports, "idle connections");
    rig.finish(budget);
}
