//! approval-for-risky: requests that look risky wait for a configured approver.
//!
//! Config (JSON):
//! ```json
//! {"patterns": ["(?i)\\bdeploy\\b", "(?i)rm -rf", "(?i)prod(uction)?"],
//!  "sandboxes": ["danger-full-access"],
//!  "approvers": ["alice", "bob"], "min_approvals": 1, "expiry_secs": 3600,
//!  "allow_self_approval": false,
//!  "actions": ["new", "continue", "retry"]}
//! ```
//! - `patterns`: regular expressions (Rust `regex` syntax, via regex-lite) matched against what
//!   Codex is told: the prompt and the context (the thread transcript Codex receives with it), so
//!   "deploy to prod" posted earlier in the thread is caught when the prompt is "do what I said
//!   above". For the `command` action they are matched against the command line (argv joined by
//!   spaces), for `file-change` against each file path. A match requires approval.
//! - `sandboxes`: requested sandbox modes that require approval whatever the prompt says.
//! - `approvers` (required, non-empty): usernames or user ids who may approve.
//! - `min_approvals` (default 1), `expiry_secs` (default: the host's), `allow_self_approval`
//!   (default false).
//! - `actions`: which actions are checked (default `new`, `continue`, `retry`; `command` and
//!   `file-change` may be added). Others abstain.
//!
//! A prompt that matches nothing abstains, so this module combines with an allowlist.

use std::borrow::Cow;

use codex_policy_sdk::{self as sdk, export, Action, Approval, Guest, Request, Verdict};
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

const ACTIONS: [&str; 9] = [
    "new",
    "continue",
    "approve",
    "reject",
    "cancel",
    "retry",
    "policy-query",
    "command",
    "file-change",
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
        let matched = subjects(&request).into_iter().find_map(|(what, text)| {
            patterns
                .iter()
                .find(|p| p.is_match(&text))
                .map(|p| (what, p))
        });
        let reason = if let Some((what, p)) = matched {
            format!("{what} matches the risky pattern `{}`.", p.as_str())
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

/// The texts the patterns are matched against, each with how the reason names it.
fn subjects(request: &Request) -> Vec<(&'static str, Cow<'_, str>)> {
    match &request.action {
        Action::Command(command) => vec![("The command", command.argv.join(" ").into())],
        Action::FileChange(change) => change
            .files
            .iter()
            .map(|f| ("A changed file", f.path.as_str().into()))
            .collect(),
        _ => {
            let mut texts = vec![("The prompt", request.prompt.as_str().into())];
            if let Some(context) = &request.context {
                texts.push(("The thread Codex receives with the prompt", context.into()));
            }
            texts
        }
    }
}

export!(ApprovalForRisky);
