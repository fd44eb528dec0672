//! Which commands a reservation held by another I_T nexus refuses with RESERVATION CONFLICT
//! (SPC-4 5.13.1 table 63, SBC-3 4.17 table 14; SPC-2 7.21 for RESERVE(6)/(10)).
//!
//! Commands fall in three classes against a persistent reservation: `Shared` ones never
//! conflict, `Read` ones conflict only under the exclusive-access types, `Exclusive` ones under
//! every type — unless the nexus holds the reservation, or is registered under a
//! registrants-only or all-registrants type. Against an SPC-2 reservation by another nexus
//! only a few informational commands are allowed. The reservation commands themselves
//! (PERSISTENT RESERVE OUT, RESERVE, RELEASE) are judged where they are applied.

use lunar_wire::scsi::Cdb;

use crate::nexus::NexusId;

use super::ReservationState;

/// How a command stands against a persistent reservation held by another nexus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// Always allowed.
    Shared,
    /// Reads the medium: conflicts with the exclusive-access types.
    Read,
    /// Conflicts with every type.
    Exclusive,
}

/// A command's class against persistent reservations, and whether an SPC-2 reservation by
/// another nexus allows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AccessClass {
    pub persistent: Access,
    pub allowed_under_legacy: bool,
}

const fn class(persistent: Access, allowed_under_legacy: bool) -> AccessClass {
    AccessClass {
        persistent,
        allowed_under_legacy,
    }
}

/// The class of `command`; `None` for the reservation commands, judged when applied.
pub(crate) fn access_class(command: &Cdb) -> Option<AccessClass> {
    let class = match *command {
        Cdb::Inquiry { .. }
        | Cdb::ReportLuns { .. }
        | Cdb::RequestSense { .. }
        | Cdb::ReadCapacity10 { .. }
        | Cdb::ReadCapacity16 { .. }
        | Cdb::ReportSupportedOperationCodes { .. } => class(Access::Shared, true),
        Cdb::TestUnitReady | Cdb::PersistentReserveIn { .. } => class(Access::Shared, false),
        Cdb::PreventAllowMediumRemoval { prevent } => {
            if prevent == 0 {
                class(Access::Shared, true)
            } else {
                class(Access::Exclusive, false)
            }
        }
        Cdb::StartStopUnit {
            power_condition,
            start,
            ..
        } => {
            if start && power_condition == 0 {
                class(Access::Shared, true)
            } else {
                class(Access::Exclusive, false)
            }
        }
        Cdb::Read(_) | Cdb::Verify(_) | Cdb::PreFetch { .. } | Cdb::GetLbaStatus { .. } => {
            class(Access::Read, false)
        }
        Cdb::Write(_)
        | Cdb::WriteAndVerify(_)
        | Cdb::WriteSame(_)
        | Cdb::Unmap { .. }
        | Cdb::CompareAndWrite(_)
        | Cdb::OrWrite(_)
        | Cdb::WriteAtomic(_)
        | Cdb::SynchronizeCache { .. }
        | Cdb::ModeSense { .. }
        | Cdb::ReadDefectData { .. }
        | Cdb::ExtendedCopy { .. }
        | Cdb::ReceiveCopyResults { .. } => class(Access::Exclusive, false),
        Cdb::PersistentReserveOut { .. } | Cdb::Reserve { .. } | Cdb::Release { .. } => {
            return None
        }
    };
    Some(class)
}

impl ReservationState {
    /// Whether a command of `class` from `nexus` meets a RESERVATION CONFLICT.
    pub(crate) fn conflicts(&self, nexus: &NexusId, class: AccessClass) -> bool {
        if let Some(holder) = &self.legacy_holder {
            if !class.allowed_under_legacy && !holder.same_nexus(nexus) {
                return true;
            }
        }
        let Some(reservation) = &self.reservation else {
            return false;
        };
        let restricted = match class.persistent {
            Access::Shared => false,
            Access::Read => reservation.pr_type.exclusive_access(),
            Access::Exclusive => true,
        };
        if !restricted {
            return false;
        }
        let has_access = if reservation.pr_type.registrants_have_access() {
            self.registration_for(nexus).is_some()
        } else {
            self.is_holder(nexus)
        };
        !has_access
    }
}
