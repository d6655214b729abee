//! Button clicks on a run's posts (`POST /v1/actions`): the signature, expiry, nonce and channel
//! are checked here, then Cancel and Retry act on the run and Approve and Deny go to `approvals`
//! (or to `access`, for the buttons of access requests).
//! The clicking user comes from the server-authenticated header (via the plugin); everything a
//! click acts on comes from the stored run, never from the request body.

use std::sync::Arc;

use serde_json::{json, Value};
use tracing::warn;

use super::outcome::outcome_props;
use super::progress::progress_props;
use super::submit::Submission;
use super::Intent;
use crate::access::AccessClick;
use crate::approvals::{ApprovalClick, CommandClick};
use crate::buttons::{ButtonAction, Refusal};
use crate::model::RunStatus;
use crate::protocol::{ActionRequest, ActionResponse, ActionUpdate, Channel, User};
use crate::render;
use crate::state::{now_s, Host, StopReason};

/// The largest button context accepted (the host's own are well under 1 KiB).
const MAX_CONTEXT_BYTES: usize = 2048;

fn ephemeral(text: String) -> ActionResponse {
    ActionResponse {
        update: None,
        ephemeral_text: text,
    }
}

impl Host {
    /// A button click. The context must carry a valid, unexpired, unused signature.
    pub async fn action(self: &Arc<Self>, req: ActionRequest) -> ActionResponse {
        let eph = ephemeral;
        let user = User {
            id: req.user_id.clone(),
            username: non_empty(&req.user.username, &req.user_name),
            roles: req.user.roles.clone(),
            is_bot: false,
        };
        // A signed context is a few hundred bytes; a larger one is refused before it is verified
        // or stored, so a click cannot flood the audit log.
        let context_size = serde_json::to_string(&req.context).map_or(usize::MAX, |c| c.len());
        if context_size > MAX_CONTEXT_BYTES {
            let _ = self.store.audit(
                "action.refused",
                None,
                &user.id,
                &req.channel_id,
                &json!({"reason": "oversized", "context_bytes": context_size}),
            );
            return eph("Nothing happened: this button's data is not valid.".into());
        }
        let audit_refusal = |code: &str, run: Option<&str>| {
            let _ = self.store.audit(
                "action.refused",
                run,
                &user.id,
                &req.channel_id,
                &json!({"reason": code, "post_id": req.post_id, "context": req.context}),
            );
        };
        if user.id.is_empty() {
            audit_refusal("no-user", None);
            return eph("This click carried no authenticated user, so it was ignored.".into());
        }
        let click = match self.signer.verify(&req.context, now_s()) {
            Ok(c) => c,
            Err(refusal) => {
                warn!(user = %user.id, reason = refusal.code(), "refused a button click");
                audit_refusal(
                    refusal.code(),
                    req.context.get("run_id").and_then(Value::as_str),
                );
                return eph(format!(
                    "Nothing happened: {refusal}.{}",
                    if refusal == Refusal::Expired {
                        " Use `/codex status` or the slash commands instead."
                    } else {
                        ""
                    }
                ));
            }
        };
        let Some(cfg) = self.config() else {
            return eph("Codex is still starting; try again in a minute.".into());
        };
        if crate::access::is_access_subject(&click.run_id) {
            let c = AccessClick {
                click: &click,
                user: &user,
                req: &req,
            };
            return self.access_click(&cfg, c).await;
        }
        // A button of one of Codex's requests is signed for `<run id>#<n>`.
        let (run_id, request_key) = match click.run_id.split_once('#') {
            Some((run_id, _)) => (run_id.to_string(), Some(click.run_id.clone())),
            None => (click.run_id.clone(), None),
        };
        let run = match self.store.run(&run_id) {
            Ok(Some(r)) => r,
            _ => {
                audit_refusal("unknown-run", Some(&run_id));
                return eph(
                    "This run is not known to the Codex host (its state may have been reset)."
                        .into(),
                );
            }
        };
        // A body naming another channel (the plugin checked the user can read the body's
        // channel) is refused.
        let body_channel = if req.channel.id.is_empty() {
            &req.channel_id
        } else {
            &req.channel.id
        };
        if body_channel != &run.channel_id {
            warn!(user = %user.id, run = %run.id, channel = %body_channel, "refused a click whose channel is not its run's");
            audit_refusal("channel-mismatch", Some(&run.id));
            return eph("Nothing happened: this button does not belong to this channel.".into());
        }
        let may_manage = run.user_id == user.id || user.is_system_admin();
        if matches!(click.action, ButtonAction::Cancel | ButtonAction::Retry) && !may_manage {
            audit_refusal("not-permitted", Some(&run.id));
            return eph(format!(
                "Only @{} (who started this run) or a system admin can {} it.",
                run.username,
                click.action.as_str()
            ));
        }
        if let Some(key) = &request_key {
            return match click.action {
                ButtonAction::Approve | ButtonAction::ApproveSession | ButtonAction::Deny => self
                    .command_click(CommandClick {
                        key,
                        action: click.action,
                        nonce: &click.nonce,
                        user: &user,
                        run: &run,
                        req: &req,
                        admins_may_approve: cfg.settings.approvers_include_admins,
                    }),
                _ => eph("Nothing happened: this button is malformed.".into()),
            };
        }
        match click.action {
            ButtonAction::ApproveSession | ButtonAction::RequestAccess => {
                eph("Nothing happened: this button is malformed.".into())
            }
            ButtonAction::Cancel => {
                let active = self.active.lock().unwrap().get(&run.id).cloned();
                let Some(active) = active else {
                    return eph("This run has already ended.".into());
                };
                if !self.spend(&click.nonce, &user, &run, &req) {
                    return eph("This button was already used.".into());
                }
                self.stop(
                    &run.id,
                    &active,
                    StopReason::Cancelled {
                        by: user.username.clone(),
                    },
                );
                let _ = self.store.audit(
                    "run.cancel",
                    Some(&run.id),
                    &user.id,
                    &run.channel_id,
                    &json!({"by": user.username, "via": "button"}),
                );
                ActionResponse {
                    update: Some(ActionUpdate {
                        message: render::cancelling(&user.username),
                        props: progress_props(&run.id, RunStatus::Running, None),
                    }),
                    ephemeral_text: String::new(),
                }
            }
            ButtonAction::Retry => {
                if !matches!(
                    run.status,
                    RunStatus::Failed | RunStatus::TimedOut | RunStatus::Interrupted
                ) {
                    return eph(format!(
                        "This run cannot be retried: it is {}.",
                        run.status.as_str().replace('_', " ")
                    ));
                }
                if !self.spend(&click.nonce, &user, &run, &req) {
                    return eph("This button was already used.".into());
                }
                // Same id as the run's (checked above); the plugin resolved its name and kind.
                let channel = Channel {
                    id: run.channel_id.clone(),
                    ..req.channel.clone()
                };
                let submission = Submission {
                    user: &user,
                    channel: &channel,
                    root_id: &run.root_id,
                    intent: Intent::Retry,
                    prompt: &run.prompt,
                    trigger: None,
                    bot_can_post: true,
                };
                match self.submit(&cfg, submission).await {
                    Ok(a) => {
                        let _ = self.store.audit(
                            "run.retry",
                            Some(&a.run_id),
                            &user.id,
                            &run.channel_id,
                            &json!({"retry_of": run.id}),
                        );
                        // The clicked post's text is shown again only if it is this run's own post.
                        let original = match self.chat.post(&req.post_id).await {
                            Ok(p)
                                if p.channel_id == run.channel_id
                                    && p.props.get("codex_run_id").and_then(Value::as_str)
                                        == Some(run.id.as_str()) =>
                            {
                                p.message
                            }
                            _ => String::new(),
                        };
                        ActionResponse {
                            update: Some(ActionUpdate {
                                message: render::retried(&original, &user.username),
                                props: outcome_props(&run.id, run.status, None),
                            }),
                            ephemeral_text: String::new(),
                        }
                    }
                    Err(refusal) => eph(refusal.text),
                }
            }
            ButtonAction::Approve | ButtonAction::Deny => {
                let click = ApprovalClick {
                    approve: click.action == ButtonAction::Approve,
                    nonce: &click.nonce,
                    user: &user,
                    run: &run,
                    req: &req,
                };
                self.approval_click(click, &cfg).await
            }
        }
    }
}

fn non_empty(a: &str, b: &str) -> String {
    if a.is_empty() {
        b.to_string()
    } else {
        a.to_string()
    }
}
