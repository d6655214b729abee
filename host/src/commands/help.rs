//! `/codex help` (and `/codex` alone): how to use it, with the configured projects.

use crate::config::Config;
use crate::protocol::{CommandRequest, CommandResponse};
use crate::render;
use crate::state::Host;

impl Host {
    pub(super) fn cmd_help(&self, cfg: &Config, req: &CommandRequest) -> CommandResponse {
        let active = self.active_project(cfg, &req.channel.id);
        CommandResponse::ephemeral(render::help(&cfg.project_names(), active.as_deref()))
    }
}
