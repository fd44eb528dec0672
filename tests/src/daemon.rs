//! A real `lunard` process for a test: start it on `127.0.0.1:0` in a state directory, wait for
//! its ready line (with a timeout), talk to it, stop it (SIGTERM, then SIGKILL) or `kill -9` it.
//!
//! Everything lunard writes on stderr is captured, and every failure message built here ends with
//! its most recent part, so that a failing test shows what the daemon said. The whole of it is
//! also kept in a temporary file, for tests that look for log lines ([`Lunard::log_lines`]).

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;

use crate::paths::lunard_bin;
use crate::procfs::{self, Memory};
use crate::rpc::{RpcClient, RpcError};

/// How long lunard may take to print its ready line.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long lunard may take to exit after SIGTERM before it is killed.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// The prefix of the one line lunard prints on stdout once it serves.
pub const READY_PREFIX: &str = "lunard ready:";
/// At most this much of lunard's stderr is kept (the most recent bytes).
const STDERR_KEPT_BYTES: usize = 128 * 1024;
const POLL_INTERVAL: Duration = Duration::from_millis(20);
/// How often [`Lunard::wait_for_log`] rereads the log.
const LOG_POLL_INTERVAL: Duration = Duration::from_millis(100);

/// What the ready line announces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadyLine {
    /// The iSCSI portal lunard listens on.
    pub iscsi: SocketAddr,
    /// The JSON-RPC unix socket.
    pub rpc: PathBuf,
}

/// Parses `lunard ready: iscsi=<ip:port> rpc=<path>`; `None` for any other line.
pub fn parse_ready_line(line: &str) -> Option<ReadyLine> {
    let rest = line.trim().strip_prefix(READY_PREFIX)?;
    let mut iscsi = None;
    let mut rpc = None;
    for field in rest.split_whitespace() {
        if let Some(addr) = field.strip_prefix("iscsi=") {
            iscsi = addr.parse::<SocketAddr>().ok();
        } else if let Some(path) = field.strip_prefix("rpc=") {
            if !path.is_empty() {
                rpc = Some(PathBuf::from(path));
            }
        }
    }
    Some(ReadyLine {
        iscsi: iscsi?,
        rpc: rpc?,
    })
}

/// How to start lunard.
#[derive(Debug, Clone, Default)]
pub struct DaemonOptions {
    /// Pass `--demo`.
    pub demo: bool,
    /// Extra arguments appended to the command line.
    pub extra_args: Vec<String>,
    /// Start lunard with this RLIMIT_NOFILE (soft and hard), through util-linux `prlimit`,
    /// which sets it and then becomes lunard (same process).
    pub open_files_limit: Option<u64>,
}

/// How a stop went.
#[derive(Debug, Clone, Copy)]
pub struct StopOutcome {
    /// The exit status, if the process could be reaped.
    pub status: Option<ExitStatus>,
    /// True if SIGTERM was not enough within [`STOP_TIMEOUT`] and SIGKILL was sent.
    pub forced: bool,
}

/// A running lunard. Dropping it kills the process (SIGKILL).
pub struct Lunard {
    child: Option<Child>,
    state_dir: PathBuf,
    ready: ReadyLine,
    stderr: Arc<Mutex<Vec<u8>>>,
    stdout: Arc<Mutex<Vec<u8>>>,
    /// All of stderr, never truncated.
    log: tempfile::NamedTempFile,
}

impl Lunard {
    /// Starts lunard with its state in `state_dir`; panics (with its stderr) if it is not ready in time.
    pub fn start(state_dir: &Path) -> Lunard {
        Self::start_with(state_dir, &DaemonOptions::default())
    }

    /// Like [`Lunard::start`], with options.
    pub fn start_with(state_dir: &Path, options: &DaemonOptions) -> Lunard {
        match Self::try_start(state_dir, options) {
            Ok(daemon) => daemon,
            Err(message) => panic!("{message}"),
        }
    }

    /// Starts lunard and waits for its ready line; the error explains what happened, with stderr.
    pub fn try_start(state_dir: &Path, options: &DaemonOptions) -> Result<Lunard, String> {
        let rpc_socket = state_dir.join("rpc.sock");
        let mut cmd = match options.open_files_limit {
            Some(limit) => {
                let mut cmd = Command::new("prlimit");
                cmd.arg(format!("--nofile={limit}:{limit}"))
                    .arg("--")
                    .arg(lunard_bin());
                cmd
            }
            None => Command::new(lunard_bin()),
        };
        cmd.arg("--state-dir")
            .arg(state_dir)
            .arg("--rpc-socket")
            .arg(&rpc_socket)
            .args([
                "--listen",
                "127.0.0.1:0",
                "--cores",
                "1",
                "--poll-mode",
                "adaptive",
            ]);
        if options.demo {
            cmd.arg("--demo");
        }
        cmd.args(&options.extra_args)
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let command_line = crate::process::describe_command(&cmd);
        let log = tempfile::Builder::new()
            .prefix("lunard-stderr-")
            .suffix(".log")
            .tempfile()
            .map_err(|err| format!("cannot create a file for lunard's log: {err}"))?;
        let log_writer = log
            .as_file()
            .try_clone()
            .map_err(|err| format!("cannot reopen lunard's log file: {err}"))?;
        let mut child = cmd
            .spawn()
            .map_err(|err| format!("cannot start `{command_line}`: {err}"))?;

        let stderr = Arc::new(Mutex::new(Vec::new()));
        let stdout = Arc::new(Mutex::new(Vec::new()));
        if let Some(pipe) = child.stderr.take() {
            spawn_stderr_collector(pipe, Arc::clone(&stderr), log_writer);
        }
        let (ready_tx, ready_rx) = mpsc::channel();
        if let Some(pipe) = child.stdout.take() {
            spawn_stdout_watcher(pipe, Arc::clone(&stdout), ready_tx);
        }

        let mut daemon = Lunard {
            child: Some(child),
            state_dir: state_dir.to_path_buf(),
            ready: ReadyLine {
                iscsi: SocketAddr::from(([127, 0, 0, 1], 0)),
                rpc: rpc_socket,
            },
            stderr,
            stdout,
            log,
        };
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            match ready_rx.recv_timeout(POLL_INTERVAL) {
                Ok(ready) => {
                    daemon.ready = ready;
                    return Ok(daemon);
                }
                Err(RecvTimeoutError::Disconnected) => {
                    // stdout closed without a ready line: give the process a moment to exit.
                    let exited = daemon.wait_exit(Duration::from_secs(2));
                    let how = match exited {
                        Some(status) => format!("exited ({status})"),
                        None => "closed its stdout".to_string(),
                    };
                    return Err(daemon.failure(&format!(
                        "`{command_line}` {how} without printing `{READY_PREFIX} ...`"
                    )));
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
            if let Some(status) = daemon.exit_status() {
                return Err(daemon.failure(&format!(
                    "`{command_line}` exited ({status}) without printing `{READY_PREFIX} ...`"
                )));
            }
            if Instant::now() >= deadline {
                return Err(daemon.failure(&format!(
                    "`{command_line}` did not print its ready line within {READY_TIMEOUT:?}"
                )));
            }
        }
    }

    /// The iSCSI portal address (`127.0.0.1:<port>`).
    pub fn iscsi_addr(&self) -> SocketAddr {
        self.ready.iscsi
    }

    /// The portal as libiscsi writes it: `127.0.0.1:<port>`.
    pub fn portal(&self) -> String {
        self.ready.iscsi.to_string()
    }

    /// `iscsi://<portal>/<iqn>/<lun>`.
    pub fn url(&self, iqn: &str, lun: u32) -> String {
        crate::libiscsi::iscsi_url(&self.portal(), iqn, lun)
    }

    /// The JSON-RPC socket announced in the ready line.
    pub fn rpc_socket(&self) -> &Path {
        &self.ready.rpc
    }

    /// The state directory lunard was started with.
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// Everything lunard wrote on stdout so far.
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout.lock().unwrap_or_else(PoisonError::into_inner))
            .into_owned()
    }

    /// The most recent part of what lunard wrote on stderr.
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap_or_else(PoisonError::into_inner))
            .into_owned()
    }

    /// Everything lunard wrote on stderr so far, from its start (not truncated).
    pub fn log_text(&self) -> String {
        match std::fs::read(self.log.path()) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            // The file is ours and lives as long as `self`; fall back to the kept tail.
            Err(_) => self.stderr_text(),
        }
    }

    /// The lines of lunard's stderr (from its start) for which `wanted` holds.
    pub fn log_lines(&self, wanted: impl Fn(&str) -> bool) -> Vec<String> {
        self.log_text()
            .lines()
            .filter(|line| wanted(line))
            .map(str::to_string)
            .collect()
    }

    /// Waits until `done` holds for lunard's log (its whole stderr so far), polling until
    /// `timeout`; returns whether it did.
    pub fn wait_for_log(&self, timeout: Duration, done: impl Fn(&str) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if done(&self.log_text()) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(LOG_POLL_INTERVAL);
        }
    }

    /// The process id, while lunard runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// lunard's resident memory and its peak (`/proc/<pid>/status`).
    pub fn memory(&self) -> Option<Memory> {
        procfs::memory(self.pid()?)
    }

    /// How many file descriptors lunard has open (`/proc/<pid>/fd`).
    pub fn open_fds(&self) -> Option<usize> {
        procfs::open_fds(self.pid()?)
    }

    /// `message`, followed by lunard's stdout and stderr: the text for a failing assertion.
    pub fn failure(&self, message: &str) -> String {
        format!(
            "{message}\n--- lunard stdout ---\n{}--- lunard stderr (last {} KiB at most) ---\n{}--- end of lunard output ---",
            self.stdout_text(),
            STDERR_KEPT_BYTES / 1024,
            self.stderr_text()
        )
    }

    /// A new connection to the RPC socket; panics with lunard's stderr if it cannot connect.
    pub fn rpc(&self) -> RpcClient {
        match RpcClient::connect(self.rpc_socket()) {
            Ok(client) => client,
            Err(err) => panic!(
                "{}",
                self.failure(&format!(
                    "cannot connect to {}: {err}",
                    self.rpc_socket().display()
                ))
            ),
        }
    }

    /// One JSON-RPC call on a fresh connection.
    pub fn try_call(&self, method: &str, params: Value) -> Result<Value, RpcError> {
        self.rpc().call(method, params)
    }

    /// One JSON-RPC call that must succeed; panics with the error and lunard's stderr otherwise.
    pub fn call(&self, method: &str, params: Value) -> Value {
        match self.try_call(method, params.clone()) {
            Ok(result) => result,
            Err(err) => panic!(
                "{}",
                self.failure(&format!("RPC {method} {params} failed: {err}"))
            ),
        }
    }

    /// The exit status if the process has exited.
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|child| child.try_wait().ok().flatten())
    }

    fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.exit_status() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(POLL_INTERVAL);
        }
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        self.child.is_some() && self.exit_status().is_none()
    }

    /// SIGTERM, then SIGKILL if it has not exited within [`STOP_TIMEOUT`].
    pub fn stop(&mut self) -> StopOutcome {
        let Some(mut child) = self.child.take() else {
            return StopOutcome {
                status: None,
                forced: false,
            };
        };
        if let Ok(pid) = i32::try_from(child.id()) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            match child.try_wait() {
                Ok(Some(status)) => {
                    return StopOutcome {
                        status: Some(status),
                        forced: false,
                    }
                }
                Ok(None) => thread::sleep(POLL_INTERVAL),
                Err(_) => break,
            }
        }
        let _ = child.kill();
        StopOutcome {
            status: child.wait().ok(),
            forced: true,
        }
    }

    /// `kill -9`: no chance to clean up, as in a crash.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Lunard {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn spawn_stderr_collector(mut pipe: ChildStderr, sink: Arc<Mutex<Vec<u8>>>, mut log: File) {
    thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        loop {
            match pipe.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(len) => {
                    // A failed write only loses log lines; the kept tail below still has them.
                    let _ = log.write_all(&chunk[..len]);
                    let mut kept = sink.lock().unwrap_or_else(PoisonError::into_inner);
                    kept.extend_from_slice(&chunk[..len]);
                    if kept.len() > STDERR_KEPT_BYTES {
                        let excess = kept.len() - STDERR_KEPT_BYTES;
                        kept.drain(..excess);
                    }
                }
            }
        }
    });
}

fn spawn_stdout_watcher(
    pipe: ChildStdout,
    sink: Arc<Mutex<Vec<u8>>>,
    ready_tx: mpsc::Sender<ReadyLine>,
) {
    thread::spawn(move || {
        let mut reader = BufReader::new(pipe);
        let mut line = String::new();
        let mut announced = false;
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    sink.lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .extend_from_slice(line.as_bytes());
                    if !announced {
                        if let Some(ready) = parse_ready_line(&line) {
                            announced = true;
                            let _ = ready_tx.send(ready);
                        }
                    }
                }
            }
        }
        // Dropping the sender tells a waiting `try_start` that stdout closed.
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_the_ready_line() {
        let ready = parse_ready_line("lunard ready: iscsi=127.0.0.1:41234 rpc=/tmp/x/rpc.sock\n")
            .expect("a well-formed ready line parses");
        assert_eq!(
            ready.iscsi,
            "127.0.0.1:41234"
                .parse::<SocketAddr>()
                .expect("valid address")
        );
        assert_eq!(ready.rpc, PathBuf::from("/tmp/x/rpc.sock"));
    }

    #[test]
    fn field_order_does_not_matter() {
        let ready = parse_ready_line("lunard ready: rpc=/r.sock iscsi=[::1]:3260").expect("parses");
        assert_eq!(ready.iscsi.port(), 3260);
        assert_eq!(ready.rpc, PathBuf::from("/r.sock"));
    }

    #[test]
    fn rejects_other_lines() {
        assert_eq!(parse_ready_line("starting lunard"), None);
        assert_eq!(
            parse_ready_line("lunard ready: iscsi=nonsense rpc=/r.sock"),
            None
        );
        assert_eq!(parse_ready_line("lunard ready: iscsi=127.0.0.1:1"), None);
        assert_eq!(
            parse_ready_line("lunard ready: rpc= iscsi=127.0.0.1:1"),
            None
        );
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_lines(line in ".*") {
            let _ = parse_ready_line(&line);
        }

        #[test]
        fn round_trips_any_port_and_path(port in 1u16.., path in "/[a-z0-9/._-]{1,40}") {
            let line = format!("lunard ready: iscsi=127.0.0.1:{port} rpc={path}");
            let ready = parse_ready_line(&line).expect("well-formed line parses");
            prop_assert_eq!(ready.iscsi.port(), port);
            prop_assert_eq!(ready.rpc, PathBuf::from(path));
        }
    }
}
