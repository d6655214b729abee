//! What `codex app-server` sends the host unasked: notifications (turn and item lifecycle,
//! streamed text, the turn's diff and plan, token usage, rate limits, errors) and its own
//! requests (approvals, permission grants, questions for the user), typed after the pinned
//! CLI's schema. A method the host does not know, or a known one whose payload no longer
//! parses, is kept as [`ServerNotification::Other`] / [`ServerRequest::Other`] with its raw
//! params. Pure data; no I/O.

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

use super::protocol::{PermissionProfile, RequestId, Turn, TurnError};

/// A notification from Codex.
#[derive(Debug, Clone)]
pub enum ServerNotification {
    TurnStarted(TurnNotification),
    TurnCompleted(TurnNotification),
    ItemStarted(ItemNotification),
    ItemCompleted(ItemNotification),
    AgentMessageDelta(AgentMessageDelta),
    /// The turn's whole unified diff so far (not an increment).
    TurnDiffUpdated(TurnDiff),
    TurnPlanUpdated(TurnPlan),
    TokenUsageUpdated(TokenUsageUpdate),
    RateLimitsUpdated(RateLimitsUpdate),
    /// An error mid-turn; `will_retry` says whether Codex tries again by itself.
    Error(ErrorNotification),
    /// A request of Codex's was answered, or cleared because its turn started, ended or was
    /// interrupted: whatever asked a person about it is moot now.
    ServerRequestResolved(RequestResolved),
    Other {
        method: String,
        params: Value,
    },
}

pub mod notification {
    pub const TURN_STARTED: &str = "turn/started";
    pub const TURN_COMPLETED: &str = "turn/completed";
    pub const ITEM_STARTED: &str = "item/started";
    pub const ITEM_COMPLETED: &str = "item/completed";
    pub const AGENT_MESSAGE_DELTA: &str = "item/agentMessage/delta";
    pub const TURN_DIFF_UPDATED: &str = "turn/diff/updated";
    pub const TURN_PLAN_UPDATED: &str = "turn/plan/updated";
    pub const TOKEN_USAGE_UPDATED: &str = "thread/tokenUsage/updated";
    pub const RATE_LIMITS_UPDATED: &str = "account/rateLimits/updated";
    pub const ERROR: &str = "error";
    pub const SERVER_REQUEST_RESOLVED: &str = "serverRequest/resolved";
}

impl ServerNotification {
    pub fn parse(method: &str, params: Value) -> ServerNotification {
        use notification as n;
        let parsed = match method {
            n::TURN_STARTED => typed(&params).map(Self::TurnStarted),
            n::TURN_COMPLETED => typed(&params).map(Self::TurnCompleted),
            n::ITEM_STARTED => typed(&params).map(Self::ItemStarted),
            n::ITEM_COMPLETED => typed(&params).map(Self::ItemCompleted),
            n::AGENT_MESSAGE_DELTA => typed(&params).map(Self::AgentMessageDelta),
            n::TURN_DIFF_UPDATED => typed(&params).map(Self::TurnDiffUpdated),
            n::TURN_PLAN_UPDATED => typed(&params).map(Self::TurnPlanUpdated),
            n::TOKEN_USAGE_UPDATED => typed(&params).map(Self::TokenUsageUpdated),
            n::RATE_LIMITS_UPDATED => typed(&params).map(Self::RateLimitsUpdated),
            n::ERROR => typed(&params).map(Self::Error),
            n::SERVER_REQUEST_RESOLVED => typed(&params).map(Self::ServerRequestResolved),
            _ => None,
        };
        parsed.unwrap_or_else(|| ServerNotification::Other {
            method: method.to_string(),
            params,
        })
    }
}

/// A request from Codex; answer it through [`super::Client`] with the request's `id`.
#[derive(Debug, Clone)]
pub enum ServerRequest {
    CommandApproval(CommandApproval),
    FileChangeApproval(FileChangeApproval),
    /// Answered with a grant ([`super::protocol::PermissionsResponse`]), not a decision.
    PermissionsApproval(PermissionsApproval),
    UserInput(UserInputRequest),
    Other {
        method: String,
        params: Value,
    },
}

pub mod request {
    pub const COMMAND_APPROVAL: &str = "item/commandExecution/requestApproval";
    pub const FILE_CHANGE_APPROVAL: &str = "item/fileChange/requestApproval";
    pub const PERMISSIONS_APPROVAL: &str = "item/permissions/requestApproval";
    pub const USER_INPUT: &str = "item/tool/requestUserInput";
}

impl ServerRequest {
    pub fn parse(method: &str, params: Value) -> ServerRequest {
        use request as r;
        let parsed = match method {
            r::COMMAND_APPROVAL => typed(&params).map(Self::CommandApproval),
            r::FILE_CHANGE_APPROVAL => typed(&params).map(Self::FileChangeApproval),
            r::PERMISSIONS_APPROVAL => typed(&params).map(Self::PermissionsApproval),
            r::USER_INPUT => typed(&params).map(Self::UserInput),
            _ => None,
        };
        parsed.unwrap_or_else(|| ServerRequest::Other {
            method: method.to_string(),
            params,
        })
    }

    /// The thread and turn the request belongs to, when it is one the host knows.
    pub fn turn(&self) -> Option<(&str, &str)> {
        let (t, u) = match self {
            ServerRequest::CommandApproval(r) => (&r.thread_id, &r.turn_id),
            ServerRequest::FileChangeApproval(r) => (&r.thread_id, &r.turn_id),
            ServerRequest::PermissionsApproval(r) => (&r.thread_id, &r.turn_id),
            ServerRequest::UserInput(r) => (&r.thread_id, &r.turn_id),
            ServerRequest::Other { .. } => return None,
        };
        Some((t, u))
    }
}

fn typed<T: DeserializeOwned>(params: &Value) -> Option<T> {
    T::deserialize(params)
        .map_err(|e| tracing::warn!(error = %e, "a Codex app-server message did not match the pinned protocol; kept untyped"))
        .ok()
}

// ---- notification payloads ------------------------------------------------------------------

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TurnNotification {
    pub thread_id: String,
    pub turn: Turn,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemNotification {
    pub thread_id: String,
    pub turn_id: String,
    pub item: ThreadItem,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentMessageDelta {
    pub thread_id: String,
    pub turn_id: String,
    pub item_id: String,
    pub delta: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TurnDiff {
    pub thread_id: String,
    pub turn_id: String,
    pub diff: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TurnPlan {
    pub turn_id: String,
    #[serde(default)]
    pub explanation: Option<String>,
    pub plan: Vec<PlanStep>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PlanStep {
    pub step: String,
    pub status: PlanStepStatus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum PlanStepStatus {
    Pending,
    InProgress,
    Completed,
    #[serde(other)]
    Unknown,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenUsageUpdate {
    pub thread_id: String,
    pub turn_id: String,
    pub token_usage: ThreadTokenUsage,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ThreadTokenUsage {
    /// The whole thread so far.
    pub total: TokenUsage,
    /// The last model request.
    pub last: TokenUsage,
    #[serde(default)]
    pub model_context_window: Option<i64>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenUsage {
    pub input_tokens: i64,
    pub cached_input_tokens: i64,
    pub output_tokens: i64,
    pub reasoning_output_tokens: i64,
    pub total_tokens: i64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RateLimitsUpdate {
    pub rate_limits: RateLimitSnapshot,
}

/// A sparse update: absent windows mean "unknown", not "no limit".
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RateLimitSnapshot {
    #[serde(default)]
    pub limit_id: Option<String>,
    #[serde(default)]
    pub primary: Option<RateLimitWindow>,
    #[serde(default)]
    pub secondary: Option<RateLimitWindow>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RateLimitWindow {
    pub used_percent: i64,
    #[serde(default)]
    pub window_duration_mins: Option<i64>,
    /// Unix seconds.
    #[serde(default)]
    pub resets_at: Option<i64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorNotification {
    pub thread_id: String,
    pub turn_id: String,
    pub error: TurnError,
    pub will_retry: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestResolved {
    pub thread_id: String,
    pub request_id: RequestId,
}

// ---- items ----------------------------------------------------------------------------------

/// One item of a turn; the types the host shows, or the raw JSON of any other.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum ThreadItem {
    Known(Item),
    Other(Value),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Item {
    UserMessage {
        id: String,
    },
    AgentMessage {
        id: String,
        text: String,
    },
    Reasoning {
        id: String,
        #[serde(default)]
        summary: Vec<String>,
    },
    #[serde(rename_all = "camelCase")]
    CommandExecution {
        id: String,
        /// As Codex runs it, e.g. `/bin/bash -lc 'cargo test'`.
        command: String,
        cwd: String,
        status: ItemStatus,
        #[serde(default)]
        aggregated_output: Option<String>,
        #[serde(default)]
        exit_code: Option<i64>,
    },
    FileChange {
        id: String,
        changes: Vec<FileUpdateChange>,
        status: ItemStatus,
    },
    McpToolCall {
        id: String,
        server: String,
        tool: String,
        status: ItemStatus,
    },
    WebSearch {
        id: String,
        query: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ItemStatus {
    InProgress,
    Completed,
    Failed,
    /// Refused at approval: a command that never ran, a patch never applied.
    Declined,
    #[serde(other)]
    Unknown,
}

#[derive(Debug, Clone, Deserialize)]
pub struct FileUpdateChange {
    pub path: String,
    pub kind: PatchChangeKind,
    /// This file's change (for an added file: its content).
    pub diff: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum PatchChangeKind {
    Add,
    Delete,
    Update {
        #[serde(default)]
        move_path: Option<String>,
    },
}

// ---- request payloads -----------------------------------------------------------------------

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommandApproval {
    pub thread_id: String,
    pub turn_id: String,
    /// The `commandExecution` item this is about (announced by `item/started` just before).
    pub item_id: String,
    /// Set when one item asks several times (subcommands, stdin); otherwise absent.
    #[serde(default)]
    pub approval_id: Option<String>,
    /// `command`, `writeStdin` or `humanCommand`.
    #[serde(default)]
    pub kind: Option<String>,
    /// Absent for a network-only approval (see `network_approval_context`).
    #[serde(default)]
    pub command: Option<String>,
    #[serde(default)]
    pub cwd: Option<String>,
    /// Codex's (the model's) stated reason, e.g. why it needs to leave the sandbox.
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub network_approval_context: Option<NetworkApprovalContext>,
    #[serde(default)]
    pub proposed_execpolicy_amendment: Option<Vec<String>>,
    /// The answers Codex offers (strings like `accept`, or objects such as
    /// `{"acceptWithExecpolicyAmendment": ...}`). Sent by 0.171 although its stable schema
    /// does not list it; Codex still honours `acceptForSession` and `decline` when they are
    /// not offered.
    #[serde(default)]
    pub available_decisions: Option<Vec<Value>>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct NetworkApprovalContext {
    pub host: String,
    pub protocol: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileChangeApproval {
    pub thread_id: String,
    pub turn_id: String,
    /// The `fileChange` item (with paths and per-file diffs) announced by `item/started`.
    pub item_id: String,
    #[serde(default)]
    pub reason: Option<String>,
    /// Codex asks to write under this root for the rest of the session.
    #[serde(default)]
    pub grant_root: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PermissionsApproval {
    pub thread_id: String,
    pub turn_id: String,
    pub item_id: String,
    pub cwd: String,
    #[serde(default)]
    pub reason: Option<String>,
    pub permissions: PermissionProfile,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserInputRequest {
    pub thread_id: String,
    pub turn_id: String,
    pub item_id: String,
    pub questions: Vec<Question>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Question {
    /// The key of the answer in [`super::protocol::UserInputResponse::answers`].
    pub id: String,
    pub header: String,
    pub question: String,
    #[serde(default)]
    pub options: Option<Vec<QuestionOption>>,
    /// Codex offers a free-form "Other" answer besides the options.
    #[serde(default)]
    pub is_other: bool,
    #[serde(default)]
    pub is_secret: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct QuestionOption {
    pub label: String,
    pub description: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_methods_payloads_and_items_are_kept_untyped() {
        let n = ServerNotification::parse("thread/somethingNew", json!({"x": 1}));
        assert!(
            matches!(n, ServerNotification::Other { ref method, .. } if method == "thread/somethingNew")
        );
        // A known method whose payload no longer fits is kept, not dropped or fatal.
        let n = ServerNotification::parse("turn/diff/updated", json!({"diff": 3}));
        assert!(matches!(n, ServerNotification::Other { .. }));
        let n = ServerNotification::parse(
            "item/completed",
            json!({"threadId": "t", "turnId": "u", "completedAtMs": 1, "newField": true,
                   "item": {"type": "hologram", "id": "i"}}),
        );
        let ServerNotification::ItemCompleted(n) = n else {
            panic!("{n:?}")
        };
        assert!(matches!(n.item, ThreadItem::Other(ref v) if v["type"] == "hologram"));
        let r = ServerRequest::parse("item/tool/call", json!({}));
        assert!(matches!(r, ServerRequest::Other { .. }));
    }

    #[test]
    fn a_command_approval_reads_as_codex_sends_it() {
        // Verbatim from codex app-server 0.171.0 under approval policy `untrusted`.
        let params = json!({"kind":"command","threadId":"th","turnId":"tu","itemId":"call_1",
            "startedAtMs":1,"environmentId":"local","command":"/bin/bash -lc 'touch ran.txt'",
            "cwd":"/repo","commandActions":[{"type":"unknown","command":"touch ran.txt"}],
            "proposedExecpolicyAmendment":["touch","ran.txt"],
            "availableDecisions":["accept",{"acceptWithExecpolicyAmendment":{"execpolicy_amendment":["touch","ran.txt"]}},"cancel"]});
        let ServerRequest::CommandApproval(a) =
            ServerRequest::parse(request::COMMAND_APPROVAL, params)
        else {
            panic!()
        };
        assert_eq!(a.command.as_deref(), Some("/bin/bash -lc 'touch ran.txt'"));
        assert_eq!(a.kind.as_deref(), Some("command"));
        assert_eq!(
            a.proposed_execpolicy_amendment.unwrap(),
            ["touch", "ran.txt"]
        );
    }
}
