//! Counters and latency histograms of a run, per direction, and the report they become
//! (JSON for the benchmark driver, a few lines of text for people).

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::pdu::Direction;
use crate::session::{Completion, Outcome};
use crate::verify::Check;

/// Longest latency the histograms hold; longer ones are recorded as this.
const LATENCY_MAX_NS: u64 = 60_000_000_000;
/// Error messages kept for the report.
const ERROR_SAMPLES_MAX: usize = 8;

/// One direction's counters.
pub struct DirStats {
    pub ios: u64,
    pub bytes: u64,
    pub latency_ns: Histogram<u64>,
}

impl DirStats {
    fn new() -> DirStats {
        DirStats {
            ios: 0,
            bytes: 0,
            // Bounds are constants within hdrhistogram's limits (sigfig 3, high >= 2 * low).
            latency_ns: Histogram::new_with_bounds(1, LATENCY_MAX_NS, 3)
                .unwrap_or_else(|_| unreachable!("constant histogram bounds are valid")),
        }
    }

    fn merge(&mut self, other: &DirStats) {
        self.ios += other.ios;
        self.bytes += other.bytes;
        // Same bounds on both sides, so adding cannot fail.
        let _ = self.latency_ns.add(&other.latency_ns);
    }
}

/// Everything a run counts.
pub struct Stats {
    pub read: DirStats,
    pub write: DirStats,
    pub errors: u64,
    pub verified_ios: u64,
    pub mismatches: u64,
    pub error_samples: Vec<String>,
}

impl Default for Stats {
    fn default() -> Self {
        Stats::new()
    }
}

impl Stats {
    pub fn new() -> Stats {
        Stats {
            read: DirStats::new(),
            write: DirStats::new(),
            errors: 0,
            verified_ios: 0,
            mismatches: 0,
            error_samples: Vec::new(),
        }
    }

    /// Accounts one finished I/O. Only I/Os finishing inside the measured window count towards
    /// throughput and latency; errors and mismatches count whenever they happen.
    pub fn record(&mut self, completion: &Completion, check: Check, in_window: bool) {
        match check {
            Check::Verified => self.verified_ios += 1,
            Check::Mismatch {
                unit,
                version,
                offset_bytes,
            } => {
                self.mismatches += 1;
                self.sample(format!(
                    "data mismatch: unit {unit} version {version} at byte {offset_bytes}"
                ));
            }
            Check::Unchecked => {}
        }
        if completion.outcome != Outcome::Good {
            self.errors += 1;
            self.sample(format!(
                "{:?} of {} bytes: {:?}",
                completion.op.direction, completion.op.len_bytes, completion.outcome
            ));
            return;
        }
        if !in_window {
            return;
        }
        let dir = match completion.op.direction {
            Direction::Write => &mut self.write,
            _ => &mut self.read,
        };
        dir.ios += 1;
        dir.bytes += u64::from(completion.op.len_bytes);
        dir.latency_ns
            .saturating_record(completion.latency_ns.clamp(1, LATENCY_MAX_NS));
    }

    /// Counts a failure that is not one I/O's (a session that broke).
    pub fn fail(&mut self, message: String) {
        self.errors += 1;
        self.sample(message);
    }

    fn sample(&mut self, message: String) {
        if self.error_samples.len() < ERROR_SAMPLES_MAX {
            self.error_samples.push(message);
        }
    }

    pub fn merge(&mut self, other: &Stats) {
        self.read.merge(&other.read);
        self.write.merge(&other.write);
        self.errors += other.errors;
        self.verified_ios += other.verified_ios;
        self.mismatches += other.mismatches;
        for message in &other.error_samples {
            self.sample(message.clone());
        }
    }
}

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct LatencyUs {
    pub mean: f64,
    pub p50: f64,
    pub p99: f64,
    pub p99_9: f64,
    pub max: f64,
}

impl LatencyUs {
    fn of(histogram: &Histogram<u64>) -> LatencyUs {
        if histogram.is_empty() {
            return LatencyUs::default();
        }
        let us = |ns: u64| ns as f64 / 1000.0;
        LatencyUs {
            mean: histogram.mean() / 1000.0,
            p50: us(histogram.value_at_quantile(0.50)),
            p99: us(histogram.value_at_quantile(0.99)),
            p99_9: us(histogram.value_at_quantile(0.999)),
            max: us(histogram.max()),
        }
    }
}

/// One direction in the report.
#[derive(Debug, Clone, Serialize)]
pub struct DirReport {
    pub ios: u64,
    pub bytes: u64,
    pub iops: f64,
    pub bw_bytes_per_s: f64,
    pub lat_us: LatencyUs,
}

/// What a run prints.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub tool: &'static str,
    pub url: String,
    pub rw: &'static str,
    pub bs_bytes: u32,
    pub sessions: usize,
    pub iodepth: usize,
    pub threads: usize,
    pub measured_s: f64,
    pub ios: u64,
    pub iops: f64,
    pub bw_bytes_per_s: f64,
    pub lat_us: LatencyUs,
    pub read: DirReport,
    pub write: DirReport,
    pub errors: u64,
    pub verify: bool,
    pub verified_ios: u64,
    pub mismatches: u64,
    pub error_samples: Vec<String>,
}

/// The run's shape, for the report.
#[derive(Debug, Clone)]
pub struct RunShape {
    pub url: String,
    pub rw: &'static str,
    pub bs_bytes: u32,
    pub sessions: usize,
    pub iodepth: usize,
    pub threads: usize,
    pub verify: bool,
}

impl Report {
    pub fn new(shape: RunShape, stats: &Stats, measured_s: f64) -> Report {
        let per_s = |n: u64| {
            if measured_s > 0.0 {
                n as f64 / measured_s
            } else {
                0.0
            }
        };
        let dir = |d: &DirStats| DirReport {
            ios: d.ios,
            bytes: d.bytes,
            iops: per_s(d.ios),
            bw_bytes_per_s: per_s(d.bytes),
            lat_us: LatencyUs::of(&d.latency_ns),
        };
        let mut all = DirStats::new();
        all.merge(&stats.read);
        all.merge(&stats.write);
        Report {
            tool: "lunar-load",
            url: shape.url,
            rw: shape.rw,
            bs_bytes: shape.bs_bytes,
            sessions: shape.sessions,
            iodepth: shape.iodepth,
            threads: shape.threads,
            measured_s,
            ios: all.ios,
            iops: per_s(all.ios),
            bw_bytes_per_s: per_s(all.bytes),
            lat_us: LatencyUs::of(&all.latency_ns),
            read: dir(&stats.read),
            write: dir(&stats.write),
            errors: stats.errors,
            verify: shape.verify,
            verified_ios: stats.verified_ios,
            mismatches: stats.mismatches,
            error_samples: stats.error_samples.clone(),
        }
    }

    /// Whether the run saw no error and no data mismatch.
    pub fn clean(&self) -> bool {
        self.errors == 0 && self.mismatches == 0
    }

    /// A few lines for people.
    pub fn text(&self) -> String {
        let mut out = format!(
            "{} {} B, {} sessions x QD {}: {:.0} IOPS, {:.1} MiB/s over {:.1} s\n\
             latency us: mean {:.1}, p50 {:.1}, p99 {:.1}, p99.9 {:.1}, max {:.1}\n\
             errors {}",
            self.rw,
            self.bs_bytes,
            self.sessions,
            self.iodepth,
            self.iops,
            self.bw_bytes_per_s / (1024.0 * 1024.0),
            self.measured_s,
            self.lat_us.mean,
            self.lat_us.p50,
            self.lat_us.p99,
            self.lat_us.p99_9,
            self.lat_us.max,
            self.errors,
        );
        if self.verify {
            out.push_str(&format!(
                ", verified reads {}, mismatches {}",
                self.verified_ios, self.mismatches
            ));
        }
        for message in &self.error_samples {
            out.push_str(&format!("\n  {message}"));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scsi;
    use crate::session::Op;

    fn completion(direction: Direction, outcome: Outcome, latency_ns: u64) -> Completion {
        Completion {
            op: Op {
                cdb: scsi::read_16(0, 8),
                direction,
                len_bytes: 4096,
                user: 0,
            },
            outcome,
            latency_ns,
            received_bytes: 4096,
        }
    }

    fn shape() -> RunShape {
        RunShape {
            url: "iscsi://x/y/0".into(),
            rw: "randrw",
            bs_bytes: 4096,
            sessions: 1,
            iodepth: 1,
            threads: 1,
            verify: true,
        }
    }

    #[test]
    fn only_the_window_counts_towards_throughput() {
        let mut stats = Stats::new();
        for i in 0..100 {
            stats.record(
                &completion(Direction::Read, Outcome::Good, 1000 * (i + 1)),
                Check::Verified,
                true,
            );
        }
        stats.record(
            &completion(Direction::Write, Outcome::Good, 5),
            Check::Unchecked,
            false,
        );
        let report = Report::new(shape(), &stats, 2.0);
        assert_eq!(report.ios, 100);
        assert_eq!(report.iops, 50.0);
        assert_eq!(report.bw_bytes_per_s, 50.0 * 4096.0);
        assert_eq!(report.write.ios, 0);
        assert_eq!(report.verified_ios, 100);
        let p50 = report.lat_us.p50;
        assert!((49.9..=50.1).contains(&p50), "p50 {p50}");
        assert!(report.lat_us.p99 >= 99.0 && report.lat_us.max >= 99.9);
        assert!(report.clean());
    }

    #[test]
    fn errors_and_mismatches_are_counted_and_sampled() {
        let mut stats = Stats::new();
        stats.record(
            &completion(
                Direction::Read,
                Outcome::CheckCondition { sense_key: Some(3) },
                10,
            ),
            Check::Unchecked,
            true,
        );
        stats.record(
            &completion(Direction::Read, Outcome::Good, 10),
            Check::Mismatch {
                unit: 4,
                version: 2,
                offset_bytes: 8,
            },
            false,
        );
        let mut total = Stats::new();
        total.merge(&stats);
        total.fail("session 3: closed".into());
        let report = Report::new(shape(), &total, 1.0);
        assert_eq!(report.errors, 2);
        assert_eq!(report.mismatches, 1);
        assert_eq!(report.ios, 0);
        assert_eq!(report.error_samples.len(), 3);
        assert!(!report.clean());
        assert!(report.text().contains("mismatches 1"));
    }
}
