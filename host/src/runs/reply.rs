//! Posts that reach Codex without a slash command: a reply in a thread the bot started (when the
//! setting allows), any post in a direct or group message with the bot, and a post that
//! @-mentions the bot, which works like `/codex <prompt>` where it was posted.

use std::sync::Arc;

use super::steer::RunningTurn;
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
        let bot_name = self.snapshot().bot_username.clone();
        let mention = strip_mention(&p.message, &bot_name);
        let in_dm = matches!(req.channel.kind, ChannelKind::Direct | ChannelKind::Group);
        let root = if p.root_id.is_empty() {
            p.id.clone()
        } else {
            p.root_id.clone()
        };
        let known = self.store.thread(&root).ok().flatten();
        let continues = in_dm
            || (known.as_ref().is_some_and(|t| t.bot_started)
                && cfg.settings.thread_replies_continue
                && !p.root_id.is_empty());
        let intent = match (&mention, continues) {
            (_, true) => Intent::Auto,
            // `@codex <prompt>` at channel level: the post itself roots a new Codex thread.
            (Some(_), false) if p.root_id.is_empty() => Intent::Start,
            // In a thread people started: as `/codex <prompt>` typed there.
            (Some(_), false) => Intent::Auto,
            (None, false) => return PostResponse::default(),
        };
        let prompt = mention.as_deref().unwrap_or(&p.message).trim();
        if prompt.is_empty() {
            return PostResponse {
                handled: true,
                ephemeral_text: format!(
                    "Tell @{bot_name} what to do in the same message, e.g. `@{bot_name} fix the flaky login test`. See `/codex help`."
                ),
                ..Default::default()
            };
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
        // While a turn runs in this thread, a reply may go into it instead of queueing.
        let why = match self.reply_to_running_turn(&cfg, &req, &root).await {
            RunningTurn::Handled(response) => return response,
            RunningTurn::NextTurn { why } => why,
        };
        let submission = Submission {
            user: &req.user,
            channel: &req.channel,
            root_id: &root,
            intent,
            prompt,
            trigger: Some(Trigger {
                post_id: p.id.clone(),
                file_ids: p.file_ids.clone(),
            }),
            bot_can_post: continues || req.bot_can_post,
        };
        match self.submit(&cfg, submission).await {
            Ok(_) => PostResponse {
                handled: true,
                ephemeral_text: why.unwrap_or_default(),
                ..Default::default()
            },
            Err(refusal) if refusal.needs_bot_access => PostResponse {
                handled: true,
                needs_bot_access: true,
                ..Default::default()
            },
            Err(refusal) => PostResponse {
                handled: true,
                attachments: self.refusal_attachments(refusal.may_request_access, &req.user.id),
                ephemeral_text: refusal.text,
                ..Default::default()
            },
        }
    }
}

/// The message without its first `@<bot>` mention, when it has one. A mention is the name not
/// followed by another character of a username, as Mattermost highlights it (`@codex,` counts;
/// `@codexbot` and `@codex.dev` do not).
pub(crate) fn strip_mention(message: &str, bot: &str) -> Option<String> {
    let needle = format!("@{}", bot.to_lowercase());
    let lower = message.to_lowercase();
    let mut from = 0;
    while let Some(i) = lower[from..].find(&needle) {
        let start = from + i;
        let end = start + needle.len();
        if !continues_username(&lower[end..]) {
            let rest = message[end..].trim_start_matches([',', ':']);
            return Some(format!("{}{}", message[..start].trim_end(), spaced(rest)));
        }
        from = end;
    }
    None
}

/// Whether text right after `@name` continues the username: a letter, digit, `-`, `_`, or a
/// `.` followed by one of those.
fn continues_username(after: &str) -> bool {
    let mut chars = after.chars();
    let username_char = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    match chars.next() {
        Some(c) if username_char(c) => true,
        Some('.') => chars.next().is_some_and(username_char),
        _ => false,
    }
}

fn spaced(rest: &str) -> String {
    if rest.starts_with(char::is_whitespace) || rest.is_empty() {
        rest.to_string()
    } else {
        format!(" {rest}")
    }
}

#[cfg(test)]
mod tests {
    use super::strip_mention;

    #[test]
    fn mentions_are_found_as_mattermost_highlights_them() {
        let cases = [
            ("@codex fix the flaky test", Some("fix the flaky test")),
            ("hey @codex, fix it", Some("hey fix it")),
            ("@Codex: fix it", Some("fix it")),
            ("fix it @codex.", Some("fix it .")),
            ("@codex", Some("")),
            ("@codexbot fix it", None),
            ("@codex.dev fix it", None),
            ("@codex_team fix it", None),
            ("mail codex@example.com", None),
            ("@codexy then @codex fix it", Some("@codexy then fix it")),
        ];
        for (message, want) in cases {
            assert_eq!(
                strip_mention(message, "codex").as_deref().map(str::trim),
                want,
                "{message}"
            );
        }
    }
}
