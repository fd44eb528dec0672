//! Snapshots taken while a client keeps writing are points in time: the snapshot holds exactly
//! the first k writes of the client's acknowledged sequence for some k (no write straddles the
//! point), whether lunard keeps running or is killed with `kill -9` while the snapshot is being
//! taken (then, after the restart, the snapshot is there or not, and if it is, it is such a
//! point).

use std::collections::HashMap;
use std::time::Duration;

use serde_json::json;

use lunar_tests::churn::{Churn, ChurnReport, NEVER_WRITTEN};
use lunar_tests::fixture::start_with_devices;
use lunar_tests::initiator::{pattern, BlockClient};
use lunar_tests::Lunard;

const MIB: u64 = 1 << 20;
const VOLUME_BYTES: u64 = 16 * MIB;
const IQN: &str = "iqn.2026-11.dev.lunar.test:snap-points";
const SNAP_IQN: &str = "iqn.2026-11.dev.lunar.test:snap-points-snap";
const TIMEOUT: Duration = Duration::from_secs(120);

fn thin_volume(daemon: &Lunard) {
    daemon.call(
        "pool_create",
        json!({"name": "p", "devices": ["p0"], "segment_bytes": 65536}),
    );
    daemon.call(
        "volume_create",
        json!({"name": "t", "layout": {"thin": {"pool": "p", "size_bytes": VOLUME_BYTES}}}),
    );
    daemon.call(
        "target_create",
        json!({"iqn": IQN, "luns": [{"lun": 0, "volume": "t", "read_only": false}]}),
    );
}

/// The range of k (writes applied, in log order) for which the snapshot's blocks are what the
/// volume held after the first k writes; `None` when no k fits every block.
fn point_of(
    snapshot: &[u8],
    block_len: u32,
    log: &[(u64, u64, u64)],
) -> Result<(usize, usize), String> {
    let blocks = snapshot.len() / block_len as usize;
    // Per block, the writes to it in order: (index in the log, seed).
    let mut history: HashMap<u64, Vec<(usize, u64)>> = HashMap::new();
    for (index, &(lba, count, seed)) in log.iter().enumerate() {
        for block in lba..lba + count {
            history.entry(block).or_default().push((index, seed));
        }
    }
    let (mut low, mut high) = (0usize, log.len());
    for block in 0..blocks as u64 {
        let at = block as usize * block_len as usize;
        let held = &snapshot[at..at + block_len as usize];
        let writes = history.get(&block).map(Vec::as_slice).unwrap_or(&[]);
        // After k writes the block holds the last write with index < k (zeros if none).
        let mut fits = None;
        if held.iter().all(|&b| b == 0) {
            fits = Some((0, writes.first().map_or(log.len(), |&(i, _)| i)));
        }
        for (n, &(index, seed)) in writes.iter().enumerate() {
            if held == pattern(seed, block, 1, block_len).as_slice() {
                let until = writes.get(n + 1).map_or(log.len(), |&(next, _)| next);
                fits = Some((index + 1, until));
            }
        }
        let Some((from, until)) = fits else {
            return Err(format!(
                "block {block} holds nothing the client ever wrote there"
            ));
        };
        low = low.max(from);
        high = high.min(until);
        if low > high {
            return Err(format!(
                "block {block} is from after write {from} while another block is from before write {high}: a write straddles the snapshot"
            ));
        }
    }
    Ok((low, high))
}

fn read_all(daemon: &Lunard, iqn: &str) -> (Vec<u8>, u32) {
    let mut client = BlockClient::connect(daemon.iscsi_addr(), iqn, 0)
        .unwrap_or_else(|e| panic!("{}", daemon.failure(&format!("login to {iqn}: {e}"))));
    let data = client
        .read(0, client.num_blocks as u32)
        .unwrap_or_else(|e| panic!("{}", daemon.failure(&format!("read {iqn}: {e}"))));
    (data, client.block_len)
}

fn export_snapshot(daemon: &Lunard) {
    daemon.call(
        "target_create",
        json!({"iqn": SNAP_IQN, "luns": [{"lun": 0, "volume": "t-snap", "read_only": true}]}),
    );
}

/// The log with the write in flight at the end (it may have landed) appended.
fn full_log(report: &ChurnReport) -> Vec<(u64, u64, u64)> {
    let mut log = report.log.clone();
    log.extend(report.uncertain);
    log
}

#[test]
fn a_snapshot_under_writes_is_a_point_in_time() {
    let (daemon, _state, _files) = start_with_devices(&[("p0", 64 * MIB)]);
    thin_volume(&daemon);
    let churn = Churn::start(daemon.iscsi_addr(), IQN, 0, 40, Vec::new());
    churn.wait_for(200, TIMEOUT).expect("churn");
    daemon.call(
        "volume_snapshot_create",
        json!({"volume": "t", "name": "t-snap"}),
    );
    churn
        .wait_for(200, TIMEOUT)
        .expect("churn after the snapshot");
    let report = churn.finish().expect("churn");
    export_snapshot(&daemon);
    let (snapshot, block_len) = read_all(&daemon, SNAP_IQN);
    let (low, high) = point_of(&snapshot, block_len, &report.log)
        .unwrap_or_else(|e| panic!("{}", daemon.failure(&e)));
    assert!(
        low > 0 && high < report.log.len(),
        "the snapshot is taken between the writes before and after it ({low}..={high} of {})",
        report.log.len()
    );
}

#[test]
fn kill9_while_a_snapshot_is_taken_leaves_none_or_a_point_in_time() {
    let mut kept = 0;
    let delays_us = [0u64, 500, 2_000, 5_000, 20_000, 60_000];
    for (round, delay_us) in delays_us.into_iter().enumerate() {
        let round = round as u64;
        let (mut daemon, state, _files) = start_with_devices(&[("p0", 64 * MIB)]);
        thin_volume(&daemon);
        let churn = Churn::start(daemon.iscsi_addr(), IQN, 0, 50 + round, Vec::new());
        churn.wait_for(200, TIMEOUT).expect("churn");
        let socket = daemon.rpc_socket().to_path_buf();
        let snapshot = std::thread::spawn(move || {
            let mut rpc = lunar_tests::rpc::RpcClient::connect(&socket).expect("rpc");
            let _ = rpc.call(
                "volume_snapshot_create",
                json!({"volume": "t", "name": "t-snap"}),
            );
        });
        // Kill at a different moment of the snapshot each round.
        std::thread::sleep(Duration::from_micros(delay_us));
        daemon.kill9();
        let _ = snapshot.join();
        let report = churn.finish_lossy().expect("churn thread");
        daemon = Lunard::start(state.path());
        let volumes = daemon.call("volume_list", json!({}));
        let taken = volumes["volumes"]
            .as_array()
            .is_some_and(|all| all.iter().any(|v| v["name"] == json!("t-snap")));
        if !taken {
            continue;
        }
        kept += 1;
        export_snapshot(&daemon);
        let (data, block_len) = read_all(&daemon, SNAP_IQN);
        if let Err(e) = point_of(&data, block_len, &full_log(&report)) {
            panic!("{}", daemon.failure(&format!("round {round}: {e}")));
        }
        // The origin holds every acknowledged write.
        let (origin, _) = read_all(&daemon, IQN);
        let model = &report.model;
        for (block, held) in origin.chunks(block_len as usize).enumerate() {
            let seed = model[block];
            let expected = match seed {
                NEVER_WRITTEN => vec![0u8; block_len as usize],
                seed => pattern(seed, block as u64, 1, block_len),
            };
            let in_flight = report.uncertain.is_some_and(|(lba, count, seed)| {
                (lba..lba + count).contains(&(block as u64))
                    && held == pattern(seed, block as u64, 1, block_len).as_slice()
            });
            assert!(
                held == expected.as_slice() || in_flight,
                "{}",
                daemon.failure(&format!(
                    "round {round}: origin block {block} lost its data"
                ))
            );
        }
    }
    println!(
        "snapshots that survived the kill: {kept} of {}",
        delays_us.len()
    );
}

#[test]
fn the_point_check_finds_a_straddling_write() {
    let block_len = 512u32;
    // Write 0: blocks 0-1 (seed 1); write 1: block 1 (seed 2); write 2: block 0 (seed 3).
    let log = [(0, 2, 1), (1, 1, 2), (0, 1, 3)];
    let image = |seeds: [u64; 2]| -> Vec<u8> {
        seeds
            .iter()
            .enumerate()
            .flat_map(|(block, &seed)| match seed {
                0 => vec![0u8; block_len as usize],
                seed => pattern(seed, block as u64, 1, block_len),
            })
            .collect()
    };
    assert_eq!(point_of(&image([0, 0]), block_len, &log), Ok((0, 0)));
    assert_eq!(point_of(&image([1, 1]), block_len, &log), Ok((1, 1)));
    assert_eq!(point_of(&image([1, 2]), block_len, &log), Ok((2, 2)));
    assert_eq!(point_of(&image([3, 2]), block_len, &log), Ok((3, 3)));
    // Block 0 after write 2 but block 1 before write 1: no single point.
    assert!(point_of(&image([3, 1]), block_len, &log).is_err());
    // Bytes nobody wrote.
    assert!(point_of(&image([7, 2]), block_len, &log).is_err());
}
