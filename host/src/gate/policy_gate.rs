//! [`PolicyGate`]: the WebAssembly chain the settings describe — the bundled `allowlist`,
//! configured from System Console's allowlists, then the admin's modules from the policy
//! directory — reloaded when the settings or the directory change, failing closed when it does
//! not load.

use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use codex_policy::{
    EngineOptions, FinalDecision, ModuleOutcome, ModuleSource, ModuleSpec, PolicyEngine,
    PolicyService,
};
use serde_json::{json, Value};

use super::{from_policy_decision, policy_request, Decision, Gate, GateRequest, Ruling};
use crate::config::Settings;

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
            let key = specs_key(&specs);
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

/// The allowlist policy built from `policies/allowlist` into this binary (host/build.rs): used when
/// no bundle directory holds `allowlist.wasm`, e.g. a host installed with `cargo install`.
static EMBEDDED_ALLOWLIST: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/allowlist.wasm"));

/// [`EMBEDDED_ALLOWLIST`], shared: one copy for the life of the process, so an unchanged chain
/// has an unchanged [`specs_key`].
fn embedded_allowlist() -> Arc<[u8]> {
    static BYTES: std::sync::OnceLock<Arc<[u8]>> = std::sync::OnceLock::new();
    BYTES.get_or_init(|| Arc::from(EMBEDDED_ALLOWLIST)).clone()
}

/// The chain the settings describe: the bundled allowlist (the bundle's file, else the one in
/// this binary), then the policy directory's modules.
fn chain_specs(builtin_dir: Option<&Path>, settings: &Settings) -> Result<Vec<ModuleSpec>, String> {
    let config = json!({
        "users": settings.allowed_users,
        "channels": settings.allowed_channels,
        "teams": settings.allowed_teams,
    })
    .to_string();
    let bundled = builtin_dir
        .map(|d| d.join("allowlist.wasm"))
        .filter(|p| p.is_file());
    let mut specs = vec![match bundled {
        Some(path) => ModuleSpec::from_path("allowlist", path, &config),
        None => ModuleSpec::from_bytes("allowlist", embedded_allowlist(), &config),
    }];
    let dir = settings.policy_dir.trim();
    if !dir.is_empty() {
        specs.extend(admin_modules(Path::new(dir))?);
    }
    Ok(specs)
}

/// What identifies a chain, to skip reloading an unchanged one: embedded modules by their
/// address and length (they never change while the process runs), not by their bytes.
fn specs_key(specs: &[ModuleSpec]) -> String {
    specs
        .iter()
        .map(|s| {
            let source = match &s.source {
                ModuleSource::Path(p) => format!("path:{}", p.display()),
                ModuleSource::Bytes(b) => format!("bytes:{:p}:{}", b.as_ptr(), b.len()),
            };
            format!("{}|{source}|{}|{}", s.name, s.monitor, s.config_json)
        })
        .collect::<Vec<_>>()
        .join("\n")
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
            let key = specs_key(&specs);
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
                abstained: false,
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
            abstained: matches!(report.decision, FinalDecision::Deny { module: None, .. }),
            rules: report.rule_ids.clone(),
            explanation,
            report: serde_json::to_value(&report).unwrap_or(Value::Null),
        }
    }
}
