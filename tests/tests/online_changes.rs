//! Volumes changed online while a client keeps writing and reading them (the churn): a mirror
//! leg added and resynchronised, the old leg removed, a volume migrated onto a stripe, a leg
//! that fails taken out and brought back over its dirty regions, and `kill -9` in the middle
//! of a resync and of a migration. After every change every block holds what was last written
//! there; the latency of the client's commands during each change (the pause it caused) is
//! printed.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use lunar_tests::backing::SparseFile;
use lunar_tests::churn::{verify_lun, Churn, ChurnReport};
use lunar_tests::fixture::start_with_devices;
use lunar_tests::Lunard;

const MIB: u64 = 1 << 20;
/// A guard against hangs, not a performance bound.
const TASK_TIMEOUT: Duration = Duration::from_secs(120);

/// A daemon with named devices over sparse files and one volume exported as LUN 0.
struct Rig {
    daemon: Lunard,
    state: tempfile::TempDir,
    files: Vec<(String, SparseFile)>,
    iqn: String,
}

impl Rig {
    fn start(tag: &str, devices: &[(&str, u64)]) -> Rig {
        let (daemon, state, files) = start_with_devices(devices);
        Rig {
            daemon,
            state,
            files,
            iqn: format!("iqn.2026-11.dev.lunar.test:{tag}"),
        }
    }

    fn export(&self, volume: &str, layout: Value) {
        self.daemon
            .call("volume_create", json!({"name": volume, "layout": layout}));
        self.daemon.call(
            "target_create",
            json!({"iqn": self.iqn, "luns": [{"lun": 0, "volume": volume, "read_only": false}]}),
        );
    }

    fn portal(&self) -> SocketAddr {
        self.daemon.iscsi_addr()
    }

    fn path(&self, device: &str) -> &Path {
        self.files
            .iter()
            .find(|(name, _)| name == device)
            .map(|(_, f)| f.path())
            .expect("device")
    }

    /// Wait until task `id` ends; panics if it failed.
    fn wait_task(&self, id: u64) -> Value {
        let deadline = Instant::now() + TASK_TIMEOUT;
        loop {
            let task = self.daemon.call("task_get", json!({"id": id}));
            match task["state"].as_str() {
                Some("done") => return task,
                Some("running") => {}
                _ => panic!(
                    "{}",
                    self.daemon.failure(&format!("task ended badly: {task}"))
                ),
            }
            assert!(
                Instant::now() < deadline,
                "{}",
                self.daemon
                    .failure(&format!("task {id} did not end: {task}"))
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn verify(&self, model: &[u64], after: &str) {
        if let Err(e) = verify_lun(self.portal(), &self.iqn, 0, model) {
            panic!("{}", self.daemon.failure(&format!("after {after}: {e}")));
        }
    }

    fn churn(&self, seed: u64, model: Vec<u64>) -> Churn {
        let churn = Churn::start(self.portal(), &self.iqn, 0, seed, model);
        if let Err(e) = churn.wait_for(50, TASK_TIMEOUT) {
            panic!("{}", self.daemon.failure(&e));
        }
        churn
    }

    fn finish(&self, churn: Churn, during: &str) -> ChurnReport {
        let report = churn.finish().unwrap_or_else(|e| {
            panic!("{}", self.daemon.failure(&format!("during {during}: {e}")))
        });
        println!(
            "{during}: {} writes, {} reads, command latency p50 {:?}, p99 {:?}, max {:?}",
            report.writes,
            report.reads,
            report.latency_quantile(0.5),
            report.latency_quantile(0.99),
            report.latency_max()
        );
        report
    }

    fn health(&self, volume: &str) -> Value {
        let volumes = self.daemon.call("volume_list", json!({}));
        volumes["volumes"]
            .as_array()
            .and_then(|all| all.iter().find(|v| v["name"] == json!(volume)))
            .map(|v| v["health"].clone())
            .unwrap_or_else(|| panic!("volume {volume} is not listed: {volumes}"))
    }

    fn layout(&self, volume: &str) -> Value {
        let volumes = self.daemon.call("volume_list", json!({}));
        volumes["volumes"]
            .as_array()
            .and_then(|all| all.iter().find(|v| v["name"] == json!(volume)))
            .map(|v| v["layout"].clone())
            .unwrap_or_else(|| panic!("volume {volume} is not listed: {volumes}"))
    }
}

fn linear(device: &str) -> Value {
    json!({"linear": {"device": device}})
}

#[test]
fn a_leg_added_under_io_gets_every_block_and_can_carry_the_volume_alone() {
    let rig = Rig::start("leg-add", &[("a", 64 * MIB), ("b", 64 * MIB)]);
    rig.export("v", linear("a"));
    let churn = rig.churn(1, Vec::new());
    let task = rig
        .daemon
        .call("mirror_leg_add", json!({"volume": "v", "leg": linear("b")}));
    assert_eq!(task["kind"], json!("resync"), "{task}");
    let done = rig.wait_task(task["id"].as_u64().expect("task id"));
    assert_eq!(done["done_bytes"], done["total_bytes"], "{done}");
    let report = rig.finish(churn, "mirror_leg_add resync");
    rig.verify(&report.model, "the resync");
    let layout = rig.layout("v");
    assert_eq!(
        layout["mirror"]["health"],
        json!([{"state": "healthy"}, {"state": "healthy"}]),
        "{layout}"
    );
    // The old leg goes: the new one alone must hold everything.
    let churn = rig.churn(2, report.model);
    rig.daemon
        .call("mirror_leg_remove", json!({"volume": "v", "index": 0}));
    let report = rig.finish(churn, "mirror_leg_remove");
    assert!(
        rig.layout("v").get("linear").is_some(),
        "one leg left: linear"
    );
    rig.verify(&report.model, "removing leg 0");
    rig.daemon.call("device_remove", json!({"name": "a"}));
}

#[test]
fn a_migration_under_io_moves_every_block_and_frees_the_old_device() {
    let rig = Rig::start(
        "migrate",
        &[("old", 48 * MIB), ("s0", 32 * MIB), ("s1", 32 * MIB)],
    );
    rig.export("v", linear("old"));
    let churn = rig.churn(3, Vec::new());
    let stripe = json!({"stripe": {"unit_bytes": 65536, "members": [
        {"linear": {"device": "s0", "size_bytes": 24 * MIB}},
        {"linear": {"device": "s1", "size_bytes": 24 * MIB}},
    ]}});
    let task = rig
        .daemon
        .call("volume_migrate", json!({"name": "v", "layout": stripe}));
    assert_eq!(task["kind"], json!("migrate"), "{task}");
    rig.wait_task(task["id"].as_u64().expect("task id"));
    let report = rig.finish(churn, "volume_migrate");
    assert!(
        rig.layout("v").get("stripe").is_some(),
        "{}",
        rig.layout("v")
    );
    rig.verify(&report.model, "the migration");
    // Nothing uses the old device any more.
    rig.daemon.call("device_remove", json!({"name": "old"}));
    rig.verify(&report.model, "removing the old device");
}

#[test]
fn bad_leg_and_migration_requests_get_clear_errors() {
    let rig = Rig::start("leg-errors", &[("a", 16 * MIB), ("b", 8 * MIB)]);
    rig.export("v", linear("a"));
    let wrong_size = rig
        .daemon
        .try_call("mirror_leg_add", json!({"volume": "v", "leg": linear("b")}))
        .expect_err("a leg of another size");
    assert!(
        wrong_size.to_string().contains("exactly as large"),
        "{wrong_size}"
    );
    let not_mirror = rig
        .daemon
        .try_call("mirror_leg_remove", json!({"volume": "v", "index": 0}))
        .expect_err("not a mirror");
    assert!(
        not_mirror.to_string().contains("not a mirror"),
        "{not_mirror}"
    );
    let unknown = rig
        .daemon
        .try_call("task_get", json!({"id": 999}))
        .expect_err("no such task");
    assert!(unknown.to_string().contains("999"), "{unknown}");
    let last = rig
        .daemon
        .try_call(
            "volume_migrate",
            json!({"name": "v", "layout": linear("b")}),
        )
        .expect_err("a smaller layout");
    assert!(last.to_string().contains("exactly as large"), "{last}");
}

/// Run `command`, panicking with its output if it fails.
fn run(command: &mut Command) {
    let out = command.output().expect("run a command");
    assert!(
        out.status.success(),
        "{command:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A tmpfs of `size` mounted on a fresh directory, unmounted on drop.
struct SmallFs {
    dir: tempfile::TempDir,
}

impl SmallFs {
    fn mount(size: &str) -> SmallFs {
        let dir = tempfile::tempdir().expect("mount point");
        run(Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "lunar-leg"])
            .arg(dir.path()));
        SmallFs { dir }
    }

    fn resize(&self, size: &str) {
        run(Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(self.dir.path()));
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

#[test]
fn a_leg_that_fills_up_is_taken_out_and_rejoins_over_its_dirty_regions() {
    if !nix::unistd::Uid::effective().is_root() {
        panic!("this test mounts a tmpfs: run the suite as root (scripts/test.sh does)");
    }
    let rig = Rig::start("leg-rejoin", &[("a", 256 * MIB)]);
    // Leg b lives on a 4 MiB filesystem: its writes fail once 4 MiB of it are written.
    let fs = SmallFs::mount("4m");
    let leg_path = fs.dir.path().join("b.img");
    std::fs::File::create(&leg_path)
        .and_then(|f| f.set_len(256 * MIB))
        .expect("leg file");
    rig.daemon.call(
        "device_add",
        json!({"name": "b", "path": leg_path.to_string_lossy()}),
    );
    rig.export("v", json!({"mirror": {"legs": [linear("a"), linear("b")]}}));
    // The churn writes all over 256 MiB: leg b fills up, fails, and is taken out; the host
    // sees no error. It stops soon after, so few regions are written while b is out.
    let churn = rig.churn(4, Vec::new());
    let deadline = Instant::now() + TASK_TIMEOUT;
    while rig.layout("v")["mirror"]["health"][1]["state"] != json!("faulty") {
        assert!(
            Instant::now() < deadline,
            "{}",
            rig.daemon.failure("leg b was never taken out")
        );
        churn.wait_for(5, TASK_TIMEOUT).expect("churn");
    }
    let report = rig.finish(churn, "a leg failing");
    rig.verify(&report.model, "leg b failed");
    assert_eq!(rig.health("v"), json!("degraded"));
    // The device comes back with room; only the regions written meanwhile are copied.
    fs.resize("64m");
    let churn = rig.churn(5, report.model);
    let task = rig
        .daemon
        .call("mirror_leg_rejoin", json!({"volume": "v", "index": 1}));
    let done = rig.wait_task(task["id"].as_u64().expect("task id"));
    let report = rig.finish(churn, "the rejoin");
    assert_eq!(rig.health("v"), json!("healthy"));
    let (copied, total) = (
        done["copied_bytes"].as_u64().expect("copied_bytes"),
        done["total_bytes"].as_u64().expect("total_bytes"),
    );
    println!(
        "the rejoin copied {} MiB of {} MiB",
        copied >> 20,
        total >> 20
    );
    assert!(
        copied > 0 && copied < total,
        "only the dirty regions are copied: {done}"
    );
    // Leg b alone must now hold everything.
    rig.daemon
        .call("mirror_leg_remove", json!({"volume": "v", "index": 0}));
    rig.verify(&report.model, "the rejoin, on leg b alone");
    let _ = rig.path("a");
}

#[test]
fn kill9_during_a_migration_resumes_it_after_restart() {
    let mut rig = Rig::start("migrate-kill", &[("old", 512 * MIB), ("new", 512 * MIB)]);
    rig.export("v", linear("old"));
    let churn = rig.churn(6, Vec::new());
    churn.wait_for(500, TASK_TIMEOUT).expect("churn");
    let report = rig.finish(churn, "writing before the migration");
    let task = rig.daemon.call(
        "volume_migrate",
        json!({"name": "v", "layout": linear("new")}),
    );
    let id = task["id"].as_u64().expect("task id");
    // Kill as soon as the copy is under way.
    let deadline = Instant::now() + TASK_TIMEOUT;
    let at_kill = loop {
        let task = rig.daemon.call("task_get", json!({"id": id}));
        if task["done_bytes"].as_u64().unwrap_or(0) > 0 || task["state"] != json!("running") {
            break task;
        }
        assert!(Instant::now() < deadline, "the migration never started");
        std::thread::sleep(Duration::from_millis(1));
    };
    rig.daemon.kill9();
    assert_eq!(
        at_kill["state"],
        json!("running"),
        "killed mid-way: {at_kill}"
    );
    assert!(
        at_kill["done_bytes"].as_u64() < at_kill["total_bytes"].as_u64(),
        "killed mid-way: {at_kill}"
    );
    rig.daemon = Lunard::start(rig.state.path());
    let resumed = rig.daemon.call("task_get", json!({"id": id}));
    assert_ne!(resumed["state"], json!("failed"), "{resumed}");
    rig.wait_task(id);
    assert!(rig.layout("v").get("linear").is_some());
    assert_eq!(rig.layout("v")["linear"]["device"], json!("new"));
    rig.verify(&report.model, "kill -9 during the migration and restart");
}
