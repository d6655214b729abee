//! The database schema: migrations applied in order, the version kept in `user_version`.

use anyhow::{Context, Result};
use rusqlite::Connection;

const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE channel_projects (
    channel_id TEXT PRIMARY KEY,
    project    TEXT NOT NULL,
    set_by     TEXT NOT NULL,
    set_at     INTEGER NOT NULL
);
CREATE TABLE threads (
    root_id         TEXT PRIMARY KEY,
    channel_id      TEXT NOT NULL,
    project         TEXT NOT NULL,
    codex_thread_id TEXT,
    bot_started     INTEGER NOT NULL,
    seen_until      INTEGER NOT NULL,
    created_at      INTEGER NOT NULL
);
CREATE INDEX threads_by_channel ON threads(channel_id, project, created_at);
CREATE TABLE runs (
    id               TEXT PRIMARY KEY,
    root_id          TEXT NOT NULL,
    channel_id       TEXT NOT NULL,
    user_id          TEXT NOT NULL,
    username         TEXT NOT NULL,
    project          TEXT NOT NULL,
    prompt           TEXT NOT NULL,
    mode             TEXT NOT NULL,
    status           TEXT NOT NULL,
    progress_post_id TEXT,
    created_at       INTEGER NOT NULL,
    started_at       INTEGER,
    finished_at      INTEGER,
    exit_code        INTEGER,
    summary          TEXT,
    output_tail      TEXT,
    input_tokens     INTEGER,
    output_tokens    INTEGER,
    files_changed    INTEGER,
    outcome_posted   INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX runs_by_channel ON runs(channel_id, created_at);
CREATE INDEX runs_by_status ON runs(status);
CREATE TABLE audit (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    at         INTEGER NOT NULL,
    kind       TEXT NOT NULL,
    run_id     TEXT,
    user_id    TEXT,
    channel_id TEXT,
    detail     TEXT NOT NULL
);
"#,
    r#"
CREATE TABLE used_nonces (
    nonce   TEXT PRIMARY KEY,
    used_at INTEGER NOT NULL
);
-- The process group of a running Codex, so a restarted host can end what a crash left behind.
ALTER TABLE runs ADD COLUMN pgid INTEGER;
"#,
    r#"
CREATE TABLE approvals (
    run_id      TEXT PRIMARY KEY,
    spec        TEXT NOT NULL,
    plan        TEXT NOT NULL,
    expires_at  INTEGER NOT NULL,
    post_id     TEXT,
    approved_by TEXT NOT NULL DEFAULT '[]',
    state       TEXT NOT NULL DEFAULT 'pending',
    decided_by  TEXT
);
"#,
    r#"
-- An outcome post's full text (redacted, as posted), kept until the post is confirmed, so that a
-- post that failed can be sent again after a restart.
ALTER TABLE runs ADD COLUMN outcome_body TEXT;
ALTER TABLE runs ADD COLUMN outcome_footer TEXT;
"#,
    r#"
-- The git worktree of a thread of a `worktree=on` project, and when a run last used it.
CREATE TABLE worktrees (
    root_id      TEXT PRIMARY KEY,
    channel_id   TEXT NOT NULL,
    project      TEXT NOT NULL,
    repo         TEXT NOT NULL,
    path         TEXT NOT NULL,
    branch       TEXT NOT NULL,
    last_used_at INTEGER NOT NULL,
    dirty_noted  INTEGER NOT NULL DEFAULT 0
);
"#,
    r#"
-- "Approve for this session" grants, per Codex thread: Codex forgets its own when its process
-- ends, so the host answers repeats of the same request itself.
CREATE TABLE session_grants (
    codex_thread_id TEXT NOT NULL,
    subject         TEXT NOT NULL,
    granted_by      TEXT NOT NULL,
    granted_at      INTEGER NOT NULL,
    PRIMARY KEY (codex_thread_id, subject)
);
"#,
    r#"
-- Requests for access by people the allowlist refused: one pending per user, the DMs that
-- carry its Approve and Deny buttons (JSON list of post ids), and who answered.
CREATE TABLE access_requests (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL,
    username    TEXT NOT NULL,
    channel_id  TEXT NOT NULL,
    state       TEXT NOT NULL DEFAULT 'pending',
    post_ids    TEXT NOT NULL DEFAULT '[]',
    created_at  INTEGER NOT NULL,
    decided_by  TEXT,
    decided_at  INTEGER
);
CREATE UNIQUE INDEX access_requests_one_pending ON access_requests (user_id) WHERE state = 'pending';
"#,
];

/// Brings a database to the newest schema. A database from a newer build is refused.
pub(super) fn migrate(conn: &Connection) -> Result<()> {
    let version: usize = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version > MIGRATIONS.len() {
        anyhow::bail!(
            "the state database is from a newer codex-host (schema {version}, this build knows {}); upgrade codex-host",
            MIGRATIONS.len()
        );
    }
    for (i, m) in MIGRATIONS.iter().enumerate().skip(version) {
        conn.execute_batch(&format!(
            "BEGIN; {m}; PRAGMA user_version = {}; COMMIT;",
            i + 1
        ))
        .with_context(|| format!("applying state migration {}", i + 1))?;
    }
    Ok(())
}
