//! Posts that continue a session without a slash command: a reply in a thread the bot started
//! (when the setting allows), or any post in a direct or group message with the bot.

use std::sync::Arc;

use super::submit::Submission;
use super::{Intent, Trigger};
use crate::protocol::{ChannelKind, PostRequest, PostResponse};
use crate::state::Host;
use crate::store::ThreadRow;

impl Host {
    /// Handles a post the plugin forwarded (`POST /v1/posts`): runs it as a prompt in its
    /// thread when it is one the bot should answer; ignores it otherwise.
    pub async fn reply(self: &Arc<Self>, req: PostRequest) -> PostResponse {
        let Some(cfg) = self.config() else {
            return PostResponse::default();
        };
        let p = &req.post;
        if p.user_id == self.bot_id() || req.user.is_bot || p.message.trim().is_empty() {
            return PostResponse::default();
        }
        let in_dm = matches!(req.channel.kind, ChannelKind::Direct | ChannelKind::Group);
        let root = if p.root_id.is_empty() {
            p.id.clone()
        } else {
            p.root_id.clone()
        };
        let known = self.store.thread(&root).ok().flatten();
        if !in_dm {
            let bot_thread = known.as_ref().is_some_and(|t| t.bot_started);
            if !bot_thread || !cfg.settings.thread_replies_continue || p.root_id.is_empty() {
                return PostResponse::default();
            }
        }
        if in_dm && known.is_none() {
            // A conversation with the bot: the user's own post roots the thread.
            let _ = self.store.insert_thread(&ThreadRow {
                root_id: root.clone(),
                channel_id: p.channel_id.clone(),
                project: self.active_project(&cfg, &p.channel_id).unwrap_or_default(),
                codex_thread_id: None,
                bot_started: true,
                seen_until: p.create_at,
            });
        }
        // While a turn runs in this thread, its requester talks to it instead of queueing.
        if let Some(handled) = self.reply_to_running_turn(&cfg, &req, &root).await {
            return handled;
        }
        let submission = Submission {
            user: &req.user,
            channel: &req.channel,
            root_id: &root,
            intent: Intent::Auto,
            prompt: p.message.trim(),
            trigger: Some(Trigger {
                post_id: p.id.clone(),
                file_ids: p.file_ids.clone(),
            }),
        };
        match self.submit(&cfg, submission).await {
            Ok(_) => PostResponse {
                handled: true,
                ephemeral_text: String::new(),
            },
            Err(refusal) => PostResponse {
                handled: true,
                ephemeral_text: refusal,
            },
        }
    }
}
