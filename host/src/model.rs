//! Domain types shared by the store, the runs, the approvals and the renderer: what a run is, how
//! it started and how it ends, and where an approval stands.

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
/// existing human thread (whose transcript is handed over as context). `Pending` until Codex
/// starts: the mode is chosen then.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunMode {
    Pending,
    New,
    Resume,
    Bind,
}

impl RunMode {
    pub fn as_str(self) -> &'static str {
        match self {
            RunMode::Pending => "pending",
            RunMode::New => "new",
            RunMode::Resume => "resume",
            RunMode::Bind => "bind",
        }
    }

    pub fn parse(s: &str) -> Option<RunMode> {
        Some(match s {
            "pending" => RunMode::Pending,
            "new" => RunMode::New,
            "resume" => RunMode::Resume,
            "bind" => RunMode::Bind,
            _ => return None,
        })
    }
}

/// Where an approval request stands. Only `Pending` can change, and only once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalState {
    Pending,
    Approved,
    Denied,
    /// Nobody approved in time (or the request can no longer run): fail closed.
    Expired,
    /// The requester (or an admin) cancelled it.
    Withdrawn,
}

impl ApprovalState {
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalState::Pending => "pending",
            ApprovalState::Approved => "approved",
            ApprovalState::Denied => "denied",
            ApprovalState::Expired => "expired",
            ApprovalState::Withdrawn => "withdrawn",
        }
    }

    pub fn parse(s: &str) -> Option<ApprovalState> {
        Some(match s {
            "pending" => ApprovalState::Pending,
            "approved" => ApprovalState::Approved,
            "denied" => ApprovalState::Denied,
            "expired" => ApprovalState::Expired,
            "withdrawn" => ApprovalState::Withdrawn,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each state and mode has one string form: `as_str`, `parse` and serde agree.
    #[test]
    fn one_string_form_each() {
        use RunStatus as S;
        for s in [
            S::AwaitingApproval,
            S::Queued,
            S::Running,
            S::Answered,
            S::Failed,
            S::Cancelled,
            S::TimedOut,
            S::Refused,
            S::Interrupted,
        ] {
            assert_eq!(RunStatus::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        for m in [
            RunMode::Pending,
            RunMode::New,
            RunMode::Resume,
            RunMode::Bind,
        ] {
            assert_eq!(RunMode::parse(m.as_str()), Some(m));
            assert_eq!(serde_json::to_value(m).unwrap(), m.as_str());
        }
        use ApprovalState as A;
        for a in [A::Pending, A::Approved, A::Denied, A::Expired, A::Withdrawn] {
            assert_eq!(ApprovalState::parse(a.as_str()), Some(a));
            assert_eq!(serde_json::to_value(a).unwrap(), a.as_str());
        }
    }
}

/// What happens to a command or file change Codex asks for when no policy module decides it
/// (setting `command_approval_default`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CommandDefault {
    /// A post in the thread that the person who started the run answers with the buttons.
    #[default]
    AskRequester,
    /// A post in the thread that a system admin (not the requester) answers.
    AskApprovers,
    /// Declined; the thread is told.
    Decline,
}

impl CommandDefault {
    pub const ACCEPTED: &'static str = "ask-requester, ask-approvers, decline";

    pub fn parse(s: &str) -> Option<CommandDefault> {
        match s.trim() {
            "" | "ask-requester" => Some(CommandDefault::AskRequester),
            "ask-approvers" => Some(CommandDefault::AskApprovers),
            "decline" => Some(CommandDefault::Decline),
            _ => None,
        }
    }
}

/// Who may steer a running turn with a reply in its thread (setting `steer_by`). Whoever it
/// is, the policy judges the steering person's text as their own `continue`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SteerBy {
    /// Only the person who started the run; others' replies wait for the next turn.
    #[default]
    Requester,
    /// Anyone the policy allows to continue the thread.
    AllowedUsers,
}

impl SteerBy {
    pub const ACCEPTED: &'static str = "requester, allowed-users";

    pub fn parse(s: &str) -> Option<SteerBy> {
        match s.trim() {
            "" | "requester" => Some(SteerBy::Requester),
            "allowed-users" => Some(SteerBy::AllowedUsers),
            _ => None,
        }
    }
}

/// One rate-limit window of the account Codex runs under, as Codex last reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateWindow {
    pub used_percent: i64,
    /// The window's length (300: five hours, 10080: a week); `None` when Codex did not say.
    pub window_minutes: Option<i64>,
}

/// The account's rate-limit headroom: Codex's short (`primary`) and long (`secondary`) windows.
/// A window Codex never reported is `None`: unknown, not unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateLimits {
    pub primary: Option<RateWindow>,
    pub secondary: Option<RateWindow>,
}

impl RateLimits {
    /// Codex's updates are sparse: a window an update leaves out keeps its last known value.
    pub fn merge(&mut self, update: RateLimits) {
        self.primary = update.primary.or(self.primary);
        self.secondary = update.secondary.or(self.secondary);
    }
}
