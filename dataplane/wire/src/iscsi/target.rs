//! Headers of the PDUs a target sends (RFC 7143 §11): NOP-In, SCSI Response, Task Management
//! Function Response, Login Response, Text Response, SCSI Data-In, Logout Response, Ready To
//! Transfer, Reject and Asynchronous Message. Each mirrors the wire layout byte for byte; the
//! constructors fill the opcode and the fixed bits, and leave DataSegmentLength to
//! [`push_pdu`](super::encode::push_pdu).

use zerocopy::byteorder::big_endian::{U16, U32};
use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes, KnownLayout, Unaligned};

use super::header::{assert_bhs_size, Opcode, Pdu, FINAL_BIT, RESERVED_TAG, U24};

/// The sequence numbers most target PDUs carry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatusSeq {
    pub stat_sn: u32,
    pub exp_cmd_sn: u32,
    pub max_cmd_sn: u32,
}

/// NOP-In (RFC 7143 §11.19).
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct NopInHeader {
    pub opcode: u8,
    pub flags: u8,
    pub reserved1: [u8; 2],
    pub total_ahs_len_words: u8,
    pub data_segment_len: U24,
    pub lun: [u8; 8],
    pub initiator_task_tag: U32,
    pub target_transfer_tag: U32,
    pub stat_sn: U32,
    pub exp_cmd_sn: U32,
    pub max_cmd_sn: U32,
    pub reserved2: [u8; 12],
}

impl NopInHeader {
    pub fn new(lun: [u8; 8], itt: u32, ttt: u32, seq: StatusSeq) -> NopInHeader {
        let mut h = NopInHeader::new_zeroed();
        h.opcode = Opcode::NopIn as u8;
        h.flags = FINAL_BIT;
        h.lun = lun;
        h.initiator_task_tag.set(itt);
        h.target_transfer_tag.set(ttt);
        h.stat_sn.set(seq.stat_sn);
        h.exp_cmd_sn.set(seq.exp_cmd_sn);
        h.max_cmd_sn.set(seq.max_cmd_sn);
        h
    }
}

/// SCSI Response (RFC 7143 §11.4).
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct ScsiResponseHeader {
    pub opcode: u8,
    /// Bit 7 set; o u O U residual bits.
    pub flags: u8,
    pub response: u8,
    pub status: u8,
    pub total_ahs_len_words: u8,
    pub data_segment_len: U24,
    pub reserved1: [u8; 8],
    pub initiator_task_tag: U32,
    pub snack_tag: U32,
    pub stat_sn: U32,
    pub exp_cmd_sn: U32,
    pub max_cmd_sn: U32,
    pub exp_data_sn: U32,
    pub bidi_residual_count: U32,
    pub residual_count: U32,
}

/// Residual flag bits of SCSI Response and SCSI Data-In.
pub mod residual_flags {
    /// Bidirectional read residual overflow (SCSI Response only).
    pub const BIDI_OVERFLOW: u8 = 0x10;
    /// Bidirectional read residual underflow (SCSI Response only).
    pub const BIDI_UNDERFLOW: u8 = 0x08;
    pub const OVERFLOW: u8 = 0x04;
    pub const UNDERFLOW: u8 = 0x02;
}

/// SCSI Response "Response" field values.
pub mod response_code {
    pub const COMMAND_COMPLETED: u8 = 0x00;
    pub const TARGET_FAILURE: u8 = 0x01;
}

/// Residual of a command: none, overflow (the command wanted more than the expected length)
/// or underflow (less was transferred than expected), with its byte count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Residual {
    None,
    Overflow(u32),
    Underflow(u32),
}

impl Residual {
    /// The O/U flag bits and the ResidualCount field.
    pub fn flags_and_count(self) -> (u8, u32) {
        match self {
            Residual::None => (0, 0),
            Residual::Overflow(n) => (residual_flags::OVERFLOW, n),
            Residual::Underflow(n) => (residual_flags::UNDERFLOW, n),
        }
    }
}

impl ScsiResponseHeader {
    pub fn new(
        itt: u32,
        status: u8,
        residual: Residual,
        exp_data_sn: u32,
        seq: StatusSeq,
    ) -> ScsiResponseHeader {
        let mut h = ScsiResponseHeader::new_zeroed();
        let (residual_bits, residual_count) = residual.flags_and_count();
        h.opcode = Opcode::ScsiResponse as u8;
        h.flags = FINAL_BIT | residual_bits;
        h.response = response_code::COMMAND_COMPLETED;
        h.status = status;
        h.initiator_task_tag.set(itt);
        h.stat_sn.set(seq.stat_sn);
        h.exp_cmd_sn.set(seq.exp_cmd_sn);
        h.max_cmd_sn.set(seq.max_cmd_sn);
        h.exp_data_sn.set(exp_data_sn);
        h.residual_count.set(residual_count);
        h
    }
}

/// Task Management Function Response (RFC 7143 §11.6).
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct TaskMgmtResponseHeader {
    pub opcode: u8,
    pub flags: u8,
    pub response: u8,
    pub reserved1: u8,
    pub total_ahs_len_words: u8,
    pub data_segment_len: U24,
    pub reserved2: [u8; 8],
    pub initiator_task_tag: U32,
    pub reserved3: [u8; 4],
    pub stat_sn: U32,
    pub exp_cmd_sn: U32,
    pub max_cmd_sn: U32,
    pub reserved4: [u8; 12],
}

impl TaskMgmtResponseHeader {
    pub fn new(itt: u32, response: u8, seq: StatusSeq) -> TaskMgmtResponseHeader {
        let mut h = TaskMgmtResponseHeader::new_zeroed();
        h.opcode = Opcode::TaskMgmtResponse as u8;
        h.flags = FINAL_BIT;
        h.response = response;
        h.initiator_task_tag.set(itt);
        h.stat_sn.set(seq.stat_sn);
        h.exp_cmd_sn.set(seq.exp_cmd_sn);
        h.max_cmd_sn.set(seq.max_cmd_sn);
        h
    }
}

/// Login Response (RFC 7143 §11.13).
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct LoginResponseHeader {
    pub opcode: u8,
    /// T, C, CSG, NSG (see [`login_flags`](super::initiator::login_flags)).
    pub flags: u8,
    pub version_max: u8,
    pub version_active: u8,
    pub total_ahs_len_words: u8,
    pub data_segment_len: U24,
    pub isid: [u8; 6],
    pub tsih: U16,
    pub initiator_task_tag: U32,
    pub reserved1: [u8; 4],
    pub stat_sn: U32,
    pub exp_cmd_sn: U32,
    pub max_cmd_sn: U32,
    pub status_class: u8,
    pub status_detail: u8,
    pub reserved2: [u8; 10],
}

impl LoginResponseHeader {
    /// `status` is the 16-bit Status-Class/Status-Detail pair (e.g. 0x0203).
    pub fn new(
        flags: u8,
        isid: [u8; 6],
        tsih: u16,
        itt: u32,
        status: u16,
        seq: StatusSeq,
    ) -> LoginResponseHeader {
        let mut h = LoginResponseHeader::new_zeroed();
        let [class, detail] = status.to_be_bytes();
        h.opcode = Opcode::LoginResponse as u8;
        h.flags = flags;
        h.isid = isid;
        h.tsih.set(tsih);
        h.initiator_task_tag.set(itt);
        h.stat_sn.set(seq.stat_sn);
        h.exp_cmd_sn.set(seq.exp_cmd_sn);
        h.max_cmd_sn.set(seq.max_cmd_sn);
        h.status_class = class;
        h.status_detail = detail;
        h
    }
}

/// Text Response (RFC 7143 §11.11).
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct TextResponseHeader {
    pub opcode: u8,
    /// F, C (see [`text_flags`](super::initiator::text_flags)).
    pub flags: u8,
    pub reserved1: [u8; 2],
    pub total_ahs_len_words: u8,
    pub data_segment_len: U24,
    pub lun: [u8; 8],
    pub initiator_task_tag: U32,
    pub target_transfer_tag: U32,
    pub stat_sn: U32,
    pub exp_cmd_sn: U32,
    pub max_cmd_sn: U32,
    pub reserved2: [u8; 12],
}

impl TextResponseHeader {
    pub fn new(flags: u8, lun: [u8; 8], itt: u32, ttt: u32, seq: StatusSeq) -> TextResponseHeader {
        let mut h = TextResponseHeader::new_zeroed();
        h.opcode = Opcode::TextResponse as u8;
        h.flags = flags;
        h.lun = lun;
        h.initiator_task_tag.set(itt);
        h.target_transfer_tag.set(ttt);
        h.stat_sn.set(seq.stat_sn);
        h.exp_cmd_sn.set(seq.exp_cmd_sn);
        h.max_cmd_sn.set(seq.max_cmd_sn);
        h
    }
}

/// SCSI Data-In (RFC 7143 §11.7).
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct DataInHeader {
    pub opcode: u8,
    /// F, A, O, U, S.
    pub flags: u8,
    pub reserved1: u8,
    /// Valid only with the S bit.
    pub status: u8,
    pub total_ahs_len_words: u8,
    pub data_segment_len: U24,
    pub lun: [u8; 8],
    pub initiator_task_tag: U32,
    pub target_transfer_tag: U32,
    pub stat_sn: U32,
    pub exp_cmd_sn: U32,
    pub max_cmd_sn: U32,
    pub data_sn: U32,
    pub buffer_offset: U32,
    pub residual_count: U32,
}

/// Flag bits of SCSI Data-In besides the residual bits.
pub mod data_in_flags {
    pub const FINAL: u8 = 0x80;
    pub const ACKNOWLEDGE: u8 = 0x40;
    pub const STATUS: u8 = 0x01;
}

/// Status carried in a final Data-In PDU (S bit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataInStatus {
    pub status: u8,
    pub residual: Residual,
    pub stat_sn: u32,
}

impl DataInHeader {
    /// A Data-In PDU; `last_of_sequence` sets F, `status` sets S (and F) with the residual and
    /// the StatSN. Without status the StatSN field is left zero as the RFC reserves it.
    pub fn new(
        lun: [u8; 8],
        itt: u32,
        data_sn: u32,
        buffer_offset: u32,
        last_of_sequence: bool,
        status: Option<DataInStatus>,
        seq: StatusSeq,
    ) -> DataInHeader {
        let mut h = DataInHeader::new_zeroed();
        h.opcode = Opcode::DataIn as u8;
        if last_of_sequence {
            h.flags |= data_in_flags::FINAL;
        }
        if let Some(st) = status {
            let (residual_bits, residual_count) = st.residual.flags_and_count();
            h.flags |= data_in_flags::FINAL | data_in_flags::STATUS | residual_bits;
            h.status = st.status;
            h.stat_sn.set(st.stat_sn);
            h.residual_count.set(residual_count);
        }
        h.lun = lun;
        h.initiator_task_tag.set(itt);
        h.target_transfer_tag.set(RESERVED_TAG);
        h.exp_cmd_sn.set(seq.exp_cmd_sn);
        h.max_cmd_sn.set(seq.max_cmd_sn);
        h.data_sn.set(data_sn);
        h.buffer_offset.set(buffer_offset);
        h
    }
}

/// Logout Response (RFC 7143 §11.15).
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct LogoutResponseHeader {
    pub opcode: u8,
    pub flags: u8,
    pub response: u8,
    pub reserved1: u8,
    pub total_ahs_len_words: u8,
    pub data_segment_len: U24,
    pub reserved2: [u8; 8],
    pub initiator_task_tag: U32,
    pub reserved3: [u8; 4],
    pub stat_sn: U32,
    pub exp_cmd_sn: U32,
    pub max_cmd_sn: U32,
    pub reserved4: [u8; 4],
    pub time2wait_s: U16,
    pub time2retain_s: U16,
    pub reserved5: [u8; 4],
}

impl LogoutResponseHeader {
    pub fn new(
        itt: u32,
        response: u8,
        time2wait_s: u16,
        time2retain_s: u16,
        seq: StatusSeq,
    ) -> LogoutResponseHeader {
        let mut h = LogoutResponseHeader::new_zeroed();
        h.opcode = Opcode::LogoutResponse as u8;
        h.flags = FINAL_BIT;
        h.response = response;
        h.initiator_task_tag.set(itt);
        h.stat_sn.set(seq.stat_sn);
        h.exp_cmd_sn.set(seq.exp_cmd_sn);
        h.max_cmd_sn.set(seq.max_cmd_sn);
        h.time2wait_s.set(time2wait_s);
        h.time2retain_s.set(time2retain_s);
        h
    }
}

/// Ready To Transfer (R2T) (RFC 7143 §11.8).
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct ReadyToTransferHeader {
    pub opcode: u8,
    pub flags: u8,
    pub reserved1: [u8; 2],
    pub total_ahs_len_words: u8,
    pub data_segment_len: U24,
    pub lun: [u8; 8],
    pub initiator_task_tag: U32,
    pub target_transfer_tag: U32,
    pub stat_sn: U32,
    pub exp_cmd_sn: U32,
    pub max_cmd_sn: U32,
    pub r2t_sn: U32,
    pub buffer_offset: U32,
    pub desired_data_transfer_len: U32,
}

impl ReadyToTransferHeader {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        lun: [u8; 8],
        itt: u32,
        ttt: u32,
        r2t_sn: u32,
        buffer_offset: u32,
        desired_len_bytes: u32,
        seq: StatusSeq,
    ) -> ReadyToTransferHeader {
        let mut h = ReadyToTransferHeader::new_zeroed();
        h.opcode = Opcode::ReadyToTransfer as u8;
        h.flags = FINAL_BIT;
        h.lun = lun;
        h.initiator_task_tag.set(itt);
        h.target_transfer_tag.set(ttt);
        h.stat_sn.set(seq.stat_sn);
        h.exp_cmd_sn.set(seq.exp_cmd_sn);
        h.max_cmd_sn.set(seq.max_cmd_sn);
        h.r2t_sn.set(r2t_sn);
        h.buffer_offset.set(buffer_offset);
        h.desired_data_transfer_len.set(desired_len_bytes);
        h
    }
}

/// Reject (RFC 7143 §11.17); its data segment is the rejected PDU's header.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct RejectHeader {
    pub opcode: u8,
    pub flags: u8,
    pub reason: u8,
    pub reserved1: u8,
    pub total_ahs_len_words: u8,
    pub data_segment_len: U24,
    pub reserved2: [u8; 8],
    /// Always the reserved tag.
    pub initiator_task_tag: U32,
    pub reserved3: [u8; 4],
    pub stat_sn: U32,
    pub exp_cmd_sn: U32,
    pub max_cmd_sn: U32,
    pub data_sn_or_r2t_sn: U32,
    pub reserved4: [u8; 8],
}

impl RejectHeader {
    pub fn new(reason: u8, seq: StatusSeq) -> RejectHeader {
        let mut h = RejectHeader::new_zeroed();
        h.opcode = Opcode::Reject as u8;
        h.flags = FINAL_BIT;
        h.reason = reason;
        h.initiator_task_tag.set(RESERVED_TAG);
        h.stat_sn.set(seq.stat_sn);
        h.exp_cmd_sn.set(seq.exp_cmd_sn);
        h.max_cmd_sn.set(seq.max_cmd_sn);
        h
    }
}

/// Asynchronous Message (RFC 7143 §11.9).
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct AsyncMessageHeader {
    pub opcode: u8,
    pub flags: u8,
    pub reserved1: [u8; 2],
    pub total_ahs_len_words: u8,
    pub data_segment_len: U24,
    pub lun: [u8; 8],
    /// Always the reserved tag.
    pub initiator_task_tag: U32,
    pub reserved2: [u8; 4],
    pub stat_sn: U32,
    pub exp_cmd_sn: U32,
    pub max_cmd_sn: U32,
    pub async_event: u8,
    pub async_vcode: u8,
    pub parameter1: U16,
    pub parameter2: U16,
    pub parameter3: U16,
    pub reserved3: [u8; 4],
}

/// AsyncEvent codes (RFC 7143 §11.9.1).
pub mod async_event {
    pub const SCSI_ASYNC_EVENT: u8 = 0;
    pub const LOGOUT_REQUESTED: u8 = 1;
    pub const DROPPING_CONNECTION: u8 = 2;
    pub const DROPPING_ALL_CONNECTIONS: u8 = 3;
    pub const RENEGOTIATE: u8 = 4;
    pub const VENDOR_SPECIFIC: u8 = 255;
}

impl AsyncMessageHeader {
    /// `parameters` are Parameter1..3 (e.g. Time2Wait/Time2Retain for a logout request).
    pub fn new(
        lun: [u8; 8],
        event: u8,
        parameters: [u16; 3],
        seq: StatusSeq,
    ) -> AsyncMessageHeader {
        let mut h = AsyncMessageHeader::new_zeroed();
        h.opcode = Opcode::AsyncMessage as u8;
        h.flags = FINAL_BIT;
        h.lun = lun;
        h.initiator_task_tag.set(RESERVED_TAG);
        h.stat_sn.set(seq.stat_sn);
        h.exp_cmd_sn.set(seq.exp_cmd_sn);
        h.max_cmd_sn.set(seq.max_cmd_sn);
        h.async_event = event;
        h.parameter1.set(parameters[0]);
        h.parameter2.set(parameters[1]);
        h.parameter3.set(parameters[2]);
        h
    }
}

assert_bhs_size!(
    NopInHeader,
    ScsiResponseHeader,
    TaskMgmtResponseHeader,
    LoginResponseHeader,
    TextResponseHeader,
    DataInHeader,
    LogoutResponseHeader,
    ReadyToTransferHeader,
    RejectHeader,
    AsyncMessageHeader,
);

impl Pdu for NopInHeader {
    const OPCODE: Opcode = Opcode::NopIn;
}
impl Pdu for ScsiResponseHeader {
    const OPCODE: Opcode = Opcode::ScsiResponse;
}
impl Pdu for TaskMgmtResponseHeader {
    const OPCODE: Opcode = Opcode::TaskMgmtResponse;
}
impl Pdu for LoginResponseHeader {
    const OPCODE: Opcode = Opcode::LoginResponse;
}
impl Pdu for TextResponseHeader {
    const OPCODE: Opcode = Opcode::TextResponse;
}
impl Pdu for DataInHeader {
    const OPCODE: Opcode = Opcode::DataIn;
}
impl Pdu for LogoutResponseHeader {
    const OPCODE: Opcode = Opcode::LogoutResponse;
}
impl Pdu for ReadyToTransferHeader {
    const OPCODE: Opcode = Opcode::ReadyToTransfer;
}
impl Pdu for RejectHeader {
    const OPCODE: Opcode = Opcode::Reject;
}
impl Pdu for AsyncMessageHeader {
    const OPCODE: Opcode = Opcode::AsyncMessage;
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEQ: StatusSeq = StatusSeq {
        stat_sn: 0x10,
        exp_cmd_sn: 0x20,
        max_cmd_sn: 0x30,
    };

    fn word(bytes: &[u8], offset: usize) -> u32 {
        u32::from_be_bytes([
            bytes[offset],
            bytes[offset + 1],
            bytes[offset + 2],
            bytes[offset + 3],
        ])
    }

    #[test]
    fn scsi_response_layout() {
        let h = ScsiResponseHeader::new(7, 0x02, Residual::Underflow(512), 3, SEQ);
        let b = h.as_bytes();
        assert_eq!(b[0], 0x21);
        assert_eq!(b[1], 0x80 | residual_flags::UNDERFLOW);
        assert_eq!((b[2], b[3]), (0, 0x02));
        assert_eq!(word(b, 16), 7);
        assert_eq!((word(b, 24), word(b, 28), word(b, 32)), (0x10, 0x20, 0x30));
        assert_eq!(word(b, 36), 3);
        assert_eq!(word(b, 44), 512);
    }

    #[test]
    fn data_in_with_status_sets_final_and_status_bits() {
        let status = DataInStatus {
            status: 0,
            residual: Residual::Overflow(100),
            stat_sn: 0x10,
        };
        let h = DataInHeader::new([0; 8], 9, 4, 8192, false, Some(status), SEQ);
        let b = h.as_bytes();
        assert_eq!(b[0], 0x25);
        assert_eq!(b[1], 0x80 | 0x01 | residual_flags::OVERFLOW);
        assert_eq!(word(b, 20), RESERVED_TAG);
        assert_eq!(word(b, 24), 0x10);
        assert_eq!((word(b, 36), word(b, 40), word(b, 44)), (4, 8192, 100));

        let plain = DataInHeader::new([0; 8], 9, 0, 0, false, None, SEQ);
        assert_eq!(plain.as_bytes()[1], 0);
        assert_eq!(word(plain.as_bytes(), 24), 0);
    }

    #[test]
    fn login_response_splits_status() {
        let h = LoginResponseHeader::new(0x87, [1, 2, 3, 4, 5, 6], 9, 1, 0x0203, SEQ);
        let b = h.as_bytes();
        assert_eq!(b[0], 0x23);
        assert_eq!(b[1], 0x87);
        assert_eq!(&b[8..14], &[1, 2, 3, 4, 5, 6]);
        assert_eq!(u16::from_be_bytes([b[14], b[15]]), 9);
        assert_eq!((b[36], b[37]), (0x02, 0x03));
    }

    #[test]
    fn r2t_reject_logout_async_layout() {
        let r2t = ReadyToTransferHeader::new([0; 8], 1, 2, 3, 4096, 65536, SEQ);
        let b = r2t.as_bytes();
        assert_eq!((b[0], b[1]), (0x31, 0x80));
        assert_eq!(
            (word(b, 20), word(b, 36), word(b, 40), word(b, 44)),
            (2, 3, 4096, 65536)
        );

        let reject = RejectHeader::new(0x09, SEQ);
        let b = reject.as_bytes();
        assert_eq!((b[0], b[1], b[2]), (0x3f, 0x80, 0x09));
        assert_eq!(word(b, 16), RESERVED_TAG);

        let logout = LogoutResponseHeader::new(5, 0, 2, 0, SEQ);
        let b = logout.as_bytes();
        assert_eq!((b[0], b[2]), (0x26, 0));
        assert_eq!(u16::from_be_bytes([b[40], b[41]]), 2);

        let msg = AsyncMessageHeader::new([0; 8], async_event::LOGOUT_REQUESTED, [5, 2, 20], SEQ);
        let b = msg.as_bytes();
        assert_eq!((b[0], b[36]), (0x32, 1));
        assert_eq!(u16::from_be_bytes([b[38], b[39]]), 5);
    }
}
