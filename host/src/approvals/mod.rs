//! Runs that need approval, and Codex's requests during a run that need people
//! (`commands.rs`): what is asked ([`ApprovalSpec`], [`PlanRecord`]), the request post
//! with Approve and Deny, the wait (stored, so it survives restarts, and a restart never approves
//! anything by itself) and the clicks, with distinct approvers counted against `min-approvals`.
//!
//! Input: an approval-gated run from `runs`, and clicks; output: the request post and its edits,
//! rows in `store`, and an [`ApprovalEnd`] that `runs` turns into a queued run or an outcome.
//! Never starts Codex and never posts an outcome itself.

mod clicks;
mod commands;
mod waiting;

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::buttons::ButtonAction;
use crate::config::SandboxMode;
use crate::model::{ApprovalState, RunStatus};
use crate::protocol::{with_buttons, Channel, PostKind, User};
use crate::render;
use crate::state::Host;
use crate::store::now_ms;

pub(crate) use clicks::ApprovalClick;
pub(crate) use commands::{CommandAsk, CommandClick, CommandVerdict, DEFAULT_ASK_EXPIRY};
pub(crate) use waiting::{ApprovalEnd, Waiting};

/// What an approval asks for, stored with the pending run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct ApprovalSpec {
    pub approvers: Vec<String>,
    pub min_approvals: u32,
    pub reason: String,
    pub rules: Vec<String>,
    pub allow_self_approval: bool,
    pub expires_at_ms: i64,
}

impl ApprovalSpec {
    pub(crate) fn left(&self) -> Duration {
        Duration::from_millis((self.expires_at_ms - now_ms()).max(0) as u64)
    }

    pub(crate) fn listed(&self, user: &User) -> bool {
        self.approvers.iter().any(|a| {
            let a = a.trim().trim_start_matches('@');
            a == user.id || a.eq_ignore_ascii_case(&user.username)
        })
    }

    fn who(&self) -> String {
        render::mentions(&self.approvers)
    }
}

/// A run as stored with a pending approval, so a restarted host can resume the wait. It holds
/// the sandbox, model and timeout already tightened by the policy's limits, so an approval given
/// after a restart still runs within them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PlanRecord {
    pub user: User,
    pub channel: Channel,
    pub project: String,
    pub root_id: String,
    pub prompt: String,
    pub trigger_post_id: Option<String>,
    #[serde(default)]
    pub file_ids: Vec<String>,
    pub sandbox: SandboxMode,
    pub model: Option<String>,
    pub timeout_secs: u64,
    /// The transcript frozen at acceptance: an approved run gets exactly what was approved.
    #[serde(default)]
    pub context: Option<render::Transcript>,
}

/// The props of an approval request: `codex_status` is `awaiting_approval` while it is pending,
/// then the state it closed in.
fn approval_props(run_id: &str, state: ApprovalState) -> Value {
    let status = match state {
        ApprovalState::Pending => RunStatus::AwaitingApproval.as_str(),
        closed => closed.as_str(),
    };
    PostKind::Approval.props(run_id, Some(status))
}

impl Host {
    /// Approve and Deny, valid a minute past the request's expiry.
    fn approval_buttons(&self, run_id: &str, spec: &ApprovalSpec) -> Option<Value> {
        self.buttons(
            run_id,
            &[ButtonAction::Approve, ButtonAction::Deny],
            spec.left().as_secs() as i64 + 60,
        )
    }

    fn pending_props(&self, run_id: &str, spec: &ApprovalSpec) -> Value {
        with_buttons(
            approval_props(run_id, ApprovalState::Pending),
            self.approval_buttons(run_id, spec),
        )
    }

    /// The request post for `plan`, showing the sandbox, timeout and model the run will get.
    fn approval_message(
        &self,
        plan: &PlanRecord,
        spec: &ApprovalSpec,
        approved_by: &[String],
    ) -> String {
        let redactor = self.redactor();
        redactor.redact(&render::approval_request(&render::ApprovalView {
            requester: &plan.user.username,
            project: &plan.project,
            prompt: &redactor.redact(&plan.prompt),
            reason: &spec.reason,
            rules: &spec.rules,
            approvers: &spec.approvers,
            min_approvals: spec.min_approvals,
            expires_in: spec.left(),
            approved_by,
            sandbox: plan.sandbox.as_str(),
            timeout: Duration::from_secs(plan.timeout_secs),
            model: plan.model.as_deref(),
            context: plan.context.as_ref(),
        }))
    }
}

#[cfg(test)]
mod tests;
