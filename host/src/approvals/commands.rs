//! Codex's own requests during a run — a command, a file change — put to people: the post with
//! the full command (or the paths and a diff excerpt) and **Approve**, **Approve for this
//! session**, **Deny**; the wait; the clicks. The same approver rules as a run's approval: the
//! listed approvers (and system admins when the setting allows), not the requester unless the
//! policy allows it, each person counted once, `min_approvals` distinct approvals; expiry fails
//! closed to a decline.
//!
//! Waits live in memory only: the Codex process that asked dies with the host, so there is
//! nothing to resume after a restart. Buttons are signed for one request (`<run id>#<n>`) and
//! spent on use. Never answers Codex itself; it returns a [`CommandVerdict`] to `runs`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::ApprovalSpec;
use crate::buttons::ButtonAction;
use crate::chat::NewPost;
use crate::protocol::{with_buttons, ActionRequest, ActionResponse, ActionUpdate, PostKind, User};
use crate::render::{self, AskView, Asked};
use crate::runner::app_server::protocol::RequestId;
use crate::state::Host;
use crate::store::RunRow;

/// How a request put to people was decided.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum CommandVerdict {
    Accept {
        by: Vec<String>,
    },
    AcceptForSession {
        by: Vec<String>,
    },
    Decline {
        by: String,
    },
    /// Nobody decided in time: declined.
    Expired,
    /// The turn ended (or the run was cancelled) first: nothing to answer.
    Moot,
}

/// One request waiting for people.
pub(crate) struct CommandAsk {
    /// `<run id>#<n>`: what its buttons are signed for.
    pub key: String,
    pub run_id: String,
    pub channel_id: String,
    pub root_id: String,
    pub requester: User,
    pub project: String,
    pub asked: Asked,
    /// Codex's id for the request: `serverRequest/resolved` with it makes the ask moot.
    pub request_id: RequestId,
    pub spec: ApprovalSpec,
    /// System admins may decide besides `spec.approvers`.
    pub admins: bool,
    approved_by: Mutex<Vec<String>>,
    /// Every approval so far was "for this session".
    for_session: Mutex<bool>,
    decided: watch::Sender<Option<CommandVerdict>>,
}

impl CommandAsk {
    pub fn new(
        key: String,
        run: &RunRow,
        requester: User,
        (asked, request_id): (Asked, RequestId),
        spec: ApprovalSpec,
        admins: bool,
    ) -> CommandAsk {
        CommandAsk {
            key,
            run_id: run.id.clone(),
            channel_id: run.channel_id.clone(),
            root_id: run.root_id.clone(),
            requester,
            project: run.project.clone(),
            asked,
            request_id,
            spec,
            admins,
            approved_by: Mutex::new(vec![]),
            for_session: Mutex::new(true),
            decided: watch::channel(None).0,
        }
    }

    fn view(&self) -> AskView<'_> {
        AskView {
            asked: &self.asked,
            requester: &self.requester.username,
            project: &self.project,
            reason: &self.spec.reason,
            rules: &self.spec.rules,
            approvers: if self.spec.approvers.is_empty() {
                vec!["a system admin".into()]
            } else {
                self.spec
                    .approvers
                    .iter()
                    .map(|a| format!("@{a}"))
                    .collect()
            },
            min_approvals: self.spec.min_approvals,
            expires_in: self.spec.left(),
        }
    }
}

/// One click on a command request's buttons, already verified (signature, expiry, channel).
pub(crate) struct CommandClick<'a> {
    pub key: &'a str,
    pub action: ButtonAction,
    pub nonce: &'a str,
    pub user: &'a User,
    pub run: &'a RunRow,
    pub req: &'a ActionRequest,
    pub admins_may_approve: bool,
}

fn ask_props(ask: &CommandAsk, status: &str) -> Value {
    let mut props = PostKind::Approval.props(&ask.run_id, Some(status));
    props["codex_request"] = json!(ask.key);
    props
}

impl Host {
    /// The request's buttons, signed to stay valid a minute past its expiry.
    fn ask_buttons(&self, ask: &CommandAsk) -> Option<serde_json::Value> {
        self.buttons(
            &ask.key,
            &[
                ButtonAction::Approve,
                ButtonAction::ApproveSession,
                ButtonAction::Deny,
            ],
            ask.spec.left().as_secs() as i64 + 60,
        )
    }

    /// Posts the request and waits for its decision, its expiry, or `moot` (turn over).
    pub(crate) async fn put_to_people(
        &self,
        ask: Arc<CommandAsk>,
        moot: &CancellationToken,
    ) -> CommandVerdict {
        let buttons = self.ask_buttons(&ask);
        let redactor = self.redactor();
        let post = NewPost {
            channel_id: ask.channel_id.clone(),
            root_id: ask.root_id.clone(),
            message: redactor.redact(&render::ask_request(&ask.view(), &[])),
            props: with_buttons(ask_props(&ask, "awaiting_approval"), buttons),
            file_ids: vec![],
        };
        // Listed before it is posted: a click can come as soon as the post exists.
        self.command_asks
            .lock()
            .unwrap()
            .insert(ask.key.clone(), ask.clone());
        let post_id = match self.chat.create_post(post).await {
            Ok(p) => Some(p.id),
            Err(e) => {
                warn!(error = %e, "could not post a command approval request; declining it");
                None
            }
        };
        let Some(post_id) = post_id else {
            self.command_asks.lock().unwrap().remove(&ask.key);
            return CommandVerdict::Expired;
        };
        let mut rx = ask.decided.subscribe();
        let verdict = tokio::select! {
            v = rx.wait_for(Option::is_some) => v.ok().and_then(|v| v.clone()).unwrap_or(CommandVerdict::Moot),
            _ = tokio::time::sleep(ask.spec.left()) => CommandVerdict::Expired,
            _ = moot.cancelled() => CommandVerdict::Moot,
        };
        self.command_asks.lock().unwrap().remove(&ask.key);
        // A click that decided has already replaced the post; the other endings close it here.
        if matches!(verdict, CommandVerdict::Expired | CommandVerdict::Moot) {
            let _ = ask.decided.send_replace(Some(verdict.clone()));
            let msg = redactor.redact(&render::ask_closed(&ask.asked, &verdict_words(&verdict)));
            let status = if verdict == CommandVerdict::Expired {
                "expired"
            } else {
                "withdrawn"
            };
            if let Err(e) = self
                .chat
                .update_post(&post_id, &msg, Some(ask_props(&ask, status)))
                .await
            {
                warn!(error = %e, "could not close a command approval request");
            }
        }
        verdict
    }

    /// Codex resolved request `id` of run `run_id` by itself (it was cleared, e.g. the turn was
    /// interrupted): a pending ask for it is moot.
    pub(crate) fn request_resolved(&self, run_id: &str, id: &RequestId) {
        let asks = self.command_asks.lock().unwrap();
        for ask in asks.values() {
            if ask.run_id == run_id && &ask.request_id == id {
                ask.decided.send_if_modified(|d| {
                    let undecided = d.is_none();
                    if undecided {
                        *d = Some(CommandVerdict::Moot);
                    }
                    undecided
                });
            }
        }
    }

    /// Approve, Approve for this session or Deny on a command request.
    pub(crate) fn command_click(&self, c: CommandClick<'_>) -> ActionResponse {
        let eph = |t: String| ActionResponse {
            update: None,
            ephemeral_text: t,
        };
        let ask = self.command_asks.lock().unwrap().get(c.key).cloned();
        let Some(ask) = ask.filter(|a| a.run_id == c.run.id) else {
            return eph("This request is no longer waiting for an answer.".into());
        };
        if ask.decided.borrow().is_some() {
            return eph("This request was already answered.".into());
        }
        let approve = c.action != ButtonAction::Deny;
        let refuse = |reason: &str, text: String| {
            let _ = self.store.audit(
                "action.refused",
                Some(&ask.run_id),
                &c.user.id,
                &c.req.channel_id,
                &json!({"reason": reason, "action": c.action.as_str(), "request": ask.key}),
            );
            eph(text)
        };
        let who = if ask.spec.approvers.is_empty() {
            "a system admin".to_string()
        } else {
            render::mentions(&ask.spec.approvers)
        };
        let is_requester = c.user.id == ask.requester.id;
        if approve && is_requester && !ask.spec.allow_self_approval {
            return refuse(
                "self-approval",
                format!("You cannot approve Codex's request in your own run; ask {who}."),
            );
        }
        let admin = c.user.is_system_admin() && (ask.admins || c.admins_may_approve);
        if !(ask.spec.listed(c.user) || admin) {
            return refuse(
                "not-permitted",
                format!("Only {who} can answer this request."),
            );
        }
        if !self.spend(&format!("{}:{}", c.nonce, c.user.id), c.user, c.run, c.req) {
            return eph("You already answered this request.".into());
        }
        let verdict = if approve {
            let by = {
                let mut by = ask.approved_by.lock().unwrap();
                if !by.contains(&c.user.username) {
                    by.push(c.user.username.clone());
                }
                by.clone()
            };
            let session = {
                let mut s = ask.for_session.lock().unwrap();
                *s &= c.action == ButtonAction::ApproveSession;
                *s
            };
            let done = by.len() as u32 >= ask.spec.min_approvals;
            done.then_some(if session {
                CommandVerdict::AcceptForSession { by }
            } else {
                CommandVerdict::Accept { by }
            })
        } else {
            Some(CommandVerdict::Decline {
                by: c.user.username.clone(),
            })
        };
        let _ = self.store.audit(
            &format!("command.{}", c.action.as_str()),
            Some(&ask.run_id),
            &c.user.id,
            &c.req.channel_id,
            &json!({"request": ask.key, "by": c.user.username, "decided": verdict.is_some()}),
        );
        let redactor = self.redactor();
        let update = match verdict {
            Some(v) => {
                let msg = render::ask_closed(&ask.asked, &verdict_words(&v));
                let status = match v {
                    CommandVerdict::Decline { .. } => "denied",
                    _ => "approved",
                };
                let _ = ask.decided.send_replace(Some(v));
                ActionUpdate {
                    message: redactor.redact(&msg),
                    props: ask_props(&ask, status),
                }
            }
            None => {
                let by = ask.approved_by.lock().unwrap().clone();
                let buttons = self.ask_buttons(&ask);
                ActionUpdate {
                    message: redactor.redact(&render::ask_request(&ask.view(), &by)),
                    props: with_buttons(ask_props(&ask, "awaiting_approval"), buttons),
                }
            }
        };
        ActionResponse {
            update: Some(update),
            ephemeral_text: String::new(),
        }
    }
}

/// How the closed post says it ended.
fn verdict_words(v: &CommandVerdict) -> String {
    match v {
        CommandVerdict::Accept { by } => format!("Approved by {}", render::mentions(by)),
        CommandVerdict::AcceptForSession { by } => {
            format!("Approved for this session by {}", render::mentions(by))
        }
        CommandVerdict::Decline { by } => format!("Denied by @{by}"),
        CommandVerdict::Expired => "Declined: nobody answered in time".into(),
        CommandVerdict::Moot => "No longer needed: Codex withdrew it or the turn ended".into(),
    }
}

/// How long a request put to people waits when the policy gives no expiry.
pub(crate) const DEFAULT_ASK_EXPIRY: Duration = Duration::from_secs(15 * 60);
