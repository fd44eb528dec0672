//! A well-behaved initiator running in the background while a test attacks lunard on other
//! connections: one session that writes a fresh pattern to its own range of blocks, reads it
//! back and compares, round after round, until stopped. The test asks it for progress ("N
//! more verified rounds") after the attack; any error or mismatch is kept and reported.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::initiator::{pattern, BlockClient};

/// What the client works on: its own blocks, which nothing else writes.
#[derive(Debug, Clone)]
pub struct GoodClientSpec {
    /// The portal.
    pub portal: SocketAddr,
    /// The target.
    pub iqn: String,
    /// The LUN.
    pub lun: u16,
    /// First block of its range.
    pub lba: u64,
    /// Blocks written and read per round.
    pub blocks: u32,
}

#[derive(Debug, Default)]
struct Progress {
    /// The client's local port once logged in (lunard sees it as the peer's).
    port: Option<u16>,
    verified_rounds: u64,
    error: Option<String>,
    stopped: bool,
}

#[derive(Debug, Default)]
struct Shared {
    progress: Mutex<Progress>,
    changed: Condvar,
}

impl Shared {
    fn update(&self, change: impl FnOnce(&mut Progress)) {
        change(&mut self.progress.lock().unwrap_or_else(PoisonError::into_inner));
        self.changed.notify_all();
    }
}

/// The background client. Dropping it stops it.
pub struct GoodClient {
    spec: GoodClientSpec,
    stop: Arc<AtomicBool>,
    shared: Arc<Shared>,
    worker: Option<JoinHandle<()>>,
}

impl GoodClient {
    /// Logs in (in the background) and starts the write-read-compare rounds.
    pub fn start(spec: GoodClientSpec) -> GoodClient {
        let stop = Arc::new(AtomicBool::new(false));
        let shared = Arc::new(Shared::default());
        let worker = {
            let (spec, stop, shared) = (spec.clone(), Arc::clone(&stop), Arc::clone(&shared));
            thread::spawn(move || {
                let outcome = run(&spec, &stop, &shared);
                shared.update(|p| {
                    p.stopped = true;
                    if let Err(error) = outcome {
                        p.error.get_or_insert(error);
                    }
                });
            })
        };
        GoodClient {
            spec,
            stop,
            shared,
            worker: Some(worker),
        }
    }

    /// The local port of the client's connection, once it logged in.
    pub fn port(&self) -> Option<u16> {
        self.lock().port
    }

    /// Rounds written, read back and found equal so far.
    pub fn verified_rounds(&self) -> u64 {
        self.lock().verified_rounds
    }

    /// Waits until `more` rounds beyond the current count are verified. Fails with the
    /// client's error if it met one, or if `timeout` (a guard against hangs, not a performance
    /// bound) passes first.
    pub fn wait_for_rounds(&self, more: u64, timeout: Duration) -> Result<u64, String> {
        let deadline = Instant::now() + timeout;
        let mut progress = self.lock();
        let target = progress.verified_rounds + more;
        loop {
            if let Some(error) = &progress.error {
                return Err(format!(
                    "the well-behaved client failed after {} verified rounds: {error}",
                    progress.verified_rounds
                ));
            }
            if progress.verified_rounds >= target {
                return Ok(progress.verified_rounds);
            }
            if progress.stopped {
                return Err("the well-behaved client stopped".to_string());
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(format!(
                    "the well-behaved client verified {} rounds, {more} more did not complete \
                     within {timeout:?} (session {} -> {})",
                    progress.verified_rounds, self.spec.iqn, self.spec.portal
                ));
            }
            progress = self
                .shared
                .changed
                .wait_timeout(progress, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Stops the client (it logs out) and returns its verified rounds, or its error.
    pub fn finish(mut self) -> Result<u64, String> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(worker) = self.worker.take() {
            if worker.join().is_err() {
                return Err("the well-behaved client panicked".to_string());
            }
        }
        let progress = self.lock();
        match &progress.error {
            Some(error) => Err(format!(
                "the well-behaved client failed after {} verified rounds: {error}",
                progress.verified_rounds
            )),
            None => Ok(progress.verified_rounds),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Progress> {
        self.shared
            .progress
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for GoodClient {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn run(spec: &GoodClientSpec, stop: &AtomicBool, shared: &Shared) -> Result<(), String> {
    let mut client = BlockClient::connect(spec.portal, &spec.iqn, spec.lun)
        .map_err(|err| format!("login: {err}"))?;
    let port = client.session().local_addr().map(|addr| addr.port());
    shared.update(|p| p.port = port);
    let block_len = client.block_len;
    let mut round = 0u64;
    while !stop.load(Ordering::Relaxed) {
        round += 1;
        let data = pattern(round, spec.lba, spec.blocks, block_len);
        let fua = round.is_multiple_of(2);
        client
            .write(spec.lba, &data, fua)
            .map_err(|err| format!("round {round}: write at LBA {}: {err}", spec.lba))?;
        let back = client
            .read(spec.lba, spec.blocks)
            .map_err(|err| format!("round {round}: read at LBA {}: {err}", spec.lba))?;
        if back != data {
            let first = back.iter().zip(&data).position(|(a, b)| a != b);
            return Err(format!(
                "round {round}: the {} bytes read back at LBA {} differ from those written \
                 (first difference at byte {first:?})",
                data.len(),
                spec.lba
            ));
        }
        shared.update(|p| p.verified_rounds += 1);
    }
    client.logout().map_err(|err| format!("logout: {err}"))
}
