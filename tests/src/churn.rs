//! A client that keeps writing and reading a whole LUN in the background while a test changes
//! the volume underneath (a leg added or removed, a migration, a snapshot): every write puts a
//! fresh pattern on random blocks and is remembered block by block, every read is checked
//! against what was last written there, and every command's latency is kept so a test can
//! report the pause a change caused. [`verify_lun`] then checks every block of the LUN.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::initiator::{pattern, BlockClient};

/// The seed of a block never written (it reads as zeros).
pub const NEVER_WRITTEN: u64 = 0;

/// Largest write or read of the churn, in blocks.
const MAX_BLOCKS: u64 = 64;

/// What the churn saw.
#[derive(Debug, Clone, Default)]
pub struct ChurnReport {
    pub writes: u64,
    /// Every acknowledged write in order: `(lba, blocks, seed)`.
    pub log: Vec<(u64, u64, u64)>,
    pub reads: u64,
    /// Per block: the seed of the pattern last written there ([`NEVER_WRITTEN`]: zeros).
    pub model: Vec<u64>,
    /// Every command's latency, in completion order.
    pub latencies: Vec<Duration>,
    /// A write in flight when the churn stopped on an error (the target went away): its
    /// blocks may hold the old data or the new (`(lba, blocks, seed)`).
    pub uncertain: Option<(u64, u64, u64)>,
    /// The error that stopped the churn, if one did.
    pub error: Option<String>,
}

impl ChurnReport {
    /// The `q` quantile (0..=1) of the command latencies.
    pub fn latency_quantile(&self, q: f64) -> Duration {
        let mut sorted = self.latencies.clone();
        sorted.sort_unstable();
        if sorted.is_empty() {
            return Duration::ZERO;
        }
        let at = ((sorted.len() - 1) as f64 * q).round() as usize;
        sorted[at.min(sorted.len() - 1)]
    }

    pub fn latency_max(&self) -> Duration {
        self.latencies.iter().copied().max().unwrap_or_default()
    }
}

/// The background client. Stop it with [`Churn::finish`].
pub struct Churn {
    stop: Arc<AtomicBool>,
    progress: Arc<Mutex<(u64, Option<String>)>>,
    worker: Option<JoinHandle<ChurnReport>>,
}

/// xorshift64: cheap, deterministic, good enough for picking blocks.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

impl Churn {
    /// Log in to LUN `lun` of `iqn` at `portal` and start churning; `model` is what the LUN
    /// holds now (per block seed, as [`ChurnReport::model`]), empty when it was never written.
    pub fn start(portal: SocketAddr, iqn: &str, lun: u16, seed: u64, model: Vec<u64>) -> Churn {
        let stop = Arc::new(AtomicBool::new(false));
        let progress = Arc::new(Mutex::new((0u64, None)));
        let iqn = iqn.to_string();
        let worker = {
            let (stop, progress) = (Arc::clone(&stop), Arc::clone(&progress));
            thread::spawn(move || {
                let report = churn(portal, &iqn, lun, seed, model, &stop, &progress);
                if let Some(e) = &report.error {
                    progress
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .1
                        .get_or_insert(e.clone());
                }
                report
            })
        };
        Churn {
            stop,
            progress,
            worker: Some(worker),
        }
    }

    /// Commands completed so far (an error, if the churn met one).
    pub fn commands(&self) -> Result<u64, String> {
        let progress = self.progress.lock().unwrap_or_else(PoisonError::into_inner);
        match &progress.1 {
            Some(error) => Err(error.clone()),
            None => Ok(progress.0),
        }
    }

    /// Wait until `more` commands beyond the current count completed (or the churn failed).
    pub fn wait_for(&self, more: u64, timeout: Duration) -> Result<(), String> {
        let target = self.commands()? + more;
        let deadline = Instant::now() + timeout;
        while self.commands()? < target {
            if Instant::now() > deadline {
                return Err(format!(
                    "the churn did not complete {more} commands in {timeout:?}"
                ));
            }
            thread::sleep(Duration::from_millis(5));
        }
        Ok(())
    }

    /// Stop and return what the churn did, or the first error it met.
    pub fn finish(self) -> Result<ChurnReport, String> {
        let report = self.finish_lossy()?;
        match &report.error {
            Some(error) => Err(error.clone()),
            None => Ok(report),
        }
    }

    /// Stop and return what the churn did even if it stopped on an error (the target was
    /// killed under it): the model holds every acknowledged write, and `uncertain` the one in
    /// flight.
    pub fn finish_lossy(mut self) -> Result<ChurnReport, String> {
        self.stop.store(true, Ordering::Relaxed);
        match self.worker.take().map(JoinHandle::join) {
            Some(Ok(report)) => Ok(report),
            Some(Err(_)) => Err("the churn thread panicked".to_string()),
            None => Err("the churn was already finished".to_string()),
        }
    }
}

impl Drop for Churn {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn churn(
    portal: SocketAddr,
    iqn: &str,
    lun: u16,
    seed: u64,
    model: Vec<u64>,
    stop: &AtomicBool,
    progress: &Mutex<(u64, Option<String>)>,
) -> ChurnReport {
    let mut report = ChurnReport {
        model,
        ..ChurnReport::default()
    };
    if let Err(error) = churn_until_stopped(portal, iqn, lun, seed, stop, progress, &mut report) {
        report.error = Some(error);
    }
    report
}

fn churn_until_stopped(
    portal: SocketAddr,
    iqn: &str,
    lun: u16,
    seed: u64,
    stop: &AtomicBool,
    progress: &Mutex<(u64, Option<String>)>,
    report: &mut ChurnReport,
) -> Result<(), String> {
    let mut client =
        BlockClient::connect(portal, iqn, lun).map_err(|e| format!("churn login: {e}"))?;
    let blocks = client.num_blocks;
    let block_len = client.block_len;
    if report.model.is_empty() {
        report.model = vec![NEVER_WRITTEN; blocks as usize];
    }
    let mut state = seed | 1;
    let mut write_seed = seed.wrapping_mul(1 << 20);
    while !stop.load(Ordering::Relaxed) {
        let count = 1 + next(&mut state) % MAX_BLOCKS.min(blocks);
        let lba = next(&mut state) % (blocks - count + 1);
        let started = Instant::now();
        if next(&mut state).is_multiple_of(2) {
            write_seed += 1;
            let data = pattern(write_seed, lba, count as u32, block_len);
            report.uncertain = Some((lba, count, write_seed));
            client
                .write(lba, &data, false)
                .map_err(|e| format!("churn write at {lba}+{count}: {e}"))?;
            report.uncertain = None;
            for block in lba..lba + count {
                report.model[block as usize] = write_seed;
            }
            report.writes += 1;
            report.log.push((lba, count, write_seed));
        } else {
            let data = client
                .read(lba, count as u32)
                .map_err(|e| format!("churn read at {lba}+{count}: {e}"))?;
            if let Some(bad) = first_mismatch(&data, &report.model, None, lba, block_len) {
                return Err(format!(
                    "churn read at {lba}+{count}: block {bad} does not hold what was last written there"
                ));
            }
            report.reads += 1;
        }
        report.latencies.push(started.elapsed());
        progress.lock().unwrap_or_else(PoisonError::into_inner).0 += 1;
    }
    let _ = client.logout();
    Ok(())
}

/// The first block of `data` (read at `lba`) that differs from `model`, if any. Blocks of the
/// `uncertain` write may also hold its pattern.
fn first_mismatch(
    data: &[u8],
    model: &[u64],
    uncertain: Option<(u64, u64, u64)>,
    lba: u64,
    block_len: u32,
) -> Option<u64> {
    let expected = |at: u64, seed: u64| match seed {
        NEVER_WRITTEN => vec![0u8; block_len as usize],
        seed => pattern(seed, at, 1, block_len),
    };
    data.chunks(block_len as usize)
        .enumerate()
        .find(|(i, block)| {
            let at = lba + *i as u64;
            let last = model.get(at as usize).copied().unwrap_or(NEVER_WRITTEN);
            if *block == expected(at, last).as_slice() {
                return false;
            }
            !matches!(uncertain, Some((first, count, seed))
                if (first..first + count).contains(&at) && *block == expected(at, seed).as_slice())
        })
        .map(|(i, _)| lba + i as u64)
}

/// After [`verify_lun_after_loss`] passed: read the blocks of the report's uncertain write and
/// make the model say what they hold (the write landed or not), so the next churn can go on from
/// it.
pub fn settle_uncertain(
    portal: SocketAddr,
    iqn: &str,
    lun: u16,
    report: &mut ChurnReport,
) -> Result<(), String> {
    let Some((lba, count, seed)) = report.uncertain.take() else {
        return Ok(());
    };
    let mut client =
        BlockClient::connect(portal, iqn, lun).map_err(|e| format!("settle login: {e}"))?;
    let block_len = client.block_len;
    let data = client
        .read(lba, count as u32)
        .map_err(|e| format!("settle read at {lba}: {e}"))?;
    for (i, block) in data.chunks(block_len as usize).enumerate() {
        let at = lba + i as u64;
        if block == pattern(seed, at, 1, block_len).as_slice() {
            report.model[at as usize] = seed;
        }
    }
    let _ = client.logout();
    Ok(())
}

/// Read the whole LUN and check every block against `model`.
pub fn verify_lun(portal: SocketAddr, iqn: &str, lun: u16, model: &[u64]) -> Result<(), String> {
    verify_lun_after_loss(portal, iqn, lun, model, None)
}

/// [`verify_lun`], where the blocks of an `uncertain` write (in flight when the target went
/// away, see [`ChurnReport::uncertain`]) may hold either their old or their new data.
pub fn verify_lun_after_loss(
    portal: SocketAddr,
    iqn: &str,
    lun: u16,
    model: &[u64],
    uncertain: Option<(u64, u64, u64)>,
) -> Result<(), String> {
    let mut client =
        BlockClient::connect(portal, iqn, lun).map_err(|e| format!("verify login: {e}"))?;
    let block_len = client.block_len;
    let step = (1u64 << 20) / u64::from(block_len);
    let mut lba = 0;
    while lba < client.num_blocks {
        let count = step.min(client.num_blocks - lba);
        let data = client
            .read(lba, count as u32)
            .map_err(|e| format!("verify read at {lba}: {e}"))?;
        if let Some(bad) = first_mismatch(&data, model, uncertain, lba, block_len) {
            return Err(format!(
                "block {bad} does not hold what was last written there"
            ));
        }
        lba += count;
    }
    let _ = client.logout();
    Ok(())
}
