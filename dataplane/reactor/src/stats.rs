//! Per-volume I/O counters each reactor keeps (ops, bytes, latency histogram in µs), keyed by
//! the volume's stable uid; the control thread merges them across reactors.

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

/// A reactor's counters.
#[derive(Default)]
pub struct ReactorStats {
    volumes: KeyHashMap<u64, VolumeCounters>,
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

    pub fn snapshot(&self) -> Vec<VolumeCounters> {
        self.volumes.values().cloned().collect()
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
        let mut merged = a.snapshot().remove(0);
        merged.merge(&b.snapshot()[0]);
        assert_eq!((merged.read_ops, merged.write_ops), (1, 1));
        assert_eq!((merged.read_bytes, merged.write_bytes), (4096, 512));
        assert_eq!(merged.latency_us.len(), 2);
        assert!(merged.latency_us.value_at_quantile(1.0) >= 300);
    }
}
