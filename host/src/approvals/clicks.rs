//! Approve and Deny on an approval request: only listed approvers (and system admins when the
//! setting allows) decide; the requester approves only if the policy allows it; each person's
//! approval counts once. The click is already verified (signature, expiry, channel) by the caller.

use serde_json::json;

use super::{approval_props, ApprovalSpec, PlanRecord};
use crate::config::Config;
use crate::model::ApprovalState;
use crate::protocol::{ActionRequest, ActionResponse, ActionUpdate, User};
use crate::render;
use crate::state::Host;
use crate::store::RunRow;

/// One click on an approval request.
pub(crate) struct ApprovalClick<'a> {
    pub approve: bool,
    pub nonce: &'a str,
    pub user: &'a User,
    pub run: &'a RunRow,
    pub req: &'a ActionRequest,
}

impl Host {
    pub(crate) async fn approval_click(
        &self,
        c: ApprovalClick<'_>,
        cfg: &Config,
    ) -> ActionResponse {
        let ApprovalClick {
            approve,
            nonce,
            user,
            run,
            req,
        } = c;
        let eph = |t: String| ActionResponse {
            update: None,
            ephemeral_text: t,
        };
        let Some(row) = self.store.approval(&run.id).ok().flatten() else {
            return eph("There is no approval pending for this run.".into());
        };
        if row.state != ApprovalState::Pending {
            return eph(format!("This request was already {}.", row.state.as_str()));
        }
        let spec: ApprovalSpec = serde_json::from_value(row.spec.clone()).unwrap_or_default();
        let Ok(plan) = serde_json::from_value::<PlanRecord>(row.plan.clone()) else {
            // Unreadable, it could never run within its limits: resuming it expires it too.
            return eph(
                "This approval request can no longer be decided; ask for the run again.".into(),
            );
        };
        let action = if approve { "approve" } else { "deny" };
        let refuse = |reason: &str, text: String| {
            let _ = self.store.audit(
                "action.refused",
                Some(&run.id),
                &user.id,
                &req.channel_id,
                &json!({"reason": reason, "action": action}),
            );
            eph(text)
        };
        if approve && user.id == run.user_id && !spec.allow_self_approval {
            return refuse(
                "self-approval",
                format!("You cannot approve your own request; ask {}.", spec.who()),
            );
        }
        let admin = user.is_system_admin() && cfg.settings.approvers_include_admins;
        if !(spec.listed(user) || admin) {
            return refuse(
                "not-permitted",
                format!("Only {} can approve or deny this request.", spec.who()),
            );
        }
        // One button serves every approver, so a replay is the same person clicking again.
        if !self.spend(&format!("{nonce}:{}", user.id), user, run, req) {
            return eph("You already answered this request.".into());
        }
        let update = if approve {
            let by = self
                .store
                .add_approver(&run.id, &user.username)
                .unwrap_or_default();
            let _ = self.store.audit(
                "approval.approve",
                Some(&run.id),
                &user.id,
                &req.channel_id,
                &json!({"by": user.username, "count": by.len(), "needed": spec.min_approvals}),
            );
            if by.len() as u32 >= spec.min_approvals
                && self
                    .store
                    .decide_approval(&run.id, ApprovalState::Approved, &by.join(","))
                    .unwrap_or(false)
            {
                ActionUpdate {
                    message: render::approval_closed(
                        "granted",
                        &by,
                        &self.redactor().redact(&run.prompt),
                    ),
                    props: approval_props(&run.id, ApprovalState::Approved),
                }
            } else {
                let mut props = self.pending_props(&run.id, &spec);
                props["codex_approved_by"] = json!(by);
                ActionUpdate {
                    message: self.approval_message(&plan, &spec, &by),
                    props,
                }
            }
        } else {
            let _ = self
                .store
                .decide_approval(&run.id, ApprovalState::Denied, &user.username);
            let _ = self.store.audit(
                "approval.deny",
                Some(&run.id),
                &user.id,
                &req.channel_id,
                &json!({"by": user.username}),
            );
            ActionUpdate {
                message: render::approval_closed(
                    "denied",
                    std::slice::from_ref(&user.username),
                    &self.redactor().redact(&run.prompt),
                ),
                props: approval_props(&run.id, ApprovalState::Denied),
            }
        };
        if let Some(n) = self.approval_waiters.lock().unwrap().get(&run.id) {
            n.notify_one();
        }
        ActionResponse {
            update: Some(update),
            ephemeral_text: String::new(),
        }
    }
}
