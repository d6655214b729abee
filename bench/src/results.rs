//! What every benchmark section writes (`target/bench/results/<section>.json`) and `report` reads.
//! The Go plugin benchmark (`tests/harness/bench_test.go`) writes the same shape.
//!
//! A figure is measured in several rounds; the report shows the median of the rounds and their
//! spread (min–max), and judges the target on the median.

use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Section {
    /// File stem and anchor: `policy`, `host`, `plugin`, `memory`, `bridge`.
    pub id: String,
    pub title: String,
    /// How it was measured, in a sentence or two of Markdown.
    pub method: String,
    pub figures: Vec<Figure>,
    /// Anything a reader must know to trust or interpret the figures (misses explained here).
    #[serde(default)]
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Figure {
    pub name: String,
    pub unit: String,
    /// One value per round.
    pub rounds: Vec<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Target>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Target {
    /// `<`, `<=`, `>` or `>=`, applied as `median <op> value`.
    pub op: String,
    pub value: f64,
}

impl Target {
    pub fn new(op: &str, value: f64) -> Option<Target> {
        Some(Target {
            op: op.into(),
            value,
        })
    }

    pub fn met(&self, x: f64) -> bool {
        match self.op.as_str() {
            "<" => x < self.value,
            "<=" => x <= self.value,
            ">" => x > self.value,
            ">=" => x >= self.value,
            "==" => x == self.value,
            _ => false,
        }
    }
}

impl Figure {
    pub fn new(name: impl Into<String>, unit: &str, rounds: Vec<f64>) -> Figure {
        Figure {
            name: name.into(),
            unit: unit.into(),
            rounds,
            target: None,
        }
    }

    pub fn target(mut self, op: &str, value: f64) -> Figure {
        self.target = Target::new(op, value);
        self
    }

    pub fn median(&self) -> f64 {
        median(&self.rounds)
    }

    pub fn spread(&self) -> (f64, f64) {
        let min = self.rounds.iter().copied().fold(f64::INFINITY, f64::min);
        let max = self
            .rounds
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max);
        (min, max)
    }

    pub fn met(&self) -> Option<bool> {
        self.target
            .as_ref()
            .map(|t| !self.rounds.is_empty() && t.met(self.median()))
    }
}

impl Section {
    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(format!("{}.json", self.id));
        std::fs::write(&path, serde_json::to_vec_pretty(self)?)
            .with_context(|| format!("cannot write {}", path.display()))
    }

    pub fn read(path: &Path) -> anyhow::Result<Section> {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is not a bench section", path.display()))
    }
}

/// Median wall time, in ms, of running `n` commands made by `command(i)` to their end; each must
/// exit successfully (`what` names it in the error).
pub async fn median_run_ms(
    n: usize,
    what: &str,
    mut command: impl FnMut(usize) -> tokio::process::Command,
) -> anyhow::Result<f64> {
    let mut times = Vec::with_capacity(n);
    for i in 0..n {
        let mut cmd = command(i);
        let started = std::time::Instant::now();
        let out = cmd.stdin(std::process::Stdio::null()).output().await?;
        anyhow::ensure!(
            out.status.success(),
            "{what} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        times.push(started.elapsed().as_secs_f64() * 1e3);
    }
    Ok(median(&times))
}

pub fn median(xs: &[f64]) -> f64 {
    quantile(xs, 0.5)
}

/// The `q` quantile of `xs` (nearest rank on the sorted values); 0 for no values.
pub fn quantile(xs: &[f64], q: f64) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    let mut v = xs.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * q).round() as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_spread_and_targets() {
        let f = Figure::new("p50", "µs", vec![30.0, 10.0, 20.0]).target("<", 25.0);
        assert_eq!(f.median(), 20.0);
        assert_eq!(f.spread(), (10.0, 30.0));
        assert_eq!(f.met(), Some(true));
        let f =
            Figure::new("rate", "/s", vec![19_000.0, 21_000.0, 19_500.0]).target(">=", 20_000.0);
        assert_eq!(f.met(), Some(false));
        assert_eq!(
            Figure::new("x", "", vec![]).target("<", 1.0).met(),
            Some(false)
        );
        assert_eq!(Figure::new("x", "", vec![1.0]).met(), None);
    }

    #[test]
    fn quantiles_use_nearest_rank() {
        let xs: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&xs, 0.99), 99.0);
        assert_eq!(quantile(&xs, 0.0), 1.0);
        assert_eq!(quantile(&[], 0.5), 0.0);
    }
}
