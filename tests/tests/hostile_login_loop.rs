//! Logging in and out in a tight loop, hundreds of times, and logging in then vanishing
//! without a logout: every login succeeds, none leaks (lunard's resident memory and open
//! descriptors come back), every login is logged, nobody is dropped as a bad peer, and a
//! well-behaved client keeps being served.

use lunar_tests::hostile::{mentions_peer_port, MemoryBudget, Rig, LOGGED_IN_CONNECTION_KIB};
use lunar_tests::initiator::Session;

/// Login-logout cycles measured.
const LOGIN_CYCLES: usize = 300;
/// Logins whose TCP connection is closed without a logout, measured too.
const ABANDONED_LOGINS: usize = 100;
/// Cycles before memory is measured. lunard's resident memory grows until every slot of a
/// reactor's connection table (1024) has held a connection once (about 14 KiB each, the
/// first time), then stays flat: the warm-up goes past that.
const WARM_UP_CYCLES: usize = 1200;
/// Resident memory lunard may gain over the measured logins: 8 KiB each. A leaked connection
/// costs more (its state, receive-buffer pages and socket: about 14 KiB).
const LEAK_BOUND_KIB: u64 = 8 * (LOGIN_CYCLES + ABANDONED_LOGINS) as u64;
/// What lunard logs when a login completes.
const LOGIN_LOG_MARKER: &str = "login complete";

#[test]
fn logging_in_and_out_hundreds_of_times_leaks_nothing() {
    let rig = Rig::start("login-loop");
    let cycle = |n: usize, logout: bool| -> u16 {
        let session = match Session::login(rig.addr(), rig.iqn()) {
            Ok(session) => session,
            Err(err) => rig.fail(&format!("login {n}: {err}")),
        };
        let port = session.local_addr().map_or(0, |addr| addr.port());
        if logout {
            if let Err(err) = session.logout() {
                rig.fail(&format!("logout {n}: {err}"));
            }
        }
        port
    };
    for n in 0..WARM_UP_CYCLES {
        cycle(n, true);
    }
    let Some(warm) = rig.daemon().memory() else {
        rig.fail("cannot read lunard's memory");
    };
    let mut ports: Vec<u16> = (0..LOGIN_CYCLES).map(|n| cycle(n, true)).collect();
    ports.extend((0..ABANDONED_LOGINS).map(|n| cycle(n, false)));

    rig.assert_good_client_served("after the login loop");
    rig.assert_fds_released("after the login loop");
    let Some(now) = rig.daemon().memory() else {
        rig.fail("cannot read lunard's memory");
    };
    let growth_kib = now.rss_kib.saturating_sub(warm.rss_kib);
    if growth_kib > LEAK_BOUND_KIB {
        rig.fail(&format!(
            "lunard's resident memory grew by {growth_kib} KiB over {LOGIN_CYCLES} logins and \
             logouts and {ABANDONED_LOGINS} abandoned logins (bound {LEAK_BOUND_KIB} KiB)"
        ));
    }
    let log = rig.daemon().log_text();
    let logins: Vec<&str> = log
        .lines()
        .filter(|line| line.contains(LOGIN_LOG_MARKER))
        .collect();
    let unlogged: Vec<u16> = ports
        .iter()
        .copied()
        .filter(|port| !logins.iter().any(|line| mentions_peer_port(line, *port)))
        .collect();
    if !unlogged.is_empty() {
        rig.fail(&format!(
            "{} of {} logins have no `{LOGIN_LOG_MARKER}` line (ports {:?}...)",
            unlogged.len(),
            ports.len(),
            &unlogged[..unlogged.len().min(10)]
        ));
    }
    rig.assert_not_dropped(&ports, "clients that logged in and out");
    rig.finish(MemoryBudget {
        connections: 1,
        per_connection_kib: LOGGED_IN_CONNECTION_KIB,
    });
}
