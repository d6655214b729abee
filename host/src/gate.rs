//! Who may do what, where: the host's seam to the policy engine.
//!
//! Input: a [`GateRequest`] (who, where, what); output: a [`Ruling`] — the decision to enforce,
//! the lines `/codex policy` shows, and the report to audit. Never does network I/O.
//! [`PolicyGate`] (`gate/policy_gate.rs`) runs the WebAssembly chain: the bundled `allowlist`
//! module, configured from System Console's allowlists, then the admin's modules from the policy
//! directory. [`LocalGate`] serves `codex-host run`, where the person at the terminal owns the
//! machine.
//!
//! A module's evaluation is CPU work of unknown length: [`Evaluator`] runs it on tokio's blocking
//! pool, at most a few at a time, so a slow module never stalls the socket's async workers.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use codex_policy::Action;
use codex_policy::{FinalDecision, PolicyRequest, SandboxMode};
use serde_json::{json, Value};
use tokio::sync::Semaphore;

use crate::config::Settings;
use crate::metrics::Metrics;
use crate::protocol::{Channel, User};

mod policy_gate;
#[cfg(test)]
mod tests;

pub use policy_gate::PolicyGate;

/// One question to the policy chain: who asks to do what, where.
#[derive(Debug, Clone)]
pub struct GateRequest {
    pub request_id: String,
    pub user: User,
    pub channel: Channel,
    pub action: Action,
    pub prompt: String,
    /// The project's name and repository.
    pub project: Option<(String, PathBuf)>,
    pub sandbox: SandboxMode,
    pub root_id: String,
    pub attachments: u32,
    /// What Codex will receive besides the prompt: the thread transcript frozen at acceptance.
    pub context: Option<String>,
}

/// What the policy lets a run have; each limit may only tighten the project's defaults.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Limits {
    pub sandbox: Option<SandboxMode>,
    pub timeout: Option<Duration>,
    pub model: Option<String>,
}

/// The sandbox, timeout and model a run gets: the project's, tightened by a policy's limits.
#[derive(Debug, Clone, PartialEq)]
pub struct RunTerms {
    pub sandbox: SandboxMode,
    pub timeout: Duration,
    pub model: Option<String>,
}

impl Limits {
    /// Applies these limits to `defaults`: the stricter sandbox, the shorter timeout, and the
    /// policy's model over the project's.
    pub fn apply(&self, defaults: RunTerms) -> RunTerms {
        RunTerms {
            sandbox: self
                .sandbox
                .map_or(defaults.sandbox, |s| s.min(defaults.sandbox)),
            timeout: self
                .timeout
                .map_or(defaults.timeout, |t| t.min(defaults.timeout)),
            model: self.model.clone().or(defaults.model),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Allowed, within `limits`.
    Allow(Limits),
    Deny {
        reason: String,
    },
    /// Allowed once approved by `min_approvals` distinct people among `approvers`, and then
    /// within `limits`: an approval lifts the wait, never a limit.
    RequireApproval {
        approvers: Vec<String>,
        min_approvals: u32,
        reason: String,
        expiry: Duration,
        allow_self_approval: bool,
        limits: Limits,
    },
}

impl Decision {
    /// The decision's name in the audit (`allow`, `deny`, `require-approval`).
    pub fn name(&self) -> &'static str {
        match self {
            Decision::Allow(_) => "allow",
            Decision::Deny { .. } => "deny",
            Decision::RequireApproval { .. } => "require-approval",
        }
    }
}

/// A decision with what explains it.
#[derive(Debug, Clone)]
pub struct Ruling {
    pub decision: Decision,
    /// Rule ids behind the decision, for people.
    pub rules: Vec<String>,
    /// One line per module, for `/codex policy`.
    pub explanation: Vec<String>,
    /// The full report, for the audit log.
    pub report: Value,
    /// No module decided (every one abstained, or none is configured). `decision` is then a
    /// deny; for Codex's commands and file changes the host applies its own default instead.
    pub abstained: bool,
}

pub trait Gate: Send + Sync {
    /// Blocking: a wasm evaluation. Async code asks through [`Evaluator`].
    fn decide(&self, req: &GateRequest) -> Ruling;

    /// Rebuilds the rules from new settings. On error every request is denied, with the error
    /// for the admin, until settings that load arrive: an admin who removed someone from the
    /// allowlist must never find the old chain still in force.
    fn configure(&self, _settings: &Settings) -> Result<Vec<String>, String> {
        Ok(vec![])
    }

    /// Loaded modules with their hashes, for health.
    fn describe(&self) -> Vec<Value> {
        vec![]
    }
}

/// Runs [`Gate::decide`] off the async workers: on the blocking pool, at most `slots` at a time.
pub struct Evaluator {
    gate: Arc<dyn Gate>,
    slots: Arc<Semaphore>,
    metrics: Arc<Metrics>,
}

impl Evaluator {
    /// At most as many evaluations at once as the machine has cores (at least two): more would only
    /// queue for CPU, and the async workers stay free either way.
    pub fn new(gate: Arc<dyn Gate>, metrics: Arc<Metrics>) -> Evaluator {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Evaluator {
            gate,
            slots: Arc::new(Semaphore::new(cores.max(2))),
            metrics,
        }
    }

    pub fn gate(&self) -> &Arc<dyn Gate> {
        &self.gate
    }

    /// The gate's ruling on `req`. An evaluation that panics is a deny, like any failing module.
    pub async fn decide(&self, req: GateRequest) -> Ruling {
        let slot = self.slots.clone().acquire_owned().await;
        let gate = self.gate.clone();
        let metrics = self.metrics.clone();
        let evaluated = tokio::task::spawn_blocking(move || {
            let _slot = slot;
            let started = Instant::now();
            let ruling = gate.decide(&req);
            metrics.policy_decided(started.elapsed());
            ruling
        })
        .await;
        evaluated.unwrap_or_else(|e| {
            tracing::error!(error = %e, "a policy evaluation crashed; the request is denied");
            Ruling {
                decision: Decision::Deny {
                    reason: "the policy check failed on the host; ask an admin to check its log."
                        .into(),
                },
                rules: vec!["policy-evaluation-crashed".into()],
                explanation: vec![format!("the evaluation crashed: {e}")],
                report: json!({"gate": "crashed", "problem": e.to_string()}),
                abstained: false,
            }
        })
    }
}

/// How long an approval request stays open when the policy gives no expiry.
const DEFAULT_APPROVAL_EXPIRY: Duration = Duration::from_secs(3600);

fn policy_request(req: &GateRequest) -> PolicyRequest {
    PolicyRequest {
        request_id: req.request_id.clone(),
        user: codex_policy::User {
            id: req.user.id.clone(),
            username: req.user.username.clone(),
            roles: req.user.roles.clone(),
        },
        channel: codex_policy::Channel {
            id: req.channel.id.clone(),
            name: req.channel.name.clone(),
            team: codex_policy::Team {
                id: req.channel.team_id.clone(),
                name: req.channel.team_name.clone(),
            },
            kind: req.channel.kind,
        },
        action: req.action.clone(),
        prompt: req.prompt.clone(),
        // The thread transcript Codex will receive; modules built for WIT 0.1.0 never see it.
        context: req.context.clone(),
        project: req
            .project
            .as_ref()
            .map(|(name, repo)| codex_policy::Project {
                name: name.clone(),
                repo_path: repo.display().to_string(),
            }),
        requested_sandbox: req.sandbox,
        thread_root_id: (!req.root_id.is_empty()).then(|| req.root_id.clone()),
        time_unix_ms: chrono::Utc::now().timestamp_millis(),
        attachment_count: req.attachments,
    }
}

fn from_policy_decision(d: &FinalDecision) -> Decision {
    match d {
        FinalDecision::Allow(l) => Decision::Allow(from_policy_limits(l)),
        FinalDecision::Deny { reason, .. } => Decision::Deny {
            reason: reason.clone(),
        },
        FinalDecision::RequireApproval {
            approval: a,
            limits,
        } => Decision::RequireApproval {
            approvers: a.approvers.clone(),
            min_approvals: a.min_approvals.max(1),
            reason: a.reason.clone(),
            expiry: a
                .expiry_secs
                .map(|s| Duration::from_secs(s as u64))
                .unwrap_or(DEFAULT_APPROVAL_EXPIRY),
            allow_self_approval: a.allow_self_approval,
            limits: from_policy_limits(limits),
        },
    }
}

fn from_policy_limits(l: &codex_policy::Limits) -> Limits {
    Limits {
        sandbox: l.sandbox,
        timeout: l.timeout_secs.map(|s| Duration::from_secs(s as u64)),
        model: l.model.clone(),
    }
}

/// `codex-host run`: the person at the terminal may do anything.
pub struct LocalGate;

impl Gate for LocalGate {
    fn decide(&self, _req: &GateRequest) -> Ruling {
        Ruling {
            decision: Decision::Allow(Limits::default()),
            rules: vec!["local-terminal".into()],
            explanation: vec!["`codex-host run`: the terminal's user owns this machine".into()],
            report: json!({"gate": "local"}),
            abstained: false,
        }
    }
}
