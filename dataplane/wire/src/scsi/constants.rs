//! Numbers from SPC-4 / SBC-3 / SAM-5: operation codes, service actions, status bytes, sense
//! keys and additional sense codes (ASC/ASCQ pairs).

/// Operation codes (byte 0 of a CDB).
pub mod opcode {
    pub const TEST_UNIT_READY: u8 = 0x00;
    pub const REQUEST_SENSE: u8 = 0x03;
    pub const READ_6: u8 = 0x08;
    pub const WRITE_6: u8 = 0x0a;
    pub const INQUIRY: u8 = 0x12;
    pub const MODE_SELECT_6: u8 = 0x15;
    pub const RESERVE_6: u8 = 0x16;
    pub const RELEASE_6: u8 = 0x17;
    pub const MODE_SENSE_6: u8 = 0x1a;
    pub const START_STOP_UNIT: u8 = 0x1b;
    pub const PREVENT_ALLOW_MEDIUM_REMOVAL: u8 = 0x1e;
    pub const READ_CAPACITY_10: u8 = 0x25;
    pub const READ_10: u8 = 0x28;
    pub const WRITE_10: u8 = 0x2a;
    pub const WRITE_AND_VERIFY_10: u8 = 0x2e;
    pub const VERIFY_10: u8 = 0x2f;
    pub const PRE_FETCH_10: u8 = 0x34;
    pub const SYNCHRONIZE_CACHE_10: u8 = 0x35;
    pub const READ_DEFECT_DATA_10: u8 = 0x37;
    pub const WRITE_SAME_10: u8 = 0x41;
    pub const UNMAP: u8 = 0x42;
    pub const MODE_SELECT_10: u8 = 0x55;
    pub const RESERVE_10: u8 = 0x56;
    pub const RELEASE_10: u8 = 0x57;
    pub const MODE_SENSE_10: u8 = 0x5a;
    pub const PERSISTENT_RESERVE_IN: u8 = 0x5e;
    pub const PERSISTENT_RESERVE_OUT: u8 = 0x5f;
    pub const VARIABLE_LENGTH: u8 = 0x7f;
    pub const EXTENDED_COPY: u8 = 0x83;
    pub const RECEIVE_COPY_RESULTS: u8 = 0x84;
    pub const READ_16: u8 = 0x88;
    pub const COMPARE_AND_WRITE: u8 = 0x89;
    pub const WRITE_16: u8 = 0x8a;
    pub const ORWRITE_16: u8 = 0x8b;
    pub const WRITE_AND_VERIFY_16: u8 = 0x8e;
    pub const VERIFY_16: u8 = 0x8f;
    pub const PRE_FETCH_16: u8 = 0x90;
    pub const SYNCHRONIZE_CACHE_16: u8 = 0x91;
    pub const WRITE_SAME_16: u8 = 0x93;
    pub const WRITE_ATOMIC_16: u8 = 0x9c;
    pub const SERVICE_ACTION_IN_16: u8 = 0x9e;
    pub const REPORT_LUNS: u8 = 0xa0;
    pub const MAINTENANCE_IN: u8 = 0xa3;
    pub const READ_12: u8 = 0xa8;
    pub const WRITE_12: u8 = 0xaa;
    pub const WRITE_AND_VERIFY_12: u8 = 0xae;
    pub const VERIFY_12: u8 = 0xaf;
    pub const READ_DEFECT_DATA_12: u8 = 0xb7;
}

/// Service actions (byte 1 bits 4..0) of the opcodes that carry one.
pub mod service_action {
    /// SERVICE ACTION IN (16) → READ CAPACITY (16).
    pub const READ_CAPACITY_16: u8 = 0x10;
    /// SERVICE ACTION IN (16) → GET LBA STATUS.
    pub const GET_LBA_STATUS: u8 = 0x12;
    /// MAINTENANCE IN → REPORT SUPPORTED OPERATION CODES.
    pub const REPORT_SUPPORTED_OPERATION_CODES: u8 = 0x0c;
    /// MAINTENANCE IN → REPORT SUPPORTED TASK MANAGEMENT FUNCTIONS.
    pub const REPORT_SUPPORTED_TMFS: u8 = 0x0d;

    /// PERSISTENT RESERVE IN service actions (SPC-4 6.16).
    pub const PR_IN_READ_KEYS: u8 = 0x00;
    pub const PR_IN_READ_RESERVATION: u8 = 0x01;
    pub const PR_IN_REPORT_CAPABILITIES: u8 = 0x02;
    pub const PR_IN_READ_FULL_STATUS: u8 = 0x03;

    /// PERSISTENT RESERVE OUT service actions (SPC-4 6.17).
    pub const PR_OUT_REGISTER: u8 = 0x00;
    pub const PR_OUT_RESERVE: u8 = 0x01;
    pub const PR_OUT_RELEASE: u8 = 0x02;
    pub const PR_OUT_CLEAR: u8 = 0x03;
    pub const PR_OUT_PREEMPT: u8 = 0x04;
    pub const PR_OUT_PREEMPT_AND_ABORT: u8 = 0x05;
    pub const PR_OUT_REGISTER_AND_IGNORE_EXISTING_KEY: u8 = 0x06;
    pub const PR_OUT_REGISTER_AND_MOVE: u8 = 0x07;

    /// EXTENDED COPY (LID1) and RECEIVE COPY RESULTS service actions (SPC-4 6.4, 6.18).
    pub const EXTENDED_COPY_LID1: u8 = 0x00;
    pub const RECEIVE_COPY_STATUS_LID1: u8 = 0x00;
    pub const RECEIVE_COPY_OPERATING_PARAMETERS: u8 = 0x03;
}

/// SCSI status byte values (SAM-5 5.3).
pub mod status {
    pub const GOOD: u8 = 0x00;
    pub const CHECK_CONDITION: u8 = 0x02;
    pub const CONDITION_MET: u8 = 0x04;
    pub const BUSY: u8 = 0x08;
    pub const RESERVATION_CONFLICT: u8 = 0x18;
    pub const TASK_SET_FULL: u8 = 0x28;
    pub const ACA_ACTIVE: u8 = 0x30;
    pub const TASK_ABORTED: u8 = 0x40;
}

/// Sense key (SPC-4 4.5.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum SenseKey {
    NoSense = 0x0,
    RecoveredError = 0x1,
    NotReady = 0x2,
    MediumError = 0x3,
    HardwareError = 0x4,
    IllegalRequest = 0x5,
    UnitAttention = 0x6,
    DataProtect = 0x7,
    BlankCheck = 0x8,
    VendorSpecific = 0x9,
    CopyAborted = 0xa,
    AbortedCommand = 0xb,
    Reserved = 0xc,
    VolumeOverflow = 0xd,
    Miscompare = 0xe,
    Completed = 0xf,
}

impl SenseKey {
    /// The key encoded in the low nibble of `value` (the high nibble is ignored).
    pub const fn from_nibble(value: u8) -> SenseKey {
        match value & 0x0f {
            0x0 => SenseKey::NoSense,
            0x1 => SenseKey::RecoveredError,
            0x2 => SenseKey::NotReady,
            0x3 => SenseKey::MediumError,
            0x4 => SenseKey::HardwareError,
            0x5 => SenseKey::IllegalRequest,
            0x6 => SenseKey::UnitAttention,
            0x7 => SenseKey::DataProtect,
            0x8 => SenseKey::BlankCheck,
            0x9 => SenseKey::VendorSpecific,
            0xa => SenseKey::CopyAborted,
            0xb => SenseKey::AbortedCommand,
            0xc => SenseKey::Reserved,
            0xd => SenseKey::VolumeOverflow,
            0xe => SenseKey::Miscompare,
            _ => SenseKey::Completed,
        }
    }
}

/// An additional sense code and its qualifier (SPC-4 4.5.6, table 28).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Asc {
    pub asc: u8,
    pub ascq: u8,
}

impl Asc {
    pub const fn new(asc: u8, ascq: u8) -> Asc {
        Asc { asc, ascq }
    }

    pub const NO_ADDITIONAL_SENSE: Asc = Asc::new(0x00, 0x00);
    pub const LOGICAL_UNIT_NOT_READY: Asc = Asc::new(0x04, 0x00);
    pub const WRITE_ERROR: Asc = Asc::new(0x0c, 0x00);
    /// Data-out did not bring what the CDB needs (iSCSI: too little data for the command).
    pub const WRITE_ERROR_NOT_ENOUGH_UNSOLICITED_DATA: Asc = Asc::new(0x0c, 0x0d);
    pub const INVALID_FIELD_IN_INFORMATION_UNIT: Asc = Asc::new(0x0e, 0x03);
    pub const UNRECOVERED_READ_ERROR: Asc = Asc::new(0x11, 0x00);
    pub const PARAMETER_LIST_LENGTH_ERROR: Asc = Asc::new(0x1a, 0x00);
    pub const DEFECT_LIST_NOT_FOUND: Asc = Asc::new(0x1c, 0x00);
    pub const MISCOMPARE_DURING_VERIFY: Asc = Asc::new(0x1d, 0x00);
    pub const INVALID_COMMAND_OPERATION_CODE: Asc = Asc::new(0x20, 0x00);
    pub const LBA_OUT_OF_RANGE: Asc = Asc::new(0x21, 0x00);
    pub const INVALID_FIELD_IN_CDB: Asc = Asc::new(0x24, 0x00);
    pub const LOGICAL_UNIT_NOT_SUPPORTED: Asc = Asc::new(0x25, 0x00);
    pub const INVALID_FIELD_IN_PARAMETER_LIST: Asc = Asc::new(0x26, 0x00);
    /// A RELEASE of a persistent reservation named another type or scope than the one held.
    pub const INVALID_RELEASE_OF_PERSISTENT_RESERVATION: Asc = Asc::new(0x26, 0x04);
    pub const WRITE_PROTECTED: Asc = Asc::new(0x27, 0x00);
    /// A thin-provisioned unit could not allocate space for a write (SBC-3 4.7.3.6).
    pub const SPACE_ALLOCATION_FAILED_WRITE_PROTECT: Asc = Asc::new(0x27, 0x07);
    /// NOT READY TO READY CHANGE, MEDIUM MAY HAVE CHANGED: a removable medium was loaded.
    pub const MEDIUM_MAY_HAVE_CHANGED: Asc = Asc::new(0x28, 0x00);
    pub const POWER_ON_RESET_OR_BUS_DEVICE_RESET: Asc = Asc::new(0x29, 0x00);
    pub const POWER_ON_OCCURRED: Asc = Asc::new(0x29, 0x01);
    pub const BUS_DEVICE_RESET_OCCURRED: Asc = Asc::new(0x29, 0x03);
    pub const I_T_NEXUS_LOSS_OCCURRED: Asc = Asc::new(0x29, 0x07);
    pub const MODE_PARAMETERS_CHANGED: Asc = Asc::new(0x2a, 0x01);
    pub const RESERVATIONS_PREEMPTED: Asc = Asc::new(0x2a, 0x03);
    pub const RESERVATIONS_RELEASED: Asc = Asc::new(0x2a, 0x04);
    pub const REGISTRATIONS_PREEMPTED: Asc = Asc::new(0x2a, 0x05);
    pub const CAPACITY_DATA_HAS_CHANGED: Asc = Asc::new(0x2a, 0x09);
    pub const COMMANDS_CLEARED_BY_ANOTHER_INITIATOR: Asc = Asc::new(0x2f, 0x00);
    pub const SAVING_PARAMETERS_NOT_SUPPORTED: Asc = Asc::new(0x39, 0x00);
    pub const MEDIUM_NOT_PRESENT: Asc = Asc::new(0x3a, 0x00);
    pub const INQUIRY_DATA_HAS_CHANGED: Asc = Asc::new(0x3f, 0x03);
    pub const REPORTED_LUNS_DATA_HAS_CHANGED: Asc = Asc::new(0x3f, 0x0e);
    pub const INTERNAL_TARGET_FAILURE: Asc = Asc::new(0x44, 0x00);
    pub const MEDIUM_REMOVAL_PREVENTED: Asc = Asc::new(0x53, 0x02);
    pub const INSUFFICIENT_REGISTRATION_RESOURCES: Asc = Asc::new(0x55, 0x04);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sense_key_nibble_round_trips() {
        for value in 0u8..16 {
            assert_eq!(SenseKey::from_nibble(value) as u8, value);
        }
        assert_eq!(SenseKey::from_nibble(0xf5), SenseKey::IllegalRequest);
    }
}
