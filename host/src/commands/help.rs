//! `/codex help` (and `/codex` alone): how to use it, with the configured projects.

use super::SUBCOMMANDS;
use crate::config::Config;
use crate::protocol::{CommandRequest, CommandResponse};
use crate::render;
use crate::state::Host;

impl Host {
    pub(super) fn cmd_help(&self, cfg: &Config, req: &CommandRequest) -> CommandResponse {
        let active = self.active_project(cfg, &req.channel.id);
        let usage: Vec<&str> = SUBCOMMANDS.iter().map(|s| s.usage).collect();
        CommandResponse::ephemeral(render::help(
            &usage,
            &cfg.project_names(),
            active.as_deref(),
        ))
    }
}
