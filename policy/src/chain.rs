//! A loaded chain: its modules, compiled and pre-linked, and the evaluation of one request
//! through all of them. Each module runs in a fresh store and instance with the engine's memory
//! cap, epoch deadline and optional fuel; whatever goes wrong becomes a `ModuleFailure`, never a
//! panic or an error out of `evaluate`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use wasmtime::component::Component;
use wasmtime::{Store, Trap};

use crate::combine::combine;
use crate::engine::{content_hash, ModuleSource, ModuleSpec, PolicyEngine};
use crate::error::LoadError;
use crate::types::{
    ChainReport, Decision, FailureKind, FinalDecision, ModuleFailure, ModuleOutcome, ModuleReport,
    PolicyRequest, Verdict,
};
use crate::wasm::{self, MemoryCapExceeded, State};
use crate::world::{self, Detected, Instance, Lowered, ModulePre, WorldVersion};

/// An ordered, immutable set of loaded modules. Evaluate from any number of threads at once.
pub struct Chain {
    engine: PolicyEngine,
    modules: Vec<Arc<LoadedModule>>,
    /// Set when the chain stands for a configuration that failed to load and no earlier chain
    /// exists: every request is then denied naming the broken module.
    load_error: Option<LoadError>,
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

/// A module of a loaded chain, as reported by `/v1/health` and `policy check`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ModuleInfo {
    pub name: String,
    pub hash: String,
    pub monitor: bool,
    /// The policy world version the module was built for, e.g. `0.2.0`.
    pub world: String,
}

impl Chain {
    pub(crate) fn new(engine: PolicyEngine, modules: Vec<LoadedModule>) -> Chain {
        let modules: Vec<Arc<LoadedModule>> = modules.into_iter().map(Arc::new).collect();
        for module in &modules {
            module.queue_top_up(&engine);
        }
        Chain {
            engine,
            modules,
            load_error: None,
        }
    }

    /// A chain that denies everything because its configuration failed to load.
    pub fn failed(engine: PolicyEngine, error: LoadError) -> Chain {
        Chain {
            engine,
            modules: Vec::new(),
            load_error: Some(error),
        }
    }

    /// The modules, in chain order.
    pub fn modules(&self) -> Vec<ModuleInfo> {
        self.modules
            .iter()
            .map(|m| ModuleInfo {
                name: m.name.clone(),
                hash: m.hash.clone(),
                monitor: m.monitor,
                world: m.pre.version().as_str().to_owned(),
            })
            .collect()
    }

    /// The load error this chain stands for, if it is a failed chain.
    pub fn load_error(&self) -> Option<&LoadError> {
        self.load_error.as_ref()
    }

    /// Runs every module on `request` and combines their verdicts.
    pub fn evaluate(&self, request: &PolicyRequest) -> ChainReport {
        let started = Instant::now();
        if let Some(error) = &self.load_error {
            let module = error.module().to_owned();
            return ChainReport {
                request_id: request.request_id.clone(),
                decision: FinalDecision::Deny {
                    reason: format!(
                        "The policy chain failed to load, so nothing is allowed until an admin \
                         fixes it: {error}"
                    ),
                    module: Some(module.clone()),
                },
                rule_ids: Vec::new(),
                monitor_decision: None,
                modules: vec![ModuleReport {
                    name: module,
                    hash: String::new(),
                    monitor: false,
                    outcome: ModuleOutcome::Failed(ModuleFailure {
                        kind: FailureKind::Load,
                        message: error.to_string(),
                    }),
                    elapsed_us: 0,
                    logs: Vec::new(),
                    logs_dropped: 0,
                }],
                elapsed_us: started.elapsed().as_micros() as u64,
            };
        }
        let wit_request = Lowered::new(request);
        let modules: Vec<ModuleReport> = self
            .modules
            .iter()
            .map(|m| m.evaluate(&self.engine, &wit_request))
            .collect();
        let (decision, rule_ids) = combine(&modules, false);
        let monitor_decision = modules
            .iter()
            .any(|m| m.monitor)
            .then(|| combine(&modules, true).0);
        ChainReport {
            request_id: request.request_id.clone(),
            decision,
            rule_ids,
            monitor_decision,
            modules,
            elapsed_us: started.elapsed().as_micros() as u64,
        }
    }
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

    fn store(&self, engine: &PolicyEngine) -> Store<State> {
        let inner = &engine.inner;
        let state = State::new(
            self.config.clone(),
            inner.options.memory_limit,
            engine.log_caps(),
        );
        let mut store = Store::new(&inner.engine, state);
        store.limiter(|s| &mut s.limiter);
        store.epoch_deadline_trap();
        arm(engine, &mut store);
        store
    }

    /// Asks the prewarm thread to top up the ready instances, unless one is already asked for.
    fn queue_top_up(self: &Arc<Self>, engine: &PolicyEngine) {
        if engine.options().prewarm == 0 || self.prewarm_failed.load(Ordering::Relaxed) {
            return;
        }
        if !self.top_up_queued.swap(true, Ordering::AcqRel) {
            engine.request_prewarm(Arc::downgrade(self));
        }
    }

    /// Instantiates until `prewarm` instances are ready. Runs on the prewarm thread.
    pub(crate) fn top_up(&self, engine: &PolicyEngine) {
        self.top_up_queued.store(false, Ordering::Release);
        let want = engine.options().prewarm;
        while self.ready.lock().unwrap_or_else(|p| p.into_inner()).len() < want {
            let mut store = self.store(engine);
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
        let mut store = self.store(engine);
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
            Err(failure) => Err(LoadError::ConfigCheckFailed {
                name: self.name.clone(),
                failure,
            }),
        }
    }

    fn evaluate(self: &Arc<Self>, engine: &PolicyEngine, request: &Lowered) -> ModuleReport {
        if !self.pre.version().asks(&request.request().action) {
            return self.not_asked();
        }
        let started = Instant::now();
        let ready = self.ready.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let outcome;
        let store = {
            let _ticking = engine.tick_guard();
            let instantiated = match ready {
                Some(Ready {
                    mut store,
                    instance,
                }) => {
                    self.queue_top_up(engine);
                    // The deadline counts from now, not from when the instance was made.
                    arm(engine, &mut store);
                    Ok((store, instance))
                }
                None => {
                    let mut store = self.store(engine);
                    match self.pre.instantiate(&mut store) {
                        Ok(instance) => Ok((store, instance)),
                        Err(e) => {
                            Err((classify(engine, &store, e, FailureKind::Instantiate), store))
                        }
                    }
                }
            };
            match instantiated {
                Ok((mut store, instance)) => {
                    outcome = instance
                        .evaluate(&mut store, request)
                        .map_err(|e| classify(engine, &store, e, FailureKind::Trap))
                        .and_then(|v| {
                            wasm::check_verdict(v).map_err(|message| ModuleFailure {
                                kind: FailureKind::MalformedResult,
                                message,
                            })
                        });
                    store
                }
                Err((failure, store)) => {
                    outcome = Err(failure);
                    store
                }
            }
        };
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
}

impl LoadedModule {
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

/// Sets a store's budget for one evaluation, counted from now: the epoch deadline always (a store
/// without one must never run), fuel when configured.
fn arm(engine: &PolicyEngine, store: &mut Store<State>) {
    let inner = &engine.inner;
    store.set_epoch_deadline(inner.deadline_ticks);
    if let Some(fuel) = inner.options.fuel {
        store
            .set_fuel(fuel)
            .expect("fuel is enabled in the engine config when set");
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

impl std::fmt::Debug for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chain")
            .field("modules", &self.modules())
            .field("load_error", &self.load_error)
            .finish()
    }
}
