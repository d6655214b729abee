//! `/codex project [name]`: shows the channel's active project, or switches it (if the policy
//! would let the person start runs there).

use serde_json::json;
use tracing::warn;

use crate::config::Config;
use crate::gate::{Action, Decision};
use crate::protocol::{CommandRequest, CommandResponse};
use crate::runs::Ask;
use crate::state::Host;

impl Host {
    pub(super) async fn cmd_project(
        &self,
        cfg: &Config,
        req: &CommandRequest,
        name: &str,
    ) -> CommandResponse {
        if name.is_empty() {
            return CommandResponse::ephemeral(match self.active_project(cfg, &req.channel.id) {
                Some(p) => format!("Active project in ~{}: `{p}`. Configured: {}. Switch with `/codex project <name>`.", req.channel.name, cfg.project_names()),
                None => format!("No project is active in this channel. Pick one with `/codex project <name>`; configured: {}.", cfg.project_names()),
            });
        }
        let Some(project) = cfg.projects.get(name) else {
            return CommandResponse::ephemeral(format!(
                "There is no project `{name}`. Configured: {}.",
                cfg.project_names()
            ));
        };
        let ask = Ask {
            project: Some(project),
            ..Ask::new(&req.user, &req.channel, Action::New)
        };
        if let Decision::Deny { reason } = self.decide(cfg, ask).await.decision {
            return CommandResponse::ephemeral(format!(
                "You cannot change the project here: {reason}"
            ));
        }
        if let Err(e) = self
            .store
            .set_channel_project(&req.channel.id, name, &req.user.id)
        {
            warn!(error = %e, "saving the channel's project");
            return CommandResponse::ephemeral("Could not save the project choice (the host's database failed). Ask an admin to check the host log.");
        }
        let _ = self.store.audit(
            "project.set",
            None,
            &req.user.id,
            &req.channel.id,
            &json!({"project": name}),
        );
        CommandResponse::ephemeral(format!(
            "Active project in ~{} is now `{name}`.",
            req.channel.name
        ))
    }
}
