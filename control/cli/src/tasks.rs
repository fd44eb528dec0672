//! The mirror leg, migration and task subcommands: `mirror add|remove|rejoin`, `volume
//! migrate`, `task get|list`, and following a task's progress live (`--wait`, `task get
//! --watch`) until it ends.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use clap::{Args as ClapArgs, Subcommand};
use lunar_api::method;
use lunar_api::task::{TaskInfo, TaskKind, TaskListResult, TaskState};
use lunar_api::Client;
use serde_json::{json, Value};

use crate::commands::{call, typed, Call};
use crate::table::render;

/// How often a followed task is asked for its progress.
const WATCH_INTERVAL: Duration = Duration::from_millis(250);

#[derive(Debug, Clone, Subcommand)]
pub enum MirrorCommand {
    /// Add a leg to a volume's mirror (a volume that is not a mirror becomes one) and copy the
    /// data onto it in the background.
    Add {
        volume: String,
        /// The new leg's layout as JSON, e.g. '{"linear": {"device": "d2"}}'.
        leg: String,
        #[command(flatten)]
        follow: FollowArgs,
    },
    /// Take a leg out of a volume's mirror for good.
    Remove { volume: String, index: u32 },
    /// Bring a faulty leg back (its device returned) and copy the regions written while it
    /// was out.
    Rejoin {
        volume: String,
        index: u32,
        #[command(flatten)]
        follow: FollowArgs,
    },
}

#[derive(Debug, Clone, Subcommand)]
pub enum TaskCommand {
    /// One task's state and progress.
    Get {
        id: u64,
        /// Show the progress live until the task ends.
        #[arg(long)]
        watch: bool,
    },
    /// Running tasks and the recently ended ones.
    List,
}

/// `volume migrate`.
#[derive(Debug, Clone, ClapArgs)]
pub struct MigrateArgs {
    pub name: String,
    /// The new layout as JSON, e.g. '{"stripe": {"unit_bytes": 65536, "members": [...]}}'.
    pub layout: String,
    #[command(flatten)]
    pub follow: FollowArgs,
}

#[derive(Debug, Clone, Copy, ClapArgs)]
pub struct FollowArgs {
    /// Show the task's progress live and return when it ends (non-zero exit if it failed).
    #[arg(long)]
    pub wait: bool,
}

fn layout_json(text: &str, what: &str) -> Result<Value, String> {
    serde_json::from_str(text).map_err(|e| format!("{what} is not valid JSON: {e}"))
}

pub fn mirror_call(command: &MirrorCommand) -> Result<Call, String> {
    Ok(match command {
        MirrorCommand::Add { volume, leg, .. } => call(
            method::MIRROR_LEG_ADD,
            json!({"volume": volume, "leg": layout_json(leg, "the leg")?}),
        ),
        MirrorCommand::Remove { volume, index } => call(
            method::MIRROR_LEG_REMOVE,
            json!({"volume": volume, "index": index}),
        ),
        MirrorCommand::Rejoin { volume, index, .. } => call(
            method::MIRROR_LEG_REJOIN,
            json!({"volume": volume, "index": index}),
        ),
    })
}

pub fn migrate_call(args: &MigrateArgs) -> Result<Call, String> {
    Ok(call(
        method::VOLUME_MIGRATE,
        json!({"name": args.name, "layout": layout_json(&args.layout, "the layout")?}),
    ))
}

pub fn task_call(command: &TaskCommand) -> Call {
    match command {
        TaskCommand::Get { id, .. } => call(method::TASK_GET, json!({"id": id})),
        TaskCommand::List => call(method::TASK_LIST, json!({})),
    }
}

fn kind_text(kind: TaskKind) -> &'static str {
    match kind {
        TaskKind::Resync => "resync",
        TaskKind::Migrate => "migrate",
    }
}

fn state_text(state: TaskState) -> &'static str {
    match state {
        TaskState::Running => "running",
        TaskState::Done => "done",
        TaskState::Failed => "failed",
    }
}

/// `task 3 (resync of leg 1 of vol): running, 41.5% (425 MiB of 1024 MiB)`.
pub fn task_line(task: &TaskInfo) -> String {
    let what = match task.leg {
        Some(leg) => format!("{} of leg {leg} of {}", kind_text(task.kind), task.volume),
        None => format!("{} of {}", kind_text(task.kind), task.volume),
    };
    let mut line = format!(
        "task {} ({what}): {}, {:.1}% ({} MiB of {} MiB)",
        task.id,
        state_text(task.state),
        task.percent(),
        task.done_bytes >> 20,
        task.total_bytes >> 20
    );
    if let Some(message) = &task.message {
        line.push_str(&format!(": {message}"));
    }
    line
}

pub fn show_task(result: &Value) -> Result<String, String> {
    Ok(task_line(&typed::<TaskInfo>(result)?))
}

pub fn show_task_list(result: &Value) -> Result<String, String> {
    let list: TaskListResult = typed(result)?;
    let rows = list
        .tasks
        .iter()
        .map(|t| {
            vec![
                t.id.to_string(),
                kind_text(t.kind).to_string(),
                t.volume.clone(),
                t.leg.map_or("-".to_string(), |l| l.to_string()),
                state_text(t.state).to_string(),
                format!("{:.1}%", t.percent()),
                t.message.clone().unwrap_or_default(),
            ]
        })
        .collect::<Vec<_>>();
    Ok(render(
        &[
            "ID", "KIND", "VOLUME", "LEG", "STATE", "PROGRESS", "MESSAGE",
        ],
        &rows,
    ))
}

/// The task to follow after `command` answered `result`: the one it started with `--wait`, or
/// the one `task get --watch` names.
pub fn followed_task(command: &crate::args::Command, result: &Value) -> Option<u64> {
    use crate::args::{Command, VolumeCommand};
    let wait = match command {
        Command::Mirror(MirrorCommand::Add { follow, .. })
        | Command::Mirror(MirrorCommand::Rejoin { follow, .. }) => follow.wait,
        Command::Volume(VolumeCommand::Migrate(args)) => args.follow.wait,
        Command::Task(TaskCommand::Get { watch, .. }) => *watch,
        _ => false,
    };
    if !wait {
        return None;
    }
    result.get("id").and_then(Value::as_u64)
}

/// Ask for task `id` until it ends, printing its progress (rewriting one line on a terminal,
/// a line per change otherwise). Err when the task failed.
pub fn follow(client: &mut Client, id: u64, out: &mut dyn Write) -> Result<(), String> {
    let terminal = std::io::stdout().is_terminal();
    let mut last = String::new();
    loop {
        let result = client
            .call(method::TASK_GET, json!({"id": id}))
            .map_err(|e| e.to_string())?;
        let task: TaskInfo = typed(&result)?;
        let line = task_line(&task);
        if line != last {
            let _ = if terminal {
                write!(out, "\r\x1b[2K{line}")
            } else {
                writeln!(out, "{line}")
            };
            let _ = out.flush();
            last = line;
        }
        match task.state {
            TaskState::Running => std::thread::sleep(WATCH_INTERVAL),
            TaskState::Done => break,
            TaskState::Failed => {
                if terminal {
                    let _ = writeln!(out);
                }
                return Err(format!(
                    "task {id} failed: {}",
                    task.message.unwrap_or_default()
                ));
            }
        }
    }
    if terminal {
        let _ = writeln!(out);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(state: TaskState, done_bytes: u64, message: Option<&str>) -> TaskInfo {
        TaskInfo {
            id: 3,
            kind: TaskKind::Resync,
            volume: "vol".to_string(),
            state,
            done_bytes,
            total_bytes: 1 << 30,
            copied_bytes: done_bytes,
            leg: Some(1),
            message: message.map(str::to_string),
        }
    }

    #[test]
    fn task_lines_say_what_where_and_how_far() {
        assert_eq!(
            task_line(&task(TaskState::Running, 256 << 20, None)),
            "task 3 (resync of leg 1 of vol): running, 25.0% (256 MiB of 1024 MiB)"
        );
        assert_eq!(
            task_line(&task(TaskState::Failed, 0, Some("the leg failed"))),
            "task 3 (resync of leg 1 of vol): failed, 0.0% (0 MiB of 1024 MiB): the leg failed"
        );
    }

    #[test]
    fn layouts_must_be_json() {
        let error = mirror_call(&MirrorCommand::Add {
            volume: "v".to_string(),
            leg: "{linear".to_string(),
            follow: FollowArgs { wait: false },
        })
        .expect_err("not JSON");
        assert!(error.starts_with("the leg is not valid JSON"), "{error}");
        let ok = migrate_call(&MigrateArgs {
            name: "v".to_string(),
            layout: r#"{"linear": {"device": "d"}}"#.to_string(),
            follow: FollowArgs { wait: true },
        })
        .expect("JSON");
        assert_eq!(ok.method, method::VOLUME_MIGRATE);
        assert_eq!(ok.params["layout"]["linear"]["device"], json!("d"));
    }
}
