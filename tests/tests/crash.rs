//! `kill -9` at awkward moments, then a restart: while a client writes to a thin volume (every
//! write allocating or not), after a snapshot while writes copy-on-write, and in the middle of
//! a mirror resync. Every write the client saw acknowledged must be there afterwards (the one
//! in flight at the kill may hold old or new data), snapshots keep their point-in-time image,
//! and an interrupted task resumes.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use lunar_tests::backing::SparseFile;
use lunar_tests::churn::{settle_uncertain, verify_lun, verify_lun_after_loss, Churn, ChurnReport};
use lunar_tests::fixture::start_with_devices;
use lunar_tests::Lunard;

const MIB: u64 = 1 << 20;
/// A guard against hangs, not a performance bound.
const TIMEOUT: Duration = Duration::from_secs(120);

struct Rig {
    daemon: Lunard,
    state: tempfile::TempDir,
    _files: Vec<(String, SparseFile)>,
}

impl Rig {
    fn start(devices: &[(&str, u64)]) -> Rig {
        let (daemon, state, files) = start_with_devices(devices);
        Rig {
            daemon,
            state,
            _files: files,
        }
    }

    fn export(&self, iqn: &str, volume: &str) {
        self.daemon.call(
            "target_create",
            json!({"iqn": iqn, "luns": [{"lun": 0, "volume": volume, "read_only": false}]}),
        );
    }

    /// Churn `iqn` until `commands` completed, then `kill -9` lunard under it and restart.
    fn churn_then_kill(
        &mut self,
        iqn: &str,
        seed: u64,
        model: Vec<u64>,
        commands: u64,
    ) -> ChurnReport {
        let churn = Churn::start(self.daemon.iscsi_addr(), iqn, 0, seed, model);
        if let Err(e) = churn.wait_for(commands, TIMEOUT) {
            panic!("{}", self.daemon.failure(&e));
        }
        self.daemon.kill9();
        let report = churn.finish_lossy().expect("churn thread");
        if let Some(error) = report
            .error
            .as_deref()
            .filter(|e| e.contains("does not hold"))
        {
            panic!(
                "{}",
                self.daemon.failure(&format!("before the kill: {error}"))
            );
        }
        self.daemon = Lunard::start(self.state.path());
        report
    }

    /// Check every block; then settle the write that was in flight, so the model holds what
    /// the LUN holds.
    fn verify(&self, iqn: &str, report: &mut ChurnReport, after: &str) {
        let portal = self.daemon.iscsi_addr();
        let outcome = verify_lun_after_loss(portal, iqn, 0, &report.model, report.uncertain)
            .and_then(|()| settle_uncertain(portal, iqn, 0, report));
        if let Err(e) = outcome {
            panic!("{}", self.daemon.failure(&format!("after {after}: {e}")));
        }
    }

    fn wait_task(&self, id: u64) -> Value {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let task = self.daemon.call("task_get", json!({"id": id}));
            match task["state"].as_str() {
                Some("done") => return task,
                Some("running") if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => panic!("{}", self.daemon.failure(&format!("task: {task}"))),
            }
        }
    }
}

#[test]
fn kill9_while_writing_to_a_thin_volume_keeps_every_acknowledged_write() {
    let mut rig = Rig::start(&[("p0", 64 * MIB), ("p1", 64 * MIB)]);
    rig.daemon.call(
        "pool_create",
        json!({"name": "p", "devices": ["p0", "p1"], "segment_bytes": 256 * 1024}),
    );
    rig.daemon.call(
        "volume_create",
        json!({"name": "t", "layout": {"thin": {"pool": "p", "size_bytes": 96 * MIB}}}),
    );
    let iqn = "iqn.2026-11.dev.lunar.test:crash-thin";
    rig.export(iqn, "t");
    let mut model = Vec::new();
    for (round, commands) in [300u64, 150, 40].into_iter().enumerate() {
        let mut report = rig.churn_then_kill(iqn, 10 + round as u64, model, commands);
        assert!(
            report.writes > 0,
            "the churn wrote before the kill: {:?}",
            report.error
        );
        rig.verify(iqn, &mut report, &format!("kill -9 number {}", round + 1));
        model = report.model;
    }
    let pools = rig.daemon.call("pool_list", json!({}));
    assert!(
        pools["pools"][0]["allocated_bytes"].as_u64().unwrap_or(0) > 0,
        "allocations survived: {pools}"
    );
}

#[test]
fn kill9_while_writes_copy_on_write_keeps_the_snapshot_and_the_volume() {
    let mut rig = Rig::start(&[("p0", 128 * MIB)]);
    rig.daemon
        .call("pool_create", json!({"name": "p", "devices": ["p0"]}));
    rig.daemon.call(
        "volume_create",
        json!({"name": "t", "layout": {"thin": {"pool": "p", "size_bytes": 32 * MIB}}}),
    );
    let iqn = "iqn.2026-11.dev.lunar.test:crash-cow";
    rig.export(iqn, "t");
    // Data, then a snapshot of it.
    let churn = Churn::start(rig.daemon.iscsi_addr(), iqn, 0, 20, Vec::new());
    churn.wait_for(300, TIMEOUT).expect("churn");
    let before = churn.finish().expect("churn before the snapshot");
    rig.daemon.call(
        "volume_snapshot_create",
        json!({"volume": "t", "name": "t-snap"}),
    );
    let snap_iqn = "iqn.2026-11.dev.lunar.test:crash-cow-snap";
    rig.daemon.call(
        "target_create",
        json!({"iqn": snap_iqn, "luns": [{"lun": 0, "volume": "t-snap", "read_only": true}]}),
    );
    // Writes now copy shared segments; kill in the middle of them.
    let mut after = rig.churn_then_kill(iqn, 21, before.model.clone(), 200);
    rig.verify(iqn, &mut after, "kill -9 during copy-on-write");
    if let Err(e) = verify_lun(rig.daemon.iscsi_addr(), snap_iqn, 0, &before.model) {
        panic!(
            "{}",
            rig.daemon
                .failure(&format!("the snapshot changed across kill -9: {e}"))
        );
    }
}

#[test]
fn kill9_during_a_resync_resumes_it_and_the_new_leg_holds_everything() {
    let mut rig = Rig::start(&[("a", 512 * MIB), ("b", 512 * MIB)]);
    rig.daemon.call(
        "volume_create",
        json!({"name": "v", "layout": {"linear": {"device": "a"}}}),
    );
    let iqn = "iqn.2026-11.dev.lunar.test:crash-resync";
    rig.export(iqn, "v");
    let churn = Churn::start(rig.daemon.iscsi_addr(), iqn, 0, 30, Vec::new());
    churn.wait_for(300, TIMEOUT).expect("churn");
    let written = churn.finish().expect("churn");
    let task = rig.daemon.call(
        "mirror_leg_add",
        json!({"volume": "v", "leg": {"linear": {"device": "b"}}}),
    );
    let id = task["id"].as_u64().expect("task id");
    // Writes keep coming while the resync runs; kill once it is under way.
    let churn = Churn::start(rig.daemon.iscsi_addr(), iqn, 0, 31, written.model);
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let task = rig.daemon.call("task_get", json!({"id": id}));
        if task["done_bytes"].as_u64().unwrap_or(0) > 0 {
            assert_eq!(task["state"], json!("running"), "killed mid-way: {task}");
            break;
        }
        assert!(Instant::now() < deadline, "the resync never started");
        std::thread::sleep(Duration::from_millis(1));
    }
    rig.daemon.kill9();
    let mut report = churn.finish_lossy().expect("churn thread");
    rig.daemon = Lunard::start(rig.state.path());
    rig.wait_task(id);
    rig.verify(iqn, &mut report, "kill -9 during the resync");
    // Leg b alone must hold everything.
    rig.daemon
        .call("mirror_leg_remove", json!({"volume": "v", "index": 0}));
    rig.verify(
        iqn,
        &mut report,
        "kill -9 during the resync, on leg b alone",
    );
}
