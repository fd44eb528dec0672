//! Unit attention conditions (SPC-4 5.14 / SAM-5 5.14): the kinds the model reports and the
//! small per-nexus set of pending ones, reported highest priority first.

use lunar_wire::scsi::{Asc, Sense, SenseKey};

/// A unit attention condition established for one I_T nexus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UnitAttention {
    /// POWER ON, RESET, OR BUS DEVICE RESET OCCURRED (29h/00h): a new nexus.
    PowerOnReset,
    /// BUS DEVICE RESET FUNCTION OCCURRED (29h/03h): a LOGICAL UNIT RESET.
    LogicalUnitReset,
    /// I_T NEXUS LOSS OCCURRED (29h/07h).
    ItNexusLoss,
    /// RESERVATIONS PREEMPTED (2Ah/03h): a CLEAR removed this nexus's registration.
    ReservationsPreempted,
    /// RESERVATIONS RELEASED (2Ah/04h): a registrants-only or all-registrants reservation
    /// this nexus was registered under was released, or its type changed.
    ReservationsReleased,
    /// REGISTRATIONS PREEMPTED (2Ah/05h): a PREEMPT (AND ABORT) removed this nexus's
    /// registration.
    RegistrationsPreempted,
    /// COMMANDS CLEARED BY ANOTHER INITIATOR (2Fh/00h): another nexus aborted this nexus's
    /// tasks (CLEAR TASK SET, PREEMPT AND ABORT).
    CommandsClearedByAnotherInitiator,
    /// NOT READY TO READY CHANGE, MEDIUM MAY HAVE CHANGED (28h/00h): a removable medium was
    /// loaded.
    MediumMayHaveChanged,
    /// MODE PARAMETERS CHANGED (2Ah/01h).
    ModeParametersChanged,
    /// CAPACITY DATA HAS CHANGED (2Ah/09h): the volume was resized.
    CapacityDataChanged,
    /// INQUIRY DATA HAS CHANGED (3Fh/03h).
    InquiryDataChanged,
    /// REPORTED LUNS DATA HAS CHANGED (3Fh/0Eh): a LUN was added to or removed from the
    /// target. REPORT LUNS clears it.
    ReportedLunsDataChanged,
}

impl UnitAttention {
    /// Every condition, highest reporting priority first.
    pub const ALL: [UnitAttention; 12] = [
        UnitAttention::PowerOnReset,
        UnitAttention::LogicalUnitReset,
        UnitAttention::ItNexusLoss,
        UnitAttention::ReservationsPreempted,
        UnitAttention::ReservationsReleased,
        UnitAttention::RegistrationsPreempted,
        UnitAttention::CommandsClearedByAnotherInitiator,
        UnitAttention::MediumMayHaveChanged,
        UnitAttention::ModeParametersChanged,
        UnitAttention::CapacityDataChanged,
        UnitAttention::InquiryDataChanged,
        UnitAttention::ReportedLunsDataChanged,
    ];

    pub const fn asc(self) -> Asc {
        match self {
            UnitAttention::PowerOnReset => Asc::POWER_ON_RESET_OR_BUS_DEVICE_RESET,
            UnitAttention::LogicalUnitReset => Asc::BUS_DEVICE_RESET_OCCURRED,
            UnitAttention::ItNexusLoss => Asc::I_T_NEXUS_LOSS_OCCURRED,
            UnitAttention::ReservationsPreempted => Asc::RESERVATIONS_PREEMPTED,
            UnitAttention::ReservationsReleased => Asc::RESERVATIONS_RELEASED,
            UnitAttention::RegistrationsPreempted => Asc::REGISTRATIONS_PREEMPTED,
            UnitAttention::CommandsClearedByAnotherInitiator => {
                Asc::COMMANDS_CLEARED_BY_ANOTHER_INITIATOR
            }
            UnitAttention::MediumMayHaveChanged => Asc::MEDIUM_MAY_HAVE_CHANGED,
            UnitAttention::ModeParametersChanged => Asc::MODE_PARAMETERS_CHANGED,
            UnitAttention::CapacityDataChanged => Asc::CAPACITY_DATA_HAS_CHANGED,
            UnitAttention::InquiryDataChanged => Asc::INQUIRY_DATA_HAS_CHANGED,
            UnitAttention::ReportedLunsDataChanged => Asc::REPORTED_LUNS_DATA_HAS_CHANGED,
        }
    }

    pub const fn sense(self) -> Sense {
        Sense::new(SenseKey::UnitAttention, self.asc())
    }

    /// Resets clear every condition established before them.
    const fn is_reset(self) -> bool {
        matches!(
            self,
            UnitAttention::PowerOnReset
                | UnitAttention::LogicalUnitReset
                | UnitAttention::ItNexusLoss
        )
    }

    const fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

/// The set of pending conditions of one nexus.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct PendingAttentions {
    bits: u16,
}

impl PendingAttentions {
    pub(crate) fn raise(&mut self, attention: UnitAttention) {
        if attention.is_reset() {
            self.bits = 0;
        }
        self.bits |= attention.bit();
    }

    pub(crate) fn peek(&self) -> Option<UnitAttention> {
        UnitAttention::ALL
            .into_iter()
            .find(|attention| self.bits & attention.bit() != 0)
    }

    /// Report (and clear) the highest-priority pending condition.
    pub(crate) fn take(&mut self) -> Option<UnitAttention> {
        let attention = self.peek()?;
        self.clear(attention);
        Some(attention)
    }

    pub(crate) fn clear(&mut self, attention: UnitAttention) {
        self.bits &= !attention.bit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reported_by_priority_once_each() {
        let mut pending = PendingAttentions::default();
        pending.raise(UnitAttention::ReportedLunsDataChanged);
        pending.raise(UnitAttention::CapacityDataChanged);
        assert_eq!(pending.take(), Some(UnitAttention::CapacityDataChanged));
        assert_eq!(pending.take(), Some(UnitAttention::ReportedLunsDataChanged));
        assert_eq!(pending.take(), None);
    }

    #[test]
    fn reset_supersedes_earlier_conditions() {
        let mut pending = PendingAttentions::default();
        pending.raise(UnitAttention::CapacityDataChanged);
        pending.raise(UnitAttention::LogicalUnitReset);
        assert_eq!(pending.take(), Some(UnitAttention::LogicalUnitReset));
        assert_eq!(pending.take(), None);
        pending.raise(UnitAttention::PowerOnReset);
        pending.raise(UnitAttention::InquiryDataChanged);
        assert_eq!(pending.take(), Some(UnitAttention::PowerOnReset));
        assert_eq!(pending.take(), Some(UnitAttention::InquiryDataChanged));
    }

    #[test]
    fn every_condition_has_its_own_bit() {
        let mut pending = PendingAttentions::default();
        for attention in UnitAttention::ALL.into_iter().skip(3) {
            pending.raise(attention);
        }
        for attention in UnitAttention::ALL.into_iter().skip(3) {
            assert_eq!(pending.take(), Some(attention));
        }
        assert_eq!(pending.take(), None);
    }

    #[test]
    fn sense_codes() {
        assert_eq!(
            UnitAttention::RegistrationsPreempted.asc(),
            Asc::new(0x2a, 0x05)
        );
        assert_eq!(
            UnitAttention::MediumMayHaveChanged.asc(),
            Asc::new(0x28, 0x00)
        );
        assert_eq!(UnitAttention::PowerOnReset.asc(), Asc::new(0x29, 0x00));
        assert_eq!(
            UnitAttention::ReportedLunsDataChanged.asc(),
            Asc::new(0x3f, 0x0e)
        );
        assert_eq!(
            UnitAttention::CapacityDataChanged.sense().key,
            SenseKey::UnitAttention
        );
    }
}
