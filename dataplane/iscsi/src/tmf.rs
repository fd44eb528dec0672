//! Task management (RFC 7143 §11.5, §11.6). ABORT TASK and ABORT TASK SET are carried out by
//! the transport: a task still receiving data is dropped at once; a task executing in the
//! reactor is marked aborted, its response is suppressed, and the function completes when it
//! does. Functions that need the device model (LOGICAL UNIT RESET, CLEAR TASK SET, target
//! resets, CLEAR ACA) are answered "function not supported"; TASK REASSIGN, meaningless at
//! ERL 0, "allegiance reassignment not supported".

use lunar_wire::iscsi::codes::{reject_reason, tmf_function, tmf_response};
use lunar_wire::iscsi::initiator::TaskMgmtRequestHeader;
use lunar_wire::iscsi::target::TaskMgmtResponseHeader;
use lunar_wire::iscsi::{lun, Frame, Pdu};

use crate::connection::{Connection, SessionKind};
use crate::seq::sn_lt;
use crate::tasks::TaskState;

/// A task management request waiting for aborted tasks to finish executing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PendingTmf {
    pub itt: u32,
    pub remaining: u32,
}

impl Connection {
    pub(crate) fn on_task_mgmt(&mut self, frame: &Frame<'_>) {
        let req = TaskMgmtRequestHeader::view(frame.bhs_bytes);
        if !self.admit(frame.bhs().is_immediate(), req.cmd_sn.get()) {
            return;
        }
        if self.session_kind() == SessionKind::Discovery {
            self.reject(reject_reason::PROTOCOL_ERROR, frame.bhs_bytes);
            return;
        }
        let itt = req.initiator_task_tag.get();
        let response = match req.function_code() {
            tmf_function::ABORT_TASK => self.abort_task(
                itt,
                req.referenced_task_tag.get(),
                req.ref_cmd_sn.get(),
                req.cmd_sn.get(),
            ),
            tmf_function::ABORT_TASK_SET => self.abort_task_set(itt, lun::decode(req.lun)),
            tmf_function::TASK_REASSIGN => {
                Some(tmf_response::ALLEGIANCE_REASSIGNMENT_NOT_SUPPORTED)
            }
            tmf_function::CLEAR_ACA
            | tmf_function::CLEAR_TASK_SET
            | tmf_function::LOGICAL_UNIT_RESET
            | tmf_function::TARGET_WARM_RESET
            | tmf_function::TARGET_COLD_RESET => Some(tmf_response::FUNCTION_NOT_SUPPORTED),
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
            if self.seq.in_window(ref_cmd_sn) && sn_lt(ref_cmd_sn, tmf_cmd_sn) {
                self.seq.admit(ref_cmd_sn);
                return Some(tmf_response::FUNCTION_COMPLETE);
            }
            return Some(tmf_response::TASK_DOES_NOT_EXIST);
        };
        match task.state {
            TaskState::Executing => {
                if task.aborted_by.is_none() {
                    task.aborted_by = Some(tmf_itt);
                    self.tmfs.push(PendingTmf {
                        itt: tmf_itt,
                        remaining: 1,
                    });
                    None
                } else {
                    Some(tmf_response::FUNCTION_COMPLETE)
                }
            }
            TaskState::Receiving(_) => {
                self.drop_task(ref_itt);
                Some(tmf_response::FUNCTION_COMPLETE)
            }
        }
    }

    fn abort_task_set(&mut self, tmf_itt: u32, lun: u64) -> Option<u8> {
        let mut remaining = 0;
        for itt in self.tasks.tags_where(|t| t.lun == lun) {
            let Some(task) = self.tasks.get_mut(itt) else {
                continue;
            };
            match task.state {
                TaskState::Executing => {
                    if task.aborted_by.is_none() {
                        task.aborted_by = Some(tmf_itt);
                        remaining += 1;
                    }
                }
                TaskState::Receiving(_) => self.drop_task(itt),
            }
        }
        if remaining == 0 {
            return Some(tmf_response::FUNCTION_COMPLETE);
        }
        self.tmfs.push(PendingTmf {
            itt: tmf_itt,
            remaining,
        });
        None
    }

    /// An aborted task finished executing; completes its TMF when it was the last one.
    pub(crate) fn on_aborted_task_done(&mut self, tmf_itt: u32) {
        let Some(pos) = self.tmfs.iter().position(|t| t.itt == tmf_itt) else {
            return;
        };
        self.tmfs[pos].remaining = self.tmfs[pos].remaining.saturating_sub(1);
        if self.tmfs[pos].remaining == 0 {
            self.tmfs.swap_remove(pos);
            self.send_tmf_response(tmf_itt, tmf_response::FUNCTION_COMPLETE);
        }
    }

    fn send_tmf_response(&mut self, itt: u32, response: u8) {
        let header = TaskMgmtResponseHeader::new(itt, response, self.seq.take());
        self.send.push(&header, &[]);
    }
}
