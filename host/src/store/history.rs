//! Reading the record back (`codex-host audit`) and forgetting it after the retention period:
//! runs and audit entries, filtered by time, person, channel and policy decision.

use anyhow::Result;
use rusqlite::{params, ToSql};
use serde::Serialize;

use super::runs::{run_row, RUN_SELECT};
use super::{RunRow, Store};

/// Which records to read; every field narrows.
#[derive(Debug, Clone, Default)]
pub struct HistoryFilter {
    /// Only records at or after this time (Unix milliseconds).
    pub since_ms: Option<i64>,
    pub user_id: Option<String>,
    pub channel_id: Option<String>,
    /// Only `decision` entries with this outcome (`allow`, `deny`, `require-approval`); other
    /// entries and runs are left out.
    pub decision: Option<String>,
}

/// One audit entry as stored.
#[derive(Debug, Clone, Serialize)]
pub struct AuditEntry {
    pub id: i64,
    pub at: i64,
    pub kind: String,
    pub run_id: Option<String>,
    pub user_id: Option<String>,
    pub channel_id: Option<String>,
    pub detail: serde_json::Value,
}

/// What a retention pass removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Forgotten {
    /// Finished runs whose prompt, answer and output tail were erased.
    pub runs: usize,
    pub audit_entries: usize,
}

/// `WHERE` conditions for the filter's time, user and channel, on the given column names.
fn conditions<'a>(f: &'a HistoryFilter, time_col: &str) -> (String, Vec<&'a dyn ToSql>) {
    let mut sql = vec!["1 = 1".to_string()];
    let mut args: Vec<&dyn ToSql> = vec![];
    if let Some(since) = &f.since_ms {
        args.push(since);
        sql.push(format!("{time_col} >= ?{}", args.len()));
    }
    if let Some(user) = &f.user_id {
        args.push(user);
        sql.push(format!("user_id = ?{}", args.len()));
    }
    if let Some(channel) = &f.channel_id {
        args.push(channel);
        sql.push(format!("channel_id = ?{}", args.len()));
    }
    (sql.join(" AND "), args)
}

impl Store {
    /// Audit entries matching `f`, oldest first.
    pub fn audit_entries(&self, f: &HistoryFilter) -> Result<Vec<AuditEntry>> {
        let (mut where_sql, args) = conditions(f, "at");
        if f.decision.is_some() {
            where_sql.push_str(" AND kind = 'decision'");
        }
        let entries: Vec<AuditEntry> = self.with(|c| {
            let mut st = c.prepare(&format!(
                "SELECT id, at, kind, run_id, user_id, channel_id, detail FROM audit WHERE {where_sql} ORDER BY id"
            ))?;
            let rows = st
                .query_map(args.as_slice(), |r| {
                    let detail: String = r.get(6)?;
                    Ok(AuditEntry {
                        id: r.get(0)?,
                        at: r.get(1)?,
                        kind: r.get(2)?,
                        run_id: r.get(3)?,
                        user_id: r.get(4)?,
                        channel_id: r.get(5)?,
                        detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::Null),
                    })
                })?
                .collect();
            rows
        })?;
        Ok(match &f.decision {
            Some(d) => entries
                .into_iter()
                .filter(|e| e.detail["decision"].as_str() == Some(d.as_str()))
                .collect(),
            None => entries,
        })
    }

    /// Runs matching `f` (none when it asks for a decision), oldest first.
    pub fn runs_matching(&self, f: &HistoryFilter) -> Result<Vec<RunRow>> {
        if f.decision.is_some() {
            return Ok(vec![]);
        }
        let (where_sql, args) = conditions(f, "created_at");
        self.with(|c| {
            let mut st = c.prepare(&format!(
                "{RUN_SELECT} WHERE {where_sql} ORDER BY created_at, rowid"
            ))?;
            let rows = st.query_map(args.as_slice(), run_row)?.collect();
            rows
        })
    }

    /// Erases what people wrote and what Codex answered from runs that finished before
    /// `cutoff_ms` (an outcome not yet confirmed posted keeps its text), and deletes older audit
    /// entries. Threads keep their Codex session.
    pub fn forget_before(&self, cutoff_ms: i64) -> Result<Forgotten> {
        self.with(|c| {
            let runs = c.execute(
                "UPDATE runs SET prompt = '', summary = NULL, output_tail = NULL,
                     outcome_body = CASE WHEN outcome_posted = 1 THEN NULL ELSE outcome_body END
                 WHERE finished_at IS NOT NULL AND finished_at < ?1
                   AND (prompt != '' OR summary IS NOT NULL OR output_tail IS NOT NULL
                        OR (outcome_posted = 1 AND outcome_body IS NOT NULL))",
                params![cutoff_ms],
            )?;
            let audit_entries = c.execute("DELETE FROM audit WHERE at < ?1", params![cutoff_ms])?;
            Ok(Forgotten {
                runs,
                audit_entries,
            })
        })
    }
}
