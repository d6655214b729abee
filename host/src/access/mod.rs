//! Access requests: someone the allowlist refused presses **Request access** under the refusal;
//! the approvers (the people Access requests go to names, else every active system admin) each
//! get a DM from the bot with Approve and Deny, and the first answer counts. Approve asks the
//! plugin to add the person to Allowed users (the plugin owns its settings: the host calls its
//! grant route as the bot) and tells both; Deny tells the requester.
//!
//! Input: clicks whose signature and expiry `runs::clicks` checked, with the clicking user as the
//! server authenticated them; output: DMs and their edits, rows in `store`, audit entries. Who may
//! answer is decided here at click time from the settings and the clicker's roles as the plugin
//! resolved them, never from the click's body; a requester never answers their own request.

#[cfg(test)]
mod tests;

use std::sync::Arc;

use serde_json::{json, Value};
use tracing::warn;

use crate::buttons::{ButtonAction, Click};
use crate::chat::NewPost;
use crate::config::Config;
use crate::model::ApprovalState;
use crate::protocol::{
    with_buttons, AccessGrant, ActionRequest, ActionResponse, ActionUpdate, PostKind, User,
    ROUTE_ACCESS_GRANT,
};
use crate::render;
use crate::state::{new_id, Host};
use crate::store::{now_ms, AccessRequestRow};

/// What a Request access button is signed for: `access-for:<user id>`.
const REQUEST_PREFIX: &str = "access-for:";
/// What the Approve and Deny buttons of an access request are signed for: `access:<request id>`.
const ANSWER_PREFIX: &str = "access:";
/// How long the Request access button under a refusal can be pressed.
const REQUEST_BUTTON_TTL_S: i64 = 24 * 3600;
/// How long an approver's buttons work; after that the request is answered in System Console.
const ANSWER_BUTTON_TTL_S: i64 = 30 * 24 * 3600;

/// Whether a signed button subject belongs to access requests.
pub(crate) fn is_access_subject(subject: &str) -> bool {
    subject.starts_with(REQUEST_PREFIX) || subject.starts_with(ANSWER_PREFIX)
}

fn ephemeral(text: impl Into<String>) -> ActionResponse {
    ActionResponse {
        update: None,
        ephemeral_text: text.into(),
    }
}

/// One click on an access button, as `runs::clicks` verified it.
pub(crate) struct AccessClick<'a> {
    pub click: &'a Click,
    pub user: &'a User,
    pub req: &'a ActionRequest,
}

impl Host {
    /// The Request access button shown under an allowlist refusal of `user_id`.
    pub(crate) fn request_access_button(&self, user_id: &str) -> Option<Value> {
        self.buttons(
            &format!("{REQUEST_PREFIX}{user_id}"),
            &[ButtonAction::RequestAccess],
            REQUEST_BUTTON_TTL_S,
        )
    }

    /// The attachments under a refusal of `user_id`: the Request access button when the
    /// allowlist refused the person, not the place (`may_request_access`), else none.
    pub(crate) fn refusal_attachments(
        &self,
        may_request_access: bool,
        user_id: &str,
    ) -> Vec<Value> {
        if !may_request_access {
            return vec![];
        }
        self.request_access_button(user_id).into_iter().collect()
    }

    /// A click on Request access, Approve or Deny of an access request.
    pub(crate) async fn access_click(
        self: &Arc<Self>,
        cfg: &Config,
        c: AccessClick<'_>,
    ) -> ActionResponse {
        let subject = c.click.run_id.as_str();
        match (c.click.action, subject.strip_prefix(REQUEST_PREFIX)) {
            (ButtonAction::RequestAccess, Some(owner)) => self.request_access(cfg, &c, owner).await,
            (ButtonAction::Approve | ButtonAction::Deny, None) => {
                let id = subject.strip_prefix(ANSWER_PREFIX).unwrap_or_default();
                self.answer_access(cfg, &c, id).await
            }
            _ => ephemeral("Nothing happened: this button is malformed."),
        }
    }

    fn refuse_access_click(&self, c: &AccessClick<'_>, reason: &str, request: Option<&str>) {
        warn!(user = %c.user.id, reason, "refused an access request click");
        let _ = self.store.audit(
            "action.refused",
            None,
            &c.user.id,
            &c.req.channel_id,
            &json!({"reason": reason, "access_request": request, "post_id": c.req.post_id}),
        );
    }

    async fn request_access(
        self: &Arc<Self>,
        cfg: &Config,
        c: &AccessClick<'_>,
        owner: &str,
    ) -> ActionResponse {
        let user = c.user;
        if owner != user.id {
            self.refuse_access_click(c, "not-the-requester", None);
            return ephemeral("Nothing happened: this button belongs to someone else's refusal.");
        }
        if cfg.settings.allowed_users.iter().any(|u| u == &user.id) {
            return ephemeral("You are on Allowed users already; try `/codex` again.");
        }
        if let Ok(Some(_)) = self.store.pending_access_request(&user.id) {
            return ephemeral(render::access_pending());
        }
        let named = !cfg.settings.access_approvers.is_empty();
        let approvers = match self.access_approvers(cfg, user).await {
            Ok(a) if !a.is_empty() => a,
            Ok(_) => return ephemeral(render::access_no_approvers(named)),
            Err(e) => {
                warn!(error = %e, "could not find whom to ask for access");
                return ephemeral(format!(
                    "Your request was not sent: the bot could not look up the approvers ({e}). Try again in a minute."
                ));
            }
        };
        if !self.spend_access_nonce(c, None) {
            return ephemeral("This button was already used.");
        }
        let row = AccessRequestRow {
            id: new_id(),
            user_id: user.id.clone(),
            username: user.username.clone(),
            channel_id: c.req.channel_id.clone(),
            state: ApprovalState::Pending,
            post_ids: vec![],
            created_at: now_ms(),
            decided_by: None,
        };
        match self.store.insert_access_request(&row) {
            Ok(true) => {}
            Ok(false) => return ephemeral(render::access_pending()),
            Err(e) => return ephemeral(crate::runs::internal(e)),
        }
        let names: Vec<String> = approvers.iter().map(|a| a.username.clone()).collect();
        let channel_name = if c.req.channel.name.is_empty() {
            c.req.channel_id.clone()
        } else {
            c.req.channel.name.clone()
        };
        let message = render::access_request(&user.username, &channel_name, &names);
        let mut posts = Vec::new();
        for approver in &approvers {
            match self
                .dm(&approver.id, &message, self.answer_props(&row.id))
                .await
            {
                Ok(id) => posts.push(id),
                Err(e) => {
                    warn!(approver = %approver.username, error = %e, "could not send an access request")
                }
            }
        }
        let _ = self.store.set_access_posts(&row.id, &posts);
        let _ = self.store.audit(
            "access.requested",
            None,
            &user.id,
            &c.req.channel_id,
            &json!({"request": row.id, "approvers": names, "delivered": posts.len()}),
        );
        if posts.is_empty() {
            let _ = self
                .store
                .decide_access_request(&row.id, ApprovalState::Withdrawn, "");
            return ephemeral(
                "Your request was not sent: the bot could not message any approver. Try again later, or ask a system admin directly.",
            );
        }
        ephemeral(render::access_requested(&names))
    }

    /// Whom a request goes to: the named approvers, else every active system admin; never the
    /// requester, never a bot.
    async fn access_approvers(
        &self,
        cfg: &Config,
        requester: &User,
    ) -> Result<Vec<User>, crate::chat::ChatError> {
        let named = &cfg.settings.access_approvers;
        let mut people: Vec<User> = if named.is_empty() {
            self.chat.system_admins().await?
        } else {
            // Entries that named nobody when the plugin resolved them stay out of the lookup.
            let ids: Vec<String> = named
                .iter()
                .filter(|id| !id.starts_with("unresolved:"))
                .cloned()
                .collect();
            let found = self.chat.users(&ids).await?;
            ids.iter().filter_map(|id| found.get(id).cloned()).collect()
        };
        people.retain(|u| u.id != requester.id && !u.is_bot);
        Ok(people)
    }

    /// Named approvers and system admins may answer.
    fn may_answer_access(cfg: &Config, user: &User) -> bool {
        user.is_system_admin() || cfg.settings.access_approvers.contains(&user.id)
    }

    fn answer_props(&self, request_id: &str) -> Value {
        with_buttons(
            PostKind::AccessRequest.props(request_id, Some(ApprovalState::Pending.as_str())),
            self.buttons(
                &format!("{ANSWER_PREFIX}{request_id}"),
                &[ButtonAction::Approve, ButtonAction::Deny],
                ANSWER_BUTTON_TTL_S,
            ),
        )
    }

    /// Posts `message` in the bot's DM with `user_id`; the post's id.
    async fn dm(&self, user_id: &str, message: &str, props: Value) -> Result<String, String> {
        let channel_id = self
            .chat
            .direct_channel(user_id)
            .await
            .map_err(|e| e.to_string())?;
        let post = NewPost {
            channel_id,
            message: message.to_string(),
            props,
            ..Default::default()
        };
        let post = self
            .chat
            .create_post(post)
            .await
            .map_err(|e| e.to_string())?;
        Ok(post.id)
    }

    fn spend_access_nonce(&self, c: &AccessClick<'_>, request: Option<&str>) -> bool {
        if let Ok(true) = self.store.spend_nonce(&c.click.nonce) {
            return true;
        }
        self.refuse_access_click(c, "replayed", request);
        false
    }

    async fn answer_access(
        self: &Arc<Self>,
        cfg: &Config,
        c: &AccessClick<'_>,
        id: &str,
    ) -> ActionResponse {
        let user = c.user;
        let row = match self.store.access_request(id) {
            Ok(Some(r)) => r,
            _ => {
                self.refuse_access_click(c, "unknown-access-request", Some(id));
                return ephemeral("This access request is not known to the Codex host.");
            }
        };
        if row.user_id == user.id {
            self.refuse_access_click(c, "self-approval", Some(id));
            return ephemeral("You cannot answer your own access request.");
        }
        if !Self::may_answer_access(cfg, user) {
            self.refuse_access_click(c, "not-an-approver", Some(id));
            let named: Vec<String> = self
                .access_approvers(cfg, &User::default())
                .await
                .map(|a| a.into_iter().map(|u| u.username).collect())
                .unwrap_or_default();
            let named = if cfg.settings.access_approvers.is_empty() {
                vec![]
            } else {
                named
            };
            return ephemeral(render::access_not_permitted(&named));
        }
        if !row.post_ids.contains(&c.req.post_id) {
            self.refuse_access_click(c, "foreign-post", Some(id));
            return ephemeral("Nothing happened: this button does not belong to this post.");
        }
        if row.state != ApprovalState::Pending {
            return ephemeral(format!("This request was {} already.", row.state.as_str()));
        }
        if !self.spend_access_nonce(c, Some(id)) {
            return ephemeral("This button was already used.");
        }
        let approve = c.click.action == ButtonAction::Approve;
        let state = if approve {
            ApprovalState::Approved
        } else {
            ApprovalState::Denied
        };
        if !matches!(
            self.store.decide_access_request(id, state, &user.id),
            Ok(true)
        ) {
            return ephemeral("Someone answered this request first.");
        }
        if approve {
            let grant = AccessGrant {
                user_id: row.user_id.clone(),
                approved_by: user.id.clone(),
            };
            if let Err(e) = self.grant(&grant).await {
                let _ = self.store.reopen_access_request(id);
                let _ = self.store.audit(
                    "access.grant_failed",
                    None,
                    &row.user_id,
                    &row.channel_id,
                    &json!({"request": id, "by": user.username, "error": e}),
                );
                return ActionResponse {
                    update: Some(ActionUpdate {
                        message: render::access_grant_failed(&row.username, &e),
                        props: self.answer_props(id),
                    }),
                    ephemeral_text: String::new(),
                };
            }
        }
        let _ = self.store.audit(
            if approve {
                "access.approved"
            } else {
                "access.denied"
            },
            None,
            &row.user_id,
            &row.channel_id,
            &json!({"request": id, "by": user.username, "by_id": user.id}),
        );
        let closed = render::access_closed(&row.username, approve, &user.username);
        let props = PostKind::AccessRequest.props(id, Some(state.as_str()));
        for post_id in row.post_ids.iter().filter(|p| **p != c.req.post_id) {
            if let Err(e) = self
                .chat
                .update_post(post_id, &closed, Some(props.clone()))
                .await
            {
                warn!(post = %post_id, error = %e, "could not close another approver's access request");
            }
        }
        let told = render::access_answered(approve, &user.username);
        if let Err(e) = self.dm(&row.user_id, &told, json!({})).await {
            warn!(requester = %row.username, error = %e, "could not tell the requester the answer");
        }
        ActionResponse {
            update: Some(ActionUpdate {
                message: closed,
                props,
            }),
            ephemeral_text: String::new(),
        }
    }

    /// Asks the plugin to add someone to Allowed users; the error says what failed.
    async fn grant(&self, grant: &AccessGrant) -> Result<(), String> {
        let actions_url = self.snapshot().actions_url.clone();
        let base = actions_url
            .strip_suffix(crate::protocol::ROUTE_ACTIONS)
            .ok_or("the plugin has not told the host its address")?;
        self.chat
            .grant_access(&format!("{base}{ROUTE_ACCESS_GRANT}"), grant)
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    }
}
