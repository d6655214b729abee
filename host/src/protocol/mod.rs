//! The socket contract v1 between the plugin and the host, as Rust types.
//!
//! This is the one typed definition of `docs/socket-contract.md` on the host side; the plugin keeps
//! the Go twin in `plugin/server/contract.go`. Every type tolerates unknown fields (serde's default)
//! and missing optional ones, so either side can grow without breaking the other.
//!
//! Wire types only: this module imports no part of the host's behaviour (`app`, `runs`, ...), so
//! the socket server, the core and the tests can all use it.

use serde::{Deserialize, Serialize};

use crate::config::Settings;

/// A Mattermost user as resolved by the plugin.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct User {
    pub id: String,
    pub username: String,
    pub roles: Vec<String>,
    pub is_bot: bool,
}

impl User {
    pub fn is_system_admin(&self) -> bool {
        self.roles.iter().any(|r| r == "system_admin")
    }
}

/// Kind of a Mattermost channel (`public`, `private`, `direct`, `group`): the policy engine's own
/// enum, so a channel kind has one name from the plugin to the policy modules.
pub use codex_policy::ChannelKind;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Channel {
    pub id: String,
    pub name: String,
    pub display_name: String,
    pub kind: ChannelKind,
    pub team_id: String,
    pub team_name: String,
}

/// `POST /v1/commands`: a `/codex` slash command.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct CommandRequest {
    pub user: User,
    pub channel: Channel,
    pub root_id: String,
    pub trigger_id: String,
    /// Everything after `/codex `.
    pub text: String,
    /// Whether the bot may already post in the channel. When it may not and the text would start
    /// a run, the host answers `needs_bot_access` and does nothing else; the plugin then gives the
    /// bot access and sends the command again. Missing means true (plugins that joined first).
    #[serde(default = "yes")]
    pub bot_can_post: bool,
}

fn yes() -> bool {
    true
}

impl Default for CommandRequest {
    fn default() -> Self {
        CommandRequest {
            user: User::default(),
            channel: Channel::default(),
            root_id: String::new(),
            trigger_id: String::new(),
            text: String::new(),
            bot_can_post: true,
        }
    }
}

/// Mattermost's `CommandResponse`, as much of it as the host fills, plus `needs_bot_access`
/// (for the plugin only: see [`CommandRequest::bot_can_post`]).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct CommandResponse {
    pub response_type: String,
    pub text: String,
    /// Message attachments, e.g. the Request access button under a refusal.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<serde_json::Value>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub needs_bot_access: bool,
}

impl CommandResponse {
    pub fn ephemeral(text: impl Into<String>) -> Self {
        CommandResponse {
            response_type: "ephemeral".into(),
            text: text.into(),
            attachments: vec![],
            needs_bot_access: false,
        }
    }

    /// The text starts a run, and the bot must be able to post in the channel first.
    pub fn needs_bot_access() -> Self {
        CommandResponse {
            needs_bot_access: true,
            ..CommandResponse::ephemeral("")
        }
    }
}

/// A post as the plugin forwards it from `MessageHasBeenPosted`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct IncomingPost {
    pub id: String,
    pub root_id: String,
    pub channel_id: String,
    pub user_id: String,
    pub message: String,
    pub file_ids: Vec<String>,
    pub create_at: i64,
}

/// `POST /v1/posts`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct PostRequest {
    pub user: User,
    pub channel: Channel,
    pub post: IncomingPost,
    /// As in [`CommandRequest::bot_can_post`]: an `@codex` mention that would start a run where
    /// the bot may not post yet is answered with `needs_bot_access`. Missing means true.
    #[serde(default = "yes")]
    pub bot_can_post: bool,
}

impl Default for PostRequest {
    fn default() -> Self {
        PostRequest {
            user: User::default(),
            channel: Channel::default(),
            post: IncomingPost::default(),
            bot_can_post: true,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct PostResponse {
    pub handled: bool,
    /// When set, the plugin shows this to the poster as an ephemeral message (e.g. a refusal).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub ephemeral_text: String,
    /// The post would start a run, and the bot must be able to post in the channel first.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub needs_bot_access: bool,
    /// Message attachments of the ephemeral message, e.g. the Request access button under a
    /// refusal of the poster by the allowlist.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<serde_json::Value>,
}

/// `POST /v1/actions`: Mattermost's `PostActionIntegrationRequest`, with `user_id` filled by the
/// plugin from the server-set `Mattermost-User-Id` header.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ActionRequest {
    pub user_id: String,
    /// The clicking user, resolved by the plugin from `user_id` (roles decide admin rights).
    pub user: User,
    /// The channel of the clicked post, resolved by the plugin.
    pub channel: Channel,
    pub user_name: String,
    pub post_id: String,
    pub channel_id: String,
    pub team_id: String,
    pub trigger_id: String,
    pub context: serde_json::Map<String, serde_json::Value>,
}

/// Mattermost's `PostActionIntegrationResponse`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ActionResponse {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub update: Option<ActionUpdate>,
    #[serde(skip_serializing_if = "String::is_empty", default)]
    pub ephemeral_text: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ActionUpdate {
    pub message: String,
    pub props: serde_json::Value,
}

/// The plugin's own route the host calls, as the bot, through the Mattermost server (the host
/// has no other way to reach the plugin): it adds a user to Allowed users.
pub const ROUTE_ACCESS_GRANT: &str = "/v1/access/grant";
/// The plugin's route for button clicks; `actions_url` ends with it.
pub const ROUTE_ACTIONS: &str = "/v1/actions";

/// Body of `POST /plugins/<id>/v1/access/grant`: `user_id` was approved by `approved_by`, whom the
/// plugin checks again (a system admin, or listed under Access requests go to).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct AccessGrant {
    pub user_id: String,
    pub approved_by: String,
}

/// Answer of a successful grant: the user's name, and false in `added` when they were on the
/// list already.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct AccessGranted {
    pub username: String,
    pub added: bool,
}

/// One entry of a dynamic autocomplete list (Mattermost's `AutocompleteListItem`, Go field names).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AutocompleteItem {
    #[serde(rename = "Item")]
    pub item: String,
    #[serde(rename = "Hint")]
    pub hint: String,
    #[serde(rename = "HelpText")]
    pub help_text: String,
}

/// `PUT /v1/config`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ConfigRequest {
    pub mattermost_url: String,
    pub bot_user_id: String,
    /// The bot's username, for `@<name>` mentions; empty means `codex`.
    pub bot_username: String,
    pub bot_token: String,
    pub plugin_version: String,
    pub plugin_id: String,
    /// Where buttons post their clicks: `/plugins/<plugin id>/v1/actions`.
    pub actions_url: String,
    pub settings: Settings,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ConfigResponse {
    pub ok: bool,
    pub warnings: Vec<String>,
}

/// `GET /v1/health`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Health {
    pub version: String,
    pub configured: bool,
    pub codex: CodexInfo,
    pub queue: QueueInfo,
    pub policies: Vec<serde_json::Value>,
    /// How Codex runs are confined on this machine.
    pub isolation: crate::runner::isolation::IsolationInfo,
    /// Counters since the host started, for the plugin's Prometheus metrics.
    pub metrics: crate::metrics::MetricsInfo,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct CodexInfo {
    pub path: String,
    pub version: String,
    /// The versions this release was tested with, e.g. `0.169.0 to 0.171.x`.
    pub tested_range: String,
    /// Whether `version` is in that range; `null` while the version is unknown or unreadable.
    pub tested: Option<bool>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct QueueInfo {
    pub running: usize,
    pub queued: usize,
    pub max_concurrent_runs: usize,
    pub queue_limit: usize,
}

/// What a post the bot makes in a run's thread is, in its `props.codex_kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PostKind {
    /// The thread root the bot posts for a channel-level prompt.
    Root,
    /// The one post edited while the run is queued and working.
    Progress,
    /// Every part of a split answer but the last.
    AnswerPart,
    /// The run's one outcome post (the last part of a split answer).
    Outcome,
    /// An approval request with Approve and Deny.
    Approval,
    /// A notice, e.g. which attachments Codex does not get.
    Note,
    /// A DM asking an approver to add someone to Allowed users; `codex_run_id` holds the access
    /// request's id.
    AccessRequest,
}

impl PostKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PostKind::Root => "root",
            PostKind::Progress => "progress",
            PostKind::AnswerPart => "answer_part",
            PostKind::Outcome => "outcome",
            PostKind::Approval => "approval",
            PostKind::Note => "note",
            PostKind::AccessRequest => "access_request",
        }
    }

    /// The kind of a post the bot made, from its props; `None` for any other post.
    pub fn of(props: &serde_json::Value) -> Option<PostKind> {
        serde_json::from_value(props.get("codex_kind")?.clone()).ok()
    }

    /// The props of a post of this kind for `run_id`: `codex_kind`, `codex_run_id` and, when
    /// given, `codex_status`.
    pub fn props(self, run_id: &str, status: Option<&str>) -> serde_json::Value {
        let mut props = serde_json::json!({"codex_kind": self.as_str(), "codex_run_id": run_id});
        if let Some(status) = status {
            props["codex_status"] = status.into();
        }
        props
    }
}

/// `props` with a button attachment (Mattermost's `attachments`), when there is one.
pub fn with_buttons(
    mut props: serde_json::Value,
    buttons: Option<serde_json::Value>,
) -> serde_json::Value {
    if let Some(b) = buttons {
        props["attachments"] = serde_json::json!([b]);
    }
    props
}

/// Body of every non-2xx answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each post kind has one string form: `as_str`, serde and `PostKind::of` agree.
    #[test]
    fn post_kinds_have_one_string_form() {
        use PostKind as K;
        for kind in [
            K::Root,
            K::Progress,
            K::AnswerPart,
            K::Outcome,
            K::Approval,
            K::Note,
            K::AccessRequest,
        ] {
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
            let props = kind.props("run", Some("queued"));
            assert_eq!(
                props,
                serde_json::json!({"codex_kind": kind.as_str(), "codex_run_id": "run", "codex_status": "queued"})
            );
            assert_eq!(PostKind::of(&props), Some(kind));
        }
        assert_eq!(
            PostKind::of(&serde_json::json!({"codex_kind": "poll"})),
            None
        );
        assert_eq!(PostKind::of(&serde_json::json!({})), None);
    }

    /// The channel kind is the policy engine's enum, spelled as the plugin sends it.
    #[test]
    fn channel_kinds_keep_their_wire_names() {
        let c: Channel = serde_json::from_str(r#"{"id":"c","kind":"direct","extra":1}"#).unwrap();
        assert_eq!(c.kind, ChannelKind::Direct);
        assert_eq!(
            serde_json::to_value(ChannelKind::Private).unwrap(),
            "private"
        );
    }
}
