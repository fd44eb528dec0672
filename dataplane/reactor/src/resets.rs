//! Task management resets that reach beyond one connection (CLEAR TASK SET, LOGICAL UNIT
//! RESET, TARGET WARM/COLD RESET): the reactor aborts the tasks in scope on its other
//! connections to the target, raises the unit attention on their nexuses, tells the other
//! reactors (through the control thread) to do the same, and answers the TMF once the aborted
//! commands of this reactor have finished their I/O, so no aborted write lands after the reset
//! completed. Resets heard from another reactor are applied without a response.

use lunar_iscsi::{Action, CloseReason, ResetFunction, ResetId, ResetOutcome, ResetScope, TaskId};
use lunar_scsi::UnitAttention;
use lunar_uring::UserData;

use crate::mailbox::FromReactor;
use crate::reactor::Reactor;
use crate::requests::RequestKind;

/// A PREEMPT AND ABORT waiting for the aborted commands of this reactor to finish.
pub struct PendingAbort {
    id: u64,
    waiting: Vec<(UserData, TaskId)>,
}

/// A reset waiting for aborted commands to finish.
pub struct PendingReset {
    conn: UserData,
    id: ResetId,
    waiting: Vec<(UserData, TaskId)>,
    /// The control thread's answer still awaited (shared state reset and published).
    control_seq: Option<u64>,
}

#[derive(Default)]
pub struct Resets {
    pending: Vec<PendingReset>,
    aborts: Vec<PendingAbort>,
}

impl Reactor {
    /// A connection asked for a reset (its own tasks in scope are already aborted).
    pub(crate) fn on_reset(&mut self, conn: UserData, id: ResetId, function: ResetFunction) {
        let target = self.conns.get(conn).and_then(|c| c.target.clone());
        let (waiting, control_seq) = match (function.scope(), target) {
            (ResetScope::Nexus, _) | (_, None) => (Vec::new(), None),
            (scope, Some(target)) => {
                self.send_to_control(FromReactor::Reset {
                    reactor: self.id,
                    target: target.clone(),
                    function,
                });
                // LU and target resets change the shared state (SPC-2 reservations, the unit
                // attention every nexus gets): the response waits for the control thread.
                let control_seq = match function {
                    ResetFunction::ClearTaskSet { .. } => None,
                    _ => Some(self.ask_control(RequestKind::Reset {
                        target: target.clone(),
                        lun: match scope {
                            ResetScope::Lun(lun) => Some(lun),
                            _ => None,
                        },
                        cold: function == ResetFunction::TargetColdReset,
                    })),
                };
                (self.apply_reset(&target, function, conn), control_seq)
            }
        };
        if waiting.is_empty() && control_seq.is_none() {
            self.answer_reset(conn, id);
        } else {
            self.resets.pending.push(PendingReset {
                conn,
                id,
                waiting,
                control_seq,
            });
        }
    }

    /// The control thread answered request `seq`; true if it was a reset's.
    pub(crate) fn reset_answered(&mut self, seq: u64) -> bool {
        let Some(pending) = self
            .resets
            .pending
            .iter_mut()
            .find(|p| p.control_seq == Some(seq))
        else {
            return false;
        };
        pending.control_seq = None;
        self.complete_ready_resets();
        true
    }

    /// PREEMPT AND ABORT: abort the tasks of volume `volume_uid` that arrived from these
    /// initiator ports; report `TasksAborted` once their I/O finished.
    pub(crate) fn abort_tasks_of(&mut self, id: u64, volume_uid: u64, initiator_ports: &[String]) {
        let mut waiting = Vec::new();
        for conn_id in self.conns.ids() {
            let Reactor { conns, tables, .. } = self;
            let Some(conn) = conns.get_mut(conn_id) else {
                continue;
            };
            let preempted = conn.nexus_id.as_ref().is_some_and(|n| {
                initiator_ports
                    .iter()
                    .any(|p| p.eq_ignore_ascii_case(&n.initiator_port))
            });
            if !preempted {
                continue;
            }
            let table = tables.current();
            let Some(target) = conn
                .target
                .as_deref()
                .and_then(|iqn| table.target_index(iqn))
                .map(|i| &table.targets[i])
            else {
                continue;
            };
            for lun in target
                .luns
                .iter()
                .filter(|l| l.unit.volume_uid == volume_uid)
            {
                let aborted = conn.iscsi.abort_tasks(Some(lun.lun));
                waiting.extend(aborted.into_iter().map(|t| (conn_id, t)));
            }
            self.pump(conn_id);
        }
        if waiting.is_empty() {
            self.send_to_control(FromReactor::TasksAborted { id });
        } else {
            self.resets.aborts.push(PendingAbort { id, waiting });
        }
    }

    /// A session on another reactor reset `target` (or one of its LUs).
    pub(crate) fn reset_from_elsewhere(&mut self, target: &str, function: ResetFunction) {
        let _ = self.apply_reset(target, function, UserData(0));
    }

    /// Abort the tasks in scope on this reactor's sessions to `target` (`origin`'s own are
    /// already aborted). CLEAR TASK SET raises its unit attention on the other nexuses here;
    /// the unit attentions of LU and target resets come with the shared state the control
    /// thread publishes. Returns the commands still doing I/O.
    fn apply_reset(
        &mut self,
        target: &str,
        function: ResetFunction,
        origin: UserData,
    ) -> Vec<(UserData, TaskId)> {
        let lun = match function.scope() {
            ResetScope::Lun(lun) => Some(lun),
            ResetScope::Target | ResetScope::Nexus => None,
        };
        let mut waiting = Vec::new();
        let mut actions = std::mem::take(&mut self.actions);
        for id in self.conns.ids() {
            let Some(conn) = self.conns.get_mut(id) else {
                continue;
            };
            if !conn
                .target
                .as_deref()
                .is_some_and(|t| t.eq_ignore_ascii_case(target))
            {
                continue;
            }
            if id == origin {
                continue;
            }
            waiting.extend(conn.iscsi.abort_tasks(lun).into_iter().map(|t| (id, t)));
            if let ResetFunction::ClearTaskSet { lun } = function {
                conn.nexus_for(lun)
                    .raise(UnitAttention::CommandsClearedByAnotherInitiator);
            }
            if function == ResetFunction::TargetColdReset {
                conn.iscsi
                    .terminate(CloseReason::TargetColdReset, &mut actions);
            }
            self.apply_actions(id, &mut actions);
            self.pump(id);
        }
        self.actions = actions;
        waiting
    }

    fn answer_reset(&mut self, conn: UserData, id: ResetId) {
        let mut actions: Vec<Action> = Vec::new();
        if let Some(c) = self.conns.get_mut(conn) {
            c.iscsi
                .on_reset_done(id, ResetOutcome::Complete, &mut actions);
        }
        self.apply_actions(conn, &mut actions);
        self.pump(conn);
    }

    /// A command finished (or its answer came back): resets waiting for it may complete.
    pub(crate) fn note_task_finished(&mut self, conn: UserData, task: TaskId) {
        if self.resets.pending.is_empty() && self.resets.aborts.is_empty() {
            return;
        }
        for pending in &mut self.resets.pending {
            pending.waiting.retain(|w| *w != (conn, task));
        }
        self.complete_ready_resets();
        let mut index = 0;
        while index < self.resets.aborts.len() {
            let abort = &mut self.resets.aborts[index];
            abort.waiting.retain(|w| *w != (conn, task));
            if abort.waiting.is_empty() {
                let done = self.resets.aborts.swap_remove(index);
                self.send_to_control(FromReactor::TasksAborted { id: done.id });
            } else {
                index += 1;
            }
        }
    }

    fn complete_ready_resets(&mut self) {
        let mut index = 0;
        while index < self.resets.pending.len() {
            let pending = &self.resets.pending[index];
            if pending.waiting.is_empty() && pending.control_seq.is_none() {
                let done = self.resets.pending.swap_remove(index);
                self.answer_reset(done.conn, done.id);
            } else {
                index += 1;
            }
        }
    }
}
