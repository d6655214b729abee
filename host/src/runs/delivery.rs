//! Outcome posts, delivered exactly once: recorded with their full text before they are posted,
//! posted with a few attempts during the run, then again on the next settings push or host start
//! until one is confirmed.
//!
//! What keeps it to one post:
//! - every create of a part of an outcome carries a `pending_post_id` derived from the run
//!   (`<bot id>:<run id>:outcome`), so the server answers a repeated create within 30 s with the
//!   post it already saved — across the client's own retries, in-run attempts and a restart;
//! - any attempt after the first looks in the thread first and posts nothing if the run's outcome
//!   post is there (a crash between the post and its mark, a database that refused the mark);
//! - one task at a time delivers a given run (a claim), and redelivery runs one at a time, so
//!   quick settings pushes do not race each other or the run itself.
//!
//! A database that refuses a write (full disk, locked) does not stop the post: the outcome is
//! posted anyway and what could not be recorded is kept in memory and written on the next
//! redelivery. Nothing here decides what an outcome says (`outcome`, `render`).

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{json, Value};
use tracing::{error, info, warn};

use super::outcome::outcome_props;
use super::progress::progress_props;
use super::{MAX_ANSWER_PARTS, RETRY_TTL_S};
use crate::buttons::ButtonAction;
use crate::chat::{ChatError, NewPost};
use crate::model::RunStatus;
use crate::protocol::PostKind;
use crate::render;
use crate::state::{Host, Outcome, Unrecorded};
use crate::store::{now_ms, OutcomeText, RunResult};

/// Pauses before each further attempt at an outcome post during the run (each attempt is itself
/// the client's five tries over about 3 s). After these, the outcome waits in the store for the
/// next settings push or host start.
const IN_RUN_RETRY_PAUSES: [Duration; 2] = [Duration::from_secs(2), Duration::from_secs(5)];

/// The right to deliver one run's outcome; released when dropped.
pub(crate) struct Claim<'a> {
    host: &'a Host,
    run_id: String,
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        self.host
            .deliveries
            .claimed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.run_id);
    }
}

/// A recorded (or unrecordable) outcome, claimed, ready to post.
pub(crate) struct Recorded<'a> {
    _claim: Claim<'a>,
    /// The result to write once the database takes writes again; None when it is written.
    unwritten: Option<RunResult>,
}

/// Whether an attempt posted the outcome or found it already in the thread.
#[derive(Debug, PartialEq)]
enum Delivered {
    Posted,
    AlreadyThere,
}

/// Which posts of a run's outcome the thread already has.
#[derive(Default)]
struct InThread {
    outcome: bool,
    parts: HashSet<u64>,
}

impl Host {
    fn claim(&self, run_id: &str) -> Option<Claim<'_>> {
        let fresh = self
            .deliveries
            .claimed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(run_id.to_string());
        fresh.then(|| Claim {
            host: self,
            run_id: run_id.to_string(),
        })
    }

    /// Records `outcome` as its run's one outcome, with its full text, before anything is posted.
    /// None when the run already had an outcome (nothing to post). A database error is logged and
    /// does not stop the post: the result is written later.
    pub(super) fn record_outcome(
        &self,
        outcome: &Outcome,
        mut result: RunResult,
    ) -> Option<Recorded<'_>> {
        let Some(claim) = self.claim(&outcome.run_id) else {
            warn!(run = %outcome.run_id, "the outcome is already being delivered; not posting another");
            return None;
        };
        result.outcome = Some(outcome.text.clone());
        match self
            .store
            .finish_run(&outcome.run_id, outcome.status, &result)
        {
            Ok(true) => Some(Recorded {
                _claim: claim,
                unwritten: None,
            }),
            Ok(false) => {
                warn!(run = %outcome.run_id, "run already had an outcome; not posting another");
                None
            }
            Err(e) => {
                error!(run = %outcome.run_id, error = %format!("{e:#}"), "could not record the run's outcome; posting it anyway");
                Some(Recorded {
                    _claim: claim,
                    unwritten: Some(result),
                })
            }
        }
    }

    /// Posts a recorded outcome, with a few attempts; then marks it posted. An outcome still not
    /// posted stays in the store (or in memory, when the store refused it) for the next
    /// settings push or host start.
    pub(super) async fn deliver_in_run(&self, outcome: Outcome, recorded: Recorded<'_>) {
        let attempts = IN_RUN_RETRY_PAUSES.len() + 1;
        for attempt in 0..attempts {
            if attempt > 0 {
                tokio::select! {
                    _ = tokio::time::sleep(IN_RUN_RETRY_PAUSES[attempt - 1]) => {}
                    _ = self.stopping.cancelled() => break,
                }
            }
            match self.deliver(&outcome, attempt > 0).await {
                Ok(_) => return self.confirm(outcome, recorded.unwritten),
                Err(e) => {
                    warn!(run = %outcome.run_id, attempt = attempt + 1, of = attempts, error = %e, "could not post the outcome")
                }
            }
        }
        match recorded.unwritten {
            None => {
                warn!(run = %outcome.run_id, "the outcome is kept in the store and posted on the next settings push or host start")
            }
            Some(result) => {
                error!(run = %outcome.run_id, "the outcome could neither be posted nor recorded; it is kept in memory and retried on the next settings push");
                self.keep_unrecorded(Unrecorded {
                    outcome,
                    result,
                    delivered: false,
                });
            }
        }
    }

    /// The outcome is in the thread: writes what the store refused before, then marks it posted.
    fn confirm(&self, outcome: Outcome, unwritten: Option<RunResult>) {
        if let Some(result) = unwritten {
            if let Err(e) = self
                .store
                .finish_run(&outcome.run_id, outcome.status, &result)
            {
                error!(run = %outcome.run_id, error = %format!("{e:#}"), "the outcome is posted but still not recorded; retrying on the next settings push");
                return self.keep_unrecorded(Unrecorded {
                    outcome,
                    result,
                    delivered: true,
                });
            }
        }
        if let Err(e) = self.store.mark_outcome_posted(&outcome.run_id) {
            // The next redelivery finds the post in the thread and marks it then.
            error!(run = %outcome.run_id, error = %format!("{e:#}"), "the outcome is posted but could not be marked so");
        }
    }

    fn keep_unrecorded(&self, u: Unrecorded) {
        self.deliveries
            .unrecorded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(u);
    }

    /// Delivers what earlier attempts left: outcomes only this process knows, then the store's
    /// undelivered outcomes (interrupted runs' notices among them). One redelivery at a time.
    pub(crate) async fn redeliver(&self) {
        let _one = self.deliveries.redelivery.lock().await;
        let unrecorded = std::mem::take(
            &mut *self
                .deliveries
                .unrecorded
                .lock()
                .unwrap_or_else(|p| p.into_inner()),
        );
        for mut u in unrecorded {
            let Some(_claim) = self.claim(&u.outcome.run_id) else {
                self.keep_unrecorded(u);
                continue;
            };
            if !u.delivered {
                match self.deliver(&u.outcome, true).await {
                    Ok(_) => u.delivered = true,
                    Err(e) => {
                        warn!(run = %u.outcome.run_id, error = %e, "could not post the outcome; will retry on the next settings push")
                    }
                }
            }
            if !u.delivered {
                self.keep_unrecorded(u);
                continue;
            }
            self.confirm(u.outcome, Some(u.result));
        }
        let rows = match self.store.undelivered_outcomes() {
            Ok(r) => r,
            Err(e) => {
                return warn!(error = %format!("{e:#}"), "redelivery finished: could not read undelivered outcomes")
            }
        };
        let mut posted = 0;
        for (r, text) in rows {
            // Claimed: its run is posting it right now.
            let Some(_claim) = self.claim(&r.id) else {
                continue;
            };
            if r.root_id.is_empty() {
                let _ = self.store.mark_outcome_posted(&r.id);
                continue;
            }
            let told = text.is_none();
            let outcome = Outcome {
                run_id: r.id.clone(),
                channel_id: r.channel_id.clone(),
                root_id: r.root_id.clone(),
                status: r.status,
                text: text.unwrap_or_else(|| OutcomeText {
                    body: render::interrupted(),
                    footer: String::new(),
                }),
                file_ids: vec![],
            };
            match self.deliver(&outcome, true).await {
                Ok(delivered) => {
                    posted += usize::from(delivered == Delivered::Posted);
                    if delivered == Delivered::Posted && told {
                        if let Some(pid) = &r.progress_post_id {
                            let elapsed =
                                Duration::from_millis((now_ms() - r.created_at).max(0) as u64);
                            let message =
                                render::progress_final(RunStatus::Interrupted, &r.project, elapsed);
                            let _ = self
                                .chat
                                .update_post(
                                    pid,
                                    &message,
                                    Some(progress_props(&r.id, RunStatus::Interrupted, None)),
                                )
                                .await;
                        }
                    }
                    if let Err(e) = self.store.mark_outcome_posted(&r.id) {
                        error!(run = %r.id, error = %format!("{e:#}"), "the outcome is posted but could not be marked so");
                    }
                }
                Err(e) => {
                    warn!(run = %r.id, error = %e, "could not post the outcome; will retry on the next settings push")
                }
            }
        }
        info!(posted, "redelivery finished");
    }

    /// One attempt at an outcome. With `look_first` (any attempt but a run's first), the thread is
    /// read first and only what it lacks is posted.
    async fn deliver(&self, outcome: &Outcome, look_first: bool) -> Result<Delivered, ChatError> {
        let present = if look_first {
            self.in_thread(outcome).await?
        } else {
            InThread::default()
        };
        if present.outcome {
            info!(run = %outcome.run_id, "the outcome post is already in the thread");
            return Ok(Delivered::AlreadyThere);
        }
        self.post_outcome(outcome, &present.parts).await?;
        Ok(Delivered::Posted)
    }

    async fn in_thread(&self, outcome: &Outcome) -> Result<InThread, ChatError> {
        let bot = self.bot_id();
        let mut present = InThread::default();
        let ours = |p: &crate::chat::Post, key: &str| {
            p.props.get(key).and_then(Value::as_str).map(String::from)
        };
        for p in self.chat.thread(&outcome.root_id).await? {
            if p.user_id != bot || ours(&p, "codex_run_id").as_deref() != Some(&outcome.run_id) {
                continue;
            }
            match PostKind::of(&p.props) {
                Some(PostKind::Outcome) => present.outcome = true,
                Some(PostKind::AnswerPart) => present
                    .parts
                    .extend(p.props.get("codex_part").and_then(Value::as_u64)),
                _ => {}
            }
        }
        Ok(present)
    }

    /// The `pending_post_id` of one post of a run's outcome: the same for every attempt.
    fn outcome_pending_id(&self, run_id: &str, part: Option<usize>) -> String {
        match part {
            Some(n) => format!("{}:{run_id}:part:{n}", self.bot_id()),
            None => format!("{}:{run_id}:outcome", self.bot_id()),
        }
    }

    /// Posts an outcome: one post, parts that each fit on a phone's screen, or, for longer
    /// answers, the largest parts or a file, saying that more follows (`render::layout_answer`).
    /// Parts listed in `skip` are in the thread already.
    async fn post_outcome(&self, o: &Outcome, skip: &HashSet<u64>) -> Result<(), ChatError> {
        let (body, footer) = (&o.text.body, &o.text.footer);
        let post = |message: String, props: Value, file_ids: Vec<String>| NewPost {
            channel_id: o.channel_id.clone(),
            root_id: o.root_id.clone(),
            message,
            props,
            file_ids,
        };
        let retry = matches!(
            o.status,
            RunStatus::Failed | RunStatus::TimedOut | RunStatus::Interrupted
        )
        .then(|| self.buttons(&o.run_id, &[ButtonAction::Retry], RETRY_TTL_S))
        .flatten();
        let outcome = outcome_props(&o.run_id, o.status, retry);
        let final_id = self.outcome_pending_id(&o.run_id, None);
        let head = match render::layout_answer(body, footer, MAX_ANSWER_PARTS) {
            render::Layout::One => {
                let full = format!("{body}{footer}");
                self.chat
                    .create_post_once(post(full, outcome, o.file_ids.clone()), &final_id)
                    .await?;
                return Ok(());
            }
            render::Layout::Parts { parts, tall } => {
                let n = parts.len();
                for (i, part) in parts.into_iter().enumerate() {
                    let label = render::part_label(i + 1, n, tall);
                    if i + 1 < n {
                        if skip.contains(&(i as u64 + 1)) {
                            continue;
                        }
                        let mut props = PostKind::AnswerPart.props(&o.run_id, None);
                        props["codex_part"] = json!(i + 1);
                        self.chat
                            .create_post_once(
                                post(format!("{label}{part}"), props, vec![]),
                                &self.outcome_pending_id(&o.run_id, Some(i + 1)),
                            )
                            .await?;
                    } else {
                        self.chat
                            .create_post_once(
                                post(
                                    format!("{label}{part}{footer}"),
                                    outcome.clone(),
                                    o.file_ids.clone(),
                                ),
                                &final_id,
                            )
                            .await?;
                    }
                }
                return Ok(());
            }
            render::Layout::File { head } => head,
        };
        let name = format!("codex-answer-{}.md", &o.run_id[..8.min(o.run_id.len())]);
        let file_id = self
            .chat
            .upload_file(&o.channel_id, &name, body.as_bytes().to_vec())
            .await?;
        let message = format!(
            "{head}\n\n*… more follows: the full answer ({} characters) is attached as `{name}`.*{footer}",
            body.chars().count()
        );
        let mut file_ids = vec![file_id];
        file_ids.extend(o.file_ids.iter().cloned());
        self.chat
            .create_post_once(post(message, outcome, file_ids), &final_id)
            .await?;
        Ok(())
    }
}
