//! Commands a reactor hands to the control thread (see `requests`), and the reactor-to-reactor
//! events it relays through it (session reinstatement, resets). A forwarded command stays pinned
//! to its table generation and counted on its connection until the answer comes back.

use std::collections::HashMap;

use lunar_iscsi::TaskId;
use lunar_scsi::ScsiReply;
use lunar_uring::UserData;

use crate::mailbox::FromReactor;
use crate::reactor::Reactor;
use crate::requests::{ReactorRequest, RequestId, RequestKind};

/// A command waiting for the control thread's answer.
pub struct AwaitingControl {
    conn: UserData,
    task: TaskId,
    generation: u64,
}

/// The forwarded commands of one reactor, by request sequence number.
#[derive(Default)]
pub struct ControlRequests {
    next_seq: u64,
    awaiting: HashMap<u64, AwaitingControl>,
    /// Block commands parked on a mapping fault or a failed mirror leg, by request sequence
    /// number: the answer resumes them.
    parked: HashMap<u64, UserData>,
}

impl ControlRequests {
    /// Command `cmd` waits for the answer to request `seq`.
    pub(crate) fn park_command(&mut self, seq: u64, cmd: UserData) {
        self.parked.insert(seq, cmd);
    }
}

impl Reactor {
    /// Forward a command to the control thread; the answer completes it.
    pub(crate) fn forward_to_control(
        &mut self,
        conn: UserData,
        task: TaskId,
        generation: u64,
        kind: RequestKind,
    ) {
        self.requests.next_seq += 1;
        let seq = self.requests.next_seq;
        self.requests.awaiting.insert(
            seq,
            AwaitingControl {
                conn,
                task,
                generation,
            },
        );
        let id = RequestId {
            reactor: self.id,
            seq,
        };
        self.send_to_control(FromReactor::Request(ReactorRequest { id, kind }));
    }

    /// Tell the control thread something it must act on, expecting no answer.
    pub(crate) fn notify_control(&mut self, kind: RequestKind) {
        self.ask_control(kind);
    }

    /// Send a request whose answer the caller waits for itself; returns its sequence number.
    pub(crate) fn ask_control(&mut self, kind: RequestKind) -> u64 {
        self.requests.next_seq += 1;
        let seq = self.requests.next_seq;
        let id = RequestId {
            reactor: self.id,
            seq,
        };
        self.send_to_control(FromReactor::Request(ReactorRequest { id, kind }));
        seq
    }

    pub(crate) fn on_control_answer(&mut self, seq: u64, reply: ScsiReply) {
        if self.reset_answered(seq) {
            return;
        }
        if let Some(cmd) = self.requests.parked.remove(&seq) {
            return self.resume_after_control(cmd, reply);
        }
        let Some(waiting) = self.requests.awaiting.remove(&seq) else {
            return;
        };
        self.complete_now(waiting.conn, waiting.task, waiting.generation, &reply);
    }

    /// A new login reinstated the session `key` (`InitiatorName,i,0xISID|TargetName`): close
    /// ours with that key, except the new one (`keep`: reactor index and connection id).
    pub(crate) fn close_sessions(&mut self, key: &str, keep: Option<(usize, u64)>) {
        let mut actions = std::mem::take(&mut self.actions);
        for id in self.conns.ids() {
            if keep == Some((self.id, id.0)) {
                continue;
            }
            let Some(conn) = self.conns.get_mut(id) else {
                continue;
            };
            if conn.session_key.as_deref() != Some(key) {
                continue;
            }
            conn.iscsi.close_for_reinstatement(&mut actions);
            self.apply_actions(id, &mut actions);
            self.pump(id);
        }
        self.actions = actions;
    }
}
