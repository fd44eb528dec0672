//! Per-volume I/O counters each reactor keeps (ops, bytes, latency histogram in µs), keyed by
//! the volume's stable uid; the control thread merges them across reactors. And the reactor's
//! own load: how its time splits between turns of its loop that did work and turns that found
//! none (spinning, or asleep in the ring), which tells whether the reactor or its clients are
//! the limit whatever the poll mode (a busy-polling reactor uses all of its core either way).

use hdrhistogram::Histogram;
use lunar_wire::keyhash::KeyHashMap;

/// Highest latency the histogram tracks exactly (µs); larger values saturate.
pub const LATENCY_US_MAX_TRACKED: u64 = 60_000_000;

#[derive(Debug, Clone)]
pub struct VolumeCounters {
    pub uid: u64,
    pub read_ops: u64,
    pub write_ops: u64,
    pub read_bytes: u64,
    pub write_bytes: u64,
    pub latency_us: Histogram<u64>,
}

impl VolumeCounters {
    fn new(uid: u64) -> Self {
        VolumeCounters {
            uid,
            read_ops: 0,
            write_ops: 0,
            read_bytes: 0,
            write_bytes: 0,
            latency_us: Histogram::new_with_bounds(1, LATENCY_US_MAX_TRACKED, 3)
                .expect("static histogram bounds are valid"),
        }
    }

    /// Add `other` (same uid) into `self`.
    pub fn merge(&mut self, other: &VolumeCounters) {
        self.read_ops += other.read_ops;
        self.write_ops += other.write_ops;
        self.read_bytes += other.read_bytes;
        self.write_bytes += other.write_bytes;
        // Both histograms share bounds, so adding cannot fail.
        let _ = self.latency_us.add(&other.latency_us);
    }
}

/// Where a reactor's time went since it started, in nanoseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReactorLoad {
    /// Turns of the loop that did work (completions, messages), with the submissions that
    /// ended them.
    pub busy_ns: u64,
    /// Turns that found nothing to do and went round again (busy mode, or the adaptive spin).
    pub idle_poll_ns: u64,
    /// Asleep in the ring waiting for a completion (adaptive mode).
    pub sleep_ns: u64,
}

/// What the last turn of the loop was, for [`ReactorStats::count_turn`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Turn {
    Worked,
    Polled,
    Slept,
}

/// What a reactor answers a stats request with.
#[derive(Debug, Clone)]
pub struct ReactorReport {
    pub volumes: Vec<VolumeCounters>,
    pub load: ReactorLoad,
}

/// A reactor's counters.
#[derive(Default)]
pub struct ReactorStats {
    volumes: KeyHashMap<u64, VolumeCounters>,
    load: ReactorLoad,
}

/// What kind of I/O finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoKind {
    Read,
    Write,
    Other,
}

impl ReactorStats {
    pub fn record(&mut self, uid: u64, kind: IoKind, len_bytes: u64, latency_us: u64) {
        let counters = self
            .volumes
            .entry(uid)
            .or_insert_with(|| VolumeCounters::new(uid));
        match kind {
            IoKind::Read => {
                counters.read_ops += 1;
                counters.read_bytes += len_bytes;
            }
            IoKind::Write => {
                counters.write_ops += 1;
                counters.write_bytes += len_bytes;
            }
            IoKind::Other => {}
        }
        counters
            .latency_us
            .saturating_record(latency_us.clamp(1, LATENCY_US_MAX_TRACKED));
    }

    /// Count `elapsed_ns`, the length of a turn of the loop, as what the turn was.
    pub fn count_turn(&mut self, turn: Turn, elapsed_ns: u64) {
        let counter = match turn {
            Turn::Worked => &mut self.load.busy_ns,
            Turn::Polled => &mut self.load.idle_poll_ns,
            Turn::Slept => &mut self.load.sleep_ns,
        };
        *counter += elapsed_ns;
    }

    pub fn snapshot(&self) -> ReactorReport {
        ReactorReport {
            volumes: self.volumes.values().cloned().collect(),
            load: self.load,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_merge_across_reactors() {
        let mut a = ReactorStats::default();
        let mut b = ReactorStats::default();
        a.record(7, IoKind::Read, 4096, 100);
        b.record(7, IoKind::Write, 512, 300);
        let mut merged = a.snapshot().volumes.remove(0);
        merged.merge(&b.snapshot().volumes[0]);
        assert_eq!((merged.read_ops, merged.write_ops), (1, 1));
        assert_eq!((merged.read_bytes, merged.write_bytes), (4096, 512));
        assert_eq!(merged.latency_us.len(), 2);
        assert!(merged.latency_us.value_at_quantile(1.0) >= 300);
    }

    #[test]
    fn turns_add_up_by_kind() {
        let mut stats = ReactorStats::default();
        stats.count_turn(Turn::Worked, 300);
        stats.count_turn(Turn::Polled, 20);
        stats.count_turn(Turn::Worked, 200);
        stats.count_turn(Turn::Slept, 1_000_000);
        assert_eq!(
            stats.snapshot().load,
            ReactorLoad {
                busy_ns: 500,
                idle_poll_ns: 20,
                sleep_ns: 1_000_000
            }
        );
    }
}
