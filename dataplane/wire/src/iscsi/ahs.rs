//! Additional header segments (RFC 7143 §11.2.2): the extended CDB and the bidirectional read
//! expected data transfer length that may follow a SCSI Command BHS.

use super::codes::ahs_type;

/// One AHS: its type and its AHS-specific bytes (starting with the byte after the type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ahs<'a> {
    pub ahs_type: u8,
    /// AHSLength bytes: the AHS-specific byte followed by the payload, without padding.
    pub body: &'a [u8],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AhsError {
    #[error("additional header segment truncated at offset {offset_bytes}")]
    Truncated { offset_bytes: usize },
    #[error("additional header segment of type {ahs_type} is malformed")]
    Malformed { ahs_type: u8 },
}

/// Iterates over the segments of a TotalAHSLength area.
pub fn segments(area: &[u8]) -> impl Iterator<Item = Result<Ahs<'_>, AhsError>> + '_ {
    let mut offset = 0usize;
    let mut failed = false;
    core::iter::from_fn(move || {
        if failed || offset >= area.len() {
            return None;
        }
        let rest = &area[offset..];
        let Some(([len_hi, len_lo, kind], after)) =
            rest.split_first_chunk::<3>().map(|(h, a)| (*h, a))
        else {
            failed = true;
            return Some(Err(AhsError::Truncated {
                offset_bytes: offset,
            }));
        };
        let len = usize::from(u16::from_be_bytes([len_hi, len_lo]));
        let Some(body) = after.get(..len) else {
            failed = true;
            return Some(Err(AhsError::Truncated {
                offset_bytes: offset,
            }));
        };
        // Each segment is padded to a 4-byte boundary.
        offset += (3 + len).div_ceil(4) * 4;
        Some(Ok(Ahs {
            ahs_type: kind,
            body,
        }))
    })
}

/// The CDB bytes beyond the first 16 carried by an extended CDB AHS, if any.
pub fn extended_cdb(area: &[u8]) -> Result<Option<&[u8]>, AhsError> {
    for segment in segments(area) {
        let segment = segment?;
        if segment.ahs_type == ahs_type::EXTENDED_CDB {
            // The first body byte is reserved; the rest is CDB bytes 16.. .
            return match segment.body.split_first() {
                Some((_, cdb_tail)) if !cdb_tail.is_empty() => Ok(Some(cdb_tail)),
                _ => Err(AhsError::Malformed {
                    ahs_type: ahs_type::EXTENDED_CDB,
                }),
            };
        }
    }
    Ok(None)
}

/// The bidirectional read expected data transfer length, if the AHS carries one.
pub fn bidi_read_expected_len(area: &[u8]) -> Result<Option<u32>, AhsError> {
    for segment in segments(area) {
        let segment = segment?;
        if segment.ahs_type == ahs_type::BIDI_READ_EXPECTED_LEN {
            return match segment.body {
                [_, a, b, c, d] => Ok(Some(u32::from_be_bytes([*a, *b, *c, *d]))),
                _ => Err(AhsError::Malformed {
                    ahs_type: ahs_type::BIDI_READ_EXPECTED_LEN,
                }),
            };
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn extended_cdb_and_bidi_length_are_found() {
        // A 32-byte CDB: 16 bytes beyond the BHS plus the reserved byte make AHSLength 17;
        // with the 3-byte AHS header that is 20 bytes, already 4-aligned.
        let mut area = vec![0, 17, ahs_type::EXTENDED_CDB, 0];
        area.extend((16u8..32).collect::<Vec<_>>());
        assert_eq!(area.len(), 20);
        area.extend_from_slice(&[0, 5, ahs_type::BIDI_READ_EXPECTED_LEN, 0, 0, 0, 0x10, 0]);
        let tail = extended_cdb(&area).expect("well formed").expect("present");
        assert_eq!(tail, (16u8..32).collect::<Vec<_>>().as_slice());
        assert_eq!(bidi_read_expected_len(&area), Ok(Some(4096)));
    }

    #[test]
    fn truncated_segments_are_reported() {
        assert_eq!(
            extended_cdb(&[0, 40, 1, 0]),
            Err(AhsError::Truncated { offset_bytes: 0 })
        );
        assert_eq!(extended_cdb(&[]), Ok(None));
    }

    proptest! {
        #[test]
        fn arbitrary_areas_never_panic(area in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = extended_cdb(&area);
            let _ = bidi_read_expected_len(&area);
            prop_assert!(segments(&area).count() <= area.len());
        }
    }
}
