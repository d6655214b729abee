//! The bridge section: what `codex-host run` adds to one Codex run. The same prompt goes through
//! `codex-host run` (settings, state database, policy gate, scheduler, `codex app-server` driven
//! over JSON-RPC, printing the outcome), through `codex exec --json` run directly (the way to run
//! Codex without a bridge, and the baseline the target is set against), and through `codex
//! app-server` driven directly by the smallest client (the same protocol the host speaks, without
//! the host), all with the real Codex CLI against the in-process mock model. Runs alternate in
//! rounds; each run gets a fresh repository and `CODEX_HOME`; the host keeps one state directory,
//! as a person running `codex-host run` repeatedly does.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context as _};
use clap::Args;
use serde_json::{json, Value};
use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

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

/// Node.js reads at start-up the variables that change its own start-up cost (an extra CA file
/// alone added about 50 ms per start where this was written). codex-host passes Codex only
/// `PATH`, `LANG`, `TERM`, `TZ` and what **Codex environment** names, so the direct runs drop them
/// too: otherwise the comparison measures the bench's environment, not the bridge.
const NODE_START_VARS: &[&str] = &["NODE_EXTRA_CA_CERTS", "NODE_OPTIONS"];

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
        for var in NODE_START_VARS {
            cmd.env_remove(var);
        }
        self.time(cmd, &s, "turn.completed")
            .await
            .context("codex exec")
    }

    /// Wall time of `codex app-server` driven directly, ms: spawn, `initialize`, `thread/start`
    /// with the settings the host sends, one `turn/start`, read until `turn/completed`, close
    /// stdin and wait for the exit — what the host's runner does, without the host.
    async fn app_server(&self) -> anyhow::Result<f64> {
        let s = Scratch::new()?;
        let mut cmd = tokio::process::Command::new(&self.codex_bin);
        cmd.arg("app-server");
        for o in &self.overrides {
            cmd.args(["-c", o]);
        }
        for var in NODE_START_VARS {
            cmd.env_remove(var);
        }
        cmd.env("CODEX_HOME", &s.codex_home)
            .env(codex::API_KEY_ENV, "mock-key")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        let started = Instant::now();
        let mut child = cmd.spawn().context("spawning codex app-server")?;
        let mut stdin = child.stdin.take().expect("piped");
        let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
        let turn = async {
            let send = |v: Value| format!("{v}\n");
            let mut answered = false;
            for msg in [
                json!({"id": 1, "method": "initialize", "params": {"clientInfo": {"name": "codex_bench", "version": "0"}}}),
                json!({"method": "initialized"}),
                json!({"id": 2, "method": "thread/start", "params": {
                    "cwd": s.repo.display().to_string(), "model": codex::MODEL,
                    "approvalPolicy": "on-request", "sandbox": "workspace-write"}}),
            ] {
                stdin.write_all(send(msg).as_bytes()).await?;
            }
            let mut thread_id = None;
            while let Some(line) = lines.next_line().await? {
                let v: Value = serde_json::from_str(&line).unwrap_or_default();
                if v["id"] == 2 {
                    let id = v["result"]["thread"]["id"].as_str();
                    let Some(id) = id else {
                        bail!("thread/start failed: {line}")
                    };
                    thread_id = Some(id.to_string());
                    let start = json!({"id": 3, "method": "turn/start", "params": {
                        "threadId": id, "input": [{"type": "text", "text": PROMPT}]}});
                    stdin.write_all(send(start).as_bytes()).await?;
                }
                if line.contains("Mock answer: ") {
                    answered = true;
                }
                if v["method"] == "turn/completed" {
                    break;
                }
            }
            ensure!(
                thread_id.is_some() && answered,
                "codex app-server gave no answer"
            );
            anyhow::Ok(())
        };
        tokio::time::timeout(Duration::from_secs(60), turn)
            .await
            .context("codex app-server took over a minute")??;
        drop(stdin);
        let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
            .await
            .context("codex app-server did not exit when its stdin closed")??;
        ensure!(status.success(), "codex app-server exited with {status}");
        Ok(started.elapsed().as_secs_f64() * 1e3)
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
    let rounds = if common.quick { 2 } else { 15 };
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

    // One round to warm the page cache and Node's compile cache; not counted.
    runner.direct().await?;
    runner.app_server().await?;
    runner.host().await?;
    let (mut direct, mut app, mut host) = (Vec::new(), Vec::new(), Vec::new());
    let (mut added, mut added_app) = (Vec::new(), Vec::new());
    for i in 0..rounds {
        // The three run back to back, each first in turn, so that drift hurts all alike.
        let (mut d, mut a, mut h) = (0.0, 0.0, 0.0);
        for k in 0..3 {
            match (i + k) % 3 {
                0 => d = runner.direct().await?,
                1 => a = runner.app_server().await?,
                _ => h = runner.host().await?,
            }
        }
        eprintln!(
            "bridge: round {}: exec {d:.0} ms, app-server {a:.0} ms, codex-host run {h:.0} ms",
            i + 1
        );
        direct.push(d);
        app.push(a);
        host.push(h);
        added.push(h - d);
        added_app.push(h - a);
    }
    let spread = Figure::new("", "", direct.clone()).spread();
    let version = runner.version_ms(5).await?;
    let section = Section {
        id: "bridge".into(),
        title: "Bridge overhead per Codex run".into(),
        method: format!(
            "Wall time, process start to exit, of one prompt three ways, all with the real Codex \
             CLI against the in-process mock model: `codex-host run` (release build; it drives \
             `codex app-server` over JSON-RPC, as the host does for chat); `codex exec --json` \
             run directly (`-C <repo> -s workspace-write -m {model} -c <provider overrides> -- \
             <prompt>`), Codex without any bridge, the baseline of the target; and `codex \
             app-server` driven directly by the smallest client (`initialize`, `thread/start` \
             with the host's settings, one `turn/start`, read until `turn/completed`, close \
             stdin, wait for the exit), to show what the host itself adds to the protocol it \
             speaks. Each run gets a fresh repository and `CODEX_HOME`; the `codex-host run`s \
             share one state directory, whose database the warm-up creates. {rounds} rounds after \
             one warm-up round, each of the three going first in turn; the added times are \
             differences within a round.",
            model = codex::MODEL
        ),
        figures: vec![
            Figure::new("codex exec direct", "ms", direct),
            Figure::new("codex app-server direct", "ms", app),
            Figure::new("codex-host run", "ms", host),
            Figure::new("added by codex-host over codex exec", "ms", added).target("<", 50.0),
            Figure::new("added by codex-host over codex app-server", "ms", added_app),
        ],
        notes: vec![
            format!(
                "The direct runs are started without {}, which codex-host does not pass to Codex \
                 either (each changes Node.js's own start-up time).",
                NODE_START_VARS.join(" and ")
            ),
            "`codex-host run` starts Codex inside bubblewrap (Run isolation's default: its own \
             mount and PID namespaces), and the direct runs do not: the namespace set-up is part \
             of what the host adds here."
                .to_string(),
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
