//! command-guard: decides the commands and file changes Codex asks for during a run (actions
//! `command` and `file-change`, WIT 0.2.0). Abstains on every other action, so it sits in a chain
//! behind a module that decides who may start runs (e.g. `allowlist`).
//!
//! Config (JSON):
//! ```json
//! {"approvers": ["u-lead"], "min_approvals": 1, "expiry_secs": 900,
//!  "allow_self_approval": false, "read_only": ["cloc"], "unlisted": "abstain"}
//! ```
//! - `approvers` (required, non-empty): usernames or user ids who may approve.
//! - `min_approvals` (default 1), `expiry_secs` (default: the host's), `allow_self_approval`
//!   (default false).
//! - `read_only`: program names to treat as read-only besides the built-in list.
//! - `unlisted`: what to do with a command no rule covers, e.g. `cargo test` (`abstain`, the
//!   default, or `require-approval`).
//!
//! Commands, most severe rule first (a shell wrapper such as `bash -lc "a && b"` is read
//! command by command, and the line is as severe as its worst part):
//! - deny `destructive-rm`: a recursive `rm` of `/`, a top-level directory, the home directory,
//!   the repository or a directory containing it (`rm -rf /`, `rm -rf ~`, `rm -rf /*`,
//!   `sudo rm -fr .`, flags combined or split), and `rm --no-preserve-root`;
//! - require approval: `git-push`; `package-install` (npm/pip/cargo/apt/… install, npx);
//!   `network` (Codex asks for network access, or curl, ssh, `git fetch`, …); `escalated`
//!   (Codex asks to leave the sandbox, or sudo); `outside-repo` (working directory or a path
//!   operand outside the repository, or no project at all); `opaque-shell` (command
//!   substitution, here-documents, control flow: what runs is only known when it runs);
//! - allow `read-only-command`: every part is a read-only program (ls, cat, rg, grep, `git
//!   status/diff/log`, `sed -n '1,20p'`, …) inside the repository;
//! - otherwise `unlisted`.
//!
//! File changes: a file outside the repository or inside `.git/` (hooks run code) requires
//! approval; anything else is allowed (`in-repo-change`).
//!
//! Paths are judged by name: `..` is resolved, symlinks are not (the module has no filesystem).

mod command;
mod paths;
mod programs;
mod shell;

use codex_policy_sdk::{
    self as sdk, export, Action, Approval, FileChange, Guest, Request, Verdict,
};
use serde::Deserialize;

use command::{Judgement, Scope};
use paths::Place;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    approvers: Vec<String>,
    #[serde(default = "one")]
    min_approvals: u32,
    #[serde(default)]
    expiry_secs: Option<u32>,
    #[serde(default)]
    allow_self_approval: bool,
    #[serde(default)]
    read_only: Vec<String>,
    #[serde(default)]
    unlisted: Unlisted,
}

#[derive(Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
enum Unlisted {
    #[default]
    Abstain,
    RequireApproval,
}

fn one() -> u32 {
    1
}

fn check(config: &Config) -> Result<(), String> {
    if config.approvers.is_empty() {
        return Err("approvers must name at least one username or user id".into());
    }
    if config.min_approvals == 0 || config.min_approvals as usize > config.approvers.len() {
        return Err(format!(
            "min_approvals must be between 1 and the number of approvers ({})",
            config.approvers.len()
        ));
    }
    Ok(())
}

struct CommandGuard;

impl Guest for CommandGuard {
    fn validate_config(config: String) -> Result<(), String> {
        check(&sdk::parse_config(&config)?)
    }

    fn evaluate(request: Request) -> Verdict {
        if !matches!(request.action, Action::Command(_) | Action::FileChange(_)) {
            return sdk::abstain();
        }
        let config: Config = sdk::config();
        let scope = Scope {
            repo: request
                .project
                .as_ref()
                .map(|p| Place::resolve(&Place::Abs(Vec::new()), &p.repo_path)),
            extra_read_only: &config.read_only,
        };
        let judgement = match &request.action {
            Action::Command(c) => {
                command::judge(&scope, &c.argv, &c.cwd).and(flags(c.escalated, c.network))
            }
            Action::FileChange(f) => files(&scope, f),
            _ => return sdk::abstain(),
        };
        verdict(judgement, &config)
    }
}

/// What Codex itself says the command needs.
fn flags(escalated: bool, network: bool) -> Judgement {
    if escalated {
        Judgement::Approval(
            "escalated",
            "Codex asks to run the command outside the sandbox.".into(),
        )
    } else if network {
        Judgement::Approval(
            "network",
            "Codex asks for network access for the command.".into(),
        )
    } else {
        Judgement::ReadOnly
    }
}

fn files(scope: &Scope, change: &FileChange) -> Judgement {
    let Some(repo) = &scope.repo else {
        return Judgement::Approval(
            "outside-repo",
            "The run has no project, so the change cannot be kept to a repository.".into(),
        );
    };
    for file in &change.files {
        let place = Place::resolve(repo, &file.path);
        if !place.within(repo) {
            return Judgement::Approval(
                "outside-repo",
                format!("{} is outside the repository.", file.path),
            );
        }
        let mut git_dir = repo.clone();
        if let Place::Abs(parts) = &mut git_dir {
            parts.push(".git".into());
        }
        if place.within(&git_dir) {
            return Judgement::Approval(
                "git-internals",
                format!("{} is inside .git/ (hooks and config run code).", file.path),
            );
        }
    }
    Judgement::Allow("in-repo-change")
}

fn verdict(judgement: Judgement, config: &Config) -> Verdict {
    let approval = |reason: String, rule: &str| {
        sdk::require_approval(
            Approval {
                approvers: config.approvers.clone(),
                min_approvals: config.min_approvals,
                reason,
                expiry_secs: config.expiry_secs,
                allow_self_approval: config.allow_self_approval,
            },
            rule,
        )
    };
    match judgement {
        Judgement::ReadOnly => sdk::allow("read-only-command"),
        Judgement::Allow(rule) => sdk::allow(rule),
        Judgement::Unlisted if config.unlisted == Unlisted::RequireApproval => approval(
            "No rule of command-guard covers this command.".into(),
            "unlisted",
        ),
        Judgement::Unlisted => sdk::abstain(),
        Judgement::Approval(rule, reason) => approval(reason, rule),
        Judgement::Deny(rule, reason) => sdk::deny(reason, rule),
    }
}

export!(CommandGuard);
