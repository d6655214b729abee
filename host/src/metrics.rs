//! Counters the host keeps for `GET /v1/health` (the plugin turns them into Prometheus metrics):
//! runs ended by outcome and the time each policy decision took. In memory since the host
//! started: a restart resets them, which Prometheus reads as a counter reset. No I/O.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::model::RunStatus;

/// Upper bounds, in seconds, of the policy decision histogram's buckets (a `+Inf` bucket follows).
pub const POLICY_BUCKETS_SECONDS: &[f64] = &[
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.1,
];

#[derive(Default)]
pub struct Metrics {
    runs: Mutex<BTreeMap<&'static str, u64>>,
    policy: Mutex<Histogram>,
}

struct Histogram {
    /// One count per bucket of [`POLICY_BUCKETS_SECONDS`], then the `+Inf` bucket; not cumulative.
    counts: Vec<u64>,
    sum_seconds: f64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: vec![0; POLICY_BUCKETS_SECONDS.len() + 1],
            sum_seconds: 0.0,
        }
    }
}

impl Metrics {
    /// A run reached its outcome.
    pub fn run_ended(&self, status: RunStatus) {
        *self
            .runs
            .lock()
            .unwrap()
            .entry(status.as_str())
            .or_default() += 1;
    }

    /// One policy decision took `took`.
    pub fn policy_decided(&self, took: Duration) {
        let seconds = took.as_secs_f64();
        let bucket = POLICY_BUCKETS_SECONDS
            .iter()
            .position(|le| seconds <= *le)
            .unwrap_or(POLICY_BUCKETS_SECONDS.len());
        let mut h = self.policy.lock().unwrap();
        h.counts[bucket] += 1;
        h.sum_seconds += seconds;
    }

    pub fn info(&self, approvals_pending: usize) -> MetricsInfo {
        let h = self.policy.lock().unwrap();
        MetricsInfo {
            runs: self
                .runs
                .lock()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
            approvals_pending,
            policy_decision: HistogramInfo {
                bounds_seconds: POLICY_BUCKETS_SECONDS.to_vec(),
                counts: h.counts.clone(),
                sum_seconds: h.sum_seconds,
            },
        }
    }
}

/// The `metrics` part of the health answer.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct MetricsInfo {
    /// Runs that reached their outcome since the host started, by final status.
    pub runs: BTreeMap<String, u64>,
    /// Runs waiting for approvers now.
    pub approvals_pending: usize,
    pub policy_decision: HistogramInfo,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct HistogramInfo {
    pub bounds_seconds: Vec<f64>,
    /// One count per bound, then the `+Inf` bucket; not cumulative.
    pub counts: Vec<u64>,
    pub sum_seconds: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_fall_in_the_first_bucket_that_holds_them() {
        let m = Metrics::default();
        m.policy_decided(Duration::from_micros(30));
        m.policy_decided(Duration::from_micros(100)); // on a bound: that bucket
        m.policy_decided(Duration::from_micros(700));
        m.policy_decided(Duration::from_secs(2));
        let info = m.info(0);
        let h = info.policy_decision;
        assert_eq!(h.counts.len(), h.bounds_seconds.len() + 1);
        assert_eq!(h.counts[0], 1);
        assert_eq!(h.counts[1], 1);
        assert_eq!(h.counts[4], 1, "0.7 ms is in the 1 ms bucket");
        assert_eq!(*h.counts.last().unwrap(), 1, "2 s is only in +Inf");
        assert_eq!(h.counts.iter().sum::<u64>(), 4);
        assert!((h.sum_seconds - 2.000_83).abs() < 1e-9);
    }

    #[test]
    fn runs_are_counted_by_outcome() {
        let m = Metrics::default();
        m.run_ended(RunStatus::Answered);
        m.run_ended(RunStatus::Answered);
        m.run_ended(RunStatus::Failed);
        let info = m.info(3);
        assert_eq!(info.runs.get("answered"), Some(&2));
        assert_eq!(info.runs.get("failed"), Some(&1));
        assert_eq!(info.approvals_pending, 3);
    }
}
