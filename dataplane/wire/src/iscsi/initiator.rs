//! Headers of the PDUs an initiator sends (RFC 7143 §11): NOP-Out, SCSI Command, Task
//! Management Function Request, Login Request, Text Request, SCSI Data-Out, Logout Request and
//! SNACK Request. Each mirrors the wire layout byte for byte and is parsed in place with
//! [`Pdu::view`]; multi-byte fields are big-endian.

use zerocopy::byteorder::big_endian::{U16, U32};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use super::header::{assert_bhs_size, Opcode, Pdu, U24};

/// NOP-Out (RFC 7143 §11.18).
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct NopOutHeader {
    pub opcode: u8,
    pub flags: u8,
    pub reserved1: [u8; 2],
    pub total_ahs_len_words: u8,
    pub data_segment_len: U24,
    pub lun: [u8; 8],
    pub initiator_task_tag: U32,
    pub target_transfer_tag: U32,
    pub cmd_sn: U32,
    pub exp_stat_sn: U32,
    pub reserved2: [u8; 16],
}

/// SCSI Command (RFC 7143 §11.3).
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct ScsiCommandHeader {
    pub opcode: u8,
    /// F, R, W, task attributes (bits 0-2).
    pub flags: u8,
    pub reserved1: [u8; 2],
    pub total_ahs_len_words: u8,
    pub data_segment_len: U24,
    pub lun: [u8; 8],
    pub initiator_task_tag: U32,
    pub expected_data_transfer_len: U32,
    pub cmd_sn: U32,
    pub exp_stat_sn: U32,
    pub cdb: [u8; 16],
}

impl ScsiCommandHeader {
    /// No unsolicited Data-Out PDUs follow this command.
    pub const FLAG_FINAL: u8 = 0x80;
    /// The command reads data (Data-In expected).
    pub const FLAG_READ: u8 = 0x40;
    /// The command writes data (Data-Out expected).
    pub const FLAG_WRITE: u8 = 0x20;
    pub const ATTRIBUTES_MASK: u8 = 0x07;

    pub fn is_final(&self) -> bool {
        self.flags & Self::FLAG_FINAL != 0
    }
    pub fn is_read(&self) -> bool {
        self.flags & Self::FLAG_READ != 0
    }
    pub fn is_write(&self) -> bool {
        self.flags & Self::FLAG_WRITE != 0
    }
}

/// Task Management Function Request (RFC 7143 §11.5).
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct TaskMgmtRequestHeader {
    pub opcode: u8,
    /// Bit 7 is always set; bits 0-6 are the function.
    pub function: u8,
    pub reserved1: [u8; 2],
    pub total_ahs_len_words: u8,
    pub data_segment_len: U24,
    pub lun: [u8; 8],
    pub initiator_task_tag: U32,
    pub referenced_task_tag: U32,
    pub cmd_sn: U32,
    pub exp_stat_sn: U32,
    pub ref_cmd_sn: U32,
    pub exp_data_sn: U32,
    pub reserved2: [u8; 8],
}

impl TaskMgmtRequestHeader {
    pub fn function_code(&self) -> u8 {
        self.function & 0x7f
    }
}

/// Login Request (RFC 7143 §11.12).
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct LoginRequestHeader {
    pub opcode: u8,
    /// T, C, CSG (bits 2-3), NSG (bits 0-1).
    pub flags: u8,
    pub version_max: u8,
    pub version_min: u8,
    pub total_ahs_len_words: u8,
    pub data_segment_len: U24,
    pub isid: [u8; 6],
    pub tsih: U16,
    pub initiator_task_tag: U32,
    pub cid: U16,
    pub reserved1: [u8; 2],
    pub cmd_sn: U32,
    pub exp_stat_sn: U32,
    pub reserved2: [u8; 16],
}

/// Flag bits shared by Login Request and Login Response.
pub mod login_flags {
    /// Transit to the next stage.
    pub const TRANSIT: u8 = 0x80;
    /// Text continues in the next PDU.
    pub const CONTINUE: u8 = 0x40;

    /// Current stage (bits 2-3).
    pub fn csg(flags: u8) -> u8 {
        (flags >> 2) & 0x03
    }
    /// Next stage (bits 0-1).
    pub fn nsg(flags: u8) -> u8 {
        flags & 0x03
    }
    pub fn pack(transit: bool, cont: bool, csg: u8, nsg: u8) -> u8 {
        let mut flags = ((csg & 0x03) << 2) | (nsg & 0x03);
        if transit {
            flags |= TRANSIT;
        }
        if cont {
            flags |= CONTINUE;
        }
        flags
    }
}

/// Text Request (RFC 7143 §11.10).
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct TextRequestHeader {
    pub opcode: u8,
    /// F, C.
    pub flags: u8,
    pub reserved1: [u8; 2],
    pub total_ahs_len_words: u8,
    pub data_segment_len: U24,
    pub lun: [u8; 8],
    pub initiator_task_tag: U32,
    pub target_transfer_tag: U32,
    pub cmd_sn: U32,
    pub exp_stat_sn: U32,
    pub reserved2: [u8; 16],
}

/// Flag bits shared by Text Request and Text Response.
pub mod text_flags {
    pub const FINAL: u8 = 0x80;
    pub const CONTINUE: u8 = 0x40;
}

/// SCSI Data-Out (RFC 7143 §11.7).
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct DataOutHeader {
    pub opcode: u8,
    /// F.
    pub flags: u8,
    pub reserved1: [u8; 2],
    pub total_ahs_len_words: u8,
    pub data_segment_len: U24,
    pub lun: [u8; 8],
    pub initiator_task_tag: U32,
    pub target_transfer_tag: U32,
    pub reserved2: [u8; 4],
    pub exp_stat_sn: U32,
    pub reserved3: [u8; 4],
    pub data_sn: U32,
    pub buffer_offset: U32,
    pub reserved4: [u8; 4],
}

/// Logout Request (RFC 7143 §11.14).
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct LogoutRequestHeader {
    pub opcode: u8,
    /// Bit 7 is always set; bits 0-6 are the reason code.
    pub reason: u8,
    pub reserved1: [u8; 2],
    pub total_ahs_len_words: u8,
    pub data_segment_len: U24,
    pub reserved2: [u8; 8],
    pub initiator_task_tag: U32,
    pub cid: U16,
    pub reserved3: [u8; 2],
    pub cmd_sn: U32,
    pub exp_stat_sn: U32,
    pub reserved4: [u8; 16],
}

impl LogoutRequestHeader {
    pub fn reason_code(&self) -> u8 {
        self.reason & 0x7f
    }
}

/// SNACK Request (RFC 7143 §11.16); only ever rejected at ErrorRecoveryLevel 0.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct SnackRequestHeader {
    pub opcode: u8,
    /// Bit 7 set; bits 0-3 are the SNACK type.
    pub flags: u8,
    pub reserved1: [u8; 2],
    pub total_ahs_len_words: u8,
    pub data_segment_len: U24,
    pub lun: [u8; 8],
    pub initiator_task_tag: U32,
    pub target_transfer_tag: U32,
    pub reserved2: [u8; 4],
    pub exp_stat_sn: U32,
    pub reserved3: [u8; 8],
    pub beg_run: U32,
    pub run_length: U32,
}

assert_bhs_size!(
    NopOutHeader,
    ScsiCommandHeader,
    TaskMgmtRequestHeader,
    LoginRequestHeader,
    TextRequestHeader,
    DataOutHeader,
    LogoutRequestHeader,
    SnackRequestHeader,
);

impl Pdu for NopOutHeader {
    const OPCODE: Opcode = Opcode::NopOut;
}
impl Pdu for ScsiCommandHeader {
    const OPCODE: Opcode = Opcode::ScsiCommand;
}
impl Pdu for TaskMgmtRequestHeader {
    const OPCODE: Opcode = Opcode::TaskMgmtRequest;
}
impl Pdu for LoginRequestHeader {
    const OPCODE: Opcode = Opcode::LoginRequest;
}
impl Pdu for TextRequestHeader {
    const OPCODE: Opcode = Opcode::TextRequest;
}
impl Pdu for DataOutHeader {
    const OPCODE: Opcode = Opcode::DataOut;
}
impl Pdu for LogoutRequestHeader {
    const OPCODE: Opcode = Opcode::LogoutRequest;
}
impl Pdu for SnackRequestHeader {
    const OPCODE: Opcode = Opcode::SnackRequest;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iscsi::header::BHS_LEN_BYTES;

    #[test]
    fn scsi_command_fields_sit_at_rfc_offsets() {
        let mut raw = [0u8; BHS_LEN_BYTES];
        raw[0] = 0x01;
        raw[1] = 0xe1; // F R W, attribute SIMPLE
        raw[8..16].copy_from_slice(&[0, 3, 0, 0, 0, 0, 0, 0]);
        raw[16..20].copy_from_slice(&0x1122_3344u32.to_be_bytes());
        raw[20..24].copy_from_slice(&4096u32.to_be_bytes());
        raw[24..28].copy_from_slice(&9u32.to_be_bytes());
        raw[28..32].copy_from_slice(&5u32.to_be_bytes());
        raw[32] = 0x28;
        let cmd = ScsiCommandHeader::view(&raw);
        assert!(cmd.is_final() && cmd.is_read() && cmd.is_write());
        assert_eq!(cmd.flags & ScsiCommandHeader::ATTRIBUTES_MASK, 1);
        assert_eq!(cmd.lun[1], 3);
        assert_eq!(cmd.initiator_task_tag.get(), 0x1122_3344);
        assert_eq!(cmd.expected_data_transfer_len.get(), 4096);
        assert_eq!(cmd.cmd_sn.get(), 9);
        assert_eq!(cmd.exp_stat_sn.get(), 5);
        assert_eq!(cmd.cdb[0], 0x28);
    }

    #[test]
    fn login_request_fields_sit_at_rfc_offsets() {
        let mut raw = [0u8; BHS_LEN_BYTES];
        raw[0] = 0x43;
        raw[1] = login_flags::pack(true, false, 1, 3);
        raw[8..14].copy_from_slice(&[0x80, 1, 2, 3, 4, 5]);
        raw[14..16].copy_from_slice(&0x0102u16.to_be_bytes());
        raw[20..22].copy_from_slice(&7u16.to_be_bytes());
        let login = LoginRequestHeader::view(&raw);
        assert_eq!(login.flags, 0x87);
        assert_eq!(login_flags::csg(login.flags), 1);
        assert_eq!(login_flags::nsg(login.flags), 3);
        assert_eq!(login.isid, [0x80, 1, 2, 3, 4, 5]);
        assert_eq!(login.tsih.get(), 0x0102);
        assert_eq!(login.cid.get(), 7);
    }

    #[test]
    fn data_out_fields_sit_at_rfc_offsets() {
        let mut raw = [0u8; BHS_LEN_BYTES];
        raw[0] = 0x05;
        raw[20..24].copy_from_slice(&0xabcdu32.to_be_bytes());
        raw[36..40].copy_from_slice(&2u32.to_be_bytes());
        raw[40..44].copy_from_slice(&1024u32.to_be_bytes());
        let data = DataOutHeader::view(&raw);
        assert_eq!(data.target_transfer_tag.get(), 0xabcd);
        assert_eq!(data.data_sn.get(), 2);
        assert_eq!(data.buffer_offset.get(), 1024);
    }
}
