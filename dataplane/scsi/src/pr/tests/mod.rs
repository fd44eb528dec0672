//! Tests of the shared-state machine: `out` covers every PERSISTENT RESERVE OUT service action
//! and the access each reservation type leaves other nexuses; `state` covers RESERVE/RELEASE,
//! the removable medium, resets, the unit-attention log, PERSISTENT RESERVE IN data, the
//! durable encoding and property tests. This module holds the helpers both use.

mod out;
mod state;

use lunar_wire::scsi::{opcode, service_action as sa, Asc};

use super::*;
use crate::test_support::nexus_id;

pub(super) const WE: u8 = 1;
pub(super) const EA: u8 = 3;
pub(super) const WE_RO: u8 = 5;
pub(super) const EA_RO: u8 = 6;
pub(super) const WE_AR: u8 = 7;
pub(super) const EA_AR: u8 = 8;

pub(super) fn prout_cdb(service_action: u8, pr_type: u8, param_len: u32) -> [u8; 10] {
    let mut cdb = [0u8; 10];
    cdb[0] = opcode::PERSISTENT_RESERVE_OUT;
    cdb[1] = service_action;
    cdb[2] = pr_type;
    cdb[5..9].copy_from_slice(&param_len.to_be_bytes());
    cdb
}

pub(super) fn basic(key: u64, service_action_key: u64, flags: u8) -> Vec<u8> {
    let mut param = vec![0u8; 24];
    param[0..8].copy_from_slice(&key.to_be_bytes());
    param[8..16].copy_from_slice(&service_action_key.to_be_bytes());
    param[20] = flags;
    param
}

/// Apply PERSISTENT RESERVE OUT `service_action` from nexus `n` and return the new state.
pub(super) fn out(
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

pub(super) fn ok(result: Result<(ReservationState, Effects), Refusal>) -> ReservationState {
    match result {
        Ok((state, _)) => state,
        Err(refusal) => panic!("refused: {refusal:?}"),
    }
}

pub(super) fn register(state: &ReservationState, n: u8, key: u64) -> ReservationState {
    ok(out(
        state,
        n,
        sa::PR_OUT_REGISTER_AND_IGNORE_EXISTING_KEY,
        0,
        0,
        key,
    ))
}

pub(super) fn check(result: Result<(ReservationState, Effects), Refusal>) -> Asc {
    match result {
        Err(Refusal::Check(sense)) => sense.asc,
        other => panic!("expected CHECK CONDITION, got {other:?}"),
    }
}

pub(super) fn conflict(result: Result<(ReservationState, Effects), Refusal>) {
    assert_eq!(result.err(), Some(Refusal::ReservationConflict));
}

pub(super) fn keys(state: &ReservationState) -> Vec<u64> {
    state.registrations.iter().map(|r| r.key).collect()
}

pub(super) fn reading(state: &ReservationState, n: u8) -> bool {
    let read = lunar_wire::scsi::decode(&[0x28, 0, 0, 0, 0, 1, 0, 0, 1, 0]).unwrap();
    !state.conflicts(&nexus_id(n), access_class(&read).unwrap())
}

pub(super) fn writing(state: &ReservationState, n: u8) -> bool {
    let write = lunar_wire::scsi::decode(&[0x2a, 0, 0, 0, 0, 1, 0, 0, 1, 0]).unwrap();
    !state.conflicts(&nexus_id(n), access_class(&write).unwrap())
}

/// Attentions nexus `n` would pick up from `state` if it had seen everything before `from`.
pub(super) fn attentions_for(state: &ReservationState, n: u8, from: u64) -> Vec<UnitAttention> {
    state
        .events()
        .iter()
        .filter(|e| e.seq >= from && e.target.includes(&nexus_id(n)))
        .map(|e| e.attention)
        .collect()
}
