//! The removable medium of a logical unit (SBC-3 5.12, 5.20): PREVENT ALLOW MEDIUM REMOVAL
//! held per I_T nexus, and START STOP UNIT with LOEJ loading or ejecting the medium unless a
//! nexus prevents its removal.

use lunar_wire::scsi::{Asc, Sense, SenseKey};

use crate::nexus::NexusId;
use crate::unit_attention::UnitAttention;

use super::{Refusal, ReservationState, UaTarget};

const MEDIUM_REMOVAL_PREVENTED: Sense =
    Sense::new(SenseKey::IllegalRequest, Asc::MEDIUM_REMOVAL_PREVENTED);

/// PREVENT ALLOW MEDIUM REMOVAL: `prevent` adds `nexus` to the nexuses preventing removal,
/// otherwise it removes it.
pub(crate) fn prevent_allow(
    state: &ReservationState,
    nexus: &NexusId,
    prevent: bool,
) -> ReservationState {
    let mut next = state.clone();
    let holds = next.medium.prevented_by.iter().any(|p| p.same_nexus(nexus));
    if prevent && !holds {
        next.medium.prevented_by.push(nexus.clone());
    } else if !prevent {
        next.medium.prevented_by.retain(|p| !p.same_nexus(nexus));
    }
    next
}

/// START STOP UNIT with LOEJ = 1: `load` loads the medium, otherwise ejects it. Refused while
/// any nexus prevents medium removal. Loading a medium that was out tells every other nexus
/// NOT READY TO READY CHANGE, MEDIUM MAY HAVE CHANGED.
pub(crate) fn load_eject(
    state: &ReservationState,
    nexus: &NexusId,
    load: bool,
) -> Result<ReservationState, Refusal> {
    if !state.medium.prevented_by.is_empty() {
        return Err(Refusal::Check(MEDIUM_REMOVAL_PREVENTED));
    }
    let mut next = state.clone();
    if load && !next.medium.loaded {
        next.raise(
            UnitAttention::MediumMayHaveChanged,
            UaTarget::AllExcept(nexus.clone()),
        );
    }
    next.medium.loaded = load;
    Ok(next)
}
