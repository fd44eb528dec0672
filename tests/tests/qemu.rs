//! QEMU's iSCSI driver as the client (`qemu-img`, `qemu-io`): an image written onto a thin
//! volume compares equal to its source, a snapshot keeps that image while `qemu-io` writes to
//! the volume, and the volume compares equal again after it is migrated onto a stripe under
//! QEMU's writes.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;

use lunar_tests::backing::SparseFile;
use lunar_tests::fixture::state_dir;
use lunar_tests::process::{run_with_timeout, ToolOutput};
use lunar_tests::Lunard;

const MIB: u64 = 1 << 20;
const VOLUME_BYTES: u64 = 32 * MIB;
const IQN: &str = "iqn.2026-11.dev.lunar.test:qemu";
const SNAP_IQN: &str = "iqn.2026-11.dev.lunar.test:qemu-snap";
const QEMU_TIMEOUT: Duration = Duration::from_secs(120);

fn run(program: &str, args: &[&str]) -> ToolOutput {
    let mut command = std::process::Command::new(program);
    command.args(args);
    run_with_timeout(command, QEMU_TIMEOUT)
}

fn qemu(daemon: &Lunard, program: &str, args: &[&str]) -> ToolOutput {
    let out = run(program, args);
    assert!(
        out.success(),
        "{}",
        daemon.failure(&format!("{program} {args:?}: {out}"))
    );
    out
}

/// Bytes that differ from one 4 KiB block to the next.
fn image(path: &Path) {
    let mut bytes = vec![0u8; VOLUME_BYTES as usize];
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for chunk in bytes.chunks_mut(8) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
    }
    std::fs::write(path, bytes).expect("write the source image");
}

#[test]
fn qemu_images_on_thin_volumes_snapshots_and_a_migration() {
    let state = state_dir();
    let daemon = Lunard::start(state.path());
    let files: Vec<SparseFile> = (0..3).map(|_| SparseFile::create(64 * MIB)).collect();
    for (name, file) in ["pool0", "s0", "s1"].iter().zip(&files) {
        let path = file.path().to_string_lossy().into_owned();
        daemon.call("device_add", json!({"name": name, "path": path}));
    }
    daemon.call("pool_create", json!({"name": "p", "devices": ["pool0"]}));
    daemon.call(
        "volume_create",
        json!({"name": "t", "layout": {"thin": {"pool": "p", "size_bytes": VOLUME_BYTES}}}),
    );
    daemon.call(
        "target_create",
        json!({"iqn": IQN, "luns": [{"lun": 0, "volume": "t", "read_only": false}]}),
    );
    let url = daemon.url(IQN, 0);
    let dir = tempfile::tempdir().expect("tempdir");
    let source = dir.path().join("source.img");
    image(&source);
    let source = source.to_string_lossy().into_owned();

    // The image onto the thin volume, then compared byte for byte through QEMU's driver.
    qemu(
        &daemon,
        "qemu-img",
        &["convert", "-n", "-f", "raw", "-O", "raw", &source, &url],
    );
    qemu(
        &daemon,
        "qemu-img",
        &["compare", "-f", "raw", "-F", "raw", &source, &url],
    );

    // A snapshot keeps the image while QEMU writes to the volume.
    daemon.call(
        "volume_snapshot_create",
        json!({"volume": "t", "name": "t-snap"}),
    );
    daemon.call(
        "target_create",
        json!({"iqn": SNAP_IQN, "luns": [{"lun": 0, "volume": "t-snap", "read_only": true}]}),
    );
    let snap_url = daemon.url(SNAP_IQN, 0);
    qemu(
        &daemon,
        "qemu-io",
        &["-f", "raw", "-c", "write -P 0xab 1M 3M", &url],
    );
    qemu(
        &daemon,
        "qemu-io",
        &["-f", "raw", "-c", "read -P 0xab 1M 3M", &url],
    );
    qemu(
        &daemon,
        "qemu-img",
        &["compare", "-f", "raw", "-F", "raw", &source, &snap_url],
    );
    let differs = run(
        "qemu-img",
        &["compare", "-f", "raw", "-F", "raw", &source, &url],
    );
    assert!(
        !differs.success(),
        "{}",
        daemon.failure("the volume was written: it must differ from the image")
    );
    // QEMU sees the snapshot write-protected and refuses to open it for writing.
    let refused = run(
        "qemu-io",
        &["-f", "raw", "-c", "write -P 0x11 0 4k", &snap_url],
    );
    assert!(
        !refused.success() && refused.output.contains("write protected"),
        "{}",
        daemon.failure(&format!("a write to a snapshot must fail: {refused}"))
    );

    // The volume moves onto a stripe while QEMU writes the image back; then it compares equal.
    let task = daemon.call(
        "volume_migrate",
        json!({"name": "t", "layout": {"stripe": {"unit_bytes": 65536, "members": [
            {"linear": {"device": "s0", "size_bytes": VOLUME_BYTES / 2}},
            {"linear": {"device": "s1", "size_bytes": VOLUME_BYTES / 2}},
        ]}}}),
    );
    qemu(
        &daemon,
        "qemu-img",
        &["convert", "-n", "-f", "raw", "-O", "raw", &source, &url],
    );
    let id = task["id"].as_u64().expect("task id");
    let deadline = Instant::now() + QEMU_TIMEOUT;
    while daemon.call("task_get", json!({"id": id}))["state"] == json!("running") {
        assert!(Instant::now() < deadline, "the migration did not end");
        std::thread::sleep(Duration::from_millis(20));
    }
    let task = daemon.call("task_get", json!({"id": id}));
    assert_eq!(task["state"], json!("done"), "{task}");
    qemu(
        &daemon,
        "qemu-img",
        &["compare", "-f", "raw", "-F", "raw", &source, &url],
    );
}
