//! The host as a whole: wiring the parts into a [`Host`], applying settings (validated, then
//! swapped in as one [`Snapshot`]), recovery after a restart, health, the project list for
//! autocomplete, `codex-host run`, and shutdown.
//!
//! Input: settings pushes and lifecycle calls from `main` and `api`; output: the snapshot in
//! force, warnings and problems for the admin.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::buttons::Signer;
use crate::chat::Chat;
use crate::config::Config;
use crate::gate::{Evaluator, Gate};
use crate::metrics::Metrics;
use crate::protocol::{
    AutocompleteItem, Channel, ChannelKind, CodexInfo, ConfigRequest, Health, QueueInfo, User,
};
use crate::render::Redactor;
use crate::runner::isolation::{Isolation, IsolationInfo};
use crate::runner::{self, Scheduler};
use crate::runs::{internal, Accepted, Intent, Submission};
use crate::state::{ActiveRun, Deliveries, Host, Snapshot, StopReason};

/// How often the retention period is applied besides each settings push.
const RETENTION_EVERY: Duration = Duration::from_secs(6 * 3600);

/// The bot's username when the plugin does not say (it always creates `@codex`).
const DEFAULT_BOT_USERNAME: &str = "codex";

impl Host {
    /// A host with no settings yet: it refuses runs until [`Host::apply_config`] succeeds.
    pub fn new(
        store: crate::store::Store,
        chat: Chat,
        gate: Arc<dyn Gate>,
        signer: Signer,
        secrets: Vec<String>,
        isolation: Isolation,
    ) -> Arc<Host> {
        let snapshot = Snapshot {
            config: None,
            isolation: Arc::new(isolation),
            redactor: Arc::new(Redactor::new(secrets.clone())),
            bot_user_id: String::new(),
            bot_username: DEFAULT_BOT_USERNAME.to_string(),
            mattermost_url: String::new(),
            actions_url: String::new(),
            codex: None,
        };
        let metrics = Arc::new(Metrics::default());
        Arc::new(Host {
            store,
            chat,
            policy: Evaluator::new(gate, metrics.clone()),
            metrics,
            retention_loop: Default::default(),
            snapshot: ArcSwap::from_pointee(snapshot),
            scheduler: Scheduler::new(1, 0),
            active: Mutex::new(HashMap::new()),
            signer,
            approval_waiters: Mutex::new(HashMap::new()),
            command_asks: Mutex::new(HashMap::new()),
            secrets,
            tasks: TaskTracker::new(),
            stopping: CancellationToken::new(),
            deliveries: Deliveries::default(),
        })
    }

    /// Marks runs a previous process left unfinished as interrupted. Their threads are told once a
    /// Mattermost connection is configured.
    pub fn recover(&self) -> anyhow::Result<usize> {
        // A crashed host leaves its Codex processes running; they still hold their sessions.
        for pgid in self.store.leftover_pgids()? {
            if runner::process::kill_leftover_group(pgid) {
                warn!(
                    pgid,
                    "ended a Codex process group left by the previous host"
                );
            }
        }
        let left = self.store.interrupt_leftovers()?;
        for r in &left {
            warn!(run = %r.id, project = %r.project, "run was in progress when the host stopped; marked interrupted");
            let _ = self.store.audit(
                "run.interrupted",
                Some(&r.id),
                &r.user_id,
                &r.channel_id,
                &json!({"previous_status": "running_or_queued"}),
            );
        }
        Ok(left.len())
    }

    /// Validates and applies settings. On error nothing changes and every problem is returned.
    /// `require_mattermost` is false for `codex-host run` (the terminal, no server).
    pub async fn apply_config(
        self: &Arc<Self>,
        req: ConfigRequest,
        require_mattermost: bool,
    ) -> Result<Vec<String>, Vec<String>> {
        let mut problems = Vec::new();
        if require_mattermost {
            if req.mattermost_url.trim().is_empty() {
                problems.push(
                    "mattermost_url: empty; the plugin must send the server's URL (Site URL)."
                        .to_string(),
                );
            }
            if req.bot_token.trim().is_empty() || req.bot_user_id.trim().is_empty() {
                problems.push("bot_token/bot_user_id: empty; the plugin must create the bot and its access token first.".to_string());
            }
        }
        let cfg = match Config::from_settings(req.settings) {
            Ok(c) if problems.is_empty() => c,
            Ok(_) => return Err(problems),
            Err(mut p) => {
                problems.append(&mut p);
                return Err(problems);
            }
        };
        let old = self.snapshot();
        let mut warnings = Vec::new();
        let gate = self.policy.gate().clone();
        let settings = cfg.settings.clone();
        // A chain that does not load refuses the push, and every request until it is fixed; the
        // rest of the settings still apply, so the host stays configured and says why it refuses.
        let gate_problem =
            match tokio::task::spawn_blocking(move || gate.configure(&settings)).await {
                Ok(Ok(loaded)) => {
                    loaded.iter().for_each(|l| info!("{l}"));
                    None
                }
                Ok(Err(e)) => Some(e),
                Err(e) => Some(format!("Policy: loading the chain crashed ({e}).")),
            };
        for p in cfg.projects.values() {
            if !p.repo.is_dir() {
                warnings.push(format!(
                    "Project `{}`: {} is not a directory on the host machine.",
                    p.name,
                    p.repo.display()
                ));
            }
        }
        // The plugin shows the admin a Codex that does not start, and health reports its version.
        // `codex-host run` skips the check: starting Node.js for `--version` would add ~90 ms to
        // every run (bench/REPORT.md, bridge), and the run itself says clearly if Codex is missing.
        let mut codex = old.codex.clone();
        if require_mattermost {
            match runner::process::codex_version(&cfg.settings.codex_path).await {
                Some(v) => {
                    if let Some(w) = runner::tested::untested_warning(&cfg.settings.codex_path, &v)
                    {
                        warnings.push(w);
                    }
                    codex = Some((cfg.settings.codex_path.clone(), v));
                }
                None => warnings.push(format!(
                    "Codex path: `{}` did not run (`--version` failed); runs will fail until it is installed.",
                    cfg.settings.codex_path
                )),
            }
        }
        let (mut bot_user_id, mut bot_username, mut mattermost_url, mut actions_url) = (
            old.bot_user_id.clone(),
            old.bot_username.clone(),
            old.mattermost_url.clone(),
            old.actions_url.clone(),
        );
        if require_mattermost {
            if let Chat::Mattermost(c) = &self.chat {
                c.configure(&req.mattermost_url, &req.bot_token, &req.bot_user_id);
            }
            bot_user_id = req.bot_user_id.clone();
            bot_username = match req.bot_username.trim() {
                "" => DEFAULT_BOT_USERNAME.to_string(),
                name => name.to_string(),
            };
            mattermost_url = req.mattermost_url.trim_end_matches('/').to_string();
            actions_url = req.actions_url.clone();
        }
        let isolation = old.isolation.with_mode(cfg.isolation).probe().await;
        match isolation.info() {
            IsolationInfo { active: true, .. } => info!("run isolation: bubblewrap (each Codex run sees only its project, its own Codex home and temp)"),
            IsolationInfo { problem: Some(p), .. } => warnings.push(format!("Run isolation: {p}. Runs are refused until this is fixed or Run isolation is set to off.")),
            _ => warn!("run isolation is off: Codex can read everything the host's OS user can (set Run isolation to bubblewrap)"),
        }
        let mut secrets = self.secrets.clone();
        if !req.bot_token.is_empty() {
            secrets.push(req.bot_token.clone());
        }
        self.scheduler
            .set_limits(cfg.settings.max_concurrent_runs, cfg.settings.queue_limit);
        info!(projects = %cfg.project_names(), max_concurrent = cfg.settings.max_concurrent_runs, queue_limit = cfg.settings.queue_limit, "configuration applied");
        let cfg = Arc::new(cfg);
        self.snapshot.store(Arc::new(Snapshot {
            config: Some(cfg.clone()),
            isolation: Arc::new(isolation),
            redactor: Arc::new(Redactor::new(secrets)),
            bot_user_id,
            bot_username,
            mattermost_url,
            actions_url,
            codex,
        }));
        for w in &warnings {
            warn!("{w}");
        }
        if require_mattermost {
            self.resume_approvals(&cfg);
        }
        let host = self.clone();
        self.tasks.spawn(async move { host.redeliver().await });
        self.forget_old_history(&cfg);
        if !self
            .retention_loop
            .swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            let host = self.clone();
            self.tasks.spawn(async move {
                loop {
                    tokio::select! {
                        _ = host.stopping.cancelled() => return,
                        _ = tokio::time::sleep(RETENTION_EVERY) => {}
                    }
                    if let Some(cfg) = host.config() {
                        host.forget_old_history(&cfg);
                    }
                }
            });
        }
        if let Some(problem) = gate_problem {
            tracing::error!(problem = %problem, "the policy chain did not load; every request is refused until the settings are fixed");
            return Err(vec![problem]);
        }
        Ok(warnings)
    }

    /// Applies **Keep history (days)**: erases prompts, answers and output tails of runs that
    /// finished before the period, and older audit entries.
    pub fn forget_old_history(&self, cfg: &Config) {
        let days = cfg.settings.retention_days;
        if days == 0 {
            return;
        }
        let cutoff = crate::store::now_ms() - i64::from(days) * 86_400_000;
        match self.store.forget_before(cutoff) {
            Ok(f) if f.runs + f.audit_entries > 0 => {
                info!(
                    days,
                    runs = f.runs,
                    audit_entries = f.audit_entries,
                    "history older than the retention period erased"
                )
            }
            Ok(_) => {}
            Err(e) => warn!(error = %e, "could not erase history older than the retention period"),
        }
    }

    pub fn health(&self) -> Health {
        let (running, queued, max, limit) = self.scheduler.counts();
        let snapshot = self.snapshot();
        let (path, version) = snapshot.codex.clone().unwrap_or_default();
        Health {
            version: env!("CARGO_PKG_VERSION").into(),
            configured: snapshot.config.is_some(),
            codex: CodexInfo {
                tested: runner::tested::is_tested(&version),
                tested_range: runner::tested::tested_range(),
                path,
                version,
            },
            queue: QueueInfo {
                running,
                queued,
                max_concurrent_runs: max,
                queue_limit: limit,
            },
            policies: self.policy.gate().describe(),
            isolation: snapshot.isolation.info(),
            metrics: self
                .metrics
                .info(self.store.pending_approvals().map_or(0, |p| p.len())),
        }
    }

    /// The configured projects for the `/codex project` autocomplete, the channel's active one
    /// marked.
    pub fn autocomplete_projects(&self, channel_id: &str) -> Vec<AutocompleteItem> {
        let Some(cfg) = self.config() else {
            return vec![];
        };
        let active = self.active_project(&cfg, channel_id);
        cfg.projects
            .values()
            .map(|p| AutocompleteItem {
                item: p.name.clone(),
                hint: p.repo.display().to_string(),
                help_text: match (active.as_deref() == Some(&p.name), p.notes.is_empty()) {
                    (true, true) => "active here".into(),
                    (true, false) => format!("{} (active here)", p.notes),
                    (false, _) => p.notes.clone(),
                },
            })
            .collect()
    }

    /// Runs a prompt for `codex-host run`: same pipeline, printed to the terminal.
    pub async fn submit_local(
        self: &Arc<Self>,
        project: &str,
        prompt: &str,
    ) -> Result<Accepted, String> {
        let cfg = self.config().ok_or("no configuration")?;
        let user = User {
            id: "local".into(),
            username: std::env::var("USER").unwrap_or_else(|_| "local".into()),
            ..Default::default()
        };
        let channel = Channel {
            id: "terminal".into(),
            name: "terminal".into(),
            kind: ChannelKind::Direct,
            ..Default::default()
        };
        self.store
            .set_channel_project(&channel.id, project, &user.id)
            .map_err(internal)?;
        let submission = Submission {
            user: &user,
            channel: &channel,
            root_id: "",
            intent: Intent::New,
            prompt,
            trigger: None,
            bot_can_post: true,
        };
        self.submit(&cfg, submission).await.map_err(|r| r.text)
    }

    /// Stops accepting work, ends runs in flight as interrupted (telling their threads) and waits
    /// for them, at most `grace`.
    pub async fn shutdown(&self, grace: Duration) {
        self.stopping.cancel();
        let runs: Vec<(String, Arc<ActiveRun>)> = self
            .active
            .lock()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (id, run) in &runs {
            self.stop(id, run, StopReason::Shutdown);
        }
        self.tasks.close();
        if tokio::time::timeout(grace, self.tasks.wait())
            .await
            .is_err()
        {
            warn!("some runs did not finish within the shutdown grace period; they will be marked interrupted on the next start");
        }
    }
}
