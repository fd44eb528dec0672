//! Appends target PDUs to a send buffer: the 48-byte header with TotalAHSLength and
//! DataSegmentLength filled in, the data segment, and zero padding to a 4-byte boundary.
//! Digests are not negotiated yet; when CRC32C is, this is where they are appended.

use zerocopy::IntoBytes;

use super::framer::padded_len;
use super::header::{Pdu, MAX_DATA_SEGMENT_LEN_BYTES, U24};

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("data segment of {len_bytes} bytes does not fit the 24-bit length field")]
    DataSegmentTooLong { len_bytes: usize },
}

/// Appends one PDU whose data segment is `data`.
pub fn push_pdu<T: Pdu>(out: &mut Vec<u8>, header: &T, data: &[u8]) -> Result<(), EncodeError> {
    push_pdu_parts(out, header, &[data])
}

/// Appends one PDU whose data segment is the concatenation of `parts` (e.g. SenseLength and
/// sense data), without assembling them first.
pub fn push_pdu_parts<T: Pdu>(
    out: &mut Vec<u8>,
    header: &T,
    parts: &[&[u8]],
) -> Result<(), EncodeError> {
    let data_len: usize = parts.iter().map(|p| p.len()).sum();
    let field = u32::try_from(data_len)
        .ok()
        .filter(|&len| len <= MAX_DATA_SEGMENT_LEN_BYTES)
        .and_then(U24::new)
        .ok_or(EncodeError::DataSegmentTooLong {
            len_bytes: data_len,
        })?;
    out.reserve(header.as_bytes().len() + padded_len(data_len));
    let start = out.len();
    out.extend_from_slice(header.as_bytes());
    out[start + 4] = 0;
    out[start + 5..start + 8].copy_from_slice(field.as_bytes());
    for part in parts {
        out.extend_from_slice(part);
    }
    out.resize(out.len() + (padded_len(data_len) - data_len), 0);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iscsi::framer::{next_frame, FrameLimits, FrameStatus};
    use crate::iscsi::header::{Opcode, RESERVED_TAG};
    use crate::iscsi::target::{NopInHeader, StatusSeq};

    #[test]
    fn pads_and_sets_length() {
        let mut out = vec![9u8];
        let header = NopInHeader::new([0; 8], 3, RESERVED_TAG, StatusSeq::default());
        push_pdu_parts(&mut out, &header, &[b"ab", b"cde"]).expect("fits");
        assert_eq!(out.len(), 1 + 48 + 8);
        let pdu = &out[1..];
        assert_eq!(pdu[0], Opcode::NopIn as u8);
        assert_eq!(&pdu[4..8], &[0, 0, 0, 5]);
        assert_eq!(&pdu[48..], b"abcde\0\0\0");
        match next_frame(pdu, &FrameLimits::LOGIN) {
            Ok(FrameStatus::Complete(frame)) => assert_eq!(frame.data, b"abcde"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn empty_data_has_no_padding() {
        let mut out = Vec::new();
        let header = NopInHeader::new([0; 8], 3, RESERVED_TAG, StatusSeq::default());
        push_pdu(&mut out, &header, &[]).expect("fits");
        assert_eq!(out.len(), 48);
    }

    #[test]
    fn refuses_oversized_segments() {
        let mut out = Vec::new();
        let header = NopInHeader::new([0; 8], 3, RESERVED_TAG, StatusSeq::default());
        let big = vec![0u8; 1 << 24];
        assert_eq!(
            push_pdu(&mut out, &header, &big),
            Err(EncodeError::DataSegmentTooLong { len_bytes: 1 << 24 })
        );
        assert!(out.is_empty());
    }
}
