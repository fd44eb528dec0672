//! Tests of the shared state through `decide`: reservation conflicts, PERSISTENT RESERVE IN
//! answered at once, the commands handed to the control thread, unit attentions reaching other
//! nexuses, and a removable medium.

use std::sync::Arc;

use lunar_wire::scsi::{opcode, service_action as sa, status, Asc, SenseKey};

use super::*;
use crate::model::{decide, ControlKind, Decision, LogicalUnit, NexusState};
use crate::test_support::*;

fn lu_with(state: ReservationState) -> LogicalUnit {
    LogicalUnit {
        reservations: Arc::new(state),
        ..lu()
    }
}

fn removable_with(state: ReservationState) -> LogicalUnit {
    LogicalUnit {
        removable: true,
        ..lu_with(state)
    }
}

fn send(lu: &LogicalUnit, nexus: &mut NexusState, cdb: &[u8], data_out: &[u8]) -> Decision {
    decide(Some(lu), &[0], nexus, cdb, data_out.len() as u32, data_out)
}

/// Apply what `decide` handed to the control thread, as the control thread would.
fn through_control(
    state: &ReservationState,
    nexus: &NexusState,
    decision: Decision,
    data_out: &[u8],
) -> ReservationState {
    let request = control_of(decision);
    let applied = apply_control(state, nexus.identity(), &request.cdb, data_out)
        .unwrap_or_else(|reply| panic!("refused: {reply:?}"));
    assert_eq!(applied.reply.transfer_len_bytes, request.transfer_len_bytes);
    applied.state.unwrap_or_else(|| state.clone())
}

fn prout(service_action: u8, pr_type: u8) -> [u8; 10] {
    [
        opcode::PERSISTENT_RESERVE_OUT,
        service_action,
        pr_type,
        0,
        0,
        0,
        0,
        0,
        24,
        0,
    ]
}

fn param(key: u64, service_action_key: u64) -> Vec<u8> {
    let mut param = vec![0u8; 24];
    param[0..8].copy_from_slice(&key.to_be_bytes());
    param[8..16].copy_from_slice(&service_action_key.to_be_bytes());
    param
}

const READ: [u8; 10] = [0x28, 0, 0, 0, 0, 1, 0, 0, 1, 0];
const TUR: [u8; 6] = [0, 0, 0, 0, 0, 0];

#[test]
fn reservation_commands_go_to_the_control_thread() {
    let lu = lu();
    let mut nexus = ready_nexus();
    let request = control_of(send(
        &lu,
        &mut nexus,
        &prout(sa::PR_OUT_REGISTER, 0),
        &param(0, 1),
    ));
    assert_eq!(request.kind, ControlKind::PersistentReserveOut);
    assert_eq!(request.transfer_len_bytes, 24);
    assert_eq!(&request.cdb[..10], &prout(sa::PR_OUT_REGISTER, 0));
    let request = control_of(send(
        &lu,
        &mut nexus,
        &[opcode::RESERVE_6, 0, 0, 0, 0, 0],
        &[],
    ));
    assert_eq!(request.kind, ControlKind::Reserve);
    let release = [opcode::RELEASE_10, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    assert_eq!(
        control_of(send(&lu, &mut nexus, &release, &[])).kind,
        ControlKind::Release
    );
    // A pending unit attention comes first.
    let mut fresh = NexusState::for_nexus(Arc::new(nexus_id(1)));
    let sense = sense_of(send(
        &lu,
        &mut fresh,
        &prout(sa::PR_OUT_REGISTER, 0),
        &param(0, 1),
    ));
    assert_eq!(sense.key, SenseKey::UnitAttention);
}

#[test]
fn a_persistent_reservation_refuses_other_nexuses() {
    let mut one = ready_nexus_as(nexus_id(1));
    let mut two = ready_nexus_as(nexus_id(2));
    let mut state = ReservationState::default();
    for (nexus, key) in [(&one, 1u64), (&two, 2)] {
        let lu = lu_with(state.clone());
        let mut probe = nexus.clone();
        let decision = send(
            &lu,
            &mut probe,
            &prout(sa::PR_OUT_REGISTER, 0),
            &param(0, key),
        );
        state = through_control(&state, nexus, decision, &param(0, key));
    }
    let lu = lu_with(state.clone());
    let decision = send(&lu, &mut one, &prout(sa::PR_OUT_RESERVE, 3), &param(1, 0));
    let state = through_control(&state, &one, decision, &param(1, 0));
    let lu = lu_with(state.clone());
    let reply = reply_of(decide(Some(&lu), &[0], &mut two, &READ, 512, &[]));
    assert_eq!(reply.status, status::RESERVATION_CONFLICT);
    assert_eq!(reply.transfer_len_bytes, 512, "what the CDB asked");
    assert!(reply.sense.is_empty());
    io_of(decide(Some(&lu), &[0], &mut one, &READ, 512, &[]));
    // Informational commands and PERSISTENT RESERVE IN still work for the other nexus.
    data_of(send(&lu, &mut two, &[opcode::INQUIRY, 0, 0, 0, 36, 0], &[]));
    assert_eq!(
        reply_of(send(&lu, &mut two, &TUR, &[])).status,
        status::GOOD
    );
    let read_keys = [opcode::PERSISTENT_RESERVE_IN, 0, 0, 0, 0, 0, 0, 0, 12, 0];
    let data = data_of(send(&lu, &mut two, &read_keys, &[]));
    assert_eq!(data.len(), 12, "truncated to the allocation length");
    assert_eq!(
        &data[4..8],
        &16u32.to_be_bytes(),
        "the full length is reported"
    );
}

#[test]
fn an_spc2_reservation_refuses_almost_everything_else() {
    let state = legacy::reserve(&ReservationState::default(), &nexus_id(1)).unwrap();
    let lu = lu_with(state);
    let mut two = ready_nexus_as(nexus_id(2));
    let mode_sense = [opcode::MODE_SENSE_6, 0, 0x3f, 0, 255, 0];
    for cdb in [&mode_sense[..], &TUR[..], &READ[..]] {
        let reply = reply_of(send(&lu, &mut two, cdb, &[]));
        assert_eq!(reply.status, status::RESERVATION_CONFLICT, "{cdb:02x?}");
    }
    let read_capacity = [opcode::READ_CAPACITY_10, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    data_of(send(&lu, &mut two, &read_capacity, &[]));
    let mut one = ready_nexus_as(nexus_id(1));
    data_of(send(&lu, &mut one, &mode_sense, &[]));
}

#[test]
fn preemption_reaches_the_preempted_nexus_at_its_next_command() {
    let mut one = ready_nexus_as(nexus_id(1));
    let mut two = ready_nexus_as(nexus_id(2));
    let state = ReservationState::default();
    // Both nexuses have sent a command to this logical unit before.
    let lu = lu_with(state.clone());
    send(&lu, &mut one, &TUR, &[]);
    send(&lu, &mut two, &TUR, &[]);
    let state = apply_control(
        &state,
        &nexus_id(1),
        &prout(sa::PR_OUT_REGISTER, 0),
        &param(0, 1),
    )
    .unwrap()
    .state
    .unwrap();
    let state = apply_control(
        &state,
        &nexus_id(2),
        &prout(sa::PR_OUT_REGISTER, 0),
        &param(0, 2),
    )
    .unwrap()
    .state
    .unwrap();
    let applied = apply_control(
        &state,
        &nexus_id(2),
        &prout(sa::PR_OUT_PREEMPT, 3),
        &param(2, 1),
    )
    .unwrap();
    let lu = lu_with(applied.state.unwrap());
    let sense = sense_of(send(&lu, &mut one, &TUR, &[]));
    assert_eq!(
        (sense.key, sense.asc),
        (SenseKey::UnitAttention, Asc::REGISTRATIONS_PREEMPTED)
    );
    assert_eq!(
        reply_of(send(&lu, &mut one, &TUR, &[])).status,
        status::GOOD
    );
    assert_eq!(
        reply_of(send(&lu, &mut two, &TUR, &[])).status,
        status::GOOD
    );
    // A nexus that never sent a command before starts after the log.
    let mut three = ready_nexus_as(nexus_id(1));
    assert_eq!(
        reply_of(send(&lu, &mut three, &TUR, &[])).status,
        status::GOOD
    );
}

#[test]
fn a_logical_unit_reset_reaches_every_nexus() {
    let state = ReservationState::default();
    let mut one = ready_nexus_as(nexus_id(1));
    send(&lu_with(state.clone()), &mut one, &TUR, &[]);
    let lu = lu_with(state.on_logical_unit_reset());
    let sense = sense_of(send(&lu, &mut one, &TUR, &[]));
    assert_eq!(sense.asc, Asc::BUS_DEVICE_RESET_OCCURRED);
    // A state with a younger log (the logical unit was re-created) resynchronises quietly.
    let lu = lu_with(ReservationState::default());
    assert_eq!(
        reply_of(send(&lu, &mut one, &TUR, &[])).status,
        status::GOOD
    );
}

#[test]
fn a_removable_medium_ejects_and_loads_through_the_control_thread() {
    let mut one = ready_nexus_as(nexus_id(1));
    let mut two = ready_nexus_as(nexus_id(2));
    let state = ReservationState::default();
    let lu = removable_with(state.clone());
    send(&lu, &mut two, &TUR, &[]);
    let prevent = [opcode::PREVENT_ALLOW_MEDIUM_REMOVAL, 0, 0, 0, 1, 0];
    let decision = send(&lu, &mut one, &prevent, &[]);
    assert_eq!(
        control_of(decision.clone()).kind,
        ControlKind::MediumRemoval
    );
    let state = through_control(&state, &one, decision, &[]);
    let eject = [opcode::START_STOP_UNIT, 0, 0, 0, 0x02, 0];
    let decision = send(&removable_with(state.clone()), &mut two, &eject, &[]);
    assert_eq!(control_of(decision.clone()).kind, ControlKind::LoadEject);
    let reply = apply_control(&state, two.identity(), &control_of(decision).cdb, &[]).unwrap_err();
    let sense = lunar_wire::scsi::Sense::parse(&reply.sense).unwrap();
    assert_eq!(sense.asc, Asc::MEDIUM_REMOVAL_PREVENTED);
    let allow = [opcode::PREVENT_ALLOW_MEDIUM_REMOVAL, 0, 0, 0, 0, 0];
    let decision = send(&removable_with(state.clone()), &mut one, &allow, &[]);
    let state = through_control(&state, &one, decision, &[]);
    let decision = send(&removable_with(state.clone()), &mut two, &eject, &[]);
    let state = through_control(&state, &two, decision, &[]);
    let lu = removable_with(state.clone());
    for cdb in [&TUR[..], &READ[..]] {
        let sense = sense_of(decide(Some(&lu), &[0], &mut one, cdb, 512, &[]));
        assert_eq!(
            (sense.key, sense.asc),
            (SenseKey::NotReady, Asc::MEDIUM_NOT_PRESENT)
        );
    }
    data_of(send(&lu, &mut one, &[opcode::INQUIRY, 0, 0, 0, 36, 0], &[]));
    let load = [opcode::START_STOP_UNIT, 0, 0, 0, 0x03, 0];
    let decision = send(&lu, &mut one, &load, &[]);
    let state = through_control(&state, &one, decision, &[]);
    let lu = removable_with(state);
    assert_eq!(
        reply_of(send(&lu, &mut one, &TUR, &[])).status,
        status::GOOD
    );
    let sense = sense_of(send(&lu, &mut two, &TUR, &[]));
    assert_eq!(sense.asc, Asc::MEDIUM_MAY_HAVE_CHANGED);
}

#[test]
fn a_fixed_medium_answers_prevent_and_eject_at_once() {
    let mut one = ready_nexus();
    let prevent = [opcode::PREVENT_ALLOW_MEDIUM_REMOVAL, 0, 0, 0, 1, 0];
    assert_eq!(
        reply_of(send(&lu(), &mut one, &prevent, &[])).status,
        status::GOOD
    );
    let eject = [opcode::START_STOP_UNIT, 0, 0, 0, 0x02, 0];
    // A stop with a write cache flushes; it does not eject.
    assert_eq!(
        io_of(send(&lu(), &mut one, &eject, &[])).op,
        crate::model::BlockOp::Flush
    );
    let removable = LogicalUnit {
        removable: true,
        ..lu()
    };
    // An invalid PREVENT value is refused before anything reaches the control thread.
    let bad = [opcode::PREVENT_ALLOW_MEDIUM_REMOVAL, 0, 0, 0, 2, 0];
    assert_eq!(
        sense_of(send(&removable, &mut one, &bad, &[])).asc,
        Asc::INVALID_FIELD_IN_CDB
    );
    // A power condition makes LOEJ irrelevant.
    let idle = [opcode::START_STOP_UNIT, 0, 0, 0, 0x22, 0];
    assert_eq!(
        reply_of(send(&removable, &mut one, &idle, &[])).status,
        status::GOOD
    );
}
