//! World 0.1.0 (`wit/0.1.0/policy.wit`, frozen): its bindings, the request as a 0.1.0 module
//! sees it (no context; no `command` or `file-change`: those are not asked of it) and its verdict
//! read back into the engine's types.

use crate::types;
use crate::wasm::State;

wasmtime::component::bindgen!({
    path: "../wit/0.1.0",
    world: "policy-module",
});

use mattermost_codex::policy::host::Level;
use mattermost_codex::policy::types as wit;

pub use wit::{Request, Verdict};

common_mappings!();

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
        user: user(&r.user),
        channel: channel(&r.channel),
        action,
        prompt: r.prompt.clone(),
        project: r.project.as_ref().map(project),
        requested_sandbox: sandbox_to_wit(r.requested_sandbox),
        thread_root_id: r.thread_root_id.clone(),
        time_unix_ms: r.time_unix_ms,
        attachment_count: r.attachment_count,
    })
}
