//! The RPC socket: binding it (mode 0600, stale socket detection), accepting clients (a thread
//! each, bounded in number), and the control loop that executes their calls one at a time and
//! answers the data plane's requests in between.

use std::io::{self, BufReader, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Duration;

use lunar_api::rpc::{Response, RpcError};
use lunar_api::{code, MAX_REQUEST_LINE_BYTES};
use nix::sys::stat::{umask, Mode};
use serde_json::Value;

use crate::controller::Controller;
use crate::dispatch::dispatch;
use crate::rpc::{encode_responses, parse_line, read_line_bounded, Call, Entry, LineRead};

/// Most clients connected at once; more are told so and disconnected.
pub const MAX_RPC_CLIENTS: usize = 64;
/// A client that does not take its answer within this time is disconnected.
pub const CLIENT_WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// What client threads send the control loop.
pub enum ControlMsg {
    Call {
        call: Call,
        reply: mpsc::Sender<Result<Value, RpcError>>,
    },
    /// A reactor left a message for the control thread (its doorbell rang).
    DataPlane,
    Shutdown,
}

#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error("another lunard is already serving {0}")]
    InUse(PathBuf),
    #[error("{0} exists and is not a socket")]
    NotASocket(PathBuf),
    #[error("cannot bind RPC socket {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

/// Removes the socket file when dropped, if it is still the one we created.
#[derive(Debug)]
pub struct SocketFile {
    path: PathBuf,
    identity: (u64, u64),
}

impl SocketFile {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        if let Ok(meta) = std::fs::symlink_metadata(&self.path) {
            if (meta.dev(), meta.ino()) == self.identity {
                let _ = std::fs::remove_file(&self.path);
            }
        }
    }
}

/// Bind the RPC socket at `path` with mode 0600. A leftover socket nobody listens on is
/// replaced; a live one is an error.
pub fn bind(path: &Path) -> Result<(UnixListener, SocketFile), BindError> {
    let io_error = |source| BindError::Io {
        path: path.to_path_buf(),
        source,
    };
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => match UnixStream::connect(path) {
            Ok(_) => return Err(BindError::InUse(path.to_path_buf())),
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                tracing::info!("removing stale socket {}", path.display());
                std::fs::remove_file(path).map_err(io_error)?;
            }
            Err(e) => return Err(io_error(e)),
        },
        Ok(_) => return Err(BindError::NotASocket(path.to_path_buf())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_error(e)),
    }
    // Created with mode 0600 from the start: no window in which others may connect.
    let previous = umask(Mode::from_bits_truncate(0o177));
    let bound = UnixListener::bind(path);
    umask(previous);
    let listener = bound.map_err(io_error)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io_error)?;
    let meta = std::fs::symlink_metadata(path).map_err(io_error)?;
    Ok((
        listener,
        SocketFile {
            path: path.to_path_buf(),
            identity: (meta.dev(), meta.ino()),
        },
    ))
}

/// Accept clients on a thread of their own; each client gets a thread.
pub fn spawn_acceptor(
    listener: UnixListener,
    control: mpsc::Sender<ControlMsg>,
) -> io::Result<thread::JoinHandle<()>> {
    thread::Builder::new()
        .name("rpc-accept".to_string())
        .spawn(move || accept_loop(listener, control))
}

fn accept_loop(listener: UnixListener, control: mpsc::Sender<ControlMsg>) {
    let clients = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming() {
        let mut stream = match stream {
            Ok(stream) => stream,
            Err(e) => {
                // EMFILE and friends pass; do not spin on them.
                tracing::warn!("accepting an RPC client failed: {e}");
                thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        if clients.fetch_add(1, Ordering::SeqCst) >= MAX_RPC_CLIENTS {
            clients.fetch_sub(1, Ordering::SeqCst);
            tracing::warn!("refusing an RPC client: {MAX_RPC_CLIENTS} already connected");
            let _ = stream.set_write_timeout(Some(CLIENT_WRITE_TIMEOUT));
            let busy = Response::failure(
                Value::Null,
                RpcError::new(
                    code::INTERNAL_ERROR,
                    format!("too many clients ({MAX_RPC_CLIENTS}); try again later"),
                ),
            );
            if let Some(bytes) = encode_responses(false, vec![busy]) {
                let _ = stream.write_all(&bytes);
            }
            continue;
        }
        let control = control.clone();
        let counter = clients.clone();
        let spawned = thread::Builder::new()
            .name("rpc-client".to_string())
            .spawn(move || {
                if let Err(e) = serve_client(stream, &control) {
                    tracing::debug!("RPC client: {e}");
                }
                counter.fetch_sub(1, Ordering::SeqCst);
            });
        if let Err(e) = spawned {
            clients.fetch_sub(1, Ordering::SeqCst);
            tracing::warn!("cannot start a thread for an RPC client: {e}");
        }
    }
}

/// Serve one client until it disconnects or breaks the framing.
pub fn serve_client(stream: UnixStream, control: &mpsc::Sender<ControlMsg>) -> io::Result<()> {
    stream.set_write_timeout(Some(CLIENT_WRITE_TIMEOUT))?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::with_capacity(64 * 1024, stream);
    let mut line = Vec::new();
    loop {
        match read_line_bounded(&mut reader, &mut line, MAX_REQUEST_LINE_BYTES)? {
            LineRead::Eof => return Ok(()),
            LineRead::TooLong => {
                let error = Response::failure(
                    Value::Null,
                    RpcError::new(
                        code::INVALID_REQUEST,
                        format!(
                            "request line longer than {MAX_REQUEST_LINE_BYTES} bytes; closing the connection"
                        ),
                    ),
                );
                if let Some(bytes) = encode_responses(false, vec![error]) {
                    writer.write_all(&bytes)?;
                }
                return Ok(());
            }
            LineRead::Line => {
                let Some(parsed) = parse_line(&line) else {
                    continue;
                };
                let mut responses = Vec::with_capacity(parsed.entries.len());
                for entry in parsed.entries {
                    match entry {
                        Entry::Invalid(response) => responses.push(response),
                        Entry::Call(call) => {
                            let id = call.id.clone();
                            let result = execute(control, call);
                            if let Some(id) = id {
                                responses.push(match result {
                                    Ok(value) => Response::success(id, value),
                                    Err(error) => Response::failure(id, error),
                                });
                            }
                        }
                    }
                }
                if let Some(bytes) = encode_responses(parsed.batch, responses) {
                    writer.write_all(&bytes)?;
                }
            }
        }
    }
}

fn execute(control: &mpsc::Sender<ControlMsg>, call: Call) -> Result<Value, RpcError> {
    let shutting_down = || RpcError::new(code::SHUTTING_DOWN, "lunard is shutting down");
    let (reply, answer) = mpsc::channel();
    control
        .send(ControlMsg::Call { call, reply })
        .map_err(|_| shutting_down())?;
    answer.recv().map_err(|_| shutting_down())?
}

/// How long the control loop waits for a call or a reactor's ring before it looks at the data
/// plane again, while it waits for something no reactor rings for (see
/// [`Controller::waits_without_doorbell`]).
pub const DATA_PLANE_POLL_INTERVAL: Duration = Duration::from_millis(1);
/// How long the control loop sleeps otherwise: reactors ring for every message they send, so
/// this only bounds how long a lost wake-up could go unnoticed.
pub const IDLE_WAIT: Duration = Duration::from_millis(100);

/// Execute calls one at a time until told to shut down (or every sender is gone), answering
/// the data plane's requests between calls and whenever a reactor rings, and advancing
/// background tasks in between. It does not poll while idle: on a machine where it shares a
/// core with a busy-polling reactor, each look would preempt the reactor.
pub fn control_loop(controller: &mut Controller, messages: &mpsc::Receiver<ControlMsg>) {
    loop {
        controller.serve_data_plane();
        // Background copying runs between calls; while it has work the loop does not sleep.
        let busy = controller.run_tasks();
        let wait = if busy {
            Duration::ZERO
        } else if controller.waits_without_doorbell() {
            DATA_PLANE_POLL_INTERVAL
        } else {
            IDLE_WAIT
        };
        let message = match messages.recv_timeout(wait) {
            Ok(message) => message,
            Err(mpsc::RecvTimeoutError::Timeout) => continue,
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        };
        match message {
            ControlMsg::Call { call, reply } => {
                let result = dispatch(controller, &call.method, call.params);
                match &result {
                    Ok(_) => tracing::debug!(method = %call.method, "rpc ok"),
                    Err(e) => {
                        tracing::info!(method = %call.method, code = e.code, "rpc failed: {}", e.message)
                    }
                }
                let _ = reply.send(result);
            }
            ControlMsg::DataPlane => {}
            ControlMsg::Shutdown => return,
        }
    }
}

#[cfg(test)]
mod tests;
