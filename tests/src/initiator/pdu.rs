//! iSCSI PDU framing for the test initiator (RFC 7143 §11): the 48-byte basic header segment,
//! optional AHS, and a data segment padded to 4 bytes; no digests (the initiator negotiates
//! `HeaderDigest=None`, `DataDigest=None`).
//!
//! Decoding is sans-IO: [`decode`] takes the bytes received so far and answers "need more" until a
//! whole PDU is there, checking the data length against a maximum before anything is reserved.

/// Length of the basic header segment.
pub const BHS_LEN: usize = 48;
/// The "no task" tag value.
pub const RESERVED_TAG: u32 = 0xffff_ffff;

/// Initiator opcodes.
pub mod op {
    /// NOP-Out.
    pub const NOP_OUT: u8 = 0x00;
    /// SCSI Command.
    pub const SCSI_COMMAND: u8 = 0x01;
    /// SCSI Task Management Function Request.
    pub const TASK_MGMT_REQUEST: u8 = 0x02;
    /// Login Request.
    pub const LOGIN_REQUEST: u8 = 0x03;
    /// SCSI Data-Out.
    pub const DATA_OUT: u8 = 0x05;
    /// Logout Request.
    pub const LOGOUT_REQUEST: u8 = 0x06;
    /// NOP-In.
    pub const NOP_IN: u8 = 0x20;
    /// SCSI Response.
    pub const SCSI_RESPONSE: u8 = 0x21;
    /// SCSI Task Management Function Response.
    pub const TASK_MGMT_RESPONSE: u8 = 0x22;
    /// Login Response.
    pub const LOGIN_RESPONSE: u8 = 0x23;
    /// SCSI Data-In.
    pub const DATA_IN: u8 = 0x25;
    /// Text Response.
    pub const TEXT_RESPONSE: u8 = 0x24;
    /// Logout Response.
    pub const LOGOUT_RESPONSE: u8 = 0x26;
    /// Ready To Transfer.
    pub const R2T: u8 = 0x31;
    /// Asynchronous Message.
    pub const ASYNC_MESSAGE: u8 = 0x32;
    /// Reject.
    pub const REJECT: u8 = 0x3f;
}

/// Immediate-delivery bit of byte 0.
pub const IMMEDIATE: u8 = 0x40;

/// One PDU: its header and its (unpadded) data segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pdu {
    /// The basic header segment.
    pub bhs: [u8; BHS_LEN],
    /// The data segment, without padding.
    pub data: Vec<u8>,
}

/// Why bytes are not a PDU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PduError {
    /// The announced data segment is longer than the receiver accepts.
    #[error("data segment of {len_bytes} bytes exceeds the maximum of {max_bytes}")]
    DataTooLong {
        /// Announced length.
        len_bytes: u32,
        /// Accepted maximum.
        max_bytes: u32,
    },
}

/// The result of decoding from a receive buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    /// At least this many bytes in total are needed before a PDU is complete.
    NeedMore(usize),
    /// A PDU and how many bytes of the buffer it used.
    Complete(Pdu, usize),
}

/// Rounds up to the 4-byte padding boundary.
pub fn padded_len(len_bytes: usize) -> usize {
    len_bytes.div_ceil(4) * 4
}

/// Decodes one PDU from the front of `buf`; `max_data_bytes` bounds the data segment.
pub fn decode(buf: &[u8], max_data_bytes: u32) -> Result<Decoded, PduError> {
    let Some(header) = buf.first_chunk::<BHS_LEN>() else {
        return Ok(Decoded::NeedMore(BHS_LEN));
    };
    let ahs_len_bytes = usize::from(header[4]) * 4;
    let data_len = u32::from_be_bytes([0, header[5], header[6], header[7]]);
    if data_len > max_data_bytes {
        return Err(PduError::DataTooLong {
            len_bytes: data_len,
            max_bytes: max_data_bytes,
        });
    }
    // data_len < 2^24, so these sums cannot overflow.
    let data_start = BHS_LEN + ahs_len_bytes;
    let data_len = data_len as usize;
    let total = data_start + padded_len(data_len);
    if buf.len() < total {
        return Ok(Decoded::NeedMore(total));
    }
    Ok(Decoded::Complete(
        Pdu {
            bhs: *header,
            data: buf[data_start..data_start + data_len].to_vec(),
        },
        total,
    ))
}

impl Pdu {
    /// A PDU with a zeroed header carrying `opcode` (and the immediate bit if `immediate`).
    pub fn new(opcode: u8, immediate: bool) -> Pdu {
        let mut bhs = [0u8; BHS_LEN];
        bhs[0] = opcode | if immediate { IMMEDIATE } else { 0 };
        Pdu {
            bhs,
            data: Vec::new(),
        }
    }

    /// The opcode (without the immediate bit).
    pub fn opcode(&self) -> u8 {
        self.bhs[0] & 0x3f
    }

    /// Byte 1: the opcode-specific flags.
    pub fn flags(&self) -> u8 {
        self.bhs[1]
    }

    /// The big-endian u32 at `offset` of the header.
    pub fn u32_at(&self, offset: usize) -> u32 {
        let mut bytes = [0u8; 4];
        bytes.copy_from_slice(&self.bhs[offset..offset + 4]);
        u32::from_be_bytes(bytes)
    }

    /// Writes a big-endian u32 at `offset` of the header.
    pub fn set_u32(&mut self, offset: usize, value: u32) {
        self.bhs[offset..offset + 4].copy_from_slice(&value.to_be_bytes());
    }

    /// Initiator Task Tag (bytes 16..20).
    pub fn itt(&self) -> u32 {
        self.u32_at(16)
    }

    /// Target Transfer Tag (bytes 20..24) for the PDUs that carry one.
    pub fn ttt(&self) -> u32 {
        self.u32_at(20)
    }

    /// StatSN (bytes 24..28) of target PDUs.
    pub fn stat_sn(&self) -> u32 {
        self.u32_at(24)
    }

    /// Sets the 8-byte LUN field (bytes 8..16) with SAM single-level addressing.
    pub fn set_lun(&mut self, lun: u16) {
        self.bhs[8..16].copy_from_slice(&encode_lun(lun));
    }

    /// Sets the data segment and its length field.
    pub fn set_data(&mut self, data: Vec<u8>) {
        let len = u32::try_from(data.len())
            .unwrap_or(u32::MAX)
            .min(0x00ff_ffff);
        self.bhs[5..8].copy_from_slice(&len.to_be_bytes()[1..]);
        self.data = data;
    }

    /// The bytes on the wire: header, data segment, padding.
    pub fn encode(&self) -> Vec<u8> {
        let mut wire = Vec::with_capacity(BHS_LEN + padded_len(self.data.len()));
        wire.extend_from_slice(&self.bhs);
        wire.extend_from_slice(&self.data);
        wire.resize(BHS_LEN + padded_len(self.data.len()), 0);
        wire
    }
}

/// SAM LUN: peripheral addressing below 256, flat addressing up to 16383.
pub fn encode_lun(lun: u16) -> [u8; 8] {
    let mut bytes = [0u8; 8];
    if lun < 256 {
        bytes[1] = lun as u8;
    } else {
        let lun = lun & 0x3fff;
        bytes[0] = 0x40 | (lun >> 8) as u8;
        bytes[1] = (lun & 0xff) as u8;
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trips_a_pdu_with_padding() {
        let mut pdu = Pdu::new(op::SCSI_COMMAND, false);
        pdu.set_lun(3);
        pdu.set_u32(16, 0x1234_5678);
        pdu.set_data(vec![1, 2, 3, 4, 5]);
        let wire = pdu.encode();
        assert_eq!(wire.len(), BHS_LEN + 8);
        assert_eq!(&wire[5..8], &[0, 0, 5]);
        assert_eq!(
            decode(&wire, 1024),
            Ok(Decoded::Complete(pdu.clone(), wire.len()))
        );
        assert_eq!(pdu.itt(), 0x1234_5678);
        assert_eq!(pdu.opcode(), op::SCSI_COMMAND);
    }

    #[test]
    fn asks_for_the_rest_of_a_partial_pdu() {
        let mut pdu = Pdu::new(op::DATA_IN, false);
        pdu.set_data(vec![7; 10]);
        let wire = pdu.encode();
        assert_eq!(decode(&wire[..20], 1024), Ok(Decoded::NeedMore(BHS_LEN)));
        assert_eq!(
            decode(&wire[..50], 1024),
            Ok(Decoded::NeedMore(BHS_LEN + 12))
        );
    }

    #[test]
    fn skips_ahs_and_checks_the_maximum_first() {
        let mut wire = vec![0u8; BHS_LEN + 8 + 4];
        wire[4] = 2; // 8 bytes of AHS
        wire[7] = 3;
        wire[BHS_LEN + 8..BHS_LEN + 11].copy_from_slice(b"abc");
        match decode(&wire, 16) {
            Ok(Decoded::Complete(pdu, used)) => {
                assert_eq!(pdu.data, b"abc");
                assert_eq!(used, wire.len());
            }
            other => panic!("unexpected {other:?}"),
        }
        wire[5] = 1;
        assert_eq!(
            decode(&wire, 16),
            Err(PduError::DataTooLong {
                len_bytes: 0x1_0003,
                max_bytes: 16
            })
        );
    }

    #[test]
    fn encodes_luns() {
        assert_eq!(encode_lun(0), [0; 8]);
        assert_eq!(encode_lun(5), [0, 5, 0, 0, 0, 0, 0, 0]);
        assert_eq!(encode_lun(0x123), [0x41, 0x23, 0, 0, 0, 0, 0, 0]);
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600), max in 0u32..1024) {
            if let Ok(Decoded::Complete(pdu, used)) = decode(&bytes, max) {
                prop_assert!(used <= bytes.len());
                prop_assert!(pdu.data.len() as u32 <= max);
            }
        }

        #[test]
        fn encode_then_decode_is_identity(
            header in proptest::collection::vec(any::<u8>(), BHS_LEN),
            data in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            let mut pdu = Pdu { bhs: [0; BHS_LEN], data: Vec::new() };
            pdu.bhs.copy_from_slice(&header);
            pdu.bhs[4] = 0;
            pdu.set_data(data);
            let wire = pdu.encode();
            prop_assert_eq!(decode(&wire, 300), Ok(Decoded::Complete(pdu, wire.len())));
        }
    }
}
