//! RESERVE (6)/(10) and RELEASE (6)/(10) (SPC-2 7.21, 7.14): a whole-logical-unit reservation
//! held by one I_T nexus, and how it coexists with persistent reservations (SPC-4 5.13.3).

use crate::nexus::NexusId;

use super::{Refusal, ReservationState};

/// RESERVE: refused while another nexus holds it or while any persistent registration exists;
/// repeated by the holder, it changes nothing.
pub(crate) fn reserve(
    state: &ReservationState,
    nexus: &NexusId,
) -> Result<ReservationState, Refusal> {
    if !state.registrations.is_empty() {
        return Err(Refusal::ReservationConflict);
    }
    match &state.legacy_holder {
        Some(holder) if holder.same_nexus(nexus) => Ok(state.clone()),
        Some(_) => Err(Refusal::ReservationConflict),
        None => {
            let mut next = state.clone();
            next.legacy_holder = Some(nexus.clone());
            Ok(next)
        }
    }
}

/// RELEASE: ends the holder's reservation; from any other nexus it changes nothing. While
/// persistent registrations exist, only a registered nexus may send it (and it releases
/// nothing).
pub(crate) fn release(
    state: &ReservationState,
    nexus: &NexusId,
) -> Result<ReservationState, Refusal> {
    if !state.registrations.is_empty() {
        return match state.registration_for(nexus) {
            Some(_) => Ok(state.clone()),
            None => Err(Refusal::ReservationConflict),
        };
    }
    let mut next = state.clone();
    if next
        .legacy_holder
        .as_ref()
        .is_some_and(|holder| holder.same_nexus(nexus))
    {
        next.legacy_holder = None;
    }
    Ok(next)
}
