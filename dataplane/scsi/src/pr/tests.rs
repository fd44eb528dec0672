//! Tests of the shared-state machine: every PERSISTENT RESERVE OUT service action, the access
//! each reservation type leaves other nexuses, RESERVE/RELEASE, the removable medium, resets,
//! the unit-attention log, PERSISTENT RESERVE IN data and the durable encoding.

use lunar_wire::scsi::{opcode, service_action as sa, status, Asc, Cdb, SenseKey};
use proptest::prelude::*;

use super::*;
use crate::test_support::nexus_id;

const WE: u8 = 1;
const EA: u8 = 3;
const WE_RO: u8 = 5;
const EA_RO: u8 = 6;
const WE_AR: u8 = 7;
const EA_AR: u8 = 8;

fn prout_cdb(service_action: u8, pr_type: u8, param_len: u32) -> [u8; 10] {
    let mut cdb = [0u8; 10];
    cdb[0] = opcode::PERSISTENT_RESERVE_OUT;
    cdb[1] = service_action;
    cdb[2] = pr_type;
    cdb[5..9].copy_from_slice(&param_len.to_be_bytes());
    cdb
}

fn basic(key: u64, service_action_key: u64, flags: u8) -> Vec<u8> {
    let mut param = vec![0u8; 24];
    param[0..8].copy_from_slice(&key.to_be_bytes());
    param[8..16].copy_from_slice(&service_action_key.to_be_bytes());
    param[20] = flags;
    param
}

/// Apply PERSISTENT RESERVE OUT `service_action` from nexus `n` and return the new state.
fn out(
    state: &ReservationState,
    n: u8,
    service_action: u8,
    pr_type: u8,
    key: u64,
    service_action_key: u64,
) -> Result<(ReservationState, Effects), Refusal> {
    let param = basic(key, service_action_key, 0);
    apply_out(
        state,
        &nexus_id(n),
        &prout_cdb(service_action, pr_type, 24),
        &param,
    )
}

fn ok(result: Result<(ReservationState, Effects), Refusal>) -> ReservationState {
    match result {
        Ok((state, _)) => state,
        Err(refusal) => panic!("refused: {refusal:?}"),
    }
}

fn register(state: &ReservationState, n: u8, key: u64) -> ReservationState {
    ok(out(
        state,
        n,
        sa::PR_OUT_REGISTER_AND_IGNORE_EXISTING_KEY,
        0,
        0,
        key,
    ))
}

fn check(result: Result<(ReservationState, Effects), Refusal>) -> Asc {
    match result {
        Err(Refusal::Check(sense)) => sense.asc,
        other => panic!("expected CHECK CONDITION, got {other:?}"),
    }
}

fn conflict(result: Result<(ReservationState, Effects), Refusal>) {
    assert_eq!(result.err(), Some(Refusal::ReservationConflict));
}

fn keys(state: &ReservationState) -> Vec<u64> {
    state.registrations.iter().map(|r| r.key).collect()
}

fn reading(state: &ReservationState, n: u8) -> bool {
    let read = lunar_wire::scsi::decode(&[0x28, 0, 0, 0, 0, 1, 0, 0, 1, 0]).unwrap();
    !state.conflicts(&nexus_id(n), access_class(&read).unwrap())
}

fn writing(state: &ReservationState, n: u8) -> bool {
    let write = lunar_wire::scsi::decode(&[0x2a, 0, 0, 0, 0, 1, 0, 0, 1, 0]).unwrap();
    !state.conflicts(&nexus_id(n), access_class(&write).unwrap())
}

/// Attentions nexus `n` would pick up from `state` if it had seen everything before `from`.
fn attentions_for(state: &ReservationState, n: u8, from: u64) -> Vec<UnitAttention> {
    state
        .events()
        .iter()
        .filter(|e| e.seq >= from && e.target.includes(&nexus_id(n)))
        .map(|e| e.attention)
        .collect()
}

#[test]
fn register_reregister_and_unregister() {
    let state = ReservationState::default();
    // Unregistering an unregistered nexus changes nothing.
    assert_eq!(ok(out(&state, 1, sa::PR_OUT_REGISTER, 0, 0, 0)), state);
    // REGISTER from an unregistered nexus with a reservation key is a conflict.
    conflict(out(&state, 1, sa::PR_OUT_REGISTER, 0, 5, 6));
    let (state, effects) = out(&state, 1, sa::PR_OUT_REGISTER, 0, 0, 0xabc).unwrap();
    assert!(effects.persist);
    assert_eq!((keys(&state), state.generation), (vec![0xabc], 1));
    // Re-registering needs the current key...
    conflict(out(&state, 1, sa::PR_OUT_REGISTER, 0, 0, 0xabd));
    let state = ok(out(&state, 1, sa::PR_OUT_REGISTER, 0, 0xabc, 0xabd));
    assert_eq!((keys(&state), state.generation), (vec![0xabd], 2));
    // ... unless the existing key is ignored.
    let state = register(&state, 1, 0xabe);
    assert_eq!((keys(&state), state.generation), (vec![0xabe], 3));
    let state = ok(out(&state, 1, sa::PR_OUT_REGISTER, 0, 0xabe, 0));
    assert!(state.registrations.is_empty());
    assert_eq!(state.generation, 4);
}

#[test]
fn registration_flags_and_limits() {
    let param = basic(0, 9, 0x01); // APTPL
    let cdb = prout_cdb(sa::PR_OUT_REGISTER, 0, 24);
    let (state, _) = apply_out(&ReservationState::default(), &nexus_id(1), &cdb, &param).unwrap();
    assert!(state.aptpl);
    // SPEC_I_PT is not supported.
    let param = basic(0, 9, 0x08);
    let result = apply_out(&ReservationState::default(), &nexus_id(1), &cdb, &param);
    assert_eq!(check(result), Asc::INVALID_FIELD_IN_PARAMETER_LIST);
    // ALL_TG_PT: the registration covers the initiator port through every target port.
    let param = basic(0, 9, 0x04);
    let (state, _) = apply_out(&ReservationState::default(), &nexus_id(1), &cdb, &param).unwrap();
    let mut other_port = nexus_id(1);
    other_port.target_port = "iqn.2026-11.dev.lunar:t,t,0x0002".to_string();
    assert_eq!(state.registration_for(&other_port).map(|r| r.key), Some(9));
    // A parameter list of the wrong length.
    let result = apply_out(
        &ReservationState::default(),
        &nexus_id(1),
        &prout_cdb(sa::PR_OUT_REGISTER, 0, 20),
        &[0; 20],
    );
    assert_eq!(check(result), Asc::PARAMETER_LIST_LENGTH_ERROR);
    let result = apply_out(
        &ReservationState::default(),
        &nexus_id(1),
        &prout_cdb(sa::PR_OUT_REGISTER, 0, 24),
        &[0; 10],
    );
    assert_eq!(check(result), Asc::PARAMETER_LIST_LENGTH_ERROR);
    // Resources are bounded.
    let mut full = ReservationState::default();
    for n in 0..MAX_REGISTRATIONS {
        full.registrations.push(Registration {
            nexus: NexusId {
                initiator_port: format!("i{n},i,0x1"),
                ..NexusId::default()
            },
            key: 1,
            all_target_ports: false,
        });
    }
    assert_eq!(
        check(out(&full, 1, sa::PR_OUT_REGISTER, 0, 0, 1)),
        Asc::INSUFFICIENT_REGISTRATION_RESOURCES
    );
}

#[test]
fn reserve_every_type_then_release() {
    let mut state = register(&ReservationState::default(), 1, 11);
    for pr_type in [WE, EA, WE_RO, EA_RO, WE_AR, EA_AR] {
        let (reserved, effects) = out(&state, 1, sa::PR_OUT_RESERVE, pr_type, 11, 0).unwrap();
        assert!(effects.persist);
        assert_eq!(
            reserved.generation, state.generation,
            "RESERVE keeps the generation"
        );
        let held = reserved.reservation.clone().expect("reserved");
        assert_eq!(held.pr_type.code(), pr_type);
        let expected_key = if held.pr_type.all_registrants() {
            0
        } else {
            11
        };
        assert_eq!(reserved.reservation_key(), expected_key);
        // Reserving again with the same type changes nothing; another type conflicts.
        assert_eq!(
            ok(out(&reserved, 1, sa::PR_OUT_RESERVE, pr_type, 11, 0)),
            reserved
        );
        let other = if pr_type == WE { EA } else { WE };
        conflict(out(&reserved, 1, sa::PR_OUT_RESERVE, other, 11, 0));
        // Releasing another type is an invalid release.
        assert_eq!(
            check(out(&reserved, 1, sa::PR_OUT_RELEASE, other, 11, 0)),
            Asc::INVALID_RELEASE_OF_PERSISTENT_RESERVATION
        );
        state = ok(out(&reserved, 1, sa::PR_OUT_RELEASE, pr_type, 11, 0));
        assert!(state.reservation.is_none());
    }
    // The key must match; scope and type must be valid.
    conflict(out(&state, 1, sa::PR_OUT_RESERVE, WE, 12, 0));
    conflict(out(&state, 2, sa::PR_OUT_RESERVE, WE, 0, 0));
    assert_eq!(
        check(out(&state, 1, sa::PR_OUT_RESERVE, 2, 11, 0)),
        Asc::INVALID_FIELD_IN_CDB
    );
    assert_eq!(
        check(out(&state, 1, sa::PR_OUT_RESERVE, 0x10 | WE, 11, 0)),
        Asc::INVALID_FIELD_IN_CDB
    );
}

#[test]
fn access_of_other_nexuses_per_type() {
    // (type, registered reads, registered writes, unregistered reads, unregistered writes)
    let table = [
        (EA, false, false, false, false),
        (WE, true, false, true, false),
        (EA_RO, true, true, false, false),
        (WE_RO, true, true, true, false),
        (EA_AR, true, true, false, false),
        (WE_AR, true, true, true, false),
    ];
    for (pr_type, reg_read, reg_write, unreg_read, unreg_write) in table {
        let state = register(&register(&ReservationState::default(), 1, 1), 2, 2);
        let state = ok(out(&state, 1, sa::PR_OUT_RESERVE, pr_type, 1, 0));
        assert!(reading(&state, 1) && writing(&state, 1), "holder {pr_type}");
        assert_eq!(reading(&state, 2), reg_read, "registered read {pr_type}");
        assert_eq!(writing(&state, 2), reg_write, "registered write {pr_type}");
        let state = ok(out(&state, 2, sa::PR_OUT_REGISTER, 0, 2, 0));
        assert_eq!(
            reading(&state, 2),
            unreg_read,
            "unregistered read {pr_type}"
        );
        assert_eq!(
            writing(&state, 2),
            unreg_write,
            "unregistered write {pr_type}"
        );
        // Informational commands are never refused.
        let inquiry = lunar_wire::scsi::decode(&[0x12, 0, 0, 0, 36, 0]).unwrap();
        assert!(!state.conflicts(&nexus_id(2), access_class(&inquiry).unwrap()));
    }
}

#[test]
fn unregistering_the_holder_releases_unless_all_registrants() {
    for (pr_type, shared) in [
        (EA, false),
        (WE, false),
        (EA_RO, false),
        (WE_RO, false),
        (EA_AR, true),
        (WE_AR, true),
    ] {
        let state = register(&register(&ReservationState::default(), 1, 1), 2, 2);
        let state = ok(out(&state, 1, sa::PR_OUT_RESERVE, pr_type, 1, 0));
        let seq = state.next_event_seq;
        let state = ok(out(&state, 1, sa::PR_OUT_REGISTER, 0, 1, 0));
        assert_eq!(state.reservation.is_some(), shared, "type {pr_type}");
        let released_told = attentions_for(&state, 2, seq) == [UnitAttention::ReservationsReleased];
        assert_eq!(
            released_told,
            matches!(pr_type, EA_RO | WE_RO),
            "type {pr_type}"
        );
        if shared {
            // Another registrant releases the all-registrants reservation.
            let state = ok(out(&state, 2, sa::PR_OUT_RELEASE, pr_type, 2, 0));
            assert!(state.reservation.is_none());
        }
    }
}

#[test]
fn release_by_a_non_holder_changes_nothing() {
    let state = register(&register(&ReservationState::default(), 1, 1), 2, 2);
    let state = ok(out(&state, 1, sa::PR_OUT_RESERVE, EA, 1, 0));
    assert_eq!(ok(out(&state, 2, sa::PR_OUT_RELEASE, EA, 2, 0)), state);
    let released = ok(out(&state, 1, sa::PR_OUT_RELEASE, EA, 1, 0));
    assert!(released.reservation.is_none());
    assert_eq!(
        ok(out(&released, 1, sa::PR_OUT_RELEASE, EA, 1, 0)),
        released
    );
}

#[test]
fn registrants_only_release_tells_the_other_registrants() {
    let state = register(
        &register(&register(&ReservationState::default(), 1, 1), 2, 2),
        3,
        3,
    );
    let state = ok(out(&state, 1, sa::PR_OUT_RESERVE, WE_RO, 1, 0));
    let seq = state.next_event_seq;
    let state = ok(out(&state, 1, sa::PR_OUT_RELEASE, WE_RO, 1, 0));
    assert_eq!(
        attentions_for(&state, 2, seq),
        [UnitAttention::ReservationsReleased]
    );
    assert_eq!(
        attentions_for(&state, 3, seq),
        [UnitAttention::ReservationsReleased]
    );
    assert!(attentions_for(&state, 1, seq).is_empty());
    assert!(attentions_for(&state, 4, seq).is_empty(), "not registered");
}

#[test]
fn clear_removes_everything_and_tells_the_others() {
    let state = register(&register(&ReservationState::default(), 1, 1), 2, 2);
    let state = ok(out(&state, 1, sa::PR_OUT_RESERVE, EA, 1, 0));
    conflict(out(&state, 3, sa::PR_OUT_CLEAR, 0, 3, 0));
    let generation = state.generation;
    let seq = state.next_event_seq;
    let (cleared, effects) = out(&state, 2, sa::PR_OUT_CLEAR, 0, 2, 0).unwrap();
    assert!(effects.persist);
    assert!(cleared.registrations.is_empty() && cleared.reservation.is_none());
    assert_eq!(cleared.generation, generation + 1);
    assert_eq!(
        attentions_for(&cleared, 1, seq),
        [UnitAttention::ReservationsPreempted]
    );
    assert!(attentions_for(&cleared, 2, seq).is_empty());
}

#[test]
fn preempt_without_a_reservation_removes_registrations() {
    let state = register(&register(&ReservationState::default(), 1, 0x11), 2, 0x22);
    let seq = state.next_event_seq;
    let (state2, effects) = out(&state, 2, sa::PR_OUT_PREEMPT, EA, 0x22, 0x11).unwrap();
    assert!(effects.abort_tasks_of.is_empty());
    assert_eq!(keys(&state2), vec![0x22]);
    assert_eq!(state2.generation, state.generation + 1);
    assert!(state2.reservation.is_none());
    assert_eq!(
        attentions_for(&state2, 1, seq),
        [UnitAttention::RegistrationsPreempted]
    );
    // A key nobody holds is a conflict, key 0 an invalid field.
    conflict(out(&state, 2, sa::PR_OUT_PREEMPT, EA, 0x22, 0x33));
    assert_eq!(
        check(out(&state, 2, sa::PR_OUT_PREEMPT, EA, 0x22, 0)),
        Asc::INVALID_FIELD_IN_PARAMETER_LIST
    );
    conflict(out(&state, 2, sa::PR_OUT_PREEMPT, EA, 0x23, 0x11));
}

#[test]
fn preempt_the_holder_takes_the_reservation() {
    let state = register(
        &register(&register(&ReservationState::default(), 1, 1), 2, 2),
        3,
        3,
    );
    let state = ok(out(&state, 1, sa::PR_OUT_RESERVE, WE, 1, 0));
    let seq = state.next_event_seq;
    let (state, effects) = out(&state, 2, sa::PR_OUT_PREEMPT_AND_ABORT, EA, 2, 1).unwrap();
    let held = state.reservation.clone().unwrap();
    assert!(held.holder.same_nexus(&nexus_id(2)));
    assert_eq!(held.pr_type, PrType::ExclusiveAccess);
    assert_eq!(keys(&state), vec![2, 3]);
    assert_eq!(effects.abort_tasks_of.len(), 1);
    assert!(effects.abort_tasks_of[0].covers(&nexus_id(1)));
    assert_eq!(
        attentions_for(&state, 1, seq),
        [UnitAttention::RegistrationsPreempted]
    );
    // The type changed: the registrant that stays is told its reservation was released.
    assert_eq!(
        attentions_for(&state, 3, seq),
        [UnitAttention::ReservationsReleased]
    );
    assert!(attentions_for(&state, 2, seq).is_empty());
    // Preempting a non-holder key leaves the reservation alone.
    let state = ok(out(&state, 2, sa::PR_OUT_PREEMPT, EA, 2, 3));
    assert_eq!(keys(&state), vec![2]);
    assert!(state.is_holder(&nexus_id(2)));
}

#[test]
fn preempt_all_registrants_with_key_zero() {
    let state = register(
        &register(&register(&ReservationState::default(), 1, 1), 2, 2),
        3,
        3,
    );
    let state = ok(out(&state, 1, sa::PR_OUT_RESERVE, WE_AR, 1, 0));
    let state = ok(out(&state, 3, sa::PR_OUT_PREEMPT, WE, 3, 0));
    assert_eq!(keys(&state), vec![3]);
    let held = state.reservation.clone().unwrap();
    assert_eq!(held.pr_type, PrType::WriteExclusive);
    assert!(state.is_holder(&nexus_id(3)));
}

/// The REGISTER AND MOVE parameter list moving to nexus `n`'s initiator port.
fn move_param(key: u64, service_action_key: u64, flags: u8, relative_port: u16, n: u8) -> Vec<u8> {
    let id = nexus_id(n).transport_id();
    let mut param = basic(key, service_action_key, 0);
    param[17] = flags;
    param[18..20].copy_from_slice(&relative_port.to_be_bytes());
    param[20..24].copy_from_slice(&(id.len() as u32).to_be_bytes());
    param.extend_from_slice(&id);
    param
}

fn register_and_move(
    state: &ReservationState,
    n: u8,
    param: &[u8],
) -> Result<(ReservationState, Effects), Refusal> {
    let cdb = prout_cdb(sa::PR_OUT_REGISTER_AND_MOVE, WE, param.len() as u32);
    apply_out(state, &nexus_id(n), &cdb, param)
}

#[test]
fn register_and_move_hands_the_reservation_over() {
    let state = register(&ReservationState::default(), 1, 1);
    conflict(register_and_move(&state, 1, &move_param(1, 5, 0, 1, 2)));
    let state = ok(out(&state, 1, sa::PR_OUT_RESERVE, WE, 1, 0));
    let generation = state.generation;
    let (moved, effects) = register_and_move(&state, 1, &move_param(1, 5, 0x02, 1, 2)).unwrap();
    assert!(effects.persist);
    assert!(moved.is_holder(&nexus_id(2)));
    assert_eq!(moved.registration_for(&nexus_id(2)).map(|r| r.key), Some(5));
    assert!(moved.registration_for(&nexus_id(1)).is_none(), "UNREG");
    assert_eq!(moved.generation, generation + 1);
    // Refusals: wrong key, key 0, to itself, unknown relative port, bad TransportID.
    conflict(register_and_move(&state, 1, &move_param(2, 5, 0, 1, 2)));
    assert_eq!(
        check(register_and_move(&state, 1, &move_param(1, 0, 0, 1, 2))),
        Asc::INVALID_FIELD_IN_PARAMETER_LIST
    );
    assert_eq!(
        check(register_and_move(&state, 1, &move_param(1, 5, 0, 1, 1))),
        Asc::INVALID_FIELD_IN_PARAMETER_LIST
    );
    assert_eq!(
        check(register_and_move(&state, 1, &move_param(1, 5, 0, 9, 2))),
        Asc::INVALID_FIELD_IN_PARAMETER_LIST
    );
    let mut bad = move_param(1, 5, 0, 1, 2);
    bad[24] = 0x01;
    assert_eq!(
        check(register_and_move(&state, 1, &bad)),
        Asc::INVALID_FIELD_IN_PARAMETER_LIST
    );
    let mut short = move_param(1, 5, 0, 1, 2);
    short.truncate(30);
    assert_eq!(
        check(register_and_move(&state, 1, &short)),
        Asc::PARAMETER_LIST_LENGTH_ERROR
    );
    // Not from an all-registrants reservation.
    let shared = ok(out(
        &ok(out(&state, 1, sa::PR_OUT_RELEASE, WE, 1, 0)),
        1,
        sa::PR_OUT_RESERVE,
        WE_AR,
        1,
        0,
    ));
    conflict(register_and_move(&shared, 1, &move_param(1, 5, 0, 1, 2)));
}

#[test]
fn legacy_reservations_exclude_others_until_released_or_lost() {
    let state = ReservationState::default();
    let state = legacy::reserve(&state, &nexus_id(1)).unwrap();
    assert_eq!(
        legacy::reserve(&state, &nexus_id(1)).unwrap(),
        state,
        "again by the holder"
    );
    assert_eq!(
        legacy::reserve(&state, &nexus_id(2)),
        Err(Refusal::ReservationConflict)
    );
    assert_eq!(
        legacy::release(&state, &nexus_id(2)).unwrap(),
        state,
        "a no-op from others"
    );
    assert!(!writing(&state, 2) && !reading(&state, 2) && writing(&state, 1));
    // Persistent reservation commands from others conflict too.
    conflict(out(&state, 2, sa::PR_OUT_REGISTER, 0, 0, 1));
    let released = legacy::release(&state, &nexus_id(1)).unwrap();
    assert!(released.legacy_holder.is_none());
    // Nexus loss and resets end it.
    assert!(state.on_nexus_loss(&nexus_id(2)).is_none());
    assert!(state
        .on_nexus_loss(&nexus_id(1))
        .unwrap()
        .legacy_holder
        .is_none());
    assert!(state.on_logical_unit_reset().legacy_holder.is_none());
    assert!(state.on_target_cold_reset().legacy_holder.is_none());
    // With registrations, RESERVE conflicts and RELEASE needs a registration.
    let registered = register(&ReservationState::default(), 1, 1);
    assert_eq!(
        legacy::reserve(&registered, &nexus_id(1)),
        Err(Refusal::ReservationConflict)
    );
    assert_eq!(
        legacy::release(&registered, &nexus_id(1)).unwrap(),
        registered
    );
    assert_eq!(
        legacy::release(&registered, &nexus_id(2)),
        Err(Refusal::ReservationConflict)
    );
}

#[test]
fn resets_raise_attentions_for_everyone_and_keep_persistent_reservations() {
    let state = register(&ReservationState::default(), 1, 1);
    let state = ok(out(&state, 1, sa::PR_OUT_RESERVE, EA, 1, 0));
    let seq = state.next_event_seq;
    let reset = state.on_logical_unit_reset();
    assert_eq!(reset.reservation, state.reservation);
    for n in [1, 2] {
        assert_eq!(
            attentions_for(&reset, n, seq),
            [UnitAttention::LogicalUnitReset]
        );
    }
    let cold = state.on_target_cold_reset();
    assert_eq!(attentions_for(&cold, 3, seq), [UnitAttention::PowerOnReset]);
    let resized = state.with_unit_attention_for_all(UnitAttention::CapacityDataChanged);
    assert_eq!(
        attentions_for(&resized, 2, seq),
        [UnitAttention::CapacityDataChanged]
    );
}

#[test]
fn medium_prevention_and_load_eject() {
    let state = ReservationState::default();
    let prevented = medium::prevent_allow(&state, &nexus_id(1), true);
    assert_eq!(
        medium::prevent_allow(&prevented, &nexus_id(1), true),
        prevented
    );
    let removal_prevented = medium::load_eject(&prevented, &nexus_id(2), false);
    assert_eq!(
        removal_prevented,
        Err(Refusal::Check(lunar_wire::scsi::Sense::new(
            SenseKey::IllegalRequest,
            Asc::MEDIUM_REMOVAL_PREVENTED
        )))
    );
    assert!(medium::load_eject(&prevented, &nexus_id(1), true).is_err());
    // Allowed again by the nexus that prevented it, or lost with it.
    let allowed = medium::prevent_allow(&prevented, &nexus_id(1), false);
    assert!(allowed.medium.prevented_by.is_empty());
    let lost = prevented.on_nexus_loss(&nexus_id(1)).unwrap();
    assert!(lost.medium.prevented_by.is_empty());
    assert!(prevented
        .on_logical_unit_reset()
        .medium
        .prevented_by
        .is_empty());
    let ejected = medium::load_eject(&allowed, &nexus_id(1), false).unwrap();
    assert!(!ejected.medium.loaded);
    let seq = ejected.next_event_seq;
    let loaded = medium::load_eject(&ejected, &nexus_id(1), true).unwrap();
    assert!(loaded.medium.loaded);
    assert_eq!(
        attentions_for(&loaded, 2, seq),
        [UnitAttention::MediumMayHaveChanged]
    );
    assert!(attentions_for(&loaded, 1, seq).is_empty());
}

#[test]
fn apply_control_answers_and_reports_changes() {
    let state = ReservationState::default();
    let cdb = prout_cdb(sa::PR_OUT_REGISTER, 0, 24);
    let applied = apply_control(&state, &nexus_id(1), &cdb, &basic(0, 7, 0)).unwrap();
    assert_eq!(applied.reply.status, status::GOOD);
    assert_eq!(applied.reply.transfer_len_bytes, 24);
    let state = applied.state.expect("changed");
    assert!(applied.effects.persist);
    // Nothing changes: no state to publish.
    let applied = apply_control(&state, &nexus_id(2), &cdb, &basic(0, 0, 0)).unwrap();
    assert!(applied.state.is_none());
    let reply = apply_control(&state, &nexus_id(2), &cdb, &basic(1, 2, 0)).unwrap_err();
    assert_eq!(
        (reply.status, reply.transfer_len_bytes),
        (status::RESERVATION_CONFLICT, 24)
    );
    // RESERVE (6), then RELEASE (6).
    let reserve = [opcode::RESERVE_6, 0, 0, 0, 0, 0];
    let fresh = ReservationState::default();
    let applied = apply_control(&fresh, &nexus_id(1), &reserve, &[]).unwrap();
    let reserved = applied.state.unwrap();
    assert!(
        !applied.effects.persist,
        "SPC-2 reservations are not durable"
    );
    let release = [opcode::RELEASE_10, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    let applied = apply_control(&reserved, &nexus_id(1), &release, &[]).unwrap();
    assert_eq!(applied.state, Some(fresh.clone()));
    // PREVENT from a nexus other than an SPC-2 holder conflicts.
    let prevent = [opcode::PREVENT_ALLOW_MEDIUM_REMOVAL, 0, 0, 0, 1, 0];
    let reply = apply_control(&reserved, &nexus_id(2), &prevent, &[]).unwrap_err();
    assert_eq!(reply.status, status::RESERVATION_CONFLICT);
    let applied = apply_control(&fresh, &nexus_id(2), &prevent, &[]).unwrap();
    assert_eq!(applied.state.unwrap().medium.prevented_by.len(), 1);
    // Eject then load.
    let eject = [opcode::START_STOP_UNIT, 0, 0, 0, 0x02, 0];
    let ejected = apply_control(&fresh, &nexus_id(1), &eject, &[])
        .unwrap()
        .state
        .unwrap();
    assert!(!ejected.medium.loaded);
    // Commands that are not shared-state commands, or that do not decode.
    let reply = apply_control(&fresh, &nexus_id(1), &[0x00, 0, 0, 0, 0, 0], &[]).unwrap_err();
    assert_eq!(reply.status, status::CHECK_CONDITION);
    let reply = apply_control(&fresh, &nexus_id(1), &[0x5f, 0x1f], &[]).unwrap_err();
    assert_eq!(reply.status, status::CHECK_CONDITION);
}

fn read_in_data(state: &ReservationState, service_action: u8) -> Vec<u8> {
    let cdb = [
        opcode::PERSISTENT_RESERVE_IN,
        service_action,
        0,
        0,
        0,
        0,
        0,
        0xff,
        0xff,
        0,
    ];
    read_in(state, &nexus_id(1), &cdb).unwrap()
}

#[test]
fn persistent_reserve_in_data() {
    let state = register(&register(&ReservationState::default(), 1, 0x11), 2, 0x22);
    let keys_data = read_in_data(&state, 0);
    assert_eq!(&keys_data[0..4], &2u32.to_be_bytes());
    assert_eq!(&keys_data[4..8], &16u32.to_be_bytes());
    assert_eq!(&keys_data[8..16], &0x11u64.to_be_bytes());
    assert_eq!(&keys_data[16..24], &0x22u64.to_be_bytes());
    assert_eq!(read_in_data(&state, 1), [0, 0, 0, 2, 0, 0, 0, 0]);
    let reserved = ok(out(&state, 2, sa::PR_OUT_RESERVE, EA_RO, 0x22, 0));
    let reservation = read_in_data(&reserved, 1);
    assert_eq!(reservation.len(), 24);
    assert_eq!(&reservation[4..8], &16u32.to_be_bytes());
    assert_eq!(&reservation[8..16], &0x22u64.to_be_bytes());
    assert_eq!(reservation[21], EA_RO);
    let caps = read_in_data(&state, 2);
    assert_eq!(caps, [0, 8, 0x15, 0x80, 0xea, 0x01, 0, 0]);
    // READ FULL STATUS: one descriptor per registration, with its TransportID.
    let full = read_in_data(&reserved, 3);
    let additional = u32::from_be_bytes(full[4..8].try_into().unwrap()) as usize;
    assert_eq!(full.len(), 8 + additional);
    let first = &full[8..];
    assert_eq!(&first[0..8], &0x11u64.to_be_bytes());
    assert_eq!(first[12] & 0x01, 0, "not the holder");
    assert_eq!(&first[18..20], &1u16.to_be_bytes());
    let id_len = u32::from_be_bytes(first[20..24].try_into().unwrap()) as usize;
    let (port, _) = crate::nexus::parse_transport_id(&first[24..24 + id_len]).unwrap();
    assert_eq!(port, nexus_id(1).initiator_port);
    let second = &first[24 + id_len..];
    assert_eq!(&second[0..8], &0x22u64.to_be_bytes());
    assert_eq!((second[12] & 0x01, second[13]), (1, EA_RO));
    // Unsupported service actions.
    let cdb = [opcode::PERSISTENT_RESERVE_IN, 4, 0, 0, 0, 0, 0, 0, 8, 0];
    assert!(read_in(&state, &nexus_id(1), &cdb).is_err());
}

#[test]
fn the_durable_part_round_trips_and_volatile_parts_are_dropped() {
    let state = register(&register(&ReservationState::default(), 1, 0x11), 2, 0x22);
    let mut state = ok(out(&state, 2, sa::PR_OUT_RESERVE, WE_AR, 0x22, 0));
    state.aptpl = true;
    state.legacy_holder = Some(nexus_id(3));
    state.medium.loaded = false;
    let state = state.on_logical_unit_reset();
    let bytes = codec::encode(&state);
    let decoded = codec::decode(&bytes).unwrap();
    assert_eq!(decoded, state.restarted());
    assert_eq!(decoded.registrations, state.registrations);
    assert!(decoded.legacy_holder.is_none() && decoded.medium.loaded);
    assert!(decoded.events().is_empty());
    assert_eq!(codec::encode(&decoded), bytes);
}

#[test]
fn decode_refuses_damaged_bytes() {
    use codec::DecodeError;
    let state = register(&ReservationState::default(), 1, 0x11);
    let bytes = codec::encode(&state);
    assert_eq!(codec::decode(b"nope"), Err(DecodeError::BadMagic));
    let mut newer = bytes.clone();
    newer[4] = 9;
    assert_eq!(
        codec::decode(&newer),
        Err(DecodeError::UnsupportedVersion(9))
    );
    assert!(matches!(
        codec::decode(&bytes[..bytes.len() - 1]),
        Err(DecodeError::Truncated { .. })
    ));
    let mut longer = bytes.clone();
    longer.push(0);
    assert_eq!(
        codec::decode(&longer),
        Err(DecodeError::TrailingBytes { extra_bytes: 1 })
    );
    let mut zero_key = bytes.clone();
    zero_key[12..20].fill(0);
    assert_eq!(codec::decode(&zero_key), Err(DecodeError::ZeroKey));
    let mut bad_type = bytes;
    let last = bad_type.len() - 1;
    bad_type[last] = 2;
    assert_eq!(codec::decode(&bad_type), Err(DecodeError::BadType(2)));
}

#[test]
fn the_event_log_is_bounded() {
    let mut state = ReservationState::default();
    for _ in 0..EVENT_LOG_MAX + 10 {
        state.raise(UnitAttention::InquiryDataChanged, UaTarget::All);
    }
    assert_eq!(state.events().len(), EVENT_LOG_MAX);
    assert_eq!(state.events()[0].seq, 10);
    assert_eq!(state.next_event_seq, (EVENT_LOG_MAX + 10) as u64);
    state.raise(
        UnitAttention::ReservationsPreempted,
        UaTarget::Registrants(Vec::new()),
    );
    assert_eq!(
        state.next_event_seq,
        (EVENT_LOG_MAX + 10) as u64,
        "for nobody: not logged"
    );
}

fn arb_state() -> impl Strategy<Value = ReservationState> {
    let ops = proptest::collection::vec(
        (1u8..5, 0u8..8, 0u8..9, 0u64..4, 0u64..4, any::<u8>()),
        0..12,
    );
    (ops, any::<bool>()).prop_map(|(ops, legacy)| {
        let mut state = ReservationState::default();
        for (n, service_action, pr_type, key, service_action_key, flags) in ops {
            let cdb = prout_cdb(service_action, pr_type, 24);
            let param = basic(key, service_action_key, flags & 0x05);
            if let Ok((next, _)) = apply_out(&state, &nexus_id(n), &cdb, &param) {
                state = next;
            }
        }
        if legacy && state.registrations.is_empty() {
            state.legacy_holder = Some(nexus_id(4));
        }
        state
    })
}

fn invariants_hold(state: &ReservationState) -> bool {
    let keys_nonzero = state.registrations.iter().all(|r| r.key != 0);
    let bounded = state.registrations.len() <= MAX_REGISTRATIONS;
    let holder_registered = match &state.reservation {
        None => true,
        Some(r) if r.pr_type.all_registrants() => !state.registrations.is_empty(),
        Some(r) => state
            .registrations
            .iter()
            .any(|reg| reg.nexus.same_nexus(&r.holder)),
    };
    let unique = state.registrations.iter().enumerate().all(|(i, a)| {
        state.registrations[i + 1..]
            .iter()
            .all(|b| !b.covers(&a.nexus))
    });
    keys_nonzero && bounded && holder_registered && unique
}

proptest! {
    #[test]
    fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = codec::decode(&bytes);
        let mut prefixed = b"LUPR\x01".to_vec();
        prefixed.extend_from_slice(&bytes);
        let _ = codec::decode(&prefixed);
    }

    #[test]
    fn encode_then_decode_is_the_restarted_state(state in arb_state()) {
        let decoded = codec::decode(&codec::encode(&state));
        prop_assert_eq!(decoded, Ok(state.restarted()));
    }

    #[test]
    fn shared_state_commands_keep_the_invariants(
        state in arb_state(),
        n in 1u8..5,
        cdb in proptest::collection::vec(any::<u8>(), 0..12),
        opcode in prop_oneof![Just(0x5fu8), Just(0x16), Just(0x17), Just(0x1e), Just(0x1b), any::<u8>()],
        param in proptest::collection::vec(any::<u8>(), 0..80),
    ) {
        let mut cdb = cdb;
        if let Some(first) = cdb.first_mut() {
            *first = opcode;
        }
        prop_assert!(invariants_hold(&state));
        match apply_control(&state, &nexus_id(n), &cdb, &param) {
            Ok(applied) => {
                prop_assert_eq!(applied.reply.status, status::GOOD);
                if let Some(next) = applied.state {
                    prop_assert!(invariants_hold(&next));
                    prop_assert_ne!(&next, &state);
                }
            }
            Err(reply) => prop_assert_ne!(reply.status, status::GOOD),
        }
        let _ = read_in(&state, &nexus_id(n), &cdb);
        if let Ok(Cdb::PersistentReserveOut { .. }) = lunar_wire::scsi::decode(&cdb) {
            let _ = apply_out(&state, &nexus_id(n), &cdb, &param);
        }
    }
}
