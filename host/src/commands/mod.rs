//! The `/codex` grammar: which subcommands there are ([`SUBCOMMANDS`], the one list; plugin
//! autocomplete is derived from it), how a command's text is split into a subcommand and its
//! argument, and one file per subcommand. Text that is not a subcommand is a prompt (`prompt`);
//! a single word close to a subcommand is a typo, answered with a suggestion.
//!
//! Input: a [`CommandRequest`]; output: the [`CommandResponse`] the plugin returns (ephemeral).
//! Runs themselves are `runs`; what the answers say comes from `render` or is written here.

mod cancel;
mod help;
mod last;
mod policy;
mod project;
mod projects;
mod prompt;
mod status;
mod worktree;

use std::sync::Arc;

use tracing::Instrument;

use crate::protocol::{CommandRequest, CommandResponse};
use crate::runs::Intent;
use crate::state::Host;

/// One `/codex` subcommand: how autocomplete and `/codex help` show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subcommand {
    pub name: &'static str,
    /// What follows the name (`[prompt]`, `[name]`), or empty.
    pub hint: &'static str,
    /// One line, short enough for a phone (autocomplete).
    pub help: &'static str,
    /// Its line in `/codex help`.
    pub usage: &'static str,
    /// Answers only the person who typed it; nothing is posted in the channel.
    pub answer_only: bool,
}

/// Every `/codex` subcommand, in the order autocomplete and help show them. Anything else is a
/// prompt.
pub const SUBCOMMANDS: &[Subcommand] = &[
    Subcommand {
        name: "new",
        hint: "[prompt]",
        help: "Start a new Codex session in a new thread",
        usage: "`/codex new <prompt>` — always start a new thread and session.",
        answer_only: false,
    },
    Subcommand {
        name: "continue",
        hint: "[prompt]",
        help: "Continue this channel's latest session",
        usage: "`/codex continue <prompt>` — continue this channel's latest session for the active project.",
        answer_only: false,
    },
    Subcommand {
        name: "project",
        hint: "[name]",
        help: "Show or switch this channel's project",
        usage: "`/codex project [name]` — show or set the active project for this channel.",
        answer_only: true,
    },
    Subcommand {
        name: "projects",
        hint: "",
        help: "List the projects Codex can work on",
        usage: "`/codex projects` — list configured projects.",
        answer_only: true,
    },
    Subcommand {
        name: "status",
        hint: "",
        help: "Show running and queued Codex runs",
        usage: "`/codex status` — what is running or queued here (for system admins: on the whole host, with the policy modules).",
        answer_only: true,
    },
    Subcommand {
        name: "last",
        hint: "",
        help: "Show the last run in this channel",
        usage: "`/codex last` — the latest run in this channel.",
        answer_only: true,
    },
    Subcommand {
        name: "cancel",
        hint: "",
        help: "Cancel the run in this thread",
        usage: "`/codex cancel` — cancel the run in this thread (or your latest run in this channel).",
        answer_only: true,
    },
    Subcommand {
        name: "policy",
        hint: "",
        help: "What you may do here, and why",
        usage: "`/codex policy` — what the policy would decide for you here, and why.",
        answer_only: true,
    },
    Subcommand {
        name: "worktree",
        hint: "[remove [--force]]",
        help: "Show or remove this thread's git worktree",
        usage: "`/codex worktree [remove [--force]]` — in a thread of a `worktree=on` project: its worktree and branch, or remove it.",
        answer_only: true,
    },
    Subcommand {
        name: "runner",
        hint: "[add|list|remove]",
        help: "Manage remote runners (system admins)",
        usage: "`/codex runner add <name> | list | remove <name>` — system admins: machines that run `codex-host connect` for the projects marked `runner=<name>`.",
        answer_only: true,
    },
    Subcommand {
        name: "help",
        hint: "",
        help: "How to use /codex",
        usage: "`/codex help` — this text.",
        answer_only: true,
    },
];

/// The subcommand named `word` (any case), if there is one.
pub fn subcommand(word: &str) -> Option<&'static Subcommand> {
    let w = word.to_lowercase();
    SUBCOMMANDS.iter().find(|s| s.name == w)
}

impl Host {
    /// A `/codex` command (`POST /v1/commands`).
    pub async fn command(self: &Arc<Self>, req: CommandRequest) -> CommandResponse {
        let Some(cfg) = self.config() else {
            return CommandResponse::ephemeral(format!(
                "Codex is still starting and has no settings yet, so nothing was run. Try again in a minute; if it keeps happening, ask an admin to check the plugin's settings and logs.\nYour prompt was: {}",
                req.text
            ));
        };
        let text = req.text.trim();
        let (word, rest) = match text.split_once(char::is_whitespace) {
            Some((w, r)) => (w, r.trim()),
            None => (text, ""),
        };
        let span = tracing::info_span!("command", user = %req.user.username, channel = %req.channel.name, sub = %word.to_lowercase());
        async {
            let name = if word.is_empty() {
                Some("help")
            } else {
                subcommand(word).map(|s| s.name)
            };
            match name {
                Some("help") => self.cmd_help(&cfg, &req),
                Some("projects") => self.cmd_projects(&cfg, &req),
                Some("project") => self.cmd_project(&cfg, &req, rest).await,
                Some("status") => self.cmd_status(&req),
                Some("last") => self.cmd_last(&req),
                Some("cancel") => self.cmd_cancel(&req),
                Some("policy") => self.cmd_policy(&cfg, &req).await,
                Some("worktree") => self.cmd_worktree(&cfg, &req, rest).await,
                // The plugin answers it itself: runners are the plugin's to know.
                Some("runner") => CommandResponse::ephemeral("`/codex runner` is answered by the Codex plugin, not by this host; the plugin on this server is older than this host. Update the plugin."),
                Some("new") => self.cmd_prompt(&cfg, &req, Intent::New, rest).await,
                Some("continue") => self.cmd_prompt(&cfg, &req, Intent::Continue, rest).await,
                _ if rest.is_empty() && looks_like_subcommand(word) => CommandResponse::ephemeral(format!(
                    "Unknown command `{word}`. Did you mean `/codex {}`? To ask Codex something, write a full prompt, e.g. `/codex fix the flaky login test`. See `/codex help`.",
                    closest_subcommand(word)
                )),
                _ => self.cmd_prompt(&cfg, &req, Intent::Auto, text).await,
            }
        }
        .instrument(span)
        .await
    }
}

impl Host {
    /// ` — [thread](…)` for a thread's permalink, or nothing when there is no URL to give.
    fn permalink(&self, team: &str, root_id: &str) -> String {
        let base = self.snapshot.load().mattermost_url.clone();
        if base.is_empty() || team.is_empty() || root_id.is_empty() {
            String::new()
        } else {
            format!(" — [thread]({base}/{team}/pl/{root_id})")
        }
    }
}

/// A single word close to a subcommand is a typo, not a prompt.
fn looks_like_subcommand(word: &str) -> bool {
    let w = word.to_lowercase();
    SUBCOMMANDS
        .iter()
        .any(|s| edit_distance(&w, s.name) <= if s.name.len() <= 4 { 1 } else { 2 })
}

fn closest_subcommand(word: &str) -> &'static str {
    let w = word.to_lowercase();
    SUBCOMMANDS
        .iter()
        .min_by_key(|s| edit_distance(&w, s.name))
        .map_or("help", |s| s.name)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            cur.push(
                (prev[j] + usize::from(ca != *cb))
                    .min(prev[j + 1] + 1)
                    .min(cur[j] + 1),
            );
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests;
