//! The live policy chain of a running host: evaluate against the current chain, reload from new
//! specs (compiled off the request path, swapped atomically, the old chain kept on failure), and
//! a file watcher that reloads when a module file changes.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;

use crate::chain::{Chain, ModuleInfo};
use crate::engine::PolicyEngine;
use crate::error::LoadError;
use crate::module::{ModuleSource, ModuleSpec};
use crate::types::{ChainReport, PolicyRequest};

/// The chain in force, swappable while requests are being evaluated.
pub struct PolicyService {
    engine: PolicyEngine,
    current: ArcSwap<Chain>,
    /// The specs of the last reload attempt (what the watcher re-reads) and its error, if any.
    state: Mutex<ServiceState>,
    generation: AtomicU64,
}

struct ServiceState {
    specs: Vec<ModuleSpec>,
    last_error: Option<LoadError>,
}

/// What a successful reload put in force.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReloadReport {
    /// Increases by one with every chain put in force.
    pub generation: u64,
    pub modules: Vec<ModuleInfo>,
}

impl PolicyService {
    /// Loads `specs` as the first chain. If they fail to load there is no older chain to keep,
    /// so the service starts with a chain that denies everything, naming the broken module;
    /// the error is also in `last_error()`.
    pub fn new(engine: PolicyEngine, specs: Vec<ModuleSpec>) -> PolicyService {
        let (chain, last_error) = match engine.load_chain(&specs) {
            Ok(chain) => (chain, None),
            Err(e) => {
                tracing::error!(error = %e, "policy chain failed to load; denying every request");
                (Chain::failed(engine.clone(), e.clone()), Some(e))
            }
        };
        PolicyService {
            engine,
            current: ArcSwap::from_pointee(chain),
            state: Mutex::new(ServiceState { specs, last_error }),
            generation: AtomicU64::new(1),
        }
    }

    /// Decides `request` with the chain in force. Never fails: failures are denials in the
    /// report. Synchronous and CPU-bound (tens of microseconds per module, at most the engine
    /// deadline per module).
    pub fn evaluate(&self, request: &PolicyRequest) -> ChainReport {
        self.current.load().evaluate(request)
    }

    /// The chain in force (for callers that evaluate many requests against one snapshot).
    pub fn chain(&self) -> Arc<Chain> {
        self.current.load_full()
    }

    /// Loads `specs` and, if every module loads and accepts its config, puts the new chain in
    /// force. On error the chain in force stays, and the error is returned and kept in
    /// `last_error()`. Blocking (compiling a new module takes up to seconds): call it off the
    /// request path, e.g. from `spawn_blocking`.
    pub fn reload(&self, specs: Vec<ModuleSpec>) -> Result<ReloadReport, LoadError> {
        let loaded = self.engine.load_chain(&specs);
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.specs = specs;
        match loaded {
            Ok(chain) => {
                let modules = chain.modules();
                self.current.store(Arc::new(chain));
                state.last_error = None;
                let generation = self.generation.fetch_add(1, Ordering::AcqRel) + 1;
                tracing::info!(generation, modules = ?modules, "policy chain reloaded");
                Ok(ReloadReport {
                    generation,
                    modules,
                })
            }
            Err(e) => {
                tracing::error!(error = %e, "policy reload failed; keeping the previous chain");
                state.last_error = Some(e.clone());
                Err(e)
            }
        }
    }

    /// Reloads the specs of the last `new`/`reload` call, re-reading their files.
    pub fn reload_files(&self) -> Result<ReloadReport, LoadError> {
        let specs = self
            .state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .specs
            .clone();
        self.reload(specs)
    }

    /// Modules of the chain in force.
    pub fn modules(&self) -> Vec<ModuleInfo> {
        self.current.load().modules()
    }

    /// Generation of the chain in force (1 for the first).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The error of the last load or reload, if it failed.
    pub fn last_error(&self) -> Option<LoadError> {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .last_error
            .clone()
    }

    /// Starts a thread that polls the module files of the current specs every `interval` and
    /// reloads when one changes (size or modification time). `on_reload` hears every attempt,
    /// successful or not, e.g. to audit it. The thread stops when the handle drops.
    pub fn watch(
        self: &Arc<Self>,
        interval: Duration,
        on_reload: impl Fn(&Result<ReloadReport, LoadError>) + Send + 'static,
    ) -> WatchHandle {
        let (stop, stopped) = mpsc::channel::<()>();
        let service = Arc::downgrade(self);
        let mut seen = self.fingerprint();
        let thread = thread::Builder::new()
            .name("policy-watch".into())
            .spawn(move || {
                loop {
                    match stopped.recv_timeout(interval) {
                        Err(RecvTimeoutError::Timeout) => {}
                        _ => return,
                    }
                    let Some(service) = service.upgrade() else {
                        return;
                    };
                    let now = service.fingerprint();
                    let same_files = now.iter().map(|f| &f.0).eq(seen.iter().map(|f| &f.0));
                    // A `reload` with other paths already loaded them; only track those.
                    if same_files && now != seen {
                        on_reload(&service.reload_files());
                    }
                    seen = now;
                }
            })
            .expect("spawning the policy watch thread");
        WatchHandle {
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    fn fingerprint(&self) -> Vec<(PathBuf, Option<(u64, SystemTime)>)> {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state
            .specs
            .iter()
            .filter_map(|s| match &s.source {
                ModuleSource::Path(p) => Some(p.clone()),
                ModuleSource::Bytes(_) => None,
            })
            .map(|p| {
                let meta = std::fs::metadata(&p)
                    .ok()
                    .and_then(|m| Some((m.len(), m.modified().ok()?)));
                (p, meta)
            })
            .collect()
    }
}

/// Stops the watcher thread when dropped.
pub struct WatchHandle {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Drop for WatchHandle {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
