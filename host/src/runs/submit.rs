//! Accepting a prompt: the project, the thread's frozen transcript, the policy's ruling on both,
//! a place in the queue (or an approval wait), the run's row, and the task that drives it.

use std::sync::Arc;

use serde_json::json;
use tracing::{warn, Instrument};

use super::{
    internal, no_project, project_terms, Accepted, Ask, Intent, Placement, Plan, Refusal, Trigger,
    NOT_LISTED_RULES,
};
use crate::approvals::{ApprovalSpec, PlanRecord};
use crate::chat::NewPost;
use crate::config::Config;
use crate::gate::{Action, Decision, RunTerms};
use crate::model::{RunMode, RunStatus};
use crate::protocol::{Channel, PostKind, User};
use crate::render;
use crate::state::{new_id, ActiveRun, Host};
use crate::store::{now_ms, RunResult, RunRow, ThreadRow};

/// A prompt someone sent, and where.
pub(crate) struct Submission<'a> {
    pub user: &'a User,
    pub channel: &'a Channel,
    /// The thread it was sent in; empty at channel level.
    pub root_id: &'a str,
    pub intent: Intent,
    pub prompt: &'a str,
    pub trigger: Option<Trigger>,
    /// Whether the bot may post in the channel (`CommandRequest::bot_can_post`).
    pub bot_can_post: bool,
}

const SHUTTING_DOWN: &str =
    "The Codex host is shutting down; nothing was started. Try again in a minute.";

impl Host {
    /// Accepts a prompt: resolves the project, reads and freezes the thread's transcript, asks
    /// the gate about both, admits it to the queue and starts driving it. An `Err` is a refusal
    /// to show the person (nothing was started).
    pub(crate) async fn submit(
        self: &Arc<Self>,
        cfg: &Config,
        s: Submission<'_>,
    ) -> Result<Accepted, Refusal> {
        let Submission {
            user,
            channel,
            root_id,
            intent,
            prompt,
            trigger,
            bot_can_post,
        } = s;
        if self.stopping.is_cancelled() {
            return Err(SHUTTING_DOWN.into());
        }
        if prompt.trim().is_empty() {
            return Err(
                "Give Codex something to do, e.g. `/codex fix the flaky login test`.".into(),
            );
        }
        if let Some(refusal) = self.snapshot().isolation.refusal() {
            return Err(refusal.into());
        }
        let thread = if root_id.is_empty() {
            None
        } else {
            self.store.thread(root_id).map_err(internal)?
        };
        // A thread id is only valid in its own channel: a forged root id must not resume another
        // channel's session or read its thread.
        if let Some(t) = thread.as_ref().filter(|t| t.channel_id != channel.id) {
            warn!(root = %t.root_id, thread_channel = %t.channel_id, channel = %channel.id, user = %user.id, "refused a thread from another channel");
            let _ = self.store.audit(
                "request.refused",
                None,
                &user.id,
                &channel.id,
                &json!({"reason": "thread-in-other-channel", "root_id": t.root_id}),
            );
            return Err(Refusal::from("That thread belongs to another channel, so Codex did not run. Use `/codex` in the thread's own channel."));
        }
        let (placement, project_name) = match intent {
            Intent::Continue => {
                let project = self
                    .active_project(cfg, &channel.id)
                    .ok_or_else(|| no_project(cfg))?;
                let latest = self.store.latest_thread(&channel.id, &project).map_err(internal)?.ok_or_else(|| {
                    format!("There is no earlier Codex session for `{project}` in this channel. Start one with `/codex <prompt>`.")
                })?;
                (
                    Placement::Thread {
                        root_id: latest.root_id,
                    },
                    project,
                )
            }
            _ if root_id.is_empty() => (
                Placement::NewRoot,
                self.active_project(cfg, &channel.id)
                    .ok_or_else(|| no_project(cfg))?,
            ),
            _ => {
                let project = match thread.as_ref().filter(|t| !t.project.is_empty()) {
                    Some(t) => t.project.clone(),
                    None => self
                        .active_project(cfg, &channel.id)
                        .ok_or_else(|| no_project(cfg))?,
                };
                (
                    Placement::Thread {
                        root_id: root_id.to_string(),
                    },
                    project,
                )
            }
        };
        let project = cfg.projects.get(&project_name).cloned().ok_or_else(|| {
            Refusal::from(format!("The project `{project_name}` is no longer configured. Pick one with `/codex project <name>`; configured: {}.", cfg.project_names()))
        })?;
        let action = match (intent, &placement) {
            (Intent::Retry, _) => Action::Retry,
            (Intent::Start, _) => Action::New,
            (_, Placement::Thread { .. }) => Action::Continue,
            _ => Action::New,
        };
        let run_id = new_id();
        let attachments = trigger.as_ref().map_or(0, |t| t.file_ids.len() as u32);
        let mut ask = Ask {
            prompt,
            project: Some(&project),
            root_id,
            run_id: Some(&run_id),
            attachments,
            ..Ask::new(user, channel, action)
        };
        if !bot_can_post {
            // Someone the policy refuses must not make the bot join a channel: judge the person,
            // the place and the prompt first (the thread is read, and judged, once the bot is in).
            let ruling = self.decide(cfg, ask.clone()).await;
            return Err(match ruling.decision {
                Decision::Deny { reason } => refusal_of(reason, &ruling.rules),
                _ => Refusal::needs_bot_access(),
            });
        }
        // What Codex gets besides the prompt is read now, judged with it and kept with the run.
        let (context, seen_until) = match &placement {
            Placement::Thread { root_id } => {
                let exclude = trigger.as_ref().map(|t| t.post_id.as_str());
                let thread_ask = Ask {
                    project: Some(&project),
                    root_id,
                    run_id: Some(&run_id),
                    ..Ask::new(user, channel, Action::Continue)
                };
                self.freeze_context(cfg, &thread_ask, exclude).await
            }
            Placement::NewRoot => (None, None),
        };
        if self.stopping.is_cancelled() {
            return Err(SHUTTING_DOWN.into());
        }
        ask.context = context.as_ref().map(|t| t.text.as_str());
        let ruling = self.decide(cfg, ask).await;
        // An approved run gets the same limits an allowed one would: the approval only adds a wait.
        let (limits, approval) = match ruling.decision {
            Decision::Deny { reason } => return Err(refusal_of(reason, &ruling.rules)),
            Decision::RequireApproval {
                approvers,
                min_approvals,
                reason,
                expiry,
                allow_self_approval,
                limits,
            } => {
                let spec = ApprovalSpec {
                    approvers,
                    min_approvals,
                    reason,
                    rules: ruling.rules.clone(),
                    allow_self_approval,
                    expires_at_ms: now_ms() + expiry.as_millis() as i64,
                };
                (limits, Some(spec))
            }
            Decision::Allow(limits) => (limits, None),
        };
        let RunTerms {
            sandbox,
            timeout,
            model,
        } = limits.apply(project_terms(cfg, &project));
        let thread_key = match &placement {
            Placement::NewRoot => format!("new:{run_id}"),
            Placement::Thread { root_id } => root_id.clone(),
        };
        let admission = match approval {
            Some(_) => None,
            None => Some(self.scheduler.admit(&run_id, &thread_key).map_err(|full| {
                format!("Codex is busy: {} runs are already waiting, which is the queue limit. Try again in a few minutes.", full.waiting)
            })?),
        };
        if let Placement::Thread { root_id } = &placement {
            if thread.is_none() {
                // A thread people started among themselves: bind a new session to it.
                let row = ThreadRow {
                    root_id: root_id.clone(),
                    channel_id: channel.id.clone(),
                    project: project.name.clone(),
                    codex_thread_id: None,
                    bot_started: intent == Intent::Start,
                    seen_until: 0,
                };
                if let Err(e) = self.store.insert_thread(&row) {
                    self.scheduler.withdraw(&run_id);
                    return Err(internal(e).into());
                }
            }
        }
        let root_for_row = match &placement {
            Placement::NewRoot => String::new(),
            Placement::Thread { root_id } => root_id.clone(),
        };
        let row = RunRow {
            id: run_id.clone(),
            root_id: root_for_row.clone(),
            channel_id: channel.id.clone(),
            user_id: user.id.clone(),
            username: user.username.clone(),
            project: project.name.clone(),
            // Stored for `/codex last`, approval posts and retries; Codex gets the prompt from `plan`.
            prompt: self.redactor().redact(prompt),
            mode: RunMode::Pending,
            status: if approval.is_some() {
                RunStatus::AwaitingApproval
            } else {
                RunStatus::Queued
            },
            progress_post_id: None,
            created_at: now_ms(),
            started_at: None,
            finished_at: None,
            exit_code: None,
            summary: None,
        };
        if let Err(e) = self.store.insert_run(&row) {
            self.scheduler.withdraw(&run_id);
            return Err(internal(e).into());
        }
        if let (Placement::Thread { root_id }, Some(mark)) = (&placement, seen_until) {
            // The next run in this thread gets what was posted after this acceptance.
            let _ = self.store.set_seen_until(root_id, mark);
        }
        let _ = self.store.audit(
            "run.accepted",
            Some(&run_id),
            &user.id,
            &channel.id,
            &json!({"project": project.name, "sandbox": sandbox.as_str(), "needs_approval": approval.is_some(),
                    "context_messages": context.as_ref().map_or(0, |t| t.messages), "context_authors": context.as_ref().map(|t| t.authors.clone()).unwrap_or_default()}),
        );
        let active = ActiveRun::new(user, &channel.id, &project.name, &root_for_row);
        self.active
            .lock()
            .unwrap()
            .insert(run_id.clone(), active.clone());
        let position = admission.as_ref().map_or(0, |a| *a.position.borrow());
        let plan = Plan {
            run_id: run_id.clone(),
            user: user.clone(),
            channel: channel.clone(),
            project,
            placement,
            prompt: prompt.to_string(),
            trigger_post_id: trigger.as_ref().map(|t| t.post_id.clone()),
            file_ids: trigger.map(|t| t.file_ids).unwrap_or_default(),
            sandbox,
            model,
            timeout,
            thread_key,
            context,
        };
        if let Some(spec) = &approval {
            let record = PlanRecord::of(&plan);
            if let Err(e) = self.store.insert_approval(
                &run_id,
                &json!(spec),
                &json!(record),
                spec.expires_at_ms,
            ) {
                self.active.lock().unwrap().remove(&run_id);
                let _ = self
                    .store
                    .finish_run(&run_id, RunStatus::Failed, &RunResult::default());
                return Err(internal(e).into());
            }
        }
        let (done_tx, done) = tokio::sync::oneshot::channel();
        let host = self.clone();
        let span = tracing::info_span!("run", run = %run_id, user = %user.username, project = %plan.project.name);
        let needs_approval = approval.is_some();
        self.tasks.spawn(
            async move {
                let status = match admission {
                    Some(admission) => host.drive(plan, admission, active).await,
                    None => host.await_approval(plan, active).await,
                };
                let _ = done_tx.send(status);
            }
            .instrument(span),
        );
        Ok(Accepted {
            run_id,
            position,
            needs_approval,
            done,
        })
    }

    /// Posts the root of a new thread for a channel-level prompt and records it. `None` when
    /// Mattermost refused (the run is then recorded as failed: there is no thread to tell).
    pub(super) async fn start_thread(&self, plan: &Plan, active: &ActiveRun) -> Option<String> {
        let root = NewPost {
            channel_id: plan.channel.id.clone(),
            root_id: String::new(),
            message: render::thread_root(
                &plan.user.username,
                &plan.project.name,
                &self.redactor().redact(&plan.prompt),
            ),
            props: PostKind::Root.props(&plan.run_id, None),
            file_ids: vec![],
        };
        match self.chat.create_post(root).await {
            Ok(p) => {
                // From now on a reply in this thread waits for this run (when it is admitted).
                self.scheduler.rekey(&plan.run_id, &p.id);
                let _ = self.store.insert_thread(&ThreadRow {
                    root_id: p.id.clone(),
                    channel_id: plan.channel.id.clone(),
                    project: plan.project.name.clone(),
                    codex_thread_id: None,
                    bot_started: true,
                    seen_until: p.create_at,
                });
                let _ = self.store.set_root(&plan.run_id, &p.id);
                *active.root_id.lock().unwrap() = p.id.clone();
                Some(p.id)
            }
            Err(e) => {
                warn!(error = %e, "could not start the thread; the run is abandoned");
                let res = RunResult {
                    summary: format!("could not post to Mattermost: {e}"),
                    ..Default::default()
                };
                let _ = self.store.finish_run(&plan.run_id, RunStatus::Failed, &res);
                None
            }
        }
    }
}

/// What the person is told when the policy denies their prompt for `rules`.
fn refusal_of(reason: String, rules: &[String]) -> Refusal {
    Refusal {
        text: format!("Codex did not run: {reason}"),
        may_request_access: rules.iter().any(|r| NOT_LISTED_RULES.contains(&r.as_str())),
        needs_bot_access: false,
    }
}
