//! Sequence numbers of one session (RFC 7143 §4.2.2): StatSN and the ExpStatSN the initiator
//! acknowledges it with, and the CmdSN window `[ExpCmdSN, MaxCmdSN]` whose width is the named
//! per-session queue depth
//! ([`ConnConfig::session_queue_depth`](crate::ConnConfig::session_queue_depth)) minus the
//! commands still outstanding. Comparisons use serial number arithmetic (RFC 1982).

use lunar_wire::iscsi::target::StatusSeq;

/// `a < b` in 32-bit serial number arithmetic.
pub(crate) fn sn_lt(a: u32, b: u32) -> bool {
    a != b && (b.wrapping_sub(a) as i32) > 0
}

/// `a <= b` in 32-bit serial number arithmetic.
pub(crate) fn sn_le(a: u32, b: u32) -> bool {
    a == b || sn_lt(a, b)
}

/// Whether a non-immediate command is delivered or silently dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admission {
    Accept,
    /// Outside the window or a duplicate: the RFC says to drop it silently.
    Drop,
}

/// What an initiator's ExpStatSN said about the status sent so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Acknowledgement {
    /// Acknowledges status up to a newer StatSN than before.
    Advanced,
    /// Nothing newer than what was already acknowledged.
    Unchanged,
    /// Acknowledges status never sent (beyond `next_stat_sn - 1`): ignored.
    BeyondSent { next_stat_sn: u32 },
}

#[derive(Debug)]
pub(crate) struct Sequencer {
    stat_sn: u32,
    /// Every status numbered below this was acknowledged by the initiator's ExpStatSN.
    acked_stat_sn: u32,
    exp_cmd_sn: u32,
    max_cmd_sn: u32,
    queue_depth: u32,
    /// Commands holding a window slot: admitted SCSI commands whose response is not sent yet.
    outstanding: u32,
    /// CmdSNs accepted beyond a hole (ExpCmdSN cannot pass them yet); at most one window.
    ahead: Vec<u32>,
}

impl Sequencer {
    pub fn new(queue_depth: u32) -> Sequencer {
        let queue_depth = queue_depth.max(1);
        Sequencer {
            stat_sn: 0,
            acked_stat_sn: 0,
            exp_cmd_sn: 0,
            max_cmd_sn: queue_depth - 1,
            queue_depth,
            outstanding: 0,
            ahead: Vec::new(),
        }
    }

    /// Initialises the numbers from the first Login Request: its CmdSN is the session's first
    /// CmdSN and its ExpStatSN our first StatSN.
    pub fn start(&mut self, initial_cmd_sn: u32, initial_stat_sn: u32) {
        self.stat_sn = initial_stat_sn;
        self.acked_stat_sn = initial_stat_sn;
        self.exp_cmd_sn = initial_cmd_sn;
        self.max_cmd_sn = initial_cmd_sn.wrapping_add(self.queue_depth - 1);
        self.outstanding = 0;
        self.ahead.clear();
    }

    /// The numbers to put in a PDU that does not consume a StatSN.
    pub fn peek(&self) -> StatusSeq {
        StatusSeq {
            stat_sn: self.stat_sn,
            exp_cmd_sn: self.exp_cmd_sn,
            max_cmd_sn: self.max_cmd_sn,
        }
    }

    /// The numbers for a PDU that carries status: its StatSN is consumed.
    pub fn take(&mut self) -> StatusSeq {
        let seq = self.peek();
        self.stat_sn = self.stat_sn.wrapping_add(1);
        seq
    }

    /// Takes the ExpStatSN of a received PDU.
    pub fn acknowledge(&mut self, exp_stat_sn: u32) -> Acknowledgement {
        if sn_lt(self.stat_sn, exp_stat_sn) {
            return Acknowledgement::BeyondSent {
                next_stat_sn: self.stat_sn,
            };
        }
        if sn_lt(self.acked_stat_sn, exp_stat_sn) {
            self.acked_stat_sn = exp_stat_sn;
            Acknowledgement::Advanced
        } else {
            Acknowledgement::Unchanged
        }
    }

    /// Status PDUs sent but not yet acknowledged.
    #[cfg(test)]
    pub fn unacknowledged(&self) -> u32 {
        self.stat_sn.wrapping_sub(self.acked_stat_sn)
    }

    pub fn exp_cmd_sn(&self) -> u32 {
        self.exp_cmd_sn
    }

    #[cfg(test)]
    pub fn max_cmd_sn(&self) -> u32 {
        self.max_cmd_sn
    }

    pub fn queue_depth(&self) -> u32 {
        self.queue_depth
    }

    /// Whether `cmd_sn` lies in the current window.
    pub fn in_window(&self, cmd_sn: u32) -> bool {
        sn_le(self.exp_cmd_sn, cmd_sn) && sn_le(cmd_sn, self.max_cmd_sn)
    }

    /// Admits a non-immediate command numbered `cmd_sn`: inside the window and not seen
    /// before, it is accepted and ExpCmdSN moves past every contiguous accepted number.
    pub fn admit(&mut self, cmd_sn: u32) -> Admission {
        if !self.in_window(cmd_sn) || self.ahead.contains(&cmd_sn) {
            return Admission::Drop;
        }
        if cmd_sn == self.exp_cmd_sn {
            self.exp_cmd_sn = self.exp_cmd_sn.wrapping_add(1);
            while let Some(pos) = self.ahead.iter().position(|&sn| sn == self.exp_cmd_sn) {
                self.ahead.swap_remove(pos);
                self.exp_cmd_sn = self.exp_cmd_sn.wrapping_add(1);
            }
        } else {
            self.ahead.push(cmd_sn);
        }
        Admission::Accept
    }

    /// A SCSI command now holds a window slot until [`Sequencer::release`].
    pub fn hold(&mut self) {
        self.outstanding = self.outstanding.saturating_add(1);
        self.refresh_max_cmd_sn();
    }

    /// A command's slot is free again (its response is being sent or it was aborted).
    pub fn release(&mut self) {
        self.outstanding = self.outstanding.saturating_sub(1);
        self.refresh_max_cmd_sn();
    }

    /// Recomputes MaxCmdSN = ExpCmdSN + free slots - 1, never moving it backwards.
    pub fn refresh_max_cmd_sn(&mut self) {
        let free = self.queue_depth.saturating_sub(self.outstanding);
        let candidate = self.exp_cmd_sn.wrapping_add(free).wrapping_sub(1);
        if sn_lt(self.max_cmd_sn, candidate) {
            self.max_cmd_sn = candidate;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_arithmetic_wraps() {
        assert!(sn_lt(1, 2));
        assert!(sn_lt(u32::MAX, 0));
        assert!(!sn_lt(0, u32::MAX));
        assert!(sn_le(5, 5));
        assert!(!sn_lt(5, 5));
    }

    #[test]
    fn window_admits_in_order_and_drops_outside() {
        let mut seq = Sequencer::new(4);
        seq.start(10, 100);
        assert_eq!((seq.exp_cmd_sn(), seq.max_cmd_sn()), (10, 13));
        assert_eq!(seq.admit(9), Admission::Drop);
        assert_eq!(seq.admit(14), Admission::Drop);
        assert_eq!(seq.admit(10), Admission::Accept);
        seq.hold();
        assert_eq!((seq.exp_cmd_sn(), seq.max_cmd_sn()), (11, 13));
        assert_eq!(seq.admit(10), Admission::Drop, "duplicate of an old number");
        seq.release();
        assert_eq!(seq.max_cmd_sn(), 14, "completion opens the window");
    }

    #[test]
    fn holes_are_filled_later() {
        let mut seq = Sequencer::new(8);
        seq.start(0, 0);
        assert_eq!(seq.admit(2), Admission::Accept);
        assert_eq!(seq.admit(2), Admission::Drop);
        assert_eq!(seq.exp_cmd_sn(), 0);
        assert_eq!(seq.admit(0), Admission::Accept);
        assert_eq!(seq.exp_cmd_sn(), 1);
        assert_eq!(seq.admit(1), Admission::Accept);
        assert_eq!(seq.exp_cmd_sn(), 3);
    }

    #[test]
    fn exp_stat_sn_acknowledges_only_status_that_was_sent() {
        let mut seq = Sequencer::new(4);
        seq.start(0, u32::MAX - 1);
        seq.take();
        seq.take();
        seq.take();
        assert_eq!(seq.unacknowledged(), 3);
        assert_eq!(seq.acknowledge(u32::MAX), Acknowledgement::Advanced);
        assert_eq!(seq.unacknowledged(), 2);
        assert_eq!(seq.acknowledge(u32::MAX - 1), Acknowledgement::Unchanged);
        assert_eq!(seq.acknowledge(1), Acknowledgement::Advanced, "wraps");
        assert_eq!(seq.unacknowledged(), 0);
        assert_eq!(
            seq.acknowledge(2),
            Acknowledgement::BeyondSent { next_stat_sn: 1 }
        );
        assert_eq!(seq.unacknowledged(), 0);
    }

    #[test]
    fn max_cmd_sn_never_goes_back_and_wraps() {
        let mut seq = Sequencer::new(2);
        seq.start(u32::MAX, 7);
        assert_eq!(seq.max_cmd_sn(), 0);
        assert_eq!(seq.admit(u32::MAX), Admission::Accept);
        seq.hold();
        seq.hold();
        assert_eq!(seq.max_cmd_sn(), 0);
        seq.release();
        seq.release();
        assert_eq!(seq.max_cmd_sn(), 1);
        assert_eq!(seq.take().stat_sn, 7);
        assert_eq!(seq.peek().stat_sn, 8);
    }
}
