//! Tests of WRITE SAME, UNMAP and GET LBA STATUS, fed as CDBs, and of the helpers the reactor
//! uses (`unmap_ranges`, `lba_status_reply`).

use lunar_wire::scsi::{opcode, status, Asc, SenseKey};
use proptest::prelude::*;

use super::*;
use crate::model::Decision;
use crate::test_support::*;

fn ws10(flags: u8, lba: u32, blocks: u16) -> [u8; 10] {
    cdb10(opcode::WRITE_SAME_10, flags, lba, blocks)
}

fn ws16(flags: u8, lba: u64, blocks: u32) -> [u8; 16] {
    cdb16(opcode::WRITE_SAME_16, flags, lba, blocks)
}

fn run_with(lu: &LogicalUnit, cdb: &[u8], data_out: &[u8]) -> Decision {
    crate::model::decide(
        Some(lu),
        &[0],
        &mut ready_nexus(),
        cdb,
        data_out.len() as u32,
        data_out,
    )
}

fn unmap_cdb(param_len: u16) -> [u8; 10] {
    let mut cdb = [0u8; 10];
    cdb[0] = opcode::UNMAP;
    cdb[7..9].copy_from_slice(&param_len.to_be_bytes());
    cdb
}

fn unmap_list(ranges: &[(u64, u32)]) -> Vec<u8> {
    let mut list = vec![0u8; 8];
    let descriptors_len = (ranges.len() * 16) as u16;
    list[0..2].copy_from_slice(&(descriptors_len + 6).to_be_bytes());
    list[2..4].copy_from_slice(&descriptors_len.to_be_bytes());
    for &(lba, blocks) in ranges {
        list.extend_from_slice(&lba.to_be_bytes());
        list.extend_from_slice(&blocks.to_be_bytes());
        list.extend_from_slice(&[0; 4]);
    }
    list
}

fn get_lba_status_cdb(lba: u64, alloc_len: u32) -> [u8; 16] {
    let mut cdb = cdb16(opcode::SERVICE_ACTION_IN_16, 0x12, lba, 0);
    cdb[10..14].copy_from_slice(&alloc_len.to_be_bytes());
    cdb
}

#[test]
fn write_same_of_a_pattern_writes_it() {
    let pattern = vec![0xa6u8; BLOCK_SIZE as usize];
    let io = io_of(run_with(&lu(), &ws10(0, 10, 20), &pattern));
    assert_eq!(
        (io.op, io.lba, io.blocks, io.transfer_len_bytes),
        (BlockOp::WriteSame, 10, 20, BLOCK_SIZE)
    );
    // UNMAP deallocates whatever the pattern (as Linux LIO does, and libiscsi's UnmapUntilEnd
    // expects: deallocated blocks then read back as zeros).
    let io = io_of(run_with(&lu(), &ws16(0x08, 10, 20), &pattern));
    assert_eq!(io.op, BlockOp::Deallocate);
    assert!(!io.fua, "the LU has a write cache");
}

#[test]
fn write_same_of_zeros_deallocates_only_with_unmap_and_lbprz() {
    let zeros = vec![0u8; BLOCK_SIZE as usize];
    assert_eq!(
        io_of(run_with(&lu(), &ws10(0x08, 0, 8), &zeros)).op,
        BlockOp::Deallocate
    );
    assert_eq!(
        io_of(run_with(&lu(), &ws10(0, 0, 8), &zeros)).op,
        BlockOp::WriteZeroes
    );
    let no_zeroes = LogicalUnit {
        unmap_reads_zeroes: false,
        ..lu()
    };
    assert_eq!(
        io_of(run_with(&no_zeroes, &ws10(0x08, 0, 8), &zeros)).op,
        BlockOp::WriteZeroes
    );
    // NDOB: no data-out, zeros.
    let io = io_of(run_with(&lu(), &ws16(0x09, 0, 8), &[]));
    assert_eq!((io.op, io.transfer_len_bytes), (BlockOp::Deallocate, 0));
    let io = io_of(run_with(&lu(), &ws16(0x01, 0, 8), &[]));
    assert_eq!(io.op, BlockOp::WriteZeroes);
}

#[test]
fn write_same_zero_blocks_means_to_the_end_within_the_limit() {
    let zeros = vec![0u8; BLOCK_SIZE as usize];
    let io = io_of(run_with(&lu(), &ws10(0, 900, 0), &zeros));
    assert_eq!((io.lba, io.blocks), (900, 100));
    // A LU larger than MAXIMUM WRITE SAME LENGTH: 0 blocks from LBA 0 is too many.
    let max = max_write_same_blocks(&lu());
    let big = LogicalUnit {
        num_blocks: u64::from(max) + 10,
        ..lu()
    };
    let sense = sense_of(run_with(&big, &ws16(0, 0, 0), &zeros));
    assert_eq!(sense.asc, Asc::INVALID_FIELD_IN_CDB);
    assert_eq!(sense.field_pointer.map(|p| p.byte), Some(10));
    let io = io_of(run_with(&big, &ws16(0, 10, 0), &zeros));
    assert_eq!(io.blocks, max);
    let sense = sense_of(run_with(&big, &ws16(0, 0, max + 1), &zeros));
    assert_eq!(sense.asc, Asc::INVALID_FIELD_IN_CDB);
}

#[test]
fn write_same_range_and_field_checks() {
    let zeros = vec![0u8; BLOCK_SIZE as usize];
    for (lba, blocks) in [(1000u32, 0u16), (1001, 0), (999, 2), (u32::MAX, 1)] {
        let sense = sense_of(run_with(&lu(), &ws10(0, lba, blocks), &zeros));
        assert_eq!(sense.asc, Asc::LBA_OUT_OF_RANGE, "{lba} {blocks}");
    }
    for protect in 1..8u8 {
        let sense = sense_of(run_with(&lu(), &ws10(protect << 5, 0, 1), &zeros));
        assert_eq!(sense.asc, Asc::INVALID_FIELD_IN_CDB);
    }
    // Data-out of other than one block, or data-out with NDOB.
    for len in [256usize, 1024, 0] {
        let reply = reply_of(run_with(&lu(), &ws10(0x08, 0, 1), &vec![0; len]));
        assert_eq!(reply.status, status::CHECK_CONDITION, "{len}");
    }
    let sense = sense_of(run_with(&lu(), &ws16(0x01, 0, 1), &zeros));
    assert_eq!(
        sense.field_pointer.map(|p| (p.byte, p.bit)),
        Some((1, Some(0)))
    );
}

#[test]
fn write_same_unmap_needs_a_thin_lu_and_write_protection_comes_first() {
    let zeros = vec![0u8; BLOCK_SIZE as usize];
    let sense = sense_of(run_with(&thick_lu(), &ws10(0x08, 0, 1), &zeros));
    assert_eq!(
        sense.field_pointer.map(|p| (p.byte, p.bit)),
        Some((1, Some(3)))
    );
    assert_eq!(
        io_of(run_with(&thick_lu(), &ws10(0, 0, 1), &zeros)).op,
        BlockOp::WriteZeroes
    );
    // A read-only LU refuses WRITE SAME with UNMAP even without data-out.
    for unit in [
        read_only_lu(),
        LogicalUnit {
            read_only: true,
            ..thick_lu()
        },
    ] {
        let sense = sense_of(run_with(&unit, &ws10(0x08, 0, 1), &[]));
        assert_eq!(
            (sense.key, sense.asc),
            (SenseKey::DataProtect, Asc::WRITE_PROTECTED)
        );
    }
}

#[test]
fn unmap_descriptors_become_one_io() {
    let list = unmap_list(&[(10, 4), (0, 0), (500, 100), (1000, 0)]);
    let io = io_of(run_with(&lu(), &unmap_cdb(list.len() as u16), &list));
    assert_eq!(io.op, BlockOp::Unmap { descriptors: 4 });
    assert_eq!((io.lba, io.blocks), (10, 104));
    assert_eq!(io.transfer_len_bytes, list.len() as u32);
    let ranges: Vec<_> = unmap_ranges(&list).collect();
    assert_eq!(ranges, vec![(10, 4), (500, 100)]);
}

#[test]
fn unmap_without_work_is_good_at_once() {
    assert_eq!(
        reply_of(run_with(&lu(), &unmap_cdb(0), &[])).status,
        status::GOOD
    );
    let list = unmap_list(&[]);
    assert_eq!(
        reply_of(run_with(&lu(), &unmap_cdb(8), &list)).status,
        status::GOOD
    );
    let list = unmap_list(&[(5, 0), (1000, 0)]);
    let reply = reply_of(run_with(&lu(), &unmap_cdb(list.len() as u16), &list));
    assert_eq!(reply.status, status::GOOD);
}

#[test]
fn unmap_refusals() {
    let list = unmap_list(&[(999, 2)]);
    let sense = sense_of(run_with(&lu(), &unmap_cdb(list.len() as u16), &list));
    assert_eq!(sense.asc, Asc::LBA_OUT_OF_RANGE);
    let list = unmap_list(&[(u64::MAX, 1)]);
    let sense = sense_of(run_with(&lu(), &unmap_cdb(list.len() as u16), &list));
    assert_eq!(sense.asc, Asc::LBA_OUT_OF_RANGE);
    let sense = sense_of(run_with(&lu(), &unmap_cdb(4), &[0; 4]));
    assert_eq!(sense.asc, Asc::PARAMETER_LIST_LENGTH_ERROR);
    // The block descriptor data length claims more than the parameter list holds.
    let mut list = unmap_list(&[(1, 1)]);
    list[2..4].copy_from_slice(&32u16.to_be_bytes());
    let sense = sense_of(run_with(&lu(), &unmap_cdb(list.len() as u16), &list));
    assert_eq!(sense.asc, Asc::INVALID_FIELD_IN_PARAMETER_LIST);
    let many: Vec<(u64, u32)> = (0..257).map(|i| (i, 1)).collect();
    let list = unmap_list(&many);
    let sense = sense_of(run_with(&lu(), &unmap_cdb(list.len() as u16), &list));
    assert_eq!(sense.asc, Asc::INVALID_FIELD_IN_PARAMETER_LIST);
    let huge = LogicalUnit {
        num_blocks: 1 << 30,
        ..lu()
    };
    let list = unmap_list(&[(0, MAX_UNMAP_BLOCKS), (MAX_UNMAP_BLOCKS.into(), 1)]);
    let sense = sense_of(run_with(&huge, &unmap_cdb(list.len() as u16), &list));
    assert_eq!(sense.field_pointer.map(|p| p.byte), Some(8 + 16 + 8));
    // Not thin: not supported. Read-only: write protected, before anything else.
    let list = unmap_list(&[(1, 1)]);
    let sense = sense_of(run_with(&thick_lu(), &unmap_cdb(list.len() as u16), &list));
    assert_eq!(sense.asc, Asc::INVALID_COMMAND_OPERATION_CODE);
    let sense = sense_of(run_with(&read_only_lu(), &unmap_cdb(24), &[]));
    assert_eq!(sense.asc, Asc::WRITE_PROTECTED);
    // The data-out is shorter than the parameter list.
    let sense = sense_of(run_with(&lu(), &unmap_cdb(24), &list[..16]));
    assert_eq!(sense.key, SenseKey::AbortedCommand);
}

#[test]
fn get_lba_status_on_thick_and_thin_lus() {
    let data = data_of(run(&thick_lu(), &get_lba_status_cdb(990, 24), 0));
    assert_eq!(data.len(), 24);
    assert_eq!(&data[0..4], &20u32.to_be_bytes());
    assert_eq!(&data[8..16], &990u64.to_be_bytes());
    assert_eq!(&data[16..20], &10u32.to_be_bytes());
    assert_eq!(data[20], 0, "mapped");
    let io = io_of(run(&lu(), &get_lba_status_cdb(5, 4096), 0));
    assert_eq!(
        (io.op, io.lba, io.blocks, io.transfer_len_bytes),
        (BlockOp::GetLbaStatus, 5, 995, 4096)
    );
    for lba in [1000, 1001, 1 << 63, u64::MAX] {
        let sense = sense_of(run(&lu(), &get_lba_status_cdb(lba, 24), 0));
        assert_eq!(sense.asc, Asc::LBA_OUT_OF_RANGE);
    }
    assert!(data_of(run(&lu(), &get_lba_status_cdb(0, 0), 0)).is_empty());
}

fn status_io(lba: u64, blocks: u32, alloc_len: u32) -> BlockIo {
    BlockIo {
        op: BlockOp::GetLbaStatus,
        lba,
        blocks,
        fua: false,
        transfer_len_bytes: alloc_len,
    }
}

fn descriptors(reply: &ScsiReply) -> Vec<(u64, u32, u8)> {
    reply.data_in[8..]
        .chunks_exact(16)
        .map(|d| {
            (
                u64::from_be_bytes(d[0..8].try_into().unwrap()),
                u32::from_be_bytes(d[8..12].try_into().unwrap()),
                d[12],
            )
        })
        .collect()
}

#[test]
fn lba_status_reply_fills_gaps_merges_and_clips() {
    let io = status_io(100, 900, 4096);
    let extents = [
        LbaExtent {
            lba: 50,
            blocks: 60,
            status: ProvisioningStatus::Deallocated,
        },
        LbaExtent {
            lba: 110,
            blocks: 10,
            status: ProvisioningStatus::Deallocated,
        },
        LbaExtent {
            lba: 200,
            blocks: 50,
            status: ProvisioningStatus::Mapped,
        },
        LbaExtent {
            lba: 990,
            blocks: 100,
            status: ProvisioningStatus::Deallocated,
        },
    ];
    let reply = lba_status_reply(&io, &extents);
    assert_eq!(
        descriptors(&reply),
        vec![(100, 20, 1), (120, 870, 0), (990, 10, 1)]
    );
    assert_eq!(&reply.data_in[0..4], &(4 + 3 * 16u32).to_be_bytes());
    // No extents: everything mapped.
    let reply = lba_status_reply(&io, &[]);
    assert_eq!(descriptors(&reply), vec![(100, 900, 0)]);
    // The allocation length bounds the descriptors.
    let alternating: Vec<LbaExtent> = (0..100)
        .map(|i| LbaExtent {
            lba: 100 + 2 * i,
            blocks: 1,
            status: ProvisioningStatus::Deallocated,
        })
        .collect();
    let reply = lba_status_reply(&status_io(100, 900, 8 + 3 * 16), &alternating);
    assert_eq!(
        descriptors(&reply),
        vec![(100, 1, 1), (101, 1, 0), (102, 1, 1)]
    );
    let reply = lba_status_reply(&status_io(100, 900, 20), &alternating);
    assert_eq!(reply.data_in.len(), 20);
}

proptest! {
    #[test]
    fn unmap_ranges_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        for (_, blocks) in unmap_ranges(&bytes) {
            prop_assert!(blocks > 0);
        }
    }

    #[test]
    fn lba_status_descriptors_tile_the_range(
        lba in 0u64..1 << 40,
        blocks in 1u32..u32::MAX,
        alloc_len in 0u32..2048,
        raw in proptest::collection::vec((any::<u64>(), any::<u64>(), 0u8..3), 0..40),
    ) {
        let extents: Vec<LbaExtent> = raw
            .into_iter()
            .map(|(at, len, status)| LbaExtent {
                lba: lba.saturating_add(at % (u64::from(blocks) + 10)),
                blocks: len % 1000,
                status: match status {
                    0 => ProvisioningStatus::Mapped,
                    1 => ProvisioningStatus::Deallocated,
                    _ => ProvisioningStatus::Anchored,
                },
            })
            .collect();
        let io = status_io(lba, blocks, alloc_len);
        let reply = lba_status_reply(&io, &extents);
        prop_assert!(reply.data_in.len() <= alloc_len as usize);
        if alloc_len as usize >= 8 + 16 {
            let found = descriptors(&reply);
            prop_assert!(!found.is_empty());
            prop_assert_eq!(found[0].0, lba);
            let mut cursor = lba;
            for (start, len, _) in &found {
                prop_assert_eq!(*start, cursor);
                prop_assert!(*len > 0);
                cursor += u64::from(*len);
            }
            prop_assert!(cursor <= lba + u64::from(blocks));
        }
    }
}
