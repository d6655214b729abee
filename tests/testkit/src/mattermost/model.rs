//! Mattermost's wire shapes, field for field as the server serialises them (`server/public/model`:
//! `Post`, `PostPatch`, `PostList`, `FileInfo`, `User`, `AppError`), and its id format. Data only.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `model.PostMessageMaxRunesV2`: longer messages are refused with 400.
pub const POST_MESSAGE_MAX_RUNES: usize = 16383;
/// `model.PostFileidsMaxRunes`: the JSON array of file ids may not be longer (about 10 ids).
pub const POST_FILE_IDS_MAX_RUNES: usize = 300;

/// Like `model.NewId`: a random UUID in z-base-32 without padding, 26 lowercase characters.
pub fn new_id() -> String {
    const ALPHABET: &[u8; 32] = b"ybndrfg8ejkmcpqxot1uwisza345h769";
    let bytes = uuid::Uuid::new_v4().into_bytes();
    let mut out = String::with_capacity(26);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((buffer >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    out
}

pub fn millis_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// `model.Post` as the API returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Post {
    pub id: String,
    pub create_at: i64,
    pub update_at: i64,
    pub edit_at: i64,
    pub delete_at: i64,
    pub is_pinned: bool,
    pub user_id: String,
    pub channel_id: String,
    pub root_id: String,
    pub original_id: String,
    pub message: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub props: Map<String, Value>,
    pub hashtags: String,
    pub file_ids: Vec<String>,
    pub pending_post_id: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub has_reactions: bool,
    pub reply_count: i64,
    pub last_reply_at: i64,
    pub participants: Option<Vec<Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
}

/// `model.PostPatch`: every field optional; absent means unchanged.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PostPatch {
    #[serde(default)]
    pub is_pinned: Option<bool>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub props: Option<Map<String, Value>>,
    #[serde(default)]
    pub file_ids: Option<Vec<String>>,
    #[serde(default)]
    pub has_reactions: Option<bool>,
}

/// `model.PostList`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PostList {
    pub order: Vec<String>,
    pub posts: BTreeMap<String, Post>,
    pub next_post_id: String,
    pub prev_post_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub has_next: Option<bool>,
    pub first_inaccessible_post_time: i64,
}

/// `model.FileInfo` (server-only fields such as `path` are never sent, as on the real server).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileInfo {
    pub id: String,
    pub user_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub post_id: String,
    pub channel_id: String,
    pub create_at: i64,
    pub update_at: i64,
    pub delete_at: i64,
    pub name: String,
    pub extension: String,
    pub size: i64,
    pub mime_type: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub has_preview_image: bool,
    pub mini_preview: Option<Value>,
    pub remote_id: Option<String>,
    pub archived: bool,
}

/// `model.User` as other users see it (sanitised: no password, auth data or notify props).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub id: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub create_at: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub update_at: i64,
    pub delete_at: i64,
    pub username: String,
    pub auth_service: String,
    pub email: String,
    pub nickname: String,
    pub first_name: String,
    pub last_name: String,
    pub position: String,
    /// Space-separated, e.g. `"system_user system_admin"`.
    pub roles: String,
    pub locale: String,
    pub timezone: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub is_bot: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub bot_description: String,
    pub disable_welcome_email: bool,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

impl User {
    pub fn new(id: String, username: String, roles: String, is_bot: bool, now: i64) -> Self {
        let timezone = [
            ("automaticTimezone", ""),
            ("manualTimezone", ""),
            ("useAutomaticTimezone", "true"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        Self {
            email: if is_bot {
                String::new()
            } else {
                format!("{username}@example.com")
            },
            bot_description: if is_bot {
                "Codex for Mattermost".into()
            } else {
                String::new()
            },
            id,
            create_at: now,
            update_at: now,
            delete_at: 0,
            username,
            auth_service: String::new(),
            nickname: String::new(),
            first_name: String::new(),
            last_name: String::new(),
            position: String::new(),
            roles,
            locale: "en".into(),
            timezone,
            is_bot,
            disable_welcome_email: false,
        }
    }
}

/// `model.AppError`, the body of every error the API returns (except the rate limiter's 429).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppError {
    pub id: String,
    pub message: String,
    pub detailed_error: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub request_id: String,
    #[serde(default)]
    pub status_code: u16,
}
