//! `/codex status`: the channel's running and queued runs, the host's slots, how runs are
//! isolated and whether the Codex CLI is a tested version. A system admin also sees every run on
//! the host with its owner, and the loaded policy modules with their hashes.

use std::time::Instant;

use crate::protocol::{CommandRequest, CommandResponse};
use crate::render;
use crate::runner::isolation::IsolationInfo;
use crate::runner::tested;
use crate::state::Host;

impl Host {
    pub(super) fn cmd_status(&self, req: &CommandRequest) -> CommandResponse {
        let admin = req.user.is_system_admin();
        let active = self.active.lock().unwrap();
        let mut lines: Vec<(Instant, String)> = active
            .values()
            .filter(|r| admin || r.channel_id == req.channel.id)
            .map(|r| {
                let started = *r.started.lock().unwrap();
                let state = match started {
                    Some(s) => format!("running for {}", render::clock(s.elapsed())),
                    None => "queued".to_string(),
                };
                let link = self.permalink(&req.channel.team_name, &r.root_id.lock().unwrap());
                let elsewhere = if r.channel_id == req.channel.id {
                    String::new()
                } else {
                    " (another channel)".to_string()
                };
                (
                    r.admitted,
                    format!(
                        "- `{}` for @{} — {state}{elsewhere}{link}",
                        r.project, r.username
                    ),
                )
            })
            .collect();
        drop(active);
        lines.sort_by_key(|(t, _)| *t);
        let (running, queued, max, _) = self.scheduler.counts();
        let here = match (lines.is_empty(), admin) {
            (true, false) => "Nothing is running or queued in this channel.".to_string(),
            (true, true) => "Nothing is running or queued on this host.".to_string(),
            (false, admin) => {
                let heading = if admin {
                    "**Every run on this host** (you are a system admin):\n"
                } else {
                    ""
                };
                let runs = lines.into_iter().map(|(_, l)| l).collect::<Vec<_>>();
                format!("{heading}{}", runs.join("\n"))
            }
        };
        let snapshot = self.snapshot();
        let isolation = match snapshot.isolation.info() {
            IsolationInfo { active: true, .. } => "each run isolated with bubblewrap".to_string(),
            IsolationInfo {
                problem: Some(_), ..
            } => "isolation unavailable, runs are refused (an admin sees why in the server log)"
                .to_string(),
            _ => "run isolation off".to_string(),
        };
        let mut text = format!("{here}\n\nOn this host: {running} of {max} run slots busy, {queued} waiting; {isolation}.");
        if let Some((_, version)) = &snapshot.codex {
            if tested::is_tested(version) != Some(true) {
                text.push_str(&format!(
                    "\n:warning: Codex CLI `{version}` is not a version this release was tested with ({}).",
                    tested::tested_range()
                ));
            }
        }
        if admin {
            text.push_str(&format!(
                "\n{}",
                render::policy_modules(&self.policy.gate().describe())
            ));
        }
        CommandResponse::ephemeral(text)
    }
}
