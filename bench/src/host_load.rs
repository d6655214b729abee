//! The host and memory sections.
//!
//! `host`: the release `codex-host serve` binary on a temporary Unix socket, configured the way the
//! plugin configures it (`PUT /v1/config`, posts going to an in-process fake Mattermost),
//! with the Codex path pointing at `codex-standin`, which answers the app-server protocol and
//! completes each turn at once. A generator
//! sends `POST /v1/commands` open-loop at fixed rates; every request is its own task, so a slow
//! acknowledgement never delays later sends. After each batch it waits until every accepted prompt
//! has reached exactly one outcome post in its thread; a missing or duplicated outcome is "lost".
//!
//! `memory`: the resident set (`VmRSS`) of freshly started hosts with only the bundled allowlist,
//! and of the load-test host after its last batch (with its peak, `VmHWM`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context as _};
use bytes::Bytes;
use clap::Args;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tempfile::TempDir;
use tokio::net::UnixStream;

use codex_testkit::{FakeMattermost, MattermostConfig};

use crate::results::{median, quantile, Figure, Section};
use crate::Common;

#[derive(Args, Clone)]
pub struct Bins {
    /// The codex-host binary to measure.
    #[arg(long, default_value = "target/release/codex-host")]
    pub host_bin: std::path::PathBuf,
    /// The Codex stand-in.
    #[arg(long, default_value = "target/release/codex-standin")]
    pub standin: std::path::PathBuf,
    /// Directory holding the built example policies (`make policies`).
    #[arg(long, default_value = "target/policies")]
    pub policy_dir: std::path::PathBuf,
}

/// Request rates of the load test, per second.
const RATES: [u32; 3] = [100, 500, 1000];
/// The rate of the steady batches that follow the load test (memory growth).
const STEADY_RATE: u32 = 200;
/// The rate whose p99 acknowledgement latency has a target.
const TARGET_RATE: u32 = 500;
const SECRET: &str = "codex-bench-secret-0123456789abcdef";
/// How long a batch may take to reach its outcomes after the last acknowledgement.
const OUTCOME_WAIT: Duration = Duration::from_secs(120);
/// Pause between starting a host (or ending a batch) and reading its memory.
const SETTLE: Duration = Duration::from_secs(2);
/// Runs at once and the queue beyond them: the most the settings accept, so that the benchmark
/// measures acknowledgements rather than queue refusals.
const MAX_CONCURRENT_RUNS: u32 = 64;
const QUEUE_LIMIT: u32 = 10_000;
/// Admin modules added after the bundled allowlist for the load test, in chain order, with their
/// configuration. No bench prompt matches a risky pattern, so every run is allowed (read-only).
const ADMIN_MODULES: [(&str, &str); 2] = [
    ("10-readonly-public", "readonly-public"),
    ("50-approval-for-risky", "approval-for-risky"),
];

pub fn run(common: &Common, bins: &Bins) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    // The fake Mattermost gets a thread of its own, so that serving the host's posts does not
    // delay the generator's sends and the reading of acknowledgements.
    let mm_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("fake-mattermost")
        .enable_all()
        .build()?;
    rt.block_on(measure(common, bins, mm_rt.handle().clone()))
}

/// What a load test needs besides the host and the fake Mattermost: a project directory, the
/// admin policy directory, absolute paths of the binaries, and who asks where.
struct Fixture {
    /// Where fake Mattermost servers run.
    mm_rt: tokio::runtime::Handle,
    dir: TempDir,
    repo: PathBuf,
    admin_policies: PathBuf,
    host_bin: PathBuf,
    standin: PathBuf,
    policy_dir: PathBuf,
    user: Value,
    channel: Value,
}

impl Fixture {
    fn new(bins: &Bins, mm_rt: tokio::runtime::Handle) -> anyhow::Result<Fixture> {
        let abs = |p: &Path, what: &str| {
            p.canonicalize().with_context(|| {
                format!(
                    "{what} {} not found: run `cargo build --release -p codex-bench -p codex-host`",
                    p.display()
                )
            })
        };
        let host_bin = abs(&bins.host_bin, "the host binary")?;
        let standin = abs(&bins.standin, "the Codex stand-in")?;
        let policy_dir = bins
            .policy_dir
            .canonicalize()
            .ok()
            .filter(|d| d.join("allowlist.wasm").is_file())
            .with_context(|| {
                format!(
                    "{} holds no allowlist.wasm: build the example policies with `make policies`",
                    bins.policy_dir.display()
                )
            })?;
        let dir = tempfile::tempdir()?;
        let repo = dir.path().join("repo");
        std::fs::create_dir_all(&repo)?;
        let admin_policies = dir.path().join("admin-policies");
        std::fs::create_dir_all(&admin_policies)?;
        for (name, module) in ADMIN_MODULES {
            std::fs::copy(
                policy_dir.join(format!("{module}.wasm")),
                admin_policies.join(format!("{name}.wasm")),
            )
            .with_context(|| format!("copying {module}.wasm: run `make policies`"))?;
        }
        let approval = json!({"patterns": ["(?i)\\bdeploy\\b", "(?i)rm -rf", "(?i)\\bprod(uction)?\\b"], "approvers": ["carol"]});
        std::fs::write(
            admin_policies.join("50-approval-for-risky.json"),
            approval.to_string(),
        )?;
        Ok(Fixture {
            user: json!({"id": "user-alice-0000000000000000", "username": "alice", "roles": ["system_user"]}),
            channel: json!({"id": "chan-bench-000000000000000000", "name": "bench", "display_name": "Bench", "kind": "public", "team_id": "team-eng", "team_name": "eng"}),
            mm_rt,
            dir,
            repo,
            admin_policies,
            host_bin,
            standin,
            policy_dir,
        })
    }

    /// A fresh fake Mattermost (its post lookups are linear, so each batch gets a new one).
    async fn mattermost(&self) -> anyhow::Result<FakeMattermost> {
        self.mm_rt
            .spawn(FakeMattermost::start(MattermostConfig::default()))
            .await?
    }
}

/// A running `codex-host serve`, killed when dropped.
struct Host {
    child: tokio::process::Child,
    client: Client,
    log: PathBuf,
}

impl Host {
    /// Starts a host with its own state directory and pushes the settings; `full_chain` adds the
    /// admin modules to the bundled allowlist.
    async fn start(
        fx: &Fixture,
        mm: &FakeMattermost,
        name: &str,
        full_chain: bool,
    ) -> anyhow::Result<Host> {
        let socket = fx.dir.path().join(format!("{name}.sock"));
        let log = fx.dir.path().join(format!("{name}.log"));
        let child = tokio::process::Command::new(&fx.host_bin)
            .arg("serve")
            .arg("--socket")
            .arg(&socket)
            .arg("--state-dir")
            .arg(fx.dir.path().join(format!("{name}-state")))
            .arg("--policy-dir")
            .arg(&fx.policy_dir)
            .env("CODEX_HOST_SECRET", SECRET)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", fx.host_bin.display()))?;
        let host = Host {
            child,
            client: Client::new(socket),
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !matches!(
            host.client.call("GET", "/v1/health", None).await,
            Ok((200, _))
        ) {
            if Instant::now() > deadline {
                bail!("codex-host did not come up; its log:\n{}", host.log_text());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        host.configure(fx, mm, full_chain).await?;
        Ok(host)
    }

    /// Pushes the settings, with `mm` as the Mattermost server, as the plugin does.
    async fn configure(
        &self,
        fx: &Fixture,
        mm: &FakeMattermost,
        full_chain: bool,
    ) -> anyhow::Result<()> {
        let policy_dir = if full_chain {
            fx.admin_policies.display().to_string()
        } else {
            String::new()
        };
        let settings = json!({
            "allowed_users": ["user-alice-0000000000000000"],
            "projects": format!("bench = {}", fx.repo.display()),
            "default_project": "bench",
            "codex_path": fx.standin.display().to_string(),
            "run_timeout_minutes": 5,
            "max_concurrent_runs": MAX_CONCURRENT_RUNS,
            "queue_limit": QUEUE_LIMIT,
            "policy_dir": policy_dir,
            // Acknowledgements are measured on the request path; the stand-in runs beside it are
            // not isolated, as before. What isolation adds to a run is the bridge section's figure
            // (64 sandboxes at once at 500 runs/s would measure bubblewrap on 2 cores instead).
            "run_isolation": "off",
        });
        let body = json!({
            "mattermost_url": mm.url(),
            "bot_user_id": mm.bot().id,
            "bot_token": mm.bot_token(),
            "plugin_version": "bench",
            "plugin_id": "com.github.codex-for-mattermost",
            "actions_url": "/plugins/com.github.codex-for-mattermost/v1/actions",
            "settings": settings,
        });
        let (status, resp) = self.client.call("PUT", "/v1/config", Some(body)).await?;
        ensure!(status == 200, "the host rejected the settings: {resp}");
        let warnings = resp["warnings"].as_array().cloned().unwrap_or_default();
        ensure!(
            warnings.is_empty(),
            "the host warned about the settings: {warnings:?}"
        );
        Ok(())
    }

    fn pid(&self) -> anyhow::Result<u32> {
        self.child.id().context("the host has exited")
    }

    /// `(VmRSS, VmHWM)` in MB.
    fn memory(&self) -> anyhow::Result<(f64, f64)> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()?))?;
        let field = |name: &str| -> anyhow::Result<f64> {
            let line = status
                .lines()
                .find(|l| l.starts_with(name))
                .with_context(|| format!("no {name} in /proc/<pid>/status"))?;
            let kb: f64 = line
                .trim_start_matches(name)
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()?;
            Ok(kb / 1024.0)
        };
        Ok((field("VmRSS:")?, field("VmHWM:")?))
    }

    async fn health(&self) -> anyhow::Result<Value> {
        let (status, health) = self.client.call("GET", "/v1/health", None).await?;
        ensure!(status == 200, "health answered {status}: {health}");
        Ok(health)
    }

    /// The names of the policy modules the host loaded, in chain order.
    async fn chain(&self) -> anyhow::Result<Vec<String>> {
        let health = self.health().await?;
        Ok(health["policies"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m["name"].as_str().map(String::from))
            .collect())
    }

    /// Waits until nothing is running or queued.
    async fn idle(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let q = self.health().await?["queue"].clone();
            if q["running"] == 0 && q["queued"] == 0 {
                return Ok(());
            }
            ensure!(
                Instant::now() < deadline,
                "the host still has runs after its outcomes were posted: {q}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// CPU time the host has used so far, s.
    fn cpu(&self) -> anyhow::Result<f64> {
        cpu_secs(&self.pid()?.to_string())
    }

    fn log_text(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

/// An HTTP/1.1 client on the host's socket with a pool of keep-alive connections, as the plugin's
/// Go `http.Client` keeps them: a request takes an idle connection or opens one, and returns it
/// after reading the response.
struct Client {
    socket: PathBuf,
    idle: Mutex<Vec<SendRequest<Full<Bytes>>>>,
    opened: std::sync::atomic::AtomicUsize,
}

impl Client {
    fn new(socket: PathBuf) -> Client {
        Client {
            socket,
            idle: Mutex::new(Vec::new()),
            opened: Default::default(),
        }
    }

    async fn connection(&self) -> anyhow::Result<SendRequest<Full<Bytes>>> {
        loop {
            let pooled = self.idle.lock().unwrap().pop();
            match pooled {
                Some(mut sender) => {
                    if sender.ready().await.is_ok() {
                        return Ok(sender);
                    }
                }
                None => break,
            }
        }
        let stream = UnixStream::connect(&self.socket).await?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        self.opened
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(sender)
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<(u16, Value)> {
        let mut sender = self.connection().await?;
        let bytes = body
            .map(|b| serde_json::to_vec(&b))
            .transpose()?
            .unwrap_or_default();
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "codex-host")
            .header("authorization", format!("Bearer {SECRET}"))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(bytes)))?;
        let resp = sender.send_request(req).await?;
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await?.to_bytes();
        self.idle.lock().unwrap().push(sender);
        let value = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&body)?
        };
        Ok((status, value))
    }
}

/// What one batch at one rate measured.
struct Batch {
    /// Acknowledgement latencies of the 200 answers, ms.
    latencies: Vec<f64>,
    /// Non-200 answers, transport failures and unexpected replies.
    errors: usize,
    first_error: Option<String>,
    /// Tokens of prompts the host accepted (and must take to one outcome post) or refused with a
    /// visible reply (and must not start).
    accepted: Vec<String>,
    refused: Vec<String>,
    /// Acknowledged requests per second, first send to last acknowledgement.
    achieved: f64,
    /// The latest any send left after its scheduled time, ms.
    max_lag: f64,
}

/// Sends `count` prompts at `rate` per second, open-loop: request `i` is sent at
/// `start + i / rate` by its own task, whatever happened to the earlier ones.
async fn send_batch(host: &Arc<Host>, fx: &Fixture, rate: u32, count: usize, tag: &str) -> Batch {
    let start = tokio::time::Instant::now() + Duration::from_millis(20);
    let mut tasks = Vec::with_capacity(count);
    for i in 0..count {
        let at = start + Duration::from_secs_f64(i as f64 / rate as f64);
        tokio::time::sleep_until(at).await;
        let token = format!("{tag}-{i:05}");
        let body = json!({"user": fx.user, "channel": fx.channel, "root_id": "", "trigger_id": format!("t-{token}"), "text": format!("bench prompt {token}")});
        let host = host.clone();
        tasks.push(tokio::spawn(async move {
            let sent = tokio::time::Instant::now();
            let result = host.client.call("POST", "/v1/commands", Some(body)).await;
            let done = tokio::time::Instant::now();
            (token, sent, (sent - at).as_secs_f64() * 1e3, done, result)
        }));
    }
    let mut batch = Batch {
        latencies: vec![],
        errors: 0,
        first_error: None,
        accepted: vec![],
        refused: vec![],
        achieved: 0.0,
        max_lag: 0.0,
    };
    let (mut first_sent, mut last_done) =
        (None::<tokio::time::Instant>, None::<tokio::time::Instant>);
    for task in tasks {
        let (token, sent, lag, done, result) = match task.await {
            Ok(r) => r,
            Err(e) => {
                batch.errors += 1;
                batch
                    .first_error
                    .get_or_insert(format!("request task failed: {e}"));
                continue;
            }
        };
        first_sent = Some(first_sent.map_or(sent, |f| f.min(sent)));
        last_done = Some(last_done.map_or(done, |l| l.max(done)));
        batch.max_lag = batch.max_lag.max(lag);
        let text = match result {
            Ok((200, resp)) => resp["text"].as_str().unwrap_or_default().to_string(),
            Ok((status, resp)) => {
                batch.errors += 1;
                batch
                    .first_error
                    .get_or_insert(format!("HTTP {status}: {resp}"));
                continue;
            }
            Err(e) => {
                batch.errors += 1;
                batch.first_error.get_or_insert(format!("transport: {e:#}"));
                continue;
            }
        };
        batch.latencies.push((done - sent).as_secs_f64() * 1e3);
        // An empty ephemeral means "started"; a queue position means "accepted, waiting".
        if text.is_empty() || text.starts_with("Queued at position") {
            batch.accepted.push(token);
        } else if text.starts_with("Codex is busy") {
            batch.refused.push(token);
        } else {
            batch.errors += 1;
            batch
                .first_error
                .get_or_insert(format!("unexpected reply: {text}"));
        }
    }
    if let (Some(f), Some(l)) = (first_sent, last_done) {
        batch.achieved = batch.latencies.len() as f64 / (l - f).as_secs_f64();
    }
    batch
}

/// A batch with what was found after it.
struct Measured {
    batch: Batch,
    lost: usize,
    not_answered: usize,
    /// From the last acknowledgement to the last outcome post.
    took: Duration,
    /// CPU used while sending, in cores, by the host and by this process.
    host_cpu: f64,
    bench_cpu: f64,
}

/// Bot posts seen so far, read incrementally from the fake Mattermost (posts are only appended).
#[derive(Default)]
struct Tally {
    scanned: usize,
    /// Prompt token → run ids of the thread roots that quote it.
    roots: HashMap<String, Vec<String>>,
    /// Run id → (status, prompt token of the stand-in's answer, if any) of each outcome post.
    outcomes: HashMap<String, Vec<(String, Option<String>)>>,
}

impl Tally {
    fn scan(&mut self, mm: &FakeMattermost) {
        let from = self.scanned;
        let fresh: Vec<(String, String, String, String)> = mm.read(|s| {
            s.posts[from.min(s.posts.len())..]
                .iter()
                .map(|p| {
                    let prop = |k: &str| {
                        p.post
                            .props
                            .get(k)
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_string()
                    };
                    (
                        prop("codex_kind"),
                        prop("codex_run_id"),
                        prop("codex_status"),
                        p.post.message.clone(),
                    )
                })
                .collect()
        });
        self.scanned = from + fresh.len();
        for (kind, run, status, message) in fresh {
            let token = |after: &str| {
                message
                    .split(after)
                    .nth(1)
                    .and_then(|rest| rest.split_whitespace().next())
                    .map(String::from)
            };
            match kind.as_str() {
                "root" => {
                    if let Some(token) = token("bench prompt ") {
                        self.roots.entry(token).or_default().push(run);
                    }
                }
                "outcome" => self
                    .outcomes
                    .entry(run)
                    .or_default()
                    .push((status, token("Stand-in answer: bench prompt "))),
                _ => {}
            }
        }
    }

    /// Outcome posts of the thread started for `token` (0 when there is not exactly one thread).
    fn outcomes_of(&self, token: &str) -> usize {
        match self.roots.get(token).map(Vec::as_slice) {
            Some([run]) => self.outcomes.get(run).map_or(0, Vec::len),
            _ => 0,
        }
    }

    /// Accepted prompts without exactly one thread and one outcome post, plus refused prompts
    /// that started a thread anyway.
    fn lost(&self, batch: &Batch) -> usize {
        let accepted = batch
            .accepted
            .iter()
            .filter(|t| self.outcomes_of(t) != 1)
            .count();
        accepted
            + batch
                .refused
                .iter()
                .filter(|t| self.roots.contains_key(*t))
                .count()
    }

    /// Outcomes of the batch that are not the stand-in's answer (failed runs, for instance).
    fn not_answered(&self, batch: &Batch) -> usize {
        batch
            .accepted
            .iter()
            .filter_map(|t| match self.roots.get(t).map(Vec::as_slice) {
                Some([run]) => self.outcomes.get(run).map(|o| (t, o)),
                _ => None,
            })
            .flat_map(|(t, o)| o.iter().map(move |x| (t, x)))
            .filter(|(t, (status, answer))| {
                status != "answered" || answer.as_deref() != Some(t.as_str())
            })
            .count()
    }
}

/// Waits until every accepted prompt of the batch has at least one outcome (or the time is up),
/// then once more briefly to catch duplicates; returns how long the outcomes took.
async fn await_outcomes(mm: &FakeMattermost, tally: &mut Tally, batch: &Batch) -> Duration {
    let started = Instant::now();
    loop {
        tally.scan(mm);
        if batch.accepted.iter().all(|t| tally.outcomes_of(t) >= 1)
            || started.elapsed() > OUTCOME_WAIT
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let took = started.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    tally.scan(mm);
    took
}

/// User plus system CPU time of process `pid` (or `self`), s: fields 14 and 15 of
/// `/proc/<pid>/stat`, in the kernel's fixed USER_HZ of 100.
fn cpu_secs(pid: &str) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| -> anyhow::Result<f64> {
        Ok(fields
            .get(i)
            .context("short /proc/<pid>/stat")?
            .parse::<f64>()?)
    };
    Ok((ticks(11)? + ticks(12)?) / 100.0)
}

/// "N cores", from what this process may run on.
fn cores() -> String {
    match std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(1)
    {
        1 => "1 core".into(),
        n => format!("{n} cores"),
    }
}

/// Median wall time of one stand-in turn as the host drives it, ms: spawn `app-server`, the
/// handshake, `thread/start`, `turn/start`, read to `turn/completed`, close stdin, exit.
async fn standin_spawn_ms(fx: &Fixture, n: usize) -> anyhow::Result<f64> {
    use tokio::io::AsyncWriteExt;
    let mut times = Vec::with_capacity(n);
    for i in 0..n {
        let started = std::time::Instant::now();
        let mut child = tokio::process::Command::new(&fx.standin)
            .arg("app-server")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let mut stdin = child.stdin.take().expect("piped");
        let repo = fx.repo.display().to_string();
        let script = [
            serde_json::json!({"id": 1, "method": "initialize", "params": {"clientInfo": {"name": "bench", "version": "0"}}}),
            serde_json::json!({"method": "initialized"}),
            serde_json::json!({"id": 2, "method": "thread/start", "params": {"cwd": repo, "sandbox": "read-only"}}),
            serde_json::json!({"id": 3, "method": "turn/start", "params": {"threadId": "t",
                "input": [{"type": "text", "text": format!("bench prompt spawn-{i}")}]}}),
        ];
        for msg in script {
            stdin.write_all(format!("{msg}\n").as_bytes()).await?;
        }
        drop(stdin);
        let out = child.wait_with_output().await?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        anyhow::ensure!(
            out.status.success() && stdout.contains("turn/completed"),
            "the stand-in did not complete a turn: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        times.push(started.elapsed().as_secs_f64() * 1e3);
    }
    Ok(median(&times))
}

async fn measure(
    common: &Common,
    bins: &Bins,
    mm_rt: tokio::runtime::Handle,
) -> anyhow::Result<()> {
    let (rounds, count) = if common.quick { (1, 100) } else { (3, 1000) };
    let fx = Fixture::new(bins, mm_rt)?;
    let host_name = fx
        .host_bin
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let spawn_ms = standin_spawn_ms(&fx, 30).await?;

    // Idle memory: a fresh host per round, bundled allowlist only.
    let mut idle_rss = Vec::new();
    let mut idle_chain = Vec::new();
    let mm = fx.mattermost().await?;
    for round in 0..3 {
        let host = Host::start(&fx, &mm, &format!("idle-{round}"), false).await?;
        tokio::time::sleep(SETTLE).await;
        idle_rss.push(host.memory()?.0);
        idle_chain = host.chain().await?;
    }

    // Load: one host with the full chain for every batch.
    let host = Arc::new(Host::start(&fx, &mm, "load", true).await?);
    let chain = host.chain().await?;
    ensure!(
        chain.len() == 1 + ADMIN_MODULES.len(),
        "the host loaded {chain:?}, not the allowlist and the admin modules"
    );
    tokio::time::sleep(SETTLE).await;
    let (before_rss, _) = host.memory()?;
    let mut per_rate: HashMap<u32, Vec<Measured>> = HashMap::new();
    for round in 1..=rounds {
        for rate in RATES {
            let mm = fx.mattermost().await?;
            host.configure(&fx, &mm, true).await?;
            let (host_cpu, bench_cpu, started) = (host.cpu()?, cpu_secs("self")?, Instant::now());
            let batch = send_batch(&host, &fx, rate, count, &format!("r{round}-{rate}")).await;
            let sending = started.elapsed().as_secs_f64();
            let host_cpu = (host.cpu()? - host_cpu) / sending;
            let bench_cpu = (cpu_secs("self")? - bench_cpu) / sending;
            let mut tally = Tally::default();
            let took = await_outcomes(&mm, &mut tally, &batch).await;
            let (lost, not_answered) = (tally.lost(&batch), tally.not_answered(&batch));
            if lost == 0 {
                host.idle().await?;
            }
            eprintln!(
                "host: round {round} at {rate}/s: p50 {:.2} ms, p99 {:.2} ms, {} errors, {} refused, {lost} lost, outcomes after {:.1} s",
                quantile(&batch.latencies, 0.5),
                quantile(&batch.latencies, 0.99),
                batch.errors,
                batch.refused.len(),
                took.as_secs_f64()
            );
            per_rate.entry(rate).or_default().push(Measured {
                batch,
                lost,
                not_answered,
                took,
                host_cpu,
                bench_cpu,
            });
        }
    }
    tokio::time::sleep(SETTLE).await;
    let (after_rss, after_hwm) = host.memory()?;

    // Then a steady load on the same host: does its memory keep growing with the number of runs?
    let steady_batches = if common.quick { 2 } else { 5 };
    let mut steady_rss = Vec::with_capacity(steady_batches);
    for i in 0..steady_batches {
        let mm = fx.mattermost().await?;
        host.configure(&fx, &mm, true).await?;
        let batch = send_batch(&host, &fx, STEADY_RATE, count, &format!("steady{i}")).await;
        let mut tally = Tally::default();
        await_outcomes(&mm, &mut tally, &batch).await;
        let lost = tally.lost(&batch);
        ensure!(
            lost == 0 && batch.errors == 0,
            "steady batch {i}: {lost} lost, {} errors ({:?})",
            batch.errors,
            batch.first_error
        );
        host.idle().await?;
        tokio::time::sleep(SETTLE).await;
        steady_rss.push(host.memory()?.0);
        eprintln!(
            "host: steady batch {} at {STEADY_RATE}/s: RSS {:.1} MB",
            i + 1,
            steady_rss[i]
        );
    }
    let (first, last) = (steady_rss[0], steady_rss[steady_batches - 1]);
    let net_per_1000 = (last - first) * 1000.0 / ((steady_batches - 1) * count) as f64;
    let max_rise = steady_rss
        .windows(2)
        .map(|w| w[1] - w[0])
        .fold(0.0, f64::max);
    let steady_note = if net_per_1000 <= 0.0 {
        format!(
            "No leak showed: over the {} steady runs after the first steady batch, RSS went from \
             {first:.1} to {last:.1} MB: it rose by {max_rise:.1} MB at most from one batch to the \
             next and fell over all of them (the allocator gives freed memory back in bulk). What \
             remains after the load test looks like memory kept after the 1000/s burst rather \
             than memory lost.",
            (steady_batches - 1) * count
        )
    } else {
        format!(
            "RSS rose by {net_per_1000:.2} MB per 1,000 runs over the steady batches ({first:.1} to \
             {last:.1} MB). A run this short cannot tell a slow leak from the allocator keeping \
             memory; a longer soak would."
        )
    };
    let connections = host
        .client
        .opened
        .load(std::sync::atomic::Ordering::Relaxed);

    let mut figures = Vec::new();
    let mut notes = vec![format!(
        "The stand-in is not the bottleneck: one turn of it, driven as the host drives Codex (spawn, \
         handshake, `thread/start`, `turn/start` to `turn/completed`, exit), takes {spawn_ms:.1} ms \
         (median of 30), and up to {MAX_CONCURRENT_RUNS} run at once."
    )];
    for rate in RATES {
        let b = &per_rate[&rate];
        let each = |f: &dyn Fn(&Measured) -> f64| b.iter().map(f).collect::<Vec<f64>>();
        let p99 = Figure::new(
            format!("ack p99 at {rate}/s"),
            "ms",
            each(&|m| quantile(&m.batch.latencies, 0.99)),
        );
        figures.push(Figure::new(
            format!("ack p50 at {rate}/s"),
            "ms",
            each(&|m| quantile(&m.batch.latencies, 0.5)),
        ));
        figures.push(if rate == TARGET_RATE {
            p99.target("<", 5.0)
        } else {
            p99
        });
        figures.push(
            Figure::new(
                format!("errors at {rate}/s"),
                "",
                each(&|m| m.batch.errors as f64),
            )
            .target("==", 0.0),
        );
        figures.push(Figure::new(
            format!("refused (queue full) at {rate}/s"),
            "",
            each(&|m| m.batch.refused.len() as f64),
        ));
        figures.push(
            Figure::new(format!("lost at {rate}/s"), "", each(&|m| m.lost as f64))
                .target("==", 0.0),
        );
        figures.push(Figure::new(
            format!("achieved rate at {rate}/s"),
            "/s",
            each(&|m| m.batch.achieved),
        ));
        let max = |f: &dyn Fn(&Measured) -> f64| b.iter().map(f).fold(0.0, f64::max);
        let mut note = format!(
            "At {rate}/s the generator sent every request within {:.1} ms of its scheduled time; \
             while sending, the host used up to {:.0}% of a core (not counting the stand-ins it \
             spawned) and the bench process (generator and fake Mattermost) up to {:.0}%, of the \
             machine's {}; the last outcome of a batch was \
             posted at most {:.1} s after its last acknowledgement.",
            max(&|m| m.batch.max_lag),
            max(&|m| m.host_cpu * 100.0),
            max(&|m| m.bench_cpu * 100.0),
            cores(),
            max(&|m| m.took.as_secs_f64()),
        );
        let achieved = median(&each(&|m| m.batch.achieved));
        if achieved < 0.95 * rate as f64 {
            note.push_str(&format!(
                " The machine did not keep up: {achieved:.0} acknowledgements/s for {rate} sent. \
                 The host, the {rate} Codex stand-ins it starts per second (each a process) and \
                 the generator share {}, so requests wait for a CPU, and the acknowledgement \
                 latency shows that wait.",
                cores()
            ));
        }
        let not_answered: usize = b.iter().map(|m| m.not_answered).sum();
        if not_answered > 0 {
            note.push_str(&format!(
                " {not_answered} outcome(s) were not the stand-in's answer."
            ));
        }
        if let Some(e) = b.iter().find_map(|m| m.batch.first_error.clone()) {
            note.push_str(&format!(" First error: {e}"));
        }
        notes.push(note);
    }
    notes.push(format!(
        "The client opened {connections} keep-alive connections in all."
    ));
    let host_section = Section {
        id: "host".into(),
        title: "Host acknowledgement under load".into(),
        method: format!(
            "`codex-host serve` (`{}`; `make bench` measures the static musl build the bundle ships) on a Unix socket, configured through `PUT /v1/config` like \
             the plugin does, posting to an in-process fake Mattermost (on its own thread; a fresh one \
             for every batch). Policy chain: `{}` (the \
             bundled allowlist, then the example modules; no bench prompt matches a risky pattern, so \
             every run is allowed, read-only). The Codex path is `codex-standin`, which answers the \
             host's `codex app-server` JSON-RPC and completes every turn at once with one agent \
             message; Run isolation is off here, so the figure is the request \
             path's (bubblewrap's cost per run is in the bridge section). `POST /v1/commands` open-loop at 100, 500 and \
             1000 requests/s ({count} distinct prompts per batch, {rounds} round(s), each prompt a new \
             thread, each request its own task on a pool of keep-alive connections); latency from \
             the actual send to the end of the response. Max concurrent runs {MAX_CONCURRENT_RUNS}, \
             queue limit {QUEUE_LIMIT}. After each batch the fake Mattermost must show, for every \
             accepted prompt, exactly one thread and one outcome post in it (missing or duplicated: \
             lost), and no thread for a prompt refused as queue full.",
            host_name,
            chain.join(" → ")
        ),
        figures,
        notes,
    };
    host_section.write(&common.results)?;

    let memory = Section {
        id: "memory".into(),
        title: "Host memory".into(),
        method: format!(
            "`VmRSS` from `/proc/<pid>/status` of `codex-host serve` (`{host_name}`). Idle: a freshly \
             started host (new state directory) configured with the default chain (`{}`), read \
             {} s after the settings were applied; one host per round, 3 rounds. After load: the \
             load-test host (chain `{}`) {} s after its last batch ({} prompts in all), with its peak \
             (`VmHWM`). Then the same host takes {steady_batches} more batches of {count} prompts at \
             {STEADY_RATE}/s, and its RSS is read {} s after each (every prompt checked to reach its \
             outcome): the net change from the first to the last tells a leak (steady growth) \
             from memory the allocator keeps after a burst (flat or falling).",
            idle_chain.join(" → "),
            SETTLE.as_secs(),
            chain.join(" → "),
            SETTLE.as_secs(),
            rounds * RATES.len() * count,
            SETTLE.as_secs(),
        ),
        figures: vec![
            Figure::new("RSS idle, default policy", "MB", idle_rss).target("<", 30.0),
            Figure::new("RSS before load, full chain", "MB", vec![before_rss]),
            Figure::new("RSS after load", "MB", vec![after_rss]),
            Figure::new("peak RSS (VmHWM) after load", "MB", vec![after_hwm]),
            Figure::new(
                format!("RSS after each steady batch at {STEADY_RATE}/s"),
                "MB",
                steady_rss,
            ),
            Figure::new(
                "net RSS change per 1,000 runs over the steady batches",
                "MB",
                vec![net_per_1000],
            ),
        ],
        notes: vec![steady_note],
    };
    memory.write(&common.results)?;
    Ok(())
}
