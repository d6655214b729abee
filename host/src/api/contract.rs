//! The socket contract v1 between the plugin and the host, as Rust types.
//!
//! This is the one typed definition of `docs/socket-contract.md` on the host side; the plugin keeps
//! the Go twin in `plugin/server/contract.go`. Every type tolerates unknown fields (serde's default)
//! and missing optional ones, so either side can grow without breaking the other.

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

/// Kind of a Mattermost channel, from its type letter (O, P, D, G).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ChannelKind {
    #[default]
    Public,
    Private,
    Direct,
    Group,
}

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
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub needs_bot_access: bool,
}

impl CommandResponse {
    pub fn ephemeral(text: impl Into<String>) -> Self {
        CommandResponse {
            response_type: "ephemeral".into(),
            text: text.into(),
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
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct PostRequest {
    pub user: User,
    pub channel: Channel,
    pub post: IncomingPost,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct PostResponse {
    pub handled: bool,
    /// When set, the plugin shows this to the poster as an ephemeral message (e.g. a refusal).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub ephemeral_text: String,
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
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct CodexInfo {
    pub path: String,
    pub version: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct QueueInfo {
    pub running: usize,
    pub queued: usize,
    pub max_concurrent_runs: usize,
    pub queue_limit: usize,
}

/// Body of every non-2xx answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
}
