//! `worktrees`: the git worktree of each thread of a `worktree=on` project, and when a run last
//! used it (idle worktrees are pruned).

use anyhow::Result;
use rusqlite::{params, OptionalExtension, Row};

use super::Store;

#[derive(Debug, Clone, PartialEq)]
pub struct WorktreeRow {
    pub root_id: String,
    pub channel_id: String,
    pub project: String,
    /// The main repository it was added to.
    pub repo: String,
    pub path: String,
    pub branch: String,
    /// When a run last started in it (ms).
    pub last_used_at: i64,
    /// The thread was told that pruning skipped it for its uncommitted changes.
    pub dirty_noted: bool,
}

const COLUMNS: &str = "root_id, channel_id, project, repo, path, branch, last_used_at, dirty_noted";

impl Store {
    /// Records a thread's worktree as used now (`last_used_at`), and forgets an earlier note.
    pub fn use_worktree(&self, w: &WorktreeRow) -> Result<()> {
        self.with(|c| {
            c.execute(
                "INSERT INTO worktrees (root_id, channel_id, project, repo, path, branch, last_used_at, dirty_noted)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 0)
                 ON CONFLICT(root_id) DO UPDATE SET project = ?3, repo = ?4, path = ?5, branch = ?6, last_used_at = ?7, dirty_noted = 0",
                params![w.root_id, w.channel_id, w.project, w.repo, w.path, w.branch, w.last_used_at],
            )
            .map(|_| ())
        })
    }

    pub fn worktree(&self, root_id: &str) -> Result<Option<WorktreeRow>> {
        self.with(|c| {
            c.query_row(
                &format!("SELECT {COLUMNS} FROM worktrees WHERE root_id = ?1"),
                [root_id],
                worktree_row,
            )
            .optional()
        })
    }

    /// Worktrees no run has used since `before` (ms), oldest first.
    pub fn idle_worktrees(&self, before: i64) -> Result<Vec<WorktreeRow>> {
        self.with(|c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {COLUMNS} FROM worktrees WHERE last_used_at < ?1 ORDER BY last_used_at"
            ))?;
            let rows = stmt.query_map([before], worktree_row)?;
            rows.collect()
        })
    }

    pub fn set_worktree_noted(&self, root_id: &str) -> Result<()> {
        self.with(|c| {
            c.execute(
                "UPDATE worktrees SET dirty_noted = 1 WHERE root_id = ?1",
                [root_id],
            )
            .map(|_| ())
        })
    }

    pub fn delete_worktree(&self, root_id: &str) -> Result<()> {
        self.with(|c| {
            c.execute("DELETE FROM worktrees WHERE root_id = ?1", [root_id])
                .map(|_| ())
        })
    }

    /// Whether `user_id` asked for a run in the thread (they may then remove its worktree).
    pub fn ran_in_thread(&self, root_id: &str, user_id: &str) -> Result<bool> {
        self.with(|c| {
            c.query_row(
                "SELECT 1 FROM runs WHERE root_id = ?1 AND user_id = ?2 LIMIT 1",
                params![root_id, user_id],
                |_| Ok(()),
            )
            .optional()
            .map(|r| r.is_some())
        })
    }
}

fn worktree_row(r: &Row) -> rusqlite::Result<WorktreeRow> {
    Ok(WorktreeRow {
        root_id: r.get(0)?,
        channel_id: r.get(1)?,
        project: r.get(2)?,
        repo: r.get(3)?,
        path: r.get(4)?,
        branch: r.get(5)?,
        last_used_at: r.get(6)?,
        dirty_noted: r.get(7)?,
    })
}
