//! Who may do what, where: the host's seam to the policy engine.
//!
//! Input: a [`GateRequest`] (who, where, what) and the current config; output: a [`Ruling`] — the
//! decision to enforce, the lines `/codex policy` shows, and the report to audit. Never does
//! network I/O. [`PolicyGate`] runs the WebAssembly chain: the bundled `allowlist` module,
//! configured from System Console's allowlists, then the admin's modules from the policy
//! directory. [`LocalGate`] serves `codex-host run`, where the person at the terminal owns the
//! machine.
//!
//! A module's evaluation is CPU work of unknown length: [`Evaluator`] runs it on tokio's blocking
//! pool, at most a few at a time, so a slow module never stalls the socket's async workers.

use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
pub use codex_policy::Action;
use codex_policy::{
    EngineOptions, FinalDecision, ModuleOutcome, ModuleSpec, PolicyEngine, PolicyRequest,
    PolicyService, SandboxMode,
};
use serde_json::{json, Value};
use tokio::sync::Semaphore;

use crate::config::Settings;
use crate::protocol::{Channel, User};

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
}

impl Evaluator {
    /// At most as many evaluations at once as the machine has cores (at least two): more would only
    /// queue for CPU, and the async workers stay free either way.
    pub fn new(gate: Arc<dyn Gate>) -> Evaluator {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Evaluator {
            gate,
            slots: Arc::new(Semaphore::new(cores.max(2))),
        }
    }

    pub fn gate(&self) -> &Arc<dyn Gate> {
        &self.gate
    }

    /// The gate's ruling on `req`. An evaluation that panics is a deny, like any failing module.
    pub async fn decide(&self, req: GateRequest) -> Ruling {
        let slot = self.slots.clone().acquire_owned().await;
        let gate = self.gate.clone();
        let evaluated = tokio::task::spawn_blocking(move || {
            let _slot = slot;
            gate.decide(&req)
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
            }
        })
    }
}

/// How long an approval request stays open when the policy gives no expiry.
const DEFAULT_APPROVAL_EXPIRY: Duration = Duration::from_secs(3600);

/// How often the policy directory is looked at for added, removed or edited files.
const DIRECTORY_POLL: Duration = Duration::from_secs(2);

/// The WebAssembly policy chain.
pub struct PolicyGate {
    service: Arc<PolicyService>,
    builtin_dir: Option<PathBuf>,
    /// The last settings and the specs of the chain in force, shared with the directory watcher.
    state: Arc<Mutex<GateState>>,
    watch: Mutex<Option<codex_policy::WatchHandle>>,
    /// Dropping it stops the directory watcher.
    dir_watch: Mutex<Option<mpsc::Sender<()>>>,
}

#[derive(Default)]
struct GateState {
    settings: Option<Settings>,
    /// The specs of the chain in force, to skip reloading when nothing changed.
    specs_key: String,
    /// The specs the directory watcher last failed to load (not retried until the files change).
    failed_key: String,
    /// Why the chain could not be built from the last settings: every request is denied.
    broken: Option<String>,
}

impl PolicyGate {
    /// `builtin_dir` holds the modules shipped in the bundle (`allowlist.wasm`); compiled modules
    /// are cached in `cache_dir`. Until [`Gate::configure`] runs, the chain is empty: deny all.
    pub fn new(builtin_dir: Option<PathBuf>, cache_dir: PathBuf) -> Result<PolicyGate> {
        std::fs::create_dir_all(&cache_dir)
            .with_context(|| format!("creating the policy cache {}", cache_dir.display()))?;
        let engine = PolicyEngine::new(EngineOptions {
            cache_dir: Some(cache_dir),
            ..EngineOptions::default()
        })?;
        let service = Arc::new(PolicyService::new(engine, vec![]));
        Ok(PolicyGate {
            service,
            builtin_dir,
            state: Arc::default(),
            watch: Mutex::new(None),
            dir_watch: Mutex::new(None),
        })
    }

    /// Starts (once) the thread that re-reads the policy directory: a new or removed `.wasm`, an
    /// edited `<name>.json` or an added or removed `<name>.monitor` reloads the chain. A change
    /// that does not load leaves the chain in force and is logged.
    fn watch_directory(&self) {
        let mut slot = self.dir_watch.lock().unwrap();
        if slot.is_some() {
            return;
        }
        let (stop, stopped) = mpsc::channel::<()>();
        let (service, state, builtin) = (
            Arc::downgrade(&self.service),
            self.state.clone(),
            self.builtin_dir.clone(),
        );
        let spawned = std::thread::Builder::new().name("policy-dir-watch".into()).spawn(move || loop {
            if !matches!(stopped.recv_timeout(DIRECTORY_POLL), Err(mpsc::RecvTimeoutError::Timeout)) {
                return;
            }
            let Some(service) = service.upgrade() else { return };
            let mut st = state.lock().unwrap_or_else(|p| p.into_inner());
            let Some(settings) = st.settings.clone().filter(|s| !s.policy_dir.trim().is_empty()) else { continue };
            if st.broken.is_some() {
                continue;
            }
            let specs = match chain_specs(builtin.as_deref(), &settings) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(error = %e, "the policy directory changed and cannot be read; the previous chain stays in force");
                    continue;
                }
            };
            let key = format!("{specs:?}");
            if key == st.specs_key || key == st.failed_key {
                continue;
            }
            match service.reload(specs) {
                Ok(report) => {
                    st.specs_key = key;
                    st.failed_key.clear();
                    let names: Vec<&str> = report.modules.iter().map(|m| m.name.as_str()).collect();
                    tracing::info!(modules = %names.join(", "), "the policy directory changed; the chain was reloaded");
                }
                Err(e) => {
                    st.failed_key = key;
                    tracing::error!(error = %e, "a changed policy directory failed to load; the previous chain stays in force");
                }
            }
        });
        match spawned {
            Ok(_) => *slot = Some(stop),
            Err(e) => tracing::error!(error = %e, "could not start the policy directory watcher"),
        }
    }

    fn broken(&self) -> Option<String> {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .broken
            .clone()
    }
}

/// The chain the settings describe: the bundled allowlist, then the policy directory's modules.
fn chain_specs(builtin_dir: Option<&Path>, settings: &Settings) -> Result<Vec<ModuleSpec>, String> {
    let mut specs = Vec::new();
    let allowlist = builtin_dir.map(|d| d.join("allowlist.wasm"));
    match allowlist.filter(|p| p.is_file()) {
        Some(path) => {
            let config = json!({
                "users": settings.allowed_users,
                "channels": settings.allowed_channels,
                "teams": settings.allowed_teams,
            });
            specs.push(ModuleSpec::from_path("allowlist", path, &config.to_string()));
        }
        None => {
            return Err(format!(
                "the bundled allowlist policy is missing (looked in {}); reinstall the plugin bundle, or start codex-host with --policy-dir pointing at its policies/ folder",
                builtin_dir.map(|d| d.display().to_string()).unwrap_or_else(|| "no --policy-dir".into())
            ))
        }
    }
    let dir = settings.policy_dir.trim();
    if !dir.is_empty() {
        specs.extend(admin_modules(Path::new(dir))?);
    }
    Ok(specs)
}

/// `<dir>/*.wasm` in file-name order; config from `<name>.json` beside it (default `{}`), monitor
/// mode when `<name>.monitor` exists.
fn admin_modules(dir: &Path) -> Result<Vec<ModuleSpec>, String> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| format!("Policy directory: cannot read {}: {e}", dir.display()))?;
    let mut wasm: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
        .collect();
    wasm.sort();
    wasm.into_iter()
        .map(|path| {
            let name = path
                .file_stem()
                .unwrap_or_default()
                .to_string_lossy()
                .to_string();
            let config_path = path.with_extension("json");
            let config = if config_path.is_file() {
                std::fs::read_to_string(&config_path).map_err(|e| {
                    format!(
                        "Policy directory: cannot read {}: {e}",
                        config_path.display()
                    )
                })?
            } else {
                "{}".to_string()
            };
            let monitor = path.with_extension("monitor").exists();
            Ok(ModuleSpec::from_path(&name, path, &config).monitor(monitor))
        })
        .collect()
}

impl Gate for PolicyGate {
    fn configure(&self, settings: &Settings) -> Result<Vec<String>, String> {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        st.settings = Some(settings.clone());
        let loaded = chain_specs(self.builtin_dir.as_deref(), settings).and_then(|specs| {
            let key = format!("{specs:?}");
            if st.broken.is_none() && st.specs_key == key {
                return Ok((key, None));
            }
            self.service
                .reload(specs)
                .map(|r| (key, Some(r)))
                .map_err(|e| format!("Policy: {e}"))
        });
        let report = match loaded {
            Ok((key, report)) => {
                st.specs_key = key;
                st.broken = None;
                report
            }
            Err(e) => {
                // Fail closed: nothing of the previous chain (its allowlist included) stays.
                let _ = self.service.reload(vec![]);
                st.specs_key = String::new();
                st.broken = Some(e.clone());
                return Err(format!(
                    "{e}. Until the settings are fixed, Codex refuses every request."
                ));
            }
        };
        drop(st);
        self.watch_directory();
        match report {
            None => Ok(vec![]),
            Some(report) => {
                let mut watch = self.watch.lock().unwrap();
                if watch.is_none() {
                    *watch = Some(self.service.watch(Duration::from_secs(2), |r| {
                        if let Err(e) = r {
                            tracing::error!(error = %e, "a changed policy module failed to load; the previous chain stays in force");
                        }
                    }));
                }
                Ok(report
                    .modules
                    .iter()
                    .map(|m| format!("policy `{}` loaded", m.name))
                    .collect())
            }
        }
    }

    fn describe(&self) -> Vec<Value> {
        self.service
            .modules()
            .iter()
            .map(|m| serde_json::to_value(m).unwrap_or(Value::Null))
            .collect()
    }

    fn decide(&self, req: &GateRequest) -> Ruling {
        if let Some(problem) = self.broken() {
            let reason = format!(
                "Codex is switched off until a system admin fixes the policy settings: {problem}"
            );
            return Ruling {
                decision: Decision::Deny {
                    reason: reason.clone(),
                },
                rules: vec!["policy-settings-invalid".into()],
                explanation: vec![format!("the policy chain did not load: {problem}")],
                report: json!({"gate": "broken", "problem": problem}),
            };
        }
        let report = self.service.evaluate(&policy_request(req));
        let explanation = report
            .modules
            .iter()
            .map(|m| {
                let what = match &m.outcome {
                    ModuleOutcome::Verdict(v) => {
                        let rule = v
                            .rule_id
                            .as_deref()
                            .map(|r| format!(" (rule `{r}`)"))
                            .unwrap_or_default();
                        format!("{}{rule}", v.decision.kind())
                    }
                    ModuleOutcome::Failed(f) => format!("failed: {}", f.message),
                };
                let monitor = if m.monitor {
                    " — monitor only, not enforced"
                } else {
                    ""
                };
                format!("`{}`: {what}{monitor}", m.name)
            })
            .collect();
        let decision = from_policy_decision(&report.decision);
        Ruling {
            decision,
            rules: report.rule_ids.clone(),
            explanation,
            report: serde_json::to_value(&report).unwrap_or(Value::Null),
        }
    }
}

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
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms(sandbox: SandboxMode, secs: u64, model: Option<&str>) -> RunTerms {
        RunTerms {
            sandbox,
            timeout: Duration::from_secs(secs),
            model: model.map(String::from),
        }
    }

    #[test]
    fn limits_only_tighten_the_project_defaults() {
        let defaults = terms(SandboxMode::WorkspaceWrite, 600, Some("project-model"));
        assert_eq!(Limits::default().apply(defaults.clone()), defaults);
        let tight = Limits {
            sandbox: Some(SandboxMode::ReadOnly),
            timeout: Some(Duration::from_secs(60)),
            model: Some("policy-model".into()),
        };
        assert_eq!(
            tight.apply(defaults.clone()),
            terms(SandboxMode::ReadOnly, 60, Some("policy-model"))
        );
        // A looser sandbox or a longer timeout than the project's is no loosening.
        let loose = Limits {
            sandbox: Some(SandboxMode::DangerFullAccess),
            timeout: Some(Duration::from_secs(6000)),
            model: None,
        };
        assert_eq!(loose.apply(defaults.clone()), defaults);
    }

    #[test]
    fn an_approval_carries_the_chains_limits() {
        let chain = FinalDecision::RequireApproval {
            approval: codex_policy::Approval {
                approvers: vec!["carol".into()],
                min_approvals: 1,
                ..Default::default()
            },
            limits: codex_policy::Limits {
                sandbox: Some(SandboxMode::ReadOnly),
                timeout_secs: Some(90),
                model: Some("m".into()),
            },
        };
        let Decision::RequireApproval {
            limits,
            approvers,
            expiry,
            ..
        } = from_policy_decision(&chain)
        else {
            panic!("{chain:?}")
        };
        assert_eq!(approvers, ["carol"]);
        assert_eq!(expiry, DEFAULT_APPROVAL_EXPIRY);
        assert_eq!(
            limits,
            Limits {
                sandbox: Some(SandboxMode::ReadOnly),
                timeout: Some(Duration::from_secs(90)),
                model: Some("m".into())
            }
        );
    }
}
