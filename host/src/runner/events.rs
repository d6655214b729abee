//! What a run hears from Codex, as the run's state uses it: the app-server's notifications and
//! requests mapped by [`super::session`] (which keeps Codex's own types at its edge). Item types
//! the host does not show are `ItemKind::Other` and ignored, never fatal. This module does no I/O.

use super::app_server::incoming::{PlanStepStatus, ServerRequest};
use super::app_server::protocol::RequestId;
use crate::model::RateLimits;

#[derive(Debug, Clone)]
pub enum Event {
    ThreadStarted {
        thread_id: String,
    },
    TurnCompleted {
        usage: Usage,
    },
    TurnFailed {
        message: String,
    },
    ItemStarted(Item),
    ItemCompleted(Item),
    /// An error mid-turn: may be a retry notice, not necessarily terminal.
    Error {
        message: String,
    },
    /// A piece of an agent message as it streams.
    AgentDelta {
        item_id: String,
        delta: String,
    },
    /// The turn's plan, whole.
    Plan(Vec<PlanStep>),
    /// The turn's unified diff so far, whole.
    Diff(String),
    /// Codex waits for an answer to `request` (through the session's client, with `id`).
    Ask {
        id: RequestId,
        request: Box<ServerRequest>,
    },
    /// Codex's request `id` was answered or cleared: whatever asks a person about it is moot.
    Resolved(RequestId),
    /// The account's usage windows as Codex now knows them (sparse: `None` is unknown).
    RateLimits(RateLimits),
}

#[derive(Debug, Clone, PartialEq)]
pub struct PlanStep {
    pub step: String,
    pub status: PlanStepStatus,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Usage {
    pub input_tokens: u64,
    pub cached_input_tokens: u64,
    pub output_tokens: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub id: String,
    pub kind: ItemKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ItemKind {
    AgentMessage {
        text: String,
    },
    Reasoning {
        text: String,
    },
    CommandExecution {
        command: String,
        exit_code: Option<i64>,
        status: String,
    },
    FileChange {
        changes: Vec<FileChange>,
    },
    McpToolCall {
        server: String,
        tool: String,
    },
    WebSearch {
        query: String,
    },
    Other(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct FileChange {
    pub path: String,
    /// `add`, `delete` or `update`.
    pub kind: &'static str,
    /// This file's change as a unified diff (for an added file, its content).
    pub diff: String,
}
