//! The `codex-host` command line: `serve` for the plugin, `run` to try the pipeline in a terminal.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use tokio_util::sync::CancellationToken;
use tracing::info;

use codex_host::api;
use codex_host::buttons::Signer;
use codex_host::chat::{Chat, MattermostClient, TerminalChat};
use codex_host::config::Settings;
use codex_host::gate::{LocalGate, PolicyGate};
use codex_host::history;
use codex_host::model::RunStatus;
use codex_host::protocol::ConfigRequest;
use codex_host::runner::isolation::{Isolation, IsolationMode};
use codex_host::state::Host;
use codex_host::store::{now_ms, HistoryFilter, Store};

#[derive(Parser)]
#[command(
    name = "codex-host",
    version,
    about = "Runs the OpenAI Codex CLI for Mattermost chat requests."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the plugin on a Unix socket (managed by the plugin, or run by an admin).
    Serve(ServeArgs),
    /// Serve a Mattermost server from this machine, dialling out over HTTPS (a remote runner).
    Connect(ConnectArgs),
    /// Run one prompt through the same pipeline and print the answer here; no Mattermost needed.
    Run(RunArgs),
    /// Print the audit and run history as JSON lines (oldest first), filtered.
    Audit(AuditArgs),
    /// Check, test and benchmark policy modules.
    #[command(subcommand)]
    Policy(codex_policy::cli::PolicyCommand),
}

#[derive(Parser)]
struct ServeArgs {
    /// Path of the Unix socket to create (mode 0660).
    #[arg(long)]
    socket: PathBuf,
    /// Extra uid allowed to connect (repeatable); the host's own uid always may.
    #[arg(long = "allow-uid")]
    allow_uids: Vec<u32>,
    /// Give the socket file to this group (name or id), so that the Mattermost server's user can
    /// open it by being a member, without sharing any other file of the host's.
    #[arg(long)]
    socket_group: Option<String>,
    /// File holding the shared secret, instead of the CODEX_HOST_SECRET environment variable.
    #[arg(long)]
    secret_file: Option<PathBuf>,
    #[command(flatten)]
    host: HostArgs,
}

#[derive(Parser)]
struct ConnectArgs {
    /// The Mattermost server's URL, as its users reach it (`https://chat.example.com`).
    #[arg(long)]
    server: String,
    /// File holding the runner's token (from `/codex runner add <name>`); readable only by you.
    #[arg(long)]
    token_file: PathBuf,
    /// The plugin's id on the server.
    #[arg(long, default_value = "com.github.codex-for-mattermost")]
    plugin_id: String,
    #[command(flatten)]
    host: HostArgs,
}

/// What `serve` and `connect` share: where the host keeps its state, how it logs, its policies
/// and its sandbox.
#[derive(clap::Args)]
struct HostArgs {
    /// Directory for the SQLite state database.
    #[arg(long)]
    state_dir: PathBuf,
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Directory of the bundled policy modules (`allowlist.wasm`) [default: the bundle's
    /// `policies/` folder next to this executable's `server/dist/`; without one, the allowlist
    /// built into this executable].
    #[arg(long)]
    policy_dir: Option<PathBuf>,
    /// The bubblewrap executable that isolates each Codex run (a name on PATH or a path).
    #[arg(long, env = "CODEX_HOST_BWRAP", default_value = "bwrap")]
    bwrap: PathBuf,
}

#[derive(Parser)]
struct AuditArgs {
    /// The host's state directory (managed mode: `.com.github.codex-for-mattermost/` next to
    /// the server's plugins directory) [default: as for `run`].
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// Only records since then: 30m, 12h, 7d, a date (2026-11-01) or an RFC 3339 time.
    #[arg(long)]
    since: Option<String>,
    /// Only records of this Mattermost user id.
    #[arg(long)]
    user: Option<String>,
    /// Only records of this Mattermost channel id.
    #[arg(long)]
    channel: Option<String>,
    /// Only policy decisions with this outcome: allow, deny or require-approval.
    #[arg(long)]
    decision: Option<String>,
}

#[derive(Parser)]
struct RunArgs {
    /// The prompt for Codex.
    prompt: String,
    /// A project from the config file.
    #[arg(long)]
    project: Option<String>,
    /// Run in this repository instead of a configured project.
    #[arg(long)]
    repo: Option<PathBuf>,
    /// Settings file (TOML, same keys as System Console: projects, codex_path, codex_config, ...).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Directory for the state database [default: $XDG_STATE_HOME/codex-host or ~/.local/state/codex-host].
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// Codex CLI to run [default: codex_path from the config, else `codex` on PATH].
    #[arg(long)]
    codex: Option<String>,
    /// Extra Codex `-c key=value` override (repeatable).
    #[arg(short = 'c', long = "codex-config")]
    codex_config: Vec<String>,
    /// Sandbox: read-only, workspace-write or danger-full-access.
    #[arg(long)]
    sandbox: Option<String>,
    /// Model (e.g. gpt-5.5) [default: Codex's own].
    #[arg(short = 'm', long)]
    model: Option<String>,
    /// Run timeout in minutes.
    #[arg(long)]
    timeout_minutes: Option<f64>,
    /// Run isolation: bubblewrap (Codex sees only the repository, its own Codex home and temp)
    /// or off [default: run_isolation from the config, else bubblewrap].
    #[arg(long)]
    isolation: Option<String>,
    /// A variable of this environment that Codex also gets, such as OPENAI_API_KEY (repeatable;
    /// Codex otherwise gets only PATH, LANG, LC_*, TERM and TZ).
    #[arg(long = "env")]
    env: Vec<String>,
    /// The bubblewrap executable (a name on PATH or a path).
    #[arg(long, env = "CODEX_HOST_BWRAP", default_value = "bwrap")]
    bwrap: PathBuf,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let result = rt.block_on(async {
        match cli.command {
            Command::Serve(a) => serve(a).await,
            Command::Connect(a) => connect(a).await,
            Command::Run(a) => run(a).await,
            Command::Audit(a) => audit(a),
            Command::Policy(cmd) => {
                init_logs("warn", LogFormat::Text);
                tokio::task::spawn_blocking(move || codex_policy::cli::run(cmd)).await?
            }
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("codex-host: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn init_logs(default: &str, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CODEX_HOST_LOG")
        .unwrap_or_else(|_| default.into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.with_ansi(false).init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

/// The exit code of a host that cannot start with the configuration it was given (sysexits'
/// EX_CONFIG), so that a service manager can stop restarting it (`RestartPreventExitStatus=78`).
const EXIT_CONFIG: u8 = 78;

async fn serve(a: ServeArgs) -> Result<ExitCode> {
    init_logs("info", a.host.log_format);
    let (host, listener, opts) = match start(a).await {
        Ok(started) => started,
        Err(e) => {
            tracing::error!("cannot start: {e:#}");
            return Ok(ExitCode::from(EXIT_CONFIG));
        }
    };
    let shutdown = CancellationToken::new();
    let signals = cancel_on_signal(shutdown.clone());
    let served = api::serve(host.clone(), listener, opts, shutdown.clone()).await;
    host.shutdown(Duration::from_secs(10)).await;
    signals.abort();
    served?;
    info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// Everything `serve` needs before it accepts connections; an error here is a configuration error.
async fn start(a: ServeArgs) -> Result<(Arc<Host>, tokio::net::UnixListener, api::ServerOptions)> {
    let secret = match &a.secret_file {
        Some(f) => std::fs::read_to_string(f)
            .with_context(|| format!("reading the secret file {}", f.display()))?
            .trim()
            .to_string(),
        None => std::env::var("CODEX_HOST_SECRET").unwrap_or_default(),
    };
    if secret.len() < 16 {
        bail!("no usable secret: set CODEX_HOST_SECRET (or --secret-file) to the plugin's Host secret, at least 16 characters");
    }
    let host = build_host(&a.host, MattermostClient::new(), vec![secret.clone()])?;
    let opts = api::ServerOptions {
        socket: a.socket,
        secret,
        allow_uids: a.allow_uids,
        socket_group: a.socket_group,
    };
    let listener = api::bind(&opts)?;
    Ok((host, listener, opts))
}

/// A host on this machine's state directory, recovered from its last stop.
fn build_host(args: &HostArgs, chat: MattermostClient, secrets: Vec<String>) -> Result<Arc<Host>> {
    let HostArgs {
        state_dir,
        policy_dir,
        bwrap,
        ..
    } = args;
    let store = open_store(state_dir)?;
    let signer = Signer::from_state_dir(state_dir)?;
    let gate = PolicyGate::new(
        policy_dir.clone().or_else(bundled_policy_dir),
        state_dir.join("policy-cache"),
    )
    .context("starting the policy engine")?;
    let isolation = Isolation::new(IsolationMode::default(), bwrap, state_dir);
    let host = Host::new(
        store,
        Chat::Mattermost(chat),
        Arc::new(gate),
        signer,
        secrets,
        isolation,
    );
    let interrupted = host.recover()?;
    host.start_worktree_pruning();
    info!(version = env!("CARGO_PKG_VERSION"), interrupted, state_dir = %state_dir.display(), "codex-host starting");
    Ok(host)
}

/// `codex-host connect`: a remote runner (host/src/remote.rs).
async fn connect(a: ConnectArgs) -> Result<ExitCode> {
    init_logs("info", a.host.log_format);
    let token = match std::fs::read_to_string(&a.token_file) {
        Ok(t) => t.trim().to_string(),
        Err(e) => {
            tracing::error!("cannot read the token file {}: {e}", a.token_file.display());
            return Ok(ExitCode::from(EXIT_CONFIG));
        }
    };
    if !token.starts_with("cxr.") {
        tracing::error!("{} does not hold a runner token (they start with `cxr.`); a system admin makes one with `/codex runner add <name>`", a.token_file.display());
        return Ok(ExitCode::from(EXIT_CONFIG));
    }
    // No socket secret exists for a runner; its token is what must never reach a post.
    let host = match build_host(
        &a.host,
        MattermostClient::through_plugin(&a.plugin_id),
        vec![token.clone()],
    ) {
        Ok(h) => h,
        Err(e) => {
            tracing::error!("cannot start: {e:#}");
            return Ok(ExitCode::from(EXIT_CONFIG));
        }
    };
    let shutdown = CancellationToken::new();
    let signals = cancel_on_signal(shutdown.clone());
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    let opts = codex_host::remote::ConnectOptions {
        server: a.server,
        plugin_id: a.plugin_id,
        token,
        hostname,
    };
    let served = codex_host::remote::connect(host.clone(), opts, shutdown.clone()).await;
    host.shutdown(Duration::from_secs(10)).await;
    signals.abort();
    if let Err(e) = served {
        tracing::error!("stopped: {e:#}");
        return Ok(ExitCode::from(EXIT_CONFIG));
    }
    info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// Cancels `shutdown` on SIGTERM or SIGINT.
fn cancel_on_signal(shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        wait_for_signal().await;
        info!("shutting down");
        shutdown.cancel();
    })
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

fn audit(a: AuditArgs) -> Result<ExitCode> {
    let state_dir = a.state_dir.unwrap_or_else(default_state_dir);
    let db = state_dir.join("codex-host.db");
    if !db.exists() {
        bail!("no state database at {}; pass --state-dir", db.display());
    }
    let filter = HistoryFilter {
        since_ms: a
            .since
            .map(|s| history::parse_since(&s, now_ms()))
            .transpose()?,
        user_id: a.user,
        channel_id: a.channel,
        decision: a.decision,
    };
    let store = Store::open(&db)?;
    history::write_jsonl(&store, &filter, &mut std::io::stdout().lock())?;
    Ok(ExitCode::SUCCESS)
}

fn open_store(dir: &Path) -> Result<Store> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("creating the state directory {}", dir.display()))?;
    Store::open(&dir.join("codex-host.db"))
}

async fn run(a: RunArgs) -> Result<ExitCode> {
    init_logs("warn", LogFormat::Text);
    let mut settings: Settings = match &a.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            toml::from_str(&text)
                .with_context(|| format!("{} is not a valid settings file", path.display()))?
        }
        None => Settings::default(),
    };
    let project = match (&a.repo, &a.project) {
        (Some(repo), _) => {
            let repo = repo.canonicalize().with_context(|| format!("the repository {} does not exist", repo.display()))?;
            let name = a.project.clone().unwrap_or_else(|| "local".into());
            settings.projects.push_str(&format!("\n{name} = {}", repo.display()));
            name
        }
        (None, Some(p)) => p.clone(),
        (None, None) => bail!("say where Codex should run: --repo <dir>, or --project <name> with --config <settings.toml>"),
    };
    if let Some(c) = a.codex {
        settings.codex_path = c;
    }
    for c in a.codex_config {
        settings.codex_config.push_str(&format!("\n{c}"));
    }
    if let Some(s) = a.sandbox {
        settings.default_sandbox = s;
    }
    if let Some(m) = a.model {
        settings.model = m;
    }
    if let Some(t) = a.timeout_minutes {
        settings.run_timeout_minutes = t;
    }
    if let Some(i) = a.isolation {
        settings.run_isolation = i;
    }
    for name in a.env {
        settings.codex_env.push_str(&format!("\n{name}"));
    }
    settings.max_concurrent_runs = 1;
    let state_dir = a.state_dir.unwrap_or_else(default_state_dir);
    let store = open_store(&state_dir)?;
    let chat = Chat::Terminal(TerminalChat::new(state_dir.join("attachments")));
    let isolation = Isolation::new(IsolationMode::default(), &a.bwrap, &state_dir);
    let host = Host::new(
        store,
        chat,
        Arc::new(LocalGate),
        Signer::random(),
        vec![],
        isolation,
    );
    host.recover()?;
    let req = ConfigRequest {
        settings,
        ..Default::default()
    };
    if let Err(problems) = host.apply_config(req, false).await {
        bail!("the settings are invalid:\n  {}", problems.join("\n  "));
    }
    let accepted = host
        .submit_local(&project, &a.prompt)
        .await
        .map_err(anyhow::Error::msg)?;
    let status = tokio::select! {
        s = accepted.outcome() => s,
        _ = wait_for_signal() => {
            host.shutdown(Duration::from_secs(5)).await;
            RunStatus::Interrupted
        }
    };
    Ok(if status == RunStatus::Answered {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// In the plugin bundle the host is `<bundle>/server/dist/codex-host-<platform>` and the modules
/// are in `<bundle>/policies/`.
fn bundled_policy_dir() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?.parent()?.parent()?.join("policies");
    dir.is_dir().then_some(dir)
}

fn default_state_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("XDG_STATE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("codex-host");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    home.join(".local/state/codex-host")
}
