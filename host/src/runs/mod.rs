//! A prompt's life, from acceptance to its one outcome post: `submit` (project, frozen
//! transcript, policy, queue), `drive` (the thread, the queue wait, Codex), `progress` (the edited
//! progress post), `outcome` (what the run ended in), `delivery` (posting that exactly once),
//! `transcript` and `images` (what Codex gets besides the prompt), `approval` (the runs side of an
//! approval wait), `asks` (Codex's approval requests during a run), `changes` (the turn's diff),
//! `steer` (replies while a turn runs), `questions` (Codex's questions to the requester), `reply` (thread replies that continue a
//! session), `clicks` (the run's buttons) and `worktree` (a `worktree=on` thread's own git
//! worktree, and pruning idle ones).
//!
//! Input: prompts from `commands`, `reply` and `codex-host run`, clicks from `api`; output:
//! posts through `chat` (texts from `render`), rows in `store`. Decisions come from the `gate`,
//! Codex from `runner`.

mod approval;
mod asks;
mod changes;
mod clicks;
mod decide;
mod delivery;
mod drive;
mod images;
mod outcome;
mod progress;
mod questions;
mod reply;
mod steer;
mod submit;
mod transcript;
mod worktree;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::warn;

use crate::config::{Config, Project, SandboxMode};
use crate::gate::RunTerms;
use crate::model::RunStatus;
use crate::protocol::{Channel, User};
use crate::render;
use crate::state::ActiveRun;

pub(crate) use decide::Ask;
pub(crate) use submit::Submission;
pub use worktree::Pruned;

/// Progress posts are edited at most this often.
pub const PROGRESS_INTERVAL: Duration = Duration::from_millis(1500);
/// How long Retry buttons stay valid.
const RETRY_TTL_S: i64 = 7 * 24 * 3600;
/// Answers longer than this many posts are attached as a file instead.
const MAX_ANSWER_PARTS: usize = 4;
/// How long accepting a prompt may spend reading its thread: the plugin waits 5 s for the answer.
const TRANSCRIPT_READ_LIMIT: Duration = Duration::from_secs(3);

/// Where a run's posts go.
#[derive(Debug, Clone)]
pub(crate) enum Placement {
    /// The bot starts a new thread in the channel.
    NewRoot,
    /// An existing thread.
    Thread { root_id: String },
}

/// The post that asked for a run, when a reply in a thread (not a slash command) did.
pub(crate) struct Trigger {
    pub post_id: String,
    pub file_ids: Vec<String>,
}

/// What the person asked for: a prompt where they typed it, or explicitly a new session, the
/// channel's latest session, or a failed run again.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Intent {
    Auto,
    New,
    /// A new session rooted at the person's own post (`@codex <prompt>` at channel level): the
    /// post becomes the thread, which then continues like one the bot started.
    Start,
    Continue,
    Retry,
}

/// Everything decided when a prompt is accepted.
pub(crate) struct Plan {
    pub run_id: String,
    pub user: User,
    pub channel: Channel,
    pub project: Project,
    pub placement: Placement,
    pub prompt: String,
    pub trigger_post_id: Option<String>,
    /// Files attached to the triggering post; images among them go to Codex with `-i`.
    pub file_ids: Vec<String>,
    pub sandbox: SandboxMode,
    pub model: Option<String>,
    pub timeout: Duration,
    /// Runs with the same key run one after another (the thread, or the run for a new thread).
    pub thread_key: String,
    /// The thread transcript read when the prompt was accepted; later posts and edits never
    /// reach this run.
    pub context: Option<render::Transcript>,
}

/// One run past the queue wait, as the driver and its outcome see it: the plan, where its posts
/// go, and its entry among the runs in flight.
pub(crate) struct Run {
    pub plan: Plan,
    /// The thread's root (the bot posted it for a channel-level prompt).
    pub root_id: String,
    /// The progress post, when Mattermost took it.
    pub progress_id: Option<String>,
    pub active: Arc<ActiveRun>,
    /// When the queue wait ended.
    pub started: Instant,
}

/// Rule ids of the allowlist's refusals of the person themselves (not of the place): such a
/// refusal offers a Request access button.
const NOT_LISTED_RULES: &[&str] = &["user-not-listed", "allowlist-empty"];

/// Why `Host::submit` did not accept a prompt, for the person who sent it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Refusal {
    pub text: String,
    /// The allowlist refused the person (not the place): they may ask to be added.
    pub may_request_access: bool,
    /// Not refused: the policy lets the person go on, and the bot must be able to post in the
    /// channel first (the plugin gives it access and sends the request again).
    pub needs_bot_access: bool,
}

impl Refusal {
    fn needs_bot_access() -> Refusal {
        Refusal {
            needs_bot_access: true,
            ..Refusal::from(String::new())
        }
    }
}

impl From<String> for Refusal {
    fn from(text: String) -> Refusal {
        Refusal {
            text,
            may_request_access: false,
            needs_bot_access: false,
        }
    }
}

impl From<&str> for Refusal {
    fn from(text: &str) -> Refusal {
        Refusal::from(text.to_string())
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// What the caller of `Host::submit` learns.
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

/// A refusal for a request the state database failed; the error itself goes to the log.
pub(crate) fn internal(e: anyhow::Error) -> String {
    warn!(error = %format!("{e:#}"), "state database error");
    "The Codex host could not save this request (its database failed); nothing was started. Ask an admin to check the host log.".into()
}

#[cfg(test)]
mod tests;
