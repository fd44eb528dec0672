//! Start-up, serving and shutdown of `lunard`.
//!
//! Order: state directory (created, locked) -> configuration loaded -> devices re-opened (a
//! device that cannot be opened stops the start, naming it) -> RPC socket bound -> data plane
//! started -> configuration published -> `--demo` objects ensured -> ready line on stdout ->
//! serve until SIGINT/SIGTERM -> data plane stopped, socket removed.

use std::fs::{DirBuilder, File, OpenOptions, TryLockError};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use lunar_reactor::{DataPlane, DataPlaneConfig, Doorbell, StartError};

use crate::adapter::BackendOpener;
use crate::args::Args;
use crate::controller::{check_config, open_devices, About, Controller, Parts};
use crate::demo;
use crate::error::ControlError;
use crate::server::{self, BindError, ControlMsg};
use crate::signals::Signals;
use crate::store::{FileStore, LoadSource, Persist, StoreError, STATE_FILE};

/// Lock file in the state directory: one lunard per state directory.
pub const LOCK_FILE: &str = "lunard.lock";

/// Why lunard could not start or keep running. Shown as one line.
#[derive(Debug, thiserror::Error)]
pub enum FatalError {
    #[error("cannot create state directory {path}: {source}{hint}")]
    StateDir {
        path: PathBuf,
        source: io::Error,
        hint: &'static str,
    },
    #[error("cannot lock {path}: {source}")]
    Lock { path: PathBuf, source: io::Error },
    #[error("state directory {0} is in use by another lunard")]
    Locked(PathBuf),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Restore(ControlError),
    #[error("configuration in {path} is not valid: {source}")]
    BadConfig { path: PathBuf, source: ControlError },
    #[error("{0}")]
    Bind(#[from] BindError),
    #[error("{0}")]
    Start(#[from] StartError),
    #[error("{0}")]
    Demo(#[from] demo::DemoError),
    #[error("cannot start the {what} thread: {source}")]
    Thread {
        what: &'static str,
        source: io::Error,
    },
}

/// Run lunard until a termination signal. `signals` must have been blocked before any thread
/// was started.
pub fn run(args: &Args, signals: Signals) -> Result<(), FatalError> {
    let state_dir = prepare_state_dir(&args.state_dir)?;
    let _lock = lock_state_dir(&state_dir)?;
    let socket_path =
        std::path::absolute(args.socket_path()).unwrap_or_else(|_| args.socket_path());

    let mut store = FileStore::new(&state_dir);
    let loaded = store.load()?;
    for warning in &loaded.warnings {
        tracing::warn!("{warning}");
    }
    if loaded.source == LoadSource::Previous {
        store.save(&loaded.config)?;
    }
    let config = loaded.config;
    tracing::info!(
        "configuration: {} devices, {} volumes, {} targets",
        config.devices.len(),
        config.volumes.len(),
        config.targets.len()
    );
    let devices = open_devices(&config, &BackendOpener).map_err(FatalError::Restore)?;
    check_config(&config, &devices).map_err(|source| FatalError::BadConfig {
        path: store.path(STATE_FILE),
        source,
    })?;

    let (listener, socket_file) = server::bind(&socket_path)?;
    let cores = args.core_ids();
    let (control, messages) = mpsc::channel();
    let bell_channel = control.clone();
    let plane = DataPlane::start(DataPlaneConfig {
        cores: cores.clone(),
        poll_mode: args.poll_mode.mode(),
        listen: args.listen,
        connection: Default::default(),
        control_bell: Doorbell::new(move || {
            let _ = bell_channel.send(ControlMsg::DataPlane);
        }),
    })?;
    let listen = plane.listen_addr();
    let mut controller = Controller::new(
        config,
        devices,
        Parts {
            opener: Box::new(BackendOpener),
            publisher: Box::new(plane),
            store: Box::new(store),
            about: About {
                iscsi_listen: listen.to_string(),
                rpc_socket: socket_path.display().to_string(),
                state_dir: state_dir.display().to_string(),
                cores,
                poll_mode: args.poll_mode.name().to_string(),
            },
        },
    )
    .map_err(FatalError::Restore)?;
    if args.demo {
        if let Err(e) = demo::ensure(&mut controller, &state_dir) {
            controller.shutdown();
            return Err(e.into());
        }
    }

    if let Err(e) = spawn_signal_thread(signals, control.clone())
        .and_then(|_| server::spawn_acceptor(listener, control))
    {
        controller.shutdown();
        return Err(FatalError::Thread {
            what: "RPC",
            source: e,
        });
    }

    let mut out = io::stdout().lock();
    let _ = writeln!(
        out,
        "lunard ready: iscsi={listen} rpc={}",
        socket_path.display()
    );
    if args.demo {
        let _ = writeln!(out, "{}", demo::banner(listen, &socket_path));
    }
    let _ = out.flush();
    drop(out);
    tracing::info!(
        "serving iSCSI on {listen}, RPC on {}, generation {}",
        socket_path.display(),
        controller.generation()
    );

    server::control_loop(&mut controller, &messages);
    tracing::info!("shutting down");
    drop(socket_file);
    start_shutdown_watchdog();
    controller.shutdown();
    tracing::info!("stopped");
    Ok(())
}

/// How long stopping the data plane may take before lunard exits anyway.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(15);

/// Exit the process if the shutdown has not finished within [`SHUTDOWN_GRACE`].
fn start_shutdown_watchdog() {
    let spawned = thread::Builder::new()
        .name("shutdown-watchdog".to_string())
        .spawn(|| {
            thread::sleep(SHUTDOWN_GRACE);
            eprintln!(
                "lunard: the data plane did not stop within {} s; exiting anyway",
                SHUTDOWN_GRACE.as_secs()
            );
            std::process::exit(1);
        });
    if let Err(e) = spawned {
        tracing::warn!("cannot start the shutdown watchdog: {e}");
    }
}

/// Create the state directory (mode 0700 when new) and return its absolute path.
fn prepare_state_dir(dir: &Path) -> Result<PathBuf, FatalError> {
    let error = |source: io::Error| {
        let hint = if source.kind() == io::ErrorKind::PermissionDenied {
            " (run as root, or pass --state-dir with a directory you own)"
        } else {
            ""
        };
        FatalError::StateDir {
            path: dir.to_path_buf(),
            source,
            hint,
        }
    };
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(error)?;
    std::path::absolute(dir).map_err(error)
}

/// Hold an exclusive lock on `<dir>/lunard.lock` for the daemon's lifetime.
fn lock_state_dir(dir: &Path) -> Result<File, FatalError> {
    let path = dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .map_err(|source| FatalError::Lock {
            path: path.clone(),
            source,
        })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(FatalError::Locked(dir.to_path_buf())),
        Err(TryLockError::Error(source)) => Err(FatalError::Lock { path, source }),
    }
}

fn spawn_signal_thread(
    signals: Signals,
    control: mpsc::Sender<ControlMsg>,
) -> io::Result<thread::JoinHandle<()>> {
    thread::Builder::new()
        .name("signals".to_string())
        .spawn(move || {
            match signals.wait() {
                Ok(signal) => tracing::info!("{signal} received"),
                Err(e) => {
                    tracing::error!("waiting for signals failed: {e}");
                    return;
                }
            }
            let _ = control.send(ControlMsg::Shutdown);
            if let Ok(signal) = signals.wait() {
                eprintln!("lunard: {signal} received again, exiting now");
                std::process::exit(1);
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_dir_is_created_private_and_locked_once() {
        let parent = tempfile::tempdir().expect("tempdir");
        let dir = parent.path().join("a/b");
        let absolute = prepare_state_dir(&dir).expect("create");
        assert!(absolute.is_absolute());
        let mode = std::fs::metadata(&dir).expect("meta").permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o700
        );
        let first = lock_state_dir(&absolute).expect("lock");
        let second = lock_state_dir(&absolute).expect_err("second lock");
        assert!(
            second.to_string().contains("in use by another lunard"),
            "{second}"
        );
        drop(first);
        lock_state_dir(&absolute).expect("lock after release");
    }

    #[test]
    fn state_dir_error_names_the_path() {
        let parent = tempfile::tempdir().expect("tempdir");
        let file = parent.path().join("file");
        std::fs::write(&file, b"x").expect("write");
        let error = prepare_state_dir(&file.join("sub")).expect_err("under a file");
        assert!(
            error.to_string().contains("cannot create state directory"),
            "{error}"
        );
        assert!(error.to_string().contains("file/sub"), "{error}");
    }
}
