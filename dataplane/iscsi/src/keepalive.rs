//! Timers of a connection (time is passed in, never read): the login timeout, the Data-Out
//! timeout (a write whose solicited or announced data stops coming for `data_out_timeout_ms`
//! drops the connection: at ERL 0 there is no recovery R2T), and the keep-alive that sends a
//! NOP-In ping after `nop_in_interval_ms` without a complete PDU from the initiator and drops
//! the connection when the ping stays unanswered for `nop_in_timeout_ms`. These clocks stand
//! still while the connection itself stopped reading because its queue is full of executing
//! commands.

use lunar_wire::iscsi::target::NopInHeader;
use lunar_wire::iscsi::RESERVED_TAG;

use crate::connection::{Action, CloseReason, Connection, Phase};

/// A NOP-In ping waiting for its NOP-Out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ping {
    pub ttt: u32,
    pub sent_ms: u64,
}

#[derive(Debug)]
pub(crate) struct KeepAlive {
    last_input_ms: u64,
    ping: Option<Ping>,
}

impl KeepAlive {
    pub fn new(now_ms: u64) -> KeepAlive {
        KeepAlive {
            last_input_ms: now_ms,
            ping: None,
        }
    }

    pub fn on_activity(&mut self, now_ms: u64) {
        self.last_input_ms = self.last_input_ms.max(now_ms);
    }

    /// The connection stopped reading because its own commands fill the queue: silence from
    /// the peer proves nothing, so the clocks restart.
    pub fn suspend(&mut self, now_ms: u64) {
        self.on_activity(now_ms);
        if let Some(ping) = &mut self.ping {
            ping.sent_ms = ping.sent_ms.max(now_ms);
        }
    }

    /// A NOP-Out answering ping `ttt` arrived; false if no such ping is outstanding.
    pub fn answered(&mut self, ttt: u32) -> bool {
        if self.ping.is_some_and(|p| p.ttt == ttt) {
            self.ping = None;
            true
        } else {
            false
        }
    }

    #[cfg(test)]
    pub fn outstanding(&self) -> Option<Ping> {
        self.ping
    }
}

impl Connection {
    pub(crate) fn check_timers(&mut self, now_ms: u64, actions: &mut Vec<Action>) {
        match self.phase {
            Phase::Login => {
                if now_ms.saturating_sub(self.created_ms) >= self.config.login_timeout_ms {
                    tracing::debug!(
                        timeout_ms = self.config.login_timeout_ms,
                        "login not finished in time"
                    );
                    self.close(CloseReason::LoginFailed("login timed out".into()), actions);
                }
            }
            Phase::FullFeature => {
                if self.tasks.executing() >= self.seq.queue_depth() {
                    // Not reading (see `wants_recv`) while the reactor works through a full
                    // queue: the peer cannot be judged by its silence.
                    self.keepalive.suspend(now_ms);
                    self.tasks.restart_data_waits(now_ms);
                }
                if let Some(since_ms) = self.tasks.oldest_data_wait_ms() {
                    let waited_ms = now_ms.saturating_sub(since_ms);
                    if waited_ms >= self.config.data_out_timeout_ms {
                        tracing::warn!(
                            waited_ms,
                            "a write's Data-Out never came; dropping the connection"
                        );
                        self.close(CloseReason::DataOutTimeout, actions);
                        return;
                    }
                }
                if let Some(ping) = self.keepalive.ping {
                    if now_ms.saturating_sub(ping.sent_ms) >= self.config.nop_in_timeout_ms {
                        tracing::debug!(
                            partial_pdu_bytes = self.recv.len(),
                            "NOP-In ping unanswered"
                        );
                        self.close(CloseReason::KeepAliveTimeout, actions);
                    }
                } else if self.config.nop_in_interval_ms > 0
                    && now_ms.saturating_sub(self.keepalive.last_input_ms)
                        >= self.config.nop_in_interval_ms
                {
                    self.send_ping(now_ms);
                }
            }
            Phase::Closed => {}
        }
    }

    fn send_ping(&mut self, now_ms: u64) {
        let ttt = self.ttt.next();
        // A ping carries the next StatSN without consuming it (ITT is the reserved tag).
        let header = NopInHeader::new([0; 8], RESERVED_TAG, ttt, self.seq.peek());
        self.send.push(&header, &[]);
        self.keepalive.ping = Some(Ping {
            ttt,
            sent_ms: now_ms,
        });
    }
}
