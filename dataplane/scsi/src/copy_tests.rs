//! Tests of EXTENDED COPY and RECEIVE COPY RESULTS, fed as CDBs with parameter lists built like
//! an initiator builds them.

use lunar_wire::scsi::{opcode, status, Asc, SenseKey};
use proptest::prelude::*;

use super::*;
use crate::model::{decide, NexusState};
use crate::test_support::*;

fn xcopy_cdb(param_len: u32) -> [u8; 16] {
    let mut cdb = [0u8; 16];
    cdb[0] = opcode::EXTENDED_COPY;
    cdb[10..14].copy_from_slice(&param_len.to_be_bytes());
    cdb
}

fn results_cdb(service_action: u8, list_id: u8, alloc_len: u32) -> [u8; 16] {
    let mut cdb = [0u8; 16];
    cdb[0] = opcode::RECEIVE_COPY_RESULTS;
    cdb[1] = service_action;
    cdb[2] = list_id;
    cdb[10..14].copy_from_slice(&alloc_len.to_be_bytes());
    cdb
}

/// An identification target descriptor naming `uid`'s NAA designator.
fn target(uid: u64, code: u8) -> Vec<u8> {
    let mut d = vec![0u8; 32];
    d[0] = code;
    d[4..8].copy_from_slice(&NAA_DESIGNATOR_HEADER);
    d[8..24].copy_from_slice(&naa_designator(uid));
    d[29..32].copy_from_slice(&BLOCK_SIZE.to_be_bytes()[1..]);
    d
}

fn segment(src_index: u16, dst_index: u16, blocks: u16, src: u64, dst: u64) -> Vec<u8> {
    let mut d = vec![0u8; 28];
    d[0] = SEGMENT_BLOCK_TO_BLOCK;
    d[2..4].copy_from_slice(&SEGMENT_BODY_LEN_BYTES.to_be_bytes());
    d[4..6].copy_from_slice(&src_index.to_be_bytes());
    d[6..8].copy_from_slice(&dst_index.to_be_bytes());
    d[10..12].copy_from_slice(&blocks.to_be_bytes());
    d[12..20].copy_from_slice(&src.to_be_bytes());
    d[20..28].copy_from_slice(&dst.to_be_bytes());
    d
}

fn param_list(list_id: u8, usage: u8, targets: &[Vec<u8>], segments: &[Vec<u8>]) -> Vec<u8> {
    let targets: Vec<u8> = targets.concat();
    let segments: Vec<u8> = segments.concat();
    let mut list = vec![0u8; 16];
    list[0] = list_id;
    list[1] = usage << 3;
    list[2..4].copy_from_slice(&(targets.len() as u16).to_be_bytes());
    list[8..12].copy_from_slice(&(segments.len() as u32).to_be_bytes());
    list.extend_from_slice(&targets);
    list.extend_from_slice(&segments);
    list
}

fn ours() -> Vec<u8> {
    target(lu().volume_uid, TARGET_IDENTIFICATION)
}

fn send(nexus: &mut NexusState, cdb: &[u8], data_out: &[u8]) -> crate::model::Decision {
    decide(
        Some(&lu()),
        &[0],
        nexus,
        cdb,
        data_out.len() as u32,
        data_out,
    )
}

#[test]
fn a_copy_within_the_logical_unit_becomes_one_io() {
    let list = param_list(
        1,
        0b10,
        &[ours()],
        &[
            segment(0, 0, 100, 0, 500),
            segment(0, 0, 0, 0, 0),
            segment(0, 0, 8, 10, 20),
        ],
    );
    let mut nexus = ready_nexus();
    let io = io_of(send(&mut nexus, &xcopy_cdb(list.len() as u32), &list));
    assert_eq!(
        io.op,
        BlockOp::ExtendedCopy {
            segments: 3,
            list_id: 1,
            held: false
        }
    );
    assert_eq!((io.lba, io.blocks), (500, 108));
    assert_eq!(io.transfer_len_bytes, list.len() as u32);
    let segments: Vec<_> = copy_segments(&list).collect();
    assert_eq!(segments, vec![(0, 500, 100), (10, 20, 8)]);
}

#[test]
fn held_results_report_the_copy_status() {
    let mut nexus = ready_nexus();
    let sense = sense_of(send(&mut nexus, &results_cdb(0, 1, 64), &[]));
    assert_eq!(sense.field_pointer.map(|p| p.byte), Some(2), "no such copy");
    let list = param_list(1, 0b00, &[ours()], &[segment(0, 0, 4, 0, 8)]);
    let io = io_of(send(&mut nexus, &xcopy_cdb(list.len() as u32), &list));
    let data = data_of(send(&mut nexus, &results_cdb(0, 1, 64), &[]));
    assert_eq!(data[4], COPY_IN_PROGRESS);
    nexus.copy_finished(&io, true);
    let data = data_of(send(&mut nexus, &results_cdb(0, 1, 64), &[]));
    assert_eq!(&data[0..4], &8u32.to_be_bytes());
    assert_eq!(data[4], COPY_COMPLETED);
    assert_eq!(&data[5..7], &1u16.to_be_bytes());
    assert_eq!(data[7], TRANSFER_UNITS_KIB);
    assert_eq!(&data[8..12], &2u32.to_be_bytes(), "4 blocks of 512 bytes");
    nexus.copy_finished(&io, false);
    assert_eq!(
        data_of(send(&mut nexus, &results_cdb(0, 1, 64), &[]))[4],
        COPY_FAILED
    );
    // Only a bounded number of results is held.
    for list_id in 10..20 {
        let list = param_list(list_id, 0b00, &[ours()], &[segment(0, 0, 0, 0, 0)]);
        let reply = reply_of(send(&mut nexus, &xcopy_cdb(list.len() as u32), &list));
        assert_eq!(reply.status, status::GOOD);
    }
    assert_eq!(nexus.held_copies.len(), HELD_COPY_RESULTS_MAX);
    assert_eq!(
        data_of(send(&mut nexus, &results_cdb(0, 19, 64), &[]))[4],
        COPY_COMPLETED
    );
    sense_of(send(&mut nexus, &results_cdb(0, 1, 64), &[]));
}

#[test]
fn operating_parameters_describe_the_limits() {
    let data = data_of(send(&mut ready_nexus(), &results_cdb(3, 0, 1024), &[]));
    assert_eq!(data.len(), 46);
    assert_eq!(&data[0..4], &42u32.to_be_bytes());
    assert_eq!(&data[8..10], &MAX_TARGET_DESCRIPTORS.to_be_bytes());
    assert_eq!(&data[10..12], &MAX_SEGMENT_DESCRIPTORS.to_be_bytes());
    assert_eq!(&data[12..16], &MAX_DESCRIPTOR_LIST_LEN_BYTES.to_be_bytes());
    assert_eq!(data[37], 9, "granularity: one 512-byte block");
    assert_eq!(&data[43..46], &[2, 0x02, 0xe4]);
}

#[test]
fn parameter_list_errors() {
    let mut nexus = ready_nexus();
    assert_eq!(
        reply_of(send(&mut nexus, &xcopy_cdb(0), &[])).status,
        status::GOOD
    );
    let list = param_list(1, 0b10, &[ours()], &[segment(0, 0, 8, 0, 100)]);
    for len in [10, 16 + 31, list.len() - 1] {
        let sense = sense_of(send(&mut nexus, &xcopy_cdb(len as u32), &list[..len]));
        assert_eq!(sense.asc, Asc::PARAMETER_LIST_LENGTH_ERROR, "{len}");
    }
    // Too many descriptors of each kind, and a descriptor list over the limit.
    let many_targets = param_list(
        1,
        0b10,
        &[ours(), ours(), ours()],
        &[segment(0, 0, 1, 0, 1)],
    );
    let sense = sense_of(send(
        &mut nexus,
        &xcopy_cdb(many_targets.len() as u32),
        &many_targets,
    ));
    assert_eq!(sense.asc, Asc::new(0x26, 0x06));
    let segments: Vec<Vec<u8>> = (0..65).map(|_| segment(0, 0, 1, 0, 1)).collect();
    let many_segments = param_list(1, 0b10, &[ours()], &segments);
    let sense = sense_of(send(
        &mut nexus,
        &xcopy_cdb(many_segments.len() as u32),
        &many_segments,
    ));
    assert_eq!(sense.asc, Asc::new(0x26, 0x08));
    let too_long = param_list(1, 0b10, &[ours(), ours(), ours()], &segments);
    let sense = sense_of(send(
        &mut nexus,
        &xcopy_cdb(too_long.len() as u32),
        &too_long,
    ));
    assert_eq!(sense.asc, Asc::PARAMETER_LIST_LENGTH_ERROR);
    // Unsupported descriptor types.
    let fc = param_list(
        1,
        0b10,
        &[target(lu().volume_uid, 0xe0)],
        &[segment(0, 0, 1, 0, 1)],
    );
    let sense = sense_of(send(&mut nexus, &xcopy_cdb(fc.len() as u32), &fc));
    assert_eq!(sense.asc, Asc::new(0x26, 0x07));
    let mut stream = segment(0, 0, 1, 0, 1);
    stream[0] = 0x03;
    stream.truncate(20);
    let list = param_list(1, 0b10, &[ours()], &[stream]);
    let sense = sense_of(send(&mut nexus, &xcopy_cdb(list.len() as u32), &list));
    assert_eq!(sense.asc, Asc::new(0x26, 0x09));
}

#[test]
fn copy_aborted_for_unreachable_targets_and_ranges() {
    let mut nexus = ready_nexus();
    let cases = [
        param_list(
            1,
            0b10,
            &[target(99, TARGET_IDENTIFICATION)],
            &[segment(0, 0, 1, 0, 1)],
        ),
        param_list(1, 0b10, &[ours()], &[segment(0, 1, 1, 0, 1)]),
        param_list(1, 0b10, &[ours()], &[segment(0, 0, 2, 0, NUM_BLOCKS - 1)]),
        param_list(1, 0b10, &[ours()], &[segment(0, 0, 2, u64::MAX, 0)]),
    ];
    for list in cases {
        let sense = sense_of(send(&mut nexus, &xcopy_cdb(list.len() as u32), &list));
        assert_eq!(sense.key, SenseKey::CopyAborted);
    }
    // The LU ID TYPE of a target descriptor is ignored.
    let mut target = ours();
    target[1] = 0xc0;
    let list = param_list(1, 0b10, &[target], &[segment(0, 0, 1, 0, 1)]);
    io_of(send(&mut nexus, &xcopy_cdb(list.len() as u32), &list));
    // Read-only: write protected.
    let sense = sense_of(decide(
        Some(&read_only_lu()),
        &[0],
        &mut nexus,
        &xcopy_cdb(list.len() as u32),
        list.len() as u32,
        &list,
    ));
    assert_eq!(sense.asc, Asc::WRITE_PROTECTED);
}

proptest! {
    #[test]
    fn copy_segments_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        for (_, _, blocks) in copy_segments(&bytes) {
            prop_assert!(blocks > 0);
        }
    }

    #[test]
    fn extended_copy_never_panics_and_stays_on_the_medium(
        targets in 0usize..4,
        raw in proptest::collection::vec((0u16..3, 0u16..3, any::<u16>(), 0u64..1200, 0u64..1200), 0..70),
        cut in any::<usize>(),
        usage in 0u8..4,
    ) {
        let targets: Vec<Vec<u8>> = (0..targets).map(|_| ours()).collect();
        let segments: Vec<Vec<u8>> = raw
            .into_iter()
            .map(|(s, d, blocks, src, dst)| segment(s, d, blocks % 300, src, dst))
            .collect();
        let mut list = param_list(3, usage, &targets, &segments);
        list.truncate(cut % (list.len() + 1));
        let mut nexus = ready_nexus();
        if let crate::model::Decision::Io(io) = send(&mut nexus, &xcopy_cdb(list.len() as u32), &list) {
            let mut total = 0u64;
            for (src, dst, blocks) in copy_segments(&list) {
                prop_assert!(src + u64::from(blocks) <= NUM_BLOCKS);
                prop_assert!(dst + u64::from(blocks) <= NUM_BLOCKS);
                total += u64::from(blocks);
            }
            prop_assert_eq!(total, u64::from(io.blocks));
        }
    }
}
