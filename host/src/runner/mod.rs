//! Running Codex: the process, the app-server session, its events, the queue, and what a run
//! accumulates.
//!
//! Input: an [`Invocation`] and a cancellation token; output: [`RunState`] built from Codex's
//! events and a [`process::Ending`] ([`session::run`]). Posts nothing and stores nothing itself.

pub mod app_server;
pub mod events;
pub mod isolation;
pub mod process;
pub mod scheduler;
pub mod session;
pub mod tested;

use std::collections::BTreeSet;

pub use process::{Ending, Invocation, SpawnError};
pub use scheduler::{Admission, Scheduler};

use events::{Event, ItemKind, PlanStep, Usage};

use crate::model::RateLimits;
use crate::render;

/// What a run has learned from Codex so far.
#[derive(Debug, Clone, Default)]
pub struct RunState {
    pub thread_id: Option<String>,
    pub last_message: Option<String>,
    /// The agent message streaming now (its item id and text so far), until it completes.
    pub streaming: Option<(String, String)>,
    /// The turn's plan, as Codex last sent it.
    pub plan: Vec<PlanStep>,
    /// The turn's unified diff so far.
    pub diff: Option<String>,
    pub files_changed: BTreeSet<String>,
    pub usage: Usage,
    /// The account's usage windows, as Codex last reported them.
    pub rate_limits: RateLimits,
    pub step: Option<String>,
    pub steps_done: usize,
    pub failure: Option<String>,
    pub last_error: Option<String>,
    /// Bumped on every change the progress post shows.
    pub revision: u64,
}

impl RunState {
    /// Folds in one event; `redactor` cleans step descriptions before they are shortened.
    pub fn apply(&mut self, ev: &Event, redactor: &render::Redactor) {
        self.revision += 1;
        match ev {
            Event::ThreadStarted { thread_id } => self.thread_id = Some(thread_id.clone()),
            Event::TurnCompleted { usage } => {
                self.usage.input_tokens += usage.input_tokens;
                self.usage.cached_input_tokens += usage.cached_input_tokens;
                self.usage.output_tokens += usage.output_tokens;
            }
            Event::TurnFailed { message } => self.failure = Some(message.clone()),
            Event::Error { message } => self.last_error = Some(message.clone()),
            Event::AgentDelta { item_id, delta } => match &mut self.streaming {
                Some((id, text)) if id == item_id => text.push_str(delta),
                _ => self.streaming = Some((item_id.clone(), delta.clone())),
            },
            Event::Plan(plan) => self.plan = plan.clone(),
            Event::ItemStarted(item) => {
                if let Some(step) = describe(&item.kind, redactor) {
                    self.step = Some(step);
                }
            }
            Event::ItemCompleted(item) => match &item.kind {
                ItemKind::AgentMessage { text } => {
                    self.last_message = Some(text.clone());
                    self.streaming = None;
                }
                ItemKind::FileChange { changes } => {
                    self.files_changed
                        .extend(changes.iter().map(|c| c.path.clone()));
                    self.steps_done += 1;
                }
                ItemKind::CommandExecution { .. }
                | ItemKind::McpToolCall { .. }
                | ItemKind::WebSearch { .. } => self.steps_done += 1,
                _ => self.revision -= 1,
            },
            Event::Diff(diff) => {
                self.diff = Some(diff.clone());
                self.revision -= 1;
            }
            Event::RateLimits(update) => {
                self.rate_limits.merge(*update);
                self.revision -= 1;
            }
            Event::Ask { .. } | Event::Resolved(_) => self.revision -= 1,
        }
    }
}

fn describe(kind: &ItemKind, r: &render::Redactor) -> Option<String> {
    Some(match kind {
        ItemKind::CommandExecution { command, .. } => render::step_command(r, command),
        ItemKind::FileChange { changes } => render::step_files(
            r,
            &changes.iter().map(|c| c.path.clone()).collect::<Vec<_>>(),
        ),
        ItemKind::McpToolCall { server, tool } => {
            render::step_other(r, &format!("Using tool `{server}.{tool}`"))
        }
        ItemKind::WebSearch { query } => {
            render::step_other(r, &format!("Searching the web for “{query}”"))
        }
        ItemKind::Reasoning { .. } => "Thinking…".to_string(),
        _ => return None,
    })
}
