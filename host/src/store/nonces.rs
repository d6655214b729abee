//! `used_nonces`: button clicks already honoured, so a replayed click is refused.

use anyhow::Result;
use rusqlite::params;

use super::{now_ms, Store};

impl Store {
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
}
