//! Tests of REQUEST SENSE, READ CAPACITY, START STOP UNIT, PREVENT ALLOW MEDIUM REMOVAL,
//! READ DEFECT DATA and REPORT LUNS.

use lunar_wire::scsi::{opcode, Asc, Sense, SenseKey};

use crate::model::{decide, BlockOp, LogicalUnit, NexusState};
use crate::test_support::*;
use crate::unit_attention::UnitAttention;

fn rc16(alloc_len: u32) -> [u8; 16] {
    let mut cdb = [0u8; 16];
    cdb[0] = opcode::SERVICE_ACTION_IN_16;
    cdb[1] = 0x10;
    cdb[10..14].copy_from_slice(&alloc_len.to_be_bytes());
    cdb
}

fn report_luns_cdb(select_report: u8, alloc_len: u32) -> [u8; 12] {
    let mut cdb = [0u8; 12];
    cdb[0] = opcode::REPORT_LUNS;
    cdb[2] = select_report;
    cdb[6..10].copy_from_slice(&alloc_len.to_be_bytes());
    cdb
}

#[test]
fn read_capacity_10() {
    let data = data_of(run(
        &lu(),
        &[opcode::READ_CAPACITY_10, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        8,
    ));
    assert_eq!(&data[0..4], &(NUM_BLOCKS as u32 - 1).to_be_bytes());
    assert_eq!(&data[4..8], &BLOCK_SIZE.to_be_bytes());
    // Too large for (10): FFFFFFFFh tells the initiator to use (16).
    let big = LogicalUnit {
        num_blocks: 1 << 33,
        ..lu()
    };
    let data = data_of(run(
        &big,
        &[opcode::READ_CAPACITY_10, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        8,
    ));
    assert_eq!(&data[0..4], &[0xff; 4]);
    // LBA without PMI is invalid; with PMI it is accepted.
    let sense = sense_of(run(
        &lu(),
        &[opcode::READ_CAPACITY_10, 0, 0, 0, 0, 1, 0, 0, 0, 0],
        8,
    ));
    assert_eq!(sense.asc, Asc::INVALID_FIELD_IN_CDB);
    data_of(run(
        &lu(),
        &[opcode::READ_CAPACITY_10, 0, 0, 0, 0, 1, 0, 0, 1, 0],
        8,
    ));
}

#[test]
fn read_capacity_16() {
    let data = data_of(run(&lu(), &rc16(32), 32));
    assert_eq!(data.len(), 32);
    assert_eq!(&data[0..8], &(NUM_BLOCKS - 1).to_be_bytes());
    assert_eq!(&data[8..12], &BLOCK_SIZE.to_be_bytes());
    assert_eq!(data[12], 0, "no protection");
    assert_eq!(data[13], 0, "one logical block per physical block");
    assert_eq!(data[14] & 0xc0, 0xc0, "LBPME and LBPRZ");
    let thick = data_of(run(&thick_lu(), &rc16(32), 32));
    assert_eq!(thick[14] & 0xc0, 0, "no provisioning management");
    let odd = LogicalUnit {
        physical_block_exponent: 3,
        unmap_reads_zeroes: false,
        ..lu()
    };
    let data = data_of(run(&odd, &rc16(32), 32));
    assert_eq!((data[13], data[14] & 0xc0), (3, 0x80));
    for alloc_len in 0..16u32 {
        let reply = reply_of(run(&lu(), &rc16(alloc_len), alloc_len));
        assert_eq!(reply.status, 0);
        assert_eq!(reply.data_in.len(), alloc_len as usize);
    }
}

#[test]
fn request_sense_reports_and_clears_unit_attention() {
    let lu = lu();
    let mut nexus = NexusState::default();
    let cdb = [opcode::REQUEST_SENSE, 0, 0, 0, 252, 0];
    let data = data_of(decide(Some(&lu), &[0], &mut nexus, &cdb, 252, &[]));
    assert_eq!(data.len(), 18);
    let sense = Sense::parse(&data).unwrap();
    assert_eq!(
        (sense.key, sense.asc),
        (SenseKey::UnitAttention, Asc::new(0x29, 0))
    );
    let data = data_of(decide(Some(&lu), &[0], &mut nexus, &cdb, 252, &[]));
    let sense = Sense::parse(&data).unwrap();
    assert_eq!(
        (sense.key, sense.asc),
        (SenseKey::NoSense, Asc::NO_ADDITIONAL_SENSE)
    );
    // DESC selects descriptor format.
    let cdb = [opcode::REQUEST_SENSE, 1, 0, 0, 252, 0];
    let data = data_of(decide(Some(&lu), &[0], &mut nexus, &cdb, 252, &[]));
    assert_eq!(data, vec![0x72, 0, 0, 0, 0, 0, 0, 0]);
}

#[test]
fn start_stop_unit() {
    let lu = lu();
    let cdb = |byte4: u8| [opcode::START_STOP_UNIT, 0, 0, 0, byte4, 0];
    // START = 1: nothing to do.
    assert_eq!(reply_of(run(&lu, &cdb(0x01), 0)).status, 0);
    // LOEJ = 1 on a medium that cannot be removed changes nothing either.
    assert_eq!(reply_of(run(&lu, &cdb(0x03), 0)).status, 0);
    // Stop: write back the cache first, unless NO_FLUSH.
    let io = io_of(run(&lu, &cdb(0x00), 0));
    assert_eq!((io.op, io.lba, io.blocks), (BlockOp::Flush, 0, 0));
    assert_eq!(reply_of(run(&lu, &cdb(0x04), 0)).status, 0);
    assert_eq!(reply_of(run(&read_only_lu(), &cdb(0x00), 0)).status, 0);
    // Power conditions: IDLE and reserved values alike are accepted as no-ops (with START=0
    // they do not stop the unit: no flush).
    assert_eq!(reply_of(run(&lu, &cdb(0x20), 0)).status, 0);
    assert_eq!(reply_of(run(&lu, &cdb(0x40 | 0x01), 0)).status, 0);
    assert_eq!(reply_of(run(&lu, &cdb(0xf0), 0)).status, 0);
    // A power condition modifier with a condition that has none is still refused.
    let sense = sense_of(run(&lu, &[opcode::START_STOP_UNIT, 0, 0, 1, 0x10, 0], 0));
    assert_eq!(sense.asc, Asc::INVALID_FIELD_IN_CDB);
    // IMMED accepted.
    assert_eq!(
        reply_of(run(&lu, &[opcode::START_STOP_UNIT, 1, 0, 0, 1, 0], 0)).status,
        0
    );
}

#[test]
fn prevent_allow_medium_removal() {
    for prevent in [0u8, 1] {
        let cdb = [opcode::PREVENT_ALLOW_MEDIUM_REMOVAL, 0, 0, 0, prevent, 0];
        assert_eq!(reply_of(run(&lu(), &cdb, 0)).status, 0);
    }
    let cdb = [opcode::PREVENT_ALLOW_MEDIUM_REMOVAL, 0, 0, 0, 2, 0];
    assert_eq!(sense_of(run(&lu(), &cdb, 0)).asc, Asc::INVALID_FIELD_IN_CDB);
}

#[test]
fn read_defect_data_is_empty() {
    let cdb10 = [opcode::READ_DEFECT_DATA_10, 0, 0x18, 0, 0, 0, 0, 0, 32, 0];
    let data = data_of(run(&lu(), &cdb10, 32));
    assert_eq!(data, vec![0, 0x18, 0, 0]);
    let cdb12 = [
        opcode::READ_DEFECT_DATA_12,
        0x0b,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        32,
        0,
        0,
    ];
    let data = data_of(run(&lu(), &cdb12, 32));
    assert_eq!(data, vec![0, 0x0b, 0, 0, 0, 0, 0, 0]);
    let reserved_format = [opcode::READ_DEFECT_DATA_10, 0, 0x01, 0, 0, 0, 0, 0, 32, 0];
    assert_eq!(
        sense_of(run(&lu(), &reserved_format, 32)).asc,
        Asc::INVALID_FIELD_IN_CDB
    );
}

#[test]
fn report_luns_select_reports() {
    let luns = [0u64, 1, 300];
    let mut nexus = ready_nexus();
    let data = data_of(decide(
        Some(&lu()),
        &luns,
        &mut nexus,
        &report_luns_cdb(0, 4096),
        4096,
        &[],
    ));
    assert_eq!(&data[0..4], &24u32.to_be_bytes());
    assert_eq!(data.len(), 32);
    assert_eq!(&data[8..16], &[0; 8]);
    assert_eq!(&data[16..24], &[0, 1, 0, 0, 0, 0, 0, 0]);
    assert_eq!(&data[24..32], &[0x41, 0x2c, 0, 0, 0, 0, 0, 0]);
    let all = data_of(decide(
        Some(&lu()),
        &luns,
        &mut nexus,
        &report_luns_cdb(2, 4096),
        4096,
        &[],
    ));
    assert_eq!(all, data);
    let well_known = data_of(decide(
        Some(&lu()),
        &luns,
        &mut nexus,
        &report_luns_cdb(1, 4096),
        4096,
        &[],
    ));
    assert_eq!(well_known, vec![0; 8]);
    let sense = sense_of(decide(
        Some(&lu()),
        &luns,
        &mut nexus,
        &report_luns_cdb(0x10, 64),
        64,
        &[],
    ));
    assert_eq!(sense.field_pointer.map(|p| p.byte), Some(2));
}

#[test]
fn report_luns_truncates_but_counts_all() {
    let luns: Vec<u64> = (0..100).collect();
    let mut nexus = ready_nexus();
    let reply = reply_of(decide(
        Some(&lu()),
        &luns,
        &mut nexus,
        &report_luns_cdb(0, 16),
        16,
        &[],
    ));
    assert_eq!(reply.data_in.len(), 16);
    assert_eq!(&reply.data_in[0..4], &800u32.to_be_bytes());
    assert_eq!(reply.transfer_len_bytes, 16);
}

#[test]
fn report_luns_clears_reported_luns_changed_only() {
    let mut nexus = ready_nexus();
    nexus.raise(UnitAttention::ReportedLunsDataChanged);
    nexus.raise(UnitAttention::CapacityDataChanged);
    data_of(decide(
        Some(&lu()),
        &[0],
        &mut nexus,
        &report_luns_cdb(0, 64),
        64,
        &[],
    ));
    assert_eq!(
        nexus.pending_unit_attention(),
        Some(UnitAttention::CapacityDataChanged)
    );
    let tur = [opcode::TEST_UNIT_READY, 0, 0, 0, 0, 0];
    let sense = sense_of(decide(Some(&lu()), &[0], &mut nexus, &tur, 0, &[]));
    assert_eq!(sense.asc, Asc::CAPACITY_DATA_HAS_CHANGED);
    assert_eq!(nexus.pending_unit_attention(), None);
}
