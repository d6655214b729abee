//! Chain semantics with real modules, monitor mode, and hot reload (good swap, bad swap, file
//! watcher).

mod common;

use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use codex_policy::{
    content_hash, FailureKind, FinalDecision, Limits, LoadError, ModuleOutcome, ModuleSpec,
    PolicyService, SandboxMode, NO_POLICY_REASON,
};
use common::*;

const ALICE: &str = r#"{"users": ["u-alice"]}"#;
const RISKY: &str = r#"{"patterns": ["(?i)deploy"], "approvers": ["bob"]}"#;

#[test]
fn no_policy_configured_denies_with_an_admin_hint() {
    let report = engine()
        .load_chain(&[])
        .unwrap()
        .evaluate(&request("alice", "dev"));
    assert_eq!(
        report.decision,
        FinalDecision::Deny {
            reason: NO_POLICY_REASON.into(),
            module: None
        }
    );
    assert!(NO_POLICY_REASON.starts_with("No policy is configured: "));
}

#[test]
fn three_modules_combine_and_report_everything() {
    let chain = engine()
        .load_chain(&[
            spec("allowlist", ALICE),
            spec("readonly-public", "{}"),
            spec("approval-for-risky", RISKY),
        ])
        .unwrap();
    let mut public = request("alice", "town-square");
    public.channel.kind = codex_policy::ChannelKind::Public;
    let report = chain.evaluate(&public);
    let FinalDecision::Allow(limits) = &report.decision else {
        panic!("{report:?}")
    };
    assert_eq!(limits.sandbox, Some(SandboxMode::ReadOnly));
    assert_eq!(
        limits.effective_sandbox(SandboxMode::WorkspaceWrite),
        SandboxMode::ReadOnly
    );
    assert_eq!(report.rule_ids, ["allowlisted", "public-read-only"]);
    assert_eq!(report.modules.len(), 3);
    let hash = content_hash(&std::fs::read(policy("allowlist")).unwrap());
    assert_eq!(report.modules[0].hash, hash);
    assert!(hash.starts_with("sha256:") && hash.len() == 71);
    assert!(report
        .modules
        .iter()
        .all(|m| m.elapsed_us <= report.elapsed_us));
    assert_eq!(report.request_id, public.request_id);

    public.prompt = "deploy it".into();
    let report = chain.evaluate(&public);
    let FinalDecision::RequireApproval {
        approval: a,
        limits,
    } = &report.decision
    else {
        panic!("{report:?}")
    };
    assert_eq!(a.approvers, ["bob"]);
    assert_eq!(report.rule_ids, ["risky-prompt"]);
    // Approving lifts the wait, not readonly-public's limit: the run stays read-only.
    assert_eq!(limits.sandbox, Some(SandboxMode::ReadOnly));

    let report = chain.evaluate(&request("mallory", "dev"));
    assert!(
        matches!(&report.decision, FinalDecision::Deny { module: Some(m), .. } if m == "allowlist")
    );
    assert_eq!(report.rule_ids, ["user-not-listed"]);
    // The report serializes for the host's audit store.
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["decision"]["decision"], "deny");
    assert_eq!(json["modules"][0]["outcome"]["verdict"]["decision"], "deny");
}

#[test]
fn an_approval_keeps_the_limits_of_every_allowing_module() {
    // approval-for-risky first: the limit of a module after it counts as much as one before.
    let chain = engine()
        .load_chain(&[
            spec("approval-for-risky", RISKY),
            spec("allowlist", ALICE),
            spec("readonly-public", "{}"),
        ])
        .unwrap();
    let mut req = request("alice", "town-square");
    req.channel.kind = codex_policy::ChannelKind::Public;
    req.prompt = "deploy to prod".into();
    let report = chain.evaluate(&req);
    let FinalDecision::RequireApproval { limits, .. } = &report.decision else {
        panic!("{report:?}")
    };
    assert_eq!(
        limits,
        &Limits {
            sandbox: Some(SandboxMode::ReadOnly),
            ..Limits::default()
        }
    );
    // In a private channel readonly-public abstains: nothing to carry.
    req.channel.kind = codex_policy::ChannelKind::Private;
    let report = chain.evaluate(&req);
    let FinalDecision::RequireApproval { limits, .. } = &report.decision else {
        panic!("{report:?}")
    };
    assert_eq!(limits, &Limits::default());

    // In monitor mode readonly-public's limit is reported, never enforced.
    let chain = engine()
        .load_chain(&[
            spec("allowlist", ALICE),
            spec("readonly-public", "{}").monitor(true),
            spec("approval-for-risky", RISKY),
        ])
        .unwrap();
    req.channel.kind = codex_policy::ChannelKind::Public;
    let report = chain.evaluate(&req);
    let FinalDecision::RequireApproval { limits, .. } = &report.decision else {
        panic!("{report:?}")
    };
    assert_eq!(limits.sandbox, None);
    let Some(FinalDecision::RequireApproval { limits, .. }) = &report.monitor_decision else {
        panic!("{report:?}")
    };
    assert_eq!(limits.sandbox, Some(SandboxMode::ReadOnly));
}

#[test]
fn monitor_modules_are_reported_never_enforced() {
    let chain = engine()
        .load_chain(&[
            spec("allowlist", ALICE),
            spec("approval-for-risky", RISKY).monitor(true),
            hostile("crash", "unreachable").monitor(true),
        ])
        .unwrap();
    let mut req = request("alice", "dev");
    req.prompt = "deploy to prod".into();
    let report = chain.evaluate(&req);
    assert!(report.decision.is_allow(), "{:?}", report.decision);
    assert_eq!(report.rule_ids, ["allowlisted"]);
    // What would have happened, for the admin trying the rule on real traffic.
    assert!(matches!(
        &report.monitor_decision,
        Some(FinalDecision::RequireApproval { .. }) | Some(FinalDecision::Deny { .. })
    ));
    assert!(report.modules[1].monitor);
    assert!(
        matches!(&report.modules[1].outcome, ModuleOutcome::Verdict(v) if v.decision.kind() == "require-approval")
    );
    assert!(
        matches!(&report.modules[2].outcome, ModuleOutcome::Failed(f) if f.kind == FailureKind::Trap)
    );
}

#[test]
fn reload_swaps_good_chains_and_keeps_the_old_one_on_failure() {
    let service = PolicyService::new(engine(), vec![spec("allowlist", ALICE)]);
    assert_eq!(service.generation(), 1);
    assert!(service
        .evaluate(&request("alice", "dev"))
        .decision
        .is_allow());
    assert!(!service.evaluate(&request("bob", "dev")).decision.is_allow());

    let report = service
        .reload(vec![spec("allowlist", r#"{"users": ["u-bob"]}"#)])
        .unwrap();
    assert_eq!(report.generation, 2);
    assert!(service.evaluate(&request("bob", "dev")).decision.is_allow());

    // A config the module rejects: the error names it, and bob keeps working.
    let err = service
        .reload(vec![spec("allowlist", r#"{"usres": ["carol"]}"#)])
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("policy module `allowlist`: rejected its config:"),
        "{err}"
    );
    assert_eq!(
        service.last_error().map(|e| e.to_string()),
        Some(err.to_string())
    );
    assert!(service.evaluate(&request("bob", "dev")).decision.is_allow());
    assert_eq!(service.generation(), 2);

    // A missing file: same.
    let missing = ModuleSpec::from_path("gone", "/nonexistent/gone.wasm", "{}");
    assert!(matches!(
        service.reload(vec![missing]),
        Err(LoadError::Read { .. })
    ));
    assert!(service.evaluate(&request("bob", "dev")).decision.is_allow());

    // Fixed again: the error clears.
    service.reload(vec![spec("allowlist", ALICE)]).unwrap();
    assert!(service.last_error().is_none());
    assert_eq!(service.generation(), 3);
}

#[test]
fn a_chain_that_never_loaded_denies_naming_the_module_until_fixed() {
    let service = PolicyService::new(engine(), vec![spec("allowlist", r#"{"users": 5}"#)]);
    let report = service.evaluate(&request("alice", "dev"));
    let FinalDecision::Deny { reason, module } = &report.decision else {
        panic!()
    };
    assert_eq!(module.as_deref(), Some("allowlist"));
    assert!(reason.contains("failed to load"), "{reason}");
    assert!(service.last_error().is_some());
    service.reload(vec![spec("allowlist", ALICE)]).unwrap();
    assert!(service
        .evaluate(&request("alice", "dev"))
        .decision
        .is_allow());
}

#[test]
fn evaluations_continue_while_reloading() {
    let service = Arc::new(PolicyService::new(engine(), vec![spec("allowlist", ALICE)]));
    let evaluator = {
        let service = service.clone();
        std::thread::spawn(move || {
            for _ in 0..300 {
                // Either configuration admits alice; a torn chain would not.
                assert!(service
                    .evaluate(&request("alice", "dev"))
                    .decision
                    .is_allow());
            }
        })
    };
    for i in 0..10 {
        let config = if i % 2 == 0 {
            r#"{"users": ["u-alice", "u-bob"]}"#
        } else {
            ALICE
        };
        service.reload(vec![spec("allowlist", config)]).unwrap();
    }
    evaluator.join().unwrap();
}

#[test]
fn the_watcher_reloads_when_a_module_file_changes() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("policy.wasm");
    std::fs::copy(policy("allowlist"), &file).unwrap();
    let service = Arc::new(PolicyService::new(
        engine(),
        vec![ModuleSpec::from_path("site", &file, ALICE)],
    ));
    let (tx, rx) = mpsc::channel();
    let _watch = service.watch(Duration::from_millis(20), move |result| {
        let _ = tx.send(
            result
                .as_ref()
                .map(|r| r.generation)
                .map_err(|e| e.to_string()),
        );
    });
    assert!(service
        .evaluate(&request("alice", "dev"))
        .decision
        .is_allow());

    // Good swap: the file now holds a module that allows everyone and ignores its config.
    let allow_all = match &hostile("x", ALLOW).source {
        codex_policy::ModuleSource::Bytes(b) => b.to_vec(),
        _ => unreachable!(),
    };
    replace(&file, &allow_all);
    let generation = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("no reload after a change");
    assert_eq!(generation, Ok(2));
    assert!(service
        .evaluate(&request("mallory", "dev"))
        .decision
        .is_allow());

    // Bad swap: garbage in the file; the error is reported and the last good chain stays.
    replace(&file, b"garbage");
    let result = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("no reload after a change");
    let err = result.unwrap_err();
    assert!(
        err.contains("policy module `site`: is not a WebAssembly file"),
        "{err}"
    );
    assert!(service
        .evaluate(&request("mallory", "dev"))
        .decision
        .is_allow());
    assert_eq!(service.generation(), 2);
}

/// Replaces a file atomically, as an admin deploying a module should (write, then rename).
fn replace(file: &std::path::Path, bytes: &[u8]) {
    let tmp = file.with_extension("tmp");
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, file).unwrap();
}
