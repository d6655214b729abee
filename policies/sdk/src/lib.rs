//! SDK for policy modules written in Rust: the bindings of the current `policy-module` world
//! (`wit/policy.wit`, 0.2.0) plus small helpers for reading the config and building verdicts.
//! A module that must stay on an older world generates its own bindings from `wit/<version>/`
//! (as `policies/business-hours` does for 0.1.0) instead of using this crate.
//!
//! A policy implements [`Guest`] and registers itself with [`export!`]:
//!
//! ```ignore
//! use codex_policy_sdk::{export, Guest, Request, Verdict};
//! struct MyPolicy;
//! impl Guest for MyPolicy {
//!     fn validate_config(config: String) -> Result<(), String> { Ok(()) }
//!     fn evaluate(request: Request) -> Verdict { codex_policy_sdk::abstain() }
//! }
//! export!(MyPolicy);
//! ```
//!
//! This crate only saves typing: a policy can call `wit_bindgen::generate!` on `wit/` itself,
//! as docs/policies.md shows.

wit_bindgen::generate!({
    path: "../../wit",
    world: "policy-module",
    pub_export_macro: true,
    export_macro_name: "export",
    default_bindings_module: "codex_policy_sdk",
});

pub use exports::mattermost_codex::policy::policy::Guest;
pub use mattermost_codex::policy::host::{self, Level};
pub use mattermost_codex::policy::types::{
    Action, Approval, Channel, ChannelKind, Command, Decision, FileChange, FileEdit, Limits,
    Project, Request, SandboxMode, Team, User, Verdict,
};

/// Parses the module's config (`host.config()`, a JSON text) into `T`.
///
/// Use the same function in `validate_config` (on its argument) and in `evaluate`, so that a
/// config that loaded is a config that parses.
pub fn parse_config<T: serde::de::DeserializeOwned>(json: &str) -> Result<T, String> {
    let json = if json.trim().is_empty() { "{}" } else { json };
    serde_json::from_str(json).map_err(|e| format!("config is not valid: {e}"))
}

/// The module's config, parsed. Panics (which the host reports as a denial naming this module)
/// only if the config changed shape after `validate_config` accepted it, which cannot happen.
pub fn config<T: serde::de::DeserializeOwned>() -> T {
    match parse_config(&host::config()) {
        Ok(config) => config,
        Err(e) => panic!("{e}"),
    }
}

/// Writes a line to the host's log (capped per evaluation by the host).
pub fn log(level: Level, message: &str) {
    host::log(level, message);
}

/// `allow` with no limits.
pub fn allow(rule: &str) -> Verdict {
    allow_within(
        Limits {
            sandbox: None,
            timeout_secs: None,
            model: None,
        },
        rule,
    )
}

/// `allow` with limits.
pub fn allow_within(limits: Limits, rule: &str) -> Verdict {
    Verdict {
        decision: Decision::Allow(limits),
        rule_id: Some(rule.to_string()),
    }
}

/// `deny` with a reason shown to the user.
pub fn deny(reason: impl Into<String>, rule: &str) -> Verdict {
    Verdict {
        decision: Decision::Deny(reason.into()),
        rule_id: Some(rule.to_string()),
    }
}

/// `require-approval`.
pub fn require_approval(approval: Approval, rule: &str) -> Verdict {
    Verdict {
        decision: Decision::RequireApproval(approval),
        rule_id: Some(rule.to_string()),
    }
}

/// `abstain`: no opinion.
pub fn abstain() -> Verdict {
    Verdict {
        decision: Decision::Abstain,
        rule_id: None,
    }
}

impl SandboxMode {
    /// The name Codex uses for this mode (`codex exec -s <name>`).
    pub fn as_str(self) -> &'static str {
        match self {
            SandboxMode::ReadOnly => "read-only",
            SandboxMode::WorkspaceWrite => "workspace-write",
            SandboxMode::DangerFullAccess => "danger-full-access",
        }
    }

    /// Parses a Codex sandbox name.
    pub fn parse(name: &str) -> Option<SandboxMode> {
        match name {
            "read-only" => Some(SandboxMode::ReadOnly),
            "workspace-write" => Some(SandboxMode::WorkspaceWrite),
            "danger-full-access" => Some(SandboxMode::DangerFullAccess),
            _ => None,
        }
    }
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
