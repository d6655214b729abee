//! `/codex <prompt>`, `/codex new <prompt>` and `/codex continue <prompt>`: hands the prompt to
//! `runs` and says where it went (started, queued, waiting for approval, or why not; a refusal
//! of the person by the allowlist carries a Request access button).

use std::sync::Arc;

use crate::config::Config;
use crate::protocol::{CommandRequest, CommandResponse};
use crate::runs::{Intent, Submission};
use crate::state::Host;

impl Host {
    pub(super) async fn cmd_prompt(
        self: &Arc<Self>,
        cfg: &Config,
        req: &CommandRequest,
        intent: Intent,
        prompt: &str,
    ) -> CommandResponse {
        let root_id = if intent == Intent::New {
            ""
        } else {
            req.root_id.as_str()
        };
        let submission = Submission {
            user: &req.user,
            channel: &req.channel,
            root_id,
            intent,
            prompt,
            trigger: None,
            bot_can_post: req.bot_can_post,
        };
        match self.submit(cfg, submission).await {
            Ok(a) if a.needs_approval => CommandResponse::ephemeral(
                "This request needs approval first: the approvers are asked in the thread, and Codex runs once they approve.",
            ),
            Ok(a) if a.position > 0 => CommandResponse::ephemeral(format!(
                "Queued at position {}. Codex starts when a slot is free; progress shows in the thread.",
                a.position
            )),
            Ok(_) => CommandResponse::ephemeral(""),
            Err(refusal) if refusal.needs_bot_access => CommandResponse::needs_bot_access(),
            Err(refusal) => {
                let mut answer =
                    CommandResponse::ephemeral(format!("{refusal}\nYour prompt was: {prompt}"));
                answer.attachments = self.refusal_attachments(refusal.may_request_access, &req.user.id);
                answer
            }
        }
    }
}
