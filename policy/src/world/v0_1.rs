//! World 0.1.0 (`wit/0.1.0/policy.wit`, frozen): its bindings, the request as a 0.1.0 module
//! sees it (no context; no `command` or `file-change`: those are not asked of it) and its verdict
//! read back into the engine's types.

use wasmtime::component::{HasSelf, Linker};

use crate::types;
use crate::wasm::State;

wasmtime::component::bindgen!({
    path: "../wit/0.1.0",
    world: "policy-module",
});

use mattermost_codex::policy::host::Level;
use mattermost_codex::policy::types as wit;

pub use wit::{Request, Verdict};

pub fn add_to_linker(linker: &mut Linker<State>) -> wasmtime::Result<()> {
    PolicyModule::add_to_linker::<State, HasSelf<State>>(linker, |s| s)
}

impl mattermost_codex::policy::types::Host for State {}

impl mattermost_codex::policy::host::Host for State {
    fn log(&mut self, level: Level, message: String) {
        let level = match level {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        };
        self.push_log(level, message);
    }

    fn config(&mut self) -> String {
        self.config_text()
    }
}

/// The request a 0.1.0 module sees, or `None` for an action 0.1.0 does not have.
pub fn request(r: &types::PolicyRequest) -> Option<Request> {
    let action = match &r.action {
        types::Action::New => wit::Action::New,
        types::Action::Continue => wit::Action::Continue,
        types::Action::Approve => wit::Action::Approve,
        types::Action::Reject => wit::Action::Reject,
        types::Action::Cancel => wit::Action::Cancel,
        types::Action::Retry => wit::Action::Retry,
        types::Action::PolicyQuery => wit::Action::PolicyQuery,
        types::Action::Command(_) | types::Action::FileChange(_) => return None,
    };
    Some(Request {
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
        action,
        prompt: r.prompt.clone(),
        project: r.project.as_ref().map(|p| wit::Project {
            name: p.name.clone(),
            repo_path: p.repo_path.clone(),
        }),
        requested_sandbox: sandbox_to_wit(r.requested_sandbox),
        thread_root_id: r.thread_root_id.clone(),
        time_unix_ms: r.time_unix_ms,
        attachment_count: r.attachment_count,
    })
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

/// The verdict as the module gave it, unchecked (`wasm::check_verdict` checks it).
pub fn verdict(v: Verdict) -> types::Verdict {
    let decision = match v.decision {
        wit::Decision::Allow(l) => types::Decision::Allow(types::Limits {
            sandbox: l.sandbox.map(sandbox_from_wit),
            timeout_secs: l.timeout_secs,
            model: l.model,
        }),
        wit::Decision::Deny(reason) => types::Decision::Deny { reason },
        wit::Decision::RequireApproval(a) => types::Decision::RequireApproval(types::Approval {
            approvers: a.approvers,
            min_approvals: a.min_approvals,
            reason: a.reason,
            expiry_secs: a.expiry_secs,
            allow_self_approval: a.allow_self_approval,
        }),
        wit::Decision::Abstain => types::Decision::Abstain,
    };
    types::Verdict {
        decision,
        rule_id: v.rule_id,
    }
}
