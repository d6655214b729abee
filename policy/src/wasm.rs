//! The wasm side of the engine that every world version shares: the per-store state a module sees
//! (config, capped log, a WASI context that grants nothing, the memory limiter), the linker, and
//! the checks on a verdict. The bindings of each version live in `world`.
//!
//! Nothing here decides anything; `chain` calls into it.

use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::{Linker, ResourceTable};
use wasmtime::ResourceLimiter;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxView, WasiView};

use crate::types;
use crate::world;

/// Per-evaluation caps on what a module may log.
#[derive(Debug, Clone, Copy)]
pub struct LogCaps {
    pub max_lines: u32,
    pub max_bytes: usize,
}

/// What a module's store holds. One per evaluation, dropped with the store.
pub struct State {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limiter: Limiter,
    config: Arc<str>,
    pub(crate) logs: Vec<types::LogLine>,
    log_bytes: usize,
    pub(crate) logs_dropped: u32,
    log_caps: LogCaps,
    stderr: MemoryOutputPipe,
}

/// Bytes of the module's stderr kept (a Rust panic message lands there).
const STDERR_CAP: usize = 4096;

impl State {
    pub fn new(config: Arc<str>, memory_cap: usize, log_caps: LogCaps) -> State {
        let stderr = MemoryOutputPipe::new(STDERR_CAP);
        let wasi = WasiCtx::builder()
            .stderr(stderr.clone())
            .wall_clock(FrozenClock)
            .monotonic_clock(FrozenClock)
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        State {
            wasi,
            table: ResourceTable::new(),
            limiter: Limiter {
                memory_cap,
                hit: false,
            },
            config,
            logs: Vec::new(),
            log_bytes: 0,
            logs_dropped: 0,
            log_caps,
            stderr,
        }
    }

    /// What the module wrote to stderr (e.g. a panic message), lossily decoded and trimmed.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.contents())
            .trim()
            .to_owned()
    }
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// The clock a module sees stands still at the Unix epoch: policies decide from
/// `request.time-unix-ms`, so that a decision can be replayed.
struct FrozenClock;

impl HostWallClock for FrozenClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl HostMonotonicClock for FrozenClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }
    fn now(&self) -> u64 {
        0
    }
}

/// Caps linear memory; records that the cap was hit so the failure is reported as such.
pub struct Limiter {
    memory_cap: usize,
    pub(crate) hit: bool,
}

#[derive(Debug, thiserror::Error)]
#[error("the module tried to grow its memory to {desired} bytes, past the cap of {cap} bytes")]
pub struct MemoryCapExceeded {
    desired: usize,
    cap: usize,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_cap {
            self.hit = true;
            return Err(wasmtime::Error::new(MemoryCapExceeded {
                desired,
                cap: self.memory_cap,
            }));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

impl State {
    /// A line the module logs through `host.log`, kept within the per-evaluation caps.
    pub(crate) fn push_log(&mut self, level: &str, message: String) {
        let caps = self.log_caps;
        if self.logs.len() >= caps.max_lines as usize || self.log_bytes >= caps.max_bytes {
            self.logs_dropped = self.logs_dropped.saturating_add(1);
            return;
        }
        let room = caps.max_bytes - self.log_bytes;
        let message = if message.len() > room {
            self.logs_dropped = self.logs_dropped.saturating_add(1);
            truncate(&message, room)
        } else {
            message
        };
        self.log_bytes += message.len();
        self.logs.push(types::LogLine {
            level: level.to_owned(),
            message,
        });
    }

    /// What `host.config` returns.
    pub(crate) fn config_text(&self) -> String {
        self.config.to_string()
    }
}

/// The linker every module is instantiated with: the `host` interface of every world version and
/// WASI p2 (which, with the context above, grants nothing).
pub fn linker(engine: &wasmtime::Engine) -> wasmtime::Result<Linker<State>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    world::add_to_linker(&mut linker)?;
    Ok(linker)
}

/// Cuts `s` to at most `max` bytes on a character boundary, marking the cut.
pub fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let marker = "…";
    let mut end = max.saturating_sub(marker.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{marker}", &s[..end])
}

/// Bounds on what a verdict may carry; past them the verdict is malformed (or, for prose, cut).
const MAX_REASON_BYTES: usize = 2000;
const MAX_RULE_ID_BYTES: usize = 200;
const MAX_MODEL_BYTES: usize = 200;
const MAX_APPROVERS: usize = 100;
const MAX_APPROVER_BYTES: usize = 100;

/// Checks a module's verdict, whatever its world version. Over-long prose is cut; anything the
/// host could not act on faithfully is refused, which the chain turns into a deny naming the
/// module.
pub fn check_verdict(v: types::Verdict) -> Result<types::Verdict, String> {
    let rule_id = match v.rule_id {
        Some(id) if id.len() > MAX_RULE_ID_BYTES => {
            return Err(format!(
                "rule id is {} bytes; at most {MAX_RULE_ID_BYTES}",
                id.len()
            ))
        }
        other => other,
    };
    let decision = match v.decision {
        types::Decision::Allow(l) => {
            if l.model
                .as_ref()
                .is_some_and(|m| m.len() > MAX_MODEL_BYTES || m.is_empty())
            {
                return Err("allow pins an empty or over-long model name".into());
            }
            if l.timeout_secs == Some(0) {
                return Err("allow sets a timeout of 0 seconds".into());
            }
            types::Decision::Allow(l)
        }
        types::Decision::Deny { reason } => types::Decision::Deny {
            reason: if reason.trim().is_empty() {
                "Denied by policy.".to_owned()
            } else {
                truncate(&reason, MAX_REASON_BYTES)
            },
        },
        types::Decision::RequireApproval(a) => {
            if a.approvers.is_empty() || a.approvers.len() > MAX_APPROVERS {
                return Err(format!(
                    "require-approval names {} approvers; it needs between 1 and {MAX_APPROVERS}",
                    a.approvers.len()
                ));
            }
            if a.approvers
                .iter()
                .any(|x| x.trim().is_empty() || x.len() > MAX_APPROVER_BYTES)
            {
                return Err("require-approval names an empty or over-long approver".into());
            }
            if a.min_approvals == 0 || a.min_approvals as usize > a.approvers.len() {
                return Err(format!(
                    "require-approval asks for {} approvals from {} approvers",
                    a.min_approvals,
                    a.approvers.len()
                ));
            }
            types::Decision::RequireApproval(types::Approval {
                reason: truncate(&a.reason, MAX_REASON_BYTES),
                ..a
            })
        }
        types::Decision::Abstain => types::Decision::Abstain,
    };
    Ok(types::Verdict { decision, rule_id })
}
