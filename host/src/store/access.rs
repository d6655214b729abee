//! `access_requests`: people the allowlist refused who asked to be added to Allowed users. At most
//! one request per user is pending (a unique index says so); a request is answered once, by the
//! first approver whose click claims it.

use anyhow::Result;
use rusqlite::{params, OptionalExtension, Row};

use super::{now_ms, Store};
use crate::model::ApprovalState;

#[derive(Debug, Clone, PartialEq)]
pub struct AccessRequestRow {
    pub id: String,
    pub user_id: String,
    pub username: String,
    /// Where the refusal was shown.
    pub channel_id: String,
    pub state: ApprovalState,
    /// The approvers' DMs carrying the buttons.
    pub post_ids: Vec<String>,
    pub created_at: i64,
    pub decided_by: Option<String>,
}

const COLUMNS: &str = "id, user_id, username, channel_id, state, post_ids, created_at, decided_by";

fn row(r: &Row) -> rusqlite::Result<AccessRequestRow> {
    let state: String = r.get(4)?;
    let posts: String = r.get(5)?;
    Ok(AccessRequestRow {
        id: r.get(0)?,
        user_id: r.get(1)?,
        username: r.get(2)?,
        channel_id: r.get(3)?,
        state: ApprovalState::parse(&state).unwrap_or(ApprovalState::Denied),
        post_ids: serde_json::from_str(&posts).unwrap_or_default(),
        created_at: r.get(6)?,
        decided_by: r.get(7)?,
    })
}

impl Store {
    /// Records a pending request. False when the user has one pending already.
    pub fn insert_access_request(&self, req: &AccessRequestRow) -> Result<bool> {
        self.with_durable(|c| {
            c.execute(
                "INSERT OR IGNORE INTO access_requests (id, user_id, username, channel_id, state, created_at) VALUES (?1, ?2, ?3, ?4, 'pending', ?5)",
                params![req.id, req.user_id, req.username, req.channel_id, req.created_at],
            )
            .map(|n| n == 1)
        })
    }

    pub fn access_request(&self, id: &str) -> Result<Option<AccessRequestRow>> {
        self.with(|c| {
            c.query_row(
                &format!("SELECT {COLUMNS} FROM access_requests WHERE id = ?1"),
                [id],
                row,
            )
            .optional()
        })
    }

    /// The user's pending request, if any.
    pub fn pending_access_request(&self, user_id: &str) -> Result<Option<AccessRequestRow>> {
        self.with(|c| {
            c.query_row(
                &format!(
                    "SELECT {COLUMNS} FROM access_requests WHERE user_id = ?1 AND state = 'pending'"
                ),
                [user_id],
                row,
            )
            .optional()
        })
    }

    pub fn set_access_posts(&self, id: &str, post_ids: &[String]) -> Result<()> {
        self.with(|c| {
            c.execute(
                "UPDATE access_requests SET post_ids = ?2 WHERE id = ?1",
                params![id, serde_json::to_string(post_ids).unwrap_or_default()],
            )
            .map(drop)
        })
    }

    /// Answers a pending request; false when it was not pending (someone answered first).
    pub fn decide_access_request(&self, id: &str, state: ApprovalState, by: &str) -> Result<bool> {
        self.with_durable(|c| {
            c.execute(
                "UPDATE access_requests SET state = ?2, decided_by = ?3, decided_at = ?4 WHERE id = ?1 AND state = 'pending'",
                params![id, state.as_str(), by, now_ms()],
            )
            .map(|n| n == 1)
        })
    }

    /// Makes an answered request pending again (the answer could not be carried out). False when
    /// the user asked again meanwhile: the newer request stands.
    pub fn reopen_access_request(&self, id: &str) -> Result<bool> {
        self.with_durable(|c| {
            c.execute(
                "UPDATE OR IGNORE access_requests SET state = 'pending', decided_by = NULL, decided_at = NULL WHERE id = ?1",
                [id],
            )
            .map(|n| n == 1)
        })
    }
}
