//! Durable state in SQLite (WAL): channel → active project, thread → Codex session, runs, audit.
//!
//! Input: typed rows; output: typed rows. Knows nothing of HTTP, Codex or Mattermost. Calls are
//! short and synchronous behind one mutex: every statement is a single indexed read or write.

use std::path::Path;
use std::sync::Mutex;

use anyhow::{Context, Result};
use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::model::RunStatus;

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
];

/// A pending or decided approval: `spec` and `plan` are the service's own JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct ApprovalRow {
    pub run_id: String,
    pub spec: serde_json::Value,
    pub plan: serde_json::Value,
    pub expires_at: i64,
    pub post_id: Option<String>,
    pub approved_by: Vec<String>,
    pub state: String,
    pub decided_by: Option<String>,
}

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

#[derive(Debug, Clone, PartialEq)]
pub struct RunRow {
    pub id: String,
    pub root_id: String,
    pub channel_id: String,
    pub user_id: String,
    pub username: String,
    pub project: String,
    pub prompt: String,
    pub mode: String,
    pub status: RunStatus,
    pub progress_post_id: Option<String>,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub exit_code: Option<i64>,
    pub summary: Option<String>,
}

/// What a finished run leaves behind.
#[derive(Debug, Clone, Default)]
pub struct RunResult {
    pub exit_code: Option<i32>,
    pub summary: String,
    /// The outcome post to deliver, when there is one (none for a run that has no thread).
    pub outcome: Option<OutcomeText>,
    pub output_tail: String,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub files_changed: usize,
}

/// An outcome post's text exactly as posted (already redacted), kept until the post is confirmed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OutcomeText {
    pub body: String,
    pub footer: String,
}

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

    pub fn set_channel_project(
        &self,
        channel_id: &str,
        project: &str,
        user_id: &str,
    ) -> Result<()> {
        self.with(|c| {
            c.execute(
                "INSERT INTO channel_projects (channel_id, project, set_by, set_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(channel_id) DO UPDATE SET project = ?2, set_by = ?3, set_at = ?4",
                params![channel_id, project, user_id, now_ms()],
            )
            .map(|_| ())
        })
    }

    pub fn channel_project(&self, channel_id: &str) -> Result<Option<String>> {
        self.with(|c| {
            c.query_row(
                "SELECT project FROM channel_projects WHERE channel_id = ?1",
                [channel_id],
                |r| r.get(0),
            )
            .optional()
        })
    }

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

    pub fn insert_run(&self, r: &RunRow) -> Result<()> {
        self.with(|c| {
            c.execute(
                "INSERT INTO runs (id, root_id, channel_id, user_id, username, project, prompt, mode, status, progress_post_id, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                params![r.id, r.root_id, r.channel_id, r.user_id, r.username, r.project, r.prompt, r.mode, r.status.as_str(), r.progress_post_id, r.created_at],
            )
            .map(|_| ())
        })
    }

    pub fn set_progress_post(&self, run_id: &str, post_id: &str) -> Result<()> {
        self.with(|c| {
            c.execute(
                "UPDATE runs SET progress_post_id = ?2 WHERE id = ?1",
                params![run_id, post_id],
            )
            .map(|_| ())
        })
    }

    pub fn set_root(&self, run_id: &str, root_id: &str) -> Result<()> {
        self.with(|c| {
            c.execute(
                "UPDATE runs SET root_id = ?2 WHERE id = ?1",
                params![run_id, root_id],
            )
            .map(|_| ())
        })
    }

    pub fn set_pgid(&self, run_id: &str, pgid: u32) -> Result<()> {
        self.with(|c| {
            c.execute(
                "UPDATE runs SET pgid = ?2 WHERE id = ?1",
                params![run_id, pgid],
            )
            .map(|_| ())
        })
    }

    /// Process groups of runs still marked queued or running (left by a previous process).
    pub fn leftover_pgids(&self) -> Result<Vec<u32>> {
        self.with(|c| {
            let mut st = c.prepare(
                "SELECT pgid FROM runs WHERE status IN ('queued', 'running') AND pgid IS NOT NULL",
            )?;
            let rows = st.query_map([], |r| r.get(0))?.collect();
            rows
        })
    }

    pub fn mark_queued(&self, run_id: &str) -> Result<()> {
        self.with(|c| {
            c.execute("UPDATE runs SET status = 'queued' WHERE id = ?1", [run_id])
                .map(|_| ())
        })
    }

    /// Codex is starting for this run, as a new, resumed or bound session (`mode`).
    pub fn mark_running(&self, run_id: &str, mode: &str) -> Result<()> {
        self.with(|c| {
            c.execute(
                "UPDATE runs SET status = 'running', started_at = ?2, mode = ?3 WHERE id = ?1",
                params![run_id, now_ms(), mode],
            )
            .map(|_| ())
        })
    }

    /// Records a run's outcome, and the text of its outcome post until [`Store::mark_outcome_posted`].
    /// Only the first outcome counts: a run that already ended keeps it (false).
    pub fn finish_run(&self, run_id: &str, status: RunStatus, res: &RunResult) -> Result<bool> {
        let (body, footer) = res
            .outcome
            .as_ref()
            .map(|o| (o.body.as_str(), o.footer.as_str()))
            .unzip();
        self.with(|c| {
            c.execute(
                "UPDATE runs SET status = ?2, finished_at = ?3, exit_code = ?4, summary = ?5, output_tail = ?6,
                        input_tokens = ?7, output_tokens = ?8, files_changed = ?9, outcome_body = ?10, outcome_footer = ?11
                 WHERE id = ?1 AND status IN ('awaiting_approval', 'queued', 'running')",
                params![
                    run_id,
                    status.as_str(),
                    now_ms(),
                    res.exit_code,
                    res.summary,
                    res.output_tail,
                    res.input_tokens as i64,
                    res.output_tokens as i64,
                    res.files_changed as i64,
                    body,
                    footer
                ],
            )
            .map(|n| n == 1)
        })
    }

    pub fn run(&self, run_id: &str) -> Result<Option<RunRow>> {
        self.with(|c| {
            c.query_row(&format!("{RUN_SELECT} WHERE id = ?1"), [run_id], run_row)
                .optional()
        })
    }

    pub fn last_run(&self, channel_id: &str) -> Result<Option<RunRow>> {
        self.with(|c| {
            c.query_row(&format!("{RUN_SELECT} WHERE channel_id = ?1 ORDER BY created_at DESC, rowid DESC LIMIT 1"), [channel_id], run_row)
                .optional()
        })
    }

    pub fn active_runs_in(&self, channel_id: &str) -> Result<Vec<RunRow>> {
        self.with(|c| {
            let mut st = c.prepare(&format!(
                "{RUN_SELECT} WHERE channel_id = ?1 AND status IN ('queued', 'running') ORDER BY created_at, rowid"
            ))?;
            let rows = st.query_map([channel_id], run_row)?.collect();
            rows
        })
    }

    /// Marks every run left queued or running by a previous process as interrupted; returns them.
    pub fn interrupt_leftovers(&self) -> Result<Vec<RunRow>> {
        self.with(|c| {
            let mut st = c.prepare(&format!("{RUN_SELECT} WHERE status IN ('queued', 'running') ORDER BY created_at, rowid"))?;
            let rows: Vec<RunRow> = st.query_map([], run_row)?.collect::<rusqlite::Result<_>>()?;
            c.execute(
                "UPDATE runs SET status = 'interrupted', finished_at = ?1 WHERE status IN ('queued', 'running')",
                [now_ms()],
            )?;
            Ok(rows)
        })
    }

    /// The run's outcome post is confirmed: its kept text is dropped.
    pub fn mark_outcome_posted(&self, run_id: &str) -> Result<()> {
        self.with(|c| {
            c.execute("UPDATE runs SET outcome_posted = 1, outcome_body = NULL, outcome_footer = NULL WHERE id = ?1", [run_id])
                .map(|_| ())
        })
    }

    /// Finished runs whose outcome post is not confirmed: interrupted runs whose threads have not
    /// been told (the host had no Mattermost connection when it found them), and outcomes whose
    /// post failed, with their kept text.
    pub fn undelivered_outcomes(&self) -> Result<Vec<(RunRow, Option<OutcomeText>)>> {
        self.with(|c| {
            let mut st = c.prepare(&format!(
                "{RUN_SELECT_OUTCOME} WHERE outcome_posted = 0 AND (status = 'interrupted' OR outcome_body IS NOT NULL)
                 ORDER BY created_at, rowid"
            ))?;
            let rows = st
                .query_map([], |r| {
                    let body: Option<String> = r.get(15)?;
                    let footer: Option<String> = r.get(16)?;
                    Ok((run_row(r)?, body.map(|body| OutcomeText { body, footer: footer.unwrap_or_default() })))
                })?
                .collect();
            rows
        })
    }

    pub fn insert_approval(
        &self,
        run_id: &str,
        spec: &serde_json::Value,
        plan: &serde_json::Value,
        expires_at: i64,
    ) -> Result<()> {
        self.with_durable(|c| {
            c.execute(
                "INSERT INTO approvals (run_id, spec, plan, expires_at) VALUES (?1, ?2, ?3, ?4)",
                params![run_id, spec.to_string(), plan.to_string(), expires_at],
            )
            .map(|_| ())
        })
    }

    pub fn approval(&self, run_id: &str) -> Result<Option<ApprovalRow>> {
        self.with(|c| {
            c.query_row(
                "SELECT run_id, spec, plan, expires_at, post_id, approved_by, state, decided_by FROM approvals WHERE run_id = ?1",
                [run_id],
                |r| {
                    let json = |i: usize| -> rusqlite::Result<serde_json::Value> {
                        let s: String = r.get(i)?;
                        Ok(serde_json::from_str(&s).unwrap_or(serde_json::Value::Null))
                    };
                    Ok(ApprovalRow {
                        run_id: r.get(0)?,
                        spec: json(1)?,
                        plan: json(2)?,
                        expires_at: r.get(3)?,
                        post_id: r.get(4)?,
                        approved_by: serde_json::from_value(json(5)?).unwrap_or_default(),
                        state: r.get(6)?,
                        decided_by: r.get(7)?,
                    })
                },
            )
            .optional()
        })
    }

    pub fn set_approval_post(&self, run_id: &str, post_id: &str) -> Result<()> {
        self.with(|c| {
            c.execute(
                "UPDATE approvals SET post_id = ?2 WHERE run_id = ?1",
                params![run_id, post_id],
            )
            .map(|_| ())
        })
    }

    /// Adds a distinct approver to a pending approval; returns everyone who approved so far.
    pub fn add_approver(&self, run_id: &str, username: &str) -> Result<Vec<String>> {
        let row = self.approval(run_id)?.context("no such approval")?;
        let mut by = row.approved_by;
        if !by.iter().any(|u| u == username) {
            by.push(username.to_string());
        }
        let json = serde_json::to_string(&by)?;
        self.with_durable(|c| {
            c.execute(
                "UPDATE approvals SET approved_by = ?2 WHERE run_id = ?1 AND state = 'pending'",
                params![run_id, json],
            )
        })?;
        Ok(by)
    }

    /// Moves a pending approval to `state`; false if it was no longer pending.
    pub fn decide_approval(&self, run_id: &str, state: &str, by: &str) -> Result<bool> {
        self.with_durable(|c| {
            c.execute(
                "UPDATE approvals SET state = ?2, decided_by = ?3 WHERE run_id = ?1 AND state = 'pending'",
                params![run_id, state, by],
            )
            .map(|n| n == 1)
        })
    }

    pub fn pending_approvals(&self) -> Result<Vec<String>> {
        self.with(|c| {
            let mut st = c.prepare(
                "SELECT run_id FROM approvals WHERE state = 'pending' ORDER BY expires_at",
            )?;
            let rows = st.query_map([], |r| r.get(0))?.collect();
            rows
        })
    }

    /// Spends a button nonce. False if it was spent before (a replayed click).
    pub fn spend_nonce(&self, nonce: &str) -> Result<bool> {
        self.with_durable(|c| {
            c.execute(
                "INSERT OR IGNORE INTO used_nonces (nonce, used_at) VALUES (?1, ?2)",
                params![nonce, now_ms()],
            )
            .map(|n| n == 1)
        })
    }

    pub fn audit(
        &self,
        kind: &str,
        run_id: Option<&str>,
        user_id: &str,
        channel_id: &str,
        detail: &serde_json::Value,
    ) -> Result<()> {
        self.with(|c| {
            c.execute(
                "INSERT INTO audit (at, kind, run_id, user_id, channel_id, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![now_ms(), kind, run_id, user_id, channel_id, detail.to_string()],
            )
            .map(|_| ())
        })
    }

    /// Audit entries of one kind, newest last, as (run id, detail).
    pub fn audit_of_kind(&self, kind: &str) -> Result<Vec<(Option<String>, serde_json::Value)>> {
        self.with(|c| {
            let mut st =
                c.prepare("SELECT run_id, detail FROM audit WHERE kind = ?1 ORDER BY id")?;
            let rows = st
                .query_map([kind], |r| {
                    let detail: String = r.get(1)?;
                    Ok((
                        r.get(0)?,
                        serde_json::from_str(&detail).unwrap_or(serde_json::Value::Null),
                    ))
                })?
                .collect();
            rows
        })
    }

    pub fn audit_kinds(&self, run_id: &str) -> Result<Vec<String>> {
        self.with(|c| {
            let mut st = c.prepare("SELECT kind FROM audit WHERE run_id = ?1 ORDER BY id")?;
            let rows = st.query_map([run_id], |r| r.get(0))?.collect();
            rows
        })
    }
}

const RUN_SELECT: &str = "SELECT id, root_id, channel_id, user_id, username, project, prompt, mode, status, progress_post_id,
    created_at, started_at, finished_at, exit_code, summary FROM runs";
const RUN_SELECT_OUTCOME: &str = "SELECT id, root_id, channel_id, user_id, username, project, prompt, mode, status, progress_post_id,
    created_at, started_at, finished_at, exit_code, summary, outcome_body, outcome_footer FROM runs";

fn run_row(r: &Row) -> rusqlite::Result<RunRow> {
    let status: String = r.get(8)?;
    Ok(RunRow {
        id: r.get(0)?,
        root_id: r.get(1)?,
        channel_id: r.get(2)?,
        user_id: r.get(3)?,
        username: r.get(4)?,
        project: r.get(5)?,
        prompt: r.get(6)?,
        mode: r.get(7)?,
        status: RunStatus::parse(&status).unwrap_or(RunStatus::Failed),
        progress_post_id: r.get(9)?,
        created_at: r.get(10)?,
        started_at: r.get(11)?,
        finished_at: r.get(12)?,
        exit_code: r.get(13)?,
        summary: r.get(14)?,
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn run(id: &str, channel: &str) -> RunRow {
        RunRow {
            id: id.into(),
            root_id: "root".into(),
            channel_id: channel.into(),
            user_id: "u".into(),
            username: "alice".into(),
            project: "api".into(),
            prompt: "p".into(),
            mode: "new".into(),
            status: RunStatus::Queued,
            progress_post_id: None,
            created_at: now_ms(),
            started_at: None,
            finished_at: None,
            exit_code: None,
            summary: None,
        }
    }

    #[test]
    fn a_run_keeps_its_first_outcome() {
        let s = Store::open_in_memory().unwrap();
        s.insert_run(&run("r1", "c")).unwrap();
        s.mark_running("r1", "new").unwrap();
        assert!(s
            .finish_run("r1", RunStatus::Cancelled, &RunResult::default())
            .unwrap());
        assert!(!s
            .finish_run("r1", RunStatus::Answered, &RunResult::default())
            .unwrap());
        assert_eq!(s.run("r1").unwrap().unwrap().status, RunStatus::Cancelled);
    }

    #[test]
    fn leftovers_are_interrupted_on_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        {
            let s = Store::open(&path).unwrap();
            s.insert_run(&run("r1", "c")).unwrap();
            s.mark_running("r1", "resume").unwrap();
            s.insert_run(&run("r2", "c")).unwrap();
            s.insert_run(&run("r3", "c")).unwrap();
            s.finish_run("r3", RunStatus::Answered, &RunResult::default())
                .unwrap();
        }
        let s = Store::open(&path).unwrap();
        let left: Vec<String> = s
            .interrupt_leftovers()
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(left, vec!["r1", "r2"]);
        assert_eq!(s.run("r1").unwrap().unwrap().status, RunStatus::Interrupted);
        assert_eq!(s.run("r3").unwrap().unwrap().status, RunStatus::Answered);
        assert!(s.interrupt_leftovers().unwrap().is_empty());
    }

    #[test]
    fn an_outcome_is_kept_in_full_until_its_post_is_confirmed() {
        let s = Store::open_in_memory().unwrap();
        for id in ["answered", "no-thread", "left"] {
            s.insert_run(&run(id, "c")).unwrap();
        }
        let body = "x".repeat(20_000);
        let outcome = OutcomeText {
            body: body.clone(),
            footer: "\n---\nfooter".into(),
        };
        let res = RunResult {
            summary: body.chars().take(500).collect(),
            outcome: Some(outcome.clone()),
            ..Default::default()
        };
        assert!(s.finish_run("answered", RunStatus::Answered, &res).unwrap());
        s.finish_run("no-thread", RunStatus::Failed, &RunResult::default())
            .unwrap();
        s.interrupt_leftovers().unwrap();
        let undelivered = s.undelivered_outcomes().unwrap();
        let ids: Vec<&str> = undelivered.iter().map(|(r, _)| r.id.as_str()).collect();
        assert_eq!(ids, ["answered", "left"]);
        assert_eq!(undelivered[0].1.as_ref(), Some(&outcome));
        assert_eq!(undelivered[1].1, None);
        s.mark_outcome_posted("answered").unwrap();
        s.mark_outcome_posted("left").unwrap();
        assert!(s.undelivered_outcomes().unwrap().is_empty());
        let kept: Option<String> = s
            .with(|c| {
                c.query_row(
                    "SELECT outcome_body FROM runs WHERE id = 'answered'",
                    [],
                    |r| r.get(0),
                )
            })
            .unwrap();
        assert_eq!(kept, None, "the text is dropped once posted");
    }

    #[test]
    fn a_nonce_is_spent_once() {
        let s = Store::open_in_memory().unwrap();
        assert!(s.spend_nonce("n1").unwrap());
        assert!(!s.spend_nonce("n1").unwrap());
    }

    #[test]
    fn threads_and_channel_projects_round_trip() {
        let s = Store::open_in_memory().unwrap();
        assert_eq!(s.channel_project("c").unwrap(), None);
        s.set_channel_project("c", "api", "u").unwrap();
        s.set_channel_project("c", "web", "u").unwrap();
        assert_eq!(s.channel_project("c").unwrap().as_deref(), Some("web"));
        let t = ThreadRow {
            root_id: "r".into(),
            channel_id: "c".into(),
            project: "web".into(),
            codex_thread_id: None,
            bot_started: true,
            seen_until: 5,
        };
        s.insert_thread(&t).unwrap();
        assert_eq!(s.latest_thread("c", "web").unwrap(), None);
        s.set_codex_thread("r", "th-1").unwrap();
        s.set_seen_until("r", 3).unwrap();
        let got = s.latest_thread("c", "web").unwrap().unwrap();
        assert_eq!(got.codex_thread_id.as_deref(), Some("th-1"));
        assert_eq!(got.seen_until, 5);
    }
}
