//! Background tasks: copying a volume's data onto a mirror leg (resync) or onto its new layout
//! (migration), a chunk at a time between the control thread's other work, so RPCs and the
//! reactors' requests are served while a copy runs.
//!
//! A task starts once every command planned before its leg was added has completed (those
//! commands do not write to the new leg). Each chunk is copied under the volume's exclusive
//! range lock, so no host write to it is in flight; host writes behind and ahead of the cursor
//! go to every leg, the new one included. Progress is persisted (after the copied bytes were
//! synced to the leg's devices) every [`PERSIST_EVERY_BYTES`] and at the end, so after a crash
//! the task resumes from its last persisted point. At the end a resync makes the leg healthy
//! and a migration makes the new layout the volume's; a failure takes the leg out again (a
//! migration goes back to the old layout).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lunar_api::task::{TaskGetParams, TaskInfo, TaskKind, TaskListResult, TaskState};
use lunar_api::Empty;
use lunar_reactor::BackendFile;
use lunar_volume::layout::NodeId;
use lunar_volume::{LegRef, VolumeMap};

use super::mirrors::{dirty_regions, mirror_legs_mut};
use super::requests::Served;
use super::Controller;
use crate::config::{
    Config, LayoutConfig, LegHealthConfig, TaskConfig, TaskKindConfig, TaskStateConfig,
    VolumeConfig,
};
use crate::copier::{Copier, CopyOutcome, COPY_CHUNK_BYTES};
use crate::error::ControlError;
use crate::layout::to_layout;

/// Progress is saved at least this often (in copied bytes).
pub const PERSIST_EVERY_BYTES: u64 = 64 << 20;
/// Ended tasks kept for `task_get`.
pub const ENDED_TASKS_KEPT: usize = 32;
/// Longest stretch of copying per turn of the control loop: the reactors' requests (a thin
/// allocation, a dirty region to mark) wait at most this long for the control thread.
const TURN_BUDGET: Duration = Duration::from_millis(2);

/// What the task runner keeps between turns (nothing of it is persistent).
#[derive(Default)]
pub struct TaskRunner {
    copier: Option<Copier>,
    /// Per task: the generation whose older generations must drain before copying starts.
    drain_before: HashMap<u64, u64>,
    /// Per task: bytes copied since progress was last saved.
    unsaved: HashMap<u64, u64>,
    /// The copy maps of the task being run, for the table generation they were built from.
    maps: Option<CopyMaps>,
}

struct CopyMaps {
    task: u64,
    generation: u64,
    source: VolumeMap,
    target: VolumeMap,
    devices: Vec<Option<Arc<BackendFile>>>,
}

/// How one chunk went.
enum Step {
    /// Progress made (or nothing to do yet); more to do.
    Continue,
    /// Waiting for something (a drain, a range lock); try again later.
    Wait,
    Finished,
    Failed(String),
}

fn info(config: &Config, task: &TaskConfig) -> TaskInfo {
    let volume = config
        .volume_by_uid(task.volume_uid.0)
        .map(|v| v.name.clone())
        .unwrap_or_default();
    let (state, message) = match &task.state {
        TaskStateConfig::Running => (TaskState::Running, None),
        TaskStateConfig::Done => (TaskState::Done, None),
        TaskStateConfig::Failed { message } => (TaskState::Failed, Some(message.clone())),
    };
    TaskInfo {
        id: task.id,
        kind: match task.kind {
            TaskKindConfig::Resync => TaskKind::Resync,
            TaskKindConfig::Migrate => TaskKind::Migrate,
        },
        volume,
        state,
        done_bytes: task.cursor_bytes.min(task.total_bytes),
        total_bytes: task.total_bytes,
        copied_bytes: task.copied_bytes,
        leg: (task.kind == TaskKindConfig::Resync).then_some(task.leg),
        message,
    }
}

/// The top-level mirror's legs of the task's volume, if they are still as the task expects.
fn task_legs<'a>(
    config: &'a mut Config,
    task: &TaskConfig,
) -> Option<&'a mut Vec<crate::config::LegConfig>> {
    let volume = config
        .volumes
        .iter_mut()
        .find(|v| v.uid == task.volume_uid)?;
    match &mut volume.layout {
        LayoutConfig::Mirror { id, legs, .. } if *id == task.mirror => Some(legs),
        _ => None,
    }
}

impl Controller {
    /// Put `config` (the volume's layout already carrying the leg to copy to) in place with a
    /// new task copying onto leg `leg` of mirror `mirror`; returns the task.
    pub(super) fn start_copy_task(
        &mut self,
        mut config: Config,
        volume: &str,
        kind: TaskKindConfig,
        mirror: NodeId,
        leg: u32,
        dirty_only: bool,
    ) -> Result<TaskInfo, ControlError> {
        self.check_changed_layout(&config, volume)?;
        let target = config
            .volume(volume)
            .ok_or_else(|| ControlError::not_found("volume", volume))?;
        let id = config.tasks.iter().map(|t| t.id).max().unwrap_or(0) + 1;
        let task = TaskConfig {
            id,
            kind,
            volume_uid: target.uid,
            mirror,
            leg,
            dirty_only,
            cursor_bytes: 0,
            copied_bytes: 0,
            total_bytes: target.layout.size_bytes(),
            state: TaskStateConfig::Running,
        };
        config.tasks.push(task.clone());
        prune_ended(&mut config);
        let devices = self.devices.clone();
        let generation = self.commit(config, devices)?;
        self.tasks.drain_before.insert(id, generation);
        tracing::info!(task = id, volume, ?kind, leg, dirty_only, "task started");
        Ok(info(&self.config, &task))
    }

    /// The running task of volume `uid`, if any.
    pub(super) fn running_task_of(&self, uid: u64) -> Option<u64> {
        self.config
            .tasks
            .iter()
            .find(|t| t.volume_uid.0 == uid && t.state == TaskStateConfig::Running)
            .map(|t| t.id)
    }

    /// End, as failed, the running tasks writing to `leg` of volume `uid` (in `config`).
    pub(super) fn fail_tasks_on_leg(
        &mut self,
        config: &mut Config,
        uid: u64,
        leg: LegRef,
        why: &str,
    ) {
        for task in config.tasks.iter_mut() {
            if task.volume_uid.0 == uid
                && task.mirror == leg.mirror
                && task.leg == leg.leg
                && task.state == TaskStateConfig::Running
            {
                task.state = TaskStateConfig::Failed {
                    message: why.to_string(),
                };
                tracing::warn!(task = task.id, "task failed: {why}");
            }
        }
    }

    /// Leg `removed` of mirror `mirror` is gone: the legs after it moved down by one.
    pub(super) fn renumber_task_legs(
        &mut self,
        config: &mut Config,
        uid: u64,
        mirror: NodeId,
        removed: u32,
    ) {
        for task in config.tasks.iter_mut() {
            if task.volume_uid.0 == uid
                && task.mirror == mirror
                && task.leg > removed
                && task.state == TaskStateConfig::Running
            {
                task.leg -= 1;
            }
        }
        self.tasks.maps = None;
    }

    pub fn task_get(&mut self, params: TaskGetParams) -> Result<TaskInfo, ControlError> {
        self.config
            .tasks
            .iter()
            .find(|t| t.id == params.id)
            .map(|t| info(&self.config, t))
            .ok_or_else(|| ControlError::not_found("task", &params.id.to_string()))
    }

    pub fn task_list(&mut self, _params: Empty) -> Result<TaskListResult, ControlError> {
        Ok(TaskListResult {
            tasks: self
                .config
                .tasks
                .iter()
                .map(|t| info(&self.config, t))
                .collect(),
        })
    }

    /// Whether a task is running (copying, or waiting for a drain or a range lock).
    pub(super) fn has_running_task(&self) -> bool {
        self.config
            .tasks
            .iter()
            .any(|t| t.state == TaskStateConfig::Running)
    }

    /// Copy for a while; true when a task has more to copy right now (call again soon).
    pub fn run_tasks(&mut self) -> bool {
        let started = Instant::now();
        let mut more = false;
        while started.elapsed() < TURN_BUDGET {
            let Some(task) = self
                .config
                .tasks
                .iter()
                .find(|t| t.state == TaskStateConfig::Running)
                .cloned()
            else {
                return false;
            };
            match self.task_step(&task) {
                Step::Continue => more = true,
                Step::Wait => return more,
                Step::Finished => self.finish_task(&task),
                Step::Failed(why) => self.abandon_task(&task, &why),
            }
        }
        more
    }

    fn task_step(&mut self, task: &TaskConfig) -> Step {
        let generation = *self
            .tasks
            .drain_before
            .entry(task.id)
            .or_insert(self.generation);
        if !self.publisher.is_drained(generation) {
            return Step::Wait;
        }
        let Some(volume) = self.config.volume_by_uid(task.volume_uid.0) else {
            return Step::Failed("the volume was deleted".to_string());
        };
        let size_bytes = volume.layout.size_bytes();
        let mut cursor = task.cursor_bytes;
        if task.dirty_only {
            // Skip to the next dirty region.
            let marked = volume
                .dirty_regions
                .as_ref()
                .map(|d| dirty_regions(d, size_bytes));
            if let Some(dirty) = marked {
                let region = dirty.region_bytes();
                let mut next = cursor / region;
                while next < dirty.len_regions() && !dirty.is_marked(next) {
                    next += 1;
                }
                cursor = cursor.max(next.saturating_mul(region)).min(size_bytes);
            }
        }
        if cursor >= size_bytes {
            self.set_cursor(task.id, size_bytes);
            return Step::Finished;
        }
        let len = COPY_CHUNK_BYTES.min(size_bytes - cursor);
        if let Err(why) = self.ensure_maps(task) {
            return Step::Failed(why);
        }
        let Some(locks) = self.publisher.range_locks(task.volume_uid.0) else {
            return Step::Wait;
        };
        if !locks.try_exclusive(cursor, len) {
            locks.stop_waiting(cursor, len);
            return Step::Wait;
        }
        let copier = match self.tasks.copier.as_mut() {
            Some(copier) => copier,
            None => match Copier::new() {
                Ok(copier) => self.tasks.copier.insert(copier),
                Err(e) => {
                    locks.release_exclusive(cursor, len);
                    return Step::Failed(e.to_string());
                }
            },
        };
        let maps = self.tasks.maps.as_ref().expect("maps were built");
        let copied = copier.copy(&maps.source, &maps.target, &maps.devices, cursor, len);
        locks.release_exclusive(cursor, len);
        match copied {
            Ok(outcome @ (CopyOutcome::Copied | CopyOutcome::BothZero)) => {
                self.set_cursor(task.id, cursor + len);
                if outcome == CopyOutcome::Copied {
                    if let Some(stored) = self.config.tasks.iter_mut().find(|t| t.id == task.id) {
                        stored.copied_bytes += len;
                    }
                }
                let unsaved = self.tasks.unsaved.entry(task.id).or_default();
                *unsaved += len;
                if *unsaved >= PERSIST_EVERY_BYTES {
                    if let Err(e) = self.save_progress(task.id) {
                        return Step::Failed(format!("saving progress failed: {e}"));
                    }
                }
                Step::Continue
            }
            Ok(CopyOutcome::TargetFaults(faults)) => {
                match self.resolve_copy_faults(task.volume_uid.0, &faults, (cursor, len)) {
                    Ok(()) => Step::Continue,
                    Err(e) => Step::Failed(e.to_string()),
                }
            }
            Err(e) => Step::Failed(e.to_string()),
        }
    }

    /// Compile the source (a healthy leg) and target (the task's leg) maps for the current
    /// generation.
    fn ensure_maps(&mut self, task: &TaskConfig) -> Result<(), String> {
        if self
            .tasks
            .maps
            .as_ref()
            .is_some_and(|m| m.task == task.id && m.generation == self.generation)
        {
            return Ok(());
        }
        let mut config = self.config.clone();
        let legs = task_legs(&mut config, task)
            .ok_or_else(|| "the volume is no longer the task's mirror".to_string())?;
        let target = legs
            .get(task.leg as usize)
            .ok_or_else(|| "the leg is gone".to_string())?;
        let source = legs
            .iter()
            .enumerate()
            .find(|(i, l)| *i != task.leg as usize && l.health == LegHealthConfig::Healthy)
            .map(|(_, l)| l)
            .ok_or_else(|| "no healthy leg is left to copy from".to_string())?;
        let ids: HashMap<&str, u32> = self
            .config
            .devices
            .iter()
            .map(|d| (d.name.as_str(), d.id))
            .collect();
        let device_id = |name: &str| ids.get(name).copied();
        let compile = |layout: &LayoutConfig| {
            to_layout(layout, &device_id)
                .map_err(|e| e.to_string())
                .and_then(|l| VolumeMap::try_new(l).map_err(|e| e.to_string()))
        };
        let (source, target) = (compile(&source.layout)?, compile(&target.layout)?);
        let slots = self
            .config
            .devices
            .iter()
            .map(|d| d.id as usize + 1)
            .max()
            .unwrap_or(0);
        let mut devices = vec![None; slots];
        for device in &self.config.devices {
            devices[device.id as usize] = self.devices.get(&device.name).cloned();
        }
        self.tasks.maps = Some(CopyMaps {
            task: task.id,
            generation: self.generation,
            source,
            target,
            devices,
        });
        Ok(())
    }

    fn set_cursor(&mut self, id: u64, cursor_bytes: u64) {
        if let Some(task) = self.config.tasks.iter_mut().find(|t| t.id == id) {
            task.cursor_bytes = cursor_bytes;
        }
    }

    /// Sync the copied bytes onto the leg's devices, then save the cursor (and the leg's
    /// resync point, so reads below it may use the leg) and publish.
    fn save_progress(&mut self, id: u64) -> Result<(), ControlError> {
        self.sync_task_target(id)?;
        let mut config = self.config.clone();
        let Some(task) = config.tasks.iter().find(|t| t.id == id).cloned() else {
            return Ok(());
        };
        if let Some(legs) = task_legs(&mut config, &task) {
            if let Some(leg) = legs.get_mut(task.leg as usize) {
                leg.health = LegHealthConfig::Resyncing {
                    up_to_bytes: task.cursor_bytes,
                };
            }
        }
        let devices = self.devices.clone();
        self.commit(config, devices)?;
        self.tasks.unsaved.remove(&id);
        Ok(())
    }

    /// fdatasync every device of the task's target leg.
    fn sync_task_target(&mut self, id: u64) -> Result<(), ControlError> {
        let Some(maps) = self.tasks.maps.as_ref().filter(|m| m.task == id) else {
            return Ok(());
        };
        for &device in maps.target.devices() {
            if let Some(Some(file)) = maps.devices.get(device as usize) {
                crate::thin::device_io::sync(file).map_err(|e| {
                    ControlError::Device(format!("syncing {}: {e}", file.path.display()))
                })?;
            }
        }
        Ok(())
    }

    fn finish_task(&mut self, task: &TaskConfig) {
        let started = Instant::now();
        let ended = self
            .sync_task_target(task.id)
            .and_then(|()| self.end_task(task, None));
        match ended {
            Ok(()) => tracing::info!(
                task = task.id,
                kind = ?task.kind,
                switch_us = started.elapsed().as_micros() as u64,
                "task done: the final table is saved and installed on every reactor"
            ),
            Err(e) => self.abandon_task(task, &e.to_string()),
        }
    }

    /// Stop a task after an error: a resync's leg goes back to faulty, a migration goes back to
    /// the old layout.
    fn abandon_task(&mut self, task: &TaskConfig, why: &str) {
        tracing::warn!(task = task.id, "task failed: {why}");
        if let Err(e) = self.end_task(task, Some(why)) {
            // Keep it failed in memory so it does not spin; the saved state still has it
            // running, and it resumes after a restart.
            tracing::error!(task = task.id, "recording the task's failure failed: {e}");
            if let Some(stored) = self.config.tasks.iter_mut().find(|t| t.id == task.id) {
                stored.state = TaskStateConfig::Failed {
                    message: why.to_string(),
                };
            }
            self.forget_task(task.id);
        }
    }

    /// Save and publish the end of a task: done (`failure` None) or failed, with the volume's
    /// layout finished or rolled back; then release the layout it dropped.
    fn end_task(&mut self, task: &TaskConfig, failure: Option<&str>) -> Result<(), ControlError> {
        let mut config = self.config.clone();
        let uid = task.volume_uid.0;
        let dropped = config
            .volumes
            .iter_mut()
            .find(|v| v.uid.0 == uid)
            .and_then(|volume| match failure {
                None => finish_on(volume, task),
                Some(_) => roll_back_on(volume, task),
            });
        if let Some(stored) = config.tasks.iter_mut().find(|t| t.id == task.id) {
            stored.state = match failure {
                None => {
                    stored.cursor_bytes = stored.total_bytes;
                    TaskStateConfig::Done
                }
                Some(why) => TaskStateConfig::Failed {
                    message: why.to_string(),
                },
            };
        }
        prune_ended(&mut config);
        let devices = self.devices.clone();
        let generation = self.commit(config, devices)?;
        if let Some(layout) = dropped {
            self.legs_renumbered.insert(uid, generation);
            self.release_layout(&layout, generation);
        }
        self.forget_task(task.id);
        Ok(())
    }

    /// Drop what a layout leaving its volume held in pools, as of `generation`.
    pub(super) fn release_layout(&mut self, layout: &LayoutConfig, generation: u64) {
        let ledgers = &mut self.ledgers;
        layout.for_each_thin(&mut |_, pool, _, table| {
            if let Some(ledger) = ledgers.get_mut(pool) {
                for (_, location, _) in table.located() {
                    ledger.drop_ref(location, generation);
                }
            }
        });
    }

    /// Thin segments of a copy's target need allocating first: as a fault of a write of the
    /// copied range (`written`: volume offset and length) would (segments it covers whole need
    /// no zeroing).
    fn resolve_copy_faults(
        &mut self,
        volume_uid: u64,
        faults: &[(lunar_volume::SegmentRef, lunar_volume::FaultReason)],
        written: (u64, u64),
    ) -> Result<(), ControlError> {
        let generation = self.generation;
        match self.serve_fault(volume_uid, generation, faults, Some(written)) {
            Served::Answer(reply) if reply.status == 0 => Ok(()),
            Served::Answer(_) => Err(ControlError::Conflict(
                "the target's segments could not be allocated (is its pool full?)".to_string(),
            )),
            // Released slots or a change in progress: copy again on a later turn.
            Served::Wait(_) | Served::Nothing => Ok(()),
        }
    }

    fn forget_task(&mut self, id: u64) {
        self.tasks.drain_before.remove(&id);
        self.tasks.unsaved.remove(&id);
        if self.tasks.maps.as_ref().is_some_and(|m| m.task == id) {
            self.tasks.maps = None;
        }
    }
}

/// A task's copy is complete: a resynced leg becomes healthy (and a whole mirror needs no dirty
/// regions), a migration's new layout becomes the volume's. Returns the layout it dropped.
fn finish_on(volume: &mut VolumeConfig, task: &TaskConfig) -> Option<LayoutConfig> {
    match task.kind {
        TaskKindConfig::Resync => {
            let legs = mirror_legs_mut(&mut volume.layout, task.mirror)?;
            if let Some(leg) = legs.get_mut(task.leg as usize) {
                leg.health = LegHealthConfig::Healthy;
                leg.stale = false;
            }
            if legs.iter().all(|l| l.health == LegHealthConfig::Healthy) {
                volume.dirty_regions = None;
            }
            None
        }
        TaskKindConfig::Migrate => {
            let LayoutConfig::Mirror { id, legs, .. } = &mut volume.layout else {
                return None;
            };
            if *id != task.mirror || legs.len() <= task.leg as usize {
                return None;
            }
            let new = legs.remove(task.leg as usize).layout;
            volume.dirty_regions = None;
            Some(std::mem::replace(&mut volume.layout, new))
        }
    }
}

/// A task's copy failed: a resync's leg goes back out (stale: it needs a full copy), a
/// migration goes back to the old layout. Returns the layout it dropped.
fn roll_back_on(volume: &mut VolumeConfig, task: &TaskConfig) -> Option<LayoutConfig> {
    match task.kind {
        TaskKindConfig::Resync => {
            let legs = mirror_legs_mut(&mut volume.layout, task.mirror)?;
            if let Some(leg) = legs.get_mut(task.leg as usize) {
                leg.health = LegHealthConfig::Faulty;
                leg.stale = true;
            }
            let size_bytes = volume.layout.size_bytes();
            volume
                .dirty_regions
                .get_or_insert_with(|| super::mirrors::no_dirty_regions(size_bytes));
            None
        }
        TaskKindConfig::Migrate => {
            let LayoutConfig::Mirror { id, legs, .. } = &mut volume.layout else {
                return None;
            };
            if *id != task.mirror || legs.len() != 2 {
                return None;
            }
            let new = legs.pop().expect("two legs").layout;
            let old = legs.pop().expect("two legs").layout;
            volume.layout = old;
            Some(new)
        }
    }
}

/// Keep every running task and the newest [`ENDED_TASKS_KEPT`] ended ones.
fn prune_ended(config: &mut Config) {
    let ended = config
        .tasks
        .iter()
        .filter(|t| t.state != TaskStateConfig::Running)
        .count();
    let mut drop = ended.saturating_sub(ENDED_TASKS_KEPT);
    config.tasks.retain(|t| {
        if drop > 0 && t.state != TaskStateConfig::Running {
            drop -= 1;
            return false;
        }
        true
    });
}
