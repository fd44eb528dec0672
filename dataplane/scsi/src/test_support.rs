//! Helpers shared by the unit tests: a sample logical unit, CDB builders and accessors that
//! assert the shape of a decision.

use std::sync::Arc;

use lunar_wire::scsi::{status, Sense};

use crate::model::{decide, BlockIo, ControlRequest, Decision, LogicalUnit, NexusState, ScsiReply};
use crate::nexus::NexusId;
use crate::pr::ReservationState;
use crate::unit_attention::PendingAttentions;

pub(crate) const BLOCK_SIZE: u32 = 512;
pub(crate) const NUM_BLOCKS: u64 = 1000;
pub(crate) const MAX_TRANSFER_BLOCKS: u32 = 256;

pub(crate) fn lu() -> LogicalUnit {
    LogicalUnit {
        block_size: BLOCK_SIZE,
        num_blocks: NUM_BLOCKS,
        read_only: false,
        volume_uid: 0x1122_3344_5566_7788,
        volume_name: "vol1".to_string(),
        max_transfer_blocks: MAX_TRANSFER_BLOCKS,
        write_cache: true,
        removable: false,
        thin_provisioning: true,
        unmap_reads_zeroes: true,
        physical_block_exponent: 0,
        max_atomic_transfer_blocks: 0,
        reservations: Arc::new(ReservationState::default()),
    }
}

/// A fully provisioned logical unit.
pub(crate) fn thick_lu() -> LogicalUnit {
    LogicalUnit {
        thin_provisioning: false,
        unmap_reads_zeroes: false,
        ..lu()
    }
}

/// The identity of test nexus `n` (distinct initiator ports through one target port).
pub(crate) fn nexus_id(n: u8) -> NexusId {
    NexusId::iscsi(
        &format!("iqn.2026-01.test:host{n}"),
        [0x40, 0, 0, 0, 0, n],
        "iqn.2026-11.dev.lunar:t",
        1,
        1,
    )
}

pub(crate) fn read_only_lu() -> LogicalUnit {
    LogicalUnit {
        read_only: true,
        ..lu()
    }
}

/// A nexus whose power-on unit attention has already been reported.
pub(crate) fn ready_nexus() -> NexusState {
    ready_nexus_as(nexus_id(1))
}

/// Nexus `identity`, its power-on unit attention already reported.
pub(crate) fn ready_nexus_as(identity: NexusId) -> NexusState {
    let mut nexus = NexusState::for_nexus(Arc::new(identity));
    nexus.pending = PendingAttentions::default();
    nexus
}

/// `decide` on a ready nexus of `lu`, with data-out of `expected_len_bytes` bytes.
pub(crate) fn run(lu: &LogicalUnit, cdb: &[u8], expected_len_bytes: u32) -> Decision {
    let data_out = vec![0xa5; expected_len_bytes as usize];
    decide(
        Some(lu),
        &[0],
        &mut ready_nexus(),
        cdb,
        expected_len_bytes,
        &data_out,
    )
}

pub(crate) fn reply_of(decision: Decision) -> ScsiReply {
    match decision {
        Decision::Reply(reply) => reply,
        other => panic!("expected an immediate reply, got {other:?}"),
    }
}

/// The data-in of a GOOD reply.
pub(crate) fn data_of(decision: Decision) -> Vec<u8> {
    let reply = reply_of(decision);
    assert_eq!(reply.status, status::GOOD, "sense {:02x?}", reply.sense);
    reply.data_in
}

/// The parsed sense of a CHECK CONDITION reply.
pub(crate) fn sense_of(decision: Decision) -> Sense {
    let reply = reply_of(decision);
    assert_eq!(reply.status, status::CHECK_CONDITION);
    assert!(reply.data_in.is_empty());
    Sense::parse(&reply.sense).expect("well-formed sense")
}

pub(crate) fn io_of(decision: Decision) -> BlockIo {
    match decision {
        Decision::Io(io) => io,
        other => panic!("expected I/O, got {other:?}"),
    }
}

pub(crate) fn control_of(decision: Decision) -> ControlRequest {
    match decision {
        Decision::Control(request) => request,
        other => panic!("expected a control request, got {other:?}"),
    }
}

pub(crate) fn cdb6(opcode: u8, lba: u32, blocks: u8) -> [u8; 6] {
    let lba = lba.to_be_bytes();
    [opcode, lba[1] & 0x1f, lba[2], lba[3], blocks, 0]
}

pub(crate) fn cdb10(opcode: u8, flags: u8, lba: u32, blocks: u16) -> [u8; 10] {
    let mut cdb = [0u8; 10];
    cdb[0] = opcode;
    cdb[1] = flags;
    cdb[2..6].copy_from_slice(&lba.to_be_bytes());
    cdb[7..9].copy_from_slice(&blocks.to_be_bytes());
    cdb
}

pub(crate) fn cdb12(opcode: u8, flags: u8, lba: u32, blocks: u32) -> [u8; 12] {
    let mut cdb = [0u8; 12];
    cdb[0] = opcode;
    cdb[1] = flags;
    cdb[2..6].copy_from_slice(&lba.to_be_bytes());
    cdb[6..10].copy_from_slice(&blocks.to_be_bytes());
    cdb
}

pub(crate) fn cdb16(opcode: u8, flags: u8, lba: u64, blocks: u32) -> [u8; 16] {
    let mut cdb = [0u8; 16];
    cdb[0] = opcode;
    cdb[1] = flags;
    cdb[2..10].copy_from_slice(&lba.to_be_bytes());
    cdb[10..14].copy_from_slice(&blocks.to_be_bytes());
    cdb
}
