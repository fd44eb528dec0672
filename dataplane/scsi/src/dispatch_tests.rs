//! Tests of the judging order (unit attentions, unmapped LUNs, unsupported opcodes), of the
//! reply helpers, and a property test feeding arbitrary CDBs to `decide`.

use std::sync::Arc;

use lunar_wire::scsi::{opcode, status, Asc, Sense, SenseKey};
use proptest::prelude::*;

use crate::model::*;
use crate::nexus::NexusId;
use crate::pr::{PersistentReservation, PrType, Registration, ReservationState};
use crate::test_support::*;
use crate::unit_attention::UnitAttention;

const TUR: [u8; 6] = [opcode::TEST_UNIT_READY, 0, 0, 0, 0, 0];
const INQUIRY: [u8; 6] = [opcode::INQUIRY, 0, 0, 0, 96, 0];
const REPORT_LUNS: [u8; 12] = [opcode::REPORT_LUNS, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0];

#[test]
fn power_on_attention_is_reported_once_after_exempt_commands() {
    let lu = lu();
    let mut nexus = NexusState::default();
    assert_eq!(
        nexus.pending_unit_attention(),
        Some(UnitAttention::PowerOnReset)
    );
    data_of(decide(Some(&lu), &[0], &mut nexus, &INQUIRY, 96, &[]));
    data_of(decide(Some(&lu), &[0], &mut nexus, &REPORT_LUNS, 256, &[]));
    let sense = sense_of(decide(Some(&lu), &[0], &mut nexus, &TUR, 0, &[]));
    assert_eq!(sense.key, SenseKey::UnitAttention);
    assert_eq!(sense.asc, Asc::POWER_ON_RESET_OR_BUS_DEVICE_RESET);
    assert_eq!(
        reply_of(decide(Some(&lu), &[0], &mut nexus, &TUR, 0, &[])).status,
        0
    );
}

#[test]
fn attention_comes_before_opcode_checks() {
    let lu = lu();
    let mut nexus = NexusState::new();
    let unknown = [0x04u8; 6];
    let sense = sense_of(decide(Some(&lu), &[0], &mut nexus, &unknown, 0, &[]));
    assert_eq!(sense.key, SenseKey::UnitAttention);
    let sense = sense_of(decide(Some(&lu), &[0], &mut nexus, &unknown, 0, &[]));
    assert_eq!(
        (sense.key, sense.asc),
        (
            SenseKey::IllegalRequest,
            Asc::INVALID_COMMAND_OPERATION_CODE
        )
    );
}

#[test]
fn raised_attentions_reach_the_next_command() {
    let lu = lu();
    let mut nexus = ready_nexus();
    nexus.raise(UnitAttention::LogicalUnitReset);
    let read = cdb10(opcode::READ_10, 0, 0, 1);
    let sense = sense_of(decide(Some(&lu), &[0], &mut nexus, &read, BLOCK_SIZE, &[]));
    assert_eq!(sense.asc, Asc::new(0x29, 0x03));
    io_of(decide(Some(&lu), &[0], &mut nexus, &read, BLOCK_SIZE, &[]));
}

#[test]
fn refused_commands_report_what_their_cdb_asked() {
    // Expected length ending inside a block: refused, yet the CDB asked for one block.
    let write = cdb10(opcode::WRITE_10, 0, 0, 1);
    let reply = reply_of(run(&lu(), &write, 200));
    assert_eq!(reply.status, status::CHECK_CONDITION);
    assert_eq!(reply.transfer_len_bytes, BLOCK_SIZE);
    // Unit attention on a READ (16) of 3 blocks.
    let read = cdb16(opcode::READ_16, 0, 0, 3);
    let reply = reply_of(decide(
        Some(&lu()),
        &[0],
        &mut NexusState::new(),
        &read,
        0,
        &[],
    ));
    assert_eq!(reply.status, status::CHECK_CONDITION);
    assert_eq!(reply.transfer_len_bytes, 3 * BLOCK_SIZE);
    // Out of range INQUIRY page: the allocation length.
    let reply = reply_of(run(&lu(), &[opcode::INQUIRY, 1, 0x99, 0, 200, 0], 200));
    assert_eq!(
        (reply.status, reply.transfer_len_bytes),
        (status::CHECK_CONDITION, 200)
    );
    // Undecodable: nothing is known.
    let reply = reply_of(run(&lu(), &[0x04; 6], 512));
    assert_eq!(reply.transfer_len_bytes, 0);
    // Unmapped LUN, READ (10) of 2 blocks: no block size to go by.
    let read = cdb10(opcode::READ_10, 0, 0, 2);
    let reply = reply_of(decide(None, &[0], &mut ready_nexus(), &read, 1024, &[]));
    assert_eq!(reply.transfer_len_bytes, 0);
}

#[test]
fn unsupported_commands() {
    // FORMAT UNIT, MODE SELECT (6), WRITE BUFFER, variable length, vendor specific.
    for opcode in [0x04u8, 0x15, 0x3b, 0x7f, 0xc0] {
        let sense = sense_of(run(&lu(), &[opcode; 16], 0));
        assert_eq!(
            sense.asc,
            Asc::INVALID_COMMAND_OPERATION_CODE,
            "{opcode:#x}"
        );
    }
    // SERVICE ACTION IN (16) 13h: a service action we do not support.
    let mut cdb = [0u8; 16];
    cdb[0] = opcode::SERVICE_ACTION_IN_16;
    cdb[1] = 0x13;
    let sense = sense_of(run(&lu(), &cdb, 0));
    assert_eq!(sense.asc, Asc::INVALID_FIELD_IN_CDB);
    assert_eq!(sense.field_pointer.map(|p| p.byte), Some(1));
}

#[test]
fn naca_in_control_byte_is_refused() {
    let sense = sense_of(run(&lu(), &[opcode::TEST_UNIT_READY, 0, 0, 0, 0, 0x04], 0));
    assert_eq!(sense.asc, Asc::INVALID_FIELD_IN_CDB);
    assert_eq!(
        sense.field_pointer.map(|p| (p.byte, p.bit)),
        Some((5, Some(2)))
    );
}

#[test]
fn unmapped_lun() {
    let mut nexus = NexusState::default();
    let sense = sense_of(decide(None, &[1], &mut nexus, &TUR, 0, &[]));
    assert_eq!(sense.asc, Asc::LOGICAL_UNIT_NOT_SUPPORTED);
    let sense = sense_of(decide(None, &[1], &mut nexus, &[0x41; 10], 0, &[]));
    assert_eq!(sense.asc, Asc::LOGICAL_UNIT_NOT_SUPPORTED);
    let read = cdb10(opcode::READ_10, 0, 0, 1);
    let sense = sense_of(decide(None, &[1], &mut nexus, &read, 512, &[]));
    assert_eq!(sense.asc, Asc::LOGICAL_UNIT_NOT_SUPPORTED);
    // REQUEST SENSE returns the condition as data.
    let request_sense = [opcode::REQUEST_SENSE, 0, 0, 0, 18, 0];
    let data = data_of(decide(None, &[1], &mut nexus, &request_sense, 18, &[]));
    let sense = Sense::parse(&data).unwrap();
    assert_eq!(sense.asc, Asc::LOGICAL_UNIT_NOT_SUPPORTED);
    // REPORT LUNS still lists the target's LUNs.
    let data = data_of(decide(None, &[1], &mut nexus, &REPORT_LUNS, 256, &[]));
    assert_eq!(&data[0..4], &8u32.to_be_bytes());
    assert_eq!(&data[8..10], &[0, 1]);
    // A malformed INQUIRY is still an invalid field.
    let bad_inquiry = [opcode::INQUIRY, 0, 1, 0, 96, 0];
    let sense = sense_of(decide(None, &[1], &mut nexus, &bad_inquiry, 96, &[]));
    assert_eq!(sense.asc, Asc::INVALID_FIELD_IN_CDB);
}

#[test]
fn reply_helpers() {
    let read = BlockIo {
        op: BlockOp::Read,
        lba: 8,
        blocks: 2,
        fua: false,
        transfer_len_bytes: 1024,
    };
    let reply = io_error_reply(&read);
    assert_eq!(reply.status, status::CHECK_CONDITION);
    assert_eq!(reply.transfer_len_bytes, 1024);
    let sense = Sense::parse(&reply.sense).unwrap();
    assert_eq!(
        (sense.key, sense.asc),
        (SenseKey::MediumError, Asc::UNRECOVERED_READ_ERROR)
    );
    for op in [BlockOp::Write, BlockOp::Flush] {
        let reply = io_error_reply(&BlockIo { op, ..read });
        let sense = Sense::parse(&reply.sense).unwrap();
        assert_eq!(
            (sense.key, sense.asc),
            (SenseKey::MediumError, Asc::WRITE_ERROR)
        );
    }
    let good = good_reply(&read);
    assert_eq!((good.status, good.transfer_len_bytes), (status::GOOD, 1024));
    assert!(good.sense.is_empty() && good.data_in.is_empty());

    let compare = BlockIo {
        op: BlockOp::Compare,
        ..read
    };
    let reply = miscompare_reply(&compare, 700);
    assert_eq!(reply.status, status::CHECK_CONDITION);
    assert_eq!(reply.sense[0], 0xf0, "fixed format, VALID");
    assert_eq!(reply.transfer_len_bytes, 1024);
    let sense = Sense::parse(&reply.sense).unwrap();
    assert_eq!(
        (sense.key, sense.asc, sense.information),
        (SenseKey::Miscompare, Asc::new(0x1d, 0x00), Some(700))
    );
}

fn arb_lu() -> impl Strategy<Value = LogicalUnit> {
    (
        prop_oneof![Just(512u32), Just(4096u32)],
        prop_oneof![0u64..2048, any::<u64>()],
        any::<bool>(),
        any::<bool>(),
        1u32..4096,
        any::<[bool; 3]>(),
        prop_oneof![Just(0u32), 1u32..64],
        arb_shared_state(),
    )
        .prop_map(
            |(
                block_size,
                num_blocks,
                read_only,
                write_cache,
                max_transfer_blocks,
                [removable, thin_provisioning, unmap_reads_zeroes],
                max_atomic_transfer_blocks,
                reservations,
            )| LogicalUnit {
                block_size,
                num_blocks,
                read_only,
                volume_uid: num_blocks ^ 0x5a5a,
                volume_name: "prop".to_string(),
                max_transfer_blocks,
                write_cache,
                removable,
                thin_provisioning,
                unmap_reads_zeroes,
                physical_block_exponent: 0,
                max_atomic_transfer_blocks,
                reservations: Arc::new(reservations),
            },
        )
}

/// Shared states the test nexus may meet: nothing, a reservation by another nexus or by it,
/// an SPC-2 reservation, an ejected medium.
fn arb_shared_state() -> impl Strategy<Value = ReservationState> {
    (0u8..6, any::<bool>()).prop_map(|(kind, ejected)| {
        let mut state = ReservationState::default();
        let other = nexus_id(2);
        let registration = |nexus: NexusId, key| Registration {
            nexus,
            key,
            all_target_ports: false,
        };
        match kind {
            1 => {
                state.registrations.push(registration(other.clone(), 7));
                state.reservation = Some(PersistentReservation {
                    holder: other,
                    pr_type: PrType::ExclusiveAccess,
                });
            }
            2 => {
                state.registrations.push(registration(other.clone(), 7));
                state.registrations.push(registration(nexus_id(1), 8));
                state.reservation = Some(PersistentReservation {
                    holder: other,
                    pr_type: PrType::WriteExclusiveRegistrantsOnly,
                });
            }
            3 => state.legacy_holder = Some(other),
            4 => state.legacy_holder = Some(nexus_id(1)),
            _ => {}
        }
        state.medium.loaded = !ejected;
        state
    })
}

/// Mostly well-formed CDBs of known commands (random bits inside the usage mask, small
/// numbers more likely), sometimes with one stray bit, sometimes plain noise.
fn arb_cdb() -> impl Strategy<Value = Vec<u8>> {
    let commands = lunar_wire::scsi::COMMANDS;
    (
        0..commands.len(),
        any::<[u8; 16]>(),
        proptest::array::uniform16(proptest::bool::weighted(0.85)),
        prop_oneof![3 => Just(None), 1 => (0usize..16, 0u8..8).prop_map(Some)],
        prop_oneof![8 => Just(None), 1 => proptest::collection::vec(any::<u8>(), 0..20).prop_map(Some)],
    )
        .prop_map(move |(index, noise, small, stray, raw)| {
            if let Some(raw) = raw {
                return raw;
            }
            let info = &commands[index];
            let len = info.cdb_len();
            let mut cdb: Vec<u8> = (0..len)
                .map(|i| {
                    // Keep high-order bytes of numeric fields mostly zero, and the protection
                    // field of byte 1 mostly clear.
                    let byte = match (i, small[i]) {
                        (1, true) => noise[i] & 0x1e,
                        (_, true) => noise[i] & 0x03,
                        (_, false) => noise[i],
                    };
                    byte & info.usage[i]
                })
                .collect();
            cdb[0] = info.opcode;
            if let Some(sa) = info.service_action {
                cdb[1] = sa;
            }
            cdb[len - 1] = noise[len - 1] & 0xc0;
            if let Some((byte, bit)) = stray {
                if let Some(b) = cdb.get_mut(byte) {
                    *b ^= 1 << bit;
                }
            }
            cdb
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn decide_never_panics_and_keeps_its_promises(
        lu in arb_lu(),
        mapped in proptest::bool::weighted(0.9),
        cdb in arb_cdb(),
        expected_len_bytes in prop_oneof![0u32..(1 << 21), Just(512), Just(4096)],
        data_out_len in prop_oneof![Just(usize::MAX), 0usize..(1 << 21)],
        fresh in proptest::bool::weighted(0.1),
    ) {
        let data_out = vec![0u8; data_out_len.min(expected_len_bytes as usize)];
        let mut nexus = if fresh { NexusState::default() } else { ready_nexus() };
        let decision = decide(
            mapped.then_some(&lu), &[0, 1, 7], &mut nexus, &cdb, expected_len_bytes, &data_out,
        );
        match decision {
            Decision::Io(io) => {
                prop_assert!(mapped);
                // UNMAP and EXTENDED COPY ranges come from the data-out (tested with them).
                let summary = matches!(io.op, BlockOp::Unmap { .. } | BlockOp::ExtendedCopy { .. });
                let end = io.lba.checked_add(u64::from(io.blocks));
                prop_assert!(summary || end.is_some_and(|end| end <= lu.num_blocks));
                prop_assert!(io.lba < lu.num_blocks);
                prop_assert!(!lu.removable || lu.reservations.medium.loaded);
                let needs_data = matches!(
                    io.op,
                    BlockOp::Write | BlockOp::Compare | BlockOp::OrWrite | BlockOp::WriteAtomic
                );
                if io.op == BlockOp::CompareAndWrite {
                    let bytes = 2 * u64::from(io.blocks) * u64::from(lu.block_size);
                    prop_assert!(data_out.len() as u64 >= bytes);
                }
                if matches!(io.op, BlockOp::Unmap { .. } | BlockOp::Deallocate) {
                    prop_assert!(lu.thin_provisioning);
                }
                if io.op == BlockOp::WriteAtomic {
                    prop_assert!(io.blocks <= lu.max_atomic_transfer_blocks);
                }
                if io.op != BlockOp::Flush {
                    prop_assert!(io.blocks > 0);
                }
                if needs_data {
                    let bytes = u64::from(io.blocks) * u64::from(lu.block_size);
                    prop_assert!(data_out.len() as u64 >= bytes);
                    prop_assert!(u64::from(io.transfer_len_bytes) >= bytes);
                }
                if matches!(io.op, BlockOp::Read | BlockOp::Write | BlockOp::Compare) {
                    prop_assert!(io.blocks <= lu.max_transfer_blocks);
                }
                if io.op != BlockOp::Flush && io_error_reply(&io).sense[12] == 0x0c {
                    prop_assert!(!lu.read_only);
                    prop_assert!(io.fua || lu.write_cache);
                }
            }
            Decision::Control(request) => {
                prop_assert!(mapped);
                prop_assert_eq!(&request.cdb[..cdb.len().min(16)], &cdb[..cdb.len().min(16)]);
            }
            Decision::Reply(reply) => {
                if reply.status == status::RESERVATION_CONFLICT {
                    prop_assert!(mapped);
                    prop_assert!(!lu.reservations.is_unreserved());
                    prop_assert!(reply.sense.is_empty() && reply.data_in.is_empty());
                } else if reply.status == status::CHECK_CONDITION {
                    prop_assert!(Sense::parse(&reply.sense).is_ok());
                    prop_assert!(reply.data_in.is_empty());
                } else {
                    prop_assert_eq!(reply.status, status::GOOD);
                    prop_assert!(reply.sense.is_empty());
                    prop_assert!(reply.data_in.len() as u64 <= u64::from(reply.transfer_len_bytes));
                }
            }
        }
    }
}
