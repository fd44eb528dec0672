//! The receive buffer of one connection: bytes read from the socket and not yet framed. It
//! reads into its spare tail and moves a partial PDU to the front only when the tail runs short,
//! so a burst of PDUs costs one read and no copy.

/// Received bytes waiting to be framed.
pub struct RxBuf {
    buf: Box<[u8]>,
    start: usize,
    end: usize,
}

impl RxBuf {
    /// A buffer of `capacity_bytes`, which must hold the largest PDU the peer may send.
    pub fn new(capacity_bytes: usize) -> RxBuf {
        RxBuf {
            buf: vec![0u8; capacity_bytes].into_boxed_slice(),
            start: 0,
            end: 0,
        }
    }

    pub fn capacity_bytes(&self) -> usize {
        self.buf.len()
    }

    /// The bytes received and not yet consumed.
    pub fn filled(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Drops the first `len_bytes` of [`RxBuf::filled`] (a framed PDU).
    pub fn consume(&mut self, len_bytes: usize) {
        self.start = (self.start + len_bytes).min(self.end);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Room to read into, after moving unconsumed bytes to the front when less than half the
    /// buffer is left at the tail. Empty only when unconsumed bytes fill the whole buffer.
    pub fn spare_mut(&mut self) -> &mut [u8] {
        if self.start > 0 && self.buf.len() - self.end < self.buf.len() / 2 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        &mut self.buf[self.end..]
    }

    /// Records that `len_bytes` were read into [`RxBuf::spare_mut`].
    pub fn commit(&mut self, len_bytes: usize) {
        self.end = (self.end + len_bytes).min(self.buf.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(rx: &mut RxBuf, bytes: &[u8]) {
        let spare = rx.spare_mut();
        spare[..bytes.len()].copy_from_slice(bytes);
        rx.commit(bytes.len());
    }

    #[test]
    fn consumed_bytes_leave_and_the_rest_stays_in_order() {
        let mut rx = RxBuf::new(8);
        push(&mut rx, &[1, 2, 3]);
        rx.consume(1);
        assert_eq!(rx.filled(), &[2, 3]);
        push(&mut rx, &[4, 5]);
        assert_eq!(rx.filled(), &[2, 3, 4, 5]);
        rx.consume(4);
        assert!(rx.filled().is_empty());
        assert_eq!(rx.spare_mut().len(), 8);
    }

    #[test]
    fn partial_pdu_moves_to_the_front_when_the_tail_runs_short() {
        let mut rx = RxBuf::new(8);
        push(&mut rx, &[1, 2, 3, 4, 5, 6, 7]);
        rx.consume(6);
        assert_eq!(rx.spare_mut().len(), 7);
        assert_eq!(rx.filled(), &[7]);
        push(&mut rx, &[8; 7]);
        assert_eq!(rx.filled().len(), 8);
        assert!(rx.spare_mut().is_empty());
        rx.consume(100);
        assert!(rx.filled().is_empty());
    }
}
