//! Replies while a turn runs: the requester's reply answers Codex's pending question
//! (`runs/questions.rs`); otherwise a reply by someone the `steer_by` setting lets steer is
//! judged by the policy as that person's own `continue` — a refused one never reaches Codex —
//! then sent into the turn (`turn/steer`) and acknowledged in the thread naming who steered.
//! Any other reply waits for the next turn like any reply, and its author is told why.

use serde_json::json;
use tracing::warn;

use super::decide::Ask;
use crate::config::Config;
use crate::gate::{Action, Decision};
use crate::model::SteerBy;
use crate::protocol::{PostRequest, PostResponse};
use crate::render;
use crate::runner::app_server::protocol::UserInput;
use crate::state::Host;

/// What became of a reply in a thread whose turn may be running.
pub(super) enum RunningTurn {
    /// Answered Codex's question, steered the turn, or was refused here (the response says why).
    Handled(PostResponse),
    /// Goes the usual way (the next turn); `why` is for its author when the reply might have
    /// been meant for the running turn.
    NextTurn { why: Option<String> },
}

impl Host {
    /// A reply in thread `root` (of the reply's own channel) while a turn of it runs.
    pub(super) async fn reply_to_running_turn(
        &self,
        cfg: &Config,
        req: &PostRequest,
        root: &str,
    ) -> RunningTurn {
        let next_turn = |why: Option<String>| RunningTurn::NextTurn { why };
        let text = req.post.message.trim();
        let running = self
            .active
            .lock()
            .unwrap()
            .iter()
            .find(|(_, a)| {
                *a.root_id.lock().unwrap() == root
                    && a.channel_id == req.channel.id
                    && a.session.lock().unwrap().is_some()
            })
            .map(|(id, a)| (id.clone(), a.clone()));
        let Some((run_id, active)) = running else {
            return next_turn(None);
        };
        let handled = |ephemeral_text: String| {
            RunningTurn::Handled(PostResponse {
                handled: true,
                ephemeral_text,
                ..Default::default()
            })
        };
        let is_requester = active.user_id == req.user.id;
        if is_requester {
            if let Some(q) = active.question.lock().unwrap().take() {
                let _ = q.answer.send(text.to_string());
                return handled(String::new());
            }
        } else {
            let question_pending = active.question.lock().unwrap().is_some();
            if cfg.steer_by == SteerBy::Requester || question_pending {
                let why = render::steer_waits(&active.username, question_pending);
                return next_turn(Some(why));
            }
        }
        // The person who steers is the one judged: their own `continue` of this thread.
        let project = cfg.projects.get(&active.project);
        let ruling = self
            .decide(
                cfg,
                Ask {
                    prompt: text,
                    project,
                    root_id: root,
                    run_id: Some(&run_id),
                    ..Ask::new(&req.user, &req.channel, Action::Continue)
                },
            )
            .await;
        if let Decision::Deny { reason } | Decision::RequireApproval { reason, .. } =
            ruling.decision
        {
            let _ = self.store.audit(
                "run.steer_refused",
                Some(&run_id),
                &req.user.id,
                &req.channel.id,
                &json!({"reason": reason, "requester": active.user_id}),
            );
            return handled(format!(
                "Not passed to Codex: {reason} (the policy must allow it without approval while the turn runs)."
            ));
        }
        let Some(session) = active.session.lock().unwrap().clone() else {
            return next_turn(None);
        };
        let input = vec![UserInput::Text {
            text: format!("Message from @{} in Mattermost:\n{text}", req.user.username),
        }];
        match session
            .client
            .steer(&session.thread_id, &session.turn_id, input)
            .await
        {
            Ok(_) => {
                let _ = self.store.audit(
                    "run.steer",
                    Some(&run_id),
                    &req.user.id,
                    &req.channel.id,
                    &json!({"chars": text.chars().count(), "requester": active.user_id}),
                );
                self.post_note(
                    &req.channel.id,
                    root,
                    &run_id,
                    render::steered(&req.user.username),
                )
                .await;
                handled(String::new())
            }
            // The turn ended meanwhile: the reply runs as the next prompt instead.
            Err(e) => {
                warn!(error = %e, "steer refused by Codex; queueing the reply");
                next_turn(None)
            }
        }
    }
}
