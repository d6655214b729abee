//! Modules that misbehave on purpose: each must end in a denial naming it (or a refusal at load),
//! within its limits, without disturbing the host or other evaluations.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use codex_policy::{ChainReport, FailureKind, FinalDecision, LoadError, ModuleOutcome, ModuleSpec};
use common::*;

fn failure(report: &ChainReport) -> (FailureKind, String) {
    match &report.modules[0].outcome {
        ModuleOutcome::Failed(f) => (f.kind, f.message.clone()),
        other => panic!("expected a failure, got {other:?}"),
    }
}

fn assert_denied_by(report: &ChainReport, module: &str) {
    match &report.decision {
        FinalDecision::Deny {
            module: Some(m),
            reason,
        } => {
            assert_eq!(m, module);
            assert!(reason.contains(&format!("`{module}` failed")), "{reason}");
        }
        other => panic!("expected a deny naming {module}, got {other:?}"),
    }
}

#[test]
fn the_wat_harness_itself_allows() {
    let chain = engine().load_chain(&[hostile("plain", ALLOW)]).unwrap();
    let report = chain.evaluate(&request("alice", "dev"));
    assert_eq!(report.decision, FinalDecision::Allow(Default::default()));
}

#[test]
fn infinite_loop_is_stopped_at_the_deadline() {
    let engine = engine_with(|o| o.deadline = Duration::from_millis(10));
    let chain = engine
        .load_chain(&[hostile("spin", "(loop $l (br $l)) (i32.const 1024)")])
        .unwrap();
    let started = Instant::now();
    let report = chain.evaluate(&request("alice", "dev"));
    let elapsed = started.elapsed();
    assert_denied_by(&report, "spin");
    assert_eq!(failure(&report).0, FailureKind::Deadline);
    // The deadline is 10 ms; a generous bound that only fails if the deadline is not enforced.
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
}

#[test]
fn fuel_stops_a_loop_when_configured() {
    let engine = engine_with(|o| {
        o.fuel = Some(100_000);
        o.deadline = generous_deadline();
    });
    let chain = engine
        .load_chain(&[hostile("spin", "(loop $l (br $l)) (i32.const 1024)")])
        .unwrap();
    let report = chain.evaluate(&request("alice", "dev"));
    assert_denied_by(&report, "spin");
    assert_eq!(failure(&report).0, FailureKind::Fuel);
}

#[test]
fn unbounded_memory_growth_is_stopped_at_the_cap() {
    let engine = engine_with(|o| o.deadline = generous_deadline());
    let grow = "(loop $l (drop (memory.grow (i32.const 16))) (br $l)) (i32.const 1024)";
    let chain = engine.load_chain(&[hostile("bomb", grow)]).unwrap();
    let report = chain.evaluate(&request("alice", "dev"));
    assert_denied_by(&report, "bomb");
    let (kind, message) = failure(&report);
    assert_eq!(kind, FailureKind::MemoryLimit, "{message}");
    assert!(message.contains("16 MiB"), "{message}");
}

#[test]
fn a_trap_is_a_deny() {
    let chain = engine()
        .load_chain(&[hostile("crash", "unreachable")])
        .unwrap();
    let report = chain.evaluate(&request("alice", "dev"));
    assert_denied_by(&report, "crash");
    let (kind, message) = failure(&report);
    assert_eq!(kind, FailureKind::Trap);
    assert!(message.contains("unreachable"), "{message}");
}

#[test]
fn enormous_reasons_are_cut() {
    let chain = engine()
        .load_chain(&[hostile("verbose", "(i32.const 2048)")])
        .unwrap();
    let report = chain.evaluate(&request("alice", "dev"));
    let FinalDecision::Deny { reason, module } = &report.decision else {
        panic!("{report:?}")
    };
    assert_eq!(module.as_deref(), Some("verbose"));
    assert!(reason.len() <= 2000, "reason of {} bytes", reason.len());
}

#[test]
fn log_floods_are_capped() {
    let engine = engine_with(|o| o.deadline = generous_deadline());
    let flood = r#"
        (call $log (i32.const 2) (i32.const 65536) (i32.const 1000000))
        (loop $l
          (call $log (i32.const 2) (i32.const 0x5000) (i32.const 16))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $l (i32.lt_u (local.get $i) (i32.const 100000))))
        (i32.const 1024)"#;
    let chain = engine.load_chain(&[hostile("chatty", flood)]).unwrap();
    let report = chain.evaluate(&request("alice", "dev"));
    assert!(report.decision.is_allow(), "{:?}", report.decision);
    let m = &report.modules[0];
    let options = engine.options();
    assert!(
        m.logs.len() <= options.max_log_lines as usize,
        "{} lines",
        m.logs.len()
    );
    let bytes: usize = m.logs.iter().map(|l| l.message.len()).sum();
    assert!(bytes <= options.max_log_bytes, "{bytes} bytes logged");
    assert!(
        m.logs_dropped >= 100_000 - options.max_log_lines,
        "dropped {}",
        m.logs_dropped
    );
}

#[test]
fn an_approval_nobody_can_give_is_malformed() {
    let chain = engine()
        .load_chain(&[hostile("odd", "(i32.const 3072)")])
        .unwrap();
    let report = chain.evaluate(&request("alice", "dev"));
    assert_denied_by(&report, "odd");
    let (kind, message) = failure(&report);
    assert_eq!(kind, FailureKind::MalformedResult);
    assert!(message.contains("0 approvers"), "{message}");
}

#[test]
fn a_rejected_config_stops_the_load() {
    let wat = hostile_wat(ALLOW, "(i32.const 4096)");
    let bytes = component_from_wat(&wit_v0_1(), "policy-module", &wat);
    let err = engine()
        .load_chain(&[ModuleSpec::from_bytes("picky", bytes, "{}")])
        .unwrap_err();
    assert!(
        matches!(&err, LoadError::InvalidConfig { name, message } if name == "picky" && message == "bad config value"),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "policy module `picky`: rejected its config: bad config value"
    );
}

#[test]
fn a_trap_in_validate_config_stops_the_load() {
    let wat = hostile_wat(ALLOW, "unreachable");
    let bytes = component_from_wat(&wit_v0_1(), "policy-module", &wat);
    let err = engine()
        .load_chain(&[ModuleSpec::from_bytes("fragile", bytes, "{}")])
        .unwrap_err();
    assert!(
        matches!(&err, LoadError::ConfigCheckFailed { failure, .. } if failure.kind == FailureKind::Trap),
        "{err}"
    );
}

#[test]
fn config_must_be_json() {
    let err = engine()
        .load_chain(&[hostile("plain", ALLOW).with_config("{users: [")])
        .unwrap_err();
    assert!(matches!(err, LoadError::ConfigNotJson { .. }), "{err}");
}

#[test]
fn a_module_of_another_world_is_refused_at_load() {
    let wit =
        "package other:thing@1.0.0;\ninterface api { run: func(); }\nworld w { export api; }\n";
    let spec = ModuleSpec::from_bytes("stranger", dummy_component(wit, "w"), "{}");
    let err = engine().load_chain(&[spec]).unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, LoadError::WrongWorld { .. }), "{message}");
    assert!(
        message.contains(
            "exports other:thing/api@1.0.0, but not `mattermost-codex:policy/policy@0.2.0`"
        ),
        "{message}"
    );
}

#[test]
fn a_module_of_an_unknown_world_version_is_refused_at_load() {
    let wit = wit_current().replace("@0.2.0", "@9.0.0");
    let spec = ModuleSpec::from_bytes("future", dummy_component(&wit, "policy-module"), "{}");
    let err = engine().load_chain(&[spec]).unwrap_err();
    assert!(
        matches!(&err, LoadError::UnsupportedVersion { name, found } if name == "future" && found == "9.0.0"),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "policy module `future`: was built for policy world version 9.0.0, but this host \
         supports only 0.2.0, 0.1.0. Rebuild it against this host's wit/ directory."
    );
}

#[test]
fn a_core_module_is_refused_with_a_hint() {
    let spec = ModuleSpec::from_bytes("core", wat::parse_str("(module)").unwrap(), "{}");
    let err = engine().load_chain(&[spec]).unwrap_err();
    assert!(
        err.to_string()
            .contains("is a core WebAssembly module, not a component"),
        "{err}"
    );
    let spec = ModuleSpec::from_bytes("junk", b"not wasm at all".to_vec(), "{}");
    assert!(matches!(
        engine().load_chain(&[spec]),
        Err(LoadError::NotAComponent { .. })
    ));
}

#[test]
fn a_spinning_module_does_not_delay_other_evaluations() {
    // One engine, two chains: a module that spins until its (long) deadline, and a normal one.
    let engine = engine_with(|o| o.deadline = Duration::from_secs(3));
    let spinner = engine
        .load_chain(&[hostile("spin", "(loop $l (br $l)) (i32.const 1024)")])
        .unwrap();
    let normal = engine.load_chain(&[hostile("plain", ALLOW)]).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let spinning = {
        let done = done.clone();
        std::thread::spawn(move || {
            let report = spinner.evaluate(&request("alice", "dev"));
            done.store(true, Ordering::SeqCst);
            report
        })
    };
    // While the spinner runs, the normal chain keeps deciding.
    let mut decided = 0;
    while decided < 200 {
        let report = normal.evaluate(&request("alice", "dev"));
        assert!(report.decision.is_allow());
        decided += 1;
    }
    assert!(
        !done.load(Ordering::SeqCst),
        "the spinner finished before 200 normal decisions: the deadline did not hold it long \
         enough to prove anything"
    );
    let report = spinning.join().unwrap();
    assert_eq!(failure(&report).0, FailureKind::Deadline);
}

#[test]
fn verdicts_do_not_leak_between_evaluations() {
    // Every evaluation gets a fresh instance: a module's memory writes are not seen next time.
    let counter = r#"
        (i32.store (i32.const 9000) (i32.add (i32.load (i32.const 9000)) (i32.const 1)))
        (if (i32.gt_u (i32.load (i32.const 9000)) (i32.const 1)) (then unreachable))
        (i32.const 1024)"#;
    let chain = engine().load_chain(&[hostile("counter", counter)]).unwrap();
    for _ in 0..3 {
        assert!(chain.evaluate(&request("alice", "dev")).decision.is_allow());
    }
}

#[test]
fn a_module_whose_initial_memory_exceeds_the_cap_is_refused_at_load() {
    let wat = hostile_wat(ALLOW, OK_CONFIG).replace(
        r#"(memory (export "memory") 24)"#,
        r#"(memory (export "memory") 300)"#,
    );
    let bytes = component_from_wat(&wit_v0_1(), "policy-module", &wat);
    let err = engine()
        .load_chain(&[ModuleSpec::from_bytes("huge", bytes, "{}")])
        .unwrap_err();
    // The pooling allocator refuses it when compiling; without pooling, the limiter refuses it
    // when validate-config first instantiates it. Either way the load names module and cause.
    let message = err.to_string();
    assert!(message.starts_with("policy module `huge`: "), "{message}");
    assert!(
        matches!(&err, LoadError::Compile { .. })
            && message.contains("exceeds the limit of 0x1000000 bytes")
            || matches!(&err, LoadError::ConfigCheckFailed { failure, .. } if failure.kind == FailureKind::MemoryLimit),
        "{message}"
    );
}

#[test]
fn with_prewarmed_instances_every_limit_still_holds() {
    let engine = engine_with(|o| {
        o.prewarm = 2;
        o.deadline = Duration::from_millis(10);
    });
    let chain = engine
        .load_chain(&[
            hostile("plain", ALLOW),
            hostile("spin", "(loop $l (br $l)) (i32.const 1024)"),
            hostile("crash", "unreachable"),
        ])
        .unwrap();
    let report = chain.evaluate(&request("alice", "dev"));
    assert_denied_by(&report, "spin");
    assert!(matches!(
        &report.modules[0].outcome,
        ModuleOutcome::Verdict(_)
    ));
    assert!(
        matches!(&report.modules[2].outcome, ModuleOutcome::Failed(f) if f.kind == FailureKind::Trap)
    );
}
