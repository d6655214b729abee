//! `/codex status`: the channel's running and queued runs, the host's slots and how runs are
//! isolated.

use std::time::Instant;

use crate::protocol::{CommandRequest, CommandResponse};
use crate::render;
use crate::runner::isolation::IsolationInfo;
use crate::state::Host;

impl Host {
    pub(super) fn cmd_status(&self, req: &CommandRequest) -> CommandResponse {
        let active = self.active.lock().unwrap();
        let mut lines: Vec<(Instant, String)> = active
            .values()
            .filter(|r| r.channel_id == req.channel.id)
            .map(|r| {
                let started = *r.started.lock().unwrap();
                let state = match started {
                    Some(s) => format!("running for {}", render::clock(s.elapsed())),
                    None => "queued".to_string(),
                };
                let link = self.permalink(&req.channel.team_name, &r.root_id.lock().unwrap());
                (
                    r.admitted,
                    format!("- `{}` for @{} — {state}{link}", r.project, r.username),
                )
            })
            .collect();
        drop(active);
        lines.sort_by_key(|(t, _)| *t);
        let (running, queued, max, _) = self.scheduler.counts();
        let here = if lines.is_empty() {
            "Nothing is running or queued in this channel.".to_string()
        } else {
            lines
                .into_iter()
                .map(|(_, l)| l)
                .collect::<Vec<_>>()
                .join("\n")
        };
        let isolation = match self.snapshot().isolation.info() {
            IsolationInfo { active: true, .. } => "each run isolated with bubblewrap".to_string(),
            IsolationInfo {
                problem: Some(_), ..
            } => "isolation unavailable, runs are refused (an admin sees why in the server log)"
                .to_string(),
            _ => "run isolation off".to_string(),
        };
        CommandResponse::ephemeral(format!("{here}\n\nOn this host: {running} of {max} run slots busy, {queued} waiting; {isolation}."))
    }
}
