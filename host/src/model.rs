//! Domain types shared by the store, the runner and the renderer: what a run is and how it ends.

use serde::{Deserialize, Serialize};

/// Where a run stands. The last six are outcomes: every accepted prompt ends in exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Waiting for approvers; survives restarts.
    AwaitingApproval,
    Queued,
    Running,
    Answered,
    Failed,
    Cancelled,
    TimedOut,
    Refused,
    Interrupted,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::AwaitingApproval => "awaiting_approval",
            RunStatus::Queued => "queued",
            RunStatus::Running => "running",
            RunStatus::Answered => "answered",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
            RunStatus::TimedOut => "timed_out",
            RunStatus::Refused => "refused",
            RunStatus::Interrupted => "interrupted",
        }
    }

    pub fn parse(s: &str) -> Option<RunStatus> {
        Some(match s {
            "awaiting_approval" => RunStatus::AwaitingApproval,
            "queued" => RunStatus::Queued,
            "running" => RunStatus::Running,
            "answered" => RunStatus::Answered,
            "failed" => RunStatus::Failed,
            "cancelled" => RunStatus::Cancelled,
            "timed_out" => RunStatus::TimedOut,
            "refused" => RunStatus::Refused,
            "interrupted" => RunStatus::Interrupted,
            _ => return None,
        })
    }

    pub fn is_final(self) -> bool {
        !matches!(
            self,
            RunStatus::AwaitingApproval | RunStatus::Queued | RunStatus::Running
        )
    }
}

/// How a run was started: a new Codex session, a resumed one, or a new session bound to an
/// existing human thread (whose transcript is handed over as context).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunMode {
    New,
    Resume,
    Bind,
}

impl RunMode {
    pub fn as_str(self) -> &'static str {
        match self {
            RunMode::New => "new",
            RunMode::Resume => "resume",
            RunMode::Bind => "bind",
        }
    }
}
