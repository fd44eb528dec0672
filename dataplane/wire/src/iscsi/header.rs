//! The basic header segment (BHS) shared by every iSCSI PDU: opcodes, the immediate and final
//! bits, the 24-bit DataSegmentLength field, and the [`Pdu`] trait every typed header view
//! implements (RFC 7143 §11.2).

use zerocopy::byteorder::big_endian::U32;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// Length of every basic header segment.
pub const BHS_LEN_BYTES: usize = 48;

/// The reserved tag value (ITT or TTT) meaning "no tag".
pub const RESERVED_TAG: u32 = 0xffff_ffff;

/// Bit 6 of byte 0: the PDU is an immediate command.
pub const IMMEDIATE_BIT: u8 = 0x40;
/// Bits 0-5 of byte 0: the opcode.
pub const OPCODE_MASK: u8 = 0x3f;
/// Bit 7 of byte 1 in most PDUs: final PDU of a sequence.
pub const FINAL_BIT: u8 = 0x80;

/// Largest value of the 24-bit DataSegmentLength field.
pub const MAX_DATA_SEGMENT_LEN_BYTES: u32 = (1 << 24) - 1;

/// iSCSI opcodes (RFC 7143 §11.2.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Opcode {
    NopOut = 0x00,
    ScsiCommand = 0x01,
    TaskMgmtRequest = 0x02,
    LoginRequest = 0x03,
    TextRequest = 0x04,
    DataOut = 0x05,
    LogoutRequest = 0x06,
    SnackRequest = 0x10,
    NopIn = 0x20,
    ScsiResponse = 0x21,
    TaskMgmtResponse = 0x22,
    LoginResponse = 0x23,
    TextResponse = 0x24,
    DataIn = 0x25,
    LogoutResponse = 0x26,
    ReadyToTransfer = 0x31,
    AsyncMessage = 0x32,
    Reject = 0x3f,
}

impl Opcode {
    /// Decodes the low six bits of byte 0; `None` for unassigned or vendor-specific opcodes.
    pub fn from_bits(byte0: u8) -> Option<Opcode> {
        Some(match byte0 & OPCODE_MASK {
            0x00 => Opcode::NopOut,
            0x01 => Opcode::ScsiCommand,
            0x02 => Opcode::TaskMgmtRequest,
            0x03 => Opcode::LoginRequest,
            0x04 => Opcode::TextRequest,
            0x05 => Opcode::DataOut,
            0x06 => Opcode::LogoutRequest,
            0x10 => Opcode::SnackRequest,
            0x20 => Opcode::NopIn,
            0x21 => Opcode::ScsiResponse,
            0x22 => Opcode::TaskMgmtResponse,
            0x23 => Opcode::LoginResponse,
            0x24 => Opcode::TextResponse,
            0x25 => Opcode::DataIn,
            0x26 => Opcode::LogoutResponse,
            0x31 => Opcode::ReadyToTransfer,
            0x32 => Opcode::AsyncMessage,
            0x3f => Opcode::Reject,
            _ => return None,
        })
    }

    /// Whether initiators send this opcode.
    pub fn is_initiator_opcode(self) -> bool {
        (self as u8) < 0x20
    }
}

/// The 24-bit big-endian DataSegmentLength field.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    FromBytes,
    IntoBytes,
    KnownLayout,
    Immutable,
    Unaligned,
)]
#[repr(C)]
pub struct U24([u8; 3]);

impl U24 {
    /// Encodes the low 24 bits of `value`; `None` if it does not fit.
    pub fn new(value: u32) -> Option<U24> {
        if value > MAX_DATA_SEGMENT_LEN_BYTES {
            return None;
        }
        let [_, a, b, c] = value.to_be_bytes();
        Some(U24([a, b, c]))
    }

    pub fn get(self) -> u32 {
        let [a, b, c] = self.0;
        u32::from_be_bytes([0, a, b, c])
    }
}

/// Generic view of any BHS: the fields every opcode shares.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct Bhs {
    /// Bit 6: immediate; bits 0-5: opcode.
    pub opcode: u8,
    /// Bit 7 is the final bit for most opcodes; the rest is opcode-specific.
    pub flags: u8,
    pub opcode_specific: [u8; 2],
    /// Length of the additional header segments in 4-byte words.
    pub total_ahs_len_words: u8,
    pub data_segment_len: U24,
    /// LUN or opcode-specific.
    pub lun: [u8; 8],
    pub initiator_task_tag: U32,
    pub opcode_specific_tail: [u8; 28],
}

const _: () = assert!(core::mem::size_of::<Bhs>() == BHS_LEN_BYTES);

impl Bhs {
    /// The opcode, or `None` for an unassigned one.
    pub fn opcode(&self) -> Option<Opcode> {
        Opcode::from_bits(self.opcode)
    }
    /// The raw six opcode bits.
    pub fn opcode_bits(&self) -> u8 {
        self.opcode & OPCODE_MASK
    }
    pub fn is_immediate(&self) -> bool {
        self.opcode & IMMEDIATE_BIT != 0
    }
    pub fn is_final(&self) -> bool {
        self.flags & FINAL_BIT != 0
    }
    pub fn ahs_len_bytes(&self) -> usize {
        usize::from(self.total_ahs_len_words) * 4
    }
    pub fn data_segment_len_bytes(&self) -> u32 {
        self.data_segment_len.get()
    }
    pub fn itt(&self) -> u32 {
        self.initiator_task_tag.get()
    }
}

/// A typed 48-byte header view for one opcode.
pub trait Pdu: FromBytes + IntoBytes + KnownLayout + Immutable + Unaligned + Sized {
    const OPCODE: Opcode;

    /// Parses the header in place from exactly one BHS.
    fn view(bhs: &[u8; BHS_LEN_BYTES]) -> &Self {
        match Self::ref_from_bytes(bhs.as_slice()) {
            Ok(view) => view,
            // Every `Pdu` is `Unaligned` and asserted to be 48 bytes long at compile time, so the
            // conversion from a 48-byte array cannot fail.
            Err(_) => unreachable!("Pdu headers are 48 unaligned bytes"),
        }
    }
}

/// Asserts at compile time that a header struct is exactly one BHS long.
macro_rules! assert_bhs_size {
    ($($t:ty),* $(,)?) => {
        $(const _: () = assert!(core::mem::size_of::<$t>() == $crate::iscsi::header::BHS_LEN_BYTES);)*
    };
}
pub(crate) use assert_bhs_size;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn u24_round_trips_and_rejects_overflow() {
        for value in [0, 1, 8192, 0x12_3456, MAX_DATA_SEGMENT_LEN_BYTES] {
            assert_eq!(U24::new(value).map(U24::get), Some(value));
        }
        assert_eq!(U24::new(1 << 24), None);
        assert_eq!(U24::new(0x12_3456).map(|v| v.0), Some([0x12, 0x34, 0x56]));
    }

    #[test]
    fn opcode_decoding_ignores_the_immediate_bit() {
        assert_eq!(Opcode::from_bits(0x41), Some(Opcode::ScsiCommand));
        assert_eq!(Opcode::from_bits(0x3f), Some(Opcode::Reject));
        assert_eq!(Opcode::from_bits(0x1c), None);
        assert!(Opcode::LogoutRequest.is_initiator_opcode());
        assert!(!Opcode::DataIn.is_initiator_opcode());
    }

    #[test]
    fn bhs_view_reads_common_fields() {
        let mut raw = [0u8; BHS_LEN_BYTES];
        raw[0] = 0x41;
        raw[1] = 0x80;
        raw[4] = 2;
        raw[5..8].copy_from_slice(&[0, 1, 0]);
        raw[16..20].copy_from_slice(&7u32.to_be_bytes());
        let bhs = Bhs::ref_from_bytes(raw.as_slice()).expect("48 bytes");
        assert_eq!(bhs.opcode(), Some(Opcode::ScsiCommand));
        assert!(bhs.is_immediate());
        assert!(bhs.is_final());
        assert_eq!(bhs.ahs_len_bytes(), 8);
        assert_eq!(bhs.data_segment_len_bytes(), 256);
        assert_eq!(bhs.itt(), 7);
    }
}
