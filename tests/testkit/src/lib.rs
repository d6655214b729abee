//! Realistic local peers for every test suite of Codex for Mattermost, served on loopback:
//!
//! - [`MockModel`]: the OpenAI Responses API as the real Codex CLI calls it (`POST {base}/responses`,
//!   server-sent events), with scenarios chosen by a `[[mock:...]]` marker in the prompt.
//! - [`FakeMattermost`]: the part of the Mattermost REST API v4 that `codex-host` uses as its bot,
//!   shaped like the real server (paths, JSON field names, status codes, error bodies), plus
//!   `/_test/` endpoints to seed users and posts, read everything back and inject faults.
//! - [`codex`]: where the pinned Codex CLI lives and the `-c` overrides that point it at a
//!   [`MockModel`] with nothing leaving the machine.
//!
//! Both servers start in-process on `127.0.0.1:0` (or any address), record everything they are sent,
//! and let a test wait on a condition over that record instead of sleeping. The `codex-testkit`
//! binary serves the same two peers for suites written in other languages.

pub mod codex;
pub mod mattermost;
pub mod model;
mod server;

pub use mattermost::{FakeMattermost, MattermostConfig};
pub use model::MockModel;
