//! `/codex worktree [remove [--force]]`, inside a thread: the thread's git worktree (path,
//! branch, uncommitted changes, ahead/behind the main checkout) and its removal. Only someone who
//! ran Codex in the thread, or a system admin, may remove it; uncommitted changes stop a removal
//! unless `--force`, and a run in progress always does.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;
use tracing::warn;

use crate::config::Config;
use crate::protocol::{CommandRequest, CommandResponse};
use crate::render::worktree::{self as text, WorktreeView};
use crate::state::Host;
use crate::store::{now_ms, WorktreeRow};
use crate::worktrees::{self, Worktree, WorktreeError};

const USAGE: &str = "Use `/codex worktree` to see this thread's worktree, `/codex worktree remove` to remove it (`--force` to discard uncommitted changes).";

impl Host {
    pub(super) async fn cmd_worktree(
        &self,
        cfg: &Config,
        req: &CommandRequest,
        rest: &str,
    ) -> CommandResponse {
        if req.root_id.is_empty() {
            return CommandResponse::ephemeral(text::outside_thread());
        }
        let force = match rest.split_whitespace().collect::<Vec<_>>().as_slice() {
            [] => None,
            ["remove"] => Some(false),
            ["remove", "--force" | "-f"] => Some(true),
            _ => return CommandResponse::ephemeral(USAGE),
        };
        let row = match self.store.worktree(&req.root_id) {
            Ok(r) => r.filter(|r| r.channel_id == req.channel.id),
            Err(e) => {
                warn!(error = %format!("{e:#}"), "reading a thread's worktree");
                return CommandResponse::ephemeral("Could not read this thread's worktree (the host's database failed). Ask an admin to check the host log.");
            }
        };
        let Some(row) = row else {
            let on = self
                .store
                .thread(&req.root_id)
                .ok()
                .flatten()
                .and_then(|t| cfg.projects.get(&t.project).map(|p| p.worktree))
                .unwrap_or(false);
            return CommandResponse::ephemeral(text::none_here(on));
        };
        let wt = Worktree {
            path: PathBuf::from(&row.path),
            branch: row.branch.clone(),
        };
        match force {
            None => self.show_worktree(cfg, &row, &wt).await,
            Some(force) => self.remove_worktree(req, &row, &wt, force).await,
        }
    }

    async fn show_worktree(
        &self,
        cfg: &Config,
        row: &WorktreeRow,
        wt: &Worktree,
    ) -> CommandResponse {
        let exists = wt.path.join(".git").exists();
        let status = if exists {
            match worktrees::status(Path::new(&row.repo), wt).await {
                Ok(s) => Some(s),
                Err(e) => {
                    return CommandResponse::ephemeral(format!(
                        "Could not read the worktree `{}`: {e}",
                        row.path
                    ))
                }
            }
        } else {
            None
        };
        let days = u64::from(cfg.settings.worktree_idle_days);
        let view = WorktreeView {
            project: &row.project,
            path: &row.path,
            branch: &row.branch,
            changed: status.as_ref().map(|s| s.changed),
            base: status.as_ref().and_then(|s| s.base.as_deref()),
            ahead: status.as_ref().map_or(0, |s| s.ahead),
            behind: status.as_ref().map_or(0, |s| s.behind),
            idle: Duration::from_millis((now_ms() - row.last_used_at).max(0) as u64),
            prune_after: (days > 0).then(|| Duration::from_secs(days * 86_400)),
        };
        CommandResponse::ephemeral(text::status(&view))
    }

    async fn remove_worktree(
        &self,
        req: &CommandRequest,
        row: &WorktreeRow,
        wt: &Worktree,
        force: bool,
    ) -> CommandResponse {
        let ran_here = self
            .store
            .ran_in_thread(&row.root_id, &req.user.id)
            .unwrap_or(false);
        if !ran_here && !req.user.is_system_admin() {
            return CommandResponse::ephemeral(text::remove_refused_user());
        }
        if self.thread_is_running(&row.root_id) {
            return CommandResponse::ephemeral(text::remove_refused_running());
        }
        match worktrees::remove(Path::new(&row.repo), wt, force).await {
            Ok(()) => {
                let _ = self.store.delete_worktree(&row.root_id);
                let _ = self.store.audit(
                    "worktree.removed",
                    None,
                    &req.user.id,
                    &req.channel.id,
                    &json!({"root_id": row.root_id, "path": row.path, "branch": row.branch, "force": force}),
                );
                CommandResponse::ephemeral(text::removed(&row.branch, force))
            }
            Err(WorktreeError::Dirty(n)) => {
                CommandResponse::ephemeral(text::remove_refused_dirty(n))
            }
            Err(e) => {
                warn!(path = %row.path, error = %e, "removing a worktree");
                CommandResponse::ephemeral(format!(
                    "The worktree `{}` could not be removed: {e}",
                    row.path
                ))
            }
        }
    }
}
