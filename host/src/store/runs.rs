//! `runs`: every accepted prompt, from queued to its one outcome, with the outcome text kept until
//! its post is confirmed.

use anyhow::Result;
use rusqlite::{params, OptionalExtension, Row};

use super::{now_ms, Store};
use crate::model::{RunMode, RunStatus};

#[derive(Debug, Clone, PartialEq)]
pub struct RunRow {
    pub id: String,
    pub root_id: String,
    pub channel_id: String,
    pub user_id: String,
    pub username: String,
    pub project: String,
    pub prompt: String,
    pub mode: RunMode,
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

impl Store {
    pub fn insert_run(&self, r: &RunRow) -> Result<()> {
        self.with(|c| {
            c.execute(
                "INSERT INTO runs (id, root_id, channel_id, user_id, username, project, prompt, mode, status, progress_post_id, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                params![r.id, r.root_id, r.channel_id, r.user_id, r.username, r.project, r.prompt, r.mode.as_str(), r.status.as_str(), r.progress_post_id, r.created_at],
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
    pub fn mark_running(&self, run_id: &str, mode: RunMode) -> Result<()> {
        self.with(|c| {
            c.execute(
                "UPDATE runs SET status = 'running', started_at = ?2, mode = ?3 WHERE id = ?1",
                params![run_id, now_ms(), mode.as_str()],
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
}

pub(super) const RUN_SELECT: &str = "SELECT id, root_id, channel_id, user_id, username, project, prompt, mode, status, progress_post_id,
    created_at, started_at, finished_at, exit_code, summary FROM runs";
const RUN_SELECT_OUTCOME: &str = "SELECT id, root_id, channel_id, user_id, username, project, prompt, mode, status, progress_post_id,
    created_at, started_at, finished_at, exit_code, summary, outcome_body, outcome_footer FROM runs";

pub(super) fn run_row(r: &Row) -> rusqlite::Result<RunRow> {
    let mode: String = r.get(7)?;
    let status: String = r.get(8)?;
    Ok(RunRow {
        id: r.get(0)?,
        root_id: r.get(1)?,
        channel_id: r.get(2)?,
        user_id: r.get(3)?,
        username: r.get(4)?,
        project: r.get(5)?,
        prompt: r.get(6)?,
        mode: RunMode::parse(&mode).unwrap_or(RunMode::Pending),
        status: RunStatus::parse(&status).unwrap_or(RunStatus::Failed),
        progress_post_id: r.get(9)?,
        created_at: r.get(10)?,
        started_at: r.get(11)?,
        finished_at: r.get(12)?,
        exit_code: r.get(13)?,
        summary: r.get(14)?,
    })
}
