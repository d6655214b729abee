//! Durable state in SQLite (WAL): channel → active project, thread → Codex session, runs,
//! approvals, spent button nonces, session grants, audit, threads' git worktrees, access requests.
//!
//! Input: typed rows; output: typed rows. Knows nothing of HTTP, Codex or Mattermost. Calls are
//! short and synchronous behind one mutex: every statement is a single indexed read or write.
//! `schema` holds the migrations; each other file owns one table.

mod access;
mod approvals;
mod audit;
mod channels;
mod grants;
mod history;
mod nonces;
mod runs;
mod schema;
#[cfg(test)]
mod tests;
mod threads;
mod worktrees;

use std::path::Path;
use std::sync::Mutex;

use anyhow::{Context, Result};
use rusqlite::Connection;

pub use access::AccessRequestRow;
pub use approvals::ApprovalRow;
pub use history::{AuditEntry, Forgotten, HistoryFilter};
pub use runs::{OutcomeText, RunResult, RunRow};
pub use threads::ThreadRow;
pub use worktrees::WorktreeRow;

pub struct Store {
    conn: Mutex<Connection>,
}

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Store {
    pub fn open(path: &Path) -> Result<Store> {
        let conn = Connection::open(path)
            .with_context(|| format!("opening the state database {}", path.display()))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        Self::migrate(conn)
    }

    pub fn open_in_memory() -> Result<Store> {
        Self::migrate(Connection::open_in_memory()?)
    }

    fn migrate(conn: Connection) -> Result<Store> {
        schema::migrate(&conn)?;
        Ok(Store {
            conn: Mutex::new(conn),
        })
    }

    fn with<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        f(&conn).context("state database")
    }

    /// Like [`Store::with`], but the write is on disk before it returns (`synchronous=FULL`):
    /// a spent nonce or an approval must survive a power cut, or a replayed click could pass.
    fn with_durable<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T> {
        self.with(|c| {
            c.pragma_update(None, "synchronous", "FULL")?;
            let out = f(c);
            c.pragma_update(None, "synchronous", "NORMAL")?;
            out
        })
    }
}
