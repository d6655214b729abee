//! `session_grants`: what someone approved "for this session" in a Codex thread — a command
//! line, or a set of files — so later requests for the same thing in that thread are answered
//! without asking again, also by a later run (a new Codex process) resuming the thread.

use anyhow::Result;
use rusqlite::{params, OptionalExtension};

use super::{now_ms, Store};

impl Store {
    /// Records that `granted_by` approved `subject` for the rest of Codex thread `thread`.
    pub fn grant_for_session(&self, thread: &str, subject: &str, granted_by: &str) -> Result<()> {
        self.with(|c| {
            c.execute(
                "INSERT OR REPLACE INTO session_grants (codex_thread_id, subject, granted_by, granted_at) VALUES (?1, ?2, ?3, ?4)",
                params![thread, subject, granted_by, now_ms()],
            )
            .map(drop)
        })
    }

    /// Who granted `subject` for Codex thread `thread`, if anyone did.
    pub fn session_grant(&self, thread: &str, subject: &str) -> Result<Option<String>> {
        self.with(|c| {
            c.query_row(
                "SELECT granted_by FROM session_grants WHERE codex_thread_id = ?1 AND subject = ?2",
                params![thread, subject],
                |r| r.get(0),
            )
            .optional()
        })
    }
}
