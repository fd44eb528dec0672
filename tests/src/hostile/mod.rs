//! The frame of every hostile-client test: a lunard exporting one volume, a well-behaved client
//! keeping busy on it in the background ([`GoodClient`]), and the checks made once the attack
//! is over:
//!
//! - the well-behaved client went on being served (more verified write-read rounds, and
//!   `iscsi-inq` works on a fresh connection);
//! - lunard's peak resident memory (`VmHWM`) stayed within a [`MemoryBudget`] above what it used
//!   before the attack;
//! - every connection lunard dropped has its log line (`dropping connection`, the peer's
//!   address and a reason), and lunard's open file descriptors come back to where they were
//!   (a dropped connection is really closed);
//! - lunard still runs, and the well-behaved client logs out cleanly.
//!
//! Timeouts here only keep a broken lunard from hanging the test; nothing is timed for speed.

pub mod socket;

use std::io::Write;
use std::time::{Duration, Instant};

pub use socket::{PeerEnd, RawSocket, Xorshift};

use crate::backing::Backing;
use crate::daemon::{DaemonOptions, Lunard};
use crate::fixture::{Export, VolumeSpec};
use crate::good_client::{GoodClient, GoodClientSpec};
use crate::libiscsi;
use crate::procfs::Memory;

/// What lunard logs when it drops a peer (followed by the peer's address and the reason).
pub const DROP_LOG_MARKER: &str = "dropping connection";
/// Size of the backing file of the rig's volume.
pub const RIG_BACKING_LEN_BYTES: u64 = 64 << 20;
/// The well-behaved client's blocks: it alone writes there.
pub const GOOD_CLIENT_LBA: u64 = 0;
/// Blocks the well-behaved client writes and reads back per round.
pub const GOOD_CLIENT_BLOCKS: u32 = 32;
/// First block free for the hostile side's own writes.
pub const HOSTILE_LBA: u64 = 1024;
/// Verified rounds the well-behaved client must complete before and after an attack.
pub const GOOD_ROUNDS: u64 = 5;
/// Guard against a hung lunard while waiting for the well-behaved client (not a speed bound).
pub const PROGRESS_TIMEOUT: Duration = Duration::from_secs(60);
/// How long lunard may take to close a connection it decided to drop and log it. Generous:
/// a connection stuck mid-PDU after login is only dropped by the keep-alive (a NOP-In ping
/// after 5 s of silence, unanswered for 15 s).
pub const DROP_TIMEOUT: Duration = Duration::from_secs(60);
/// Descriptors lunard may hold above its count before the attack once the attack is over
/// (a connection still in its 2 s close linger, a backend file reopened...).
pub const FD_SLACK: usize = 8;

/// Memory above the baseline that is not per connection: allocator arenas and caches, the
/// send and task buffers of the well-behaved session, and I/O buffers of lunard's fixed pools
/// touched for the first time during the test.
pub const MEMORY_SLACK_KIB: u64 = 32 * 1024;
/// Bound for one connection that has not logged in: its 64 KiB receive buffer, one login PDU
/// (at most 8 KiB of data and 1 KiB of AHS are ever buffered before login), its state.
pub const UNLOGGED_CONNECTION_KIB: u64 = 128;
/// Bound for one logged-in connection that sends no write data: its receive buffer, one
/// full-feature PDU (the framer refuses data segments over MaxRecvDataSegmentLength, 256 KiB,
/// before buffering them), the answers queued for it and its session state.
pub const LOGGED_IN_CONNECTION_KIB: u64 = 1024;

/// How much lunard's peak resident memory may grow above its baseline during an attack:
/// `connections * per_connection_kib + MEMORY_SLACK_KIB`. A lunard that reserved memory from
/// an announced length, or kept what an attacker sends, goes far past it.
#[derive(Debug, Clone, Copy)]
pub struct MemoryBudget {
    /// Attacking connections open at the same time, at most.
    pub connections: u64,
    /// The bound for one of them.
    pub per_connection_kib: u64,
}

impl MemoryBudget {
    /// The growth allowed, in KiB.
    pub fn bound_kib(&self) -> u64 {
        self.connections * self.per_connection_kib + MEMORY_SLACK_KIB
    }
}

/// True if `line` names `127.0.0.1:<port>` (and not a longer port number).
pub fn mentions_peer_port(line: &str, port: u16) -> bool {
    let needle = format!("127.0.0.1:{port}");
    line.match_indices(&needle).any(|(at, _)| {
        !line[at + needle.len()..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit())
    })
}

/// True if `line` is lunard's log line for dropping a peer, with a reason.
pub fn is_drop_line(line: &str) -> bool {
    line.contains(DROP_LOG_MARKER) && line.contains("reason=")
}

/// The ports in `ports` for which `log` has no drop line.
pub fn ports_without_drop_line(log: &str, ports: &[u16]) -> Vec<u16> {
    let drops: Vec<&str> = log.lines().filter(|line| is_drop_line(line)).collect();
    ports
        .iter()
        .copied()
        .filter(|port| !drops.iter().any(|line| mentions_peer_port(line, *port)))
        .collect()
}

/// A lunard with one exported volume and a well-behaved client at work on it.
pub struct Rig {
    /// The daemon and its volume.
    pub export: Export,
    good: Option<GoodClient>,
    baseline: Memory,
    baseline_fds: usize,
}

impl Rig {
    /// Starts lunard exporting a volume (`iqn....:<tag>`), starts the well-behaved client and
    /// lets it verify a few rounds, then records lunard's memory and descriptors as the
    /// baseline.
    pub fn start(tag: &str) -> Rig {
        Rig::start_with(tag, &DaemonOptions::default())
    }

    /// Like [`Rig::start`], with lunard started with `options`.
    pub fn start_with(tag: &str, options: &DaemonOptions) -> Rig {
        let spec = VolumeSpec::whole(tag, RIG_BACKING_LEN_BYTES);
        let export = Export::start_with(Backing::sparse_file(RIG_BACKING_LEN_BYTES), spec, options);
        let good = GoodClient::start(GoodClientSpec {
            portal: export.daemon.iscsi_addr(),
            iqn: export.spec.iqn.clone(),
            lun: 0,
            lba: GOOD_CLIENT_LBA,
            blocks: GOOD_CLIENT_BLOCKS,
        });
        if let Err(err) = good.wait_for_rounds(GOOD_ROUNDS, PROGRESS_TIMEOUT) {
            panic!("{}", export.failure(&format!("before the attack: {err}")));
        }
        let baseline = export
            .daemon
            .memory()
            .unwrap_or_else(|| panic!("{}", export.failure("cannot read lunard's memory")));
        let baseline_fds = export
            .daemon
            .open_fds()
            .unwrap_or_else(|| panic!("{}", export.failure("cannot list lunard's fds")));
        Rig {
            export,
            good: Some(good),
            baseline,
            baseline_fds,
        }
    }

    /// The daemon.
    pub fn daemon(&self) -> &Lunard {
        &self.export.daemon
    }

    /// The iSCSI portal.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.export.daemon.iscsi_addr()
    }

    /// The exported target.
    pub fn iqn(&self) -> &str {
        &self.export.spec.iqn
    }

    /// Panics with `message`, lunard's output and the memory numbers.
    pub fn fail(&self, message: &str) -> ! {
        let memory = self.daemon().memory();
        panic!(
            "{}",
            self.export.failure(&format!(
                "{message}\n(lunard memory: baseline {:?}, now {memory:?})",
                self.baseline
            ))
        )
    }

    /// Lunard's memory when the attack started.
    pub fn baseline(&self) -> Memory {
        self.baseline
    }

    /// The well-behaved client verifies [`GOOD_ROUNDS`] more rounds.
    pub fn assert_good_client_served(&self, context: &str) {
        let Some(good) = &self.good else {
            self.fail(&format!("{context}: the well-behaved client is gone"));
        };
        if let Err(err) = good.wait_for_rounds(GOOD_ROUNDS, PROGRESS_TIMEOUT) {
            self.fail(&format!("{context}: {err}"));
        }
    }

    /// lunard's peak resident memory grew by at most `budget` above the baseline. The numbers
    /// are printed past the output capture.
    pub fn assert_memory_within(&self, budget: MemoryBudget, context: &str) {
        let Some(now) = self.daemon().memory() else {
            self.fail(&format!(
                "{context}: cannot read lunard's memory (has it died?)"
            ));
        };
        let growth_kib = now.peak_rss_kib.saturating_sub(self.baseline.rss_kib);
        // Straight to stderr, past the test harness's output capture, so the numbers are seen.
        let line = format!(
            "{} {context}: lunard peak RSS {} KiB, {growth_kib} KiB above the baseline \
             (bound {} KiB)\n",
            self.export.spec.iqn,
            now.peak_rss_kib,
            budget.bound_kib()
        );
        let _ = std::io::stderr().write_all(line.as_bytes());
        if growth_kib > budget.bound_kib() {
            self.fail(&format!(
                "{context}: lunard's peak resident memory grew by {growth_kib} KiB above its \
                 baseline, more than the {} KiB allowed ({budget:?} + {MEMORY_SLACK_KIB} KiB)",
                budget.bound_kib()
            ));
        }
    }

    /// Every port in `ports` gets its drop line in lunard's log within [`DROP_TIMEOUT`].
    pub fn assert_drops_logged(&self, ports: &[u16], context: &str) {
        let all_logged = self.daemon().wait_for_log(DROP_TIMEOUT, |log| {
            ports_without_drop_line(log, ports).is_empty()
        });
        if !all_logged {
            let missing = ports_without_drop_line(&self.daemon().log_text(), ports);
            self.fail(&format!(
                "{context}: lunard logged no `{DROP_LOG_MARKER}` line for {} of {} dropped \
                 peers (local ports {:?}...)",
                missing.len(),
                ports.len(),
                &missing[..missing.len().min(10)]
            ));
        }
    }

    /// No port in `ports` has a drop line: lunard kept those peers.
    pub fn assert_not_dropped(&self, ports: &[u16], context: &str) {
        let log = self.daemon().log_text();
        let dropped: Vec<u16> = ports
            .iter()
            .copied()
            .filter(|port| ports_without_drop_line(&log, &[*port]).is_empty())
            .collect();
        if !dropped.is_empty() {
            self.fail(&format!(
                "{context}: lunard dropped peers it should have kept (local ports {dropped:?})"
            ));
        }
    }

    /// Waits for lunard's descriptors to come back to the baseline (within [`FD_SLACK`]).
    pub fn assert_fds_released(&self, context: &str) {
        let deadline = Instant::now() + DROP_TIMEOUT;
        loop {
            let fds = self.daemon().open_fds();
            if fds.is_some_and(|fds| fds <= self.baseline_fds + FD_SLACK) {
                return;
            }
            if Instant::now() >= deadline {
                self.fail(&format!(
                    "{context}: lunard holds {fds:?} file descriptors, {} before the attack: \
                     connections it dropped were not closed",
                    self.baseline_fds
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The checks after an attack: the well-behaved client is served, lunard's descriptors
    /// are released (the attacker's connections closed: until then a new client may wait in
    /// the listen backlog behind them), then `iscsi-inq` works, memory stayed within `budget`,
    /// lunard still runs, the well-behaved client was never dropped and logs out cleanly.
    pub fn finish(mut self, budget: MemoryBudget) {
        self.assert_good_client_served("after the attack");
        self.assert_fds_released("after the attack");
        let inq = libiscsi::iscsi_inq(&self.export.url());
        if !inq.success() {
            self.fail(&format!("iscsi-inq after the attack failed: {inq}"));
        }
        self.assert_memory_within(budget, "after the attack");
        if !self.export.daemon.is_running() {
            self.fail("lunard exited during the attack");
        }
        let Some(good) = self.good.take() else {
            self.fail("the well-behaved client is gone");
        };
        if let Some(port) = good.port() {
            self.assert_not_dropped(&[port], "the well-behaved client");
        }
        if let Err(err) = good.finish() {
            self.fail(&err);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const LOG: &str = "\
2026-11-22T00:24:08Z  WARN lunar_reactor::conn: dropping connection reactor=0 peer=Some(127.0.0.1:42282) reason=LoginFailed(\"login timed out\")
2026-11-22T00:24:08Z  INFO lunar_reactor::conn: login complete reactor=0 peer=Some(127.0.0.1:4229) kind=Normal
2026-11-22T00:24:09Z  WARN lunar_reactor::conn: dropping connection reactor=0 peer=Some(127.0.0.1:5000)
";

    #[test]
    fn finds_drop_lines_by_exact_port() {
        assert!(mentions_peer_port(LOG.lines().next().expect("line"), 42282));
        assert!(!mentions_peer_port(LOG.lines().next().expect("line"), 4228));
        assert_eq!(ports_without_drop_line(LOG, &[42282]), Vec::<u16>::new());
        // A login line is no drop line; a drop line without a reason does not count.
        assert_eq!(
            ports_without_drop_line(LOG, &[4229, 5000]),
            vec![4229, 5000]
        );
    }

    #[test]
    fn the_budget_adds_the_slack() {
        let budget = MemoryBudget {
            connections: 10,
            per_connection_kib: 100,
        };
        assert_eq!(budget.bound_kib(), 1000 + MEMORY_SLACK_KIB);
    }

    proptest! {
        #[test]
        fn log_matching_never_panics(log in "(.{0,80}\n){0,8}", port in any::<u16>()) {
            let missing = ports_without_drop_line(&log, &[port]);
            prop_assert!(missing.len() <= 1);
        }

        #[test]
        fn a_drop_line_is_found_by_its_port_only(port in 1u16.., other in 1u16..) {
            let line = format!("WARN dropping connection peer=Some(127.0.0.1:{port}) reason=X");
            prop_assert!(ports_without_drop_line(&line, &[port]).is_empty());
            prop_assert_eq!(mentions_peer_port(&line, other), other == port);
        }
    }
}
