//! Runs that need approval: the request post with Approve and Deny, the wait (stored, so it
//! survives restarts, and a restart never approves anything by itself), distinct approvers
//! counted against `min-approvals`, and the one outcome a denied, expired or withdrawn request
//! ends in. An approved run is queued like any other.

use super::*;

/// What an approval asks for, stored with the pending run.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub(super) struct ApprovalSpec {
    pub approvers: Vec<String>,
    pub min_approvals: u32,
    pub reason: String,
    pub rules: Vec<String>,
    pub allow_self_approval: bool,
    pub expires_at_ms: i64,
}

impl ApprovalSpec {
    fn left(&self) -> Duration {
        Duration::from_millis((self.expires_at_ms - now_ms()).max(0) as u64)
    }

    fn listed(&self, user: &User) -> bool {
        self.approvers.iter().any(|a| {
            let a = a.trim().trim_start_matches('@');
            a == user.id || a.eq_ignore_ascii_case(&user.username)
        })
    }

    fn who(&self) -> String {
        render::mentions(&self.approvers)
    }
}

/// A plan as stored with a pending approval, so a restarted host can resume the wait. It holds
/// the sandbox, model and timeout already tightened by the policy's limits, so an approval given
/// after a restart still runs within them.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(super) struct PlanRecord {
    user: User,
    channel: Channel,
    project: String,
    root_id: String,
    prompt: String,
    trigger_post_id: Option<String>,
    #[serde(default)]
    file_ids: Vec<String>,
    sandbox: Sandbox,
    model: Option<String>,
    timeout_secs: u64,
    /// The transcript frozen at acceptance: an approved run gets exactly what was approved.
    #[serde(default)]
    context: Option<render::Transcript>,
}

impl PlanRecord {
    pub fn of(p: &Plan) -> PlanRecord {
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

fn approval_props(run_id: &str, status: &str) -> Value {
    json!({"codex_kind": "approval", "codex_run_id": run_id, "codex_status": status})
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
        let spec: ApprovalSpec = serde_json::from_value(row.spec.clone()).unwrap_or_default();
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
        // A crash can fall between posting the request and recording its id: look before posting.
        let existing = match row.post_id {
            Some(id) => Some(id),
            None => self.find_approval_post(&root_id, &plan.run_id).await,
        };
        if let Some(id) = &existing {
            let _ = self.store.set_approval_post(&plan.run_id, id);
        } else {
            let msg = self.approval_message(&PlanRecord::of(&plan), &spec, &row.approved_by);
            let props = with_buttons(
                approval_props(&plan.run_id, "awaiting_approval"),
                self.approval_buttons(&plan.run_id, &spec),
            );
            match self
                .chat
                .create_post(NewPost {
                    channel_id: plan.channel.id.clone(),
                    root_id: root_id.clone(),
                    message: msg,
                    props,
                    file_ids: vec![],
                })
                .await
            {
                Ok(p) => {
                    let _ = self.store.set_approval_post(&plan.run_id, &p.id);
                }
                Err(e) => warn!(error = %e, "could not post the approval request"),
            }
        }
        let notify = self
            .approval_waiters
            .lock()
            .unwrap()
            .entry(plan.run_id.clone())
            .or_default()
            .clone();
        let outcome = loop {
            let row = self.store.approval(&plan.run_id).ok().flatten();
            match row.as_ref().map(|r| r.state.as_str()) {
                Some("approved") => break None,
                Some("denied") => {
                    let by = row.and_then(|r| r.decided_by).unwrap_or_default();
                    break Some((RunStatus::Refused, render::denied(&by, &spec.reason)));
                }
                Some("pending") => {}
                _ => break Some((RunStatus::Refused, render::approval_expired(&spec.reason))),
            }
            if spec.left().is_zero() {
                // Fail closed: nobody approved in time.
                if self
                    .store
                    .decide_approval(&plan.run_id, "expired", "")
                    .unwrap_or(false)
                {
                    let _ = self.store.audit(
                        "approval.expired",
                        Some(&plan.run_id),
                        &plan.user.id,
                        &plan.channel.id,
                        &json!({}),
                    );
                    self.close_approval_post(&plan, "expired", &[]).await;
                }
                continue;
            }
            tokio::select! {
                _ = notify.notified() => {}
                _ = tokio::time::sleep(spec.left()) => {}
                _ = active.cancel.cancelled() => {
                    let reason = active.reason.lock().unwrap().clone();
                    let Some(StopReason::Cancelled { by }) = reason else {
                        // The host is stopping: the approval stays pending; the next start resumes it.
                        self.active.lock().unwrap().remove(&plan.run_id);
                        self.approval_waiters.lock().unwrap().remove(&plan.run_id);
                        return RunStatus::AwaitingApproval;
                    };
                    let _ = self.store.decide_approval(&plan.run_id, "withdrawn", &by);
                    self.close_approval_post(&plan, "withdrawn", std::slice::from_ref(&by)).await;
                    break Some((RunStatus::Cancelled, render::cancelled(&by, None)));
                }
            }
        };
        self.approval_waiters.lock().unwrap().remove(&plan.run_id);
        if let Some((status, body)) = outcome {
            self.active.lock().unwrap().remove(&plan.run_id);
            self.finish_early(&plan, &root_id, status, &body).await;
            return status;
        }
        let _ = self.store.mark_queued(&plan.run_id);
        match self.scheduler.admit(&plan.run_id, &plan.thread_key) {
            Ok(admission) => self.drive(plan, admission, active).await,
            Err(full) => {
                self.active.lock().unwrap().remove(&plan.run_id);
                let body = render::refused(&format!(
                    "it was approved, but {} runs are already waiting (the queue limit). Ask again in a few minutes.",
                    full.waiting
                ));
                self.finish_early(&plan, &root_id, RunStatus::Refused, &body)
                    .await;
                RunStatus::Refused
            }
        }
    }

    async fn find_approval_post(&self, root_id: &str, run_id: &str) -> Option<String> {
        let posts = self.chat.thread(root_id).await.ok()?;
        posts
            .into_iter()
            .find(|p| {
                p.props.get("codex_kind").and_then(Value::as_str) == Some("approval")
                    && p.props.get("codex_run_id").and_then(Value::as_str) == Some(run_id)
            })
            .map(|p| p.id)
    }

    fn approval_buttons(&self, run_id: &str, spec: &ApprovalSpec) -> Option<Value> {
        self.buttons(
            run_id,
            &[ButtonAction::Approve, ButtonAction::Deny],
            spec.left().as_secs() as i64 + 60,
        )
    }

    /// The request post for `plan`, showing the sandbox, timeout and model the run will get.
    fn approval_message(
        &self,
        plan: &PlanRecord,
        spec: &ApprovalSpec,
        approved_by: &[String],
    ) -> String {
        let redactor = self.redactor();
        redactor.redact(&render::approval_request(&render::ApprovalView {
            requester: &plan.user.username,
            project: &plan.project,
            prompt: &redactor.redact(&plan.prompt),
            reason: &spec.reason,
            rules: &spec.rules,
            approvers: &spec.approvers,
            min_approvals: spec.min_approvals,
            expires_in: spec.left(),
            approved_by,
            sandbox: plan.sandbox.as_str(),
            timeout: Duration::from_secs(plan.timeout_secs),
            model: plan.model.as_deref(),
            context: plan.context.as_ref(),
        }))
    }

    /// Replaces the approval request's buttons with how it was closed.
    async fn close_approval_post(&self, plan: &Plan, word: &str, by: &[String]) {
        let Some(post_id) = self
            .store
            .approval(&plan.run_id)
            .ok()
            .flatten()
            .and_then(|r| r.post_id)
        else {
            return;
        };
        let msg = render::approval_closed(word, by, &self.redactor().redact(&plan.prompt));
        if let Err(e) = self
            .chat
            .update_post(&post_id, &msg, Some(approval_props(&plan.run_id, word)))
            .await
        {
            warn!(error = %e, "could not update the approval request");
        }
    }

    /// An outcome for a run that never started Codex (denied, expired, withdrawn, no room).
    async fn finish_early(&self, plan: &Plan, root_id: &str, status: RunStatus, body: &str) {
        let res = RunResult {
            summary: render::one_line(body, 500),
            ..Default::default()
        };
        let footer = render::footer(&render::Footer {
            project: &plan.project.name,
            ..Default::default()
        });
        let outcome = Outcome {
            run_id: plan.run_id.clone(),
            channel_id: plan.channel.id.clone(),
            root_id: root_id.to_string(),
            status,
            text: OutcomeText {
                body: body.to_string(),
                footer,
            },
        };
        let Some(recorded) = self.record_outcome(&outcome, res) else {
            return;
        };
        let _ = self.store.audit(
            "run.finished",
            Some(&plan.run_id),
            &plan.user.id,
            &plan.channel.id,
            &json!({"status": status.as_str()}),
        );
        self.deliver_in_run(outcome, recorded).await;
    }

    /// Restarts the waits of approvals that were pending when the host last stopped. Each wait
    /// resumes where it was, or expires; nothing is approved by the restart.
    pub(super) fn resume_approvals(self: &Arc<Self>, cfg: &Config) {
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
                let _ = self.store.decide_approval(&run_id, "expired", "");
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

    /// Approve or Deny on an approval request: only listed approvers (and system admins when
    /// the setting allows) decide; the requester approves only if the policy allows it; each
    /// person's approval counts once.
    pub(super) async fn approval_click(
        &self,
        approve: bool,
        nonce: &str,
        user: &User,
        run: &RunRow,
        req: &ActionRequest,
        cfg: &Config,
    ) -> ActionResponse {
        let eph = |t: String| ActionResponse {
            update: None,
            ephemeral_text: t,
        };
        let Some(row) = self.store.approval(&run.id).ok().flatten() else {
            return eph("There is no approval pending for this run.".into());
        };
        if row.state != "pending" {
            return eph(format!("This request was already {}.", row.state));
        }
        let spec: ApprovalSpec = serde_json::from_value(row.spec.clone()).unwrap_or_default();
        let Ok(plan) = serde_json::from_value::<PlanRecord>(row.plan.clone()) else {
            // Unreadable, it could never run within its limits: resuming it expires it too.
            return eph(
                "This approval request can no longer be decided; ask for the run again.".into(),
            );
        };
        let action = if approve { "approve" } else { "deny" };
        let refuse = |reason: &str, text: String| {
            let _ = self.store.audit(
                "action.refused",
                Some(&run.id),
                &user.id,
                &req.channel_id,
                &json!({"reason": reason, "action": action}),
            );
            eph(text)
        };
        if approve && user.id == run.user_id && !spec.allow_self_approval {
            return refuse(
                "self-approval",
                format!("You cannot approve your own request; ask {}.", spec.who()),
            );
        }
        let admin = user.is_system_admin() && cfg.settings.approvers_include_admins;
        if !(spec.listed(user) || admin) {
            return refuse(
                "not-permitted",
                format!("Only {} can approve or deny this request.", spec.who()),
            );
        }
        // One button serves every approver, so a replay is the same person clicking again.
        if !self.spend(&format!("{nonce}:{}", user.id), user, run, req) {
            return eph("You already answered this request.".into());
        }
        let update = if approve {
            let by = self
                .store
                .add_approver(&run.id, &user.username)
                .unwrap_or_default();
            let _ = self.store.audit(
                "approval.approve",
                Some(&run.id),
                &user.id,
                &req.channel_id,
                &json!({"by": user.username, "count": by.len(), "needed": spec.min_approvals}),
            );
            if by.len() as u32 >= spec.min_approvals
                && self
                    .store
                    .decide_approval(&run.id, "approved", &by.join(","))
                    .unwrap_or(false)
            {
                ActionUpdate {
                    message: render::approval_closed(
                        "granted",
                        &by,
                        &self.redactor().redact(&run.prompt),
                    ),
                    props: approval_props(&run.id, "approved"),
                }
            } else {
                let mut props = with_buttons(
                    approval_props(&run.id, "awaiting_approval"),
                    self.approval_buttons(&run.id, &spec),
                );
                props["codex_approved_by"] = json!(by);
                ActionUpdate {
                    message: self.approval_message(&plan, &spec, &by),
                    props,
                }
            }
        } else {
            let _ = self
                .store
                .decide_approval(&run.id, "denied", &user.username);
            let _ = self.store.audit(
                "approval.deny",
                Some(&run.id),
                &user.id,
                &req.channel_id,
                &json!({"by": user.username}),
            );
            ActionUpdate {
                message: render::approval_closed(
                    "denied",
                    std::slice::from_ref(&user.username),
                    &self.redactor().redact(&run.prompt),
                ),
                props: approval_props(&run.id, "denied"),
            }
        };
        if let Some(n) = self.approval_waiters.lock().unwrap().get(&run.id) {
            n.notify_one();
        }
        ActionResponse {
            update: Some(update),
            ephemeral_text: String::new(),
        }
    }
}
