//! `threads`: which Codex session a Mattermost thread is, and how far Codex has read it.

use anyhow::Result;
use rusqlite::{params, OptionalExtension, Row};

use super::{now_ms, Store};

#[derive(Debug, Clone, PartialEq)]
pub struct ThreadRow {
    pub root_id: String,
    pub channel_id: String,
    pub project: String,
    pub codex_thread_id: Option<String>,
    pub bot_started: bool,
    /// Posts created after this time (ms) have not been handed to Codex yet.
    pub seen_until: i64,
}

impl Store {
    pub fn insert_thread(&self, t: &ThreadRow) -> Result<()> {
        self.with(|c| {
            c.execute(
                "INSERT INTO threads (root_id, channel_id, project, codex_thread_id, bot_started, seen_until, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT(root_id) DO UPDATE SET project = ?3, codex_thread_id = ?4, seen_until = ?6",
                params![t.root_id, t.channel_id, t.project, t.codex_thread_id, t.bot_started, t.seen_until, now_ms()],
            )
            .map(|_| ())
        })
    }

    pub fn thread(&self, root_id: &str) -> Result<Option<ThreadRow>> {
        self.with(|c| {
            c.query_row(
                "SELECT root_id, channel_id, project, codex_thread_id, bot_started, seen_until FROM threads WHERE root_id = ?1",
                [root_id],
                thread_row,
            )
            .optional()
        })
    }

    /// The channel's most recent thread with a Codex session for `project`.
    pub fn latest_thread(&self, channel_id: &str, project: &str) -> Result<Option<ThreadRow>> {
        self.with(|c| {
            c.query_row(
                "SELECT root_id, channel_id, project, codex_thread_id, bot_started, seen_until FROM threads
                 WHERE channel_id = ?1 AND project = ?2 AND codex_thread_id IS NOT NULL
                 ORDER BY created_at DESC, rowid DESC LIMIT 1",
                params![channel_id, project],
                thread_row,
            )
            .optional()
        })
    }

    pub fn set_codex_thread(&self, root_id: &str, codex_thread_id: &str) -> Result<()> {
        self.with(|c| {
            c.execute(
                "UPDATE threads SET codex_thread_id = ?2 WHERE root_id = ?1",
                params![root_id, codex_thread_id],
            )
            .map(|_| ())
        })
    }

    pub fn set_seen_until(&self, root_id: &str, at: i64) -> Result<()> {
        self.with(|c| {
            c.execute(
                "UPDATE threads SET seen_until = MAX(seen_until, ?2) WHERE root_id = ?1",
                params![root_id, at],
            )
            .map(|_| ())
        })
    }
}

fn thread_row(r: &Row) -> rusqlite::Result<ThreadRow> {
    Ok(ThreadRow {
        root_id: r.get(0)?,
        channel_id: r.get(1)?,
        project: r.get(2)?,
        codex_thread_id: r.get(3)?,
        bot_started: r.get(4)?,
        seen_until: r.get(5)?,
    })
}
