//! The runs side of an approval wait: the thread for it, then a queued run or an early outcome,
//! and the waits a restarted host resumes. The wait itself is `approvals`.

use std::sync::Arc;
use std::time::Duration;

use tracing::{info, warn, Instrument};

use super::{Placement, Plan};
use crate::approvals::{ApprovalEnd, PlanRecord, Waiting};
use crate::config::Config;
use crate::model::{ApprovalState, RunStatus};
use crate::render;
use crate::state::{ActiveRun, Host};

impl PlanRecord {
    pub(super) fn of(p: &Plan) -> PlanRecord {
        PlanRecord {
            user: p.user.clone(),
            channel: p.channel.clone(),
            project: p.project.name.clone(),
            root_id: match &p.placement {
                Placement::Thread { root_id } => root_id.clone(),
                Placement::NewRoot => String::new(),
            },
            prompt: p.prompt.clone(),
            trigger_post_id: p.trigger_post_id.clone(),
            file_ids: p.file_ids.clone(),
            sandbox: p.sandbox,
            model: p.model.clone(),
            timeout_secs: p.timeout.as_secs(),
            context: p.context.clone(),
        }
    }

    /// The plan again, for a run whose project is still configured. `root_id` is the run's
    /// stored root, which is newer than the record's when the bot started the thread.
    fn into_plan(self, run_id: &str, root_id: Option<String>, cfg: &Config) -> Option<Plan> {
        let project = cfg.projects.get(&self.project)?.clone();
        let root = root_id.filter(|r| !r.is_empty()).unwrap_or(self.root_id);
        let (placement, thread_key) = if root.is_empty() {
            (Placement::NewRoot, format!("new:{run_id}"))
        } else {
            (
                Placement::Thread {
                    root_id: root.clone(),
                },
                root,
            )
        };
        Some(Plan {
            run_id: run_id.to_string(),
            user: self.user,
            channel: self.channel,
            project,
            placement,
            prompt: self.prompt,
            trigger_post_id: self.trigger_post_id,
            file_ids: self.file_ids,
            sandbox: self.sandbox,
            model: self.model,
            timeout: Duration::from_secs(self.timeout_secs),
            thread_key,
            context: self.context,
        })
    }
}

impl Host {
    /// Holds an approval-gated run until it is approved (then runs it), denied, expired or
    /// withdrawn. Each of those ends in one outcome; a host stopping leaves it pending, stored.
    pub(super) async fn await_approval(
        self: Arc<Self>,
        mut plan: Plan,
        active: Arc<ActiveRun>,
    ) -> RunStatus {
        let Some(row) = self.store.approval(&plan.run_id).ok().flatten() else {
            self.active.lock().unwrap().remove(&plan.run_id);
            return RunStatus::Failed;
        };
        let root_id = match &plan.placement {
            Placement::Thread { root_id } => root_id.clone(),
            Placement::NewRoot => match self.start_thread(&plan, &active).await {
                Some(r) => r,
                None => {
                    self.active.lock().unwrap().remove(&plan.run_id);
                    return RunStatus::Failed;
                }
            },
        };
        plan.placement = Placement::Thread {
            root_id: root_id.clone(),
        };
        plan.thread_key = root_id.clone();
        let record = PlanRecord::of(&plan);
        let waiting = Waiting {
            run_id: &plan.run_id,
            root_id: &root_id,
            record: &record,
            active: &active,
        };
        let end = self.wait_for_approval(&waiting, row).await;
        let (status, body) = match end {
            ApprovalEnd::Approved => {
                let _ = self.store.mark_queued(&plan.run_id);
                match self.scheduler.admit(&plan.run_id, &plan.thread_key) {
                    Ok(admission) => return self.drive(plan, admission, active).await,
                    Err(full) => (
                        RunStatus::Refused,
                        render::refused(&format!(
                            "it was approved, but {} runs are already waiting (the queue limit). Ask again in a few minutes.",
                            full.waiting
                        )),
                    ),
                }
            }
            ApprovalEnd::HostStopping => {
                self.active.lock().unwrap().remove(&plan.run_id);
                return RunStatus::AwaitingApproval;
            }
            ApprovalEnd::Closed { status, body } => (status, body),
        };
        self.active.lock().unwrap().remove(&plan.run_id);
        self.finish_early(&plan, &root_id, status, &body).await;
        status
    }

    /// Restarts the waits of approvals that were pending when the host last stopped. Each wait
    /// resumes where it was, or expires; nothing is approved by the restart.
    pub(crate) fn resume_approvals(self: &Arc<Self>, cfg: &Config) {
        let Ok(pending) = self.store.pending_approvals() else {
            return;
        };
        for run_id in pending {
            if self.active.lock().unwrap().contains_key(&run_id) {
                continue;
            }
            let Some(row) = self.store.approval(&run_id).ok().flatten() else {
                continue;
            };
            let root = self.store.run(&run_id).ok().flatten().map(|r| r.root_id);
            let Some(plan) = serde_json::from_value::<PlanRecord>(row.plan.clone())
                .ok()
                .and_then(|r| r.into_plan(&run_id, root, cfg))
            else {
                warn!(run = %run_id, "a pending approval names a project that is no longer configured; it expires");
                let _ = self
                    .store
                    .decide_approval(&run_id, ApprovalState::Expired, "");
                continue;
            };
            let root = match &plan.placement {
                Placement::Thread { root_id } => root_id.as_str(),
                Placement::NewRoot => "",
            };
            let active = ActiveRun::new(&plan.user, &plan.channel.id, &plan.project.name, root);
            self.active
                .lock()
                .unwrap()
                .insert(run_id.clone(), active.clone());
            info!(run = %run_id, "resuming a pending approval");
            let host = self.clone();
            self.tasks.spawn(
                async move { host.await_approval(plan, active).await }
                    .instrument(tracing::info_span!("run", run = %run_id)),
            );
        }
    }
}
