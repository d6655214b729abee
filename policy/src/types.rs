//! The engine's public data: the request a chain decides, each module's verdict, the chain's
//! final decision and the report the host audits. Plain serde structs mirroring the current WIT
//! (`wit/policy.wit`); every world version a module may target is mapped to and from these in
//! `world/`, and the wasmtime bindings never leave it.
//!
//! Every request field has a default so that test-case files only spell out what matters.

use serde::{Deserialize, Serialize};

/// One request for a decision (WIT `request`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicyRequest {
    pub request_id: String,
    pub user: User,
    pub channel: Channel,
    pub action: Action,
    /// Prompt text without the `/codex` trigger.
    pub prompt: String,
    /// The thread transcript Codex receives with the prompt (messages anyone posted in the
    /// thread before it), as given to Codex; `None` when Codex gets the prompt alone. Shown to
    /// modules built for 0.2.0 and later.
    pub context: Option<String>,
    pub project: Option<Project>,
    /// The sandbox the run would get before any policy tightens it.
    pub requested_sandbox: SandboxMode,
    /// Root post id of the thread, if the request is inside one.
    pub thread_root_id: Option<String>,
    /// Milliseconds since the Unix epoch, UTC.
    pub time_unix_ms: i64,
    pub attachment_count: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct User {
    pub id: String,
    pub username: String,
    pub roles: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Channel {
    pub id: String,
    pub name: String,
    pub team: Team,
    pub kind: ChannelKind,
}

/// Direct and group messages have no team: both fields are empty.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Team {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChannelKind {
    #[default]
    Public,
    Private,
    Direct,
    Group,
}

/// What is being asked (WIT `action`). In case files and JSON a plain action is its name
/// (`"new"`); `command` and `file-change` carry their payload: `{"command": {"argv": [...], ...}}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    #[default]
    New,
    Continue,
    Approve,
    Reject,
    Cancel,
    Retry,
    PolicyQuery,
    /// Codex, during a run, asks to run a command. Asked of 0.2.0 modules only.
    Command(Command),
    /// Codex, during a run, asks to change files. Asked of 0.2.0 modules only.
    FileChange(FileChange),
}

impl Action {
    /// The WIT name of the action, e.g. `policy-query`, `file-change`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Action::New => "new",
            Action::Continue => "continue",
            Action::Approve => "approve",
            Action::Reject => "reject",
            Action::Cancel => "cancel",
            Action::Retry => "retry",
            Action::PolicyQuery => "policy-query",
            Action::Command(_) => "command",
            Action::FileChange(_) => "file-change",
        }
    }
}

/// A command Codex asks to run (WIT `command`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Command {
    /// Program and arguments.
    pub argv: Vec<String>,
    /// Absolute working directory.
    pub cwd: String,
    /// Why Codex says it needs the command.
    pub reason: Option<String>,
    /// Asks to run outside the sandbox (Codex's escalated permissions).
    pub escalated: bool,
    /// Needs network access.
    pub network: bool,
}

/// Files Codex asks to change (WIT `file-change`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FileChange {
    pub files: Vec<FileEdit>,
    /// Why Codex says it needs the change.
    pub reason: Option<String>,
}

/// One file of a [`FileChange`] (WIT `file-edit`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FileEdit {
    /// Relative to the project's repository when inside it, absolute otherwise.
    pub path: String,
    pub added_lines: u32,
    pub removed_lines: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Project {
    pub name: String,
    pub repo_path: String,
}

/// Codex sandbox modes, ordered from most to least restricted (`Ord` follows that order, so the
/// tightest of two is the smaller).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum SandboxMode {
    ReadOnly,
    #[default]
    WorkspaceWrite,
    DangerFullAccess,
}

impl SandboxMode {
    /// The name `codex exec -s` takes.
    pub fn as_str(self) -> &'static str {
        match self {
            SandboxMode::ReadOnly => "read-only",
            SandboxMode::WorkspaceWrite => "workspace-write",
            SandboxMode::DangerFullAccess => "danger-full-access",
        }
    }
}

/// Restrictions on a run (WIT `limits`). `None` leaves the run as requested.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Most permissive sandbox allowed; the host runs with `min(requested, this)`.
    pub sandbox: Option<SandboxMode>,
    pub timeout_secs: Option<u32>,
    pub model: Option<String>,
}

impl Limits {
    /// Keeps the tightest of `self` and `other`: the more restricted sandbox, the shorter
    /// timeout, and the model `self` already pinned (chain order) or else `other`'s.
    pub fn tighten(&mut self, other: &Limits) {
        self.sandbox = match (self.sandbox, other.sandbox) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.timeout_secs = match (self.timeout_secs, other.timeout_secs) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if self.model.is_none() {
            self.model.clone_from(&other.model);
        }
    }

    /// The sandbox a run requested with `requested` actually gets.
    pub fn effective_sandbox(&self, requested: SandboxMode) -> SandboxMode {
        self.sandbox.map_or(requested, |limit| limit.min(requested))
    }
}

/// What `require-approval` asks for (WIT `approval`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Approval {
    /// Usernames or user ids.
    pub approvers: Vec<String>,
    pub min_approvals: u32,
    pub reason: String,
    pub expiry_secs: Option<u32>,
    pub allow_self_approval: bool,
}

/// One module's decision (WIT `decision`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "kebab-case")]
pub enum Decision {
    Allow(Limits),
    Deny { reason: String },
    RequireApproval(Approval),
    Abstain,
}

impl Decision {
    /// `allow`, `deny`, `require-approval` or `abstain`.
    pub fn kind(&self) -> &'static str {
        match self {
            Decision::Allow(_) => "allow",
            Decision::Deny { .. } => "deny",
            Decision::RequireApproval(_) => "require-approval",
            Decision::Abstain => "abstain",
        }
    }
}

/// One module's answer (WIT `verdict`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    #[serde(flatten)]
    pub decision: Decision,
    pub rule_id: Option<String>,
}

/// What the chain decided; this is what the host enforces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "kebab-case")]
pub enum FinalDecision {
    /// Run, within these limits (the tightest of every allowing module's).
    Allow(Limits),
    /// Refuse. `reason` is written for the user; `module` names the module that denied or
    /// failed, and is `None` when no module did (no policy configured, every module abstained).
    Deny {
        reason: String,
        module: Option<String>,
    },
    /// Run once approved: the approvals of every module that asked, merged (approvers united,
    /// the highest `min_approvals`, the shortest expiry, self-approval only if all allow it,
    /// reasons joined), within `limits`, merged from every allowing module exactly as for
    /// `Allow`: an approval lifts the wait, never a limit.
    RequireApproval { approval: Approval, limits: Limits },
}

impl FinalDecision {
    /// `allow`, `deny` or `require-approval`.
    pub fn kind(&self) -> &'static str {
        match self {
            FinalDecision::Allow(_) => "allow",
            FinalDecision::Deny { .. } => "deny",
            FinalDecision::RequireApproval { .. } => "require-approval",
        }
    }

    pub fn is_allow(&self) -> bool {
        matches!(self, FinalDecision::Allow(_))
    }

    /// The limits a run gets if it goes ahead: an allow's, or an approval's once approved.
    pub fn limits(&self) -> Option<&Limits> {
        match self {
            FinalDecision::Allow(limits) | FinalDecision::RequireApproval { limits, .. } => {
                Some(limits)
            }
            FinalDecision::Deny { .. } => None,
        }
    }
}

/// Why a module produced no verdict. Every failure counts as a deny naming the module.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailureKind {
    /// The module trapped (a panic, `unreachable`, an out-of-bounds access...).
    Trap,
    /// The evaluation ran past its epoch deadline.
    Deadline,
    /// The module tried to grow its memory past the cap.
    MemoryLimit,
    /// The module ran out of fuel.
    Fuel,
    /// The module returned a verdict the host refuses (e.g. an approval nobody can give).
    MalformedResult,
    /// The module could not be instantiated (e.g. its initial memory exceeds the cap).
    Instantiate,
    /// The module never loaded (bad file, wrong world, rejected config); see the message.
    Load,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleFailure {
    pub kind: FailureKind,
    pub message: String,
}

/// A module's verdict, or why there is none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ModuleOutcome {
    Verdict(Verdict),
    Failed(ModuleFailure),
}

/// A line a module logged through `host.log`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    pub level: String,
    pub message: String,
}

/// What one module did for one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleReport {
    pub name: String,
    /// `sha256:<hex>` of the component file.
    pub hash: String,
    /// Evaluated and reported, never enforced.
    pub monitor: bool,
    pub outcome: ModuleOutcome,
    /// Instantiation plus the call, in microseconds.
    pub elapsed_us: u64,
    /// Lines logged during this evaluation, after the caps.
    pub logs: Vec<LogLine>,
    /// Lines dropped (or cut) by the caps.
    pub logs_dropped: u32,
}

/// Everything the host needs to enforce and audit one decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainReport {
    pub request_id: String,
    pub decision: FinalDecision,
    /// Rule ids of the enforced verdicts behind `decision` (the denying one, the approvals, or
    /// the allows), in chain order. For a require-approval they are the approvals' rules only,
    /// though the allows' limits are carried too.
    pub rule_ids: Vec<String>,
    /// What the chain would have decided had its monitor modules been enforced; `None` when
    /// the chain has no monitor module.
    pub monitor_decision: Option<FinalDecision>,
    /// Every module, in chain order, enforced or not.
    pub modules: Vec<ModuleReport>,
    pub elapsed_us: u64,
}
