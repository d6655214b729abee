//! `channel_projects`: the active project of each channel.

use anyhow::Result;
use rusqlite::{params, OptionalExtension};

use super::{now_ms, Store};

impl Store {
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
}
