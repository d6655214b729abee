//! `approvals`: runs waiting for approvers, with what was asked and who answered.

use anyhow::{Context, Result};
use rusqlite::{params, OptionalExtension};

use super::Store;
use crate::model::ApprovalState;

/// A pending or decided approval: `spec` and `plan` are `approvals`' own JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct ApprovalRow {
    pub run_id: String,
    pub spec: serde_json::Value,
    pub plan: serde_json::Value,
    pub expires_at: i64,
    pub post_id: Option<String>,
    pub approved_by: Vec<String>,
    /// An unreadable state counts as expired: nothing acts on it.
    pub state: ApprovalState,
    pub decided_by: Option<String>,
}

impl Store {
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
                        state: ApprovalState::parse(&r.get::<_, String>(6)?)
                            .unwrap_or(ApprovalState::Expired),
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
    pub fn decide_approval(&self, run_id: &str, state: ApprovalState, by: &str) -> Result<bool> {
        self.with_durable(|c| {
            c.execute(
                "UPDATE approvals SET state = ?2, decided_by = ?3 WHERE run_id = ?1 AND state = 'pending'",
                params![run_id, state.as_str(), by],
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
}
