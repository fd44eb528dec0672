//! The unit-attention log of a logical unit: conditions a shared-state change establishes for
//! other I_T nexuses (reservations preempted or released, resets, a loaded medium, a capacity
//! change), each with a sequence number, and how one nexus picks up those meant for it.
//!
//! The log keeps the last [`EVENT_LOG_MAX`] events. A nexus that issued no command to the
//! logical unit while more than that many events happened misses the oldest ones; it still
//! meets the new state itself (a RESERVATION CONFLICT, a missing medium).

use crate::model::NexusState;
use crate::nexus::NexusId;
use crate::unit_attention::UnitAttention;

use super::{Registration, ReservationState};

/// Events kept in the log of one logical unit.
pub const EVENT_LOG_MAX: usize = 64;

/// Which nexuses an event is for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum UaTarget {
    /// Every I_T nexus of the logical unit.
    All,
    /// Every I_T nexus but this one (the one whose command caused the event).
    AllExcept(NexusId),
    /// The nexuses these registrations cover.
    Registrants(Vec<Registration>),
}

impl UaTarget {
    pub(crate) fn includes(&self, nexus: &NexusId) -> bool {
        match self {
            UaTarget::All => true,
            UaTarget::AllExcept(except) => !except.same_nexus(nexus),
            UaTarget::Registrants(registrations) => registrations.iter().any(|r| r.covers(nexus)),
        }
    }
}

/// A unit attention condition established for some nexuses.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UaEvent {
    pub seq: u64,
    pub attention: UnitAttention,
    pub target: UaTarget,
}

impl ReservationState {
    /// Append an event (dropping the oldest beyond [`EVENT_LOG_MAX`]). An event for nobody is
    /// not logged.
    pub(crate) fn raise(&mut self, attention: UnitAttention, target: UaTarget) {
        if matches!(&target, UaTarget::Registrants(r) if r.is_empty()) {
            return;
        }
        if self.events.len() >= EVENT_LOG_MAX {
            let excess = self.events.len() + 1 - EVENT_LOG_MAX;
            self.events.drain(..excess);
        }
        self.events.push(UaEvent {
            seq: self.next_event_seq,
            attention,
            target,
        });
        self.next_event_seq += 1;
    }
}

impl NexusState {
    /// Raise the conditions logged in `state` since this nexus last looked, that are meant for
    /// it. A nexus looking for the first time starts at the end of the log (its own power-on
    /// condition covers what came before); so does one that finds the log younger than its
    /// last look (the logical unit was re-created).
    pub(crate) fn sync_events(&mut self, state: &ReservationState) {
        let latest = state.next_event_seq;
        match self.seen_event_seq {
            Some(seen) if seen == latest => return,
            Some(seen) if seen < latest => {
                for event in state.events.iter().filter(|e| e.seq >= seen) {
                    if event.target.includes(&self.identity) {
                        self.pending.raise(event.attention);
                    }
                }
            }
            _ => {}
        }
        self.seen_event_seq = Some(latest);
    }
}
