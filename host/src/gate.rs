//! Who may do what, where: the host's seam to the policy engine.
//!
//! Input: a [`GateRequest`] (who, where, what) and the current config; output: a [`Ruling`] — the
//! decision to enforce, the lines `/codex policy` shows, and the report to audit. Never does
//! network I/O. [`PolicyGate`] runs the WebAssembly chain: the bundled `allowlist` module,
//! configured from System Console's allowlists, then the admin's modules from the policy
//! directory. [`LocalGate`] serves `codex-host run`, where the person at the terminal owns the
//! machine.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use codex_policy::{EngineOptions, FinalDecision, ModuleOutcome, ModuleSpec, PolicyEngine, PolicyRequest, PolicyService, SandboxMode};
use serde_json::{json, Value};

use crate::api::contract::{Channel, ChannelKind, User};
use crate::config::{Config, Sandbox, Settings};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    New,
    Continue,
    Retry,
    Approve,
    Reject,
    Cancel,
    Query,
}

pub struct GateRequest<'a> {
    pub request_id: &'a str,
    pub user: &'a User,
    pub channel: &'a Channel,
    pub action: Action,
    pub prompt: &'a str,
    pub project: Option<(&'a str, &'a Path)>,
    pub sandbox: Sandbox,
    pub root_id: &'a str,
    pub attachments: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Allowed, with limits that may only tighten the project's defaults.
    Allow { sandbox: Option<Sandbox>, timeout: Option<Duration>, model: Option<String> },
    Deny { reason: String },
    /// Allowed once approved by `min_approvals` distinct people among `approvers`.
    RequireApproval { approvers: Vec<String>, min_approvals: u32, reason: String, expiry: Duration, allow_self_approval: bool },
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
    fn decide(&self, req: &GateRequest, cfg: &Config) -> Ruling;

    /// Rebuilds the rules from new settings. On error the previous rules stay in force.
    fn configure(&self, _settings: &Settings) -> Result<Vec<String>, String> {
        Ok(vec![])
    }

    /// Loaded modules with their hashes, for health.
    fn describe(&self) -> Vec<Value> {
        vec![]
    }
}

/// How long an approval request stays open when the policy gives no expiry.
const DEFAULT_APPROVAL_EXPIRY: Duration = Duration::from_secs(3600);

/// The WebAssembly policy chain.
pub struct PolicyGate {
    service: Arc<PolicyService>,
    builtin_dir: Option<PathBuf>,
    /// The specs of the chain in force, to skip reloading when settings did not change it.
    specs_key: Mutex<String>,
    watch: Mutex<Option<codex_policy::WatchHandle>>,
}

impl PolicyGate {
    /// `builtin_dir` holds the modules shipped in the bundle (`allowlist.wasm`); compiled modules
    /// are cached in `cache_dir`. Until [`Gate::configure`] runs, the chain is empty: deny all.
    pub fn new(builtin_dir: Option<PathBuf>, cache_dir: PathBuf) -> Result<PolicyGate> {
        std::fs::create_dir_all(&cache_dir).with_context(|| format!("creating the policy cache {}", cache_dir.display()))?;
        let engine = PolicyEngine::new(EngineOptions { cache_dir: Some(cache_dir), ..EngineOptions::default() })?;
        let service = Arc::new(PolicyService::new(engine, vec![]));
        Ok(PolicyGate { service, builtin_dir, specs_key: Mutex::new(String::new()), watch: Mutex::new(None) })
    }

    fn specs(&self, settings: &Settings) -> Result<Vec<ModuleSpec>, String> {
        let mut specs = Vec::new();
        let allowlist = self.builtin_dir.as_ref().map(|d| d.join("allowlist.wasm"));
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
                    self.builtin_dir.as_ref().map(|d| d.display().to_string()).unwrap_or_else(|| "no --policy-dir".into())
                ))
            }
        }
        let dir = settings.policy_dir.trim();
        if !dir.is_empty() {
            specs.extend(admin_modules(Path::new(dir))?);
        }
        Ok(specs)
    }
}

/// `<dir>/*.wasm` in file-name order; config from `<name>.json` beside it (default `{}`), monitor
/// mode when `<name>.monitor` exists.
fn admin_modules(dir: &Path) -> Result<Vec<ModuleSpec>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("Policy directory: cannot read {}: {e}", dir.display()))?;
    let mut wasm: Vec<PathBuf> = entries.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "wasm")).collect();
    wasm.sort();
    wasm.into_iter()
        .map(|path| {
            let name = path.file_stem().unwrap_or_default().to_string_lossy().to_string();
            let config_path = path.with_extension("json");
            let config = if config_path.is_file() {
                std::fs::read_to_string(&config_path).map_err(|e| format!("Policy directory: cannot read {}: {e}", config_path.display()))?
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
        let specs = match self.specs(settings) {
            Ok(s) => s,
            Err(e) => {
                // With no usable chain, every request is denied (fail closed) and the admin told.
                let _ = self.service.reload(vec![]);
                *self.specs_key.lock().unwrap() = String::new();
                return Err(e);
            }
        };
        let key = format!("{specs:?}");
        if *self.specs_key.lock().unwrap() == key {
            return Ok(vec![]);
        }
        match self.service.reload(specs) {
            Ok(report) => {
                *self.specs_key.lock().unwrap() = key;
                let mut watch = self.watch.lock().unwrap();
                if watch.is_none() {
                    *watch = Some(self.service.watch(Duration::from_secs(2), |r| {
                        if let Err(e) = r {
                            tracing::error!(error = %e, "a changed policy module failed to load; the previous chain stays in force");
                        }
                    }));
                }
                Ok(report.modules.iter().map(|m| format!("policy `{}` loaded", m.name)).collect())
            }
            Err(e) => Err(format!("Policy: {e}. The previous policy chain stays in force.")),
        }
    }

    fn describe(&self) -> Vec<Value> {
        self.service.modules().iter().map(|m| serde_json::to_value(m).unwrap_or(Value::Null)).collect()
    }

    fn decide(&self, req: &GateRequest, _cfg: &Config) -> Ruling {
        let report = self.service.evaluate(&policy_request(req));
        let explanation = report
            .modules
            .iter()
            .map(|m| {
                let what = match &m.outcome {
                    ModuleOutcome::Verdict(v) => {
                        let rule = v.rule_id.as_deref().map(|r| format!(" (rule `{r}`)")).unwrap_or_default();
                        format!("{}{rule}", v.decision.kind())
                    }
                    ModuleOutcome::Failed(f) => format!("failed: {}", f.message),
                };
                let monitor = if m.monitor { " — monitor only, not enforced" } else { "" };
                format!("`{}`: {what}{monitor}", m.name)
            })
            .collect();
        let decision = match &report.decision {
            FinalDecision::Allow(l) => Decision::Allow {
                sandbox: l.sandbox.map(from_policy_sandbox),
                timeout: l.timeout_secs.map(|s| Duration::from_secs(s as u64)),
                model: l.model.clone(),
            },
            FinalDecision::Deny { reason, .. } => Decision::Deny { reason: reason.clone() },
            FinalDecision::RequireApproval(a) => Decision::RequireApproval {
                approvers: a.approvers.clone(),
                min_approvals: a.min_approvals.max(1),
                reason: a.reason.clone(),
                expiry: a.expiry_secs.map(|s| Duration::from_secs(s as u64)).unwrap_or(DEFAULT_APPROVAL_EXPIRY),
                allow_self_approval: a.allow_self_approval,
            },
        };
        Ruling { decision, rules: report.rule_ids.clone(), explanation, report: serde_json::to_value(&report).unwrap_or(Value::Null) }
    }
}

fn policy_request(req: &GateRequest) -> PolicyRequest {
    use codex_policy::{Action as A, ChannelKind as K};
    PolicyRequest {
        request_id: req.request_id.to_string(),
        user: codex_policy::User { id: req.user.id.clone(), username: req.user.username.clone(), roles: req.user.roles.clone() },
        channel: codex_policy::Channel {
            id: req.channel.id.clone(),
            name: req.channel.name.clone(),
            team: codex_policy::Team { id: req.channel.team_id.clone(), name: req.channel.team_name.clone() },
            kind: match req.channel.kind {
                ChannelKind::Public => K::Public,
                ChannelKind::Private => K::Private,
                ChannelKind::Direct => K::Direct,
                ChannelKind::Group => K::Group,
            },
        },
        action: match req.action {
            Action::New => A::New,
            Action::Continue => A::Continue,
            Action::Retry => A::Retry,
            Action::Approve => A::Approve,
            Action::Reject => A::Reject,
            Action::Cancel => A::Cancel,
            Action::Query => A::PolicyQuery,
        },
        prompt: req.prompt.to_string(),
        context: None,
        project: req.project.map(|(name, repo)| codex_policy::Project { name: name.to_string(), repo_path: repo.display().to_string() }),
        requested_sandbox: match req.sandbox {
            Sandbox::ReadOnly => SandboxMode::ReadOnly,
            Sandbox::WorkspaceWrite => SandboxMode::WorkspaceWrite,
            Sandbox::DangerFullAccess => SandboxMode::DangerFullAccess,
        },
        thread_root_id: (!req.root_id.is_empty()).then(|| req.root_id.to_string()),
        time_unix_ms: chrono::Utc::now().timestamp_millis(),
        attachment_count: req.attachments,
    }
}

fn from_policy_sandbox(s: SandboxMode) -> Sandbox {
    match s {
        SandboxMode::ReadOnly => Sandbox::ReadOnly,
        SandboxMode::WorkspaceWrite => Sandbox::WorkspaceWrite,
        SandboxMode::DangerFullAccess => Sandbox::DangerFullAccess,
    }
}

/// `codex-host run`: the person at the terminal may do anything.
pub struct LocalGate;

impl Gate for LocalGate {
    fn decide(&self, _req: &GateRequest, _cfg: &Config) -> Ruling {
        Ruling {
            decision: Decision::Allow { sandbox: None, timeout: None, model: None },
            rules: vec!["local-terminal".into()],
            explanation: vec!["`codex-host run`: the terminal's user owns this machine".into()],
            report: json!({"gate": "local"}),
        }
    }
}
