//! PERSISTENT RESERVE OUT service actions and the access they leave other nexuses.

use lunar_wire::scsi::{service_action as sa, Asc};

use super::*;
use crate::pr::*;
use crate::test_support::nexus_id;

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
