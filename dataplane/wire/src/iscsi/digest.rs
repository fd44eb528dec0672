//! CRC32C header and data digests (RFC 7143 §6.7, Appendix B.4 of RFC 3720): the header
//! digest covers the BHS and any AHS, the data digest the data segment with its padding. Both
//! go on the wire least significant byte first. Computed with the `crc32c` crate, which uses
//! the SSE 4.2 / ARMv8 CRC instructions when the CPU has them.

use super::framer::Frame;
use super::header::BHS_LEN_BYTES;

/// Bytes a CRC32C digest occupies on the wire.
pub const DIGEST_LEN_BYTES: usize = 4;

/// The header digest of a BHS and its additional header segments.
pub fn header_digest(bhs: &[u8; BHS_LEN_BYTES], ahs: &[u8]) -> [u8; DIGEST_LEN_BYTES] {
    crc32c::crc32c_append(crc32c::crc32c(bhs), ahs).to_le_bytes()
}

/// The data digest of a data segment and the padding that follows it.
pub fn data_digest(data: &[u8], padding: &[u8]) -> [u8; DIGEST_LEN_BYTES] {
    crc32c::crc32c_append(crc32c::crc32c(data), padding).to_le_bytes()
}

/// Which digest of a received PDU does not match its contents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error("header digest mismatch")]
    Header,
    #[error("data digest mismatch")]
    Data,
}

impl Frame<'_> {
    /// Checks the header digest, if the PDU carries one.
    pub fn check_header_digest(&self) -> Result<(), DigestError> {
        if self.header_digest.is_empty()
            || self.header_digest == header_digest(self.bhs_bytes, self.ahs)
        {
            Ok(())
        } else {
            Err(DigestError::Header)
        }
    }

    /// Checks the data digest, if the PDU carries one (only PDUs with data do).
    pub fn check_data_digest(&self) -> Result<(), DigestError> {
        if self.data_digest.is_empty()
            || self.data_digest == data_digest(self.data, self.data_padding)
        {
            Ok(())
        } else {
            Err(DigestError::Data)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3720_crc32c_vectors() {
        // RFC 3720 B.4: the CRC over 32 bytes of zeros, of 0xff, of an incrementing and a
        // decrementing sequence, as it appears on the wire.
        let zeros = [0u8; 32];
        assert_eq!(data_digest(&zeros, &[]), [0xaa, 0x36, 0x91, 0x8a]);
        let ones = [0xffu8; 32];
        assert_eq!(data_digest(&ones, &[]), [0x43, 0xab, 0xa8, 0x62]);
        let up: Vec<u8> = (0u8..32).collect();
        assert_eq!(data_digest(&up, &[]), [0x4e, 0x79, 0xdd, 0x46]);
        let down: Vec<u8> = (0u8..32).rev().collect();
        assert_eq!(data_digest(&down, &[]), [0x5c, 0xdb, 0x3f, 0x11]);
    }

    #[test]
    fn split_input_gives_the_same_digest() {
        let bhs = [7u8; BHS_LEN_BYTES];
        let whole: Vec<u8> = bhs.iter().copied().chain([1, 2, 3, 4]).collect();
        assert_eq!(
            header_digest(&bhs, &[1, 2, 3, 4]),
            crc32c::crc32c(&whole).to_le_bytes()
        );
        assert_eq!(data_digest(b"abc", &[0]), data_digest(b"abc\0", &[]));
    }
}
