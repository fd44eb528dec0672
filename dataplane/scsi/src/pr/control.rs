//! The one entry point of the control thread for commands that change shared logical-unit
//! state: PERSISTENT RESERVE OUT, RESERVE/RELEASE (6)/(10), and on a removable logical unit
//! PREVENT ALLOW MEDIUM REMOVAL and START STOP UNIT with LOEJ.

use lunar_wire::scsi::{decode, Cdb, Sense};

use crate::model::ScsiReply;
use crate::nexus::NexusId;
use crate::reply;

use super::{access_class, apply_out, legacy, medium, Effects, Refusal, ReservationState};

/// A shared-state command that was accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The new state, or `None` when the command changed nothing. A new state must be
    /// persisted (when `effects.persist`) and published to every reactor — every reactor
    /// having installed it — before `reply` goes to the host; the tasks of
    /// `effects.abort_tasks_of` are aborted before that too.
    pub state: Option<ReservationState>,
    pub effects: Effects,
    /// GOOD, reporting what the CDB asked to transfer.
    pub reply: ScsiReply,
}

/// Apply a command `decide` answered with `Decision::Control`, from `nexus`, to `state` (the
/// newest state of the logical unit, which the control thread owns). `data_out` is the
/// command's data-out. A refusal is the reply to send as is (RESERVATION CONFLICT or CHECK
/// CONDITION); nothing changed.
pub fn apply_control(
    state: &ReservationState,
    nexus: &NexusId,
    cdb: &[u8],
    data_out: &[u8],
) -> Result<Applied, ScsiReply> {
    let command = decode(cdb).map_err(|error| reply::check_condition(error.sense()))?;
    let transfer_len_bytes = match command {
        Cdb::PersistentReserveOut { param_len, .. } => param_len,
        _ => 0,
    };
    let refuse = |refusal: Refusal| refusal.reply(transfer_len_bytes);
    if let Some(class) = access_class(&command) {
        if state.conflicts(nexus, class) {
            return Err(refuse(Refusal::ReservationConflict));
        }
    }
    let (next, effects) = match command {
        Cdb::PersistentReserveOut { .. } => apply_out(state, nexus, cdb, data_out),
        Cdb::Reserve { .. } => legacy::reserve(state, nexus).map(no_effects),
        Cdb::Release { .. } => legacy::release(state, nexus).map(no_effects),
        Cdb::PreventAllowMediumRemoval { prevent } => Ok(no_effects(medium::prevent_allow(
            state,
            nexus,
            prevent != 0,
        ))),
        Cdb::StartStopUnit {
            loej: true,
            power_condition: 0,
            start,
            ..
        } => medium::load_eject(state, nexus, start).map(no_effects),
        _ => Err(Refusal::Check(Sense::invalid_opcode())),
    }
    .map_err(refuse)?;
    let changed = next != *state;
    Ok(Applied {
        state: changed.then_some(next),
        effects,
        reply: reply::good(transfer_len_bytes),
    })
}

fn no_effects(state: ReservationState) -> (ReservationState, Effects) {
    (state, Effects::default())
}
