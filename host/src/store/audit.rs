//! `audit`: the append-only record of every policy decision, click and run.

use anyhow::Result;
use rusqlite::params;

use super::{now_ms, Store};

impl Store {
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
