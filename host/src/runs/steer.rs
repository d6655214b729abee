//! Talking to a turn while it runs: the requester's reply in the thread answers Codex's pending
//! question, or else steers the turn (`turn/steer`) — judged by the policy as a `continue`
//! first, so a refused one never reaches Codex — and is acknowledged in the thread instead of
//! queueing as the next run. Codex's questions (`item/tool/requestUserInput`) are posted here;
//! no answer in time stops the turn visibly.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::decide::Ask;
use super::Run;
use crate::config::Config;
use crate::gate::{Action, Decision};
use crate::protocol::{PostRequest, PostResponse};
use crate::render;
use crate::runner::app_server::incoming::UserInputRequest;
use crate::runner::app_server::protocol::{
    RequestId, UserInput, UserInputAnswer, UserInputResponse,
};
use crate::runner::app_server::Client;
use crate::state::Host;

/// How long Codex's question waits for the requester's reply.
pub const QUESTION_TIMEOUT: Duration = Duration::from_secs(10 * 60);

impl Host {
    /// A reply in the thread of a run whose turn is running: answers its question or steers
    /// it. `None` when no turn of the thread is running or the author is not its requester
    /// (the reply then queues as usual).
    pub(super) async fn reply_to_running_turn(
        &self,
        cfg: &Config,
        req: &PostRequest,
        root: &str,
    ) -> Option<PostResponse> {
        let text = req.post.message.trim();
        let (run_id, active) = self
            .active
            .lock()
            .unwrap()
            .iter()
            .find(|(_, a)| {
                *a.root_id.lock().unwrap() == root && a.session.lock().unwrap().is_some()
            })
            .map(|(id, a)| (id.clone(), a.clone()))?;
        if active.user_id != req.user.id {
            return None;
        }
        let handled = |ephemeral_text: String| {
            Some(PostResponse {
                handled: true,
                ephemeral_text,
                ..Default::default()
            })
        };
        if let Some(tx) = active.question.lock().unwrap().take() {
            let _ = tx.send(text.to_string());
            return handled(String::new());
        }
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
                &json!({"reason": reason}),
            );
            return handled(format!(
                "Not passed to Codex: {reason} (the policy must allow it without approval while the turn runs)."
            ));
        }
        let session = active.session.lock().unwrap().clone()?;
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
                    &json!({"chars": text.chars().count()}),
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
                None
            }
        }
    }

    /// Posts Codex's question and answers it with the requester's next reply in the thread;
    /// without one in time, stops the turn.
    pub(super) async fn ask_question(
        &self,
        run: &Run,
        client: &Client,
        id: RequestId,
        r: UserInputRequest,
        turn_over: &CancellationToken,
    ) {
        let qs: Vec<render::Question> = r
            .questions
            .iter()
            .map(|q| render::Question {
                header: &q.header,
                question: &q.question,
                options: q
                    .options
                    .iter()
                    .flatten()
                    .map(|o| o.label.as_str())
                    .collect(),
            })
            .collect();
        let (tx, rx) = oneshot::channel();
        *run.active.question.lock().unwrap() = Some(tx);
        self.note(
            run,
            render::question(&run.plan.user.username, &qs, QUESTION_TIMEOUT),
        )
        .await;
        let reply = tokio::select! {
            r = rx => r.ok(),
            _ = tokio::time::sleep(QUESTION_TIMEOUT) => None,
            _ = turn_over.cancelled() => return,
        };
        run.active.question.lock().unwrap().take();
        let Some(reply) = reply else {
            self.note(run, render::question_unanswered(QUESTION_TIMEOUT))
                .await;
            let _ = client
                .answer_user_input(&id, UserInputResponse::default())
                .await;
            let _ = client.interrupt(&r.thread_id, &r.turn_id).await;
            return;
        };
        let mut answers = BTreeMap::new();
        let mut lines = reply.lines().map(str::trim).filter(|l| !l.is_empty());
        for q in &r.questions {
            let line = if r.questions.len() == 1 {
                reply.trim().to_string()
            } else {
                lines.next().unwrap_or_default().to_string()
            };
            // An option's number stands for its label.
            let chosen = line
                .parse::<usize>()
                .ok()
                .and_then(|n| q.options.as_ref()?.get(n.checked_sub(1)?))
                .map(|o| o.label.clone())
                .unwrap_or(line);
            answers.insert(
                q.id.clone(),
                UserInputAnswer {
                    answers: vec![chosen],
                },
            );
        }
        self.note(run, render::answered(&run.plan.user.username))
            .await;
        if let Err(e) = client
            .answer_user_input(&id, UserInputResponse { answers })
            .await
        {
            warn!(error = %e, "could not answer Codex's question");
        }
    }
}
