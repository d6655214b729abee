//! One module of a chain: how it is configured (`ModuleSpec`), and once loaded (`LoadedModule`)
//! its compiled, pre-linked component, its config and its evaluation. Each evaluation runs in a
//! fresh store and instance from the engine (`PolicyEngine::new_store`); whatever goes wrong
//! becomes a `ModuleFailure`, never a panic or an error out of `evaluate`.
//!
//! Knows nothing of chains: `chain` loads modules in order and combines their reports.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::{Store, Trap};

use crate::engine::{PolicyEngine, TickGuard};
use crate::error::LoadError;
use crate::types::{Decision, FailureKind, ModuleFailure, ModuleOutcome, ModuleReport, Verdict};
use crate::wasm::{self, MemoryCapExceeded, State};
use crate::world::{self, Detected, Instance, Lowered, ModulePre, WorldVersion};

/// One module of a chain, as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleSpec {
    /// Name used in reports, audit and denial messages, e.g. `allowlist`.
    pub name: String,
    pub source: ModuleSource,
    /// The module's configuration as JSON text ("{}" if it has none).
    pub config_json: String,
    /// Evaluate and report, never enforce.
    pub monitor: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModuleSource {
    /// A `.wasm` component on disk; watched for changes by `PolicyService::watch`.
    Path(PathBuf),
    /// Component bytes already in memory (e.g. the allowlist bundled in the host binary).
    Bytes(Arc<[u8]>),
}

impl ModuleSpec {
    pub fn from_path(name: &str, path: impl Into<PathBuf>, config_json: &str) -> ModuleSpec {
        ModuleSpec {
            name: name.to_owned(),
            source: ModuleSource::Path(path.into()),
            config_json: config_json.to_owned(),
            monitor: false,
        }
    }

    pub fn from_bytes(name: &str, bytes: impl Into<Arc<[u8]>>, config_json: &str) -> ModuleSpec {
        ModuleSpec {
            name: name.to_owned(),
            source: ModuleSource::Bytes(bytes.into()),
            config_json: config_json.to_owned(),
            monitor: false,
        }
    }

    pub fn with_config(mut self, config_json: &str) -> ModuleSpec {
        self.config_json = config_json.to_owned();
        self
    }

    pub fn monitor(mut self, monitor: bool) -> ModuleSpec {
        self.monitor = monitor;
        self
    }
}

/// `sha256:<hex>` of `bytes`: how reports and the cache name a module's content.
pub fn content_hash(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256:");
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// What a chain holds of one module.
pub(crate) struct LoadedModule {
    pub(crate) name: String,
    pub(crate) hash: String,
    pub(crate) monitor: bool,
    config: Arc<str>,
    pre: ModulePre,
    /// Fresh, never-used instances (see `EngineOptions::prewarm`).
    ready: Mutex<Vec<Ready>>,
    /// Set while a top-up request is queued, so requests do not flood the prewarm thread.
    top_up_queued: AtomicBool,
    /// Set when instantiating ahead failed: the module is then instantiated on the request path,
    /// where the failure is reported.
    prewarm_failed: AtomicBool,
}

/// An instance made ahead of a request, with its own store.
struct Ready {
    store: Store<State>,
    instance: Instance,
}

impl LoadedModule {
    pub(crate) fn load(
        engine: &PolicyEngine,
        spec: &ModuleSpec,
    ) -> Result<LoadedModule, LoadError> {
        let name = spec.name.clone();
        let bytes: Arc<[u8]> = match &spec.source {
            ModuleSource::Bytes(bytes) => bytes.clone(),
            ModuleSource::Path(path) => std::fs::read(path)
                .map_err(|e| LoadError::Read {
                    name: name.clone(),
                    path: path.clone(),
                    message: e.to_string(),
                })?
                .into(),
        };
        check_header(&name, &bytes)?;
        let config_json = if spec.config_json.trim().is_empty() {
            "{}"
        } else {
            &spec.config_json
        };
        if let Err(e) = serde_json::from_str::<serde_json::Value>(config_json) {
            return Err(LoadError::ConfigNotJson {
                name,
                message: e.to_string(),
            });
        }
        let hash = content_hash(&bytes);
        let component = engine.compile(&name, &bytes, &hash)?;
        let version = check_world(engine, &name, &component)?;
        let instance_pre = engine
            .inner
            .linker
            .instantiate_pre(&component)
            .map_err(|e| LoadError::Link {
                name: name.clone(),
                message: format!("{e:#}"),
            })?;
        let pre = ModulePre::new(version, instance_pre).map_err(|e| LoadError::Link {
            name: name.clone(),
            message: format!("{e:#}"),
        })?;
        let module = LoadedModule {
            name,
            hash,
            monitor: spec.monitor,
            config: config_json.into(),
            pre,
            ready: Mutex::new(Vec::new()),
            top_up_queued: AtomicBool::new(false),
            prewarm_failed: AtomicBool::new(false),
        };
        module.validate_config(engine)?;
        Ok(module)
    }

    /// The world version the module was built for.
    pub(crate) fn version(&self) -> WorldVersion {
        self.pre.version()
    }

    /// Asks the prewarm thread to top up the ready instances, unless one is already asked for.
    pub(crate) fn queue_top_up(self: &Arc<Self>, engine: &PolicyEngine) {
        if engine.options().prewarm == 0 || self.prewarm_failed.load(Ordering::Relaxed) {
            return;
        }
        if !self.top_up_queued.swap(true, Ordering::AcqRel) {
            let module = Arc::downgrade(self);
            engine.in_background(Box::new(move |engine| {
                if let Some(module) = module.upgrade() {
                    module.top_up(engine);
                }
            }));
        }
    }

    /// Instantiates until `prewarm` instances are ready. Runs on the background thread.
    fn top_up(&self, engine: &PolicyEngine) {
        self.top_up_queued.store(false, Ordering::Release);
        let want = engine.options().prewarm;
        while self.ready.lock().unwrap_or_else(|p| p.into_inner()).len() < want {
            let mut store = engine.new_store(self.config.clone());
            let instance = {
                let _ticking = engine.tick_guard();
                self.pre.instantiate(&mut store)
            };
            match instance {
                Ok(instance) => self
                    .ready
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(Ready { store, instance }),
                Err(e) => {
                    tracing::warn!(module = %self.name, error = %e,
                        "cannot instantiate ahead; instantiating per request instead");
                    self.prewarm_failed.store(true, Ordering::Relaxed);
                    return;
                }
            }
        }
    }

    fn validate_config(&self, engine: &PolicyEngine) -> Result<(), LoadError> {
        let mut store = engine.new_store(self.config.clone());
        engine.arm_for_load(&mut store);
        let _ticking = engine.tick_guard();
        let result = match self.pre.instantiate(&mut store) {
            Ok(instance) => instance
                .validate_config(&mut store, &self.config)
                .map_err(|e| classify(engine, &store, e, FailureKind::Trap)),
            Err(e) => Err(classify(engine, &store, e, FailureKind::Instantiate)),
        };
        match result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => Err(LoadError::InvalidConfig {
                name: self.name.clone(),
                message: wasm::truncate(&message, 2000),
            }),
            Err(mut failure) => {
                if failure.kind == FailureKind::Deadline {
                    failure.message = format!(
                        "the module ran past the {:?} it may take to check its config",
                        engine.options().deadline.max(crate::engine::LOAD_DEADLINE)
                    );
                }
                Err(LoadError::ConfigCheckFailed {
                    name: self.name.clone(),
                    failure,
                })
            }
        }
    }

    /// Runs the module on `request` in a fresh instance (a ready one if any). The caller holds
    /// the engine's tick guard for the whole chain, so that deadlines fire.
    pub(crate) fn evaluate(
        self: &Arc<Self>,
        engine: &PolicyEngine,
        request: &Lowered,
        _ticking: &TickGuard,
    ) -> ModuleReport {
        if !self.pre.version().asks(&request.request().action) {
            return self.not_asked();
        }
        let started = Instant::now();
        let (store, outcome) = self.run(engine, request);
        let elapsed_us = started.elapsed().as_micros() as u64;
        let outcome = match outcome {
            Ok(verdict) => ModuleOutcome::Verdict(verdict),
            Err(failure) => {
                tracing::warn!(module = %self.name, kind = ?failure.kind, error = %failure.message,
                    "policy module failed; denying");
                ModuleOutcome::Failed(failure)
            }
        };
        let state = store.into_data();
        ModuleReport {
            name: self.name.clone(),
            hash: self.hash.clone(),
            monitor: self.monitor,
            outcome,
            elapsed_us,
            logs: state.logs,
            logs_dropped: state.logs_dropped,
        }
    }

    /// Instantiates (or takes a ready instance) and calls `evaluate`; the store comes back for
    /// its logs whatever happened.
    fn run(
        self: &Arc<Self>,
        engine: &PolicyEngine,
        request: &Lowered,
    ) -> (Store<State>, Result<Verdict, ModuleFailure>) {
        let ready = self.ready.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let (mut store, instance) = match ready {
            Some(Ready {
                mut store,
                instance,
            }) => {
                self.queue_top_up(engine);
                // The deadline counts from now, not from when the instance was made.
                engine.arm(&mut store);
                (store, instance)
            }
            None => {
                let mut store = engine.new_store(self.config.clone());
                match self.pre.instantiate(&mut store) {
                    Ok(instance) => (store, instance),
                    Err(e) => {
                        let failure = classify(engine, &store, e, FailureKind::Instantiate);
                        return (store, Err(failure));
                    }
                }
            }
        };
        let outcome = instance
            .evaluate(&mut store, request)
            .map_err(|e| classify(engine, &store, e, FailureKind::Trap))
            .and_then(|v| {
                wasm::check_verdict(v).map_err(|message| ModuleFailure {
                    kind: FailureKind::MalformedResult,
                    message,
                })
            });
        (store, outcome)
    }

    /// The report of a module whose world has no such action: it is not run, and abstains.
    fn not_asked(&self) -> ModuleReport {
        ModuleReport {
            name: self.name.clone(),
            hash: self.hash.clone(),
            monitor: self.monitor,
            outcome: ModuleOutcome::Verdict(Verdict {
                decision: Decision::Abstain,
                rule_id: None,
            }),
            elapsed_us: 0,
            logs: Vec::new(),
            logs_dropped: 0,
        }
    }
}

/// Turns a wasmtime error into the failure the report shows.
fn classify(
    engine: &PolicyEngine,
    store: &Store<State>,
    error: wasmtime::Error,
    otherwise: FailureKind,
) -> ModuleFailure {
    if store.data().limiter.hit || error.downcast_ref::<MemoryCapExceeded>().is_some() {
        return ModuleFailure {
            kind: FailureKind::MemoryLimit,
            message: format!(
                "the module hit the memory cap of {} MiB",
                engine.options().memory_limit >> 20
            ),
        };
    }
    match error.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => ModuleFailure {
            kind: FailureKind::Deadline,
            message: format!(
                "the module ran past its deadline of {:?}",
                engine.options().deadline
            ),
        },
        Some(Trap::OutOfFuel) => ModuleFailure {
            kind: FailureKind::Fuel,
            message: format!("the module used up its fuel ({:?})", engine.options().fuel),
        },
        Some(trap) => {
            let stderr = store.data().stderr();
            let message = if stderr.is_empty() {
                format!("the module trapped: {trap}")
            } else {
                format!(
                    "the module trapped: {trap}; it printed: {}",
                    wasm::truncate(&stderr, 1000)
                )
            };
            ModuleFailure {
                kind: FailureKind::Trap,
                message,
            }
        }
        None => ModuleFailure {
            kind: otherwise,
            message: wasm::truncate(&format!("{error:#}"), 2000),
        },
    }
}

/// Refuses anything that is not a WebAssembly component, saying what it is instead.
fn check_header(name: &str, bytes: &[u8]) -> Result<(), LoadError> {
    let detail = if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        "is not a WebAssembly file (no `\\0asm` header)".to_owned()
    } else if bytes[4..8] == [1, 0, 0, 0] {
        "is a core WebAssembly module, not a component. Build it with \
         `cargo build --target wasm32-wasip2` (not wasm32-wasip1 or wasm32-unknown-unknown), or \
         wrap it with `wasm-tools component new`."
            .to_owned()
    } else if bytes[6..8] == [1, 0] {
        return Ok(());
    } else {
        format!(
            "has an unknown WebAssembly version/layer {:?}",
            &bytes[4..8]
        )
    };
    Err(LoadError::NotAComponent {
        name: name.to_owned(),
        detail,
    })
}

/// Finds which world version the component implements from its exports, before the linker's
/// more cryptic type errors get a chance. A version this host does not know is refused.
fn check_world(
    engine: &PolicyEngine,
    name: &str,
    component: &Component,
) -> Result<WorldVersion, LoadError> {
    let ty = component.component_type();
    let exports: Vec<String> = ty
        .exports(&engine.inner.engine)
        .map(|(n, _)| n.to_owned())
        .collect();
    match world::detect(exports.iter().map(String::as_str)) {
        Detected::Version(version) => Ok(version),
        Detected::UnknownVersion(found) => Err(LoadError::UnsupportedVersion {
            name: name.to_owned(),
            found,
        }),
        Detected::NotAPolicy => Err(LoadError::WrongWorld {
            name: name.to_owned(),
            exports,
        }),
    }
}
