//! Logical-unit state every I_T nexus shares, as a pure state machine: persistent reservations
//! (SPC-4 5.13), SPC-2 RESERVE/RELEASE, the removable medium (loaded, prevented), and the unit
//! attentions those establish on other nexuses.
//!
//! The state of one logical unit is a plain value, [`ReservationState`]. The device model reads
//! it (through `LogicalUnit::reservations`) to find reservation conflicts and to answer
//! PERSISTENT RESERVE IN; commands that change it come out of `decide` as
//! `Decision::Control` and are applied on the control thread with [`apply_control`] (or
//! [`apply_out`] for PERSISTENT RESERVE OUT alone), which returns the new state and the
//! [`Effects`] to carry out. The control thread persists the durable part ([`codec`]), publishes
//! a table carrying the new state to every reactor, and only then answers the host.
//!
//! Unit attentions for other nexuses travel inside the state: each change appends a
//! [`UaEvent`] to a short log, and every `NexusState` picks up the events meant for it at its
//! next command (see `NexusState::sync_events`).
//!
//! Modules: `out` (PERSISTENT RESERVE OUT), `read_in` (PERSISTENT RESERVE IN), `legacy`
//! (RESERVE/RELEASE), `medium` (PREVENT ALLOW MEDIUM REMOVAL, load/eject), `control` (the entry
//! point for every shared-state command), `access` (which commands conflict with which
//! reservation), [`codec`] (the persistent encoding), `events` (the unit attention log).

mod access;
pub mod codec;
mod control;
mod events;
mod legacy;
mod medium;
mod out;
mod read_in;

#[cfg(test)]
mod decide_tests;
#[cfg(test)]
mod tests;

use lunar_wire::scsi::{status, Sense};

use crate::model::ScsiReply;
use crate::nexus::NexusId;
use crate::reply;
use crate::unit_attention::UnitAttention;

pub(crate) use access::access_class;
pub use control::{apply_control, Applied};
pub use events::{UaEvent, UaTarget, EVENT_LOG_MAX};
pub use out::apply_out;
pub use read_in::read_in;

/// Most registrations one logical unit keeps; one more is refused with INSUFFICIENT
/// REGISTRATION RESOURCES.
pub const MAX_REGISTRATIONS: usize = 256;

/// PERSISTENT RESERVATION TYPE (SPC-4 6.16.3.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum PrType {
    WriteExclusive = 0x1,
    ExclusiveAccess = 0x3,
    WriteExclusiveRegistrantsOnly = 0x5,
    ExclusiveAccessRegistrantsOnly = 0x6,
    WriteExclusiveAllRegistrants = 0x7,
    ExclusiveAccessAllRegistrants = 0x8,
}

impl PrType {
    pub const fn from_code(code: u8) -> Option<PrType> {
        match code {
            0x1 => Some(PrType::WriteExclusive),
            0x3 => Some(PrType::ExclusiveAccess),
            0x5 => Some(PrType::WriteExclusiveRegistrantsOnly),
            0x6 => Some(PrType::ExclusiveAccessRegistrantsOnly),
            0x7 => Some(PrType::WriteExclusiveAllRegistrants),
            0x8 => Some(PrType::ExclusiveAccessAllRegistrants),
            _ => None,
        }
    }

    pub const fn code(self) -> u8 {
        self as u8
    }

    /// Every registered nexus holds the reservation.
    pub const fn all_registrants(self) -> bool {
        matches!(
            self,
            PrType::WriteExclusiveAllRegistrants | PrType::ExclusiveAccessAllRegistrants
        )
    }

    /// Registered nexuses have the holder's access (registrants-only and all-registrants).
    pub const fn registrants_have_access(self) -> bool {
        !matches!(self, PrType::WriteExclusive | PrType::ExclusiveAccess)
    }

    /// Reads from non-holders conflict too (the exclusive-access family).
    pub const fn exclusive_access(self) -> bool {
        matches!(
            self,
            PrType::ExclusiveAccess
                | PrType::ExclusiveAccessRegistrantsOnly
                | PrType::ExclusiveAccessAllRegistrants
        )
    }

    /// Its release tells the other registrants (RESERVATIONS RELEASED).
    const fn release_is_announced(self) -> bool {
        self.registrants_have_access()
    }
}

/// One registered reservation key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Registration {
    /// The I_T nexus that registered.
    pub nexus: NexusId,
    pub key: u64,
    /// Registered with ALL_TG_PT: the key stands for the initiator port through every target
    /// port.
    pub all_target_ports: bool,
}

impl Registration {
    /// Whether commands from `nexus` are made under this registration.
    pub fn covers(&self, nexus: &NexusId) -> bool {
        if self.all_target_ports {
            self.nexus.same_initiator_port(nexus)
        } else {
            self.nexus.same_nexus(nexus)
        }
    }
}

/// The persistent reservation, if one is held.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PersistentReservation {
    /// The nexus of the registration that holds it (for all-registrants types: the one that
    /// reserved; every registrant is a holder).
    pub holder: NexusId,
    pub pr_type: PrType,
}

/// A removable medium (only meaningful when the logical unit is removable).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MediumState {
    /// The medium is in the drive (START STOP UNIT with LOEJ moves it).
    pub loaded: bool,
    /// Nexuses that prevent its removal (PREVENT ALLOW MEDIUM REMOVAL with PREVENT = 1).
    pub prevented_by: Vec<NexusId>,
}

impl Default for MediumState {
    fn default() -> Self {
        MediumState {
            loaded: true,
            prevented_by: Vec::new(),
        }
    }
}

/// The state one logical unit shares between every I_T nexus on every reactor.
///
/// Registrations, the persistent reservation, the generation and APTPL are durable (see
/// [`codec`]); the SPC-2 reservation, the medium and the unit-attention log are not: a restart
/// is a power cycle for them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReservationState {
    /// PRGENERATION: counts the changes to the registrations.
    pub generation: u32,
    /// Activate persist through power loss, as last set by a registration.
    pub aptpl: bool,
    pub registrations: Vec<Registration>,
    pub reservation: Option<PersistentReservation>,
    /// The nexus holding an SPC-2 RESERVE (6)/(10) reservation.
    pub legacy_holder: Option<NexusId>,
    pub medium: MediumState,
    pub(crate) events: Vec<UaEvent>,
    /// Sequence number the next unit-attention event gets.
    pub(crate) next_event_seq: u64,
}

/// What the control thread must do besides publishing the new state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Effects {
    /// The durable part changed: write [`codec::encode`] of the new state durably before
    /// answering the host.
    pub persist: bool,
    /// PREEMPT AND ABORT: abort every task of this logical unit that arrived on a nexus one of
    /// these registrations covers (as ABORT TASK SET would, without a response for them: TAS
    /// is 0), except the PERSISTENT RESERVE OUT command itself — before answering it.
    pub abort_tasks_of: Vec<Registration>,
}

/// Why a shared-state command was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// RESERVATION CONFLICT status.
    ReservationConflict,
    /// CHECK CONDITION with this sense.
    Check(Sense),
}

impl Refusal {
    /// The reply to send, reporting `transfer_len_bytes` as what the CDB asked for.
    pub fn reply(self, transfer_len_bytes: u32) -> ScsiReply {
        let mut reply = match self {
            Refusal::ReservationConflict => ScsiReply {
                status: status::RESERVATION_CONFLICT,
                sense: Vec::new(),
                data_in: Vec::new(),
                transfer_len_bytes: 0,
            },
            Refusal::Check(sense) => reply::check_condition(sense),
        };
        reply.transfer_len_bytes = transfer_len_bytes;
        reply
    }
}

impl From<Sense> for Refusal {
    fn from(sense: Sense) -> Refusal {
        Refusal::Check(sense)
    }
}

impl ReservationState {
    /// The registration commands from `nexus` are made under.
    pub fn registration_for(&self, nexus: &NexusId) -> Option<&Registration> {
        self.registrations.iter().find(|r| r.covers(nexus))
    }

    /// Whether `nexus` holds the persistent reservation.
    pub fn is_holder(&self, nexus: &NexusId) -> bool {
        let (Some(reservation), Some(registration)) =
            (&self.reservation, self.registration_for(nexus))
        else {
            return false;
        };
        reservation.pr_type.all_registrants() || registration.nexus.same_nexus(&reservation.holder)
    }

    /// The key the reservation is reported under: the holder's (0 for all-registrants types).
    pub fn reservation_key(&self) -> u64 {
        match &self.reservation {
            Some(r) if !r.pr_type.all_registrants() => self
                .registrations
                .iter()
                .find(|reg| reg.nexus.same_nexus(&r.holder))
                .map_or(0, |reg| reg.key),
            _ => 0,
        }
    }

    /// Nothing is reserved: no command can conflict.
    pub fn is_unreserved(&self) -> bool {
        self.reservation.is_none() && self.legacy_holder.is_none()
    }

    /// The unit-attention events still in the log, oldest first.
    pub fn events(&self) -> &[UaEvent] {
        &self.events
    }

    /// The state after a restart of the daemon (a power cycle for the logical unit): the
    /// durable part only.
    pub fn restarted(&self) -> ReservationState {
        ReservationState {
            generation: self.generation,
            aptpl: self.aptpl,
            registrations: self.registrations.clone(),
            reservation: self.reservation.clone(),
            ..ReservationState::default()
        }
    }

    /// Establish `attention` for every I_T nexus of the logical unit (e.g. CAPACITY DATA HAS
    /// CHANGED after a resize, INQUIRY DATA HAS CHANGED).
    pub fn with_unit_attention_for_all(&self, attention: UnitAttention) -> ReservationState {
        let mut next = self.clone();
        next.raise(attention, UaTarget::All);
        next
    }

    /// The I_T nexus is gone (logout, connection loss, session reinstatement): its SPC-2
    /// reservation and its medium-removal prevention end. `None` when that changes nothing.
    /// Registrations and the persistent reservation stay (SPC-4 5.13.1).
    pub fn on_nexus_loss(&self, nexus: &NexusId) -> Option<ReservationState> {
        let holds_legacy = self
            .legacy_holder
            .as_ref()
            .is_some_and(|h| h.same_nexus(nexus));
        let prevents = self.medium.prevented_by.iter().any(|p| p.same_nexus(nexus));
        if !holds_legacy && !prevents {
            return None;
        }
        let mut next = self.clone();
        if holds_legacy {
            next.legacy_holder = None;
        }
        next.medium.prevented_by.retain(|p| !p.same_nexus(nexus));
        Some(next)
    }

    /// A LOGICAL UNIT RESET (or a target warm reset, which resets every logical unit): the
    /// SPC-2 reservation and medium-removal preventions end, and every nexus gets BUS DEVICE
    /// RESET FUNCTION OCCURRED. Persistent reservations are not affected.
    pub fn on_logical_unit_reset(&self) -> ReservationState {
        self.reset_with(UnitAttention::LogicalUnitReset)
    }

    /// A target cold reset: as a logical unit reset, reported as POWER ON, RESET, OR BUS
    /// DEVICE RESET OCCURRED.
    pub fn on_target_cold_reset(&self) -> ReservationState {
        self.reset_with(UnitAttention::PowerOnReset)
    }

    fn reset_with(&self, attention: UnitAttention) -> ReservationState {
        let mut next = self.clone();
        next.legacy_holder = None;
        next.medium.prevented_by.clear();
        next.raise(attention, UaTarget::All);
        next
    }
}
