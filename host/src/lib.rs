//! codex-host: the sidecar of Codex for Mattermost.
//!
//! `api` serves the plugin on a Unix socket; `service` turns requests into runs; `runner` runs the
//! Codex CLI; `chat` talks to Mattermost; `store` keeps state in SQLite; `render` writes every
//! text a person reads; `gate` decides who may do what; `buttons` signs and checks button clicks;
//! `config` validates settings.

pub mod api;
pub mod buttons;
pub mod chat;
pub mod config;
pub mod gate;
pub mod model;
pub mod render;
pub mod runner;
pub mod service;
pub mod store;
