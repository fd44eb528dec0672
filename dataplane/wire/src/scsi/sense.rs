//! Sense data (SPC-4 4.5): a small `Copy` description of a CHECK CONDITION ([`Sense`]), its
//! encoding in fixed format (response code 70h) or descriptor format (72h) into a stack buffer
//! ([`SenseBuf`]), and a parser used by tests and diagnostics.

use super::constants::{Asc, SenseKey};

/// Largest sense data this module produces (descriptor format with an information descriptor
/// and a sense-key-specific descriptor is 28 bytes).
pub const SENSE_BUF_MAX_BYTES: usize = 32;
/// Length of fixed-format sense data as produced here (additional sense length 10).
pub const FIXED_SENSE_LEN_BYTES: usize = 18;
/// Length of the descriptor-format header.
pub const DESCRIPTOR_SENSE_HEADER_LEN_BYTES: usize = 8;

const RESPONSE_CODE_FIXED_CURRENT: u8 = 0x70;
const RESPONSE_CODE_FIXED_DEFERRED: u8 = 0x71;
const RESPONSE_CODE_DESCRIPTOR_CURRENT: u8 = 0x72;
const RESPONSE_CODE_DESCRIPTOR_DEFERRED: u8 = 0x73;
const FIXED_VALID: u8 = 0x80;
const SKSV: u8 = 0x80;
const SKS_C_D: u8 = 0x40;
const SKS_BPV: u8 = 0x08;
const DESCRIPTOR_TYPE_INFORMATION: u8 = 0x00;
const DESCRIPTOR_TYPE_SENSE_KEY_SPECIFIC: u8 = 0x02;
const INFORMATION_DESCRIPTOR_ADDITIONAL_LEN: u8 = 0x0a;
const SKS_DESCRIPTOR_ADDITIONAL_LEN: u8 = 0x06;

/// Which sense data format to produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SenseFormat {
    /// Response code 70h (18 bytes here).
    Fixed,
    /// Response code 72h (header plus descriptors).
    Descriptor,
}

/// Sense-key-specific field pointer (SPC-4 4.5.2.4.2): which byte (and bit) of the CDB or of
/// the parameter list is in error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldPointer {
    /// `true`: the error is in the CDB (C/D = 1); `false`: in the parameter data.
    pub in_cdb: bool,
    /// Byte offset of the field in error.
    pub byte: u16,
    /// Most significant bit of the field in error, when it is not the whole byte (0..=7).
    pub bit: Option<u8>,
}

/// Everything the device model says in a CHECK CONDITION.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sense {
    pub key: SenseKey,
    pub asc: Asc,
    /// INFORMATION field (e.g. the offset of the first miscompared byte). In fixed format only
    /// values that fit 32 bits are reported (VALID = 1); larger ones need descriptor format.
    pub information: Option<u64>,
    pub field_pointer: Option<FieldPointer>,
}

/// Encoded sense data, on the stack.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SenseBuf {
    bytes: [u8; SENSE_BUF_MAX_BYTES],
    len_bytes: u8,
}

impl SenseBuf {
    pub fn as_bytes(&self) -> &[u8] {
        let len = usize::from(self.len_bytes).min(SENSE_BUF_MAX_BYTES);
        &self.bytes[..len]
    }

    pub fn len(&self) -> usize {
        self.as_bytes().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len_bytes == 0
    }

    fn push(&mut self, bytes: &[u8]) {
        let start = usize::from(self.len_bytes);
        let end = start + bytes.len();
        debug_assert!(end <= SENSE_BUF_MAX_BYTES, "sense buffer overflow");
        if let Some(dst) = self.bytes.get_mut(start..end) {
            dst.copy_from_slice(bytes);
            self.len_bytes = end as u8;
        }
    }
}

impl core::fmt::Debug for SenseBuf {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "SenseBuf({:02x?})", self.as_bytes())
    }
}

/// Why sense bytes could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SenseParseError {
    #[error("sense data too short: {len_bytes} bytes")]
    Truncated { len_bytes: usize },
    #[error("unknown sense response code {0:#04x}")]
    UnknownResponseCode(u8),
}

impl Sense {
    pub const fn new(key: SenseKey, asc: Asc) -> Sense {
        Sense {
            key,
            asc,
            information: None,
            field_pointer: None,
        }
    }

    pub const fn with_information(mut self, information: u64) -> Sense {
        self.information = Some(information);
        self
    }

    pub const fn with_field_pointer(mut self, field_pointer: FieldPointer) -> Sense {
        self.field_pointer = Some(field_pointer);
        self
    }

    /// ILLEGAL REQUEST / INVALID FIELD IN CDB pointing at `byte` (and `bit`, if not the whole
    /// byte).
    pub const fn invalid_field_in_cdb(byte: u16, bit: Option<u8>) -> Sense {
        Sense::new(SenseKey::IllegalRequest, Asc::INVALID_FIELD_IN_CDB).with_field_pointer(
            FieldPointer {
                in_cdb: true,
                byte,
                bit,
            },
        )
    }

    /// ILLEGAL REQUEST / INVALID FIELD IN PARAMETER LIST pointing at `byte` (and `bit`).
    pub const fn invalid_field_in_parameter_list(byte: u16, bit: Option<u8>) -> Sense {
        Sense::new(
            SenseKey::IllegalRequest,
            Asc::INVALID_FIELD_IN_PARAMETER_LIST,
        )
        .with_field_pointer(FieldPointer {
            in_cdb: false,
            byte,
            bit,
        })
    }

    /// ILLEGAL REQUEST / INVALID COMMAND OPERATION CODE.
    pub const fn invalid_opcode() -> Sense {
        Sense::new(
            SenseKey::IllegalRequest,
            Asc::INVALID_COMMAND_OPERATION_CODE,
        )
    }

    /// ILLEGAL REQUEST / LOGICAL BLOCK ADDRESS OUT OF RANGE.
    pub const fn lba_out_of_range() -> Sense {
        Sense::new(SenseKey::IllegalRequest, Asc::LBA_OUT_OF_RANGE)
    }

    /// The three sense-key-specific bytes for the field pointer, if any.
    fn sense_key_specific(&self) -> Option<[u8; 3]> {
        let pointer = self.field_pointer?;
        let mut first = SKSV;
        if pointer.in_cdb {
            first |= SKS_C_D;
        }
        if let Some(bit) = pointer.bit {
            first |= SKS_BPV | (bit & 0x07);
        }
        let [high, low] = pointer.byte.to_be_bytes();
        Some([first, high, low])
    }

    /// Encode in the requested format.
    pub fn encode(&self, format: SenseFormat) -> SenseBuf {
        match format {
            SenseFormat::Fixed => self.encode_fixed(),
            SenseFormat::Descriptor => self.encode_descriptor(),
        }
    }

    fn encode_fixed(&self) -> SenseBuf {
        let mut bytes = [0u8; FIXED_SENSE_LEN_BYTES];
        bytes[0] = RESPONSE_CODE_FIXED_CURRENT;
        if let Some(information) = self.information.and_then(|i| u32::try_from(i).ok()) {
            bytes[0] |= FIXED_VALID;
            bytes[3..7].copy_from_slice(&information.to_be_bytes());
        }
        bytes[2] = self.key as u8;
        bytes[7] = (FIXED_SENSE_LEN_BYTES - 8) as u8;
        bytes[12] = self.asc.asc;
        bytes[13] = self.asc.ascq;
        if let Some(sks) = self.sense_key_specific() {
            bytes[15..18].copy_from_slice(&sks);
        }
        let mut buf = SenseBuf {
            bytes: [0; SENSE_BUF_MAX_BYTES],
            len_bytes: 0,
        };
        buf.push(&bytes);
        buf
    }

    fn encode_descriptor(&self) -> SenseBuf {
        let mut buf = SenseBuf {
            bytes: [0; SENSE_BUF_MAX_BYTES],
            len_bytes: 0,
        };
        buf.push(&[
            RESPONSE_CODE_DESCRIPTOR_CURRENT,
            self.key as u8,
            self.asc.asc,
            self.asc.ascq,
            0,
            0,
            0,
            0,
        ]);
        if let Some(information) = self.information {
            buf.push(&[
                DESCRIPTOR_TYPE_INFORMATION,
                INFORMATION_DESCRIPTOR_ADDITIONAL_LEN,
                FIXED_VALID,
                0,
            ]);
            buf.push(&information.to_be_bytes());
        }
        if let Some(sks) = self.sense_key_specific() {
            buf.push(&[
                DESCRIPTOR_TYPE_SENSE_KEY_SPECIFIC,
                SKS_DESCRIPTOR_ADDITIONAL_LEN,
                0,
                0,
            ]);
            buf.push(&sks);
            buf.push(&[0]);
        }
        let additional_len = buf.len() - DESCRIPTOR_SENSE_HEADER_LEN_BYTES;
        buf.bytes[7] = additional_len as u8;
        buf
    }

    /// Parse fixed- or descriptor-format sense data (current or deferred).
    pub fn parse(bytes: &[u8]) -> Result<Sense, SenseParseError> {
        let truncated = SenseParseError::Truncated {
            len_bytes: bytes.len(),
        };
        let response_code = bytes.first().ok_or(truncated)? & 0x7f;
        match response_code {
            RESPONSE_CODE_FIXED_CURRENT | RESPONSE_CODE_FIXED_DEFERRED => {
                parse_fixed(bytes).ok_or(truncated)
            }
            RESPONSE_CODE_DESCRIPTOR_CURRENT | RESPONSE_CODE_DESCRIPTOR_DEFERRED => {
                parse_descriptor(bytes).ok_or(truncated)
            }
            other => Err(SenseParseError::UnknownResponseCode(other)),
        }
    }
}

fn parse_field_pointer(sks: [u8; 3]) -> Option<FieldPointer> {
    if sks[0] & SKSV == 0 {
        return None;
    }
    Some(FieldPointer {
        in_cdb: sks[0] & SKS_C_D != 0,
        byte: u16::from_be_bytes([sks[1], sks[2]]),
        bit: (sks[0] & SKS_BPV != 0).then_some(sks[0] & 0x07),
    })
}

fn parse_fixed(bytes: &[u8]) -> Option<Sense> {
    let header: &[u8; 14] = bytes.get(..14)?.try_into().ok()?;
    let mut sense = Sense::new(
        SenseKey::from_nibble(header[2]),
        Asc::new(header[12], header[13]),
    );
    if header[0] & FIXED_VALID != 0 {
        let information = u32::from_be_bytes([header[3], header[4], header[5], header[6]]);
        sense.information = Some(u64::from(information));
    }
    // The sense-key-specific bytes exist only when the additional length covers them.
    let declared_len = 8 + usize::from(header[7]);
    if declared_len >= FIXED_SENSE_LEN_BYTES {
        if let Some(sks) = bytes.get(15..18) {
            sense.field_pointer = parse_field_pointer([sks[0], sks[1], sks[2]]);
        }
    }
    Some(sense)
}

fn parse_descriptor(bytes: &[u8]) -> Option<Sense> {
    let header: &[u8; 8] = bytes.get(..8)?.try_into().ok()?;
    let mut sense = Sense::new(
        SenseKey::from_nibble(header[1]),
        Asc::new(header[2], header[3]),
    );
    let end = (DESCRIPTOR_SENSE_HEADER_LEN_BYTES + usize::from(header[7])).min(bytes.len());
    let mut offset = DESCRIPTOR_SENSE_HEADER_LEN_BYTES;
    while offset + 2 <= end {
        let descriptor_type = bytes[offset];
        let additional_len = usize::from(bytes[offset + 1]);
        let body = match bytes.get(offset + 2..offset + 2 + additional_len) {
            Some(body) if offset + 2 + additional_len <= end => body,
            _ => break,
        };
        match descriptor_type {
            DESCRIPTOR_TYPE_INFORMATION if body.len() >= 10 && body[0] & FIXED_VALID != 0 => {
                let mut information = [0u8; 8];
                information.copy_from_slice(&body[2..10]);
                sense.information = Some(u64::from_be_bytes(information));
            }
            DESCRIPTOR_TYPE_SENSE_KEY_SPECIFIC if body.len() >= 5 => {
                sense.field_pointer = parse_field_pointer([body[2], body[3], body[4]]);
            }
            _ => {}
        }
        offset += 2 + additional_len;
    }
    Some(sense)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn fixed_format_layout() {
        let sense = Sense::invalid_field_in_cdb(2, Some(5));
        let buf = sense.encode(SenseFormat::Fixed);
        let bytes = buf.as_bytes();
        assert_eq!(bytes.len(), 18);
        assert_eq!(bytes[0], 0x70);
        assert_eq!(bytes[2], 0x05);
        assert_eq!(bytes[7], 10);
        assert_eq!((bytes[12], bytes[13]), (0x24, 0x00));
        assert_eq!(bytes[15], 0x80 | 0x40 | 0x08 | 5);
        assert_eq!((bytes[16], bytes[17]), (0, 2));
    }

    #[test]
    fn fixed_format_information_sets_valid() {
        let sense = Sense::new(SenseKey::Miscompare, Asc::MISCOMPARE_DURING_VERIFY)
            .with_information(0x1234);
        let bytes = sense.encode(SenseFormat::Fixed);
        let bytes = bytes.as_bytes();
        assert_eq!(bytes[0], 0xf0);
        assert_eq!(&bytes[3..7], &[0, 0, 0x12, 0x34]);
        assert_eq!(bytes[2], 0x0e);
        assert_eq!(bytes[15], 0, "no sense-key-specific data");
    }

    #[test]
    fn fixed_format_drops_information_wider_than_32_bits() {
        let sense = Sense::lba_out_of_range().with_information(1 << 40);
        let bytes = sense.encode(SenseFormat::Fixed);
        assert_eq!(bytes.as_bytes()[0], 0x70);
        assert_eq!(Sense::parse(bytes.as_bytes()).unwrap().information, None);
        let descriptor = sense.encode(SenseFormat::Descriptor);
        assert_eq!(
            Sense::parse(descriptor.as_bytes()).unwrap().information,
            Some(1 << 40)
        );
    }

    #[test]
    fn descriptor_format_layout() {
        let sense = Sense::invalid_field_in_cdb(7, None).with_information(9);
        let buf = sense.encode(SenseFormat::Descriptor);
        let bytes = buf.as_bytes();
        assert_eq!(bytes.len(), 8 + 12 + 8);
        assert_eq!(&bytes[..4], &[0x72, 0x05, 0x24, 0x00]);
        assert_eq!(bytes[7], 20);
        assert_eq!(&bytes[8..12], &[0x00, 0x0a, 0x80, 0x00]);
        assert_eq!(&bytes[12..20], &9u64.to_be_bytes());
        assert_eq!(&bytes[20..28], &[0x02, 0x06, 0, 0, 0xc0, 0, 7, 0]);
    }

    #[test]
    fn descriptor_without_descriptors_is_a_bare_header() {
        let sense = Sense::new(
            SenseKey::UnitAttention,
            Asc::POWER_ON_RESET_OR_BUS_DEVICE_RESET,
        );
        let buf = sense.encode(SenseFormat::Descriptor);
        assert_eq!(buf.as_bytes(), &[0x72, 0x06, 0x29, 0x00, 0, 0, 0, 0]);
    }

    #[test]
    fn parse_rejects_garbage() {
        assert_eq!(
            Sense::parse(&[]),
            Err(SenseParseError::Truncated { len_bytes: 0 })
        );
        assert_eq!(
            Sense::parse(&[0x70, 0, 5]),
            Err(SenseParseError::Truncated { len_bytes: 3 })
        );
        assert_eq!(
            Sense::parse(&[0x10; 20]),
            Err(SenseParseError::UnknownResponseCode(0x10))
        );
    }

    fn arb_sense() -> impl Strategy<Value = Sense> {
        (
            0u8..16,
            any::<u8>(),
            any::<u8>(),
            proptest::option::of(any::<u64>()),
            proptest::option::of((any::<bool>(), any::<u16>(), proptest::option::of(0u8..8))),
        )
            .prop_map(|(key, asc, ascq, information, pointer)| Sense {
                key: SenseKey::from_nibble(key),
                asc: Asc::new(asc, ascq),
                information,
                field_pointer: pointer.map(|(in_cdb, byte, bit)| FieldPointer {
                    in_cdb,
                    byte,
                    bit,
                }),
            })
    }

    proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = Sense::parse(&bytes);
        }

        #[test]
        fn descriptor_round_trips(sense in arb_sense()) {
            let buf = sense.encode(SenseFormat::Descriptor);
            prop_assert_eq!(Sense::parse(buf.as_bytes()), Ok(sense));
        }

        #[test]
        fn fixed_round_trips_when_information_fits(sense in arb_sense()) {
            let buf = sense.encode(SenseFormat::Fixed);
            let mut expected = sense;
            expected.information = sense.information.filter(|i| *i <= u64::from(u32::MAX));
            prop_assert_eq!(Sense::parse(buf.as_bytes()), Ok(expected));
        }
    }
}
