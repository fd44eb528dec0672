//! Builds the PDUs an initiator sends (Login, SCSI Command, Data-Out, NOP-Out, Logout) straight
//! into a send buffer, with lunar-wire's header structs and encoder. No digests.

use lunar_wire::iscsi::header::{Opcode, FINAL_BIT, IMMEDIATE_BIT, RESERVED_TAG};
use lunar_wire::iscsi::initiator::{
    login_flags, DataOutHeader, LoginRequestHeader, LogoutRequestHeader, NopOutHeader,
    ScsiCommandHeader,
};
use lunar_wire::iscsi::{push_pdu, EncodeError};
use zerocopy::FromZeros;

use crate::scsi::Cdb;

/// Task attribute SIMPLE in the SCSI Command flags.
const TASK_ATTRIBUTE_SIMPLE: u8 = 1;
/// Logout reason "close the session".
const LOGOUT_CLOSE_SESSION: u8 = 0;

/// Which way a command moves data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    None,
    Read,
    Write,
}

/// The fields of a SCSI Command PDU that change per command.
#[derive(Debug, Clone, Copy)]
pub struct Command<'a> {
    pub lun: [u8; 8],
    pub itt: u32,
    pub direction: Direction,
    pub expected_len_bytes: u32,
    pub cmd_sn: u32,
    pub exp_stat_sn: u32,
    pub cdb: &'a Cdb,
    /// Unsolicited Data-Out PDUs follow: the F bit stays clear.
    pub more_unsolicited: bool,
    pub immediate_data: &'a [u8],
}

pub fn push_command(out: &mut Vec<u8>, command: &Command<'_>) -> Result<(), EncodeError> {
    let mut header = ScsiCommandHeader::new_zeroed();
    header.opcode = Opcode::ScsiCommand as u8;
    header.flags = TASK_ATTRIBUTE_SIMPLE
        | match command.direction {
            Direction::None => 0,
            Direction::Read => ScsiCommandHeader::FLAG_READ,
            Direction::Write => ScsiCommandHeader::FLAG_WRITE,
        };
    if !command.more_unsolicited {
        header.flags |= ScsiCommandHeader::FLAG_FINAL;
    }
    header.lun = command.lun;
    header.initiator_task_tag.set(command.itt);
    header
        .expected_data_transfer_len
        .set(command.expected_len_bytes);
    header.cmd_sn.set(command.cmd_sn);
    header.exp_stat_sn.set(command.exp_stat_sn);
    header.cdb = *command.cdb;
    push_pdu(out, &header, command.immediate_data)
}

/// The fields of a Data-Out PDU.
#[derive(Debug, Clone, Copy)]
pub struct DataOut<'a> {
    pub lun: [u8; 8],
    pub itt: u32,
    /// The R2T's tag, or [`RESERVED_TAG`] for unsolicited data.
    pub ttt: u32,
    pub data_sn: u32,
    pub buffer_offset_bytes: u32,
    pub last: bool,
    pub exp_stat_sn: u32,
    pub data: &'a [u8],
}

pub fn push_data_out(out: &mut Vec<u8>, data_out: &DataOut<'_>) -> Result<(), EncodeError> {
    let mut header = DataOutHeader::new_zeroed();
    header.opcode = Opcode::DataOut as u8;
    header.flags = if data_out.last { FINAL_BIT } else { 0 };
    header.lun = data_out.lun;
    header.initiator_task_tag.set(data_out.itt);
    header.target_transfer_tag.set(data_out.ttt);
    header.exp_stat_sn.set(data_out.exp_stat_sn);
    header.data_sn.set(data_out.data_sn);
    header.buffer_offset.set(data_out.buffer_offset_bytes);
    push_pdu(out, &header, data_out.data)
}

/// The NOP-Out that answers a target's NOP-In ping (immediate, ITT reserved, TTT echoed).
pub fn push_nop_out_reply(
    out: &mut Vec<u8>,
    lun: [u8; 8],
    ttt: u32,
    cmd_sn: u32,
    exp_stat_sn: u32,
) -> Result<(), EncodeError> {
    let mut header = NopOutHeader::new_zeroed();
    header.opcode = Opcode::NopOut as u8 | IMMEDIATE_BIT;
    header.flags = FINAL_BIT;
    header.lun = lun;
    header.initiator_task_tag.set(RESERVED_TAG);
    header.target_transfer_tag.set(ttt);
    header.cmd_sn.set(cmd_sn);
    header.exp_stat_sn.set(exp_stat_sn);
    push_pdu(out, &header, &[])
}

/// An immediate Logout Request closing the whole session.
pub fn push_logout(
    out: &mut Vec<u8>,
    itt: u32,
    cmd_sn: u32,
    exp_stat_sn: u32,
) -> Result<(), EncodeError> {
    let mut header = LogoutRequestHeader::new_zeroed();
    header.opcode = Opcode::LogoutRequest as u8 | IMMEDIATE_BIT;
    header.reason = FINAL_BIT | LOGOUT_CLOSE_SESSION;
    header.initiator_task_tag.set(itt);
    header.cmd_sn.set(cmd_sn);
    header.exp_stat_sn.set(exp_stat_sn);
    push_pdu(out, &header, &[])
}

/// The fields of a Login Request.
#[derive(Debug, Clone, Copy)]
pub struct Login<'a> {
    pub isid: [u8; 6],
    pub tsih: u16,
    pub itt: u32,
    pub cmd_sn: u32,
    pub exp_stat_sn: u32,
    pub current_stage: u8,
    pub next_stage: u8,
    pub transit: bool,
    pub text: &'a [u8],
}

pub fn push_login(out: &mut Vec<u8>, login: &Login<'_>) -> Result<(), EncodeError> {
    let mut header = LoginRequestHeader::new_zeroed();
    header.opcode = Opcode::LoginRequest as u8 | IMMEDIATE_BIT;
    header.flags = login_flags::pack(login.transit, false, login.current_stage, login.next_stage);
    header.isid = login.isid;
    header.tsih.set(login.tsih);
    header.initiator_task_tag.set(login.itt);
    header.cmd_sn.set(login.cmd_sn);
    header.exp_stat_sn.set(login.exp_stat_sn);
    push_pdu(out, &header, login.text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use lunar_wire::iscsi::header::Pdu;
    use lunar_wire::iscsi::{next_frame, FrameLimits, FrameStatus};

    fn only_frame(bytes: &[u8]) -> ([u8; 48], Vec<u8>) {
        let limits = FrameLimits {
            max_data_segment_len_bytes: 1 << 20,
            ..FrameLimits::LOGIN
        };
        match next_frame(bytes, &limits) {
            Ok(FrameStatus::Complete(frame)) => {
                assert_eq!(frame.len_bytes, bytes.len());
                (*frame.bhs_bytes, frame.data.to_vec())
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn command_with_immediate_data() {
        let mut out = Vec::new();
        let cdb = crate::scsi::write_16(9, 1);
        push_command(
            &mut out,
            &Command {
                lun: [0, 1, 0, 0, 0, 0, 0, 0],
                itt: 0x10,
                direction: Direction::Write,
                expected_len_bytes: 512,
                cmd_sn: 5,
                exp_stat_sn: 7,
                cdb: &cdb,
                more_unsolicited: false,
                immediate_data: &[0xab; 6],
            },
        )
        .expect("fits");
        let (bhs, data) = only_frame(&out);
        let header = ScsiCommandHeader::view(&bhs);
        assert!(header.is_final() && header.is_write() && !header.is_read());
        assert_eq!(header.flags & ScsiCommandHeader::ATTRIBUTES_MASK, 1);
        assert_eq!(header.lun[1], 1);
        assert_eq!(header.initiator_task_tag.get(), 0x10);
        assert_eq!(header.expected_data_transfer_len.get(), 512);
        assert_eq!((header.cmd_sn.get(), header.exp_stat_sn.get()), (5, 7));
        assert_eq!(header.cdb, cdb);
        assert_eq!(data, vec![0xab; 6]);
    }

    #[test]
    fn command_followed_by_unsolicited_data_is_not_final() {
        let mut out = Vec::new();
        let cdb = crate::scsi::read_16(0, 1);
        push_command(
            &mut out,
            &Command {
                lun: [0; 8],
                itt: 1,
                direction: Direction::Read,
                expected_len_bytes: 512,
                cmd_sn: 1,
                exp_stat_sn: 1,
                cdb: &cdb,
                more_unsolicited: true,
                immediate_data: &[],
            },
        )
        .expect("fits");
        let (bhs, _) = only_frame(&out);
        let header = ScsiCommandHeader::view(&bhs);
        assert!(!header.is_final() && header.is_read());
    }

    #[test]
    fn data_out_fields() {
        let mut out = Vec::new();
        push_data_out(
            &mut out,
            &DataOut {
                lun: [0; 8],
                itt: 3,
                ttt: 0x99,
                data_sn: 2,
                buffer_offset_bytes: 8192,
                last: true,
                exp_stat_sn: 4,
                data: &[1, 2, 3],
            },
        )
        .expect("fits");
        let (bhs, data) = only_frame(&out);
        let header = DataOutHeader::view(&bhs);
        assert_eq!(header.flags, FINAL_BIT);
        assert_eq!(header.target_transfer_tag.get(), 0x99);
        assert_eq!(header.data_sn.get(), 2);
        assert_eq!(header.buffer_offset.get(), 8192);
        assert_eq!(data, vec![1, 2, 3]);
    }

    #[test]
    fn nop_out_reply_and_logout_are_immediate() {
        let mut out = Vec::new();
        push_nop_out_reply(&mut out, [0; 8], 0x55, 9, 3).expect("fits");
        let (bhs, _) = only_frame(&out);
        assert_eq!(bhs[0], 0x40);
        let nop = NopOutHeader::view(&bhs);
        assert_eq!(nop.initiator_task_tag.get(), RESERVED_TAG);
        assert_eq!(nop.target_transfer_tag.get(), 0x55);
        assert_eq!(nop.cmd_sn.get(), 9);

        let mut out = Vec::new();
        push_logout(&mut out, 7, 9, 3).expect("fits");
        let (bhs, _) = only_frame(&out);
        assert_eq!(bhs[0], 0x46);
        assert_eq!(LogoutRequestHeader::view(&bhs).reason_code(), 0);
    }

    #[test]
    fn login_stages_and_text() {
        let mut out = Vec::new();
        push_login(
            &mut out,
            &Login {
                isid: [0x80, 1, 2, 3, 0, 1],
                tsih: 0,
                itt: 0,
                cmd_sn: 1,
                exp_stat_sn: 0,
                current_stage: 1,
                next_stage: 3,
                transit: true,
                text: b"A=B\0",
            },
        )
        .expect("fits");
        let (bhs, data) = only_frame(&out);
        let login = LoginRequestHeader::view(&bhs);
        assert_eq!(bhs[0], 0x43);
        assert_eq!(login.flags, 0x87);
        assert_eq!(login.isid, [0x80, 1, 2, 3, 0, 1]);
        assert_eq!(data, b"A=B\0");
    }
}
