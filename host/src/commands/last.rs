//! `/codex last`: the channel's most recent run, how it ended, and a link to its thread.

use std::time::Duration;

use tracing::warn;

use crate::protocol::{CommandRequest, CommandResponse};
use crate::render;
use crate::state::Host;
use crate::store::now_ms;

impl Host {
    pub(super) fn cmd_last(&self, req: &CommandRequest) -> CommandResponse {
        match self.store.last_run(&req.channel.id) {
            Ok(Some(r)) => {
                let ago = render::human_duration(Duration::from_millis(
                    (now_ms() - r.created_at).max(0) as u64,
                ));
                let (icon, word) = render::status_words(r.status);
                let link = self.permalink(&req.channel.team_name, &r.root_id);
                CommandResponse::ephemeral(format!(
                    "{icon} **{word}** · `{}` · @{} · {ago} ago\n> {}{link}",
                    r.project,
                    r.username,
                    render::one_line(&self.redactor().redact(&r.prompt), 200)
                ))
            }
            Ok(None) => CommandResponse::ephemeral(
                "No Codex runs in this channel yet. Start one with `/codex <prompt>`.",
            ),
            Err(e) => {
                warn!(error = %e, "reading the last run");
                CommandResponse::ephemeral("Could not read the last run (the host's database failed). Ask an admin to check the host log.")
            }
        }
    }
}
