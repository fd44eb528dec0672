//! Thin allocation and deallocation served for the data plane: each fault path (allocation,
//! zeroing, a full pool, released slots that wait for a drain, Invalid segments, volumes gone
//! or read-only), batching, durability before the answer, GET LBA STATUS from segment states,
//! and restarts that rebuild the same pool ledgers.

use std::os::unix::fs::FileExt;

use lunar_api::pool::PoolCreateParams;
use lunar_api::volume::{LayoutSpec, ThinSpec, VolumeCreateParams, VolumeDeleteParams};
use lunar_api::Empty;
use lunar_reactor::{ReactorRequest, RequestId, RequestKind};
use lunar_scsi::{BlockIo, BlockOp, ScsiReply};
use lunar_volume::{FaultReason, Location, SegmentEntry, SegmentRef};
use lunar_wire::scsi::{status, Asc, Sense, SenseKey};

use super::tests::{add_device, create_target, lun};
use super::*;
use crate::store;
use crate::testing::{controller, standard_opener, FakePlane, MemoryStore};

pub(super) const MIB: u64 = 1 << 20;
/// The node id of the first thin node of a volume.
pub(super) const NODE: u32 = 1;

pub(super) fn create_pool(
    c: &mut Controller,
    name: &str,
    devices: &[&str],
    segment_bytes: Option<u64>,
) -> Result<lunar_api::pool::PoolInfo, ControlError> {
    c.pool_create(PoolCreateParams {
        name: name.into(),
        devices: devices.iter().map(|d| d.to_string()).collect(),
        segment_bytes,
    })
}

pub(super) fn thin(pool: &str, size_bytes: u64) -> LayoutSpec {
    LayoutSpec::Thin(ThinSpec {
        pool: pool.into(),
        size_bytes,
        segment_bytes: None,
        allocated_bytes: None,
        shared_bytes: None,
    })
}

pub(super) fn create_thin(
    c: &mut Controller,
    name: &str,
    pool: &str,
    size_bytes: u64,
) -> Result<lunar_api::volume::VolumeInfo, ControlError> {
    c.volume_create(VolumeCreateParams {
        name: name.into(),
        layout: thin(pool, size_bytes),
        block_size: None,
    })
}

/// Pool `p0` on disk2 (1 MiB segments) and thin volume `t` of 16 MiB exported as LUN 0.
pub(super) fn thin_setup() -> (Controller, FakePlane, MemoryStore, u64) {
    let (mut c, plane, store) = controller();
    add_device(&mut c, "disk2", "/dev/disk2");
    create_pool(&mut c, "p0", &["disk2"], None).expect("pool");
    let info = create_thin(&mut c, "t", "p0", 16 * MIB).expect("thin volume");
    create_target(&mut c, "iqn.2026-11.dev.lunar:t", vec![lun(0, "t")]).expect("target");
    let uid = u64::from_str_radix(&info.uid, 16).expect("uid");
    (c, plane, store, uid)
}

pub(super) fn segment(index: u64) -> SegmentRef {
    SegmentRef { node: NODE, index }
}

pub(super) fn fault(
    seq: u64,
    volume_uid: u64,
    generation: u64,
    segments: &[u64],
    write_bytes: Option<(u64, u64)>,
) -> ReactorRequest {
    let reason = if write_bytes.is_some() {
        FaultReason::WriteToZero
    } else {
        FaultReason::Invalid
    };
    ReactorRequest {
        id: RequestId { reactor: 0, seq },
        kind: RequestKind::Fault {
            volume_uid,
            generation,
            faults: segments.iter().map(|&i| (segment(i), reason)).collect(),
            write_bytes,
        },
    }
}

pub(super) fn deallocate(
    seq: u64,
    volume_uid: u64,
    generation: u64,
    ranges: &[(u64, u64)],
) -> ReactorRequest {
    ReactorRequest {
        id: RequestId { reactor: 0, seq },
        kind: RequestKind::Deallocate {
            volume_uid,
            generation,
            io: BlockIo {
                op: BlockOp::Unmap {
                    descriptors: ranges.len() as u16,
                },
                lba: ranges.first().map_or(0, |r| r.0 / 512),
                blocks: (ranges.iter().map(|r| r.1).sum::<u64>() / 512) as u32,
                fua: false,
                transfer_len_bytes: 0,
            },
            ranges: ranges.to_vec(),
        },
    }
}

/// Queue `requests`, serve them once, and return the answers given (by sequence number).
pub(super) fn serve(
    c: &mut Controller,
    plane: &FakePlane,
    requests: Vec<ReactorRequest>,
) -> Vec<(u64, ScsiReply)> {
    plane.state().requests = requests;
    c.serve_data_plane();
    std::mem::take(&mut plane.state().answers)
        .into_iter()
        .map(|(id, reply)| (id.seq, reply))
        .collect()
}

/// Serve one request and return its answer.
pub(super) fn serve_one(
    c: &mut Controller,
    plane: &FakePlane,
    request: ReactorRequest,
) -> ScsiReply {
    let seq = request.id.seq;
    let answers = serve(c, plane, vec![request]);
    assert_eq!(answers.len(), 1, "one answer: {answers:?}");
    assert_eq!(answers[0].0, seq);
    answers.into_iter().next().map(|(_, r)| r).expect("answer")
}

pub(super) fn sense_of(reply: &ScsiReply) -> (SenseKey, Asc) {
    assert_eq!(reply.status, status::CHECK_CONDITION, "{reply:?}");
    let sense = Sense::parse(&reply.sense).expect("sense");
    (sense.key, sense.asc)
}

pub(super) fn assert_good(reply: &ScsiReply) {
    assert_eq!(reply.status, status::GOOD, "{reply:?}");
}

pub(super) fn entry(c: &Controller, volume: &str, index: u64) -> SegmentEntry {
    let (_, table) = c
        .config()
        .volume(volume)
        .expect("volume")
        .layout
        .thin_node(NODE)
        .expect("thin node");
    table.entries.get(index).expect("entry")
}

pub(super) fn location(c: &Controller, volume: &str, index: u64) -> Location {
    entry(c, volume, index).location().expect("located")
}

pub(super) fn read_device(c: &Controller, device: &str, offset: u64, len: usize) -> Vec<u8> {
    let file = std::fs::File::from(c.device_file(device).fd.try_clone().expect("dup"));
    let mut bytes = vec![0u8; len];
    file.read_exact_at(&mut bytes, offset).expect("read device");
    bytes
}

pub(super) fn write_device(c: &Controller, device: &str, offset: u64, bytes: &[u8]) {
    let file = std::fs::File::from(c.device_file(device).fd.try_clone().expect("dup"));
    file.write_all_at(bytes, offset).expect("write device");
}

/// The kept ledgers match the tables, and hold together.
pub(super) fn assert_ledgers_consistent(c: &Controller) {
    c.ledgers().check_invariants().expect("ledger invariants");
    let rebuilt = c.rederived_ledgers().expect("rederive");
    assert_eq!(rebuilt.references(), c.ledgers().references());
}

pub(super) fn pool_free_bytes(c: &mut Controller, pool: &str) -> (u64, u64, u64) {
    let list = c.pool_list(Empty {}).expect("pool_list");
    let info = list.pools.iter().find(|p| p.name == pool).expect("pool");
    (info.free_bytes, info.allocated_bytes, info.releasing_bytes)
}

#[test]
fn a_partial_write_to_zero_gets_a_zeroed_slot_saved_and_published_before_the_answer() {
    let (mut c, plane, store, uid) = thin_setup();
    // Old bytes where the first slots will be: they must not show through.
    write_device(&c, "disk2", 0, &vec![0xaa; 2 * MIB as usize]);
    let (saves, publishes) = (store.state().saved.len(), plane.state().published.len());
    let generation = c.generation();
    let reply = serve_one(
        &mut c,
        &plane,
        fault(1, uid, generation, &[0], Some((4096, 8192))),
    );
    assert_good(&reply);
    let disk2 = c.config().device("disk2").expect("disk2").id;
    let slot = Location {
        device: disk2,
        offset_bytes: 0,
    };
    assert_eq!(entry(&c, "t", 0), SegmentEntry::Mapped(slot));
    assert!(read_device(&c, "disk2", 0, MIB as usize)
        .iter()
        .all(|&b| b == 0));
    assert_eq!(store.state().saved.len(), saves + 1);
    assert_eq!(plane.state().published.len(), publishes + 1);
    let saved = store.state().saved.last().cloned().expect("saved");
    assert_eq!(&saved, c.config(), "saved before the answer");
    let published = plane.last();
    let lunar_volume::layout::Layout::Segmented { entries, .. } = &published.volumes[0].layout
    else {
        panic!("not a segment table: {:?}", published.volumes[0].layout);
    };
    assert_eq!(entries.get(0), Some(SegmentEntry::Mapped(slot)));
    assert_eq!(pool_free_bytes(&mut c, "p0"), (1023 * MIB, MIB, 0));
    assert_ledgers_consistent(&c);
}

#[test]
fn a_slot_never_shows_a_previous_owners_bytes_even_under_a_whole_segment_write() {
    let (mut c, plane, _, uid) = thin_setup();
    write_device(&c, "disk2", 0, &vec![0xaa; MIB as usize]);
    let generation = c.generation();
    let reply = serve_one(
        &mut c,
        &plane,
        fault(1, uid, generation, &[3], Some((3 * MIB, MIB))),
    );
    assert_good(&reply);
    let slot = location(&c, "t", 3);
    assert_eq!(slot.offset_bytes, 0);
    assert!(
        read_device(&c, "disk2", 0, MIB as usize)
            .iter()
            .all(|&b| b == 0),
        "the write may never land (a crash): the old bytes are gone before the slot is mapped"
    );
}

#[test]
fn every_fault_of_a_request_is_one_save_and_one_publish() {
    let (mut c, plane, store, uid) = thin_setup();
    let (saves, publishes) = (store.state().saved.len(), plane.state().published.len());
    let generation = c.generation();
    let reply = serve_one(
        &mut c,
        &plane,
        fault(1, uid, generation, &[1, 2, 5], Some((MIB + 512, 4 * MIB))),
    );
    assert_good(&reply);
    assert_eq!(store.state().saved.len(), saves + 1);
    assert_eq!(plane.state().published.len(), publishes + 1);
    let slots: Vec<Location> = [1, 2, 5].iter().map(|&i| location(&c, "t", i)).collect();
    assert_eq!(slots.len(), 3);
    assert!(slots[0] != slots[1] && slots[1] != slots[2] && slots[0] != slots[2]);
    assert_eq!(
        entry(&c, "t", 3),
        SegmentEntry::Zero,
        "not faulted, not allocated"
    );
    // A fault already resolved by a newer table (two writes raced) changes nothing.
    let generation = c.generation();
    let again = serve_one(
        &mut c,
        &plane,
        fault(2, uid, generation - 1, &[1], Some((MIB, 512))),
    );
    assert_good(&again);
    assert_eq!(store.state().saved.len(), saves + 1);
    assert_ledgers_consistent(&c);
}

#[test]
fn reads_never_allocate() {
    let (mut c, plane, store, uid) = thin_setup();
    let saves = store.state().saved.len();
    let generation = c.generation();
    let reply = serve_one(&mut c, &plane, fault(1, uid, generation, &[0], None));
    assert_good(&reply);
    assert_eq!(entry(&c, "t", 0), SegmentEntry::Zero);
    assert_eq!(store.state().saved.len(), saves);
}

#[test]
fn a_full_pool_answers_space_allocation_failed_and_leaks_nothing() {
    let (mut c, plane, store) = controller();
    add_device(&mut c, "small", "/dev/pool4m");
    create_pool(&mut c, "tiny", &["small"], None).expect("pool");
    let info = create_thin(&mut c, "t", "tiny", 16 * MIB).expect("thin");
    let uid = u64::from_str_radix(&info.uid, 16).expect("uid");
    let generation = c.generation();
    let filled = serve_one(
        &mut c,
        &plane,
        fault(1, uid, generation, &[0, 1, 2], Some((0, 3 * MIB))),
    );
    assert_good(&filled);
    let saves = store.state().saved.len();
    let generation = c.generation();
    let too_many = serve_one(
        &mut c,
        &plane,
        fault(2, uid, generation, &[3, 4], Some((3 * MIB, 2 * MIB))),
    );
    assert_eq!(
        sense_of(&too_many),
        (
            SenseKey::DataProtect,
            Asc::SPACE_ALLOCATION_FAILED_WRITE_PROTECT
        )
    );
    assert_eq!(store.state().saved.len(), saves, "nothing saved");
    assert_eq!(entry(&c, "t", 3), SegmentEntry::Zero);
    assert_eq!(pool_free_bytes(&mut c, "tiny"), (MIB, 3 * MIB, 0));
    let generation = c.generation();
    let last = serve_one(
        &mut c,
        &plane,
        fault(3, uid, generation, &[3], Some((3 * MIB, 512))),
    );
    assert_good(&last);
    let generation = c.generation();
    let full = serve_one(
        &mut c,
        &plane,
        fault(4, uid, generation, &[4], Some((4 * MIB, 512))),
    );
    assert_eq!(
        sense_of(&full).1,
        Asc::SPACE_ALLOCATION_FAILED_WRITE_PROTECT
    );
    assert_ledgers_consistent(&c);
}

#[test]
fn a_failed_save_gives_the_slots_back_and_the_host_a_hardware_error() {
    let (mut c, plane, store, uid) = thin_setup();
    let before = c.config().clone();
    store.state().fail = true;
    let generation = c.generation();
    let reply = serve_one(
        &mut c,
        &plane,
        fault(1, uid, generation, &[0, 1], Some((0, 512))),
    );
    assert_eq!(
        sense_of(&reply),
        (SenseKey::HardwareError, Asc::INTERNAL_TARGET_FAILURE)
    );
    assert_eq!(c.config(), &before);
    assert_eq!(pool_free_bytes(&mut c, "p0"), (1024 * MIB, 0, 0));
    store.state().fail = false;
    let generation = c.generation();
    let retried = serve_one(
        &mut c,
        &plane,
        fault(2, uid, generation, &[0], Some((0, 512))),
    );
    assert_good(&retried);
    assert_eq!(
        location(&c, "t", 0).offset_bytes,
        0,
        "the slot given back is reused"
    );
    assert_ledgers_consistent(&c);
}

#[test]
fn faults_for_gone_or_read_only_volumes_get_their_sense() {
    let (mut c, plane, _, uid) = thin_setup();
    let generation = c.generation();
    let gone = serve_one(
        &mut c,
        &plane,
        fault(1, uid ^ 1, generation, &[0], Some((0, 512))),
    );
    assert_eq!(
        sense_of(&gone),
        (SenseKey::IllegalRequest, Asc::LOGICAL_UNIT_NOT_SUPPORTED)
    );
    let generation = c.generation();
    let dealloc_gone = serve_one(
        &mut c,
        &plane,
        deallocate(2, uid ^ 1, generation, &[(0, 512)]),
    );
    assert_eq!(sense_of(&dealloc_gone).1, Asc::LOGICAL_UNIT_NOT_SUPPORTED);
    c.volume_snapshot_create(lunar_api::volume::VolumeSnapshotCreateParams {
        volume: "t".into(),
        name: "s".into(),
    })
    .expect("snapshot");
    let snapshot = c.config().volume("s").expect("s").uid.0;
    let generation = c.generation();
    let write = serve_one(
        &mut c,
        &plane,
        fault(3, snapshot, generation, &[0], Some((0, 512))),
    );
    assert_eq!(
        sense_of(&write),
        (SenseKey::DataProtect, Asc::WRITE_PROTECTED)
    );
    let generation = c.generation();
    let unmap = serve_one(
        &mut c,
        &plane,
        deallocate(4, snapshot, generation, &[(0, 512)]),
    );
    assert_eq!(
        sense_of(&unmap),
        (SenseKey::DataProtect, Asc::WRITE_PROTECTED)
    );
    let generation = c.generation();
    let read = serve_one(&mut c, &plane, fault(5, snapshot, generation, &[0], None));
    assert_good(&read);
}

#[test]
fn invalid_segments_keep_the_command_until_they_change() {
    let (mut c, plane, _, uid) = thin_setup();
    c.set_segment("t", segment(2), SegmentEntry::Invalid);
    let generation = c.generation();
    let answers = serve(
        &mut c,
        &plane,
        vec![fault(1, uid, generation, &[2], Some((2 * MIB, 512)))],
    );
    assert!(answers.is_empty(), "{answers:?}");
    assert_eq!(c.deferred_len(), 1);
    assert!(
        serve(&mut c, &plane, Vec::new()).is_empty(),
        "still Invalid"
    );
    c.set_segment("t", segment(2), SegmentEntry::Zero);
    let answers = serve(&mut c, &plane, Vec::new());
    assert_eq!(answers.len(), 1);
    assert_good(&answers[0].1);
    assert!(matches!(entry(&c, "t", 2), SegmentEntry::Mapped(_)));
    assert_eq!(c.deferred_len(), 0);
}

#[test]
fn released_slots_wait_for_the_drain_and_so_does_a_fault_that_needs_them() {
    let (mut c, plane, _) = controller();
    add_device(&mut c, "small", "/dev/pool4m");
    create_pool(&mut c, "tiny", &["small"], None).expect("pool");
    let info = create_thin(&mut c, "t", "tiny", 8 * MIB).expect("thin");
    let uid = u64::from_str_radix(&info.uid, 16).expect("uid");
    let generation = c.generation();
    let filled = serve_one(
        &mut c,
        &plane,
        fault(1, uid, generation, &[0, 1, 2, 3], Some((0, 4 * MIB))),
    );
    assert_good(&filled);
    // A write planned on the current generation is still in flight.
    let pinned = c.generation();
    plane.state().in_flight_on = Some(pinned);
    let unmapped = serve_one(&mut c, &plane, deallocate(2, uid, pinned, &[(MIB, MIB)]));
    assert_good(&unmapped);
    assert_eq!(entry(&c, "t", 1), SegmentEntry::Zero);
    assert_eq!(pool_free_bytes(&mut c, "tiny"), (0, 3 * MIB, MIB));
    // Planned on the pinned generation: plan again first (it holds up the drain itself).
    let early = serve_one(
        &mut c,
        &plane,
        fault(3, uid, pinned, &[4], Some((4 * MIB, 512))),
    );
    assert_good(&early);
    assert_eq!(entry(&c, "t", 4), SegmentEntry::Zero);
    // Planned on the newest generation: wait for the drain.
    let generation = c.generation();
    let waiting = serve(
        &mut c,
        &plane,
        vec![fault(4, uid, generation, &[4], Some((4 * MIB, 512)))],
    );
    assert!(waiting.is_empty(), "{waiting:?}");
    assert_eq!(c.deferred_len(), 1);
    plane.state().in_flight_on = None;
    let answers = serve(&mut c, &plane, Vec::new());
    assert_eq!(answers.len(), 1);
    assert_good(&answers[0].1);
    assert!(matches!(entry(&c, "t", 4), SegmentEntry::Mapped(_)));
    assert_eq!(pool_free_bytes(&mut c, "tiny"), (0, 4 * MIB, 0));
    assert_ledgers_consistent(&c);
}

#[test]
fn deallocating_whole_segments_frees_their_slots_after_the_drain() {
    let (mut c, plane, store, uid) = thin_setup();
    let generation = c.generation();
    assert_good(&serve_one(
        &mut c,
        &plane,
        fault(1, uid, generation, &[0, 1, 2], Some((0, 3 * MIB))),
    ));
    let pinned = c.generation();
    plane.state().in_flight_on = Some(pinned);
    let saves = store.state().saved.len();
    let reply = serve_one(
        &mut c,
        &plane,
        deallocate(2, uid, pinned, &[(0, MIB), (2 * MIB, MIB)]),
    );
    assert_good(&reply);
    assert_eq!(
        store.state().saved.len(),
        saves + 1,
        "one save for the request"
    );
    assert_eq!(entry(&c, "t", 0), SegmentEntry::Zero);
    assert!(matches!(entry(&c, "t", 1), SegmentEntry::Mapped(_)));
    assert_eq!(entry(&c, "t", 2), SegmentEntry::Zero);
    assert_eq!(pool_free_bytes(&mut c, "p0"), (1021 * MIB, MIB, 2 * MIB));
    plane.state().in_flight_on = None;
    c.serve_data_plane();
    assert_eq!(pool_free_bytes(&mut c, "p0"), (1023 * MIB, MIB, 0));
    assert_ledgers_consistent(&c);
    // Deallocating Zero segments changes nothing.
    let saves = store.state().saved.len();
    let generation = c.generation();
    assert_good(&serve_one(
        &mut c,
        &plane,
        deallocate(3, uid, generation, &[(4 * MIB, 4 * MIB)]),
    ));
    assert_eq!(store.state().saved.len(), saves);
}

#[test]
fn deallocating_part_of_a_segment_zeroes_those_bytes_in_place() {
    let (mut c, plane, store, uid) = thin_setup();
    let generation = c.generation();
    assert_good(&serve_one(
        &mut c,
        &plane,
        fault(1, uid, generation, &[1], Some((MIB, MIB))),
    ));
    let slot = location(&c, "t", 1);
    write_device(&c, "disk2", slot.offset_bytes, &vec![0x5a; MIB as usize]);
    let saves = store.state().saved.len();
    let generation = c.generation();
    assert_good(&serve_one(
        &mut c,
        &plane,
        deallocate(2, uid, generation, &[(MIB + 4096, 8192)]),
    ));
    assert_eq!(
        entry(&c, "t", 1),
        SegmentEntry::Mapped(slot),
        "stays allocated"
    );
    assert_eq!(store.state().saved.len(), saves, "no table change");
    let bytes = read_device(&c, "disk2", slot.offset_bytes, 16384);
    assert!(bytes[..4096].iter().all(|&b| b == 0x5a));
    assert!(bytes[4096..12288].iter().all(|&b| b == 0));
    assert!(bytes[12288..].iter().all(|&b| b == 0x5a));
}

/// The descriptors of a GET LBA STATUS reply: (lba, blocks, provisioning status).
pub(super) fn lba_status(reply: &ScsiReply) -> Vec<(u64, u32, u8)> {
    assert_good(reply);
    reply
        .data_in
        .get(8..)
        .unwrap_or_default()
        .chunks_exact(16)
        .map(|d| {
            let lba = u64::from_be_bytes(d[0..8].try_into().expect("8 bytes"));
            let blocks = u32::from_be_bytes(d[8..12].try_into().expect("4 bytes"));
            (lba, blocks, d[12] & 0x0f)
        })
        .collect()
}

#[test]
fn get_lba_status_reads_the_segment_states() {
    let (mut c, plane, _, uid) = thin_setup();
    let generation = c.generation();
    assert_good(&serve_one(
        &mut c,
        &plane,
        fault(1, uid, generation, &[1, 2], Some((MIB, 2 * MIB))),
    ));
    let blocks_per_segment = (MIB / 512) as u32;
    let request = ReactorRequest {
        id: RequestId { reactor: 0, seq: 9 },
        kind: RequestKind::AllocationStatus {
            io: BlockIo {
                op: BlockOp::GetLbaStatus,
                lba: 0,
                blocks: 8 * blocks_per_segment,
                fua: false,
                transfer_len_bytes: 4096,
            },
            block_size: 512,
            volume_uid: uid,
            ranges: Vec::new(),
        },
    };
    let reply = serve_one(&mut c, &plane, request);
    let b = u64::from(blocks_per_segment);
    assert_eq!(
        lba_status(&reply),
        vec![
            (0, blocks_per_segment, 1),
            (b, 2 * blocks_per_segment, 0),
            (3 * b, 5 * blocks_per_segment, 1),
        ]
    );
}

#[test]
fn a_restart_rebuilds_the_same_allocations_and_references() {
    let (mut c, plane, store, uid) = thin_setup();
    let generation = c.generation();
    assert_good(&serve_one(
        &mut c,
        &plane,
        fault(1, uid, generation, &[0, 1, 3], Some((0, 4 * MIB))),
    ));
    c.volume_snapshot_create(lunar_api::volume::VolumeSnapshotCreateParams {
        volume: "t".into(),
        name: "s".into(),
    })
    .expect("snapshot");
    let generation = c.generation();
    assert_good(&serve_one(
        &mut c,
        &plane,
        fault(2, uid, generation, &[0, 7], Some((0, 512))),
    ));
    let saved = store.state().saved.last().cloned().expect("saved");
    let bytes = store::encode(&saved).expect("encode");
    let decoded = store::decode(&bytes).expect("decode");
    assert_eq!(&decoded, c.config());
    let devices = open_devices(&decoded, &standard_opener()).expect("devices");
    let restarted = Controller::new(
        decoded,
        devices,
        Parts {
            opener: Box::new(standard_opener()),
            publisher: Box::new(FakePlane::default()),
            store: Box::new(MemoryStore::default()),
            about: About::default(),
        },
    )
    .expect("restart");
    assert_eq!(restarted.ledgers().references(), c.ledgers().references());
    let refs = restarted.ledgers().references();
    let pool = &refs["p0"];
    assert_eq!(
        pool.values().filter(|&&n| n == 2).count(),
        2,
        "segments 1 and 3 shared"
    );
    assert_eq!(
        pool.values().filter(|&&n| n == 1).count(),
        3,
        "old and new copies of 0, and 7"
    );
    restarted.ledgers().check_invariants().expect("invariants");
}

#[test]
fn an_empty_terabyte_thin_volume_keeps_the_state_file_small() {
    let (mut c, _, store) = controller();
    add_device(&mut c, "disk2", "/dev/disk2");
    create_pool(&mut c, "p0", &["disk2"], None).expect("pool");
    create_thin(&mut c, "big", "p0", 1 << 40).expect("1 TiB thin volume over a 1 GiB pool");
    let saved = store.state().saved.last().cloned().expect("saved");
    let bytes = store::encode(&saved).expect("encode");
    assert!(bytes.len() < 2048, "{} bytes", bytes.len());
}

#[test]
fn deleting_a_thin_volume_frees_its_slots() {
    let (mut c, plane, _, uid) = thin_setup();
    let generation = c.generation();
    assert_good(&serve_one(
        &mut c,
        &plane,
        fault(1, uid, generation, &[0, 1], Some((0, 512))),
    ));
    c.target_delete(lunar_api::target::TargetDeleteParams {
        iqn: "iqn.2026-11.dev.lunar:t".into(),
    })
    .expect("target_delete");
    c.volume_delete(VolumeDeleteParams { name: "t".into() })
        .expect("volume_delete");
    assert_eq!(pool_free_bytes(&mut c, "p0"), (1024 * MIB, 0, 0));
    assert_ledgers_consistent(&c);
}

#[test]
fn inconsistent_tables_are_refused_at_start() {
    let (mut c, plane, _, uid) = thin_setup();
    let generation = c.generation();
    assert_good(&serve_one(
        &mut c,
        &plane,
        fault(1, uid, generation, &[0], Some((0, 512))),
    ));
    let slot = location(&c, "t", 0);
    let mut twice = c.config().clone();
    let mut copy = twice.volumes[0].clone();
    copy.name = "u".into();
    copy.uid = crate::config::Uid(copy.uid.0 ^ 1);
    twice.volumes.push(copy);
    let devices = open_devices(&twice, &standard_opener()).expect("devices");
    let error = check_config(&twice, &devices).expect_err("shared writable slot");
    assert!(
        error.to_string().contains("writable but its slot"),
        "{error}"
    );
    let mut outside = c.config().clone();
    if let crate::config::LayoutConfig::Thin { table, .. } = &mut outside.volumes[0].layout {
        table.entries = table
            .entries
            .with_entry(
                5,
                SegmentEntry::Mapped(Location {
                    device: slot.device,
                    offset_bytes: 4096,
                }),
            )
            .expect("set");
    }
    let error = check_config(&outside, &devices).expect_err("misaligned slot");
    assert!(
        error.to_string().contains("not a slot of the pool"),
        "{error}"
    );
}

#[test]
fn deallocating_a_mirror_of_extents_zeroes_every_writable_leg() {
    let (mut c, plane, _) = controller();
    add_device(&mut c, "disk1", "/dev/disk1");
    add_device(&mut c, "disk2", "/dev/disk2");
    let layout: LayoutSpec = serde_json::from_value(serde_json::json!({"mirror": {"legs": [
        {"linear": {"device": "disk1", "offset_bytes": 1048576, "size_bytes": 4194304}},
        {"linear": {"device": "disk2", "offset_bytes": 0, "size_bytes": 4194304}}]}}))
    .expect("layout");
    let info = c
        .volume_create(VolumeCreateParams {
            name: "m".into(),
            layout,
            block_size: None,
        })
        .expect("mirror");
    let uid = u64::from_str_radix(&info.uid, 16).expect("uid");
    write_device(&c, "disk1", MIB, &vec![0x77; 4 * MIB as usize]);
    write_device(&c, "disk2", 0, &vec![0x77; 4 * MIB as usize]);
    let generation = c.generation();
    assert_good(&serve_one(
        &mut c,
        &plane,
        deallocate(1, uid, generation, &[(8192, 4096)]),
    ));
    for (device, base) in [("disk1", MIB), ("disk2", 0)] {
        let bytes = read_device(&c, device, base, 16384);
        assert!(bytes[..8192].iter().all(|&b| b == 0x77), "{device}");
        assert!(bytes[8192..12288].iter().all(|&b| b == 0), "{device}");
        assert!(bytes[12288..].iter().all(|&b| b == 0x77), "{device}");
    }
    let beyond = serve_one(
        &mut c,
        &plane,
        deallocate(2, uid, generation, &[(4 * MIB, 4096)]),
    );
    assert_eq!(
        sense_of(&beyond),
        (SenseKey::HardwareError, Asc::INTERNAL_TARGET_FAILURE)
    );
}

#[test]
fn a_migration_onto_a_thin_layout_allocates_what_it_copies() {
    let (mut c, plane, _) = controller();
    add_device(&mut c, "disk1", "/dev/disk1");
    add_device(&mut c, "disk2", "/dev/disk2");
    create_pool(&mut c, "p", &["disk2"], None).expect("pool");
    c.volume_create(VolumeCreateParams {
        name: "v".into(),
        layout: super::tests::linear("disk1", 0, Some(4 * MIB)),
        block_size: None,
    })
    .expect("linear volume");
    write_device(&c, "disk1", MIB + 4096, &[0x33; 4096]);
    let task = c
        .volume_migrate(lunar_api::mirror::VolumeMigrateParams {
            name: "v".into(),
            layout: thin("p", 4 * MIB),
        })
        .expect("migrate");
    let mut turns = 0;
    while c
        .task_get(lunar_api::task::TaskGetParams { id: task.id })
        .expect("task")
        .state
        == lunar_api::task::TaskState::Running
    {
        turns += 1;
        assert!(turns < 1000, "the migration makes no progress");
        c.run_tasks();
        serve(&mut c, &plane, Vec::new());
    }
    let done = c
        .task_get(lunar_api::task::TaskGetParams { id: task.id })
        .expect("task");
    assert_eq!(done.state, lunar_api::task::TaskState::Done, "{done:?}");
    let (_, table) = c
        .config()
        .volume("v")
        .expect("v")
        .layout
        .thin_node(NODE)
        .map(|(pool, table)| (pool.to_string(), table.clone()))
        .expect("thin now");
    let slot = table
        .entries
        .get(1)
        .and_then(|e| e.location())
        .expect("segment 1 copied");
    let bytes = read_device(&c, "disk2", slot.offset_bytes, 3 * 4096);
    assert!(bytes[..4096].iter().all(|&b| b == 0));
    assert!(bytes[4096..8192].iter().all(|&b| b == 0x33));
    assert_ledgers_consistent(&c);
}
