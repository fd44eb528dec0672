//! Thin volumes, snapshots and clones end to end, through iSCSI against a real lunard: a thin
//! volume over a pool reads zeros until written and takes pool space segment by segment; a
//! snapshot keeps its image while the origin is overwritten and refuses writes; a clone starts
//! as the snapshot and writes its own copies; UNMAP gives the space back and reads zeros; a
//! resize reaches the host as CAPACITY DATA HAS CHANGED; and all of it is back after a restart.

use serde_json::{json, Value};

use lunar_tests::backing::SparseFile;
use lunar_tests::fixture::state_dir;
use lunar_tests::initiator::scsi::Sense;
use lunar_tests::initiator::{pattern, BlockClient, InitiatorError};
use lunar_tests::Lunard;

const MIB: u64 = 1 << 20;
const POOL_BYTES: u64 = 64 * MIB;
const VOLUME_BYTES: u64 = 32 * MIB;
const BLOCK: u32 = 512;
/// Blocks per 1 MiB segment.
const SEGMENT_BLOCKS: u64 = MIB / BLOCK as u64;
const IQN_ORIGIN: &str = "iqn.2026-11.dev.lunar.test:thin";
const IQN_SNAPSHOT: &str = "iqn.2026-11.dev.lunar.test:thin-snap";
const IQN_CLONE: &str = "iqn.2026-11.dev.lunar.test:thin-clone";
/// DATA PROTECT, WRITE PROTECTED.
const WRITE_PROTECTED: (u8, u8, u8) = (0x07, 0x27, 0x00);
/// UNIT ATTENTION, CAPACITY DATA HAS CHANGED.
const CAPACITY_CHANGED: (u8, u8, u8) = (0x06, 0x2a, 0x09);

/// The writes of the test: (LBA, blocks). The first sits inside segment 1, the second crosses
/// from segment 3 into segment 4.
const WRITES: [(u64, u32); 2] = [(SEGMENT_BLOCKS + 8, 16), (4 * SEGMENT_BLOCKS - 8, 16)];

fn pool(daemon: &Lunard) -> Value {
    daemon.call("pool_list", json!({}))["pools"][0].clone()
}

fn allocated(daemon: &Lunard) -> u64 {
    pool(daemon)["allocated_bytes"]
        .as_u64()
        .expect("allocated_bytes")
}

fn connect(daemon: &Lunard, iqn: &str) -> BlockClient {
    BlockClient::connect(daemon.iscsi_addr(), iqn, 0)
        .unwrap_or_else(|e| panic!("{}", daemon.failure(&format!("login to {iqn}: {e}"))))
}

fn read(daemon: &Lunard, client: &mut BlockClient, lba: u64, blocks: u32) -> Vec<u8> {
    client
        .read(lba, blocks)
        .unwrap_or_else(|e| panic!("{}", daemon.failure(&format!("read at LBA {lba}: {e}"))))
}

fn write(daemon: &Lunard, client: &mut BlockClient, seed: u64) {
    for (lba, blocks) in WRITES {
        client
            .write(lba, &pattern(seed, lba, blocks, BLOCK), false)
            .unwrap_or_else(|e| panic!("{}", daemon.failure(&format!("write at LBA {lba}: {e}"))));
    }
    client
        .flush()
        .unwrap_or_else(|e| panic!("{}", daemon.failure(&format!("flush: {e}"))));
}

/// The blocks of WRITES hold `seed`'s pattern (`None`: zeros).
fn assert_holds(daemon: &Lunard, client: &mut BlockClient, seed: Option<u64>, what: &str) {
    for (lba, blocks) in WRITES {
        let back = read(daemon, client, lba, blocks);
        let expected = match seed {
            Some(seed) => pattern(seed, lba, blocks, BLOCK),
            None => vec![0; (blocks * BLOCK) as usize],
        };
        assert!(
            back == expected,
            "{}",
            daemon.failure(&format!("{what}: LBA {lba} does not hold what it should"))
        );
    }
}

fn sense_of(error: InitiatorError) -> (u8, u8, u8) {
    match error {
        InitiatorError::Status {
            sense: Some(Sense { key, asc, ascq }),
            ..
        } => (key, asc, ascq),
        other => panic!("expected CHECK CONDITION with sense, got {other}"),
    }
}

/// UNMAP of `(lba, blocks)` ranges.
fn unmap(daemon: &Lunard, client: &mut BlockClient, ranges: &[(u64, u32)]) {
    let mut parameters = vec![0u8; 8];
    for &(lba, blocks) in ranges {
        parameters.extend_from_slice(&lba.to_be_bytes());
        parameters.extend_from_slice(&blocks.to_be_bytes());
        parameters.extend_from_slice(&[0; 4]);
    }
    let total = parameters.len() as u16;
    parameters[0..2].copy_from_slice(&(total - 2).to_be_bytes());
    parameters[2..4].copy_from_slice(&(total - 8).to_be_bytes());
    let mut cdb = [0u8; 10];
    cdb[0] = 0x42;
    cdb[7..9].copy_from_slice(&total.to_be_bytes());
    let outcome = client
        .session()
        .execute(0, &cdb, &parameters, 0)
        .unwrap_or_else(|e| panic!("{}", daemon.failure(&format!("UNMAP: {e}"))));
    assert_eq!(
        outcome.status,
        0,
        "{}",
        daemon.failure(&format!("UNMAP answered {:?}", outcome.sense))
    );
}

fn configure(daemon: &Lunard, pool_file: &SparseFile) {
    let path = pool_file.path().to_string_lossy().into_owned();
    daemon.call("device_add", json!({"name": "pool-dev", "path": path}));
    let created = daemon.call("pool_create", json!({"name": "p", "devices": ["pool-dev"]}));
    assert_eq!(created["size_bytes"], json!(POOL_BYTES));
    daemon.call(
        "volume_create",
        json!({"name": "t", "layout": {"thin": {"pool": "p", "size_bytes": VOLUME_BYTES}}}),
    );
    daemon.call(
        "target_create",
        json!({"iqn": IQN_ORIGIN, "luns": [{"lun": 0, "volume": "t"}]}),
    );
}

#[test]
fn thin_volumes_snapshots_and_clones_through_iscsi() {
    let pool_file = SparseFile::create(POOL_BYTES);
    let state = state_dir();
    let mut daemon = Lunard::start(state.path());
    configure(&daemon, &pool_file);

    // A thin volume reads zeros and takes no space until written.
    let mut origin = connect(&daemon, IQN_ORIGIN);
    assert_eq!(origin.capacity_bytes(), VOLUME_BYTES);
    assert_holds(&daemon, &mut origin, None, "a new thin volume");
    assert_eq!(allocated(&daemon), 0, "reads allocate nothing");
    write(&daemon, &mut origin, 1);
    assert_holds(&daemon, &mut origin, Some(1), "after the first writes");
    assert_eq!(allocated(&daemon), 3 * MIB, "segments 1, 3 and 4");
    let around = read(&daemon, &mut origin, SEGMENT_BLOCKS, 8);
    assert!(
        around.iter().all(|&b| b == 0),
        "{}",
        daemon.failure("the unwritten start of an allocated segment is not zero")
    );

    // A snapshot keeps the image; the origin's next writes copy the shared segments.
    let snapshot = daemon.call(
        "volume_snapshot_create",
        json!({"volume": "t", "name": "s"}),
    );
    assert_eq!(snapshot["snapshot"], json!(true));
    daemon.call(
        "target_create",
        json!({"iqn": IQN_SNAPSHOT, "luns": [{"lun": 0, "volume": "s"}]}),
    );
    write(&daemon, &mut origin, 2);
    assert_holds(
        &daemon,
        &mut origin,
        Some(2),
        "the origin after the snapshot",
    );
    let mut snap = connect(&daemon, IQN_SNAPSHOT);
    assert_holds(&daemon, &mut snap, Some(1), "the snapshot");
    assert_eq!(allocated(&daemon), 6 * MIB, "three copies made");
    let refused = snap
        .write(0, &pattern(9, 0, 1, BLOCK), false)
        .expect_err("a snapshot is read-only");
    assert_eq!(sense_of(refused), WRITE_PROTECTED);

    // A clone starts as the snapshot and writes its own copies.
    daemon.call("volume_clone_create", json!({"snapshot": "s", "name": "c"}));
    daemon.call(
        "target_create",
        json!({"iqn": IQN_CLONE, "luns": [{"lun": 0, "volume": "c"}]}),
    );
    let mut clone = connect(&daemon, IQN_CLONE);
    assert_holds(&daemon, &mut clone, Some(1), "the new clone");
    write(&daemon, &mut clone, 3);
    assert_holds(&daemon, &mut clone, Some(3), "the clone after its writes");
    assert_holds(
        &daemon,
        &mut snap,
        Some(1),
        "the snapshot after the clone's writes",
    );

    // UNMAP: a whole segment goes back to the pool, a partial range reads zeros.
    let before_unmap = allocated(&daemon);
    unmap(
        &daemon,
        &mut origin,
        &[(3 * SEGMENT_BLOCKS, SEGMENT_BLOCKS as u32), WRITES[0]],
    );
    let back = read(&daemon, &mut origin, WRITES[0].0, WRITES[0].1);
    assert!(
        back.iter().all(|&b| b == 0),
        "{}",
        daemon.failure("unmapped blocks are not zero")
    );
    let whole = read(&daemon, &mut origin, 3 * SEGMENT_BLOCKS, 16);
    assert!(
        whole.iter().all(|&b| b == 0),
        "{}",
        daemon.failure("an unmapped segment is not zero")
    );
    assert_eq!(
        allocated(&daemon),
        before_unmap - MIB,
        "segment 3 of the origin is free"
    );

    // Growing the volume tells the host.
    daemon.call(
        "volume_resize",
        json!({"name": "t", "size_bytes": 2 * VOLUME_BYTES}),
    );
    let attention = origin
        .session()
        .execute(0, &lunar_tests::initiator::scsi::test_unit_ready(), &[], 0)
        .unwrap_or_else(|e| panic!("{}", daemon.failure(&format!("TEST UNIT READY: {e}"))));
    let sense = attention.sense.expect("a unit attention after the resize");
    assert_eq!((sense.key, sense.asc, sense.ascq), CAPACITY_CHANGED);
    drop(origin);
    let origin = connect(&daemon, IQN_ORIGIN);
    assert_eq!(origin.capacity_bytes(), 2 * VOLUME_BYTES);
    drop((origin, snap, clone));

    // Everything is back after a restart.
    let pool_before = pool(&daemon);
    let stopped = daemon.stop();
    assert!(stopped.status.is_some_and(|s| s.success()), "{stopped:?}");
    daemon = Lunard::start(state.path());
    assert_eq!(
        pool(&daemon),
        pool_before,
        "the same allocation after the restart"
    );
    let mut snap = connect(&daemon, IQN_SNAPSHOT);
    assert_holds(&daemon, &mut snap, Some(1), "the snapshot after a restart");
    let mut clone = connect(&daemon, IQN_CLONE);
    assert_holds(&daemon, &mut clone, Some(3), "the clone after a restart");
    let mut origin = connect(&daemon, IQN_ORIGIN);
    let kept = read(&daemon, &mut origin, WRITES[1].0 + 8, 8);
    assert!(
        kept == pattern(2, WRITES[1].0 + 8, 8, BLOCK),
        "{}",
        daemon.failure("segment 4 of the origin after a restart")
    );
}

#[test]
fn a_full_pool_answers_space_allocation_failed() {
    let pool_file = SparseFile::create(2 * MIB);
    let state = state_dir();
    let daemon = Lunard::start(state.path());
    let path = pool_file.path().to_string_lossy().into_owned();
    daemon.call("device_add", json!({"name": "pool-dev", "path": path}));
    daemon.call("pool_create", json!({"name": "p", "devices": ["pool-dev"]}));
    daemon.call(
        "volume_create",
        json!({"name": "t", "layout": {"thin": {"pool": "p", "size_bytes": 8 * MIB}}}),
    );
    daemon.call(
        "target_create",
        json!({"iqn": IQN_ORIGIN, "luns": [{"lun": 0, "volume": "t"}]}),
    );
    let mut client = connect(&daemon, IQN_ORIGIN);
    for segment in 0..2 {
        let lba = segment * SEGMENT_BLOCKS;
        client
            .write(lba, &pattern(1, lba, 8, BLOCK), false)
            .unwrap_or_else(|e| panic!("{}", daemon.failure(&format!("write {segment}: {e}"))));
    }
    let full = client
        .write(2 * SEGMENT_BLOCKS, &pattern(1, 0, 8, BLOCK), false)
        .expect_err("no slot left");
    // DATA PROTECT, SPACE ALLOCATION FAILED WRITE PROTECT.
    assert_eq!(sense_of(full), (0x07, 0x27, 0x07));
    let back = read(&daemon, &mut client, 0, 8);
    assert!(
        back == pattern(1, 0, 8, BLOCK),
        "{}",
        daemon.failure("earlier data")
    );
}
