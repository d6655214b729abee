//! `/codex projects`: the configured projects, the channel's active one marked.

use crate::config::Config;
use crate::protocol::{CommandRequest, CommandResponse};
use crate::state::Host;

impl Host {
    pub(super) fn cmd_projects(&self, cfg: &Config, req: &CommandRequest) -> CommandResponse {
        if cfg.projects.is_empty() {
            return CommandResponse::ephemeral("No projects are configured yet. An admin adds them under System Console > Plugins > Codex for Mattermost > Projects.");
        }
        let active = self.active_project(cfg, &req.channel.id);
        let lines: Vec<String> = cfg
            .projects
            .values()
            .map(|p| {
                let mark = if active.as_deref() == Some(&p.name) {
                    " · **active here**"
                } else {
                    ""
                };
                let notes = if p.notes.is_empty() {
                    String::new()
                } else {
                    format!(" — {}", p.notes)
                };
                format!("- `{}`{notes}{mark}", p.name)
            })
            .collect();
        CommandResponse::ephemeral(format!(
            "Projects:\n{}\n\nSwitch with `/codex project <name>`.",
            lines.join("\n")
        ))
    }
}
