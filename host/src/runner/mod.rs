//! Running Codex: the event stream, the process, the queue, and what a run accumulates.
//!
//! Input: an [`Invocation`] and a cancellation token; output: [`RunState`] built from Codex's
//! events and a [`process::Ending`]. Posts nothing and stores nothing itself.

pub mod app_server;
pub mod events;
pub mod isolation;
pub mod process;
pub mod scheduler;
pub mod tested;

use std::collections::BTreeSet;

pub use process::{Ending, Invocation, SpawnError};
pub use scheduler::{Admission, Scheduler};

use events::{Event, ItemKind, Usage};

use crate::render;

/// What a run has learned from Codex so far.
#[derive(Debug, Clone, Default)]
pub struct RunState {
    pub thread_id: Option<String>,
    pub last_message: Option<String>,
    pub files_changed: BTreeSet<String>,
    pub usage: Usage,
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
            Event::ItemStarted(item) | Event::ItemUpdated(item) => {
                if let Some(step) = describe(&item.kind, redactor) {
                    self.step = Some(step);
                }
            }
            Event::ItemCompleted(item) => match &item.kind {
                ItemKind::AgentMessage { text } => self.last_message = Some(text.clone()),
                ItemKind::FileChange { changes } => {
                    self.files_changed
                        .extend(changes.iter().map(|c| c.path.clone()));
                    self.steps_done += 1;
                }
                ItemKind::CommandExecution { .. }
                | ItemKind::McpToolCall { .. }
                | ItemKind::WebSearch { .. } => self.steps_done += 1,
                ItemKind::Error { message } => self.last_error = Some(message.clone()),
                _ => {}
            },
            Event::TurnStarted | Event::Other => self.revision -= 1,
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
        ItemKind::TodoList { done, total } => {
            render::step_other(r, &format!("Plan: {done}/{total} done"))
        }
        ItemKind::Reasoning { .. } => "Thinking…".to_string(),
        _ => return None,
    })
}
