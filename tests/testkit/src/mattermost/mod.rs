//! A fake Mattermost server: the REST API v4 endpoints `codex-host` uses as its bot, answering
//! with the real server's paths, JSON shapes, status codes and `AppError` bodies, plus `/_test/`
//! endpoints (not in Mattermost) for tests to seed users and posts, read everything back and
//! inject faults. State and its rules live in `state`, wire shapes in `model`; this file is HTTP.
//!
//! API (bot token as `Authorization: Bearer <token>`; anything else → 401 session expired):
//! `POST /api/v4/posts`, `PUT /api/v4/posts/{id}/patch`, `GET /api/v4/posts/{id}`,
//! `GET /api/v4/posts/{id}/thread`, `POST /api/v4/files`, `POST /api/v4/users/ids`,
//! `GET /api/v4/users/me`, `GET /api/v4/users/{id}`.
//!
//! Test control (no auth): `POST /_test/users`, `POST /_test/posts`, `GET /_test/posts`,
//! `GET /_test/files/{id}`, `POST /_test/faults`, `DELETE /_test/faults`,
//! `POST /_test/pending_post_ids/expire`, `GET /_test/requests`.

pub mod model;
mod state;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use hyper::{Method, Request, StatusCode};
use serde_json::{json, Value};

pub use model::{AppError, FileInfo, Post, PostList, PostPatch, User};
use state::ApiError;
pub use state::{
    Fault, MattermostState, NewPost, NewUser, PostVersion, RecordedRequest, StoredFile, TestPost,
    PENDING_POST_ID_TTL,
};

use crate::server::{self, Handler, Recorded, Running};

/// Who the bot is. The token is what `codex-host` must send.
#[derive(Debug, Clone)]
pub struct MattermostConfig {
    pub bot_user_id: String,
    pub bot_username: String,
    pub bot_token: String,
}

impl Default for MattermostConfig {
    fn default() -> Self {
        Self {
            bot_user_id: model::new_id(),
            bot_username: "codex".into(),
            bot_token: model::new_id(),
        }
    }
}

/// A running fake Mattermost. Dropping it stops the server.
pub struct FakeMattermost {
    running: Running,
    inner: Arc<Inner>,
}

struct Inner {
    state: Recorded<MattermostState>,
}

impl FakeMattermost {
    /// Starts on `127.0.0.1` with a free port.
    pub async fn start(config: MattermostConfig) -> anyhow::Result<Self> {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), config).await
    }

    pub async fn start_on(addr: SocketAddr, config: MattermostConfig) -> anyhow::Result<Self> {
        let state = MattermostState::new(config.bot_user_id, config.bot_username, config.bot_token);
        let inner = Arc::new(Inner {
            state: Recorded::new(state),
        });
        let running = Running::bind(addr, inner.clone()).await?;
        Ok(Self { running, inner })
    }

    pub fn addr(&self) -> SocketAddr {
        self.running.addr()
    }

    /// The site URL, e.g. `http://127.0.0.1:PORT` (the API is under `/api/v4`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr())
    }

    pub fn bot(&self) -> User {
        self.inner.state.read(|s| s.bot.clone())
    }

    pub fn bot_token(&self) -> String {
        self.inner.state.read(|s| s.bot_token.clone())
    }

    pub fn add_user(&self, user: NewUser) -> User {
        self.inner.state.update(|s| s.add_user(user))
    }

    /// A post by someone other than the bot (`user_id` required), as if typed in a client.
    pub fn inject_post(&self, post: NewPost) -> anyhow::Result<Post> {
        let request = serde_json::to_value(&post)?;
        let user_id = post.user_id.clone();
        self.inner
            .state
            .update(|s| s.create_post(&user_id, post, request))
            .map_err(|e| anyhow::anyhow!("{} ({}): {}", e.status, e.id, e.message))
    }

    /// A file uploaded by someone other than the bot, to attach to an injected post by id.
    pub fn inject_file(
        &self,
        user_id: &str,
        channel_id: &str,
        name: &str,
        bytes: &[u8],
    ) -> FileInfo {
        let bytes = Bytes::copy_from_slice(bytes);
        self.inner
            .state
            .update(|s| s.upload(user_id, channel_id, name, bytes))
    }

    pub fn inject_fault(&self, fault: Fault) {
        self.inner.state.update(|s| s.faults.push(fault));
    }

    /// Drops every fault not yet used up: the server is healthy again.
    pub fn clear_faults(&self) {
        self.inner.state.update(|s| s.faults.clear());
    }

    /// Forgets every `pending_post_id` seen so far, as if their 30 s had passed.
    pub fn expire_pending_post_ids(&self) {
        self.inner.state.update(|s| s.expire_pending_post_ids());
    }

    /// Reads the current state (posts, files, users, request log) in one consistent view.
    pub fn read<R>(&self, f: impl FnOnce(&MattermostState) -> R) -> R {
        self.inner.state.read(f)
    }

    pub fn posts(&self) -> Vec<TestPost> {
        self.read(|s| s.posts.clone())
    }

    pub fn file(&self, id: &str) -> Option<StoredFile> {
        self.read(|s| s.file(id).cloned())
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.read(|s| s.requests.clone())
    }

    /// Waits until `probe` returns `Some`, re-checking after every recorded change.
    pub async fn wait_for<R>(
        &self,
        probe: impl FnMut(&MattermostState) -> Option<R>,
        timeout: Duration,
    ) -> anyhow::Result<R> {
        self.inner.state.wait_for(probe, timeout).await
    }
}

impl Handler for Inner {
    async fn handle(self: Arc<Self>, req: Request<Incoming>) -> server::Response {
        let request_id = model::new_id();
        let method = req.method().clone();
        let path = req.uri().path().to_owned();
        let path_and_query = req
            .uri()
            .path_and_query()
            .map_or(path.clone(), |p| p.to_string());
        let mut response = if path.starts_with("/_test/") {
            self.test_control(req, &path).await
        } else {
            let response = self.api(req, &method, &path, &request_id).await;
            let status = response.status().as_u16();
            self.state.update(|s| {
                s.requests.push(RecordedRequest {
                    method: method.to_string(),
                    path: path_and_query,
                    status,
                })
            });
            response
        };
        if let Ok(value) = HeaderValue::from_str(&request_id) {
            response.headers_mut().insert("X-Request-Id", value);
        }
        response
    }
}

impl Inner {
    async fn api(
        &self,
        req: Request<Incoming>,
        method: &Method,
        path: &str,
        request_id: &str,
    ) -> server::Response {
        // Rate limiting and other injected faults come before authentication, as on the server;
        // an `after` fault lets the request take effect and then answers in its place.
        let fault = self.state.update(|s| s.take_fault(method.as_str(), path));
        match fault {
            Some(f) if f.after => {
                let _ = self.serve(req, method, path, request_id).await;
                fault_response(f.status, request_id)
            }
            Some(f) => fault_response(f.status, request_id),
            None => self.serve(req, method, path, request_id).await,
        }
    }

    async fn serve(
        &self,
        req: Request<Incoming>,
        method: &Method,
        path: &str,
        request_id: &str,
    ) -> server::Response {
        let token = bearer_token(&req);
        let Some(user_id) = self
            .state
            .read(|s| (token.as_deref() == Some(s.bot_token.as_str())).then(|| s.bot.id.clone()))
        else {
            return app_error(
                &ApiError {
                    status: 401,
                    id: "api.context.session_expired.app_error",
                    message: "Invalid or expired session, please login again.".into(),
                },
                request_id,
            );
        };
        let segments: Vec<&str> = path.trim_start_matches("/api/v4/").split('/').collect();
        let result = match (method, segments.as_slice()) {
            (&Method::POST, ["posts"]) => {
                let (_, body) = server::read_body(req).await;
                self.create_post(&user_id, &body)
            }
            (&Method::PUT, ["posts", id, "patch"]) => {
                let (_, body) = server::read_body(req).await;
                self.patch_post(&user_id, id, &body)
            }
            (&Method::GET, ["posts", id]) => self.state.read(|s| {
                let post = s.post(id).ok_or_else(ApiError::post_not_found)?;
                Ok((StatusCode::OK, json!(s.render(post.post.clone()))))
            }),
            (&Method::GET, ["posts", id, "thread"]) => self
                .state
                .read(|s| s.thread_list(id))
                .map(|list| (StatusCode::OK, json!(list))),
            (&Method::POST, ["files"]) => self.upload(&user_id, req).await,
            (&Method::GET, ["files", id, "info"]) => self.state.read(|s| {
                s.readable_file(&user_id, id)
                    .map(|f| (StatusCode::OK, json!(f.info)))
            }),
            (&Method::GET, ["files", id]) => {
                return match self.state.read(|s| s.readable_file(&user_id, id).cloned()) {
                    Ok(file) => server::respond(StatusCode::OK, &file.info.mime_type, file.bytes),
                    Err(error) => app_error(&error, request_id),
                };
            }
            (&Method::POST, ["users", "ids"]) => {
                let (_, body) = server::read_body(req).await;
                self.users_by_ids(&body)
            }
            (&Method::GET, ["users", "me"]) => {
                Ok((StatusCode::OK, json!(self.state.read(|s| s.bot.clone()))))
            }
            (&Method::GET, ["users", id]) => self.state.read(|s| match s.user(id) {
                Some(user) => Ok((StatusCode::OK, json!(user))),
                None => Err(ApiError {
                    status: 404,
                    id: "app.user.missing_account.const",
                    message: "Unable to find the user.".into(),
                }),
            }),
            _ => Err(ApiError {
                status: 404,
                id: "api.context.404.app_error",
                message: "Sorry, we could not find the page.".into(),
            }),
        };
        match result {
            Ok((status, body)) => server::json(status, &body),
            Err(error) => app_error(&error, request_id),
        }
    }

    fn create_post(&self, user_id: &str, body: &Bytes) -> Result<(StatusCode, Value), ApiError> {
        let request: Value =
            serde_json::from_slice(body).map_err(|_| ApiError::invalid_param("post"))?;
        let new: NewPost =
            serde_json::from_value(request.clone()).map_err(|_| ApiError::invalid_param("post"))?;
        let post = self
            .state
            .update(|s| s.create_post_deduplicated(user_id, new, request))?;
        Ok((StatusCode::CREATED, json!(post)))
    }

    fn patch_post(
        &self,
        user_id: &str,
        id: &str,
        body: &Bytes,
    ) -> Result<(StatusCode, Value), ApiError> {
        let request: Value =
            serde_json::from_slice(body).map_err(|_| ApiError::invalid_param("post"))?;
        let patch: PostPatch =
            serde_json::from_value(request.clone()).map_err(|_| ApiError::invalid_param("post"))?;
        let post = self
            .state
            .update(|s| s.patch_post(user_id, id, patch, request))?;
        Ok((StatusCode::OK, json!(post)))
    }

    fn users_by_ids(&self, body: &Bytes) -> Result<(StatusCode, Value), ApiError> {
        let ids: Vec<String> =
            serde_json::from_slice(body).map_err(|_| ApiError::invalid_param("user_ids"))?;
        if ids.is_empty() {
            return Err(ApiError::invalid_param("user_ids"));
        }
        let users: Vec<User> = self
            .state
            .read(|s| ids.iter().filter_map(|id| s.user(id).cloned()).collect());
        Ok((StatusCode::OK, json!(users)))
    }

    /// `POST /api/v4/files`: multipart with `channel_id` before the `files` parts (as the real
    /// server requires when streaming), or a raw body with `?channel_id=&filename=`.
    async fn upload(
        &self,
        user_id: &str,
        req: Request<Incoming>,
    ) -> Result<(StatusCode, Value), ApiError> {
        let query: Vec<(String, String)> = req
            .uri()
            .query()
            .map(|q| {
                q.split('&')
                    .filter_map(|kv| kv.split_once('='))
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect()
            })
            .unwrap_or_default();
        let query_param = |name: &str| {
            query
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        let content_type = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let (_, body) = server::read_body(req).await;

        let mut channel_id = query_param("channel_id").unwrap_or_default();
        let mut infos = Vec::new();
        let mut client_ids = Vec::new();
        if let Ok(boundary) = multer::parse_boundary(&content_type) {
            let stream =
                futures_util::stream::once(async move { Ok::<_, std::convert::Infallible>(body) });
            let mut multipart = multer::Multipart::new(stream, boundary);
            let bad = || ApiError {
                status: 400,
                id: "api.file.upload_file.read_request.app_error",
                message: "Unable to upload file(s). Error reading or parsing request data.".into(),
            };
            while let Some(field) = multipart.next_field().await.map_err(|_| bad())? {
                match field.name().unwrap_or("") {
                    "channel_id" => channel_id = field.text().await.map_err(|_| bad())?,
                    "client_ids" => client_ids.push(field.text().await.map_err(|_| bad())?),
                    "files" => {
                        if channel_id.is_empty() {
                            return Err(ApiError::invalid_param("channel_id"));
                        }
                        let name = field.file_name().unwrap_or("file").to_owned();
                        let bytes = field.bytes().await.map_err(|_| bad())?;
                        infos.push(
                            self.state
                                .update(|s| s.upload(user_id, &channel_id, &name, bytes)),
                        );
                    }
                    _ => {}
                }
            }
        } else {
            let name =
                query_param("filename").ok_or_else(|| ApiError::invalid_param("filename"))?;
            if channel_id.is_empty() {
                return Err(ApiError::invalid_param("channel_id"));
            }
            infos.push(
                self.state
                    .update(|s| s.upload(user_id, &channel_id, &name, body)),
            );
        }
        if infos.is_empty() {
            return Err(ApiError {
                status: 400,
                id: "api.file.upload_file.incorrect_number_of_files.app_error",
                message: "Unable to upload files. Incorrect number of files specified.".into(),
            });
        }
        Ok((
            StatusCode::CREATED,
            json!({ "file_infos": infos, "client_ids": client_ids }),
        ))
    }

    async fn test_control(&self, req: Request<Incoming>, path: &str) -> server::Response {
        let method = req.method().clone();
        let (_, body) = server::read_body(req).await;
        let bad_request = |e: serde_json::Error| {
            server::json(StatusCode::BAD_REQUEST, &json!({ "error": e.to_string() }))
        };
        match (method, path) {
            (Method::POST, "/_test/users") => match serde_json::from_slice::<NewUser>(&body) {
                Ok(new) => {
                    server::json(StatusCode::CREATED, &self.state.update(|s| s.add_user(new)))
                }
                Err(e) => bad_request(e),
            },
            (Method::POST, "/_test/posts") => {
                let parsed = serde_json::from_slice::<Value>(&body)
                    .and_then(|v| serde_json::from_value::<NewPost>(v.clone()).map(|p| (v, p)));
                match parsed {
                    Ok((request, new)) => {
                        let user_id = new.user_id.clone();
                        match self.state.update(|s| s.create_post(&user_id, new, request)) {
                            Ok(post) => server::json(StatusCode::CREATED, &post),
                            Err(e) => server::json(
                                StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST),
                                &json!({ "error": e.message, "id": e.id }),
                            ),
                        }
                    }
                    Err(e) => bad_request(e),
                }
            }
            (Method::GET, "/_test/posts") => {
                server::json(StatusCode::OK, &self.state.read(|s| s.posts.clone()))
            }
            (Method::GET, "/_test/requests") => {
                server::json(StatusCode::OK, &self.state.read(|s| s.requests.clone()))
            }
            (Method::POST, "/_test/faults") => match serde_json::from_slice::<Fault>(&body) {
                Ok(fault) => {
                    self.state.update(|s| s.faults.push(fault));
                    server::json(StatusCode::OK, &json!({ "ok": true }))
                }
                Err(e) => bad_request(e),
            },
            (Method::DELETE, "/_test/faults") => {
                self.state.update(|s| s.faults.clear());
                server::json(StatusCode::OK, &json!({ "ok": true }))
            }
            (Method::POST, "/_test/pending_post_ids/expire") => {
                self.state.update(|s| s.expire_pending_post_ids());
                server::json(StatusCode::OK, &json!({ "ok": true }))
            }
            (Method::GET, p) if p.starts_with("/_test/files/") => {
                let id = &p["/_test/files/".len()..];
                match self.state.read(|s| s.file(id).cloned()) {
                    Some(file) => {
                        let content_type = if file.info.mime_type.is_empty() {
                            "application/octet-stream"
                        } else {
                            &file.info.mime_type
                        };
                        server::respond(StatusCode::OK, content_type, file.bytes)
                    }
                    None => server::json(
                        StatusCode::NOT_FOUND,
                        &json!({ "error": format!("no file {id}") }),
                    ),
                }
            }
            (method, _) => server::json(
                StatusCode::NOT_FOUND,
                &json!({ "error": format!("no test route {method} {path}") }),
            ),
        }
    }
}

/// `Authorization: Bearer <t>` or `Token <t>` (either case), as the server accepts.
fn bearer_token(req: &Request<Incoming>) -> Option<String> {
    let value = req.headers().get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("token"))
        .then(|| token.trim().to_owned())
}

fn app_error(error: &ApiError, request_id: &str) -> server::Response {
    let body = AppError {
        id: error.id.to_owned(),
        message: error.message.clone(),
        detailed_error: String::new(),
        request_id: request_id.to_owned(),
        status_code: error.status,
    };
    server::json(
        StatusCode::from_u16(error.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        &body,
    )
}

/// An injected failure. 429 is exactly what the server's rate limiter writes (plain-text body,
/// `X-Ratelimit-*` and `Retry-After` headers); anything else is an `AppError`.
fn fault_response(status: u16, request_id: &str) -> server::Response {
    if status == 429 {
        let mut response = server::respond(
            StatusCode::TOO_MANY_REQUESTS,
            "text/plain; charset=utf-8",
            "limit exceeded\n",
        );
        let headers = response.headers_mut();
        for (name, value) in [
            ("X-Content-Type-Options", "nosniff"),
            ("X-Ratelimit-Limit", "10"),
            ("X-Ratelimit-Remaining", "0"),
            ("X-Ratelimit-Reset", "1"),
            ("Retry-After", "1"),
        ] {
            headers.insert(name, HeaderValue::from_static(value));
        }
        return response;
    }
    let error = ApiError {
        status,
        id: "testkit.fault_injected.app_error",
        message: format!("Fault injected by the test (status {status})."),
    };
    app_error(&error, request_id)
}
