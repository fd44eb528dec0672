//! Task management (RFC 7143 §11.5, §11.6, §4.2.3; SAM-5 semantics). Every function that ends
//! tasks follows one rule: a task still receiving data is dropped at once; a task executing in
//! the reactor is marked aborted, its response is suppressed, and the TMF response waits for
//! its completion, so no aborted write lands after the function completed.
//!
//! ABORT TASK and ABORT TASK SET concern this session only and are carried out here. CLEAR
//! TASK SET, LOGICAL UNIT RESET, TARGET WARM/COLD RESET and I_T NEXUS RESET abort this
//! session's tasks in scope the same way and hand the rest to the reactor as
//! [`Action::Reset`]; the response goes out when both the reactor reported
//! ([`Connection::on_reset_done`]) and the aborted tasks finished. A task-set function whose
//! earlier commands have not all arrived leaves a fence that aborts them on arrival. CLEAR ACA
//! (no ACA support) is "function not supported", TASK REASSIGN (ERL 0)
//! "allegiance reassignment not supported".

use lunar_wire::iscsi::codes::{reject_reason, tmf_function, tmf_response};
use lunar_wire::iscsi::initiator::TaskMgmtRequestHeader;
use lunar_wire::iscsi::target::TaskMgmtResponseHeader;
use lunar_wire::iscsi::{lun, Frame, Pdu};

use crate::connection::{
    Action, CloseReason, Connection, Phase, ResetFunction, ResetId, ResetOutcome, SessionKind,
    TaskId,
};
use crate::seq::{sn_lt, Admission};
use crate::tasks::TaskState;

/// Task management requests that may wait at once (for aborted tasks or the reactor); more
/// are answered "function rejected".
pub(crate) const MAX_PENDING_TMFS: usize = 32;
/// Task-set fences kept at once (see [`Fence`]).
pub(crate) const MAX_FENCES: usize = 16;

/// A task management request waiting for aborted tasks (and, for resets, the reactor).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PendingTmf {
    pub itt: u32,
    /// Tags of the aborted tasks still executing in the reactor (at most the task table).
    pub waiting_for: Vec<u32>,
    /// Set for functions the reactor carries out beyond this connection.
    pub reset: Option<PendingReset>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PendingReset {
    pub function: ResetFunction,
    /// The reactor's answer, once it gave it.
    pub outcome: Option<ResetOutcome>,
}

/// Commands numbered below `cmd_sn` that had not arrived when a task-set function was
/// received: they are aborted on arrival (RFC 7143 §4.2.3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fence {
    pub cmd_sn: u32,
    /// The LU concerned, or every LU.
    pub lun: Option<u64>,
}

fn outcome_response(outcome: ResetOutcome) -> u8 {
    match outcome {
        ResetOutcome::Complete => tmf_response::FUNCTION_COMPLETE,
        ResetOutcome::LunDoesNotExist => tmf_response::LUN_DOES_NOT_EXIST,
        ResetOutcome::NotSupported => tmf_response::FUNCTION_NOT_SUPPORTED,
        ResetOutcome::NotAuthorized => tmf_response::AUTHORIZATION_FAILED,
    }
}

impl Connection {
    pub(crate) fn on_task_mgmt(&mut self, frame: &Frame<'_>, actions: &mut Vec<Action>) {
        let req = TaskMgmtRequestHeader::view(frame.bhs_bytes);
        if !self.admit(frame.bhs().is_immediate(), req.cmd_sn.get()) {
            return;
        }
        if self.session_kind() == SessionKind::Discovery {
            self.reject(reject_reason::PROTOCOL_ERROR, frame.bhs_bytes);
            return;
        }
        let itt = req.initiator_task_tag.get();
        let cmd_sn = req.cmd_sn.get();
        let lun = lun::decode(req.lun);
        let function = req.function_code();
        tracing::debug!(itt, function, lun, "task management request");
        let waits = matches!(
            function,
            tmf_function::ABORT_TASK
                | tmf_function::ABORT_TASK_SET
                | tmf_function::CLEAR_TASK_SET
                | tmf_function::LOGICAL_UNIT_RESET
                | tmf_function::TARGET_WARM_RESET
                | tmf_function::TARGET_COLD_RESET
                | tmf_function::I_T_NEXUS_RESET
        );
        if waits && (self.tmfs.len() >= MAX_PENDING_TMFS || self.tmfs.iter().any(|t| t.itt == itt))
        {
            self.send_tmf_response(itt, tmf_response::FUNCTION_REJECTED);
            return;
        }
        let reset = match function {
            tmf_function::CLEAR_TASK_SET => Some(ResetFunction::ClearTaskSet { lun }),
            tmf_function::LOGICAL_UNIT_RESET => Some(ResetFunction::LogicalUnitReset { lun }),
            tmf_function::TARGET_WARM_RESET => Some(ResetFunction::TargetWarmReset),
            tmf_function::TARGET_COLD_RESET => Some(ResetFunction::TargetColdReset),
            tmf_function::I_T_NEXUS_RESET => Some(ResetFunction::ItNexusReset),
            _ => None,
        };
        let response = match (function, reset) {
            (_, Some(reset)) => self.start_reset(itt, cmd_sn, reset, actions),
            (tmf_function::ABORT_TASK, _) => self.abort_task(
                itt,
                req.referenced_task_tag.get(),
                req.ref_cmd_sn.get(),
                cmd_sn,
            ),
            (tmf_function::ABORT_TASK_SET, _) => self.abort_task_set(itt, cmd_sn, lun),
            (tmf_function::TASK_REASSIGN, _) => {
                Some(tmf_response::ALLEGIANCE_REASSIGNMENT_NOT_SUPPORTED)
            }
            (tmf_function::CLEAR_ACA, _) => Some(tmf_response::FUNCTION_NOT_SUPPORTED),
            _ => Some(tmf_response::FUNCTION_REJECTED),
        };
        if let Some(response) = response {
            self.send_tmf_response(itt, response);
        }
    }

    /// The response now, or `None` when it waits for an executing task.
    fn abort_task(
        &mut self,
        tmf_itt: u32,
        ref_itt: u32,
        ref_cmd_sn: u32,
        tmf_cmd_sn: u32,
    ) -> Option<u8> {
        let Some(task) = self.tasks.get_mut(ref_itt) else {
            // Never received: if its CmdSN is still ahead of us, consider it received so that it
            // is dropped should it arrive (RFC 7143 §11.5.1).
            // A number already taken belongs to a command that completed.
            if sn_lt(ref_cmd_sn, tmf_cmd_sn) && self.seq.admit(ref_cmd_sn) == Admission::Accept {
                self.tasks.note_ended(ref_itt);
                return Some(tmf_response::FUNCTION_COMPLETE);
            }
            return Some(tmf_response::TASK_DOES_NOT_EXIST);
        };
        match task.state {
            TaskState::Executing => {
                task.aborted = true;
                self.tmfs.push(PendingTmf {
                    itt: tmf_itt,
                    waiting_for: vec![ref_itt],
                    reset: None,
                });
                None
            }
            TaskState::Receiving(_) => {
                self.drop_task(ref_itt);
                Some(tmf_response::FUNCTION_COMPLETE)
            }
        }
    }

    fn abort_task_set(&mut self, tmf_itt: u32, tmf_cmd_sn: u32, lun: u64) -> Option<u8> {
        if !self.fence(tmf_cmd_sn, Some(lun)) {
            return Some(tmf_response::FUNCTION_REJECTED);
        }
        let waiting_for = self.abort_own_tasks(Some(lun));
        if waiting_for.is_empty() {
            return Some(tmf_response::FUNCTION_COMPLETE);
        }
        self.tmfs.push(PendingTmf {
            itt: tmf_itt,
            waiting_for,
            reset: None,
        });
        None
    }

    /// A function the reactor carries out: abort this session's tasks in scope, then ask.
    fn start_reset(
        &mut self,
        tmf_itt: u32,
        tmf_cmd_sn: u32,
        function: ResetFunction,
        actions: &mut Vec<Action>,
    ) -> Option<u8> {
        let lun = match function {
            ResetFunction::ClearTaskSet { lun } | ResetFunction::LogicalUnitReset { lun } => {
                Some(lun)
            }
            ResetFunction::TargetWarmReset
            | ResetFunction::TargetColdReset
            | ResetFunction::ItNexusReset => None,
        };
        if !self.fence(tmf_cmd_sn, lun) {
            return Some(tmf_response::FUNCTION_REJECTED);
        }
        let waiting_for = self.abort_own_tasks(lun);
        tracing::info!(
            ?function,
            executing_aborted = waiting_for.len(),
            "reset requested"
        );
        self.tmfs.push(PendingTmf {
            itt: tmf_itt,
            waiting_for,
            reset: Some(PendingReset {
                function,
                outcome: None,
            }),
        });
        actions.push(Action::Reset {
            id: ResetId(tmf_itt),
            function,
        });
        None
    }

    /// Ends this session's tasks on `lun` (every LU for `None`): drops those still receiving
    /// data and marks those executing, whose tags it returns (their I/O is still running).
    fn abort_own_tasks(&mut self, lun: Option<u64>) -> Vec<u32> {
        let mut executing = Vec::new();
        for itt in self.tasks.tags_where(|t| lun.is_none_or(|l| t.lun == l)) {
            let Some(task) = self.tasks.get_mut(itt) else {
                continue;
            };
            match task.state {
                TaskState::Executing => {
                    task.aborted = true;
                    executing.push(itt);
                }
                TaskState::Receiving(_) => self.drop_task(itt),
            }
        }
        executing
    }

    /// Records a fence for commands below `tmf_cmd_sn` not received yet; false when there is
    /// no room for one.
    fn fence(&mut self, tmf_cmd_sn: u32, lun: Option<u64>) -> bool {
        let exp_cmd_sn = self.seq.exp_cmd_sn();
        self.fences.retain(|f| sn_lt(exp_cmd_sn, f.cmd_sn));
        if !sn_lt(exp_cmd_sn, tmf_cmd_sn) {
            return true;
        }
        if self.fences.len() >= MAX_FENCES {
            return false;
        }
        self.fences.push(Fence {
            cmd_sn: tmf_cmd_sn,
            lun,
        });
        true
    }

    /// Whether a non-immediate command numbered `cmd_sn` for `lun`, arriving now, was already
    /// aborted by a task-set function received before it.
    pub(crate) fn fenced(&mut self, cmd_sn: u32, lun: u64) -> bool {
        let exp_cmd_sn = self.seq.exp_cmd_sn();
        self.fences.retain(|f| sn_lt(exp_cmd_sn, f.cmd_sn));
        self.fences
            .iter()
            .any(|f| sn_lt(cmd_sn, f.cmd_sn) && f.lun.is_none_or(|l| l == lun))
    }

    /// An aborted task finished executing; completes the TMFs that waited only for it.
    pub(crate) fn on_aborted_task_done(&mut self, itt: u32) {
        let mut ready = Vec::new();
        for pending in &mut self.tmfs {
            let before = pending.waiting_for.len();
            pending.waiting_for.retain(|&t| t != itt);
            if pending.waiting_for.len() < before && pending.waiting_for.is_empty() {
                ready.push(pending.itt);
            }
        }
        for tmf_itt in ready {
            self.finish_tmf_if_done(tmf_itt);
        }
    }

    /// Aborts this connection's tasks because another session reset `lun` (every LU for
    /// `None`: a target reset, or a CLEAR TASK SET elsewhere): tasks still receiving data are
    /// dropped, executing ones are marked so that their completion sends nothing. No
    /// response is sent for any of them (TAS=0: the initiator learns from the unit attention
    /// the reactor establishes). Returns the tasks still executing in the reactor whose I/O
    /// the reset must wait for.
    pub fn abort_tasks(&mut self, lun: Option<u64>) -> Vec<TaskId> {
        if self.phase != Phase::FullFeature {
            return Vec::new();
        }
        let mut executing = Vec::new();
        for itt in self.tasks.tags_where(|t| lun.is_none_or(|l| t.lun == l)) {
            let Some(task) = self.tasks.get_mut(itt) else {
                continue;
            };
            match task.state {
                TaskState::Executing => {
                    task.aborted = true;
                    executing.push(TaskId(itt));
                }
                TaskState::Receiving(_) => self.drop_task(itt),
            }
        }
        if !executing.is_empty() || lun.is_none() {
            tracing::debug!(
                ?lun,
                executing = executing.len(),
                "tasks aborted by another session"
            );
        }
        executing
    }

    /// The reactor finished the reset it was asked for with [`Action::Reset`]. The TMF
    /// response is sent once this connection's aborted tasks have finished too; after a
    /// TARGET COLD RESET the connection then closes. Actions (the close) are appended to
    /// `actions`.
    pub fn on_reset_done(&mut self, id: ResetId, outcome: ResetOutcome, actions: &mut Vec<Action>) {
        actions.append(&mut self.deferred_actions);
        if self.phase != Phase::FullFeature {
            return;
        }
        let Some(pending) = self.tmfs.iter_mut().find(|t| t.itt == id.0) else {
            tracing::debug!(?id, "reset completion for no pending request");
            return;
        };
        let Some(reset) = pending.reset.as_mut() else {
            return;
        };
        reset.outcome = Some(outcome);
        self.finish_tmf_if_done(id.0);
        actions.append(&mut self.deferred_actions);
    }

    /// Sends the response of TMF `itt` when nothing it waits for is left.
    fn finish_tmf_if_done(&mut self, itt: u32) {
        let Some(pos) = self.tmfs.iter().position(|t| t.itt == itt) else {
            return;
        };
        let pending = &self.tmfs[pos];
        if !pending.waiting_for.is_empty() {
            return;
        }
        let reset = pending.reset;
        let response = match reset {
            None => tmf_response::FUNCTION_COMPLETE,
            Some(PendingReset { outcome: None, .. }) => return,
            Some(PendingReset {
                outcome: Some(outcome),
                ..
            }) => outcome_response(outcome),
        };
        self.tmfs.swap_remove(pos);
        self.send_tmf_response(itt, response);
        let cold = matches!(
            reset,
            Some(PendingReset {
                function: ResetFunction::TargetColdReset,
                outcome: Some(ResetOutcome::Complete),
            })
        );
        if cold {
            let mut actions = Vec::new();
            self.terminate(CloseReason::TargetColdReset, &mut actions);
            self.deferred_actions.append(&mut actions);
        }
    }

    fn send_tmf_response(&mut self, itt: u32, response: u8) {
        tracing::debug!(itt, response, "task management response");
        let header = TaskMgmtResponseHeader::new(itt, response, self.seq.take());
        self.send.push(&header, &[]);
    }
}
