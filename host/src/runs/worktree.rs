//! The runs side of `worktree=on`: the thread's worktree before Codex starts (created by the
//! thread's first run, reused by the next), the branch line of its outcome, and the periodic
//! pruning of worktrees of idle threads (a thread whose worktree is kept for its uncommitted
//! changes is told so). Git itself is `worktrees`; the rows are `store::worktrees`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tracing::{info, warn};

use super::{Plan, Run};
use crate::chat::NewPost;
use crate::config::{Config, SandboxMode};
use crate::protocol::PostKind;
use crate::render::worktree as text;
use crate::state::Host;
use crate::store::{now_ms, WorktreeRow};
use crate::worktrees::{self, SandboxPaths, Worktree, WorktreeError};

/// How often idle worktrees are looked for; the first time soon after the host starts, so a host
/// that restarts often still prunes.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
const FIRST_PRUNE_AFTER: Duration = Duration::from_secs(120);

/// A run's worktree and what its sandbox binds of the main repository.
pub(crate) struct RunTree {
    pub worktree: Worktree,
    pub sandbox: SandboxPaths,
}

impl RunTree {
    /// Codex's own `workspace-write` sandbox lets commands write only in the working directory;
    /// a commit also writes the worktree's git files in the main repository, so those become
    /// writable roots too (nothing else of its `.git`: not its config, hooks or other branches).
    pub fn codex_overrides(&self, sandbox: SandboxMode) -> Vec<String> {
        if sandbox != SandboxMode::WorkspaceWrite || self.sandbox.writable.is_empty() {
            return vec![];
        }
        let roots: Vec<String> = self
            .sandbox
            .writable
            .iter()
            .map(|p| serde_json::Value::from(p.display().to_string()).to_string())
            .collect();
        vec![format!(
            "sandbox_workspace_write.writable_roots=[{}]",
            roots.join(",")
        )]
    }
}

/// What one pruning pass did.
#[derive(Debug, Default, PartialEq)]
pub struct Pruned {
    /// Threads whose worktree was removed.
    pub removed: Vec<String>,
    /// Threads whose worktree was kept for its uncommitted changes (told in the thread).
    pub kept_dirty: Vec<String>,
}

impl Host {
    /// Where worktrees live: the setting, else `<state dir>/worktrees`.
    pub(crate) fn worktree_dir(&self, cfg: &Config) -> PathBuf {
        match cfg.settings.worktree_dir.trim() {
            "" => self.snapshot().isolation.state_dir().join("worktrees"),
            dir => PathBuf::from(dir),
        }
    }

    /// For a `worktree=on` project, the thread's worktree (created on its first run) and the
    /// paths its sandbox needs; `Ok(None)` for other projects. An `Err` is the run's failure.
    pub(super) async fn run_worktree(
        &self,
        cfg: &Config,
        plan: &Plan,
        root_id: &str,
    ) -> Result<Option<RunTree>, String> {
        if !plan.project.worktree {
            return Ok(None);
        }
        let failed = |e: WorktreeError| {
            warn!(error = %e, "the thread's worktree could not be prepared");
            text::prepare_failed(&e.to_string())
        };
        // A worktree made before the Worktree directory setting changed stays where it is (its
        // branch is checked out there, so it cannot be added again elsewhere).
        let repo = plan.project.repo.display().to_string();
        let known = self.store.worktree(root_id).ok().flatten().filter(|r| {
            r.project == plan.project.name
                && r.repo == repo
                && Path::new(&r.path).join(".git").exists()
        });
        let wt = match known {
            Some(r) => Worktree {
                path: PathBuf::from(r.path),
                branch: r.branch,
            },
            None => Worktree::layout(&self.worktree_dir(cfg), &plan.project.name, root_id)
                .map_err(failed)?,
        };
        worktrees::ensure(&plan.project.repo, &wt)
            .await
            .map_err(failed)?;
        let sandbox = worktrees::sandbox_paths(&plan.project.repo, &wt)
            .await
            .map_err(failed)?;
        let row = WorktreeRow {
            root_id: root_id.to_string(),
            channel_id: plan.channel.id.clone(),
            project: plan.project.name.clone(),
            repo,
            path: wt.path.display().to_string(),
            branch: wt.branch.clone(),
            last_used_at: now_ms(),
            dirty_noted: false,
        };
        if let Err(e) = self.store.use_worktree(&row) {
            warn!(error = %format!("{e:#}"), "could not record the thread's worktree");
        }
        info!(path = %wt.path.display(), branch = %wt.branch, "the run works in its thread's worktree");
        Ok(Some(RunTree {
            worktree: wt,
            sandbox,
        }))
    }

    /// The line naming the branch, for the outcome of a run in a thread with a worktree.
    pub(super) fn branch_line(&self, run: &Run) -> String {
        if !run.plan.project.worktree {
            return String::new();
        }
        match self.store.worktree(&run.root_id) {
            Ok(Some(w)) => text::branch_line(&w.branch),
            _ => String::new(),
        }
    }

    /// Prunes idle worktrees every hour until the host stops (when the setting allows it).
    pub fn start_worktree_pruning(self: &Arc<Self>) {
        let host = self.clone();
        self.tasks.spawn(async move {
            let mut wait = FIRST_PRUNE_AFTER;
            loop {
                tokio::select! {
                    _ = host.stopping.cancelled() => return,
                    _ = tokio::time::sleep(wait) => {}
                }
                host.prune_worktrees(now_ms()).await;
                wait = PRUNE_EVERY;
            }
        });
    }

    /// Removes the worktrees no run used for `Remove idle worktrees after (days)` as of `now`
    /// (ms). One with uncommitted changes is kept, and its thread told once; one a run is using
    /// is left alone.
    pub async fn prune_worktrees(&self, now: i64) -> Pruned {
        let mut pruned = Pruned::default();
        let Some(cfg) = self.config() else {
            return pruned;
        };
        let days = cfg.settings.worktree_idle_days;
        if days == 0 {
            return pruned;
        }
        let before = now - i64::from(days) * 86_400_000;
        let rows = match self.store.idle_worktrees(before) {
            Ok(r) => r,
            Err(e) => {
                warn!(error = %format!("{e:#}"), "could not list idle worktrees");
                return pruned;
            }
        };
        for row in rows {
            if self.thread_is_running(&row.root_id) {
                continue;
            }
            let wt = Worktree {
                path: PathBuf::from(&row.path),
                branch: row.branch.clone(),
            };
            let idle = Duration::from_millis((now - row.last_used_at).max(0) as u64);
            match worktrees::remove(Path::new(&row.repo), &wt, false).await {
                Ok(()) => {
                    let _ = self.store.delete_worktree(&row.root_id);
                    let _ = self.store.audit(
                        "worktree.pruned",
                        None,
                        "",
                        &row.channel_id,
                        &json!({"root_id": row.root_id, "path": row.path, "branch": row.branch}),
                    );
                    info!(path = %row.path, branch = %row.branch, "removed an idle worktree");
                    pruned.removed.push(row.root_id);
                }
                Err(WorktreeError::Dirty(changed)) => {
                    if !row.dirty_noted {
                        self.note_kept(&row, changed, idle).await;
                    }
                    pruned.kept_dirty.push(row.root_id);
                }
                Err(e) => warn!(path = %row.path, error = %e, "could not remove an idle worktree"),
            }
        }
        pruned
    }

    /// Whether a run of the thread is queued or running (its worktree is in use).
    pub(crate) fn thread_is_running(&self, root_id: &str) -> bool {
        self.active
            .lock()
            .unwrap()
            .values()
            .any(|r| *r.root_id.lock().unwrap() == root_id)
    }

    async fn note_kept(&self, row: &WorktreeRow, changed: usize, idle: Duration) {
        let note = NewPost {
            channel_id: row.channel_id.clone(),
            root_id: row.root_id.clone(),
            message: text::prune_skipped(&row.branch, changed, idle),
            props: PostKind::Note.props("", None),
            file_ids: vec![],
        };
        match self.chat.create_post(note).await {
            Ok(_) => {
                let _ = self.store.set_worktree_noted(&row.root_id);
            }
            Err(e) => {
                warn!(root = %row.root_id, error = %e, "could not tell the thread its worktree was kept")
            }
        }
    }
}

#[cfg(test)]
mod tests;
