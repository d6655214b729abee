//! The wait of an approval-gated run: the request post (posted once, even across a crash), then
//! sleeping until a click, the expiry or a cancel decides it. Fails closed: nobody approving in
//! time is an expiry, never an approval.

use serde_json::json;
use tracing::warn;

use super::{approval_props, ApprovalSpec, PlanRecord};
use crate::chat::NewPost;
use crate::model::{ApprovalState, RunStatus};
use crate::protocol::PostKind;
use crate::render;
use crate::state::{ActiveRun, Host, StopReason};
use crate::store::ApprovalRow;

/// The run whose approval is awaited.
pub(crate) struct Waiting<'a> {
    pub run_id: &'a str,
    /// The thread the request is posted in (the bot has started it by now).
    pub root_id: &'a str,
    pub record: &'a PlanRecord,
    pub active: &'a ActiveRun,
}

/// How a wait ended.
#[derive(Debug, PartialEq)]
pub(crate) enum ApprovalEnd {
    /// Enough distinct approvers: the run is queued like any other.
    Approved,
    /// Denied, expired or withdrawn: the run ends in this outcome without starting Codex.
    Closed { status: RunStatus, body: String },
    /// The host is stopping: the approval stays pending in the store; the next start resumes it.
    HostStopping,
}

impl Host {
    /// Posts the request (unless the thread has it already) and waits until it is decided.
    pub(crate) async fn wait_for_approval(&self, w: &Waiting<'_>, row: ApprovalRow) -> ApprovalEnd {
        let spec: ApprovalSpec = serde_json::from_value(row.spec.clone()).unwrap_or_default();
        // A crash can fall between posting the request and recording its id: look before posting.
        let existing = match row.post_id {
            Some(id) => Some(id),
            None => self.find_approval_post(w.root_id, w.run_id).await,
        };
        if let Some(id) = &existing {
            let _ = self.store.set_approval_post(w.run_id, id);
        } else {
            let post = NewPost {
                channel_id: w.record.channel.id.clone(),
                root_id: w.root_id.to_string(),
                message: self.approval_message(w.record, &spec, &row.approved_by),
                props: self.pending_props(w.run_id, &spec),
                file_ids: vec![],
            };
            match self.chat.create_post(post).await {
                Ok(p) => {
                    let _ = self.store.set_approval_post(w.run_id, &p.id);
                }
                Err(e) => warn!(error = %e, "could not post the approval request"),
            }
        }
        let notify = self
            .approval_waiters
            .lock()
            .unwrap()
            .entry(w.run_id.to_string())
            .or_default()
            .clone();
        let end = loop {
            let row = self.store.approval(w.run_id).ok().flatten();
            match row.as_ref().map(|r| r.state) {
                Some(ApprovalState::Approved) => break ApprovalEnd::Approved,
                Some(ApprovalState::Denied) => {
                    let by = row.and_then(|r| r.decided_by).unwrap_or_default();
                    break ApprovalEnd::Closed {
                        status: RunStatus::Refused,
                        body: render::denied(&by, &spec.reason),
                    };
                }
                Some(ApprovalState::Pending) => {}
                _ => {
                    break ApprovalEnd::Closed {
                        status: RunStatus::Refused,
                        body: render::approval_expired(&spec.reason),
                    }
                }
            }
            if spec.left().is_zero() {
                // Fail closed: nobody approved in time.
                if self
                    .store
                    .decide_approval(w.run_id, ApprovalState::Expired, "")
                    .unwrap_or(false)
                {
                    let _ = self.store.audit(
                        "approval.expired",
                        Some(w.run_id),
                        &w.record.user.id,
                        &w.record.channel.id,
                        &json!({}),
                    );
                    self.close_approval_post(w, ApprovalState::Expired, &[])
                        .await;
                }
                continue;
            }
            tokio::select! {
                _ = notify.notified() => {}
                _ = tokio::time::sleep(spec.left()) => {}
                _ = w.active.cancel.cancelled() => {
                    let reason = w.active.reason.lock().unwrap().clone();
                    let Some(StopReason::Cancelled { by }) = reason else {
                        self.approval_waiters.lock().unwrap().remove(w.run_id);
                        return ApprovalEnd::HostStopping;
                    };
                    let _ = self.store.decide_approval(w.run_id, ApprovalState::Withdrawn, &by);
                    self.close_approval_post(w, ApprovalState::Withdrawn, std::slice::from_ref(&by)).await;
                    break ApprovalEnd::Closed {
                        status: RunStatus::Cancelled,
                        body: render::cancelled(&by, None),
                    };
                }
            }
        };
        self.approval_waiters.lock().unwrap().remove(w.run_id);
        end
    }

    async fn find_approval_post(&self, root_id: &str, run_id: &str) -> Option<String> {
        let posts = self.chat.thread(root_id).await.ok()?;
        posts
            .into_iter()
            .find(|p| {
                PostKind::of(&p.props) == Some(PostKind::Approval)
                    && p.props.get("codex_run_id").and_then(|v| v.as_str()) == Some(run_id)
            })
            .map(|p| p.id)
    }

    /// Replaces the approval request's buttons with how it was closed.
    async fn close_approval_post(&self, w: &Waiting<'_>, state: ApprovalState, by: &[String]) {
        let Some(post_id) = self
            .store
            .approval(w.run_id)
            .ok()
            .flatten()
            .and_then(|r| r.post_id)
        else {
            return;
        };
        let prompt = self.redactor().redact(&w.record.prompt);
        let msg = render::approval_closed(state.as_str(), by, &prompt);
        if let Err(e) = self
            .chat
            .update_post(&post_id, &msg, Some(approval_props(w.run_id, state)))
            .await
        {
            warn!(error = %e, "could not update the approval request");
        }
    }
}
