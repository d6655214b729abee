//! The one wasmtime `Engine` of a process and everything tied to it: the pooling allocator, the
//! epoch ticker thread that enforces deadlines, the on-disk cache of compiled components, the
//! shared `Linker`, the one place a `Store` is made and armed with its limits, and a background
//! thread for work off the request path (prewarming instances).
//!
//! Knows nothing of modules or chains (`module`, `chain` build on it). Never touches the
//! network; reads and writes only the cache directory.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, OnceLock, Weak};
use std::thread;
use std::time::{Duration, Instant};

use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Enabled, InstanceAllocationStrategy, PoolingAllocationConfig, Store};

use crate::error::LoadError;
use crate::wasm::{self, LogCaps, State};

/// How evaluations are sandboxed. One set per engine.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Where compiled components are cached (`<sha256>-<engine>.cwasm`). `None`: compile on every
    /// load. Only the host should be able to write here: cached code is loaded as trusted.
    pub cache_dir: Option<PathBuf>,
    /// Linear memory cap per module instance, in bytes.
    pub memory_limit: usize,
    /// Wall-clock budget of one module evaluation (instantiation plus call).
    pub deadline: Duration,
    /// Optional instruction budget per evaluation, on top of the deadline.
    pub fuel: Option<u64>,
    /// How many module instances may be alive at once (sizes the pooling allocator).
    pub max_instances: u32,
    /// Per-evaluation log caps: lines and total bytes.
    pub max_log_lines: u32,
    pub max_log_bytes: usize,
    /// Fresh, never-used instances kept ready per module, made by a background thread so that
    /// a request pays only for the call. 0 (the default) instantiates on the request path: on a
    /// busy 2-core machine the background thread competes with requests, and `policy bench`
    /// measured the chain faster without it (p50 67 µs vs 120 µs for 3 modules).
    pub prewarm: usize,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            cache_dir: None,
            memory_limit: 16 << 20,
            deadline: Duration::from_millis(20),
            fuel: None,
            max_instances: 256,
            max_log_lines: 20,
            max_log_bytes: 4096,
            prewarm: 0,
        }
    }
}

/// The least wall-clock budget of a module's config check at load (see `arm_for_load`).
pub const LOAD_DEADLINE: Duration = Duration::from_secs(1);

/// Resolution of deadlines: the ticker advances the engine's epoch this often while any
/// evaluation runs.
const EPOCH_TICK: Duration = Duration::from_millis(1);

/// A cheaply clonable handle on the engine.
#[derive(Clone)]
pub struct PolicyEngine {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) engine: wasmtime::Engine,
    pub(crate) linker: Linker<State>,
    pub(crate) options: EngineOptions,
    pub(crate) deadline_ticks: u64,
    ticker: Arc<Ticker>,
    /// Whether the pooling allocator is in use (it is unless the platform refused it).
    pub(crate) pooling: bool,
    /// Work for the background thread (topping up modules' ready instances).
    background: Mutex<mpsc::Sender<BackgroundJob>>,
}

/// A piece of work run off the request path, given the engine if it still exists.
pub(crate) type BackgroundJob = Box<dyn FnOnce(&PolicyEngine) + Send>;

/// Advances the epoch every tick while at least one evaluation is in flight, and sleeps
/// otherwise so that an idle host does not wake up a thousand times a second.
struct Ticker {
    active: AtomicUsize,
    thread: OnceLock<thread::Thread>,
}

/// Held for the duration of wasm execution; keeps the ticker ticking.
pub(crate) struct TickGuard<'a>(&'a Ticker);

impl Drop for TickGuard<'_> {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::AcqRel);
    }
}

impl PolicyEngine {
    /// Builds the engine, its allocator and its ticker thread.
    pub fn new(options: EngineOptions) -> anyhow::Result<Self> {
        if options.memory_limit < (1 << 16) {
            anyhow::bail!("memory_limit must be at least 64 KiB (one wasm page)");
        }
        if options.deadline < EPOCH_TICK {
            anyhow::bail!("deadline must be at least {EPOCH_TICK:?}");
        }
        let (engine, pooling) = match wasmtime::Engine::new(&config(&options, true)) {
            Ok(engine) => (engine, true),
            Err(e) => {
                tracing::warn!(
                    error = %e,
                    "the pooling allocator is unavailable here; instantiating on demand"
                );
                (wasmtime::Engine::new(&config(&options, false))?, false)
            }
        };
        let linker = wasm::linker(&engine)?;
        let deadline_ticks =
            (options.deadline.as_micros() / EPOCH_TICK.as_micros()).max(1) as u64 + 1;
        if let Some(dir) = &options.cache_dir {
            std::fs::create_dir_all(dir).map_err(|e| {
                anyhow::anyhow!(
                    "cannot create the policy cache directory {}: {e}",
                    dir.display()
                )
            })?;
        }

        let (background_tx, background_rx) = mpsc::channel();
        let ticker = Arc::new(Ticker {
            active: AtomicUsize::new(0),
            thread: OnceLock::new(),
        });
        let inner = Arc::new(Inner {
            engine,
            linker,
            options,
            deadline_ticks,
            ticker: ticker.clone(),
            pooling,
            background: Mutex::new(background_tx),
        });
        // The threads hold weak references, so they end when the last handle on the engine
        // (including every loaded chain) is gone. They start only once `inner` exists: a ticker
        // that found no engine would exit, and deadlines would never fire.
        let weak = Arc::downgrade(&inner);
        let handle = thread::Builder::new()
            .name("policy-epoch".into())
            .spawn(move || tick(weak))?;
        let _ = ticker.thread.set(handle.thread().clone());
        let weak = Arc::downgrade(&inner);
        thread::Builder::new()
            .name("policy-prewarm".into())
            .spawn(move || background(weak, background_rx))?;
        Ok(PolicyEngine { inner })
    }

    pub fn options(&self) -> &EngineOptions {
        &self.inner.options
    }

    /// Whether instances come from the pooling allocator (false only where the platform
    /// refused to reserve the pool).
    pub fn uses_pooling_allocator(&self) -> bool {
        self.inner.pooling
    }

    /// Compiles `bytes` or loads its compiled form from the cache.
    pub(crate) fn compile(
        &self,
        name: &str,
        bytes: &[u8],
        hash: &str,
    ) -> Result<Component, LoadError> {
        let engine = &self.inner.engine;
        let cache_file = self.inner.options.cache_dir.as_ref().map(|dir| {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            engine.precompile_compatibility_hash().hash(&mut h);
            let hex = hash.trim_start_matches("sha256:");
            dir.join(format!("{hex}-{:016x}.cwasm", h.finish()))
        });
        if let Some(file) = cache_file.as_deref().filter(|f| f.exists()) {
            // SAFETY: the cache directory belongs to the host and the file name carries both
            // the content hash and the engine's compatibility hash; wasmtime additionally checks
            // the engine configuration when deserializing.
            match unsafe { Component::deserialize_file(engine, file) } {
                Ok(component) => return Ok(component),
                Err(e) => tracing::warn!(module = name, file = %file.display(), error = %e,
                    "ignoring an unusable cached policy; recompiling"),
            }
        }
        let started = Instant::now();
        let component = Component::new(engine, bytes).map_err(|e| LoadError::Compile {
            name: name.to_owned(),
            message: format!("{e:#}"),
        })?;
        tracing::debug!(
            module = name,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "compiled policy"
        );
        if let Some(file) = cache_file {
            if let Err(e) = write_cache(&component, &file) {
                tracing::warn!(module = name, file = %file.display(), error = %e,
                    "could not cache the compiled policy");
            }
        }
        Ok(component)
    }

    /// Marks wasm as running until the guard drops, so the ticker advances the epoch.
    pub(crate) fn tick_guard(&self) -> TickGuard<'_> {
        let ticker = &self.inner.ticker;
        if ticker.active.fetch_add(1, Ordering::AcqRel) == 0 {
            if let Some(thread) = ticker.thread.get() {
                thread.unpark();
            }
        }
        TickGuard(ticker)
    }

    /// Runs `job` on the background thread, off the request path.
    pub(crate) fn in_background(&self, job: BackgroundJob) {
        let tx = self
            .inner
            .background
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let _ = tx.send(job);
    }

    /// A fresh store for one evaluation of a module with `config`: the memory cap, the log caps
    /// and a WASI context that grants nothing, armed with its deadline (see `arm`).
    pub(crate) fn new_store(&self, config: Arc<str>) -> Store<State> {
        let inner = &self.inner;
        let caps = LogCaps {
            max_lines: inner.options.max_log_lines,
            max_bytes: inner.options.max_log_bytes,
        };
        let state = State::new(config, inner.options.memory_limit, caps);
        let mut store = Store::new(&inner.engine, state);
        store.limiter(|s| &mut s.limiter);
        store.epoch_deadline_trap();
        self.arm(&mut store);
        store
    }

    /// Sets a store's budget for checking a module's config at load: the evaluation deadline, but
    /// at least [`LOAD_DEADLINE`]. The check runs once per settings change, off the request path;
    /// on a busy machine a 20 ms wall-clock budget there would refuse a healthy module and switch
    /// Codex off for everyone.
    pub(crate) fn arm_for_load(&self, store: &mut Store<State>) {
        self.arm(store);
        let ticks = (LOAD_DEADLINE.as_micros() / EPOCH_TICK.as_micros()) as u64 + 1;
        store.set_epoch_deadline(self.inner.deadline_ticks.max(ticks));
    }

    /// Sets a store's budget for one evaluation, counted from now: the epoch deadline always (a
    /// store without one must never run), fuel when configured.
    pub(crate) fn arm(&self, store: &mut Store<State>) {
        let inner = &self.inner;
        store.set_epoch_deadline(inner.deadline_ticks);
        if let Some(fuel) = inner.options.fuel {
            store
                .set_fuel(fuel)
                .expect("fuel is enabled in the engine config when set");
        }
    }
}

fn tick(inner: Weak<Inner>) {
    loop {
        let Some(strong) = inner.upgrade() else {
            return;
        };
        let active = strong.ticker.active.load(Ordering::Acquire) > 0;
        if active {
            strong.engine.increment_epoch();
        }
        drop(strong);
        if active {
            thread::sleep(EPOCH_TICK);
        } else {
            // Woken by `tick_guard`; the timeout only lets the thread notice the engine is gone.
            thread::park_timeout(Duration::from_millis(200));
        }
    }
}

/// Runs background jobs (instantiating modules ahead of requests) in order. Exits when the
/// engine is gone (its sender drops with it).
fn background(inner: Weak<Inner>, queue: mpsc::Receiver<BackgroundJob>) {
    while let Ok(job) = queue.recv() {
        let Some(inner) = inner.upgrade() else {
            continue;
        };
        job(&PolicyEngine { inner });
    }
}

fn write_cache(component: &Component, file: &Path) -> anyhow::Result<()> {
    let bytes = component.serialize()?;
    let tmp = file.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, file)?;
    Ok(())
}

fn config(options: &EngineOptions, pooling: bool) -> Config {
    let mut config = Config::new();
    config.epoch_interruption(true);
    config.consume_fuel(options.fuel.is_some());
    config.max_wasm_stack(1 << 20);
    if pooling {
        let n = options.max_instances.max(1);
        let mut pool = PoolingAllocationConfig::new();
        pool.total_component_instances(n)
            // A component holds several core instances (its module plus adapter shims).
            .total_core_instances(n.saturating_mul(8))
            .total_memories(n.saturating_mul(2))
            .total_tables(n.saturating_mul(4))
            .max_tables_per_module(4)
            .max_memory_size(options.memory_limit)
            // Reset used memory with memset instead of madvise: the next instance finds its
            // pages resident (the design's measured fast path).
            .linear_memory_keep_resident(1 << 20)
            .table_keep_resident(1 << 16)
            .pagemap_scan(Enabled::Auto);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    config
}
