//! approval-for-risky: prompts that look risky wait for a configured approver.
//!
//! Config (JSON):
//! ```json
//! {"patterns": ["(?i)\\bdeploy\\b", "(?i)rm -rf", "(?i)prod(uction)?"],
//!  "sandboxes": ["danger-full-access"],
//!  "approvers": ["alice", "bob"], "min_approvals": 1, "expiry_secs": 3600,
//!  "allow_self_approval": false,
//!  "actions": ["new", "continue", "retry"]}
//! ```
//! - `patterns`: regular expressions (Rust `regex` syntax, via regex-lite) matched against the
//!   prompt. A match requires approval.
//! - `sandboxes`: requested sandbox modes that require approval whatever the prompt says.
//! - `approvers` (required, non-empty): usernames or user ids who may approve.
//! - `min_approvals` (default 1), `expiry_secs` (default: the host's), `allow_self_approval`
//!   (default false).
//! - `actions`: which actions are checked (default `new`, `continue`, `retry`). Others abstain.
//!
//! A prompt that matches nothing abstains, so this module combines with an allowlist.

use codex_policy_sdk::{self as sdk, export, Approval, Guest, Request, Verdict};
use regex_lite::Regex;
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default)]
    patterns: Vec<String>,
    #[serde(default)]
    sandboxes: Vec<String>,
    approvers: Vec<String>,
    #[serde(default = "one")]
    min_approvals: u32,
    #[serde(default)]
    expiry_secs: Option<u32>,
    #[serde(default)]
    allow_self_approval: bool,
    #[serde(default = "default_actions")]
    actions: Vec<String>,
}

fn one() -> u32 {
    1
}

fn default_actions() -> Vec<String> {
    vec!["new".into(), "continue".into(), "retry".into()]
}

const ACTIONS: [&str; 7] = [
    "new",
    "continue",
    "approve",
    "reject",
    "cancel",
    "retry",
    "policy-query",
];

fn check(config: &Config) -> Result<Vec<Regex>, String> {
    if config.approvers.is_empty() {
        return Err("approvers must name at least one username or user id".into());
    }
    if config.min_approvals == 0 || config.min_approvals as usize > config.approvers.len() {
        return Err(format!(
            "min_approvals must be between 1 and the number of approvers ({})",
            config.approvers.len()
        ));
    }
    for sandbox in &config.sandboxes {
        if sdk::SandboxMode::parse(sandbox).is_none() {
            return Err(format!(
                "sandboxes: {sandbox:?} is not a sandbox mode; use read-only, workspace-write or \
                 danger-full-access"
            ));
        }
    }
    for action in &config.actions {
        if !ACTIONS.contains(&action.as_str()) {
            return Err(format!(
                "actions: {action:?} is not one of {}",
                ACTIONS.join(", ")
            ));
        }
    }
    config
        .patterns
        .iter()
        .map(|p| Regex::new(p).map_err(|e| format!("patterns: {p:?} is not a valid regex: {e}")))
        .collect()
}

struct ApprovalForRisky;

impl Guest for ApprovalForRisky {
    fn validate_config(config: String) -> Result<(), String> {
        check(&sdk::parse_config(&config)?).map(|_| ())
    }

    fn evaluate(request: Request) -> Verdict {
        let config: Config = sdk::config();
        if !config.actions.iter().any(|a| a == request.action.as_str()) {
            return sdk::abstain();
        }
        let patterns = check(&config).unwrap_or_else(|e| panic!("{e}"));
        let reason = if let Some(p) = patterns.iter().find(|p| p.is_match(&request.prompt)) {
            format!("The prompt matches the risky pattern `{}`.", p.as_str())
        } else if config
            .sandboxes
            .iter()
            .any(|s| s == request.requested_sandbox.as_str())
        {
            format!(
                "The run asks for the {} sandbox.",
                request.requested_sandbox.as_str()
            )
        } else {
            return sdk::abstain();
        };
        sdk::require_approval(
            Approval {
                approvers: config.approvers,
                min_approvals: config.min_approvals,
                reason,
                expiry_secs: config.expiry_secs,
                allow_self_approval: config.allow_self_approval,
            },
            "risky-prompt",
        )
    }
}

export!(ApprovalForRisky);
