//! Where posts go: the Mattermost REST API v4 as the bot, the terminal for `codex-host run`, or
//! memory for tests.
//!
//! Input: messages already rendered by `render`; output: post ids. The Mattermost client retries
//! 429s (honouring `Retry-After` / `X-Ratelimit-Reset`) and transient failures a bounded number of
//! times, then returns an error that says what the server answered. This module never decides what
//! to say.

mod mattermost;
mod memory;
mod people;
mod terminal;

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use mattermost::{MattermostClient, RUNNER_TOKEN_HEADER};
pub use memory::{Edit, MemoryChat};
pub use terminal::TerminalChat;

/// A Mattermost post, as much of it as the host reads.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Post {
    pub id: String,
    pub channel_id: String,
    pub root_id: String,
    pub user_id: String,
    pub message: String,
    pub props: Value,
    pub file_ids: Vec<String>,
    pub create_at: i64,
    #[serde(rename = "type")]
    pub kind: String,
    pub metadata: Value,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct NewPost {
    pub channel_id: String,
    pub root_id: String,
    pub message: String,
    pub props: Value,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub file_ids: Vec<String>,
}

/// A Mattermost `FileInfo`, as much of it as the host reads.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct FileInfo {
    pub id: String,
    pub name: String,
    pub extension: String,
    pub mime_type: String,
    pub size: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    #[error("the host has no Mattermost connection yet (the plugin has not pushed its config)")]
    NotConfigured,
    #[error("Mattermost answered {status} to {what}: {message}")]
    Status {
        status: u16,
        what: String,
        message: String,
    },
    #[error("could not reach Mattermost for {what}: {source}")]
    Transport {
        what: String,
        source: reqwest::Error,
    },
}

/// The places posts can go. An enum rather than a trait object: there are exactly three, all
/// known here, and async methods stay plain `async fn`.
pub enum Chat {
    Mattermost(MattermostClient),
    Terminal(TerminalChat),
    /// Kept in memory, for tests; posts are made as `bot_user_id`.
    Memory {
        chat: MemoryChat,
        bot_user_id: String,
    },
}

impl Chat {
    /// Creates a post; its own retries never make a second one (see `MattermostClient::create_post`).
    pub async fn create_post(&self, post: NewPost) -> Result<Post, ChatError> {
        match self {
            Chat::Mattermost(c) => c.create_post(&post, None).await,
            Chat::Terminal(t) => Ok(t.create_post(post)),
            Chat::Memory { chat, bot_user_id } => Ok(chat.create_post(post, None, bot_user_id)),
        }
    }

    /// Creates a post with a caller-chosen `pending_post_id`: another create with the same id
    /// within the server's window (30 s) returns this post instead of making a second one.
    pub async fn create_post_once(
        &self,
        post: NewPost,
        pending_post_id: &str,
    ) -> Result<Post, ChatError> {
        match self {
            Chat::Mattermost(c) => c.create_post(&post, Some(pending_post_id)).await,
            Chat::Terminal(t) => Ok(t.create_post(post)),
            Chat::Memory { chat, bot_user_id } => {
                Ok(chat.create_post(post, Some(pending_post_id), bot_user_id))
            }
        }
    }

    /// Replaces a post's message (and props, when given).
    pub async fn update_post(
        &self,
        post_id: &str,
        message: &str,
        props: Option<Value>,
    ) -> Result<(), ChatError> {
        match self {
            Chat::Mattermost(c) => c.patch_post(post_id, message, props).await,
            Chat::Terminal(t) => {
                t.update_post(post_id, message);
                Ok(())
            }
            Chat::Memory { chat, .. } => chat.update_post(post_id, message, props),
        }
    }

    pub async fn post(&self, post_id: &str) -> Result<Post, ChatError> {
        match self {
            Chat::Mattermost(c) => c.post(post_id).await,
            Chat::Terminal(_) => Err(ChatError::NotConfigured),
            Chat::Memory { chat, .. } => chat.post(post_id),
        }
    }

    /// Every post of a thread, oldest first.
    pub async fn thread(&self, root_id: &str) -> Result<Vec<Post>, ChatError> {
        match self {
            Chat::Mattermost(c) => c.thread(root_id).await,
            Chat::Terminal(_) => Ok(Vec::new()),
            Chat::Memory { chat, .. } => Ok(chat.thread(root_id)),
        }
    }

    /// The accounts behind user ids, for labelling a transcript.
    pub async fn users(
        &self,
        ids: &[String],
    ) -> Result<HashMap<String, crate::protocol::User>, ChatError> {
        match self {
            Chat::Mattermost(c) => c.users(ids).await,
            Chat::Terminal(_) => Ok(HashMap::new()),
            Chat::Memory { chat, .. } => Ok(chat.users(ids)),
        }
    }

    /// A file attached to a post: its info, then its bytes when `wanted(info)` says so (the
    /// terminal and memory have no files).
    pub async fn download(
        &self,
        file_id: &str,
        wanted: impl Fn(&FileInfo) -> bool,
    ) -> Result<(FileInfo, Option<Vec<u8>>), ChatError> {
        let Chat::Mattermost(c) = self else {
            return Err(ChatError::NotConfigured);
        };
        let info = c.file_info(file_id).await?;
        if !wanted(&info) {
            return Ok((info, None));
        }
        let bytes = c.file_bytes(file_id).await?;
        Ok((info, Some(bytes)))
    }

    /// The active system admins (none for the terminal).
    pub async fn system_admins(&self) -> Result<Vec<crate::protocol::User>, ChatError> {
        match self {
            Chat::Mattermost(c) => c.system_admins().await,
            Chat::Terminal(_) => Ok(Vec::new()),
            Chat::Memory { chat, .. } => Ok(chat.system_admins()),
        }
    }

    /// The bot's direct channel with `user_id`.
    pub async fn direct_channel(&self, user_id: &str) -> Result<String, ChatError> {
        match self {
            Chat::Mattermost(c) => c.direct_channel(user_id).await,
            Chat::Terminal(_) => Err(ChatError::NotConfigured),
            Chat::Memory { bot_user_id, .. } => Ok(format!("dm:{bot_user_id}:{user_id}")),
        }
    }

    /// Has the plugin (its route `route`) add a user to Allowed users.
    pub async fn grant_access(
        &self,
        route: &str,
        grant: &crate::protocol::AccessGrant,
    ) -> Result<crate::protocol::AccessGranted, ChatError> {
        match self {
            Chat::Mattermost(c) => c.grant_access(route, grant).await,
            Chat::Terminal(_) => Err(ChatError::NotConfigured),
            Chat::Memory { chat, .. } => chat.grant_access(route, grant),
        }
    }

    /// Uploads a file to a channel and returns its file id.
    pub async fn upload_file(
        &self,
        channel_id: &str,
        name: &str,
        bytes: Vec<u8>,
    ) -> Result<String, ChatError> {
        match self {
            Chat::Mattermost(c) => c.upload_file(channel_id, name, bytes).await,
            Chat::Terminal(t) => Ok(t.save_file(name, &bytes)),
            Chat::Memory { chat, .. } => Ok(chat.upload_file(channel_id, name, bytes)),
        }
    }
}
