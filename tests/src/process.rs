//! Running external commands under a timeout, with stdout and stderr captured in one stream.
//!
//! Every external tool the tests use goes through [`run_with_timeout`], so that a wedged target or
//! client turns into a test failure with the tool's output, never into a hung test run.

use std::fmt;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

/// How often a running child is polled for exit.
const POLL_INTERVAL: Duration = Duration::from_millis(20);
/// How long to wait for the output pipe to close after the child has exited.
const OUTPUT_DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// What a command did: its exit status (if it exited), whether it was killed on timeout, and
/// everything it wrote on stdout and stderr, interleaved as written.
#[derive(Debug, Clone)]
pub struct ToolOutput {
    /// The command line, for messages.
    pub command: String,
    /// Exit status; `None` if the command could not be started.
    pub status: Option<ExitStatus>,
    /// True if the command was killed because it ran past its timeout.
    pub timed_out: bool,
    /// stdout and stderr, merged.
    pub output: String,
    /// Wall time from spawn to exit.
    pub elapsed: Duration,
}

impl ToolOutput {
    /// True if the command exited with status 0 within its timeout.
    pub fn success(&self) -> bool {
        !self.timed_out && self.status.is_some_and(|status| status.success())
    }

    /// Panics with the command, its status and its output unless it succeeded.
    pub fn assert_success(&self, context: &str) -> &Self {
        assert!(self.success(), "{context}: {self}");
        self
    }
}

impl fmt::Display for ToolOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let outcome = match (self.timed_out, self.status) {
            (true, _) => format!("killed after timeout ({:.1}s)", self.elapsed.as_secs_f64()),
            (false, Some(status)) => format!("{status}"),
            (false, None) => "not started".to_string(),
        };
        write!(
            f,
            "`{}` -> {outcome}\n--- output ---\n{}--- end of output ---",
            self.command, self.output
        )
    }
}

/// Renders a command line for messages.
pub fn describe_command(cmd: &Command) -> String {
    let mut line = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        line.push(' ');
        line.push_str(&arg.to_string_lossy());
    }
    line
}

/// Runs `cmd` with stdin closed, capturing stdout+stderr; kills its process group after `timeout`.
pub fn run_with_timeout(mut cmd: Command, timeout: Duration) -> ToolOutput {
    let command = describe_command(&cmd);
    let started = Instant::now();
    let not_started = |output: String| ToolOutput {
        command: command.clone(),
        status: None,
        timed_out: false,
        output,
        elapsed: started.elapsed(),
    };
    let (mut reader, writer) = match std::io::pipe() {
        Ok(pair) => pair,
        Err(err) => return not_started(format!("cannot create a pipe: {err}\n")),
    };
    let writer_for_stderr = match writer.try_clone() {
        Ok(clone) => clone,
        Err(err) => return not_started(format!("cannot clone a pipe: {err}\n")),
    };
    cmd.stdin(Stdio::null())
        .stdout(writer)
        .stderr(writer_for_stderr)
        .process_group(0);
    let spawned = cmd.spawn();
    // The Command holds the write ends of the pipe; drop it so the reader sees EOF at child exit.
    drop(cmd);
    let mut child = match spawned {
        Ok(child) => child,
        Err(err) => {
            return not_started(format!(
                "cannot start: {err} (are the test dependencies installed? see scripts/install-deps.sh)\n"
            ))
        }
    };

    let (output_tx, output_rx) = mpsc::channel();
    thread::spawn(move || {
        let mut bytes = Vec::new();
        // A read error only truncates the captured output; the exit status still tells the story.
        let _ = reader.read_to_end(&mut bytes);
        let _ = output_tx.send(bytes);
    });

    let deadline = started + timeout;
    let mut timed_out = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) => {}
            Err(_) => break None,
        }
        if Instant::now() >= deadline {
            timed_out = true;
            if let Ok(pgid) = i32::try_from(child.id()) {
                // The child leads its own process group: take down anything it started too.
                let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
            }
            let _ = child.kill();
            break child.wait().ok();
        }
        thread::sleep(POLL_INTERVAL);
    };
    let elapsed = started.elapsed();
    let bytes = output_rx
        .recv_timeout(OUTPUT_DRAIN_TIMEOUT)
        .unwrap_or_else(|_| b"(output not collected: the pipe stayed open)\n".to_vec());
    ToolOutput {
        command,
        status,
        timed_out,
        output: String::from_utf8_lossy(&bytes).into_owned(),
        elapsed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Command {
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg(script);
        cmd
    }

    #[test]
    fn captures_stdout_and_stderr_in_order() {
        let out = run_with_timeout(
            sh("echo one; echo two >&2; echo three"),
            Duration::from_secs(10),
        );
        assert!(out.success(), "{out}");
        assert_eq!(out.output, "one\ntwo\nthree\n");
    }

    #[test]
    fn reports_a_failing_exit_status() {
        let out = run_with_timeout(sh("echo oops >&2; exit 3"), Duration::from_secs(10));
        assert!(!out.success());
        assert_eq!(out.status.and_then(|s| s.code()), Some(3));
        assert!(out.to_string().contains("oops"));
    }

    #[test]
    fn kills_a_command_that_runs_past_its_timeout() {
        let out = run_with_timeout(sh("echo started; sleep 30"), Duration::from_millis(300));
        assert!(out.timed_out);
        assert!(!out.success());
        assert!(
            out.elapsed < Duration::from_secs(10),
            "took {:?}",
            out.elapsed
        );
        assert!(out.output.contains("started"));
    }

    #[test]
    fn a_missing_program_is_reported_not_panicked() {
        let out = run_with_timeout(
            Command::new("/nonexistent/definitely-not-a-tool"),
            Duration::from_secs(5),
        );
        assert!(out.status.is_none());
        assert!(!out.success());
        assert!(out.output.contains("cannot start"));
    }
}
