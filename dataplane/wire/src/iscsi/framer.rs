//! Framing: given the bytes received so far, decide whether a whole PDU is present (BHS, AHS,
//! header digest, data segment, padding, data digest) and hand out borrowed views of its parts.
//! The DataSegmentLength is checked against the negotiated limit as soon as the BHS is
//! complete, before the caller buffers a single byte of the data segment.

use super::header::{Bhs, BHS_LEN_BYTES};
use zerocopy::FromBytes;

/// The hard cap on data segments during login (and the RFC default MaxRecvDataSegmentLength).
pub const LOGIN_MAX_DATA_SEGMENT_LEN_BYTES: u32 = 8192;

/// Largest additional header segment area (TotalAHSLength is one byte of 4-byte words).
pub const MAX_AHS_LEN_BYTES: usize = 255 * 4;

/// A negotiated digest: CRC32C adds 4 bytes after the header (BHS and AHS) and 4 after the
/// padded data segment (see [`super::digest`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DigestKind {
    #[default]
    None,
    Crc32c,
}

impl DigestKind {
    pub const fn len_bytes(self) -> usize {
        match self {
            DigestKind::None => 0,
            DigestKind::Crc32c => 4,
        }
    }
}

/// What the framer accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameLimits {
    /// Largest DataSegmentLength accepted (our MaxRecvDataSegmentLength).
    pub max_data_segment_len_bytes: u32,
    pub header_digest: DigestKind,
    pub data_digest: DigestKind,
}

impl FrameLimits {
    /// The limits during the login phase.
    pub const LOGIN: FrameLimits = FrameLimits {
        max_data_segment_len_bytes: LOGIN_MAX_DATA_SEGMENT_LEN_BYTES,
        header_digest: DigestKind::None,
        data_digest: DigestKind::None,
    };

    /// Largest PDU these limits admit: a bound for receive buffers.
    pub fn max_pdu_len_bytes(&self) -> usize {
        BHS_LEN_BYTES
            + MAX_AHS_LEN_BYTES
            + self.header_digest.len_bytes()
            + padded_len(self.max_data_segment_len_bytes as usize)
            + self.data_digest.len_bytes()
    }
}

/// A data segment length rounded up to the 4-byte boundary.
pub const fn padded_len(len_bytes: usize) -> usize {
    len_bytes.div_ceil(4) * 4
}

/// One whole PDU, borrowed from the receive buffer.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    /// The raw BHS; typed views via [`Pdu::view`](super::header::Pdu::view).
    pub bhs_bytes: &'a [u8; BHS_LEN_BYTES],
    pub ahs: &'a [u8],
    /// Header digest bytes (empty without a header digest).
    pub header_digest: &'a [u8],
    /// Data segment without padding.
    pub data: &'a [u8],
    /// The padding after the data segment (0 to 3 bytes; the data digest covers it).
    pub data_padding: &'a [u8],
    /// Data digest bytes (empty without a data digest or without data).
    pub data_digest: &'a [u8],
    /// Bytes this PDU occupies in the buffer.
    pub len_bytes: usize,
}

impl<'a> Frame<'a> {
    /// The generic header view.
    pub fn bhs(&self) -> &'a Bhs {
        match Bhs::ref_from_bytes(self.bhs_bytes.as_slice()) {
            Ok(bhs) => bhs,
            // `Bhs` is 48 unaligned bytes (asserted at compile time).
            Err(_) => unreachable!("Bhs is 48 unaligned bytes"),
        }
    }
}

/// Result of looking for a PDU at the start of a buffer.
#[derive(Debug, Clone, Copy)]
pub enum FrameStatus<'a> {
    Complete(Frame<'a>),
    /// Not enough bytes yet: the PDU (or, before the BHS is whole, the BHS) needs
    /// `needed_len_bytes` in total.
    NeedMore {
        needed_len_bytes: usize,
    },
}

/// Why bytes cannot be a PDU. After any of these the byte stream cannot be resynchronised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("data segment of {len_bytes} bytes exceeds the limit of {max_bytes} bytes")]
    DataSegmentTooLong { len_bytes: u32, max_bytes: u32 },
}

/// Looks for one PDU at the start of `buf`.
pub fn next_frame<'a>(buf: &'a [u8], limits: &FrameLimits) -> Result<FrameStatus<'a>, FrameError> {
    let Some((bhs_bytes, rest)) = buf.split_first_chunk::<BHS_LEN_BYTES>() else {
        return Ok(FrameStatus::NeedMore {
            needed_len_bytes: BHS_LEN_BYTES,
        });
    };
    let ahs_len = usize::from(bhs_bytes[4]) * 4;
    let data_len = u32::from_be_bytes([0, bhs_bytes[5], bhs_bytes[6], bhs_bytes[7]]);
    if data_len > limits.max_data_segment_len_bytes {
        return Err(FrameError::DataSegmentTooLong {
            len_bytes: data_len,
            max_bytes: limits.max_data_segment_len_bytes,
        });
    }
    let data_len = data_len as usize;
    let header_digest_len = limits.header_digest.len_bytes();
    let data_digest_len = if data_len > 0 {
        limits.data_digest.len_bytes()
    } else {
        0
    };
    let after_bhs = ahs_len + header_digest_len + padded_len(data_len) + data_digest_len;
    let total = BHS_LEN_BYTES + after_bhs;
    let Some(body) = rest.get(..after_bhs) else {
        return Ok(FrameStatus::NeedMore {
            needed_len_bytes: total,
        });
    };
    let (ahs, body) = body.split_at(ahs_len);
    let (header_digest, body) = body.split_at(header_digest_len);
    let (padded_data, data_digest) = body.split_at(padded_len(data_len));
    let (data, data_padding) = padded_data.split_at(data_len);
    Ok(FrameStatus::Complete(Frame {
        bhs_bytes,
        ahs,
        header_digest,
        data,
        data_padding,
        data_digest,
        len_bytes: total,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pdu(ahs_words: u8, data: &[u8]) -> Vec<u8> {
        let mut out = vec![0u8; BHS_LEN_BYTES];
        out[0] = 0x01;
        out[4] = ahs_words;
        let len = (data.len() as u32).to_be_bytes();
        out[5..8].copy_from_slice(&len[1..]);
        out.extend(std::iter::repeat_n(0xaa, usize::from(ahs_words) * 4));
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(4) * 4, 0);
        out
    }

    #[test]
    fn needs_the_whole_bhs_first() {
        let bytes = pdu(0, b"");
        for cut in 0..BHS_LEN_BYTES {
            match next_frame(&bytes[..cut], &FrameLimits::LOGIN) {
                Ok(FrameStatus::NeedMore { needed_len_bytes }) => assert_eq!(needed_len_bytes, 48),
                other => panic!("cut {cut}: {other:?}"),
            }
        }
    }

    #[test]
    fn reports_total_length_once_the_bhs_is_known() {
        let bytes = pdu(1, b"hello");
        assert_eq!(bytes.len(), 48 + 4 + 8);
        match next_frame(&bytes[..50], &FrameLimits::LOGIN) {
            Ok(FrameStatus::NeedMore { needed_len_bytes }) => assert_eq!(needed_len_bytes, 60),
            other => panic!("{other:?}"),
        }
        let mut with_next = bytes.clone();
        with_next.extend_from_slice(&[1, 2, 3]);
        match next_frame(&with_next, &FrameLimits::LOGIN) {
            Ok(FrameStatus::Complete(frame)) => {
                assert_eq!(frame.len_bytes, 60);
                assert_eq!(frame.ahs, &[0xaa; 4]);
                assert_eq!(frame.data, b"hello");
                assert!(frame.header_digest.is_empty() && frame.data_digest.is_empty());
                assert_eq!(frame.bhs().data_segment_len_bytes(), 5);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn oversized_data_segment_is_refused_from_the_header_alone() {
        let mut header = pdu(0, b"");
        header[5..8].copy_from_slice(&[0, 0x20, 0x01]); // 8193 bytes
        assert_eq!(
            next_frame(&header, &FrameLimits::LOGIN).map(|_| ()),
            Err(FrameError::DataSegmentTooLong {
                len_bytes: 8193,
                max_bytes: 8192
            })
        );
    }

    #[test]
    fn digests_are_framed() {
        let limits = FrameLimits {
            max_data_segment_len_bytes: 8192,
            header_digest: DigestKind::Crc32c,
            data_digest: DigestKind::Crc32c,
        };
        let mut bytes = pdu(0, b"");
        bytes[7] = 3;
        bytes.extend_from_slice(&[1, 1, 1, 1]); // header digest
        bytes.extend_from_slice(&[7, 8, 9, 0]); // data + pad
        bytes.extend_from_slice(&[2, 2, 2, 2]); // data digest
        match next_frame(&bytes, &limits) {
            Ok(FrameStatus::Complete(frame)) => {
                assert_eq!(frame.header_digest, &[1; 4]);
                assert_eq!(frame.data, &[7, 8, 9]);
                assert_eq!(frame.data_padding, &[0]);
                assert_eq!(frame.data_digest, &[2; 4]);
                assert_eq!(frame.len_bytes, bytes.len());
            }
            other => panic!("{other:?}"),
        }
        assert!(limits.max_pdu_len_bytes() >= bytes.len());
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic_and_respect_limits(
            bytes in proptest::collection::vec(any::<u8>(), 0..400),
            max in 0u32..300,
            header_crc in any::<bool>(),
            data_crc in any::<bool>(),
        ) {
            let kind = |crc: bool| if crc { DigestKind::Crc32c } else { DigestKind::None };
            let limits = FrameLimits {
                max_data_segment_len_bytes: max,
                header_digest: kind(header_crc),
                data_digest: kind(data_crc),
            };
            match next_frame(&bytes, &limits) {
                Ok(FrameStatus::Complete(frame)) => {
                    prop_assert!(frame.len_bytes <= bytes.len());
                    prop_assert!(frame.data.len() as u32 <= max);
                    prop_assert!(frame.len_bytes <= limits.max_pdu_len_bytes());
                    prop_assert_eq!(frame.header_digest.len(), limits.header_digest.len_bytes());
                    prop_assert!(frame.data_padding.len() < 4);
                    // Random bytes almost never carry a valid digest; checking must not panic.
                    let _ = frame.check_header_digest();
                    let _ = frame.check_data_digest();
                }
                Ok(FrameStatus::NeedMore { needed_len_bytes }) => {
                    prop_assert!(needed_len_bytes > bytes.len());
                    prop_assert!(needed_len_bytes <= limits.max_pdu_len_bytes());
                }
                Err(FrameError::DataSegmentTooLong { len_bytes, .. }) => prop_assert!(len_bytes > max),
            }
        }
    }
}
