//! What a run ended in: its status, the outcome text (answer, failure, cancel, timeout,
//! interruption, refusal) with its footer, the recorded result, the closed progress post; then
//! the outcome goes to `delivery`. Exactly one outcome per run.

use std::time::Duration;

use serde_json::{json, Value};

use super::changes::diff_stat;
use super::progress::progress_props;
use super::{Plan, Run};
use crate::model::RunStatus;
use crate::protocol::{with_buttons, PostKind};
use crate::render;
use crate::runner::{Ending, RunState};
use crate::state::{Host, Outcome, StopReason};
use crate::store::{OutcomeText, RunResult};

/// A run that took at least this long @-mentions its requester in the outcome, so that their
/// phone buzzes; a quicker answer arrives while they are still looking.
pub(crate) const NOTIFY_AFTER: Duration = Duration::from_secs(5);

/// How Codex (or the attempt to start it) ended.
pub(super) struct Finish {
    pub ending: Ending,
    pub state: RunState,
    pub stderr_tail: String,
}

impl Finish {
    /// Ended before Codex said anything.
    pub fn ended(ending: Ending) -> Finish {
        Finish {
            ending,
            state: RunState::default(),
            stderr_tail: String::new(),
        }
    }

    /// Codex could not run: `failure` says why.
    pub fn failed(failure: String) -> Finish {
        Finish {
            state: RunState {
                failure: Some(failure),
                ..Default::default()
            },
            ..Finish::ended(Ending::Exited(None))
        }
    }
}

pub(super) fn outcome_props(run_id: &str, status: RunStatus, buttons: Option<Value>) -> Value {
    with_buttons(
        PostKind::Outcome.props(run_id, Some(status.as_str())),
        buttons,
    )
}

impl Host {
    /// Decides the outcome, posts it, records it. Exactly one call per run.
    pub(super) async fn conclude(&self, run: &Run, finish: Finish) -> RunStatus {
        let Finish {
            ending,
            state,
            stderr_tail,
        } = finish;
        let plan = &run.plan;
        let redactor = self.redactor();
        let elapsed = run.started.elapsed();
        let reason = run.active.reason.lock().unwrap().clone();
        let partial = state.last_message.as_deref().map(|m| redactor.redact(m));
        let (status, body, exit_code) = match ending {
            Ending::Cancelled => match reason {
                Some(StopReason::Shutdown) => (RunStatus::Interrupted, render::interrupted(), None),
                Some(StopReason::Cancelled { by }) => (
                    RunStatus::Cancelled,
                    render::cancelled(&by, partial.as_deref()),
                    None,
                ),
                None => (
                    RunStatus::Cancelled,
                    render::cancelled("someone", partial.as_deref()),
                    None,
                ),
            },
            Ending::TimedOut => (
                RunStatus::TimedOut,
                render::timed_out(plan.timeout, partial.as_deref()),
                None,
            ),
            Ending::Exited(code) if code == Some(0) && state.failure.is_none() => (
                RunStatus::Answered,
                render::answer(partial.as_deref()),
                code,
            ),
            Ending::Exited(code) => {
                let message = state
                    .failure
                    .clone()
                    .filter(|m| !m.is_empty())
                    .or(state.last_error.clone())
                    .or_else(|| {
                        stderr_tail
                            .lines()
                            .rev()
                            .find_map(|l| l.trim().strip_prefix("Error: ").map(String::from))
                    })
                    .unwrap_or_default();
                let tail = stderr_summary(&stderr_tail);
                (
                    RunStatus::Failed,
                    redactor.redact(&render::failed(code, &message, &tail)),
                    code,
                )
            }
        };
        let (lines_added, lines_removed) = state.diff.as_deref().map_or((0, 0), diff_stat);
        let footer = render::footer(&render::Footer {
            project: &plan.project.name,
            elapsed,
            files_changed: state.files_changed.len(),
            lines_added,
            lines_removed,
            exit_code,
            input_tokens: state.usage.input_tokens,
            output_tokens: state.usage.output_tokens,
            rate_limits: state.rate_limits,
            notify: (elapsed >= NOTIFY_AFTER).then_some(plan.user.username.as_str()),
        }) + &self.branch_line(run);
        let file_ids = self
            .attach_diff(&plan.channel.id, state.diff.as_deref())
            .await
            .into_iter()
            .collect();
        let result = RunResult {
            exit_code,
            summary: render::one_line(&body, 500),
            output_tail: redactor
                .redact(&stderr_tail)
                .chars()
                .rev()
                .take(2000)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect(),
            input_tokens: state.usage.input_tokens,
            output_tokens: state.usage.output_tokens,
            files_changed: state.files_changed.len(),
            outcome: None,
        };
        let outcome = Outcome {
            run_id: plan.run_id.clone(),
            channel_id: plan.channel.id.clone(),
            root_id: run.root_id.clone(),
            status,
            text: OutcomeText { body, footer },
            file_ids,
        };
        let Some(recorded) = self.record_outcome(&outcome, result) else {
            return status;
        };
        self.metrics.run_ended(status);
        let _ = self.store.audit("run.finished", Some(&plan.run_id), &plan.user.id, &plan.channel.id, &json!({"status": status.as_str(), "exit_code": exit_code, "elapsed_ms": elapsed.as_millis() as u64}));
        if let Some(pid) = &run.progress_id {
            let _ = self
                .chat
                .update_post(
                    pid,
                    &render::progress_final(status, &plan.project.name, elapsed),
                    Some(progress_props(&plan.run_id, status, None)),
                )
                .await;
        }
        self.deliver_in_run(outcome, recorded).await;
        status
    }

    /// An outcome for a run that never started Codex (denied, expired, withdrawn, no room).
    pub(super) async fn finish_early(
        &self,
        plan: &Plan,
        root_id: &str,
        status: RunStatus,
        body: &str,
    ) {
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
            file_ids: vec![],
        };
        let Some(recorded) = self.record_outcome(&outcome, res) else {
            return;
        };
        self.metrics.run_ended(status);
        let _ = self.store.audit(
            "run.finished",
            Some(&plan.run_id),
            &plan.user.id,
            &plan.channel.id,
            &json!({"status": status.as_str()}),
        );
        self.deliver_in_run(outcome, recorded).await;
    }
}

/// The last lines of Codex's stderr worth showing a person: without its fixed stdin notice and
/// without backtraces.
fn stderr_summary(stderr: &str) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty() && !l.starts_with("Reading additional input from stdin"))
        .take_while(|l| !l.starts_with("Stack backtrace:") && !l.starts_with("stack backtrace:"))
        .collect();
    lines[lines.len().saturating_sub(8)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stderr_summary_drops_noise() {
        let s = "Reading additional input from stdin...\nError: thread/resume failed: no rollout found\n\nStack backtrace:\n   0: foo";
        assert_eq!(
            stderr_summary(s),
            "Error: thread/resume failed: no rollout found"
        );
    }
}
