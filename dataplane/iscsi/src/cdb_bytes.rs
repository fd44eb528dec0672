//! The CDB of a received SCSI command, kept without a heap allocation when it fits in the
//! inline space (the 16 bytes of the BHS, and extended CDBs up to [`CDB_INLINE_LEN_BYTES`]);
//! only a longer extended CDB (from an Additional Header Segment) goes to the heap.

use std::ops::Deref;

/// Longest CDB stored inline: the BHS's 16 bytes plus a 16-byte extension (32-byte
/// variable-length CDBs).
pub const CDB_INLINE_LEN_BYTES: usize = 32;

/// CDB bytes: the BHS CDB followed by the extended CDB of an AHS, if any.
#[derive(Clone)]
pub enum CdbBytes {
    Inline {
        bytes: [u8; CDB_INLINE_LEN_BYTES],
        len_bytes: u8,
    },
    Heap(Vec<u8>),
}

impl CdbBytes {
    /// `base` followed by `tail`.
    pub fn new(base: &[u8], tail: &[u8]) -> CdbBytes {
        let len = base.len() + tail.len();
        if len > CDB_INLINE_LEN_BYTES {
            return CdbBytes::Heap([base, tail].concat());
        }
        let mut bytes = [0u8; CDB_INLINE_LEN_BYTES];
        bytes[..base.len()].copy_from_slice(base);
        bytes[base.len()..len].copy_from_slice(tail);
        CdbBytes::Inline {
            bytes,
            len_bytes: len as u8,
        }
    }
}

impl Default for CdbBytes {
    fn default() -> Self {
        CdbBytes::new(&[], &[])
    }
}

impl Deref for CdbBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            CdbBytes::Inline { bytes, len_bytes } => &bytes[..usize::from(*len_bytes)],
            CdbBytes::Heap(bytes) => bytes,
        }
    }
}

impl std::fmt::Debug for CdbBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl PartialEq for CdbBytes {
    fn eq(&self, other: &CdbBytes) -> bool {
        **self == **other
    }
}

impl Eq for CdbBytes {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_cdbs_stay_inline_and_long_ones_are_whole() {
        let base = [0x28u8; 16];
        let short = CdbBytes::new(&base, &[1, 2, 3, 4]);
        assert!(matches!(short, CdbBytes::Inline { .. }));
        assert_eq!(short.len(), 20);
        assert_eq!(&short[16..], &[1, 2, 3, 4]);
        let tail = [7u8; 40];
        let long = CdbBytes::new(&base, &tail);
        assert!(matches!(long, CdbBytes::Heap(_)));
        assert_eq!(long.len(), 56);
        assert_eq!(&long[..16], &base);
        assert_eq!(&long[16..], &tail);
        assert_eq!(CdbBytes::default().len(), 0);
        assert_eq!(
            CdbBytes::new(&base, &[]),
            CdbBytes::new(&base[..8], &base[8..])
        );
    }
}
