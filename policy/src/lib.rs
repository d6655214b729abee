//! codex-policy: the policy engine of Codex for Mattermost.
//!
//! Policy modules are WebAssembly components built against the `policy-module` world in `wit/`
//! (the current version, or an older one the host still loads: `world` maps each to `types`).
//! This crate loads them into one wasmtime engine, runs them as an ordered chain (first deny
//! wins, approvals merge, tightest limits, fail closed) in a fresh sandboxed instance per module
//! per decision, reloads them when their files or settings change, and offers the `policy
//! check | test | bench` tools. The host owns the audit store and the HTTP surface; this crate
//! never touches the network.
//!
//! ```no_run
//! use codex_policy::{EngineOptions, ModuleSpec, PolicyEngine, PolicyRequest, PolicyService};
//! let engine = PolicyEngine::new(EngineOptions::default())?;
//! let specs = vec![ModuleSpec::from_path("allowlist", "target/policies/allowlist.wasm", r#"{"users":["alice"]}"#)];
//! let service = PolicyService::new(engine, specs);
//! let report = service.evaluate(&PolicyRequest::default());
//! println!("{:?} because {:?}", report.decision, report.rule_ids);
//! # anyhow::Ok(())
//! ```
//!
//! Layout, each depending only on those before it: `types` (serde data crossing into the host),
//! `combine` (chain semantics, pure), `world` (one set of bindings per WIT version, and the
//! conversions), `wasm` (store state, verdict checks), `engine` (wasmtime engine, cache, ticker,
//! stores), `module` (one module: its spec, loading, one evaluation), `chain` (modules in order,
//! combined), `service` (hot reload, watcher), `cases` and `cli` (the tools).

pub mod cases;
mod chain;
pub mod cli;
mod combine;
mod engine;
mod error;
mod module;
mod service;
pub mod types;
mod wasm;
mod world;

pub use chain::{Chain, ModuleInfo};
pub use combine::{ALL_ABSTAINED_REASON, NO_POLICY_REASON};
pub use engine::{EngineOptions, PolicyEngine};
pub use error::LoadError;
pub use module::{content_hash, ModuleSource, ModuleSpec};
pub use service::{PolicyService, ReloadReport, WatchHandle};
pub use types::*;
pub use world::{WorldVersion, POLICY_EXPORT, WORLD_VERSION};
