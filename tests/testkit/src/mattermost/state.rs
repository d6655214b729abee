//! Everything the fake Mattermost knows: users, posts with their full edit history, uploaded
//! files with their bytes, the request log and pending injected faults — and the server rules
//! that apply to them (validation, attaching files, reply counts, thread order). No HTTP here.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::model::{
    new_id, FileInfo, Post, PostList, PostPatch, User, POST_FILE_IDS_MAX_RUNES,
    POST_MESSAGE_MAX_RUNES,
};

/// Everything recorded so far; what `wait_for` predicates look at.
pub struct MattermostState {
    pub bot: User,
    pub(crate) bot_token: String,
    /// The bot first, then users in the order they were added.
    pub users: Vec<User>,
    /// Every post in creation order, with its history.
    pub posts: Vec<TestPost>,
    pub files: Vec<StoredFile>,
    /// Every `/api/v4` request in arrival order, with the status it got.
    pub requests: Vec<RecordedRequest>,
    pub(crate) faults: Vec<Fault>,
    /// `pending_post_id` → the post created with it, until it expires (the server's
    /// `seenPendingPostIdsCache`).
    pending_post_ids: HashMap<String, (String, Instant)>,
    last_millis: i64,
}

/// A post as it is now plus every version it went through.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestPost {
    pub post: Post,
    pub history: Vec<PostVersion>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PostVersion {
    /// `create` (through the API or `/_test/posts`) or `patch`.
    pub change: String,
    /// The request body that made this version.
    pub request: Value,
    /// The post right after this change.
    pub post: Post,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StoredFile {
    pub info: FileInfo,
    pub bytes: Bytes,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedRequest {
    pub method: String,
    /// Path and query, e.g. `/api/v4/posts/abc/patch`.
    pub path: String,
    pub status: u16,
}

/// The next `count` requests whose path starts with `path_prefix` (and whose method matches, if
/// given) get `status` instead of being served. A 429 looks like Mattermost's rate limiter.
///
/// With `after`, the request is served first — a post is saved, a patch applied — and only then
/// answered with `status`, as when a proxy times out on a slow server that finished the work.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fault {
    pub status: u16,
    #[serde(default = "one")]
    pub count: u32,
    #[serde(default)]
    pub path_prefix: String,
    #[serde(default)]
    pub method: Option<String>,
    #[serde(default)]
    pub after: bool,
}

/// `app.PendingPostIDsCacheTTL`: how long the server remembers a `pending_post_id`.
pub const PENDING_POST_ID_TTL: Duration = Duration::from_secs(30);

fn one() -> u32 {
    1
}

/// A user to add; a Mattermost-style id is generated when `id` is absent.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NewUser {
    #[serde(default)]
    pub id: Option<String>,
    pub username: String,
    /// `["system_user"]` when empty.
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub is_bot: bool,
}

/// A post body as `POST /api/v4/posts` and `POST /_test/posts` accept it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NewPost {
    /// Only read by `/_test/posts`; the API takes the author from the session.
    #[serde(default)]
    pub user_id: String,
    #[serde(default)]
    pub channel_id: String,
    #[serde(default)]
    pub root_id: String,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub props: Map<String, Value>,
    #[serde(default)]
    pub file_ids: Vec<String>,
    #[serde(default, rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub pending_post_id: String,
}

/// An API failure, rendered as Mattermost's `AppError` JSON.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ApiError {
    pub status: u16,
    pub id: &'static str,
    pub message: String,
}

impl ApiError {
    fn new(status: u16, id: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            id,
            message: message.into(),
        }
    }

    pub(crate) fn invalid_param(name: &str) -> Self {
        Self::new(
            400,
            "api.context.invalid_body_param.app_error",
            format!("Invalid or missing {name} in request body."),
        )
    }

    pub(crate) fn post_not_found() -> Self {
        Self::new(404, "app.post.get.app_error", "Unable to get the post.")
    }

    /// What the server answers when the session may not do this — including, as the real
    /// `patchPost` does, for a post id that does not exist.
    pub(crate) fn forbidden() -> Self {
        Self::new(
            403,
            "api.context.permissions.app_error",
            "You do not have the appropriate permissions.",
        )
    }
}

impl MattermostState {
    pub(crate) fn new(bot_user_id: String, bot_username: String, bot_token: String) -> Self {
        let mut state = Self {
            bot: User::new(String::new(), String::new(), String::new(), true, 0),
            bot_token,
            users: Vec::new(),
            posts: Vec::new(),
            files: Vec::new(),
            requests: Vec::new(),
            faults: Vec::new(),
            pending_post_ids: HashMap::new(),
            last_millis: 0,
        };
        let now = state.tick();
        state.bot = User::new(bot_user_id, bot_username, "system_user".into(), true, now);
        state.users.push(state.bot.clone());
        state
    }

    pub fn user(&self, id: &str) -> Option<&User> {
        self.users.iter().find(|u| u.id == id)
    }

    pub fn post(&self, id: &str) -> Option<&TestPost> {
        self.posts.iter().find(|p| p.post.id == id)
    }

    /// The root and its replies, in creation order (as a test wants them, not the API's order).
    pub fn thread(&self, root_id: &str) -> Vec<&Post> {
        self.posts
            .iter()
            .map(|p| &p.post)
            .filter(|p| p.id == root_id || p.root_id == root_id)
            .collect()
    }

    /// Posts made by the bot, in creation order.
    pub fn bot_posts(&self) -> Vec<&TestPost> {
        self.posts
            .iter()
            .filter(|p| p.post.user_id == self.bot.id)
            .collect()
    }

    /// A file `user_id` may download, with the server's errors: unknown or deleted → 404; not yet
    /// attached to a post and uploaded by someone else → 403. (The fake has no channel
    /// membership: a file on a post is readable by everyone.)
    pub(crate) fn readable_file(&self, user_id: &str, id: &str) -> Result<&StoredFile, ApiError> {
        let file = self
            .file(id)
            .filter(|f| f.info.delete_at == 0)
            .ok_or_else(|| {
                ApiError::new(
                    404,
                    "app.file_info.get.app_error",
                    "Unable to get the file info.",
                )
            })?;
        if file.info.post_id.is_empty() && file.info.user_id != user_id {
            return Err(ApiError::new(
                403,
                "api.context.permissions.app_error",
                "You do not have the appropriate permissions.",
            ));
        }
        Ok(file)
    }

    pub fn file(&self, id: &str) -> Option<&StoredFile> {
        self.files.iter().find(|f| f.info.id == id)
    }

    /// Milliseconds since the epoch, strictly increasing so creation order is never ambiguous.
    fn tick(&mut self) -> i64 {
        self.last_millis = super::model::millis_now().max(self.last_millis + 1);
        self.last_millis
    }

    pub(crate) fn add_user(&mut self, new: NewUser) -> User {
        let roles = if new.roles.is_empty() {
            "system_user".to_owned()
        } else {
            new.roles.join(" ")
        };
        let now = self.tick();
        let user = User::new(
            new.id.unwrap_or_else(new_id),
            new.username,
            roles,
            new.is_bot,
            now,
        );
        self.users.retain(|u| u.id != user.id);
        self.users.push(user.clone());
        user
    }

    /// Takes the first matching fault, if any.
    pub(crate) fn take_fault(&mut self, method: &str, path: &str) -> Option<Fault> {
        let index = self.faults.iter().position(|f| {
            path.starts_with(&f.path_prefix)
                && f.method
                    .as_deref()
                    .is_none_or(|m| m.eq_ignore_ascii_case(method))
        })?;
        let fault = &mut self.faults[index];
        let taken = fault.clone();
        fault.count = fault.count.saturating_sub(1);
        if fault.count == 0 {
            self.faults.remove(index);
        }
        Some(taken)
    }

    /// Forgets every `pending_post_id`, as if `PENDING_POST_ID_TTL` had passed.
    pub(crate) fn expire_pending_post_ids(&mut self) {
        self.pending_post_ids.clear();
    }

    /// `POST /api/v4/posts` as `App.CreatePost` does it: a `pending_post_id` seen within the last
    /// 30 s returns the post created with it (same id, 201) instead of creating another; without
    /// one there is no de-duplication. The fake saves atomically, so the server's other answer —
    /// 500 `api.post.deduplicate_create_post.pending` while the first create is still saving —
    /// never arises here.
    pub(crate) fn create_post_deduplicated(
        &mut self,
        user_id: &str,
        new: NewPost,
        request: Value,
    ) -> Result<Post, ApiError> {
        let pending = new.pending_post_id.clone();
        let now = Instant::now();
        self.pending_post_ids
            .retain(|_, (_, expires)| *expires > now);
        // (The server ignores a pending id whose post the caller may not read; the fake has no
        // channel membership, so every post is readable.)
        let found = self
            .pending_post_ids
            .get(&pending)
            .and_then(|(id, _)| self.post(id));
        if let Some(found) = found {
            return Ok(self.render(found.post.clone()));
        }
        let post = self.create_post(user_id, new, request)?;
        if !pending.is_empty() {
            self.pending_post_ids
                .insert(pending, (post.id.clone(), now + PENDING_POST_ID_TTL));
        }
        Ok(post)
    }

    pub(crate) fn create_post(
        &mut self,
        user_id: &str,
        new: NewPost,
        request: Value,
    ) -> Result<Post, ApiError> {
        if new.channel_id.is_empty() {
            return Err(ApiError::new(
                400,
                "model.post.is_valid.channel_id.app_error",
                "Invalid channel id.",
            ));
        }
        if !new.root_id.is_empty() {
            let root = self.post(&new.root_id).map(|p| &p.post);
            match root {
                Some(root) if root.root_id.is_empty() && root.channel_id == new.channel_id => {}
                Some(root) if root.root_id.is_empty() => {
                    return Err(ApiError::new(
                        400,
                        "api.post.create_post.channel_root_id.app_error",
                        "Invalid ChannelId for RootId parameter.",
                    ))
                }
                _ => {
                    return Err(ApiError::new(
                        400,
                        "api.post.create_post.root_id.app_error",
                        "Invalid RootId parameter.",
                    ))
                }
            }
        }
        validate_message(&new.message)?;
        validate_file_ids(&new.file_ids)?;

        let now = self.tick();
        let id = new_id();
        let mut props = new.props;
        if self.user(user_id).is_some_and(|u| u.is_bot) {
            props.insert("from_bot".into(), json!("true"));
        }
        let file_ids = self.attach_files(&new.file_ids, user_id, &id, &new.channel_id, now);
        let post = Post {
            id: id.clone(),
            create_at: now,
            update_at: now,
            edit_at: 0,
            delete_at: 0,
            is_pinned: false,
            user_id: user_id.to_owned(),
            channel_id: new.channel_id,
            root_id: new.root_id.clone(),
            original_id: String::new(),
            message: new.message,
            kind: new.kind,
            props,
            hashtags: String::new(),
            file_ids,
            pending_post_id: new.pending_post_id,
            has_reactions: false,
            reply_count: 0,
            last_reply_at: 0,
            participants: None,
            metadata: None,
        };
        if let Some(root) = self.posts.iter_mut().find(|p| p.post.id == new.root_id) {
            // A reply bumps its root's update_at, as the real store does; not a new version.
            root.post.update_at = now;
        }
        let post = self.render(post);
        self.posts.push(TestPost {
            post: post.clone(),
            history: vec![PostVersion {
                change: "create".into(),
                request,
                post: post.clone(),
            }],
        });
        Ok(post)
    }

    /// Keeps the ids of files that exist, belong to `user_id` and are not on another post, and
    /// attaches them — what the server does silently with the rest is drop them.
    fn attach_files(
        &mut self,
        ids: &[String],
        user_id: &str,
        post_id: &str,
        channel_id: &str,
        now: i64,
    ) -> Vec<String> {
        let mut kept = Vec::new();
        for id in ids {
            if let Some(file) = self.files.iter_mut().find(|f| {
                &f.info.id == id
                    && f.info.user_id == user_id
                    && (f.info.post_id.is_empty() || f.info.post_id == post_id)
            }) {
                file.info.post_id = post_id.to_owned();
                file.info.channel_id = channel_id.to_owned();
                file.info.update_at = now;
                kept.push(id.clone());
            }
        }
        kept
    }

    pub(crate) fn patch_post(
        &mut self,
        user_id: &str,
        id: &str,
        patch: PostPatch,
        request: Value,
    ) -> Result<Post, ApiError> {
        let Some(index) = self.posts.iter().position(|p| p.post.id == id) else {
            return Err(ApiError::forbidden());
        };
        if self.posts[index].post.user_id != user_id
            && !self
                .user(user_id)
                .is_some_and(|u| u.roles.contains("system_admin"))
        {
            // The bot only has edit_post, not edit_others_posts.
            return Err(ApiError::forbidden());
        }
        if let Some(message) = &patch.message {
            validate_message(message)?;
        }
        if let Some(file_ids) = &patch.file_ids {
            validate_file_ids(file_ids)?;
        }
        let now = self.tick();
        let mut post = self.posts[index].post.clone();
        if let Some(message) = patch.message {
            if message != post.message {
                post.edit_at = now;
            }
            post.message = message;
        }
        if let Some(props) = patch.props {
            post.props = props;
        }
        if let Some(file_ids) = patch.file_ids {
            let channel_id = post.channel_id.clone();
            post.file_ids = self.attach_files(&file_ids, user_id, id, &channel_id, now);
        }
        if let Some(pinned) = patch.is_pinned {
            post.is_pinned = pinned;
        }
        if let Some(has_reactions) = patch.has_reactions {
            post.has_reactions = has_reactions;
        }
        post.update_at = now;
        let post = self.render(post);
        let record = &mut self.posts[index];
        record.post = post.clone();
        record.history.push(PostVersion {
            change: "patch".into(),
            request,
            post: post.clone(),
        });
        Ok(post)
    }

    /// A post as the API returns it: reply count and last reply time of its thread, and the
    /// infos of its attached files in `metadata.files`.
    pub(crate) fn render(&self, mut post: Post) -> Post {
        let root_id = if post.root_id.is_empty() {
            post.id.clone()
        } else {
            post.root_id.clone()
        };
        let replies: Vec<&Post> = self
            .posts
            .iter()
            .map(|p| &p.post)
            .filter(|p| p.root_id == root_id)
            .collect();
        let own_reply = post.root_id == root_id && !replies.iter().any(|p| p.id == post.id);
        post.reply_count = replies.len() as i64 + i64::from(own_reply);
        post.last_reply_at = replies.iter().map(|p| p.create_at).max().unwrap_or(0);
        if own_reply {
            post.last_reply_at = post.last_reply_at.max(post.create_at);
        }
        let files: Vec<&FileInfo> = post
            .file_ids
            .iter()
            .filter_map(|id| self.file(id))
            .map(|f| &f.info)
            .collect();
        post.metadata = Some(if files.is_empty() {
            json!({})
        } else {
            json!({ "files": files })
        });
        post
    }

    /// `GET /posts/{id}/thread`: the requested post first, then the rest of the thread newest
    /// first (the order the server gives with `direction=up`, which its own clients send).
    pub(crate) fn thread_list(&self, id: &str) -> Result<PostList, ApiError> {
        let post = self.post(id).ok_or_else(ApiError::post_not_found)?;
        let root_id = if post.post.root_id.is_empty() {
            post.post.id.clone()
        } else {
            post.post.root_id.clone()
        };
        let mut thread: Vec<Post> = self
            .thread(&root_id)
            .into_iter()
            .map(|p| self.render(p.clone()))
            .collect();
        thread.sort_by_key(|p| std::cmp::Reverse(p.create_at));
        let mut order = vec![id.to_owned()];
        order.extend(thread.iter().map(|p| p.id.clone()).filter(|p| p != id));
        Ok(PostList {
            order,
            posts: thread.into_iter().map(|p| (p.id.clone(), p)).collect(),
            next_post_id: String::new(),
            prev_post_id: String::new(),
            has_next: Some(false),
            first_inaccessible_post_time: 0,
        })
    }

    pub(crate) fn upload(
        &mut self,
        user_id: &str,
        channel_id: &str,
        name: &str,
        bytes: Bytes,
    ) -> FileInfo {
        let now = self.tick();
        let extension = name
            .rsplit_once('.')
            .map(|(_, e)| e.to_ascii_lowercase())
            .unwrap_or_default();
        let info = FileInfo {
            id: new_id(),
            user_id: user_id.to_owned(),
            post_id: String::new(),
            channel_id: channel_id.to_owned(),
            create_at: now,
            update_at: now,
            delete_at: 0,
            name: name.to_owned(),
            mime_type: mime_type(&extension).to_owned(),
            extension,
            size: bytes.len() as i64,
            has_preview_image: false,
            mini_preview: None,
            remote_id: Some(String::new()),
            archived: false,
        };
        self.files.push(StoredFile {
            info: info.clone(),
            bytes,
        });
        info
    }
}

fn validate_message(message: &str) -> Result<(), ApiError> {
    if message.chars().count() > POST_MESSAGE_MAX_RUNES {
        return Err(ApiError::new(
            400,
            "model.post.is_valid.msg.app_error",
            "Invalid Message.",
        ));
    }
    Ok(())
}

fn validate_file_ids(ids: &[String]) -> Result<(), ApiError> {
    let encoded = serde_json::to_string(ids).unwrap_or_default();
    if encoded.chars().count() > POST_FILE_IDS_MAX_RUNES {
        return Err(ApiError::new(
            400,
            "model.post.is_valid.file_ids.app_error",
            "Invalid file ids. Note that uploads are limited to 10 files maximum. Please use additional posts for more files.",
        ));
    }
    Ok(())
}

/// The types Go's `mime.TypeByExtension` gives for the files a bridge typically attaches.
fn mime_type(extension: &str) -> &'static str {
    match extension {
        "txt" | "log" => "text/plain; charset=utf-8",
        "md" => "text/markdown; charset=utf-8",
        "diff" | "patch" => "text/x-diff; charset=utf-8",
        "json" => "application/json",
        "html" | "htm" => "text/html; charset=utf-8",
        "csv" => "text/csv; charset=utf-8",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "tif" | "tiff" => "image/tiff",
        "pdf" => "application/pdf",
        "zip" => "application/zip",
        _ => "",
    }
}
