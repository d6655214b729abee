//! `/codex policy`: what the policy chain would decide for this person here, and why (each
//! module's verdict, in chain order).

use crate::config::Config;
use crate::gate::{Action, Decision, Limits};
use crate::protocol::{CommandRequest, CommandResponse};
use crate::render;
use crate::runs::Ask;
use crate::state::Host;

impl Host {
    pub(super) async fn cmd_policy(&self, cfg: &Config, req: &CommandRequest) -> CommandResponse {
        let active = self.active_project(cfg, &req.channel.id);
        let project = active.as_deref().and_then(|n| cfg.projects.get(n));
        let base = project
            .and_then(|p| p.sandbox)
            .unwrap_or(cfg.default_sandbox);
        let ask = Ask {
            project,
            root_id: &req.root_id,
            ..Ask::new(&req.user, &req.channel, Action::PolicyQuery)
        };
        let ruling = self.decide(cfg, ask).await;
        let rules = if ruling.rules.is_empty() {
            String::new()
        } else {
            format!(
                " (rule {})",
                ruling
                    .rules
                    .iter()
                    .map(|r| format!("`{r}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let sandbox = |limits: &Limits| limits.sandbox.map_or(base, |s| s.min(base)).as_str();
        let head = match &ruling.decision {
            Decision::Allow(limits) => format!("You may run Codex here{rules}. Sandbox: `{}`.", sandbox(limits)),
            Decision::Deny { reason } => format!("You may not run Codex here{rules}: {reason}"),
            Decision::RequireApproval { approvers, min_approvals, reason, limits, .. } => format!(
                "Your runs here need approval{rules}: {reason} ({min_approvals} of {}). Once approved, sandbox: `{}`.",
                render::mentions(approvers),
                sandbox(limits)
            ),
        };
        let modules = if ruling.explanation.is_empty() {
            String::new()
        } else {
            format!(
                "\n\nPolicy chain, in order:\n{}",
                ruling
                    .explanation
                    .iter()
                    .map(|l| format!("- {l}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            )
        };
        CommandResponse::ephemeral(format!("{head}{modules}"))
    }
}
