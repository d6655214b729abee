//! The progress post: created when a run is admitted, showing its queue position while it
//! waits, then edited while Codex works — the current step, the plan as a checklist, the agent's
//! text as it streams — at most every [`PROGRESS_INTERVAL`]: on every change, otherwise every few
//! seconds to move the clock; finally closed by the outcome.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::{Plan, Run, PROGRESS_INTERVAL};
use crate::chat::NewPost;
use crate::model::RunStatus;
use crate::protocol::{with_buttons, PostKind};
use crate::render;
use crate::runner::app_server::incoming::PlanStepStatus;
use crate::runner::{Admission, RunState};
use crate::state::{ActiveRun, Host};

/// Without a change, the progress post is still edited this often, so its clock moves.
const CLOCK_REFRESH: Duration = Duration::from_secs(5);

pub(super) fn progress_props(run_id: &str, status: RunStatus, buttons: Option<Value>) -> Value {
    with_buttons(
        PostKind::Progress.props(run_id, Some(status.as_str())),
        buttons,
    )
}

impl Host {
    /// Posts the run's progress post (queued, at `position`); `None` when Mattermost refused,
    /// and the run goes on without one.
    pub(super) async fn open_progress(
        &self,
        plan: &Plan,
        root_id: &str,
        position: usize,
        cancel_button: &Option<Value>,
    ) -> Option<String> {
        let first = render::progress(&render::Progress {
            project: &plan.project.name,
            queue_position: (position > 0).then_some(position),
            ..Default::default()
        });
        let post = NewPost {
            channel_id: plan.channel.id.clone(),
            root_id: root_id.to_string(),
            message: first,
            props: progress_props(&plan.run_id, RunStatus::Queued, cancel_button.clone()),
            file_ids: vec![],
        };
        match self.chat.create_post(post).await {
            Ok(p) => {
                let _ = self.store.set_progress_post(&plan.run_id, &p.id);
                Some(p.id)
            }
            Err(e) => {
                warn!(error = %e, "could not post progress; continuing without it");
                None
            }
        }
    }

    /// Waits until the scheduler gives the run a slot (or it is cancelled), showing each new
    /// queue position.
    pub(super) async fn wait_for_slot(
        &self,
        plan: &Plan,
        progress_id: Option<&str>,
        cancel_button: &Option<Value>,
        admission: &mut Admission,
        active: &ActiveRun,
    ) {
        loop {
            let pos = *admission.position.borrow_and_update();
            if pos == 0 {
                break;
            }
            if let Some(pid) = progress_id {
                let msg = render::progress(&render::Progress {
                    project: &plan.project.name,
                    queue_position: Some(pos),
                    ..Default::default()
                });
                let props = progress_props(&plan.run_id, RunStatus::Queued, cancel_button.clone());
                let _ = self.chat.update_post(pid, &msg, Some(props)).await;
            }
            tokio::select! {
                changed = admission.position.changed() => if changed.is_err() { break },
                _ = active.cancel.cancelled() => break,
            }
        }
    }

    /// Edits the progress post from `state` until `stop` fires.
    pub(super) async fn tick_progress(
        &self,
        run: &Run,
        progress_id: &str,
        state: &Mutex<RunState>,
        props: &Value,
        stop: &CancellationToken,
    ) {
        let redactor = self.redactor();
        let mut shown = 0u64;
        let mut last_edit = Instant::now();
        let mut interval = tokio::time::interval(PROGRESS_INTERVAL);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = interval.tick() => {}
                _ = stop.cancelled() => break,
            }
            let (rev, msg) = {
                let s = state.lock().unwrap();
                (
                    s.revision,
                    render::progress(&render::Progress {
                        project: &run.plan.project.name,
                        elapsed: run.started.elapsed(),
                        step: s.step.clone(),
                        steps_done: s.steps_done,
                        queue_position: None,
                        plan: s
                            .plan
                            .iter()
                            .map(|p| render::PlanItem {
                                step: p.step.clone(),
                                done: p.status == PlanStepStatus::Completed,
                                active: p.status == PlanStepStatus::InProgress,
                            })
                            .collect(),
                        streaming: s.streaming.as_ref().map(|(_, text)| text.clone()),
                    }),
                )
            };
            // Edit on every change; otherwise refresh the clock every few seconds.
            if rev != shown || last_edit.elapsed() >= CLOCK_REFRESH {
                shown = rev;
                last_edit = Instant::now();
                if let Err(e) = self
                    .chat
                    .update_post(progress_id, &redactor.redact(&msg), Some(props.clone()))
                    .await
                {
                    warn!(error = %e, "progress update failed");
                }
            }
        }
    }
}
