//! What the host holds: [`Host`], the one value every handler reaches through — the store, the
//! chat client, the policy evaluator, the scheduler, the runs in flight — and [`Snapshot`], the
//! config-derived state swapped whole when settings are applied.
//!
//! Only data and small accessors live here. Behaviour is in `commands` (the `/codex` grammar),
//! `runs` (a prompt from acceptance to its outcome post), `approvals` (runs waiting for people)
//! and `app` (wiring, settings, recovery, shutdown). This module formats nothing a person reads.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use arc_swap::ArcSwap;
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::warn;

use crate::approvals::CommandAsk;
use crate::buttons::{ButtonAction, Signer};
use crate::chat::Chat;
use crate::config::Config;
use crate::gate::Evaluator;
use crate::metrics::Metrics;
use crate::model::RunStatus;
use crate::protocol::{ActionRequest, User};
use crate::render::Redactor;
use crate::runner::app_server::protocol::RequestId;
use crate::runner::isolation::Isolation;
use crate::runner::session::Session;
use crate::runner::Scheduler;
use crate::store::{now_ms, OutcomeText, RunResult, RunRow, Store};

/// Everything derived from the settings the plugin pushed, read together and replaced together:
/// a handler sees one consistent version from its first line to its last.
pub struct Snapshot {
    /// `None` until the first settings arrive.
    pub config: Option<Arc<Config>>,
    /// How runs are confined, as last probed for the configured mode.
    pub isolation: Arc<Isolation>,
    /// Cleans every text that leaves the host (the host's secrets and the bot token included).
    pub redactor: Arc<Redactor>,
    pub bot_user_id: String,
    /// The name people @-mention the bot by.
    pub bot_username: String,
    /// The server's Site URL, without a trailing slash; empty for the terminal.
    pub mattermost_url: String,
    /// Where buttons post their clicks; empty for the terminal (no buttons).
    pub actions_url: String,
    /// The Codex path and the version it reported, once it ran.
    pub codex: Option<(String, String)>,
}

/// Why a run was stopped before Codex finished.
#[derive(Debug, Clone)]
pub(crate) enum StopReason {
    Cancelled { by: String },
    Shutdown,
}

/// A run between acceptance and its outcome, as `status`, `cancel` and shutdown see it.
pub(crate) struct ActiveRun {
    pub cancel: CancellationToken,
    pub reason: Mutex<Option<StopReason>>,
    /// Empty until the bot has posted the thread's root.
    pub root_id: Mutex<String>,
    pub channel_id: String,
    pub user_id: String,
    pub username: String,
    pub project: String,
    pub admitted: Instant,
    /// When Codex started; `None` while queued or awaiting approval.
    pub started: Mutex<Option<Instant>>,
    /// Codex's session while its turn runs (to steer or interrupt it).
    pub session: Mutex<Option<Session>>,
    /// Where the requester's next reply goes while Codex waits for an answer to its question.
    pub question: Mutex<Option<PendingQuestion>>,
}

/// Codex's question waiting for the requester's reply.
pub(crate) struct PendingQuestion {
    /// Codex's id for the request: `serverRequest/resolved` with it closes the question.
    pub request_id: RequestId,
    pub answer: tokio::sync::oneshot::Sender<String>,
}

impl ActiveRun {
    /// Codex resolved its request `id` by itself: when that is the pending question, the next
    /// reply is no longer its answer (the question's wait sees it closed). True if it was.
    pub fn close_question(&self, id: &RequestId) -> bool {
        let mut q = self.question.lock().unwrap();
        let ours = q.as_ref().is_some_and(|q| &q.request_id == id);
        if ours {
            q.take();
        }
        ours
    }
}

impl ActiveRun {
    pub fn new(user: &User, channel_id: &str, project: &str, root_id: &str) -> Arc<ActiveRun> {
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
            session: Mutex::new(None),
            question: Mutex::new(None),
        })
    }
}

/// An outcome post to deliver: where, for which run, and its text exactly as posted.
#[derive(Debug, Clone)]
pub(crate) struct Outcome {
    pub run_id: String,
    pub channel_id: String,
    pub root_id: String,
    pub status: RunStatus,
    pub text: OutcomeText,
    /// Files uploaded for the outcome post (the turn's `changes.diff`); not kept across a
    /// restart, so a redelivered outcome goes without them.
    pub file_ids: Vec<String>,
}

/// An outcome whose run the database refused to record: this process is the only place it exists
/// until a later write succeeds.
pub(crate) struct Unrecorded {
    pub outcome: Outcome,
    pub result: RunResult,
    pub delivered: bool,
}

/// What outcome delivery keeps in memory (the behaviour is `runs::delivery`).
#[derive(Default)]
pub(crate) struct Deliveries {
    /// Runs whose outcome a task is delivering right now.
    pub claimed: Mutex<HashSet<String>>,
    /// Held by the one redelivery that runs at a time.
    pub redelivery: tokio::sync::Mutex<()>,
    pub unrecorded: Mutex<Vec<Unrecorded>>,
}

pub struct Host {
    pub(crate) store: Store,
    pub(crate) chat: Chat,
    pub(crate) policy: Evaluator,
    pub(crate) metrics: Arc<Metrics>,
    /// Whether the periodic retention task runs already.
    pub(crate) retention_loop: std::sync::atomic::AtomicBool,
    pub(crate) snapshot: ArcSwap<Snapshot>,
    pub(crate) scheduler: Scheduler,
    pub(crate) active: Mutex<HashMap<String, Arc<ActiveRun>>>,
    pub(crate) signer: Signer,
    /// Wakes a run waiting for approval when someone clicks Approve or Deny.
    pub(crate) approval_waiters: Mutex<HashMap<String, Arc<tokio::sync::Notify>>>,
    /// Codex's requests waiting for people, by the key their buttons are signed for.
    pub(crate) command_asks: Mutex<HashMap<String, Arc<CommandAsk>>>,
    /// Redacted from everything posted, besides the bot token.
    pub(crate) secrets: Vec<String>,
    pub(crate) tasks: TaskTracker,
    pub(crate) stopping: CancellationToken,
    pub(crate) deliveries: Deliveries,
}

impl Host {
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The settings-derived state in force now.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    pub(crate) fn config(&self) -> Option<Arc<Config>> {
        self.snapshot.load().config.clone()
    }

    pub(crate) fn redactor(&self) -> Arc<Redactor> {
        self.snapshot.load().redactor.clone()
    }

    pub(crate) fn bot_id(&self) -> String {
        self.snapshot.load().bot_user_id.clone()
    }

    /// The channel's chosen project if it is still configured, else the default one.
    pub(crate) fn active_project(&self, cfg: &Config, channel_id: &str) -> Option<String> {
        self.store
            .channel_project(channel_id)
            .ok()
            .flatten()
            .filter(|p| cfg.projects.contains_key(p))
            .or_else(|| cfg.default_project.clone())
    }

    /// Stops a run (queued, waiting or running); the first reason given is the one it ends with.
    pub(crate) fn stop(&self, run_id: &str, run: &ActiveRun, reason: StopReason) {
        let mut r = run.reason.lock().unwrap();
        if r.is_none() {
            *r = Some(reason);
        }
        drop(r);
        self.scheduler.withdraw(run_id);
        run.cancel.cancel();
    }

    /// A signed button attachment, or nothing when the plugin gave no actions URL (terminal).
    pub(crate) fn buttons(
        &self,
        run_id: &str,
        which: &[ButtonAction],
        ttl_s: i64,
    ) -> Option<Value> {
        let url = self.snapshot.load().actions_url.clone();
        (!url.is_empty()).then(|| self.signer.attachment(&url, run_id, which, now_s(), ttl_s))
    }

    /// Spends a click's nonce; a second use is a replay, refused and audited.
    pub(crate) fn spend(
        &self,
        nonce: &str,
        user: &User,
        run: &RunRow,
        req: &ActionRequest,
    ) -> bool {
        match self.store.spend_nonce(nonce) {
            Ok(true) => true,
            Ok(false) | Err(_) => {
                warn!(user = %user.id, run = %run.id, "refused a replayed button click");
                let _ = self.store.audit(
                    "action.refused",
                    Some(&run.id),
                    &user.id,
                    &req.channel_id,
                    &serde_json::json!({"reason": "replayed", "post_id": req.post_id}),
                );
                false
            }
        }
    }
}

pub(crate) fn now_s() -> i64 {
    now_ms() / 1000
}

/// A run or request id: 26 random lowercase letters and digits.
pub(crate) fn new_id() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..26)
        .map(|_| char::from(b"abcdefghijklmnopqrstuvwxyz0123456789"[rng.random_range(0..36)]))
        .collect()
}
