//! RESERVE/RELEASE, the medium, resets, events, PERSISTENT RESERVE IN, the encoding, and
//! property tests over whole states.

use lunar_wire::scsi::{opcode, service_action as sa, status, Asc, Cdb, SenseKey};
use proptest::prelude::*;

use super::*;
use crate::pr::*;
use crate::test_support::nexus_id;

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
