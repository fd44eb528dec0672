//! Types of the `task_*` methods: long operations (a mirror leg's resynchronisation, a volume's
//! migration) run in the background; the method that starts one returns its [`TaskInfo`] at
//! once, and `task_get` reports its state and progress until it ends.

use serde::{Deserialize, Serialize};

/// `task_get`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskGetParams {
    pub id: u64,
}

/// What a task does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskKind {
    /// Copy a mirror's data onto a leg (a new leg: every region; a leg that came back: the
    /// regions written while it was out).
    Resync,
    /// Copy a volume onto a new layout, then switch the volume to it.
    Migrate,
}

/// Where a task is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    Running,
    Done,
    /// Stopped by an error (see `message`); what it changed was rolled back.
    Failed,
}

/// One task, as `task_get`, `task_list` and the methods that start tasks return it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskInfo {
    pub id: u64,
    pub kind: TaskKind,
    pub volume: String,
    pub state: TaskState,
    /// Bytes of the volume copied or found already in place so far.
    pub done_bytes: u64,
    /// Bytes the task has to go through.
    pub total_bytes: u64,
    /// Bytes actually copied: less than `done_bytes` where regions needed no copy (the
    /// regions of a rejoining leg not written while it was out, unallocated thin segments).
    #[serde(default)]
    pub copied_bytes: u64,
    /// The mirror leg being resynchronised (resync only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leg: Option<u32>,
    /// Why the task failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl TaskInfo {
    /// Progress in percent (100 for an empty task).
    pub fn percent(&self) -> f64 {
        if self.total_bytes == 0 {
            100.0
        } else {
            self.done_bytes as f64 * 100.0 / self.total_bytes as f64
        }
    }
}

/// `task_list` result: running tasks and the most recent ended ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskListResult {
    pub tasks: Vec<TaskInfo>,
}
