//! The bridge section: what `codex-host run` adds to one Codex run. The same prompt goes through
//! `codex-host run` (settings, state database, policy gate, scheduler, spawning Codex, reading its
//! events, printing the outcome) and through the real Codex CLI invoked directly with the exact
//! arguments the host passes, both against the in-process mock model. Runs alternate in pairs;
//! each run gets a fresh repository and `CODEX_HOME`; the host keeps one state directory, as a
//! person running `codex-host run` repeatedly does.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Instant;

use anyhow::{ensure, Context as _};
use clap::Args;
use tempfile::TempDir;

use codex_testkit::{codex, MockModel};

use crate::results::{median_run_ms, Figure, Section};
use crate::Common;

#[derive(Args, Clone)]
pub struct Bins {
    /// The codex-host binary to measure.
    #[arg(long, default_value = "target/release/codex-host")]
    pub host_bin: std::path::PathBuf,
}

const PROMPT: &str = "Summarise this repository in one sentence.";

pub fn run(common: &Common, bins: &Bins) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(measure(common, bins))
}

/// A fresh repository and `CODEX_HOME` for one run.
struct Scratch {
    /// Holds the directories until the run is over.
    _dir: TempDir,
    repo: PathBuf,
    codex_home: PathBuf,
}

impl Scratch {
    fn new() -> anyhow::Result<Scratch> {
        let dir = tempfile::tempdir()?;
        let repo = dir.path().join("repo");
        let codex_home = dir.path().join("codex-home");
        std::fs::create_dir_all(&repo)?;
        std::fs::create_dir_all(&codex_home)?;
        // `codex-host run` canonicalizes `--repo`; the direct run gets the same path.
        let repo = repo.canonicalize()?;
        Ok(Scratch {
            _dir: dir,
            repo,
            codex_home,
        })
    }
}

struct Runner {
    host_bin: PathBuf,
    /// The state directory every `codex-host run` shares (its database is made by the warm-up).
    state: TempDir,
    codex_bin: PathBuf,
    overrides: Vec<String>,
}

impl Runner {
    /// The argument list the host builds for a new run (`runner::process::Invocation::args`):
    /// default sandbox, the model setting, the overrides in order, then the prompt after `--`.
    fn exec_args(&self, repo: &Path) -> Vec<String> {
        let mut a: Vec<String> = ["exec", "--json", "--skip-git-repo-check", "-C"]
            .map(String::from)
            .into();
        a.push(repo.display().to_string());
        a.extend(["-s", "workspace-write", "-m", codex::MODEL].map(String::from));
        for o in &self.overrides {
            a.extend(["-c".to_string(), o.clone()]);
        }
        a.extend(["--".to_string(), PROMPT.to_string()]);
        a
    }

    /// Wall time of `codex exec` run directly, ms.
    async fn direct(&self) -> anyhow::Result<f64> {
        let s = Scratch::new()?;
        let mut cmd = tokio::process::Command::new(&self.codex_bin);
        cmd.args(self.exec_args(&s.repo));
        self.time(cmd, &s, "turn.completed")
            .await
            .context("codex exec")
    }

    /// Wall time of `codex-host run` with the same settings, ms.
    async fn host(&self) -> anyhow::Result<f64> {
        let s = Scratch::new()?;
        let mut cmd = tokio::process::Command::new(&self.host_bin);
        cmd.arg("run")
            .arg("--repo")
            .arg(&s.repo)
            .arg("--state-dir")
            .arg(self.state.path());
        cmd.arg("--codex").arg(&self.codex_bin).args([
            "--model",
            codex::MODEL,
            "--env",
            codex::API_KEY_ENV,
        ]);
        for o in &self.overrides {
            cmd.args(["-c", o]);
        }
        cmd.arg(PROMPT);
        self.time(cmd, &s, "Mock answer: ")
            .await
            .context("codex-host run")
    }

    /// Median wall time of `codex --version`, ms.
    async fn version_ms(&self, n: usize) -> anyhow::Result<f64> {
        median_run_ms(n, "`codex --version`", |_| {
            let mut cmd = tokio::process::Command::new(&self.codex_bin);
            cmd.arg("--version");
            cmd
        })
        .await
    }

    /// Runs `cmd` to its end and checks it answered (`expect` on stdout).
    async fn time(
        &self,
        mut cmd: tokio::process::Command,
        s: &Scratch,
        expect: &str,
    ) -> anyhow::Result<f64> {
        cmd.env("CODEX_HOME", &s.codex_home)
            .env(codex::API_KEY_ENV, "mock-key")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let started = Instant::now();
        let out = cmd.output().await?;
        let ms = started.elapsed().as_secs_f64() * 1e3;
        let stdout = String::from_utf8_lossy(&out.stdout);
        ensure!(
            out.status.success() && stdout.contains(expect),
            "did not answer ({}):\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(ms)
    }
}

async fn measure(common: &Common, bins: &Bins) -> anyhow::Result<()> {
    let pairs = if common.quick { 2 } else { 15 };
    let host_bin = bins.host_bin.canonicalize().with_context(|| {
        format!(
            "{} not found: run `cargo build --release -p codex-host`",
            bins.host_bin.display()
        )
    })?;
    let codex_bin = codex::binary()?;
    let model = MockModel::start().await?;
    let runner = Runner {
        host_bin,
        state: tempfile::tempdir()?,
        codex_bin,
        overrides: codex::config_overrides(&model.base_url()),
    };

    // One pair to warm the page cache and Node's compile cache; not counted.
    runner.direct().await?;
    runner.host().await?;
    let (mut direct, mut host, mut added) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..pairs {
        let (d, h) = if i % 2 == 0 {
            let d = runner.direct().await?;
            (d, runner.host().await?)
        } else {
            let h = runner.host().await?;
            (runner.direct().await?, h)
        };
        eprintln!(
            "bridge: pair {}: direct {d:.0} ms, codex-host run {h:.0} ms",
            i + 1
        );
        direct.push(d);
        host.push(h);
        added.push(h - d);
    }
    let spread = Figure::new("", "", direct.clone()).spread();
    let version = runner.version_ms(5).await?;
    let section = Section {
        id: "bridge".into(),
        title: "Bridge overhead per Codex run".into(),
        method: format!(
            "Wall time, process start to exit, of `codex-host run` (release build) against the same \
             `codex exec --json` invoked directly with the arguments the host passes (`-C <repo> -s \
             workspace-write -m {} -c <provider overrides> -- <prompt>`), both with the real Codex \
             CLI against the in-process mock model. Each run gets a fresh repository and \
             `CODEX_HOME`; the `codex-host run`s share one state directory, whose database the \
             warm-up creates. {pairs} pairs after one warm-up pair, alternating which runs first; the \
             added time is the difference within each pair.",
            codex::MODEL
        ),
        figures: vec![
            Figure::new("codex exec direct", "ms", direct),
            Figure::new("codex-host run", "ms", host),
            Figure::new("added by codex-host", "ms", added).target("<", 50.0),
        ],
        notes: vec![
            format!(
                "`codex-host run` does not check the Codex CLI with `codex --version` before the \
                 run (`serve` does, when settings are applied, so the admin hears of a missing \
                 CLI): that check alone takes {version:.0} ms here (median of 5; the CLI is a \
                 Node.js program) and would count in full against the target."
            ),
            format!(
                "Direct runs took {:.0}–{:.0} ms; that run-to-run spread of the Codex CLI is why single \
                 differences scatter around the median.",
                spread.0, spread.1
            ),
        ],
    };
    section.write(&common.results)
}
