//! The bytes waiting to go out on the socket: PDUs are encoded straight into one buffer the
//! reactor drains, with the digests negotiated for the full feature phase. The reactor either
//! takes the whole buffer (`take_into`: the allocations of two buffers trade places, nothing
//! is copied) or reads and consumes it in place (`pending`/`consume`).

use lunar_wire::iscsi::encode::push_pdu_digested;
use lunar_wire::iscsi::{DigestKind, Pdu};

/// Above this many unsent bytes the connection stops asking for input.
pub(crate) const SEND_HIGH_WATER_BYTES: usize = 4 * 1024 * 1024;

/// Once this many bytes at the front are sent, they are dropped even if more remain.
const COMPACT_AFTER_BYTES: usize = 64 * 1024;

#[derive(Debug, Default)]
pub(crate) struct SendQueue {
    buf: Vec<u8>,
    sent: usize,
    header_digest: DigestKind,
    data_digest: DigestKind,
}

impl SendQueue {
    pub fn pending(&self) -> &[u8] {
        &self.buf[self.sent..]
    }

    pub fn len_bytes(&self) -> usize {
        self.buf.len() - self.sent
    }

    pub fn consume(&mut self, n: usize) {
        self.sent = self.sent.saturating_add(n).min(self.buf.len());
        if self.sent == self.buf.len() {
            self.buf.clear();
            self.sent = 0;
        } else if self.sent >= COMPACT_AFTER_BYTES && self.sent * 2 >= self.buf.len() {
            self.buf.drain(..self.sent);
            self.sent = 0;
        }
    }

    /// Appends every pending byte to `out` and empties the queue; when `out` is empty the
    /// buffers are swapped instead of copied.
    pub fn take_into(&mut self, out: &mut Vec<u8>) {
        if out.is_empty() && self.sent == 0 {
            std::mem::swap(&mut self.buf, out);
        } else {
            out.extend_from_slice(&self.buf[self.sent..]);
            self.buf.clear();
            self.sent = 0;
        }
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
        q.take_into(&mut out);
        assert_eq!(out.len(), 52);
        assert_eq!(&out[48..], b"abcd");
        assert_eq!(q.len_bytes(), 0);
        // The empty buffer handed in is what the queue fills next.
        q.push(&header, &[b"efgh"]);
        assert_eq!(q.pending().as_ptr(), spare);
        // Partly consumed, and into a buffer that is not empty: appended in order.
        q.consume(50);
        q.take_into(&mut out);
        assert_eq!(out.len(), 54);
        assert_eq!(&out[52..], b"gh");
        assert!(q.pending().is_empty());
    }
}
