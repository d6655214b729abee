//! Posts kept in memory: a Mattermost stand-in for fast tests of commands, runs and approvals
//! (no server, no network). It keeps what the host posted and every edit, in order, and serves
//! them back the way Mattermost would: a thread is its root and its replies, oldest first; a
//! create with a `pending_post_id` seen before returns the post it made then.

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::Value;

use super::{ChatError, NewPost, Post};
use crate::protocol::{AccessGrant, AccessGranted, User};
use crate::store::now_ms;

/// One edit of a post, as the host sent it.
#[derive(Debug, Clone, PartialEq)]
pub struct Edit {
    pub post_id: String,
    pub message: String,
    pub props: Option<Value>,
}

#[derive(Default)]
struct Inner {
    posts: Vec<Post>,
    edits: Vec<Edit>,
    users: HashMap<String, User>,
    /// `pending_post_id` → the post made for it.
    pending: HashMap<String, String>,
    files: Vec<(String, String, Vec<u8>)>,
    /// Grants the plugin was asked for, and whether it refuses them (as when saving fails).
    grants: Vec<AccessGrant>,
    refuse_grants: bool,
    next: u64,
    last_at: i64,
}

#[derive(Default)]
pub struct MemoryChat {
    inner: Mutex<Inner>,
}

impl Inner {
    /// Ids like Mattermost's (26 characters); creation times strictly increasing.
    fn stamp(&mut self) -> (String, i64) {
        self.next += 1;
        self.last_at = now_ms().max(self.last_at + 1);
        (format!("mem{:023}", self.next), self.last_at)
    }
}

impl MemoryChat {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn create_post(&self, post: NewPost, pending_post_id: Option<&str>, user_id: &str) -> Post {
        let mut inner = self.lock();
        if let Some(existing) = pending_post_id.and_then(|p| inner.pending.get(p)).cloned() {
            if let Some(p) = inner.posts.iter().find(|p| p.id == existing) {
                return p.clone();
            }
        }
        let (id, create_at) = inner.stamp();
        let saved = Post {
            id: id.clone(),
            channel_id: post.channel_id,
            root_id: post.root_id,
            user_id: user_id.to_string(),
            message: post.message,
            props: post.props,
            file_ids: post.file_ids,
            create_at,
            ..Post::default()
        };
        if let Some(p) = pending_post_id {
            inner.pending.insert(p.to_string(), id);
        }
        inner.posts.push(saved.clone());
        saved
    }

    /// A post by someone else (a person, a webhook): stored as given, with an id and a creation
    /// time when it has none.
    pub fn add_post(&self, mut post: Post) -> Post {
        let mut inner = self.lock();
        let (id, create_at) = inner.stamp();
        if post.id.is_empty() {
            post.id = id;
        }
        if post.create_at == 0 {
            post.create_at = create_at;
        }
        inner.posts.push(post.clone());
        post
    }

    pub fn add_user(&self, user: User) {
        self.lock().users.insert(user.id.clone(), user);
    }

    pub fn update_post(
        &self,
        post_id: &str,
        message: &str,
        props: Option<Value>,
    ) -> Result<(), ChatError> {
        let mut inner = self.lock();
        let post = inner
            .posts
            .iter_mut()
            .find(|p| p.id == post_id)
            .ok_or_else(|| not_found("patching a post", post_id))?;
        post.message = message.to_string();
        if let Some(props) = &props {
            post.props = props.clone();
        }
        inner.edits.push(Edit {
            post_id: post_id.to_string(),
            message: message.to_string(),
            props,
        });
        Ok(())
    }

    pub fn post(&self, post_id: &str) -> Result<Post, ChatError> {
        self.lock()
            .posts
            .iter()
            .find(|p| p.id == post_id)
            .cloned()
            .ok_or_else(|| not_found("reading a post", post_id))
    }

    /// The root and its replies, oldest first.
    pub fn thread(&self, root_id: &str) -> Vec<Post> {
        self.lock()
            .posts
            .iter()
            .filter(|p| p.id == root_id || p.root_id == root_id)
            .cloned()
            .collect()
    }

    pub fn users(&self, ids: &[String]) -> HashMap<String, User> {
        let inner = self.lock();
        ids.iter()
            .filter_map(|id| inner.users.get(id).map(|u| (id.clone(), u.clone())))
            .collect()
    }

    pub fn upload_file(&self, channel_id: &str, name: &str, bytes: Vec<u8>) -> String {
        let mut inner = self.lock();
        let (id, _) = inner.stamp();
        inner
            .files
            .push((id.clone(), format!("{channel_id}/{name}"), bytes));
        id
    }

    /// The known users with the `system_admin` role, bots left out.
    pub fn system_admins(&self) -> Vec<User> {
        let mut admins: Vec<User> = (self.lock().users.values())
            .filter(|u| u.is_system_admin() && !u.is_bot)
            .cloned()
            .collect();
        admins.sort_by(|a, b| a.username.cmp(&b.username));
        admins
    }

    /// The plugin's grant route: records the grant, or answers 500 while grants are refused.
    pub fn grant_access(
        &self,
        route: &str,
        grant: &AccessGrant,
    ) -> Result<AccessGranted, ChatError> {
        let mut inner = self.lock();
        if inner.refuse_grants {
            return Err(ChatError::Status {
                status: 500,
                what: "adding a user to Allowed users".into(),
                message: format!("{route}: the settings could not be saved"),
            });
        }
        let added = !inner.grants.iter().any(|g| g.user_id == grant.user_id);
        inner.grants.push(grant.clone());
        let username =
            (inner.users.get(&grant.user_id)).map_or(String::new(), |u| u.username.clone());
        Ok(AccessGranted { username, added })
    }

    /// Every grant the plugin was asked for, in order.
    pub fn grants(&self) -> Vec<AccessGrant> {
        self.lock().grants.clone()
    }

    /// Makes the plugin's grant route fail (true) or work again (false).
    pub fn refuse_grants(&self, refuse: bool) {
        self.lock().refuse_grants = refuse;
    }

    /// Every post, in the order they were made (with their latest edits).
    pub fn posts(&self) -> Vec<Post> {
        self.lock().posts.clone()
    }

    /// Every edit, in order.
    pub fn edits(&self) -> Vec<Edit> {
        self.lock().edits.clone()
    }
}

fn not_found(what: &str, id: &str) -> ChatError {
    ChatError::Status {
        status: 404,
        what: what.to_string(),
        message: format!("no post {id}"),
    }
}
