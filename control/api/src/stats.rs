//! Types of the `stats_get` method: per-volume I/O counters and latency percentiles, and how
//! each reactor's time splits between work and waiting for it.

use serde::{Deserialize, Serialize};

/// `stats_get`: all volumes, or only `volume`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatsGetParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume: Option<String>,
}

/// Counters of one volume since the daemon started, summed over reactors.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeStatsInfo {
    pub name: String,
    pub read_ops: u64,
    pub write_ops: u64,
    pub read_bytes: u64,
    pub write_bytes: u64,
    pub latency_us_p50: u64,
    pub latency_us_p90: u64,
    pub latency_us_p99: u64,
    pub latency_us_p999: u64,
    pub latency_us_max: u64,
}

/// Where one reactor's time went since the daemon started, in microseconds. A reactor in busy
/// mode uses all of its core whatever the load, so its CPU time says nothing of how loaded it
/// is: `busy_us` against the total does. Sample twice and compare for a rate.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReactorLoadInfo {
    /// The reactor's index (its thread is `lunar-reactor-<index>`).
    pub reactor: usize,
    /// The core it is pinned to.
    pub core: usize,
    /// Turns of its loop that did work: received, completed, submitted.
    pub busy_us: u64,
    /// Turns that found nothing to do and polled again.
    pub idle_poll_us: u64,
    /// Asleep waiting for work (adaptive mode).
    pub sleep_us: u64,
}

impl ReactorLoadInfo {
    /// The share of the time that was busy, in percent (0 before any time was counted).
    pub fn busy_percent(&self) -> f64 {
        let total = self.busy_us + self.idle_poll_us + self.sleep_us;
        if total == 0 {
            return 0.0;
        }
        100.0 * self.busy_us as f64 / total as f64
    }
}

/// `stats_get` result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsGetResult {
    pub volumes: Vec<VolumeStatsInfo>,
    /// Every reactor, whichever volume was asked for (absent from daemons before it existed).
    #[serde(default)]
    pub reactors: Vec<ReactorLoadInfo>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_share_of_the_counted_time() {
        let load = ReactorLoadInfo {
            busy_us: 750,
            idle_poll_us: 200,
            sleep_us: 50,
            ..ReactorLoadInfo::default()
        };
        assert_eq!(load.busy_percent(), 75.0);
        assert_eq!(ReactorLoadInfo::default().busy_percent(), 0.0);
    }

    #[test]
    fn a_result_without_reactors_still_parses() {
        let result: StatsGetResult = serde_json::from_str(r#"{"volumes":[]}"#).unwrap();
        assert!(result.reactors.is_empty());
    }
}
