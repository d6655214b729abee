//! The wasm side of the engine: bindings generated from `wit/policy.wit`, the per-store state a
//! module sees (config, capped log, a WASI context that grants nothing, the memory limiter) and
//! the conversions between the bindings and the serde types in `types`.
//!
//! Nothing here decides anything; `chain` calls into it.

use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime::ResourceLimiter;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxView, WasiView};

use crate::types;

wasmtime::component::bindgen!({
    path: "../wit",
    world: "policy-module",
});

use mattermost_codex::policy::host::Level;
use mattermost_codex::policy::types as wit;

/// The WIT package version this host implements.
pub const WORLD_VERSION: &str = "0.1.0";
/// The interface a module must export.
pub const POLICY_EXPORT: &str = "mattermost-codex:policy/policy@0.1.0";
/// Prefix of the policy export in any version, to recognise a module built for another one.
pub const POLICY_EXPORT_PREFIX: &str = "mattermost-codex:policy/policy@";

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

impl mattermost_codex::policy::types::Host for State {}

impl mattermost_codex::policy::host::Host for State {
    fn log(&mut self, level: Level, message: String) {
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
        let level = match level {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        };
        self.logs.push(types::LogLine {
            level: level.to_owned(),
            message,
        });
    }

    fn config(&mut self) -> String {
        self.config.to_string()
    }
}

/// The linker every module is instantiated with: the `host` interface and WASI p2 (which, with
/// the context above, grants nothing).
pub fn linker(engine: &wasmtime::Engine) -> wasmtime::Result<Linker<State>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    PolicyModule::add_to_linker::<State, HasSelf<State>>(&mut linker, |s| s)?;
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

pub fn request_to_wit(r: &types::PolicyRequest) -> wit::Request {
    wit::Request {
        request_id: r.request_id.clone(),
        user: wit::User {
            id: r.user.id.clone(),
            username: r.user.username.clone(),
            roles: r.user.roles.clone(),
        },
        channel: wit::Channel {
            id: r.channel.id.clone(),
            name: r.channel.name.clone(),
            team: wit::Team {
                id: r.channel.team.id.clone(),
                name: r.channel.team.name.clone(),
            },
            kind: match r.channel.kind {
                types::ChannelKind::Public => wit::ChannelKind::Public,
                types::ChannelKind::Private => wit::ChannelKind::Private,
                types::ChannelKind::Direct => wit::ChannelKind::Direct,
                types::ChannelKind::Group => wit::ChannelKind::Group,
            },
        },
        action: match r.action {
            types::Action::New => wit::Action::New,
            types::Action::Continue => wit::Action::Continue,
            types::Action::Approve => wit::Action::Approve,
            types::Action::Reject => wit::Action::Reject,
            types::Action::Cancel => wit::Action::Cancel,
            types::Action::Retry => wit::Action::Retry,
            types::Action::PolicyQuery => wit::Action::PolicyQuery,
        },
        prompt: r.prompt.clone(),
        project: r.project.as_ref().map(|p| wit::Project {
            name: p.name.clone(),
            repo_path: p.repo_path.clone(),
        }),
        requested_sandbox: sandbox_to_wit(r.requested_sandbox),
        thread_root_id: r.thread_root_id.clone(),
        time_unix_ms: r.time_unix_ms,
        attachment_count: r.attachment_count,
    }
}

fn sandbox_to_wit(s: types::SandboxMode) -> wit::SandboxMode {
    match s {
        types::SandboxMode::ReadOnly => wit::SandboxMode::ReadOnly,
        types::SandboxMode::WorkspaceWrite => wit::SandboxMode::WorkspaceWrite,
        types::SandboxMode::DangerFullAccess => wit::SandboxMode::DangerFullAccess,
    }
}

fn sandbox_from_wit(s: wit::SandboxMode) -> types::SandboxMode {
    match s {
        wit::SandboxMode::ReadOnly => types::SandboxMode::ReadOnly,
        wit::SandboxMode::WorkspaceWrite => types::SandboxMode::WorkspaceWrite,
        wit::SandboxMode::DangerFullAccess => types::SandboxMode::DangerFullAccess,
    }
}

/// Bounds on what a verdict may carry; past them the verdict is malformed (or, for prose, cut).
const MAX_REASON_BYTES: usize = 2000;
const MAX_RULE_ID_BYTES: usize = 200;
const MAX_MODEL_BYTES: usize = 200;
const MAX_APPROVERS: usize = 100;
const MAX_APPROVER_BYTES: usize = 100;

/// Converts and checks a module's verdict. Over-long prose is cut; anything the host could not
/// act on faithfully is refused, which the chain turns into a deny naming the module.
pub fn verdict_from_wit(v: wit::Verdict) -> Result<types::Verdict, String> {
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
        wit::Decision::Allow(l) => {
            if l.model
                .as_ref()
                .is_some_and(|m| m.len() > MAX_MODEL_BYTES || m.is_empty())
            {
                return Err("allow pins an empty or over-long model name".into());
            }
            if l.timeout_secs == Some(0) {
                return Err("allow sets a timeout of 0 seconds".into());
            }
            types::Decision::Allow(types::Limits {
                sandbox: l.sandbox.map(sandbox_from_wit),
                timeout_secs: l.timeout_secs,
                model: l.model,
            })
        }
        wit::Decision::Deny(reason) => types::Decision::Deny {
            reason: if reason.trim().is_empty() {
                "Denied by policy.".to_owned()
            } else {
                truncate(&reason, MAX_REASON_BYTES)
            },
        },
        wit::Decision::RequireApproval(a) => {
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
                approvers: a.approvers,
                min_approvals: a.min_approvals,
                reason: truncate(&a.reason, MAX_REASON_BYTES),
                expiry_secs: a.expiry_secs,
                allow_self_approval: a.allow_self_approval,
            })
        }
        wit::Decision::Abstain => types::Decision::Abstain,
    };
    Ok(types::Verdict { decision, rule_id })
}
