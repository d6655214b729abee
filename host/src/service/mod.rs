//! The host's behaviour: turns commands and thread replies into runs, drives each run from queue
//! to exactly one outcome post, and answers the informational commands.
//!
//! Input: contract requests from `api` (or the `run` CLI); output: contract responses, posts
//! through `chat`, rows in `store`. Decisions come from the `gate`; texts from `render`; Codex
//! from `runner`. Nothing here parses HTTP or formats markdown by hand.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn, Instrument};

use crate::api::contract::*;
use crate::buttons::{ButtonAction, Refusal, Signer};
use crate::chat::{Chat, NewPost, Post};
use crate::config::{Config, Project, Sandbox};
use crate::gate::{Action, Decision, Gate, GateRequest, Limits, Ruling, RunTerms};
use crate::model::{RunMode, RunStatus};
use crate::render::{self, Redactor};
use crate::runner::isolation::{Isolation, IsolationInfo, RunSpace};
use crate::runner::{self, Admission, Ending, Invocation, RunState, Scheduler, SpawnError};
use crate::store::{now_ms, OutcomeText, RunResult, RunRow, Store, ThreadRow};

/// Progress posts are edited at most this often.
pub const PROGRESS_INTERVAL: Duration = Duration::from_millis(1500);
/// How long Retry buttons stay valid.
const RETRY_TTL_S: i64 = 7 * 24 * 3600;
/// Answers longer than this many posts are attached as a file instead.
const MAX_ANSWER_PARTS: usize = 4;
/// How long accepting a prompt may spend reading its thread: the plugin waits 5 s for the answer.
const TRANSCRIPT_READ_LIMIT: Duration = Duration::from_secs(3);
mod approvals;
mod delivery;
mod images;

use approvals::{ApprovalSpec, PlanRecord};
use delivery::{Deliveries, Outcome};

/// Every `/codex` subcommand; contract/commands.json lists the same (host/tests/commands.rs).
pub const SUBCOMMANDS: &[&str] = &[
    "help", "new", "continue", "project", "projects", "status", "last", "cancel", "policy",
];

/// Why a run was stopped before Codex finished.
#[derive(Debug, Clone)]
enum StopReason {
    Cancelled { by: String },
    Shutdown,
}

struct ActiveRun {
    cancel: CancellationToken,
    reason: Mutex<Option<StopReason>>,
    root_id: Mutex<String>,
    channel_id: String,
    user_id: String,
    username: String,
    project: String,
    admitted: Instant,
    started: Mutex<Option<Instant>>,
}

impl ActiveRun {
    fn new(user: &User, channel_id: &str, project: &str, root_id: &str) -> Arc<ActiveRun> {
        Arc::new(ActiveRun {
            cancel: CancellationToken::new(),
            reason: Mutex::new(None),
            root_id: Mutex::new(root_id.to_string()),
            channel_id: channel_id.to_string(),
            user_id: user.id.clone(),
            username: user.username.clone(),
            project: project.to_string(),
            admitted: Instant::now(),
            started: Mutex::new(None),
        })
    }
}

/// Where a run's posts go.
#[derive(Debug, Clone)]
enum Placement {
    /// The bot starts a new thread in the channel.
    NewRoot,
    /// An existing thread; `mode_hint` is Bind when the thread has no Codex session yet.
    Thread { root_id: String },
}

/// The post that asked for a run, when a reply in a thread (not a slash command) did.
struct Trigger {
    post_id: String,
    file_ids: Vec<String>,
}

/// Everything decided when a prompt is accepted.
struct Plan {
    run_id: String,
    user: User,
    channel: Channel,
    project: Project,
    placement: Placement,
    prompt: String,
    trigger_post_id: Option<String>,
    /// Files attached to the triggering post; images among them go to Codex with `-i`.
    file_ids: Vec<String>,
    sandbox: Sandbox,
    model: Option<String>,
    timeout: Duration,
    thread_key: String,
    /// The thread transcript read when the prompt was accepted; later posts and edits never
    /// reach this run.
    context: Option<render::Transcript>,
}

/// What the caller of [`Host::submit`] learns.
pub struct Accepted {
    pub run_id: String,
    pub position: usize,
    pub needs_approval: bool,
    done: tokio::sync::oneshot::Receiver<RunStatus>,
}

impl Accepted {
    /// Waits for the run's outcome (used by `codex-host run`).
    pub async fn outcome(self) -> RunStatus {
        self.done.await.unwrap_or(RunStatus::Interrupted)
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Intent {
    Auto,
    New,
    Continue,
    Retry,
}

pub struct Host {
    store: Store,
    chat: Chat,
    gate: Arc<dyn Gate>,
    config: RwLock<Option<Arc<Config>>>,
    scheduler: Scheduler,
    /// How runs are confined, as last probed for the configured mode.
    isolation: RwLock<Arc<Isolation>>,
    active: Mutex<HashMap<String, Arc<ActiveRun>>>,
    redactor: RwLock<Arc<Redactor>>,
    bot_user_id: RwLock<String>,
    mattermost_url: RwLock<String>,
    actions_url: RwLock<String>,
    signer: Signer,
    approval_waiters: Mutex<HashMap<String, Arc<tokio::sync::Notify>>>,
    codex_version: RwLock<Option<(String, String)>>,
    secrets: Vec<String>,
    tasks: TaskTracker,
    stopping: CancellationToken,
    deliveries: Deliveries,
}

impl Host {
    pub fn new(
        store: Store,
        chat: Chat,
        gate: Arc<dyn Gate>,
        signer: Signer,
        secrets: Vec<String>,
        isolation: Isolation,
    ) -> Arc<Host> {
        Arc::new(Host {
            store,
            chat,
            gate,
            config: RwLock::new(None),
            scheduler: Scheduler::new(1, 0),
            isolation: RwLock::new(Arc::new(isolation)),
            active: Mutex::new(HashMap::new()),
            redactor: RwLock::new(Arc::new(Redactor::new(secrets.clone()))),
            bot_user_id: RwLock::new(String::new()),
            mattermost_url: RwLock::new(String::new()),
            actions_url: RwLock::new(String::new()),
            signer,
            approval_waiters: Mutex::new(HashMap::new()),
            codex_version: RwLock::new(None),
            secrets,
            tasks: TaskTracker::new(),
            stopping: CancellationToken::new(),
            deliveries: Deliveries::default(),
        })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    fn config(&self) -> Option<Arc<Config>> {
        self.config
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn isolation(&self) -> Arc<Isolation> {
        self.isolation
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn redactor(&self) -> Arc<Redactor> {
        self.redactor
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn bot_id(&self) -> String {
        self.bot_user_id
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
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
        let mut warnings = Vec::new();
        let gate = self.gate.clone();
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
        if require_mattermost {
            match runner::process::codex_version(&cfg.settings.codex_path).await {
                Some(v) => *self.codex_version.write().unwrap() = Some((cfg.settings.codex_path.clone(), v)),
                None => warnings.push(format!(
                    "Codex path: `{}` did not run (`--version` failed); runs will fail until it is installed.",
                    cfg.settings.codex_path
                )),
            }
        }
        if require_mattermost {
            if let Chat::Mattermost(c) = &self.chat {
                c.configure(&req.mattermost_url, &req.bot_token, &req.bot_user_id);
            }
            *self.bot_user_id.write().unwrap() = req.bot_user_id.clone();
            *self.mattermost_url.write().unwrap() =
                req.mattermost_url.trim_end_matches('/').to_string();
            *self.actions_url.write().unwrap() = req.actions_url.clone();
        }
        let isolation = self.isolation().with_mode(cfg.isolation).probe().await;
        match isolation.info() {
            IsolationInfo { active: true, .. } => info!("run isolation: bubblewrap (each Codex run sees only its project, its own Codex home and temp)"),
            IsolationInfo { problem: Some(p), .. } => warnings.push(format!("Run isolation: {p}. Runs are refused until this is fixed or Run isolation is set to off.")),
            _ => warn!("run isolation is off: Codex can read everything the host's OS user can (set Run isolation to bubblewrap)"),
        }
        *self.isolation.write().unwrap() = Arc::new(isolation);
        let mut secrets = self.secrets.clone();
        if !req.bot_token.is_empty() {
            secrets.push(req.bot_token.clone());
        }
        *self.redactor.write().unwrap() = Arc::new(Redactor::new(secrets));
        self.scheduler
            .set_limits(cfg.settings.max_concurrent_runs, cfg.settings.queue_limit);
        info!(projects = %cfg.project_names(), max_concurrent = cfg.settings.max_concurrent_runs, queue_limit = cfg.settings.queue_limit, "configuration applied");
        *self.config.write().unwrap() = Some(Arc::new(cfg));
        for w in &warnings {
            warn!("{w}");
        }
        if require_mattermost {
            let cfg = self.config().expect("just set");
            self.resume_approvals(&cfg);
        }
        let host = self.clone();
        self.tasks.spawn(async move { host.redeliver().await });
        if let Some(problem) = gate_problem {
            tracing::error!(problem = %problem, "the policy chain did not load; every request is refused until the settings are fixed");
            return Err(vec![problem]);
        }
        Ok(warnings)
    }

    pub fn health(&self) -> Health {
        let (running, queued, max, limit) = self.scheduler.counts();
        let cfg = self.config();
        let (path, version) = self
            .codex_version
            .read()
            .unwrap()
            .clone()
            .unwrap_or_default();
        Health {
            version: env!("CARGO_PKG_VERSION").into(),
            configured: cfg.is_some(),
            codex: CodexInfo { path, version },
            queue: QueueInfo {
                running,
                queued,
                max_concurrent_runs: max,
                queue_limit: limit,
            },
            policies: self.gate.describe(),
            isolation: self.isolation().info(),
        }
    }

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

    fn active_project(&self, cfg: &Config, channel_id: &str) -> Option<String> {
        self.store
            .channel_project(channel_id)
            .ok()
            .flatten()
            .filter(|p| cfg.projects.contains_key(p))
            .or_else(|| cfg.default_project.clone())
    }

    // ----- commands -----

    pub async fn command(self: &Arc<Self>, req: CommandRequest) -> CommandResponse {
        let Some(cfg) = self.config() else {
            return CommandResponse::ephemeral(format!(
                "Codex is still starting and has no settings yet, so nothing was run. Try again in a minute; if it keeps happening, ask an admin to check the plugin's settings and logs.\nYour prompt was: {}",
                req.text
            ));
        };
        let text = req.text.trim();
        let (word, rest) = match text.split_once(char::is_whitespace) {
            Some((w, r)) => (w, r.trim()),
            None => (text, ""),
        };
        let span = tracing::info_span!("command", user = %req.user.username, channel = %req.channel.name, sub = %word.to_lowercase());
        async {
            match word.to_lowercase().as_str() {
                "" | "help" => CommandResponse::ephemeral(render::help(&cfg.project_names(), self.active_project(&cfg, &req.channel.id).as_deref())),
                "projects" => self.cmd_projects(&cfg, &req),
                "project" => self.cmd_project(&cfg, &req, rest),
                "status" => self.cmd_status(&req),
                "last" => self.cmd_last(&req),
                "cancel" => self.cmd_cancel(&req),
                "policy" => self.cmd_policy(&cfg, &req),
                "new" => self.cmd_submit(&cfg, &req, Intent::New, rest).await,
                "continue" => self.cmd_submit(&cfg, &req, Intent::Continue, rest).await,
                w if rest.is_empty() && looks_like_subcommand(w) => CommandResponse::ephemeral(format!(
                    "Unknown command `{w}`. Did you mean `/codex {}`? To ask Codex something, write a full prompt, e.g. `/codex fix the flaky login test`. See `/codex help`.",
                    closest_subcommand(w)
                )),
                _ => self.cmd_submit(&cfg, &req, Intent::Auto, text).await,
            }
        }
        .instrument(span)
        .await
    }

    fn cmd_projects(&self, cfg: &Config, req: &CommandRequest) -> CommandResponse {
        if cfg.projects.is_empty() {
            return CommandResponse::ephemeral("No projects are configured yet. An admin adds them under System Console > Plugins > Codex for Mattermost > Projects.");
        }
        let active = self.active_project(cfg, &req.channel.id);
        let lines: Vec<String> = cfg
            .projects
            .values()
            .map(|p| {
                let mark = if active.as_deref() == Some(&p.name) {
                    " · **active here**"
                } else {
                    ""
                };
                let notes = if p.notes.is_empty() {
                    String::new()
                } else {
                    format!(" — {}", p.notes)
                };
                format!("- `{}`{notes}{mark}", p.name)
            })
            .collect();
        CommandResponse::ephemeral(format!(
            "Projects:\n{}\n\nSwitch with `/codex project <name>`.",
            lines.join("\n")
        ))
    }

    fn cmd_project(&self, cfg: &Config, req: &CommandRequest, name: &str) -> CommandResponse {
        if name.is_empty() {
            return CommandResponse::ephemeral(match self.active_project(cfg, &req.channel.id) {
                Some(p) => format!("Active project in ~{}: `{p}`. Configured: {}. Switch with `/codex project <name>`.", req.channel.name, cfg.project_names()),
                None => format!("No project is active in this channel. Pick one with `/codex project <name>`; configured: {}.", cfg.project_names()),
            });
        }
        if !cfg.projects.contains_key(name) {
            return CommandResponse::ephemeral(format!(
                "There is no project `{name}`. Configured: {}.",
                cfg.project_names()
            ));
        }
        let project = cfg
            .projects
            .get(name)
            .map(|p| (p.name.as_str(), p.repo.as_path()));
        if let Decision::Deny { reason } = self
            .decide(
                cfg,
                &req.user,
                &req.channel,
                Action::New,
                "",
                project,
                "",
                None,
                0,
                None,
            )
            .decision
        {
            return CommandResponse::ephemeral(format!(
                "You cannot change the project here: {reason}"
            ));
        }
        if let Err(e) = self
            .store
            .set_channel_project(&req.channel.id, name, &req.user.id)
        {
            warn!(error = %e, "saving the channel's project");
            return CommandResponse::ephemeral("Could not save the project choice (the host's database failed). Ask an admin to check the host log.");
        }
        let _ = self.store.audit(
            "project.set",
            None,
            &req.user.id,
            &req.channel.id,
            &json!({"project": name}),
        );
        CommandResponse::ephemeral(format!(
            "Active project in ~{} is now `{name}`.",
            req.channel.name
        ))
    }

    fn cmd_status(&self, req: &CommandRequest) -> CommandResponse {
        let active = self.active.lock().unwrap();
        let mut lines: Vec<(Instant, String)> = active
            .values()
            .filter(|r| r.channel_id == req.channel.id)
            .map(|r| {
                let started = *r.started.lock().unwrap();
                let state = match started {
                    Some(s) => format!("running for {}", render::clock(s.elapsed())),
                    None => "queued".to_string(),
                };
                let link = self.permalink(&req.channel.team_name, &r.root_id.lock().unwrap());
                (
                    r.admitted,
                    format!("- `{}` for @{} — {state}{link}", r.project, r.username),
                )
            })
            .collect();
        drop(active);
        lines.sort_by_key(|(t, _)| *t);
        let (running, queued, max, _) = self.scheduler.counts();
        let here = if lines.is_empty() {
            "Nothing is running or queued in this channel.".to_string()
        } else {
            lines
                .into_iter()
                .map(|(_, l)| l)
                .collect::<Vec<_>>()
                .join("\n")
        };
        let isolation = match self.isolation().info() {
            IsolationInfo { active: true, .. } => "each run isolated with bubblewrap".to_string(),
            IsolationInfo {
                problem: Some(_), ..
            } => "isolation unavailable, runs are refused (an admin sees why in the server log)"
                .to_string(),
            _ => "run isolation off".to_string(),
        };
        CommandResponse::ephemeral(format!("{here}\n\nOn this host: {running} of {max} run slots busy, {queued} waiting; {isolation}."))
    }

    fn cmd_last(&self, req: &CommandRequest) -> CommandResponse {
        match self.store.last_run(&req.channel.id) {
            Ok(Some(r)) => {
                let ago = render::human_duration(Duration::from_millis(
                    (now_ms() - r.created_at).max(0) as u64,
                ));
                let (icon, word) = render::status_words(r.status);
                let link = self.permalink(&req.channel.team_name, &r.root_id);
                CommandResponse::ephemeral(format!(
                    "{icon} **{word}** · `{}` · @{} · {ago} ago\n> {}{link}",
                    r.project,
                    r.username,
                    render::one_line(&self.redactor().redact(&r.prompt), 200)
                ))
            }
            Ok(None) => CommandResponse::ephemeral(
                "No Codex runs in this channel yet. Start one with `/codex <prompt>`.",
            ),
            Err(e) => {
                warn!(error = %e, "reading the last run");
                CommandResponse::ephemeral("Could not read the last run (the host's database failed). Ask an admin to check the host log.")
            }
        }
    }

    fn cmd_cancel(&self, req: &CommandRequest) -> CommandResponse {
        let target = {
            let active = self.active.lock().unwrap();
            let mut candidates: Vec<(&String, &Arc<ActiveRun>)> = active
                .iter()
                .filter(|(_, r)| r.channel_id == req.channel.id)
                .filter(|(_, r)| {
                    if req.root_id.is_empty() {
                        r.user_id == req.user.id
                    } else {
                        *r.root_id.lock().unwrap() == req.root_id
                    }
                })
                .collect();
            candidates.sort_by_key(|(_, r)| r.admitted);
            candidates
                .last()
                .map(|(id, r)| ((*id).clone(), (*r).clone()))
        };
        let Some((run_id, run)) = target else {
            return CommandResponse::ephemeral(if req.root_id.is_empty() {
                "You have no running or queued Codex run in this channel. To cancel someone else's, use `/codex cancel` inside its thread."
            } else {
                "Nothing is running or queued in this thread."
            });
        };
        if run.user_id != req.user.id && !req.user.is_system_admin() {
            return CommandResponse::ephemeral(format!(
                "Only @{} (who started it) or a system admin can cancel this run.",
                run.username
            ));
        }
        self.stop(
            &run_id,
            &run,
            StopReason::Cancelled {
                by: req.user.username.clone(),
            },
        );
        let _ = self.store.audit(
            "run.cancel",
            Some(&run_id),
            &req.user.id,
            &req.channel.id,
            &json!({"by": req.user.username}),
        );
        CommandResponse::ephemeral("Cancelling. The thread will show when Codex has stopped.")
    }

    fn stop(&self, run_id: &str, run: &ActiveRun, reason: StopReason) {
        let mut r = run.reason.lock().unwrap();
        if r.is_none() {
            *r = Some(reason);
        }
        drop(r);
        self.scheduler.withdraw(run_id);
        run.cancel.cancel();
    }

    fn cmd_policy(&self, cfg: &Config, req: &CommandRequest) -> CommandResponse {
        let active = self.active_project(cfg, &req.channel.id);
        let project = active.as_deref().and_then(|n| cfg.projects.get(n));
        let base = project
            .and_then(|p| p.sandbox)
            .unwrap_or(cfg.default_sandbox);
        let ruling = self.decide(
            cfg,
            &req.user,
            &req.channel,
            Action::Query,
            "",
            project.map(|p| (p.name.as_str(), p.repo.as_path())),
            &req.root_id,
            None,
            0,
            None,
        );
        let rules = if ruling.rules.is_empty() {
            String::new()
        } else {
            format!(
                " (rule {})",
                ruling
                    .rules
                    .iter()
                    .map(|r| format!("`{r}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let sandbox = |limits: &Limits| limits.sandbox.map_or(base, |s| s.min(base)).as_str();
        let head = match &ruling.decision {
            Decision::Allow(limits) => format!("You may run Codex here{rules}. Sandbox: `{}`.", sandbox(limits)),
            Decision::Deny { reason } => format!("You may not run Codex here{rules}: {reason}"),
            Decision::RequireApproval { approvers, min_approvals, reason, limits, .. } => format!(
                "Your runs here need approval{rules}: {reason} ({min_approvals} of {}). Once approved, sandbox: `{}`.",
                render::mentions(approvers),
                sandbox(limits)
            ),
        };
        let modules = if ruling.explanation.is_empty() {
            String::new()
        } else {
            format!(
                "\n\nPolicy chain, in order:\n{}",
                ruling
                    .explanation
                    .iter()
                    .map(|l| format!("- {l}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            )
        };
        CommandResponse::ephemeral(format!("{head}{modules}"))
    }

    /// Asks the gate and audits the full ruling.
    #[allow(clippy::too_many_arguments)]
    fn decide(
        &self,
        cfg: &Config,
        user: &User,
        channel: &Channel,
        action: Action,
        prompt: &str,
        project: Option<(&str, &std::path::Path)>,
        root_id: &str,
        run_id: Option<&str>,
        attachments: u32,
        context: Option<&str>,
    ) -> Ruling {
        let request_id = run_id.map(String::from).unwrap_or_else(new_id);
        let sandbox = project
            .and_then(|(n, _)| cfg.projects.get(n))
            .and_then(|p| p.sandbox)
            .unwrap_or(cfg.default_sandbox);
        let req = GateRequest {
            request_id: &request_id,
            user,
            channel,
            action,
            prompt,
            project,
            sandbox,
            root_id,
            attachments,
            context,
        };
        let ruling = self.gate.decide(&req, cfg);
        let _ = self.store.audit(
            "decision",
            run_id,
            &user.id,
            &channel.id,
            &json!({"request_id": request_id, "action": format!("{action:?}"), "project": project.map(|p| p.0), "rules": ruling.rules, "report": self.redactor().redact_json(&ruling.report)}),
        );
        ruling
    }

    fn permalink(&self, team: &str, root_id: &str) -> String {
        let base = self.mattermost_url.read().unwrap().clone();
        if base.is_empty() || team.is_empty() || root_id.is_empty() {
            String::new()
        } else {
            format!(" — [thread]({base}/{team}/pl/{root_id})")
        }
    }

    async fn cmd_submit(
        self: &Arc<Self>,
        cfg: &Arc<Config>,
        req: &CommandRequest,
        intent: Intent,
        prompt: &str,
    ) -> CommandResponse {
        if !req.bot_can_post && !prompt.trim().is_empty() {
            return CommandResponse::needs_bot_access();
        }
        let root = if intent == Intent::New {
            ""
        } else {
            req.root_id.as_str()
        };
        match self.submit(cfg, &req.user, &req.channel, root, intent, prompt, None).await {
            Ok(a) if a.needs_approval => CommandResponse::ephemeral(
                "This request needs approval first: the approvers are asked in the thread, and Codex runs once they approve.",
            ),
            Ok(a) if a.position > 0 => CommandResponse::ephemeral(format!(
                "Queued at position {}. Codex starts when a slot is free; progress shows in the thread.",
                a.position
            )),
            Ok(_) => CommandResponse::ephemeral(""),
            Err(refusal) => CommandResponse::ephemeral(format!("{refusal}\nYour prompt was: {prompt}")),
        }
    }

    /// A signed button attachment, or nothing when the plugin gave no actions URL (terminal).
    fn buttons(&self, run_id: &str, which: &[ButtonAction], ttl_s: i64) -> Option<Value> {
        let url = self.actions_url.read().unwrap().clone();
        (!url.is_empty()).then(|| self.signer.attachment(&url, run_id, which, now_s(), ttl_s))
    }

    // ----- buttons -----

    /// A button click. The user comes from the server-authenticated header (via the plugin);
    /// the context must carry a valid, unexpired, unused signature.
    pub async fn action(self: &Arc<Self>, req: ActionRequest) -> ActionResponse {
        let eph = |t: String| ActionResponse {
            update: None,
            ephemeral_text: t,
        };
        let user = User {
            id: req.user_id.clone(),
            username: non_empty(&req.user.username, &req.user_name),
            roles: req.user.roles.clone(),
            is_bot: false,
        };
        // A signed context is a few hundred bytes; a larger one is refused before it is verified
        // or stored, so a click cannot flood the audit log.
        let context_size = serde_json::to_string(&req.context).map_or(usize::MAX, |c| c.len());
        if context_size > MAX_CONTEXT_BYTES {
            let _ = self.store.audit(
                "action.refused",
                None,
                &user.id,
                &req.channel_id,
                &json!({"reason": "oversized", "context_bytes": context_size}),
            );
            return eph("Nothing happened: this button's data is not valid.".into());
        }
        let audit_refusal = |code: &str, run: Option<&str>| {
            let _ = self.store.audit(
                "action.refused",
                run,
                &user.id,
                &req.channel_id,
                &json!({"reason": code, "post_id": req.post_id, "context": req.context}),
            );
        };
        if user.id.is_empty() {
            audit_refusal("no-user", None);
            return eph("This click carried no authenticated user, so it was ignored.".into());
        }
        let click = match self.signer.verify(&req.context, now_s()) {
            Ok(c) => c,
            Err(refusal) => {
                warn!(user = %user.id, reason = refusal.code(), "refused a button click");
                audit_refusal(
                    refusal.code(),
                    req.context.get("run_id").and_then(Value::as_str),
                );
                return eph(format!(
                    "Nothing happened: {refusal}.{}",
                    if refusal == Refusal::Expired {
                        " Use `/codex status` or the slash commands instead."
                    } else {
                        ""
                    }
                ));
            }
        };
        let Some(cfg) = self.config() else {
            return eph("Codex is still starting; try again in a minute.".into());
        };
        let run = match self.store.run(&click.run_id) {
            Ok(Some(r)) => r,
            _ => {
                audit_refusal("unknown-run", Some(&click.run_id));
                return eph(
                    "This run is not known to the Codex host (its state may have been reset)."
                        .into(),
                );
            }
        };
        // Everything a click acts on comes from the stored run, never from the body: a body naming
        // another channel (the plugin checked the user can read the body's channel) is refused.
        let body_channel = if req.channel.id.is_empty() {
            &req.channel_id
        } else {
            &req.channel.id
        };
        if body_channel != &run.channel_id {
            warn!(user = %user.id, run = %run.id, channel = %body_channel, "refused a click whose channel is not its run's");
            audit_refusal("channel-mismatch", Some(&run.id));
            return eph("Nothing happened: this button does not belong to this channel.".into());
        }
        let may_manage = run.user_id == user.id || user.is_system_admin();
        if matches!(click.action, ButtonAction::Cancel | ButtonAction::Retry) && !may_manage {
            audit_refusal("not-permitted", Some(&run.id));
            return eph(format!(
                "Only @{} (who started this run) or a system admin can {} it.",
                run.username,
                click.action.as_str()
            ));
        }
        match click.action {
            ButtonAction::Cancel => {
                let active = self.active.lock().unwrap().get(&run.id).cloned();
                let Some(active) = active else {
                    return eph("This run has already ended.".into());
                };
                if !self.spend(&click.nonce, &user, &run, &req) {
                    return eph("This button was already used.".into());
                }
                self.stop(
                    &run.id,
                    &active,
                    StopReason::Cancelled {
                        by: user.username.clone(),
                    },
                );
                let _ = self.store.audit(
                    "run.cancel",
                    Some(&run.id),
                    &user.id,
                    &run.channel_id,
                    &json!({"by": user.username, "via": "button"}),
                );
                ActionResponse {
                    update: Some(ActionUpdate {
                        message: render::cancelling(&user.username),
                        props: progress_props(&run.id, RunStatus::Running, None),
                    }),
                    ephemeral_text: String::new(),
                }
            }
            ButtonAction::Retry => {
                if !matches!(
                    run.status,
                    RunStatus::Failed | RunStatus::TimedOut | RunStatus::Interrupted
                ) {
                    return eph(format!(
                        "This run cannot be retried: it is {}.",
                        run.status.as_str().replace('_', " ")
                    ));
                }
                if !self.spend(&click.nonce, &user, &run, &req) {
                    return eph("This button was already used.".into());
                }
                // Same id as the run's (checked above); the plugin resolved its name and kind.
                let channel = Channel {
                    id: run.channel_id.clone(),
                    ..req.channel.clone()
                };
                match self
                    .submit(
                        &cfg,
                        &user,
                        &channel,
                        &run.root_id,
                        Intent::Retry,
                        &run.prompt,
                        None,
                    )
                    .await
                {
                    Ok(a) => {
                        let _ = self.store.audit(
                            "run.retry",
                            Some(&a.run_id),
                            &user.id,
                            &run.channel_id,
                            &json!({"retry_of": run.id}),
                        );
                        // The clicked post's text is shown again only if it is this run's own post.
                        let original = match self.chat.post(&req.post_id).await {
                            Ok(p)
                                if p.channel_id == run.channel_id
                                    && p.props.get("codex_run_id").and_then(Value::as_str)
                                        == Some(run.id.as_str()) =>
                            {
                                p.message
                            }
                            _ => String::new(),
                        };
                        ActionResponse {
                            update: Some(ActionUpdate {
                                message: render::retried(&original, &user.username),
                                props: outcome_props(&run.id, run.status, None),
                            }),
                            ephemeral_text: String::new(),
                        }
                    }
                    Err(refusal) => eph(refusal),
                }
            }
            ButtonAction::Approve | ButtonAction::Deny => {
                self.approval_click(
                    click.action == ButtonAction::Approve,
                    &click.nonce,
                    &user,
                    &run,
                    &req,
                    &cfg,
                )
                .await
            }
        }
    }

    /// Spends a click's nonce; a second use is a replay, refused and audited.
    fn spend(&self, nonce: &str, user: &User, run: &RunRow, req: &ActionRequest) -> bool {
        match self.store.spend_nonce(nonce) {
            Ok(true) => true,
            Ok(false) | Err(_) => {
                warn!(user = %user.id, run = %run.id, "refused a replayed button click");
                let _ = self.store.audit(
                    "action.refused",
                    Some(&run.id),
                    &user.id,
                    &req.channel_id,
                    &json!({"reason": "replayed", "post_id": req.post_id}),
                );
                false
            }
        }
    }

    // ----- thread replies and DMs -----

    pub async fn post(self: &Arc<Self>, req: PostRequest) -> PostResponse {
        let Some(cfg) = self.config() else {
            return PostResponse::default();
        };
        let p = &req.post;
        if p.user_id == self.bot_id() || req.user.is_bot || p.message.trim().is_empty() {
            return PostResponse::default();
        }
        let in_dm = matches!(req.channel.kind, ChannelKind::Direct | ChannelKind::Group);
        let root = if p.root_id.is_empty() {
            p.id.clone()
        } else {
            p.root_id.clone()
        };
        let known = self.store.thread(&root).ok().flatten();
        if !in_dm {
            let bot_thread = known.as_ref().is_some_and(|t| t.bot_started);
            if !bot_thread || !cfg.settings.thread_replies_continue || p.root_id.is_empty() {
                return PostResponse::default();
            }
        }
        if in_dm && known.is_none() {
            // A conversation with the bot: the user's own post roots the thread.
            let _ = self.store.insert_thread(&ThreadRow {
                root_id: root.clone(),
                channel_id: p.channel_id.clone(),
                project: self.active_project(&cfg, &p.channel_id).unwrap_or_default(),
                codex_thread_id: None,
                bot_started: true,
                seen_until: p.create_at,
            });
        }
        match self
            .submit(
                &cfg,
                &req.user,
                &req.channel,
                &root,
                Intent::Auto,
                p.message.trim(),
                Some(Trigger {
                    post_id: p.id.clone(),
                    file_ids: p.file_ids.clone(),
                }),
            )
            .await
        {
            Ok(_) => PostResponse {
                handled: true,
                ephemeral_text: String::new(),
            },
            Err(refusal) => PostResponse {
                handled: true,
                ephemeral_text: refusal,
            },
        }
    }

    // ----- runs -----

    /// Accepts a prompt: resolves the project, reads and freezes the thread's transcript, asks
    /// the gate about both, admits it to the queue and starts driving it. An `Err` is a refusal
    /// to show the person (nothing was started).
    #[allow(clippy::too_many_arguments)]
    async fn submit(
        self: &Arc<Self>,
        cfg: &Arc<Config>,
        user: &User,
        channel: &Channel,
        root_id: &str,
        intent: Intent,
        prompt: &str,
        trigger: Option<Trigger>,
    ) -> Result<Accepted, String> {
        if self.stopping.is_cancelled() {
            return Err(
                "The Codex host is shutting down; nothing was started. Try again in a minute."
                    .into(),
            );
        }
        if prompt.trim().is_empty() {
            return Err(
                "Give Codex something to do, e.g. `/codex fix the flaky login test`.".into(),
            );
        }
        if let Some(refusal) = self.isolation().refusal() {
            return Err(refusal);
        }
        let thread = if root_id.is_empty() {
            None
        } else {
            self.store.thread(root_id).map_err(internal)?
        };
        // A thread id is only valid in its own channel: a forged root id must not resume another
        // channel's session or read its thread.
        if let Some(t) = thread.as_ref().filter(|t| t.channel_id != channel.id) {
            warn!(root = %t.root_id, thread_channel = %t.channel_id, channel = %channel.id, user = %user.id, "refused a thread from another channel");
            let _ = self.store.audit(
                "request.refused",
                None,
                &user.id,
                &channel.id,
                &json!({"reason": "thread-in-other-channel", "root_id": t.root_id}),
            );
            return Err("That thread belongs to another channel, so Codex did not run. Use `/codex` in the thread's own channel.".into());
        }
        let (placement, project_name) = match intent {
            Intent::Continue => {
                let project = self
                    .active_project(cfg, &channel.id)
                    .ok_or_else(|| no_project(cfg))?;
                let latest = self.store.latest_thread(&channel.id, &project).map_err(internal)?.ok_or_else(|| {
                    format!("There is no earlier Codex session for `{project}` in this channel. Start one with `/codex <prompt>`.")
                })?;
                (
                    Placement::Thread {
                        root_id: latest.root_id,
                    },
                    project,
                )
            }
            _ if root_id.is_empty() => (
                Placement::NewRoot,
                self.active_project(cfg, &channel.id)
                    .ok_or_else(|| no_project(cfg))?,
            ),
            _ => {
                let project = match thread.as_ref().filter(|t| !t.project.is_empty()) {
                    Some(t) => t.project.clone(),
                    None => self
                        .active_project(cfg, &channel.id)
                        .ok_or_else(|| no_project(cfg))?,
                };
                (
                    Placement::Thread {
                        root_id: root_id.to_string(),
                    },
                    project,
                )
            }
        };
        let project = cfg.projects.get(&project_name).cloned().ok_or_else(|| {
            format!("The project `{project_name}` is no longer configured. Pick one with `/codex project <name>`; configured: {}.", cfg.project_names())
        })?;
        let action = match (intent, &placement) {
            (Intent::Retry, _) => Action::Retry,
            (_, Placement::Thread { .. }) => Action::Continue,
            _ => Action::New,
        };
        let run_id = new_id();
        let attachments = trigger.as_ref().map_or(0, |t| t.file_ids.len() as u32);
        // What Codex gets besides the prompt is read now, judged with it and kept with the run.
        let (context, seen_until) = match &placement {
            Placement::Thread { root_id } => {
                self.freeze_context(
                    cfg,
                    user,
                    channel,
                    &project,
                    root_id,
                    trigger.as_ref().map(|t| t.post_id.as_str()),
                    &run_id,
                )
                .await
            }
            Placement::NewRoot => (None, None),
        };
        if self.stopping.is_cancelled() {
            return Err(
                "The Codex host is shutting down; nothing was started. Try again in a minute."
                    .into(),
            );
        }
        let ruling = self.decide(
            cfg,
            user,
            channel,
            action,
            prompt,
            Some((&project.name, &project.repo)),
            root_id,
            Some(&run_id),
            attachments,
            context.as_ref().map(|t| t.text.as_str()),
        );
        // An approved run gets the same limits an allowed one would: the approval only adds a wait.
        let (limits, approval) = match ruling.decision {
            Decision::Deny { reason } => return Err(format!("Codex did not run: {reason}")),
            Decision::RequireApproval {
                approvers,
                min_approvals,
                reason,
                expiry,
                allow_self_approval,
                limits,
            } => {
                let spec = ApprovalSpec {
                    approvers,
                    min_approvals,
                    reason,
                    rules: ruling.rules.clone(),
                    allow_self_approval,
                    expires_at_ms: now_ms() + expiry.as_millis() as i64,
                };
                (limits, Some(spec))
            }
            Decision::Allow(limits) => (limits, None),
        };
        let RunTerms {
            sandbox,
            timeout,
            model,
        } = limits.apply(project_terms(cfg, &project));
        let thread_key = match &placement {
            Placement::NewRoot => format!("new:{run_id}"),
            Placement::Thread { root_id } => root_id.clone(),
        };
        let admission = match approval {
            Some(_) => None,
            None => Some(self.scheduler.admit(&run_id, &thread_key).map_err(|full| {
                format!("Codex is busy: {} runs are already waiting, which is the queue limit. Try again in a few minutes.", full.waiting)
            })?),
        };
        if let Placement::Thread { root_id } = &placement {
            if thread.is_none() {
                // A thread people started among themselves: bind a new session to it.
                let row = ThreadRow {
                    root_id: root_id.clone(),
                    channel_id: channel.id.clone(),
                    project: project.name.clone(),
                    codex_thread_id: None,
                    bot_started: false,
                    seen_until: 0,
                };
                if let Err(e) = self.store.insert_thread(&row) {
                    self.scheduler.withdraw(&run_id);
                    return Err(internal(e));
                }
            }
        }
        let root_for_row = match &placement {
            Placement::NewRoot => String::new(),
            Placement::Thread { root_id } => root_id.clone(),
        };
        let row = RunRow {
            id: run_id.clone(),
            root_id: root_for_row.clone(),
            channel_id: channel.id.clone(),
            user_id: user.id.clone(),
            username: user.username.clone(),
            project: project.name.clone(),
            // Stored for `/codex last`, approval posts and retries; Codex gets the prompt from `plan`.
            prompt: self.redactor().redact(prompt),
            mode: "pending".into(),
            status: if approval.is_some() {
                RunStatus::AwaitingApproval
            } else {
                RunStatus::Queued
            },
            progress_post_id: None,
            created_at: now_ms(),
            started_at: None,
            finished_at: None,
            exit_code: None,
            summary: None,
        };
        if let Err(e) = self.store.insert_run(&row) {
            self.scheduler.withdraw(&run_id);
            return Err(internal(e));
        }
        if let (Placement::Thread { root_id }, Some(mark)) = (&placement, seen_until) {
            // The next run in this thread gets what was posted after this acceptance.
            let _ = self.store.set_seen_until(root_id, mark);
        }
        let _ = self.store.audit(
            "run.accepted",
            Some(&run_id),
            &user.id,
            &channel.id,
            &json!({"project": project.name, "sandbox": sandbox.as_str(), "needs_approval": approval.is_some(),
                    "context_messages": context.as_ref().map_or(0, |t| t.messages), "context_authors": context.as_ref().map(|t| t.authors.clone()).unwrap_or_default()}),
        );
        let active = ActiveRun::new(user, &channel.id, &project.name, &root_for_row);
        self.active
            .lock()
            .unwrap()
            .insert(run_id.clone(), active.clone());
        let position = admission.as_ref().map_or(0, |a| *a.position.borrow());
        let plan = Plan {
            run_id: run_id.clone(),
            user: user.clone(),
            channel: channel.clone(),
            project,
            placement,
            prompt: prompt.to_string(),
            trigger_post_id: trigger.as_ref().map(|t| t.post_id.clone()),
            file_ids: trigger.map(|t| t.file_ids).unwrap_or_default(),
            sandbox,
            model,
            timeout,
            thread_key,
            context,
        };
        if let Some(spec) = &approval {
            let record = PlanRecord::of(&plan);
            if let Err(e) = self.store.insert_approval(
                &run_id,
                &json!(spec),
                &json!(record),
                spec.expires_at_ms,
            ) {
                self.active.lock().unwrap().remove(&run_id);
                let _ = self
                    .store
                    .finish_run(&run_id, RunStatus::Failed, &RunResult::default());
                return Err(internal(e));
            }
        }
        let (done_tx, done) = tokio::sync::oneshot::channel();
        let host = self.clone();
        let span = tracing::info_span!("run", run = %run_id, user = %user.username, project = %plan.project.name);
        let needs_approval = approval.is_some();
        self.tasks.spawn(
            async move {
                let status = match admission {
                    Some(admission) => host.drive(plan, admission, active).await,
                    None => host.await_approval(plan, active).await,
                };
                let _ = done_tx.send(status);
            }
            .instrument(span),
        );
        Ok(Accepted {
            run_id,
            position,
            needs_approval,
            done,
        })
    }

    /// Posts the root of a new thread for a channel-level prompt and records it. `None` when
    /// Mattermost refused (the run is then recorded as failed: there is no thread to tell).
    async fn start_thread(&self, plan: &Plan, active: &ActiveRun) -> Option<String> {
        let root = NewPost {
            channel_id: plan.channel.id.clone(),
            root_id: String::new(),
            message: render::thread_root(
                &plan.user.username,
                &plan.project.name,
                &self.redactor().redact(&plan.prompt),
            ),
            props: json!({"codex_kind": "root", "codex_run_id": plan.run_id}),
            file_ids: vec![],
        };
        match self.chat.create_post(root).await {
            Ok(p) => {
                let _ = self.store.insert_thread(&ThreadRow {
                    root_id: p.id.clone(),
                    channel_id: plan.channel.id.clone(),
                    project: plan.project.name.clone(),
                    codex_thread_id: None,
                    bot_started: true,
                    seen_until: p.create_at,
                });
                let _ = self.store.set_root(&plan.run_id, &p.id);
                *active.root_id.lock().unwrap() = p.id.clone();
                Some(p.id)
            }
            Err(e) => {
                warn!(error = %e, "could not start the thread; the run is abandoned");
                let res = RunResult {
                    summary: format!("could not post to Mattermost: {e}"),
                    ..Default::default()
                };
                let _ = self.store.finish_run(&plan.run_id, RunStatus::Failed, &res);
                None
            }
        }
    }

    /// Takes one accepted run to its single outcome.
    async fn drive(
        self: Arc<Self>,
        plan: Plan,
        mut admission: Admission,
        active: Arc<ActiveRun>,
    ) -> RunStatus {
        let status = self.drive_inner(&plan, &mut admission, &active).await;
        self.active.lock().unwrap().remove(&plan.run_id);
        self.scheduler.finish(&plan.run_id, &plan.thread_key);
        info!(status = status.as_str(), "run ended");
        status
    }

    async fn drive_inner(
        &self,
        plan: &Plan,
        admission: &mut Admission,
        active: &ActiveRun,
    ) -> RunStatus {
        let redactor = self.redactor();
        // 1. The thread and its progress post.
        let root_id = match &plan.placement {
            Placement::Thread { root_id } => root_id.clone(),
            Placement::NewRoot => match self.start_thread(plan, active).await {
                Some(r) => r,
                None => return RunStatus::Failed,
            },
        };
        let cancel_button = self.buttons(
            &plan.run_id,
            &[ButtonAction::Cancel],
            plan.timeout.as_secs() as i64 + 24 * 3600,
        );
        let running_props = progress_props(&plan.run_id, RunStatus::Running, cancel_button.clone());
        let position = *admission.position.borrow();
        let first = render::progress(&render::Progress {
            project: &plan.project.name,
            queue_position: (position > 0).then_some(position),
            ..Default::default()
        });
        let progress_id = match self
            .chat
            .create_post(NewPost {
                channel_id: plan.channel.id.clone(),
                root_id: root_id.clone(),
                message: first,
                props: progress_props(&plan.run_id, RunStatus::Queued, cancel_button.clone()),
                file_ids: vec![],
            })
            .await
        {
            Ok(p) => {
                let _ = self.store.set_progress_post(&plan.run_id, &p.id);
                Some(p.id)
            }
            Err(e) => {
                warn!(error = %e, "could not post progress; continuing without it");
                None
            }
        };

        // 2. Wait for a slot, showing the queue position.
        loop {
            let pos = *admission.position.borrow_and_update();
            if pos == 0 {
                break;
            }
            if let Some(pid) = &progress_id {
                let msg = render::progress(&render::Progress {
                    project: &plan.project.name,
                    queue_position: Some(pos),
                    ..Default::default()
                });
                let _ = self
                    .chat
                    .update_post(
                        pid,
                        &msg,
                        Some(progress_props(
                            &plan.run_id,
                            RunStatus::Queued,
                            cancel_button.clone(),
                        )),
                    )
                    .await;
            }
            tokio::select! {
                changed = admission.position.changed() => if changed.is_err() { break },
                _ = active.cancel.cancelled() => break,
            }
        }
        let started = Instant::now();
        if active.cancel.is_cancelled() {
            return self
                .conclude(
                    plan,
                    &root_id,
                    progress_id.as_deref(),
                    active,
                    Ending::Cancelled,
                    RunState::default(),
                    String::new(),
                    started,
                )
                .await;
        }
        *active.started.lock().unwrap() = Some(started);

        // 3. The prompt, with what others said in the thread before it was accepted.
        let thread = self.store.thread(&root_id).ok().flatten();
        let resume = thread.as_ref().and_then(|t| t.codex_thread_id.clone());
        let mode = match (&plan.placement, &resume) {
            (_, Some(_)) => RunMode::Resume,
            (Placement::Thread { .. }, None) if thread.as_ref().is_some_and(|t| !t.bot_started) => {
                RunMode::Bind
            }
            _ => RunMode::New,
        };
        let cfg = self.config();
        let _ = self.store.mark_running(&plan.run_id, mode.as_str());
        // The transcript was frozen when the prompt was accepted (and judged with it).
        let prompt = match &plan.context {
            Some(ctx) => format!(
                "{}\n\n---\nRequest from @{} in Mattermost:\n{}",
                ctx.text, plan.user.username, plan.prompt
            ),
            None => plan.prompt.clone(),
        };
        info!(mode = mode.as_str(), resume = ?resume, sandbox = plan.sandbox.as_str(), model = ?plan.model, timeout_secs = plan.timeout.as_secs(), "starting codex");

        // 4. Run Codex, editing the progress post as it goes.
        let Some(cfg) = cfg else {
            return self
                .conclude(
                    plan,
                    &root_id,
                    progress_id.as_deref(),
                    active,
                    Ending::Exited(None),
                    RunState {
                        failure: Some("the host lost its configuration".into()),
                        ..Default::default()
                    },
                    String::new(),
                    started,
                )
                .await;
        };
        let images = self.fetch_images(plan, &root_id).await;
        let admin_home = Some(cfg.settings.codex_home.clone())
            .filter(|h| !h.is_empty())
            .map(PathBuf::from);
        let image_dirs: Vec<PathBuf> = images.iter().map(|i| i.dir().to_path_buf()).collect();
        let space = RunSpace {
            repo: &plan.project.repo,
            thread_key: if root_id.is_empty() {
                &plan.run_id
            } else {
                &root_id
            },
            admin_codex_home: admin_home.as_deref(),
            read_only: &image_dirs,
            pass_env: &cfg.codex_env,
            resume: resume.as_deref(),
        };
        let launch = match self.isolation().launch(&cfg.settings.codex_path, &space) {
            Ok(l) => l,
            Err(e) => {
                let failure = match e.kind() {
                    std::io::ErrorKind::NotFound => {
                        SpawnError::NotFound(cfg.settings.codex_path.clone()).to_string()
                    }
                    _ => format!("the run's sandbox could not be prepared: {e}"),
                };
                warn!(error = %failure, "codex could not start");
                let st = RunState {
                    failure: Some(failure),
                    ..Default::default()
                };
                return self
                    .conclude(
                        plan,
                        &root_id,
                        progress_id.as_deref(),
                        active,
                        Ending::Exited(None),
                        st,
                        String::new(),
                        started,
                    )
                    .await;
            }
        };
        let inv = Invocation {
            launch,
            repo: plan.project.repo.clone(),
            sandbox: plan.sandbox,
            model: plan.model.clone(),
            overrides: cfg.codex_overrides.clone(),
            resume: resume.clone(),
            prompt,
            images: images.as_ref().map(|i| i.paths.clone()).unwrap_or_default(),
        };
        // The command line without its last argument, the prompt (it can carry a whole transcript).
        let args = inv.args();
        debug!(args = %redactor.redact(&args[..args.len() - 1].join(" ")), "codex invocation");
        let state = Arc::new(Mutex::new(RunState::default()));
        let ticker_stop = CancellationToken::new();
        let ticker = progress_id.clone().map(|pid| {
            let (state, stop, project, props) = (
                state.clone(),
                ticker_stop.clone(),
                plan.project.name.clone(),
                running_props.clone(),
            );
            let chat = &self.chat;
            let redactor = redactor.clone();
            async move {
                let mut shown = 0u64;
                let mut last_edit = Instant::now();
                let mut interval = tokio::time::interval(PROGRESS_INTERVAL);
                interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        _ = interval.tick() => {}
                        _ = stop.cancelled() => break,
                    }
                    let (rev, msg) = {
                        let s = state.lock().unwrap();
                        (
                            s.revision,
                            render::progress(&render::Progress {
                                project: &project,
                                elapsed: started.elapsed(),
                                step: s.step.clone(),
                                steps_done: s.steps_done,
                                queue_position: None,
                            }),
                        )
                    };
                    // Edit on every change; otherwise refresh the clock every few seconds.
                    if rev != shown || last_edit.elapsed() >= Duration::from_secs(5) {
                        shown = rev;
                        last_edit = Instant::now();
                        if let Err(e) = chat
                            .update_post(&pid, &redactor.redact(&msg), Some(props.clone()))
                            .await
                        {
                            warn!(error = %e, "progress update failed");
                        }
                    }
                }
            }
        });
        let run_fut = {
            let state = state.clone();
            let store = &self.store;
            let root_id = root_id.clone();
            let run_id = plan.run_id.clone();
            let cancel = active.cancel.clone();
            let inv = &inv;
            let redactor = redactor.clone();
            async move {
                let on_spawn = |pgid| {
                    let _ = store.set_pgid(&run_id, pgid);
                };
                runner::process::run(inv, &cancel, plan.timeout, on_spawn, |ev| {
                    if let runner::events::Event::ThreadStarted { thread_id } = &ev {
                        if resume.is_none() {
                            let _ = store.set_codex_thread(&root_id, thread_id);
                        }
                    }
                    state.lock().unwrap().apply(&ev, &redactor);
                })
                .await
            }
        };
        let result = match ticker {
            Some(t) => {
                let (r, ()) = tokio::join!(
                    async {
                        let r = run_fut.await;
                        ticker_stop.cancel();
                        r
                    },
                    t
                );
                r
            }
            None => run_fut.await,
        };
        let final_state = state.lock().unwrap().clone();
        match result {
            Ok(fin) => {
                self.conclude(
                    plan,
                    &root_id,
                    progress_id.as_deref(),
                    active,
                    fin.ending,
                    final_state,
                    fin.stderr_tail,
                    started,
                )
                .await
            }
            Err(e) => {
                let msg = e.to_string();
                if let SpawnError::NotFound(_) | SpawnError::NoRepo(_) = e {
                    warn!(error = %msg, "codex could not start");
                }
                let st = RunState {
                    failure: Some(msg),
                    ..final_state
                };
                self.conclude(
                    plan,
                    &root_id,
                    progress_id.as_deref(),
                    active,
                    Ending::Exited(None),
                    st,
                    String::new(),
                    started,
                )
                .await
            }
        }
    }

    /// Decides the outcome, posts it, records it. Exactly one call per run.
    #[allow(clippy::too_many_arguments)]
    async fn conclude(
        &self,
        plan: &Plan,
        root_id: &str,
        progress_id: Option<&str>,
        active: &ActiveRun,
        ending: Ending,
        state: RunState,
        stderr_tail: String,
        started: Instant,
    ) -> RunStatus {
        let redactor = self.redactor();
        let elapsed = started.elapsed();
        let reason = active.reason.lock().unwrap().clone();
        let partial = state.last_message.as_deref().map(|m| redactor.redact(m));
        let (status, body, exit_code) = match ending {
            Ending::Cancelled => match reason {
                Some(StopReason::Shutdown) => (RunStatus::Interrupted, render::interrupted(), None),
                Some(StopReason::Cancelled { by }) => (
                    RunStatus::Cancelled,
                    render::cancelled(&by, partial.as_deref()),
                    None,
                ),
                None => (
                    RunStatus::Cancelled,
                    render::cancelled("someone", partial.as_deref()),
                    None,
                ),
            },
            Ending::TimedOut => (
                RunStatus::TimedOut,
                render::timed_out(plan.timeout, partial.as_deref()),
                None,
            ),
            Ending::Exited(code) if code == Some(0) && state.failure.is_none() => (
                RunStatus::Answered,
                render::answer(partial.as_deref()),
                code,
            ),
            Ending::Exited(code) => {
                let message = state
                    .failure
                    .clone()
                    .filter(|m| !m.is_empty())
                    .or(state.last_error.clone())
                    .or_else(|| {
                        stderr_tail
                            .lines()
                            .rev()
                            .find_map(|l| l.trim().strip_prefix("Error: ").map(String::from))
                    })
                    .unwrap_or_default();
                let tail = stderr_summary(&stderr_tail);
                (
                    RunStatus::Failed,
                    redactor.redact(&render::failed(code, &message, &tail)),
                    code,
                )
            }
        };
        let footer = render::footer(&render::Footer {
            project: &plan.project.name,
            elapsed,
            files_changed: state.files_changed.len(),
            exit_code,
            input_tokens: state.usage.input_tokens,
            output_tokens: state.usage.output_tokens,
        });
        let result = RunResult {
            exit_code,
            summary: render::one_line(&body, 500),
            output_tail: redactor
                .redact(&stderr_tail)
                .chars()
                .rev()
                .take(2000)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect(),
            input_tokens: state.usage.input_tokens,
            output_tokens: state.usage.output_tokens,
            files_changed: state.files_changed.len(),
            outcome: None,
        };
        let outcome = Outcome {
            run_id: plan.run_id.clone(),
            channel_id: plan.channel.id.clone(),
            root_id: root_id.to_string(),
            status,
            text: OutcomeText { body, footer },
        };
        let Some(recorded) = self.record_outcome(&outcome, result) else {
            return status;
        };
        let _ = self.store.audit("run.finished", Some(&plan.run_id), &plan.user.id, &plan.channel.id, &json!({"status": status.as_str(), "exit_code": exit_code, "elapsed_ms": elapsed.as_millis() as u64}));
        if let Some(pid) = progress_id {
            let _ = self
                .chat
                .update_post(
                    pid,
                    &render::progress_final(status, &plan.project.name, elapsed),
                    Some(progress_props(&plan.run_id, status, None)),
                )
                .await;
        }
        self.deliver_in_run(outcome, recorded).await;
        status
    }

    /// The thread's posts since Codex last looked, read at acceptance and frozen for the run:
    /// each labelled with its author, whether the policy allows that author here and whether a
    /// bot, webhook or plugin posted it; all but the requester's own fenced behind a delimiter
    /// random to this run. Also the thread's next "seen until" mark (the newest post read, in
    /// the server's clock); `None` when the thread could not be read, so the mark stays.
    #[allow(clippy::too_many_arguments)]
    async fn freeze_context(
        &self,
        cfg: &Config,
        requester: &User,
        channel: &Channel,
        project: &Project,
        root_id: &str,
        exclude: Option<&str>,
        run_id: &str,
    ) -> (Option<render::Transcript>, Option<i64>) {
        let deadline = tokio::time::Instant::now() + TRANSCRIPT_READ_LIMIT;
        let posts = match tokio::time::timeout_at(deadline, self.chat.thread(root_id)).await {
            Ok(Ok(p)) => p,
            Ok(Err(e)) => {
                warn!(error = %e, "could not read the thread for context; running without it");
                return (None, None);
            }
            Err(_) => {
                warn!("reading the thread for context took too long; running without it");
                return (None, None);
            }
        };
        let mark = posts
            .iter()
            .map(|p| p.create_at)
            .max()
            .unwrap_or_else(now_ms);
        let since = self
            .store
            .thread(root_id)
            .ok()
            .flatten()
            .map_or(0, |t| t.seen_until);
        let bot = self.bot_id();
        let fresh: Vec<&Post> = posts
            .iter()
            .filter(|p| {
                p.create_at > since
                    && p.user_id != bot
                    && Some(p.id.as_str()) != exclude
                    && !p.kind.starts_with("system_")
            })
            .collect();
        if fresh.is_empty() {
            return (None, Some(mark));
        }
        let mut ids: Vec<String> = fresh.iter().map(|p| p.user_id.clone()).collect();
        ids.sort();
        ids.dedup();
        let known = match tokio::time::timeout_at(deadline, self.chat.users(&ids)).await {
            Ok(Ok(u)) => u,
            Ok(Err(e)) => {
                warn!(error = %e, "could not look up the thread's authors; they are labelled by id");
                HashMap::new()
            }
            Err(_) => {
                warn!("looking up the thread's authors took too long; they are labelled by id");
                HashMap::new()
            }
        };
        // One question to the policy per author, as if they asked to continue here themselves.
        let authors: HashMap<&str, (User, bool)> = ids
            .iter()
            .map(|id| {
                let u = known.get(id).cloned().unwrap_or_else(|| User {
                    id: id.clone(),
                    username: id.clone(),
                    ..Default::default()
                });
                let allowed = self.author_allowed(cfg, &u, channel, project, root_id, run_id);
                (id.as_str(), (u, allowed))
            })
            .collect();
        let files: Vec<Vec<String>> = fresh.iter().map(|p| attachment_names(p)).collect();
        let messages: Vec<render::ContextMessage> = fresh
            .iter()
            .zip(&files)
            .map(|(p, files)| {
                let (author, allowed) = &authors[p.user_id.as_str()];
                render::ContextMessage {
                    author: &author.username,
                    at_ms: p.create_at,
                    text: &p.message,
                    attachments: files,
                    source: post_source(p, author.is_bot),
                    shown_as: p.props.get("override_username").and_then(Value::as_str),
                    allowed: *allowed,
                    by_requester: p.user_id == requester.id,
                }
            })
            .collect();
        let budget = cfg.settings.transcript_budget_chars;
        (
            render::transcript(&messages, &requester.username, &new_fence(), budget),
            Some(mark),
        )
    }

    /// Whether the policy chain would let `author` continue here: a label for the transcript,
    /// audited, never enforced. Anything but an allow (a deny, an approval, a failing module)
    /// counts as not allowed.
    fn author_allowed(
        &self,
        cfg: &Config,
        author: &User,
        channel: &Channel,
        project: &Project,
        root_id: &str,
        run_id: &str,
    ) -> bool {
        let request_id = new_id();
        let sandbox = project.sandbox.unwrap_or(cfg.default_sandbox);
        let req = GateRequest {
            request_id: &request_id,
            user: author,
            channel,
            action: Action::Continue,
            prompt: "",
            project: Some((&project.name, &project.repo)),
            sandbox,
            root_id,
            attachments: 0,
            context: None,
        };
        let ruling = self.gate.decide(&req, cfg);
        let allowed = matches!(ruling.decision, Decision::Allow { .. });
        let _ = self.store.audit(
            "decision.context_author",
            Some(run_id),
            &author.id,
            &channel.id,
            &json!({"request_id": request_id, "allowed": allowed, "rules": ruling.rules}),
        );
        allowed
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
        self.submit(&cfg, &user, &channel, "", Intent::New, prompt, None)
            .await
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

/// The last lines of Codex's stderr worth showing a person: without its fixed stdin notice and
/// without backtraces.
fn stderr_summary(stderr: &str) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty() && !l.starts_with("Reading additional input from stdin"))
        .take_while(|l| !l.starts_with("Stack backtrace:") && !l.starts_with("stack backtrace:"))
        .collect();
    lines[lines.len().saturating_sub(8)..].join("\n")
}

/// The largest button context accepted (the host's own are well under 1 KiB).
const MAX_CONTEXT_BYTES: usize = 2048;

fn progress_props(run_id: &str, status: RunStatus, buttons: Option<Value>) -> Value {
    with_buttons(
        json!({"codex_kind": "progress", "codex_run_id": run_id, "codex_status": status.as_str()}),
        buttons,
    )
}

fn outcome_props(run_id: &str, status: RunStatus, buttons: Option<Value>) -> Value {
    with_buttons(
        json!({"codex_kind": "outcome", "codex_run_id": run_id, "codex_status": status.as_str()}),
        buttons,
    )
}

fn with_buttons(mut props: Value, buttons: Option<Value>) -> Value {
    if let Some(b) = buttons {
        props["attachments"] = json!([b]);
    }
    props
}

fn now_s() -> i64 {
    now_ms() / 1000
}

fn attachment_names(p: &Post) -> Vec<String> {
    let from_meta: Vec<String> = p
        .metadata
        .get("files")
        .and_then(Value::as_array)
        .map(|fs| {
            fs.iter()
                .filter_map(|f| f.get("name").and_then(Value::as_str).map(String::from))
                .collect()
        })
        .unwrap_or_default();
    if !from_meta.is_empty() || p.file_ids.is_empty() {
        from_meta
    } else {
        vec![format!(
            "{} file{}",
            p.file_ids.len(),
            if p.file_ids.len() == 1 { "" } else { "s" }
        )]
    }
}

fn non_empty(a: &str, b: &str) -> String {
    if a.is_empty() {
        b.to_string()
    } else {
        a.to_string()
    }
}

/// What a run in `project` gets before any policy tightens it.
fn project_terms(cfg: &Config, project: &Project) -> RunTerms {
    RunTerms {
        sandbox: project.sandbox.unwrap_or(cfg.default_sandbox),
        timeout: cfg.run_timeout,
        model: project
            .model
            .clone()
            .or_else(|| Some(cfg.settings.model.clone()).filter(|m| !m.is_empty())),
    }
}

fn no_project(cfg: &Config) -> String {
    if cfg.projects.is_empty() {
        "No projects are configured yet, so Codex has nowhere to run. An admin adds them under System Console > Plugins > Codex for Mattermost > Projects.".into()
    } else {
        format!("No project is active in this channel. Pick one with `/codex project <name>`; configured: {}.", cfg.project_names())
    }
}

fn internal(e: anyhow::Error) -> String {
    warn!(error = %format!("{e:#}"), "state database error");
    "The Codex host could not save this request (its database failed); nothing was started. Ask an admin to check the host log.".into()
}

/// What put a post in the thread, from the flags Mattermost sets on it (`"true"` strings).
fn post_source(p: &Post, bot_account: bool) -> render::Source {
    let flag = |k: &str| p.props.get(k).is_some_and(|v| v == "true" || v == true);
    if flag("from_webhook") {
        render::Source::Webhook
    } else if flag("from_plugin") {
        render::Source::Plugin
    } else if flag("from_bot") || bot_account {
        render::Source::Bot
    } else {
        render::Source::Person
    }
}

/// The transcript delimiter of one run: 128 random bits, so no message can know it in advance.
fn new_fence() -> String {
    use rand::Rng;
    let bits: u128 = rand::rng().random();
    format!("{bits:032x}")
}

fn new_id() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..26)
        .map(|_| char::from(b"abcdefghijklmnopqrstuvwxyz0123456789"[rng.random_range(0..36)]))
        .collect()
}

/// A single word close to a subcommand is a typo, not a prompt.
fn looks_like_subcommand(word: &str) -> bool {
    let w = word.to_lowercase();
    SUBCOMMANDS
        .iter()
        .any(|s| edit_distance(&w, s) <= if s.len() <= 4 { 1 } else { 2 })
}

fn closest_subcommand(word: &str) -> &'static str {
    let w = word.to_lowercase();
    SUBCOMMANDS
        .iter()
        .min_by_key(|s| edit_distance(&w, s))
        .copied()
        .unwrap_or("help")
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            cur.push(
                (prev[j] + usize::from(ca != *cb))
                    .min(prev[j + 1] + 1)
                    .min(cur[j] + 1),
            );
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stderr_summary_drops_noise() {
        let s = "Reading additional input from stdin...\nError: thread/resume failed: no rollout found\n\nStack backtrace:\n   0: foo";
        assert_eq!(
            stderr_summary(s),
            "Error: thread/resume failed: no rollout found"
        );
    }

    #[test]
    fn typos_of_subcommands_are_caught_but_prompts_are_not() {
        assert!(looks_like_subcommand("stauts"));
        assert!(looks_like_subcommand("projcts"));
        assert_eq!(closest_subcommand("stauts"), "status");
        assert!(!looks_like_subcommand("refactor"));
        assert!(!looks_like_subcommand("hello"));
    }
}
