//! World 0.2.0 (`wit/policy.wit`, the current version): its bindings, the request as a 0.2.0
//! module sees it (everything, including context, `command` and `file-change`) and its verdict
//! read back into the engine's types.

use crate::types;
use crate::wasm::State;

wasmtime::component::bindgen!({
    path: "../wit/policy.wit",
    world: "policy-module",
});

use mattermost_codex::policy::host::Level;
use mattermost_codex::policy::types as wit;

pub use wit::{Request, Verdict};

common_mappings!();

/// The request a 0.2.0 module sees: all of it.
pub fn request(r: &types::PolicyRequest) -> Request {
    let action = match &r.action {
        types::Action::New => wit::Action::New,
        types::Action::Continue => wit::Action::Continue,
        types::Action::Approve => wit::Action::Approve,
        types::Action::Reject => wit::Action::Reject,
        types::Action::Cancel => wit::Action::Cancel,
        types::Action::Retry => wit::Action::Retry,
        types::Action::PolicyQuery => wit::Action::PolicyQuery,
        types::Action::Command(c) => wit::Action::Command(wit::Command {
            argv: c.argv.clone(),
            cwd: c.cwd.clone(),
            reason: c.reason.clone(),
            escalated: c.escalated,
            network: c.network,
        }),
        types::Action::FileChange(f) => wit::Action::FileChange(wit::FileChange {
            files: f
                .files
                .iter()
                .map(|e| wit::FileEdit {
                    path: e.path.clone(),
                    added_lines: e.added_lines,
                    removed_lines: e.removed_lines,
                })
                .collect(),
            reason: f.reason.clone(),
        }),
    };
    Request {
        request_id: r.request_id.clone(),
        user: user(&r.user),
        channel: channel(&r.channel),
        action,
        prompt: r.prompt.clone(),
        context: r.context.clone(),
        project: r.project.as_ref().map(project),
        requested_sandbox: sandbox_to_wit(r.requested_sandbox),
        thread_root_id: r.thread_root_id.clone(),
        time_unix_ms: r.time_unix_ms,
        attachment_count: r.attachment_count,
    }
}
