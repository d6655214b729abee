//! codex-host: the sidecar of Codex for Mattermost.
//!
//! The run lifecycle, top to bottom (each module imports only those below it):
//! - `api`: the Unix-socket server — auth, routes; no behaviour of its own.
//! - `app`: wiring, settings (one [`state::Snapshot`] swapped whole), recovery, health, shutdown.
//! - `commands`: the `/codex` grammar, one file per subcommand, and the one subcommand list.
//! - `runs`: a prompt from acceptance to its one outcome post (submit, drive, progress, outcome,
//!   delivery, transcript, images, thread replies, the run's buttons).
//! - `approvals`: runs waiting for approvers — the request post, the wait, the clicks.
//! - `access`: Request access under an allowlist refusal — the approvers' DMs, their answers.
//! - `state`: what the host holds ([`state::Host`]) and the config snapshot.
//!
//! Beneath them, each with one job: `protocol` (the socket contract's wire types), `gate` (the
//! host's seam to the policy engine, evaluated off the async workers), `runner` (the Codex CLI
//! process, its events, the queue, run isolation), `chat` (Mattermost, the terminal, or memory
//! for tests), `store` (SQLite, one file per table), `worktrees` (git worktrees of `worktree=on`
//! threads; the one place that runs git), `render` (every text a person reads), `buttons`
//! (signed button contexts), `history` (`codex-host audit`), `config` (settings, validated),
//! `metrics` (counters for the health answer) and `model` (run status, run mode, approval state).

pub mod access;
pub mod api;
pub mod app;
pub mod approvals;
pub mod buttons;
pub mod chat;
pub mod commands;
pub mod config;
pub mod gate;
pub mod history;
pub mod metrics;
pub mod model;
pub mod protocol;
pub mod remote;
pub mod render;
pub mod runner;
pub mod runs;
pub mod state;
pub mod store;
#[cfg(test)]
mod testing;
pub mod worktrees;
