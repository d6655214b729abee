//! What Codex gets besides the prompt in a thread: the posts since Codex last looked, read when
//! the prompt is accepted and frozen for the run. Gathering and labelling happen here; the text
//! itself is `render::transcript`.

use std::collections::HashMap;

use serde_json::Value;
use tracing::warn;

use super::{Ask, TRANSCRIPT_READ_LIMIT};
use crate::chat::Post;
use crate::config::Config;
use crate::protocol::User;
use crate::render;
use crate::state::Host;
use crate::store::now_ms;

impl Host {
    /// The thread's posts since Codex last looked, each labelled with its author, whether the
    /// policy allows that author here and whether a bot, webhook or plugin posted it; all but the
    /// requester's own fenced behind a delimiter random to this run. Also the thread's next "seen
    /// until" mark (the newest post read, in the server's clock); `None` when the thread could not
    /// be read, so the mark stays. `ask` names the requester, channel, project, thread and run;
    /// `exclude` is the post that asked (it is the prompt, not context).
    pub(super) async fn freeze_context(
        &self,
        cfg: &Config,
        ask: &Ask<'_>,
        exclude: Option<&str>,
    ) -> (Option<render::Transcript>, Option<i64>) {
        let root_id = ask.root_id;
        let deadline = tokio::time::Instant::now() + TRANSCRIPT_READ_LIMIT;
        let posts = match tokio::time::timeout_at(deadline, self.chat.thread(root_id)).await {
            Ok(Ok(p)) => p,
            Ok(Err(e)) => {
                warn!(error = %e, "could not read the thread for context; running without it");
                return (None, None);
            }
            Err(_) => {
                warn!("reading the thread for context took too long; running without it");
                return (None, None);
            }
        };
        let mark = posts
            .iter()
            .map(|p| p.create_at)
            .max()
            .unwrap_or_else(now_ms);
        let since = self
            .store
            .thread(root_id)
            .ok()
            .flatten()
            .map_or(0, |t| t.seen_until);
        let bot = self.bot_id();
        let fresh: Vec<&Post> = posts
            .iter()
            .filter(|p| {
                p.create_at > since
                    && p.user_id != bot
                    && Some(p.id.as_str()) != exclude
                    && !p.kind.starts_with("system_")
            })
            .collect();
        if fresh.is_empty() {
            return (None, Some(mark));
        }
        let mut ids: Vec<String> = fresh.iter().map(|p| p.user_id.clone()).collect();
        ids.sort();
        ids.dedup();
        let known = match tokio::time::timeout_at(deadline, self.chat.users(&ids)).await {
            Ok(Ok(u)) => u,
            Ok(Err(e)) => {
                warn!(error = %e, "could not look up the thread's authors; they are labelled by id");
                HashMap::new()
            }
            Err(_) => {
                warn!("looking up the thread's authors took too long; they are labelled by id");
                HashMap::new()
            }
        };
        // One question to the policy per author, as if they asked to continue here themselves.
        let mut authors: HashMap<&str, (User, bool)> = HashMap::new();
        for id in &ids {
            let u = known.get(id).cloned().unwrap_or_else(|| User {
                id: id.clone(),
                username: id.clone(),
                ..Default::default()
            });
            let allowed = self.author_allowed(cfg, &u, ask).await;
            authors.insert(id.as_str(), (u, allowed));
        }
        let files: Vec<Vec<String>> = fresh.iter().map(|p| attachment_names(p)).collect();
        let messages: Vec<render::ContextMessage> = fresh
            .iter()
            .zip(&files)
            .map(|(p, files)| {
                let (author, allowed) = &authors[p.user_id.as_str()];
                render::ContextMessage {
                    author: &author.username,
                    at_ms: p.create_at,
                    text: &p.message,
                    attachments: files,
                    source: post_source(p, author.is_bot),
                    shown_as: p.props.get("override_username").and_then(Value::as_str),
                    allowed: *allowed,
                    by_requester: p.user_id == ask.user.id,
                }
            })
            .collect();
        let budget = cfg.settings.transcript_budget_chars;
        (
            render::transcript(&messages, &ask.user.username, &new_fence(), budget),
            Some(mark),
        )
    }
}

fn attachment_names(p: &Post) -> Vec<String> {
    let from_meta: Vec<String> = p
        .metadata
        .get("files")
        .and_then(Value::as_array)
        .map(|fs| {
            fs.iter()
                .filter_map(|f| f.get("name").and_then(Value::as_str).map(String::from))
                .collect()
        })
        .unwrap_or_default();
    if !from_meta.is_empty() || p.file_ids.is_empty() {
        from_meta
    } else {
        vec![format!(
            "{} file{}",
            p.file_ids.len(),
            if p.file_ids.len() == 1 { "" } else { "s" }
        )]
    }
}

/// What put a post in the thread, from the flags Mattermost sets on it (`"true"` strings).
fn post_source(p: &Post, bot_account: bool) -> render::Source {
    let flag = |k: &str| p.props.get(k).is_some_and(|v| v == "true" || v == true);
    if flag("from_webhook") {
        render::Source::Webhook
    } else if flag("from_plugin") {
        render::Source::Plugin
    } else if flag("from_bot") || bot_account {
        render::Source::Bot
    } else {
        render::Source::Person
    }
}

/// The transcript delimiter of one run: 128 random bits, so no message can know it in advance.
fn new_fence() -> String {
    use rand::Rng;
    let bits: u128 = rand::rng().random();
    format!("{bits:032x}")
}
