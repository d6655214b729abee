//! Client of the Mattermost REST API v4, authenticated as the plugin's bot.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::RwLock;
use std::time::Duration;

use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use super::{ChatError, FileInfo, NewPost, Post};
use crate::protocol::User;

const MAX_ATTEMPTS: u32 = 5;
const MAX_WAIT: Duration = Duration::from_secs(10);

#[derive(Clone)]
pub(super) struct Target {
    /// The server's URL, for the plugin's own routes (`/plugins/<id>/...`).
    pub(super) server: String,
    /// `<server>/api/v4`.
    base: String,
    token: String,
    pub(super) bot_user_id: String,
}

/// A user as the REST API sends one.
#[derive(serde::Deserialize)]
pub(super) struct UserWire {
    id: String,
    username: String,
    #[serde(default)]
    roles: String,
    #[serde(default)]
    is_bot: bool,
}

impl UserWire {
    pub(super) fn into_user(self) -> User {
        User {
            roles: self.roles.split_whitespace().map(String::from).collect(),
            id: self.id,
            username: self.username,
            is_bot: self.is_bot,
        }
    }
}

pub struct MattermostClient {
    http: reqwest::Client,
    target: RwLock<Option<Target>>,
    /// `codex-host connect`: calls go through the plugin's relay (`/plugins/<id>/runner/v1/mm`)
    /// with the runner's token in [`RUNNER_TOKEN_HEADER`], never with the bot's token.
    relay: Option<String>,
    /// The millisecond of the last generated `pending_post_id`; strictly increasing, so two
    /// creates in the same millisecond never share one (the server would answer the second with
    /// the first's post).
    last_pending_ms: AtomicI64,
}

/// A create as sent: the post plus the `pending_post_id` the server de-duplicates retries on.
#[derive(serde::Serialize)]
struct CreateBody<'a> {
    #[serde(flatten)]
    post: &'a NewPost,
    pending_post_id: &'a str,
}

impl Default for MattermostClient {
    fn default() -> Self {
        Self::new()
    }
}

/// The header a remote runner's token travels in (`Authorization` would be tried as a session).
pub const RUNNER_TOKEN_HEADER: &str = "X-Codex-Runner-Token";

impl MattermostClient {
    /// A client whose calls go through the plugin `plugin_id`'s relay, as a remote runner's do;
    /// `configure` then takes the server's URL and the runner's token.
    pub fn through_plugin(plugin_id: &str) -> Self {
        MattermostClient {
            relay: Some(format!("/plugins/{plugin_id}/runner/v1/mm")),
            ..Self::new()
        }
    }

    pub fn new() -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .user_agent(concat!("codex-host/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("building the HTTP client");
        MattermostClient {
            http,
            target: RwLock::new(None),
            relay: None,
            last_pending_ms: AtomicI64::new(0),
        }
    }

    /// Points the client at a server and bot token (from `PUT /v1/config`).
    pub fn configure(&self, url: &str, token: &str, bot_user_id: &str) {
        let server = url.trim_end_matches('/').to_string();
        let target = Target {
            base: format!("{server}{}/api/v4", self.relay.as_deref().unwrap_or("")),
            server,
            token: token.to_string(),
            bot_user_id: bot_user_id.to_string(),
        };
        *self.target.write().unwrap_or_else(|p| p.into_inner()) = Some(target);
    }

    pub(super) fn target(&self) -> Option<Target> {
        self.target
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn is_configured(&self) -> bool {
        self.target
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    }

    /// Creates a post. Every attempt of this create (`send` retries 5xx, 429 and unreachable
    /// servers) carries the same `pending_post_id`, so when an attempt was saved but its answer
    /// lost, the server answers the retry with that post instead of saving a second one. The
    /// caller passes one to de-duplicate across separate creates too (an outcome re-sent after a
    /// restart); otherwise a fresh one in the web app's format, `<user id>:<millis>`, is used.
    pub async fn create_post(
        &self,
        post: &NewPost,
        pending_post_id: Option<&str>,
    ) -> Result<Post, ChatError> {
        let fresh;
        let pending_post_id = match pending_post_id {
            Some(p) => p,
            None => {
                fresh = self.fresh_pending_post_id();
                &fresh
            }
        };
        let body = CreateBody {
            post,
            pending_post_id,
        };
        self.json(Method::POST, "/posts", "creating a post", |r| r.json(&body))
            .await
    }

    fn fresh_pending_post_id(&self) -> String {
        let bot = self
            .target
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|t| t.bot_user_id.clone())
            .unwrap_or_default();
        let now = chrono::Utc::now().timestamp_millis();
        let next = |last: i64| now.max(last + 1);
        let last = self
            .last_pending_ms
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |l| Some(next(l)))
            .unwrap_or_else(|l| l);
        format!("{bot}:{}", next(last))
    }

    pub async fn patch_post(
        &self,
        post_id: &str,
        message: &str,
        props: Option<Value>,
    ) -> Result<(), ChatError> {
        let mut body = json!({ "message": message });
        if let Some(p) = props {
            body["props"] = p;
        }
        let _: Value = self
            .json(
                Method::PUT,
                &format!("/posts/{post_id}/patch"),
                "updating a post",
                |r| r.json(&body),
            )
            .await?;
        Ok(())
    }

    pub async fn post(&self, post_id: &str) -> Result<Post, ChatError> {
        self.json(
            Method::GET,
            &format!("/posts/{post_id}"),
            "reading a post",
            |r| r,
        )
        .await
    }

    pub async fn thread(&self, root_id: &str) -> Result<Vec<Post>, ChatError> {
        #[derive(serde::Deserialize)]
        struct PostList {
            #[serde(default)]
            posts: HashMap<String, Post>,
        }
        let list: PostList = self
            .json(
                Method::GET,
                &format!("/posts/{root_id}/thread"),
                "reading a thread",
                |r| r,
            )
            .await?;
        let mut posts: Vec<Post> = list.posts.into_values().collect();
        posts.sort_by(|a, b| a.create_at.cmp(&b.create_at).then_with(|| a.id.cmp(&b.id)));
        Ok(posts)
    }

    /// The accounts behind `ids` (username, roles, bot or not); ids the server does not know are
    /// left out.
    pub async fn users(&self, ids: &[String]) -> Result<HashMap<String, User>, ChatError> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let users: Vec<UserWire> = self
            .json(Method::POST, "/users/ids", "looking up users", |r| {
                r.json(ids)
            })
            .await?;
        Ok(users
            .into_iter()
            .map(|u| (u.id.clone(), u.into_user()))
            .collect())
    }

    pub async fn upload_file(
        &self,
        channel_id: &str,
        name: &str,
        bytes: Vec<u8>,
    ) -> Result<String, ChatError> {
        #[derive(serde::Deserialize)]
        struct Uploaded {
            file_infos: Vec<Info>,
        }
        #[derive(serde::Deserialize)]
        struct Info {
            id: String,
        }
        let (channel_id, name) = (channel_id.to_string(), name.to_string());
        let up: Uploaded = self
            .json(Method::POST, "/files", "uploading a file", move |r| {
                let part = reqwest::multipart::Part::bytes(bytes.clone()).file_name(name.clone());
                r.multipart(
                    reqwest::multipart::Form::new()
                        .text("channel_id", channel_id.clone())
                        .part("files", part),
                )
            })
            .await?;
        up.file_infos
            .into_iter()
            .next()
            .map(|f| f.id)
            .ok_or_else(|| ChatError::Status {
                status: 201,
                what: "uploading a file".into(),
                message: "the server returned no file info".into(),
            })
    }

    /// What Mattermost knows of an uploaded file (name, type, size).
    pub async fn file_info(&self, file_id: &str) -> Result<FileInfo, ChatError> {
        self.json(
            Method::GET,
            &format!("/files/{file_id}/info"),
            "reading a file's info",
            |r| r,
        )
        .await
    }

    /// The bytes of an uploaded file.
    pub async fn file_bytes(&self, file_id: &str) -> Result<Vec<u8>, ChatError> {
        let what = "downloading a file";
        let resp = self
            .send(Method::GET, &format!("/files/{file_id}"), what, |r| r)
            .await?;
        let bytes = resp.bytes().await.map_err(|source| ChatError::Transport {
            what: what.into(),
            source,
        })?;
        Ok(bytes.to_vec())
    }

    /// Sends a request built by `build` (called again for each attempt) and decodes the JSON answer.
    pub(super) async fn json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        what: &str,
        build: impl Fn(RequestBuilder) -> RequestBuilder,
    ) -> Result<T, ChatError> {
        let resp = self.send(method, path, what, build).await?;
        resp.json::<T>()
            .await
            .map_err(|source| ChatError::Transport {
                what: what.into(),
                source,
            })
    }

    /// Sends a request built by `build` (called again for each attempt), retrying 429s, server
    /// errors and unreachable servers a bounded number of times; returns the successful response.
    pub(super) async fn send(
        &self,
        method: Method,
        path: &str,
        what: &str,
        build: impl Fn(RequestBuilder) -> RequestBuilder,
    ) -> Result<Response, ChatError> {
        let target = self
            .target
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or(ChatError::NotConfigured)?;
        // The plugin's own routes are not part of the REST API.
        let url = if path.starts_with("/plugins/") {
            format!("{}{}", target.server, path)
        } else {
            format!("{}{}", target.base, path)
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            let req = self.http.request(method.clone(), &url);
            let req = build(match self.relay {
                Some(_) => req.header(RUNNER_TOKEN_HEADER, &target.token),
                None => req.bearer_auth(&target.token),
            });
            let wait = match req.send().await {
                Ok(resp) if resp.status().is_success() => return Ok(resp),
                Ok(resp) => {
                    let status = resp.status();
                    let retry = retry_wait(&resp, attempt);
                    if attempt >= MAX_ATTEMPTS
                        || !(status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error())
                    {
                        return Err(status_error(resp, what).await);
                    }
                    tracing::warn!(%status, attempt, ?retry, "Mattermost asked to retry {what}");
                    retry
                }
                Err(source) => {
                    if attempt >= MAX_ATTEMPTS || source.is_builder() {
                        return Err(ChatError::Transport {
                            what: what.into(),
                            source,
                        });
                    }
                    tracing::warn!(error = %source, attempt, "Mattermost unreachable while {what}; retrying");
                    backoff(attempt)
                }
            };
            tokio::time::sleep(wait).await;
        }
    }
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(200 * 2u64.pow(attempt.saturating_sub(1).min(5))).min(MAX_WAIT)
}

fn retry_wait(resp: &Response, attempt: u32) -> Duration {
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
    };
    match header("retry-after").or_else(|| header("x-ratelimit-reset")) {
        Some(secs) if secs >= 0.0 => Duration::from_secs_f64(secs).min(MAX_WAIT),
        _ => backoff(attempt),
    }
}

async fn status_error(resp: Response, what: &str) -> ChatError {
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    let message = serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|v| v.get("message").and_then(Value::as_str).map(String::from))
        .unwrap_or_else(|| text.chars().take(300).collect());
    ChatError::Status {
        status,
        what: what.into(),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_pending_post_ids_follow_the_web_app_and_never_repeat() {
        let c = MattermostClient::new();
        c.configure("http://mm.example", "token", "bot1bot1bot1bot1bot1bot1bo");
        let ids: Vec<String> = (0..100).map(|_| c.fresh_pending_post_id()).collect();
        let mut unique = ids.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(
            unique.len(),
            ids.len(),
            "two creates in one millisecond must not share a pending id"
        );
        let (user, millis) = ids[0].split_once(':').unwrap();
        assert_eq!(user, "bot1bot1bot1bot1bot1bot1bo");
        assert!(millis.parse::<i64>().unwrap() > 1_600_000_000_000);
    }
}
