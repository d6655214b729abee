//! The command-approval section: what the policy chain adds when Codex, during a run under
//! `codex app-server`, asks to run a command. The host asks the chain about every such request
//! (action `command`) before it answers Codex; this measures that decision for the allow path,
//! with the chain a deployment uses for it — the bundled `allowlist`, then the example
//! `command-guard` (policies/command-guard/cases-chain.toml) — on the engine the host embeds.

use std::path::Path;

use anyhow::{bail, Context as _};
use codex_policy::{EngineOptions, FinalDecision, ModuleSpec, PolicyEngine, PolicyRequest};
use serde_json::json;

use crate::results::{quantile, Figure, Section};
use crate::Common;

/// Read-only commands inside the repository, as Codex asks for them: every one is allowed by
/// command-guard's `read-only-command` rule.
const COMMANDS: &[&[&str]] = &[
    &["ls", "-la"],
    &["rg", "-n", "fn main", "src"],
    &[
        "bash",
        "-lc",
        "git status --short && git diff HEAD~1 -- src | head -50; git log --oneline -5",
    ],
    &[
        "/bin/bash",
        "-lc",
        "sed -n '1,200p' src/main.rs 2>/dev/null",
    ],
    &["cat", "Cargo.toml"],
    &["grep", "-rn", "TODO", "src"],
];

fn chain_specs(dir: &Path) -> anyhow::Result<Vec<ModuleSpec>> {
    let modules = [
        ("allowlist", json!({"users": ["u-alice"]})),
        (
            "command-guard",
            json!({"approvers": ["u-lead"], "expiry_secs": 900}),
        ),
    ];
    crate::policy::built_specs(dir, &modules)
}

fn requests() -> Vec<PolicyRequest> {
    COMMANDS
        .iter()
        .enumerate()
        .map(|(i, argv)| {
            serde_json::from_value(json!({
                "request_id": format!("bench-command-{i}"),
                "user": {"id": "u-alice", "username": "alice", "roles": ["system_user"]},
                "channel": {"id": "c-dev", "name": "dev", "team": {"id": "t-eng", "name": "eng"},
                            "kind": "private"},
                "action": {"command": {"argv": argv, "cwd": "/srv/api",
                           "reason": "to see what the tests cover"}},
                "prompt": "fix the flaky login test",
                "project": {"name": "api", "repo_path": "/srv/api"},
                "requested_sandbox": "workspace-write",
                "time_unix_ms": 1_780_000_000_000i64,
            }))
            .expect("command requests match PolicyRequest")
        })
        .collect()
}

pub fn run(common: &Common, policy_dir: &Path) -> anyhow::Result<()> {
    let (rounds, per_round) = if common.quick { (1, 300) } else { (7, 3000) };
    let specs = chain_specs(policy_dir)?;
    let requests = requests();
    let engine = PolicyEngine::new(EngineOptions::default())?;
    let chain = engine.load_chain(&specs)?;
    // Only the allow path is timed: every request must be allowed, by command-guard's rule.
    for r in &requests {
        let outcome = chain.evaluate(r);
        let by_guard = outcome.rule_ids.iter().any(|id| id == "read-only-command");
        if !matches!(outcome.decision, FinalDecision::Allow(_)) || !by_guard {
            bail!(
                "{} is not allowed by command-guard's read-only-command rule: {:?} {:?}",
                r.request_id,
                outcome.decision,
                outcome.rule_ids
            );
        }
    }
    let timed = |count: usize| -> Vec<f64> {
        requests
            .iter()
            .cycle()
            .take(count)
            .map(|r| {
                let start = std::time::Instant::now();
                chain.evaluate(r);
                start.elapsed().as_secs_f64() * 1e6
            })
            .collect()
    };
    timed(500); // warm-up
    let (mut p50, mut p99) = (vec![], vec![]);
    for round in 0..rounds {
        eprintln!("commands: round {}/{rounds}", round + 1);
        let samples = timed(per_round);
        p50.push(quantile(&samples, 0.50));
        p99.push(quantile(&samples, 0.99));
    }
    Section {
        id: "commands".into(),
        title: "Policy decision per command approval".into(),
        method: format!(
            "Under `codex app-server` the host asks the policy chain about every command Codex \
             asks to run (action `command`: argv, cwd, Codex's reason, sandbox escape and \
             network) before it answers Codex. Timed here: that decision on the allow path, by \
             the chain a deployment uses for it — the bundled `allowlist`, then the example \
             `command-guard` — on the engine the host embeds (wasmtime {}, a fresh instance per \
             module per evaluation), one thread, back to back. {} read-only commands inside the \
             repository cycled (`ls`, `rg`, `git status` through `bash -lc`, `sed -n`, `cat`, \
             `grep`), each checked before timing to be allowed by command-guard's \
             `read-only-command` rule. {rounds} rounds of {per_round} decisions after 500 \
             warm-up decisions.",
            crate::report::locked_version("wasmtime"),
            requests.len(),
        ),
        figures: vec![
            Figure::new("allow path: p50", "µs", p50).target("<", 1000.0),
            Figure::new("allow path: p99", "µs", p99),
        ],
        notes: vec![
            "Not included: the host's audit record of the decision (one SQLite insert, the same \
             as for every prompt) and handing the evaluation to a blocking thread; the approval \
             post and its buttons exist only on the require-approval path."
                .into(),
        ],
    }
    .write(&common.results)
    .context("writing the commands section")
}
