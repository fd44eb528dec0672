//! Appends target PDUs to a send buffer: the 48-byte header with TotalAHSLength and
//! DataSegmentLength filled in, the header digest, the data segment, zero padding to a 4-byte
//! boundary, and the data digest (digests only when negotiated, the data digest only when
//! there is data). [`push_pdu_around`] appends everything but the data segment itself, for a
//! sender that gathers the data from where it already is.

use zerocopy::IntoBytes;

use super::digest::{data_digest, header_digest};
use super::framer::{padded_len, DigestKind};
use super::header::{Pdu, BHS_LEN_BYTES, MAX_DATA_SEGMENT_LEN_BYTES, U24};

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
    push_pdu_digested(out, header, parts, DigestKind::None, DigestKind::None)
}

/// Appends one PDU whose data segment is the concatenation of `parts`, with the negotiated
/// header and data digests.
pub fn push_pdu_digested<T: Pdu>(
    out: &mut Vec<u8>,
    header: &T,
    parts: &[&[u8]],
    header_digest_kind: DigestKind,
    data_digest_kind: DigestKind,
) -> Result<(), EncodeError> {
    let data_len: usize = parts.iter().map(|p| p.len()).sum();
    let data_digest_kind = push_head(out, header, data_len, header_digest_kind, data_digest_kind)?;
    let data_start = out.len();
    for part in parts {
        out.extend_from_slice(part);
    }
    out.resize(out.len() + (padded_len(data_len) - data_len), 0);
    if data_digest_kind == DigestKind::Crc32c {
        let digest = data_digest(&out[data_start..], &[]);
        out.extend_from_slice(&digest);
    }
    Ok(())
}

/// Appends one PDU whose data segment is `data`, except the data bytes themselves: the header
/// (and its digest), then the padding and the data digest computed over `data`. Returns the
/// offset in `out` where the data belongs; the sender inserts `data` there on the wire.
pub fn push_pdu_around<T: Pdu>(
    out: &mut Vec<u8>,
    header: &T,
    data: &[u8],
    header_digest_kind: DigestKind,
    data_digest_kind: DigestKind,
) -> Result<usize, EncodeError> {
    let data_digest_kind = push_head(
        out,
        header,
        data.len(),
        header_digest_kind,
        data_digest_kind,
    )?;
    let data_at = out.len();
    let padding = [0u8; 3];
    let padding = &padding[..padded_len(data.len()) - data.len()];
    out.extend_from_slice(padding);
    if data_digest_kind == DigestKind::Crc32c {
        out.extend_from_slice(&data_digest(data, padding));
    }
    Ok(data_at)
}

/// Appends the header of a PDU with `data_len` bytes of data (and the header digest);
/// returns the data digest kind that applies (none without data). Reserves the whole PDU.
fn push_head<T: Pdu>(
    out: &mut Vec<u8>,
    header: &T,
    data_len: usize,
    header_digest_kind: DigestKind,
    data_digest_kind: DigestKind,
) -> Result<DigestKind, EncodeError> {
    let field = u32::try_from(data_len)
        .ok()
        .filter(|&len| len <= MAX_DATA_SEGMENT_LEN_BYTES)
        .and_then(U24::new)
        .ok_or(EncodeError::DataSegmentTooLong {
            len_bytes: data_len,
        })?;
    let data_digest_kind = if data_len == 0 {
        DigestKind::None
    } else {
        data_digest_kind
    };
    out.reserve(
        BHS_LEN_BYTES
            + header_digest_kind.len_bytes()
            + padded_len(data_len)
            + data_digest_kind.len_bytes(),
    );
    let start = out.len();
    out.extend_from_slice(header.as_bytes());
    out[start + 4] = 0;
    out[start + 5..start + 8].copy_from_slice(field.as_bytes());
    if header_digest_kind == DigestKind::Crc32c {
        let mut bhs = [0u8; BHS_LEN_BYTES];
        bhs.copy_from_slice(&out[start..start + BHS_LEN_BYTES]);
        out.extend_from_slice(&header_digest(&bhs, &[]));
    }
    Ok(data_digest_kind)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iscsi::framer::{next_frame, DigestKind, FrameLimits, FrameStatus};
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
    fn digests_follow_the_header_and_the_padded_data() {
        let limits = FrameLimits {
            max_data_segment_len_bytes: 8192,
            header_digest: DigestKind::Crc32c,
            data_digest: DigestKind::Crc32c,
        };
        let header = NopInHeader::new([0; 8], 3, RESERVED_TAG, StatusSeq::default());
        let mut out = Vec::new();
        push_pdu_digested(
            &mut out,
            &header,
            &[b"abcde"],
            DigestKind::Crc32c,
            DigestKind::Crc32c,
        )
        .expect("fits");
        assert_eq!(out.len(), 48 + 4 + 8 + 4);
        match next_frame(&out, &limits) {
            Ok(FrameStatus::Complete(frame)) => {
                assert_eq!(frame.len_bytes, out.len());
                assert_eq!(frame.data, b"abcde");
                assert_eq!(frame.check_header_digest(), Ok(()));
                assert_eq!(frame.check_data_digest(), Ok(()));
            }
            other => panic!("{other:?}"),
        }
        // No data: no data digest.
        let mut empty = Vec::new();
        push_pdu_digested(
            &mut empty,
            &header,
            &[],
            DigestKind::Crc32c,
            DigestKind::Crc32c,
        )
        .expect("fits");
        assert_eq!(empty.len(), 52);
        // A flipped bit is caught by the digest that covers it.
        let mut bad_header = out.clone();
        bad_header[20] ^= 1;
        let mut bad_data = out.clone();
        bad_data[53] ^= 1;
        let mut bad_pad = out;
        bad_pad[59] ^= 1;
        for (bytes, expected) in [
            (&bad_header, Err(crate::iscsi::DigestError::Header)),
            (&bad_data, Ok(())),
            (&bad_pad, Ok(())),
        ] {
            match next_frame(bytes, &limits) {
                Ok(FrameStatus::Complete(frame)) => {
                    assert_eq!(frame.check_header_digest(), expected);
                }
                other => panic!("{other:?}"),
            }
        }
        for bytes in [&bad_data, &bad_pad] {
            match next_frame(bytes, &limits) {
                Ok(FrameStatus::Complete(frame)) => {
                    assert_eq!(
                        frame.check_data_digest(),
                        Err(crate::iscsi::DigestError::Data)
                    );
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn a_pdu_around_its_data_is_the_pdu_with_the_data_inserted() {
        let header = NopInHeader::new([0; 8], 3, RESERVED_TAG, StatusSeq::default());
        for digests in [DigestKind::None, DigestKind::Crc32c] {
            for data in [&b""[..], b"a", b"abcde", b"abcdefgh"] {
                let mut whole = vec![7u8];
                push_pdu_digested(&mut whole, &header, &[data], digests, digests).expect("fits");
                let mut around = vec![7u8];
                let at =
                    push_pdu_around(&mut around, &header, data, digests, digests).expect("fits");
                around.splice(at..at, data.iter().copied());
                assert_eq!(around, whole, "digests {digests:?}, {} bytes", data.len());
            }
        }
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
