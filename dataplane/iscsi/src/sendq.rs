//! The bytes waiting to go out on the socket: PDUs are encoded straight into one buffer the
//! reactor drains, with the digests negotiated for the full feature phase. A data segment may
//! also stay where the reactor keeps it (a [`BorrowedData`]: read data in its I/O buffer): the
//! queue then holds everything around it and where it goes, and the reactor gathers the
//! pieces when it sends. The reactor either takes the whole queue (`take_into`: the
//! allocations of two buffers trade places, nothing is copied) or, when nothing is borrowed,
//! reads and consumes the bytes in place (`pending`/`consume`).

use lunar_wire::iscsi::encode::{push_pdu_around, push_pdu_digested};
use lunar_wire::iscsi::{DigestKind, Pdu};

/// Data of the outgoing stream that stays in a buffer of the reactor's: `len_bytes` bytes
/// from `offset_bytes` of the buffer the reactor named `buffer`, which go on the wire right
/// before byte `at_bytes` of the queued bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BorrowedData {
    pub at_bytes: usize,
    pub buffer: u64,
    pub offset_bytes: usize,
    pub len_bytes: usize,
}

/// Above this many unsent bytes the connection stops asking for input.
pub(crate) const SEND_HIGH_WATER_BYTES: usize = 4 * 1024 * 1024;

/// Once this many bytes at the front are sent, they are dropped even if more remain.
const COMPACT_AFTER_BYTES: usize = 64 * 1024;

#[derive(Debug, Default)]
pub(crate) struct SendQueue {
    buf: Vec<u8>,
    /// Borrowed data segments, in stream order.
    borrowed: Vec<BorrowedData>,
    /// Bytes of `borrowed` together.
    borrowed_bytes: usize,
    sent: usize,
    header_digest: DigestKind,
    data_digest: DigestKind,
}

impl SendQueue {
    /// The queued bytes, for a reader that consumes them in place; never used with borrowed
    /// data (which only [`SendQueue::take_into`] hands out).
    pub fn pending(&self) -> &[u8] {
        debug_assert!(
            self.borrowed.is_empty(),
            "borrowed data is taken, not read in place"
        );
        &self.buf[self.sent..]
    }

    /// Bytes waiting to be sent, borrowed data included.
    pub fn len_bytes(&self) -> usize {
        self.buf.len() - self.sent + self.borrowed_bytes
    }

    pub fn consume(&mut self, n: usize) {
        debug_assert!(
            self.borrowed.is_empty(),
            "borrowed data is taken, not read in place"
        );
        self.sent = self.sent.saturating_add(n).min(self.buf.len());
        if self.sent == self.buf.len() {
            self.buf.clear();
            self.sent = 0;
        } else if self.sent >= COMPACT_AFTER_BYTES && self.sent * 2 >= self.buf.len() {
            self.buf.drain(..self.sent);
            self.sent = 0;
        }
    }

    /// Appends every pending byte to `out` and every borrowed segment to `out_borrowed` (its
    /// position relative to `out`), and empties the queue; when both are empty the buffers
    /// are swapped instead of copied.
    pub fn take_into(&mut self, out: &mut Vec<u8>, out_borrowed: &mut Vec<BorrowedData>) {
        if out.is_empty() && out_borrowed.is_empty() && self.sent == 0 {
            std::mem::swap(&mut self.buf, out);
            std::mem::swap(&mut self.borrowed, out_borrowed);
        } else {
            // Borrowed data is never consumed in place, so `sent` is 0 when there is some.
            let base = out.len();
            out.extend_from_slice(&self.buf[self.sent..]);
            out_borrowed.extend(self.borrowed.iter().map(|b| BorrowedData {
                at_bytes: base + b.at_bytes,
                ..*b
            }));
            self.buf.clear();
            self.borrowed.clear();
            self.sent = 0;
        }
        self.borrowed_bytes = 0;
    }

    /// Digests for every PDU pushed from now on.
    pub fn set_digests(&mut self, header_digest: DigestKind, data_digest: DigestKind) {
        self.header_digest = header_digest;
        self.data_digest = data_digest;
    }

    /// Appends one PDU whose data segment is the concatenation of `parts`. Callers size data
    /// segments by the negotiated limits, far below the 24-bit field; a segment that does not
    /// fit is dropped and logged rather than sent corrupt.
    pub fn push<T: Pdu>(&mut self, header: &T, parts: &[&[u8]]) {
        if let Err(err) = push_pdu_digested(
            &mut self.buf,
            header,
            parts,
            self.header_digest,
            self.data_digest,
        ) {
            tracing::error!(%err, opcode = ?T::OPCODE, "PDU not sent");
        }
    }

    /// Appends one PDU whose data segment is `data`, which stays in the reactor's buffer
    /// `buffer` from `offset_bytes` (`data` is that range of it): only the bytes around it
    /// are queued. Sized like [`SendQueue::push`]'s segments.
    pub fn push_borrowed<T: Pdu>(
        &mut self,
        header: &T,
        data: &[u8],
        buffer: u64,
        offset_bytes: usize,
    ) {
        match push_pdu_around(
            &mut self.buf,
            header,
            data,
            self.header_digest,
            self.data_digest,
        ) {
            Ok(at_bytes) => {
                if !data.is_empty() {
                    self.borrowed.push(BorrowedData {
                        at_bytes,
                        buffer,
                        offset_bytes,
                        len_bytes: data.len(),
                    });
                    self.borrowed_bytes += data.len();
                }
            }
            Err(err) => tracing::error!(%err, opcode = ?T::OPCODE, "PDU not sent"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lunar_wire::iscsi::target::{NopInHeader, StatusSeq};

    #[test]
    fn consume_drains_from_the_front() {
        let mut q = SendQueue::default();
        q.push(
            &NopInHeader::new([0; 8], 1, 2, StatusSeq::default()),
            &[b"abcd"],
        );
        assert_eq!(q.len_bytes(), 52);
        q.consume(50);
        assert_eq!(q.pending(), b"cd");
        q.consume(10);
        assert_eq!(q.len_bytes(), 0);
        assert!(q.pending().is_empty());
    }

    #[test]
    fn take_into_moves_everything_and_keeps_order() {
        let header = NopInHeader::new([0; 8], 1, 2, StatusSeq::default());
        let mut q = SendQueue::default();
        q.push(&header, &[b"abcd"]);
        let mut out = Vec::with_capacity(4096);
        let spare = out.as_ptr();
        q.take_into(&mut out, &mut Vec::new());
        assert_eq!(out.len(), 52);
        assert_eq!(&out[48..], b"abcd");
        assert_eq!(q.len_bytes(), 0);
        // The empty buffer handed in is what the queue fills next.
        q.push(&header, &[b"efgh"]);
        assert_eq!(q.pending().as_ptr(), spare);
        // Partly consumed, and into a buffer that is not empty: appended in order.
        q.consume(50);
        let mut borrowed = Vec::new();
        q.take_into(&mut out, &mut borrowed);
        assert!(borrowed.is_empty());
        assert_eq!(out.len(), 54);
        assert_eq!(&out[52..], b"gh");
        assert!(q.pending().is_empty());
    }

    #[test]
    fn borrowed_data_goes_where_the_copy_would_have_gone() {
        let header = NopInHeader::new([0; 8], 1, 2, StatusSeq::default());
        let reactor_buffer = b"0123456789";
        let mut copied = SendQueue::default();
        copied.push(&header, &[b"ab"]);
        copied.push(&header, &[&reactor_buffer[3..8]]);
        copied.push(&header, &[b"cd"]);
        let mut q = SendQueue::default();
        q.push(&header, &[b"ab"]);
        q.push_borrowed(&header, &reactor_buffer[3..8], 7, 3);
        q.push(&header, &[b"cd"]);
        assert_eq!(q.len_bytes(), copied.len_bytes());
        // Taken after something already taken: positions follow the bytes taken before.
        let mut bytes = b"xyz".to_vec();
        let mut borrowed = Vec::new();
        q.take_into(&mut bytes, &mut borrowed);
        assert_eq!(q.len_bytes(), 0);
        assert_eq!(borrowed.len(), 1);
        let b = borrowed[0];
        assert_eq!((b.buffer, b.offset_bytes, b.len_bytes), (7, 3, 5));
        let mut wire = bytes.clone();
        wire.splice(b.at_bytes..b.at_bytes, reactor_buffer[3..8].iter().copied());
        assert_eq!(&wire[..3], b"xyz");
        assert_eq!(&wire[3..], copied.pending());
    }
}
