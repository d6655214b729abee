//! Codex's questions (`item/tool/requestUserInput`) during a run: posted in the thread and
//! answered by the requester's next reply (`runs/steer.rs` routes it here). A question closes
//! without an answer when Codex withdraws it (`serverRequest/resolved`, through
//! [`crate::state::ActiveRun::close_question`]) or the turn ends: its post then says so, and a
//! later reply goes the usual way. No answer in time stops the turn visibly.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::Run;
use crate::render::{self, QuestionClosed};
use crate::runner::app_server::incoming::{Question, UserInputRequest};
use crate::runner::app_server::protocol::{RequestId, UserInputAnswer, UserInputResponse};
use crate::runner::app_server::Client;
use crate::state::{Host, PendingQuestion};

/// How long Codex's question waits for the requester's reply.
pub const QUESTION_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// How a question's wait ended.
enum Waited {
    Answer(String),
    Closed(QuestionClosed),
    TimedOut,
}

impl Host {
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
        if turn_over.is_cancelled() {
            return; // asked as the turn ended: nobody could answer it any more
        }
        let qs: Vec<render::Question> = r.questions.iter().map(shown).collect();
        let (tx, rx) = oneshot::channel();
        *run.active.question.lock().unwrap() = Some(PendingQuestion {
            request_id: id.clone(),
            answer: tx,
        });
        let post_id = self
            .note(
                run,
                render::question(&run.plan.user.username, &qs, QUESTION_TIMEOUT),
            )
            .await;
        let waited = tokio::select! {
            // The sender is dropped only by `close_question`: Codex withdrew the question.
            r = rx => r.map_or(Waited::Closed(QuestionClosed::Withdrawn), Waited::Answer),
            _ = tokio::time::sleep(QUESTION_TIMEOUT) => Waited::TimedOut,
            _ = turn_over.cancelled() => Waited::Closed(QuestionClosed::TurnEnded),
        };
        run.active.close_question(&id);
        let reply = match waited {
            Waited::Answer(reply) => reply,
            Waited::Closed(why) => {
                if let Some(post_id) = post_id {
                    let text = self.redactor().redact(&render::question_closed(&qs, why));
                    if let Err(e) = self.chat.update_post(&post_id, &text, None).await {
                        warn!(error = %e, "could not close Codex's question in the thread");
                    }
                }
                return;
            }
            Waited::TimedOut => {
                self.note(run, render::question_unanswered(QUESTION_TIMEOUT))
                    .await;
                let _ = client
                    .answer_user_input(&id, UserInputResponse::default())
                    .await;
                let _ = client.interrupt(&r.thread_id, &r.turn_id).await;
                return;
            }
        };
        self.note(run, render::answered(&run.plan.user.username))
            .await;
        let answers = UserInputResponse {
            answers: answers(&r.questions, &reply),
        };
        if let Err(e) = client.answer_user_input(&id, answers).await {
            warn!(error = %e, "could not answer Codex's question");
        }
    }
}

fn shown(q: &Question) -> render::Question<'_> {
    render::Question {
        header: &q.header,
        question: &q.question,
        options: q
            .options
            .iter()
            .flatten()
            .map(|o| o.label.as_str())
            .collect(),
    }
}

/// The reply as answers: the whole reply for one question, else one line per question; an
/// option's number stands for its label.
fn answers(questions: &[Question], reply: &str) -> BTreeMap<String, UserInputAnswer> {
    let mut lines = reply.lines().map(str::trim).filter(|l| !l.is_empty());
    questions
        .iter()
        .map(|q| {
            let line = if questions.len() == 1 {
                reply.trim().to_string()
            } else {
                lines.next().unwrap_or_default().to_string()
            };
            let chosen = line
                .parse::<usize>()
                .ok()
                .and_then(|n| q.options.as_ref()?.get(n.checked_sub(1)?))
                .map(|o| o.label.clone())
                .unwrap_or(line);
            (
                q.id.clone(),
                UserInputAnswer {
                    answers: vec![chosen],
                },
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::User;
    use crate::runner::app_server::incoming::QuestionOption;
    use crate::state::ActiveRun;

    fn question(id: &str, options: &[&str]) -> Question {
        Question {
            id: id.into(),
            header: "H".into(),
            question: "Q?".into(),
            options: Some(
                options
                    .iter()
                    .map(|l| QuestionOption {
                        label: l.to_string(),
                        description: String::new(),
                    })
                    .collect(),
            ),
            is_other: true,
            is_secret: false,
        }
    }

    #[test]
    fn a_reply_answers_by_option_number_or_own_words_one_line_each() {
        let qs = [question("color", &["Red", "Teal"]), question("size", &[])];
        let a = answers(&qs, "2\n\n  large  \n");
        assert_eq!(a["color"].answers, ["Teal"]);
        assert_eq!(a["size"].answers, ["large"]);
        let one = answers(&qs[..1], "Teal, please\nand quickly");
        assert_eq!(one["color"].answers, ["Teal, please\nand quickly"]);
        assert_eq!(answers(&qs[..1], "7")["color"].answers, ["7"]);
    }

    #[tokio::test]
    async fn only_codexs_resolution_of_that_question_closes_it() {
        let user = User {
            id: "u1".into(),
            username: "alice".into(),
            ..Default::default()
        };
        let run = ActiveRun::new(&user, "c1", "api", "root");
        let (tx, rx) = oneshot::channel::<String>();
        *run.question.lock().unwrap() = Some(PendingQuestion {
            request_id: RequestId::Int(3),
            answer: tx,
        });
        assert!(!run.close_question(&RequestId::Int(2)), "another request");
        assert!(run.question.lock().unwrap().is_some());
        assert!(run.close_question(&RequestId::Int(3)));
        assert!(
            run.question.lock().unwrap().is_none(),
            "no reply takes it now"
        );
        assert!(rx.await.is_err(), "the wait sees the question closed");
        assert!(!run.close_question(&RequestId::Int(3)));
    }
}
