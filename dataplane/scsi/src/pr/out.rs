//! PERSISTENT RESERVE OUT (SPC-4 5.13.7 – 5.13.11, 6.17): REGISTER, REGISTER AND IGNORE
//! EXISTING KEY, RESERVE, RELEASE, CLEAR, PREEMPT, PREEMPT AND ABORT and REGISTER AND MOVE,
//! applied to a [`ReservationState`] as pure functions.

use lunar_wire::scsi::{decode, service_action as sa, Asc, Cdb, Sense, SenseKey};

use crate::nexus::{parse_transport_id, NexusId};
use crate::unit_attention::UnitAttention;

use super::{
    Effects, PersistentReservation, PrType, Refusal, Registration, ReservationState, UaTarget,
    MAX_REGISTRATIONS,
};

/// Length of the basic PERSISTENT RESERVE OUT parameter list (SPEC_I_PT = 0).
const BASIC_PARAMETER_LIST_LEN_BYTES: usize = 24;
/// Header of the REGISTER AND MOVE parameter list, before the TransportID.
const MOVE_HEADER_LEN_BYTES: usize = 24;
const SPEC_I_PT: u8 = 0x08;
const ALL_TG_PT: u8 = 0x04;
const APTPL: u8 = 0x01;
const MOVE_UNREG: u8 = 0x02;
/// Only logical-unit scope exists in SPC-4.
const SCOPE_LU: u8 = 0x0;

const CONFLICT: Refusal = Refusal::ReservationConflict;
const PARAMETER_LIST_LENGTH_ERROR: Sense =
    Sense::new(SenseKey::IllegalRequest, Asc::PARAMETER_LIST_LENGTH_ERROR);
const INVALID_RELEASE: Sense = Sense::new(
    SenseKey::IllegalRequest,
    Asc::INVALID_RELEASE_OF_PERSISTENT_RESERVATION,
);
const INSUFFICIENT_RESOURCES: Sense = Sense::new(
    SenseKey::IllegalRequest,
    Asc::INSUFFICIENT_REGISTRATION_RESOURCES,
);
const SCOPE_FIELD: Sense = Sense::invalid_field_in_cdb(2, Some(7));
const TYPE_FIELD: Sense = Sense::invalid_field_in_cdb(2, Some(3));

/// The fields of the basic parameter list.
struct Parameters {
    key: u64,
    service_action_key: u64,
    spec_i_pt: bool,
    all_tg_pt: bool,
    aptpl: bool,
}

fn be64(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    if let Some(src) = bytes.get(at..at + 8) {
        word.copy_from_slice(src);
    }
    u64::from_be_bytes(word)
}

fn parameters(param: &[u8]) -> Parameters {
    let flags = param.get(20).copied().unwrap_or(0);
    Parameters {
        key: be64(param, 0),
        service_action_key: be64(param, 8),
        spec_i_pt: flags & SPEC_I_PT != 0,
        all_tg_pt: flags & ALL_TG_PT != 0,
        aptpl: flags & APTPL != 0,
    }
}

/// Apply a PERSISTENT RESERVE OUT command from `nexus` to `state`. `param_data` is the
/// command's data-out (its first PARAMETER LIST LENGTH bytes are the parameter list).
///
/// Returns the new state (equal to `state` when nothing changed) and the effects to carry out,
/// or why the command is refused.
pub fn apply_out(
    state: &ReservationState,
    nexus: &NexusId,
    cdb: &[u8],
    param_data: &[u8],
) -> Result<(ReservationState, Effects), Refusal> {
    let (service_action, scope, pr_type, param_len) = match decode(cdb) {
        Ok(Cdb::PersistentReserveOut {
            service_action,
            scope,
            pr_type,
            param_len,
        }) => (service_action, scope, pr_type, param_len),
        Ok(_) => return Err(Refusal::Check(Sense::invalid_opcode())),
        Err(error) => return Err(Refusal::Check(error.sense())),
    };
    if state
        .legacy_holder
        .as_ref()
        .is_some_and(|h| !h.same_nexus(nexus))
    {
        return Err(CONFLICT);
    }
    let param_len = usize::try_from(param_len).unwrap_or(usize::MAX);
    let param = param_data
        .get(..param_len)
        .ok_or(Refusal::Check(PARAMETER_LIST_LENGTH_ERROR))?;
    if service_action == sa::PR_OUT_REGISTER_AND_MOVE {
        return register_and_move(state, nexus, param);
    }
    if param.len() != BASIC_PARAMETER_LIST_LEN_BYTES {
        return Err(Refusal::Check(PARAMETER_LIST_LENGTH_ERROR));
    }
    let params = parameters(param);
    let mut next = state.clone();
    let mut effects = Effects::default();
    match service_action {
        sa::PR_OUT_REGISTER | sa::PR_OUT_REGISTER_AND_IGNORE_EXISTING_KEY => {
            let ignore_key = service_action == sa::PR_OUT_REGISTER_AND_IGNORE_EXISTING_KEY;
            register(&mut next, nexus, &params, ignore_key)?;
        }
        _ => {
            // Every other service action needs the nexus registered under the key it names.
            let registered = state
                .registration_for(nexus)
                .filter(|r| r.key == params.key)
                .ok_or(CONFLICT)?
                .clone();
            match service_action {
                sa::PR_OUT_RESERVE => reserve(&mut next, nexus, &registered, scope, pr_type)?,
                sa::PR_OUT_RELEASE => release(&mut next, nexus, scope, pr_type)?,
                sa::PR_OUT_CLEAR => clear(&mut next, &registered),
                sa::PR_OUT_PREEMPT | sa::PR_OUT_PREEMPT_AND_ABORT => {
                    let removed = preempt(&mut next, &registered, &params, scope, pr_type)?;
                    if service_action == sa::PR_OUT_PREEMPT_AND_ABORT {
                        effects.abort_tasks_of = removed;
                    }
                }
                _ => return Err(Refusal::Check(Sense::invalid_field_in_cdb(1, Some(4)))),
            }
        }
    }
    effects.persist = durable_part_changed(state, &next);
    Ok((next, effects))
}

fn durable_part_changed(before: &ReservationState, after: &ReservationState) -> bool {
    before.generation != after.generation
        || before.aptpl != after.aptpl
        || before.registrations != after.registrations
        || before.reservation != after.reservation
}

fn valid_type(scope: u8, pr_type: u8) -> Result<PrType, Refusal> {
    if scope != SCOPE_LU {
        return Err(Refusal::Check(SCOPE_FIELD));
    }
    PrType::from_code(pr_type).ok_or(Refusal::Check(TYPE_FIELD))
}

/// REGISTER and REGISTER AND IGNORE EXISTING KEY.
fn register(
    state: &mut ReservationState,
    nexus: &NexusId,
    params: &Parameters,
    ignore_key: bool,
) -> Result<(), Refusal> {
    let index = state.registrations.iter().position(|r| r.covers(nexus));
    let Some(index) = index else {
        if !ignore_key && params.key != 0 {
            return Err(CONFLICT);
        }
        if params.service_action_key == 0 {
            return Ok(()); // Unregistering an unregistered nexus changes nothing.
        }
        if params.spec_i_pt {
            return Err(Refusal::Check(Sense::invalid_field_in_parameter_list(
                20,
                Some(3),
            )));
        }
        if params.all_tg_pt
            && state
                .registrations
                .iter()
                .any(|r| r.nexus.same_initiator_port(nexus))
        {
            return Err(CONFLICT);
        }
        if state.registrations.len() >= MAX_REGISTRATIONS {
            return Err(Refusal::Check(INSUFFICIENT_RESOURCES));
        }
        state.registrations.push(Registration {
            nexus: nexus.clone(),
            key: params.service_action_key,
            all_target_ports: params.all_tg_pt,
        });
        state.aptpl = params.aptpl;
        state.generation = state.generation.wrapping_add(1);
        return Ok(());
    };
    if !ignore_key && params.key != state.registrations[index].key {
        return Err(CONFLICT);
    }
    if params.spec_i_pt {
        return Err(Refusal::Check(Sense::invalid_field_in_parameter_list(
            20,
            Some(3),
        )));
    }
    if params.service_action_key == 0 {
        unregister(state, index);
    } else {
        state.registrations[index].key = params.service_action_key;
        state.aptpl = params.aptpl;
    }
    state.generation = state.generation.wrapping_add(1);
    Ok(())
}

/// Remove registration `index`, releasing the reservation it held (SPC-4 5.13.11.2.3).
fn unregister(state: &mut ReservationState, index: usize) {
    let removed = state.registrations.remove(index);
    let Some(reservation) = &state.reservation else {
        return;
    };
    let pr_type = reservation.pr_type;
    let releases = if pr_type.all_registrants() {
        state.registrations.is_empty()
    } else {
        removed.nexus.same_nexus(&reservation.holder)
    };
    if releases {
        state.reservation = None;
        if pr_type.registrants_have_access() && !pr_type.all_registrants() {
            let others = state.registrations.clone();
            state.raise(
                UnitAttention::ReservationsReleased,
                UaTarget::Registrants(others),
            );
        }
    }
}

fn reserve(
    state: &mut ReservationState,
    nexus: &NexusId,
    registered: &Registration,
    scope: u8,
    pr_type: u8,
) -> Result<(), Refusal> {
    let pr_type = valid_type(scope, pr_type)?;
    match &state.reservation {
        None => {
            state.reservation = Some(PersistentReservation {
                holder: registered.nexus.clone(),
                pr_type,
            });
            Ok(())
        }
        Some(held) if state.is_holder(nexus) && held.pr_type == pr_type => Ok(()),
        Some(_) => Err(CONFLICT),
    }
}

fn release(
    state: &mut ReservationState,
    nexus: &NexusId,
    scope: u8,
    pr_type: u8,
) -> Result<(), Refusal> {
    let Some(held) = &state.reservation else {
        return Ok(());
    };
    if !state.is_holder(nexus) {
        return Ok(());
    }
    if scope != SCOPE_LU || pr_type != held.pr_type.code() {
        return Err(Refusal::Check(INVALID_RELEASE));
    }
    let announced = held.pr_type.release_is_announced();
    state.reservation = None;
    if announced {
        let others: Vec<Registration> = state
            .registrations
            .iter()
            .filter(|r| !r.covers(nexus))
            .cloned()
            .collect();
        state.raise(
            UnitAttention::ReservationsReleased,
            UaTarget::Registrants(others),
        );
    }
    Ok(())
}

fn clear(state: &mut ReservationState, registered: &Registration) {
    let others: Vec<Registration> = state
        .registrations
        .iter()
        .filter(|r| *r != registered)
        .cloned()
        .collect();
    state.registrations.clear();
    state.reservation = None;
    state.generation = state.generation.wrapping_add(1);
    state.raise(
        UnitAttention::ReservationsPreempted,
        UaTarget::Registrants(others),
    );
}

/// PREEMPT and PREEMPT AND ABORT (SPC-4 5.13.11.4). Returns the registrations removed.
fn preempt(
    state: &mut ReservationState,
    registered: &Registration,
    params: &Parameters,
    scope: u8,
    pr_type: u8,
) -> Result<Vec<Registration>, Refusal> {
    let target_key = params.service_action_key;
    let zero_key = Refusal::Check(Sense::invalid_field_in_parameter_list(8, None));
    let removed = match state.reservation.clone() {
        None => {
            if target_key == 0 {
                return Err(zero_key);
            }
            remove_keyed(state, registered, target_key)?
        }
        Some(held) if held.pr_type.all_registrants() && target_key == 0 => {
            let new_type = valid_type(scope, pr_type)?;
            let removed: Vec<Registration> = state
                .registrations
                .iter()
                .filter(|r| *r != registered)
                .cloned()
                .collect();
            state.registrations.retain(|r| r == registered);
            take_over(state, registered, held.pr_type, new_type);
            removed
        }
        Some(held) if !held.pr_type.all_registrants() && target_key == state.reservation_key() => {
            let new_type = valid_type(scope, pr_type)?;
            let removed = remove_keyed(state, registered, target_key)?;
            take_over(state, registered, held.pr_type, new_type);
            removed
        }
        Some(_) => {
            if target_key == 0 {
                return Err(zero_key);
            }
            remove_keyed(state, registered, target_key)?
        }
    };
    state.generation = state.generation.wrapping_add(1);
    state.raise(
        UnitAttention::RegistrationsPreempted,
        UaTarget::Registrants(removed.clone()),
    );
    Ok(removed)
}

/// Remove every registration with `key` but the preempting one; a key nobody holds is a
/// RESERVATION CONFLICT.
fn remove_keyed(
    state: &mut ReservationState,
    registered: &Registration,
    key: u64,
) -> Result<Vec<Registration>, Refusal> {
    if !state.registrations.iter().any(|r| r.key == key) {
        return Err(CONFLICT);
    }
    let removed: Vec<Registration> = state
        .registrations
        .iter()
        .filter(|r| r.key == key && *r != registered)
        .cloned()
        .collect();
    state
        .registrations
        .retain(|r| r.key != key || r == registered);
    Ok(removed)
}

/// The preempting nexus takes the reservation with `new_type`; if the type changed, the
/// registrants that stay are told their reservation was released.
fn take_over(
    state: &mut ReservationState,
    registered: &Registration,
    old_type: PrType,
    new_type: PrType,
) {
    state.reservation = Some(PersistentReservation {
        holder: registered.nexus.clone(),
        pr_type: new_type,
    });
    if old_type != new_type {
        let others: Vec<Registration> = state
            .registrations
            .iter()
            .filter(|r| *r != registered)
            .cloned()
            .collect();
        state.raise(
            UnitAttention::ReservationsReleased,
            UaTarget::Registrants(others),
        );
    }
}

/// REGISTER AND MOVE (SPC-4 5.13.8): register the nexus the parameter list names and move the
/// reservation to it.
fn register_and_move(
    state: &ReservationState,
    nexus: &NexusId,
    param: &[u8],
) -> Result<(ReservationState, Effects), Refusal> {
    if param.len() < MOVE_HEADER_LEN_BYTES {
        return Err(Refusal::Check(PARAMETER_LIST_LENGTH_ERROR));
    }
    let key = be64(param, 0);
    let target_key = be64(param, 8);
    let flags = param[17];
    let relative_port = u16::from_be_bytes([param[18], param[19]]);
    let id_len = u32::from_be_bytes([param[20], param[21], param[22], param[23]]);
    let registered = state
        .registration_for(nexus)
        .filter(|r| r.key == key)
        .ok_or(CONFLICT)?;
    let held = state.reservation.as_ref().ok_or(CONFLICT)?;
    if held.pr_type.all_registrants() || !state.is_holder(nexus) {
        return Err(CONFLICT);
    }
    if target_key == 0 {
        return Err(Refusal::Check(Sense::invalid_field_in_parameter_list(
            8, None,
        )));
    }
    let id_end = usize::try_from(id_len)
        .ok()
        .and_then(|len| MOVE_HEADER_LEN_BYTES.checked_add(len))
        .filter(|&end| end <= param.len())
        .ok_or(Refusal::Check(PARAMETER_LIST_LENGTH_ERROR))?;
    let (initiator_port, parsed_len) = parse_transport_id(&param[MOVE_HEADER_LEN_BYTES..id_end])
        .map_err(|_| Refusal::Check(Sense::invalid_field_in_parameter_list(24, None)))?;
    debug_assert!(MOVE_HEADER_LEN_BYTES + parsed_len <= id_end);
    let target_port = if relative_port == nexus.relative_target_port_id {
        nexus.target_port.clone()
    } else {
        state
            .registrations
            .iter()
            .map(|r| &r.nexus)
            .find(|n| n.relative_target_port_id == relative_port)
            .map(|n| n.target_port.clone())
            .ok_or(Refusal::Check(Sense::invalid_field_in_parameter_list(
                18, None,
            )))?
    };
    let destination = NexusId {
        initiator_port,
        target_port,
        relative_target_port_id: relative_port,
    };
    if destination.same_nexus(nexus) {
        return Err(Refusal::Check(Sense::invalid_field_in_parameter_list(
            24, None,
        )));
    }
    let mut next = state.clone();
    match next
        .registrations
        .iter_mut()
        .find(|r| r.covers(&destination))
    {
        Some(existing) => existing.key = target_key,
        None => {
            if next.registrations.len() >= MAX_REGISTRATIONS {
                return Err(Refusal::Check(INSUFFICIENT_RESOURCES));
            }
            next.registrations.push(Registration {
                nexus: destination.clone(),
                key: target_key,
                all_target_ports: false,
            });
        }
    }
    next.reservation = Some(PersistentReservation {
        holder: destination,
        pr_type: held.pr_type,
    });
    if flags & MOVE_UNREG != 0 {
        next.registrations.retain(|r| r != registered);
    }
    next.aptpl = flags & APTPL != 0;
    next.generation = next.generation.wrapping_add(1);
    Ok((
        next,
        Effects {
            persist: true,
            abort_tasks_of: Vec::new(),
        },
    ))
}
