//! World versions side by side: modules built for 0.1.0 (business-hours, the WAT fixtures) and
//! for 0.2.0 (the SDK examples) in one chain; context reaches 0.2.0 modules; `command` and
//! `file-change` are asked of 0.2.0 modules only; unknown or inconsistent versions are refused
//! at load, naming the module.

mod common;

use codex_policy::{
    content_hash, Action, Command, Decision, FailureKind, FileChange, FileEdit, FinalDecision,
    LoadError, ModuleOutcome, ModuleReport, ModuleSpec, PolicyRequest, WORLD_VERSION,
};
use common::*;

const ALICE: &str = r#"{"users": ["u-alice"]}"#;
/// Business hours 09:00-18:00 at UTC+01:00: `request()`'s time (Mon 08:00 UTC) is inside.
const HOURS_CET: &str = r#"{"utc_offset": "+01:00"}"#;
/// The same hours in UTC: `request()`'s time is outside.
const HOURS_UTC: &str = r#"{"utc_offset": "+00:00"}"#;
const RISKY: &str = r#"{"patterns": ["(?i)\\bdeploy\\b", "(?i)\\bprod\\b", "^git push", "^\\.github/"],
    "approvers": ["bob"], "actions": ["new", "continue", "command", "file-change"]}"#;

fn outcome<'a>(report: &'a codex_policy::ChainReport, name: &str) -> &'a ModuleReport {
    report.modules.iter().find(|m| m.name == name).unwrap()
}

fn abstained_unasked(m: &ModuleReport) -> bool {
    matches!(&m.outcome, ModuleOutcome::Verdict(v) if v.decision == Decision::Abstain && v.rule_id.is_none())
        && m.elapsed_us == 0
}

fn command(argv: &[&str]) -> Action {
    Action::Command(Command {
        argv: argv.iter().map(|s| s.to_string()).collect(),
        cwd: "/srv/api".into(),
        reason: Some("to publish the fix".into()),
        escalated: true,
        network: true,
    })
}

fn file_change(paths: &[&str]) -> Action {
    Action::FileChange(FileChange {
        files: paths
            .iter()
            .map(|p| FileEdit {
                path: p.to_string(),
                added_lines: 3,
                removed_lines: 1,
            })
            .collect(),
        reason: None,
    })
}

#[test]
fn the_0_1_0_wit_is_frozen() {
    // Modules built for 0.1.0 exist; its text must never change. A change is a new version.
    let text = std::fs::read(repo_root().join("wit/0.1.0/policy.wit")).unwrap();
    assert_eq!(
        content_hash(&text),
        "sha256:e293750875dbd740ff94fbb5dde2ee10002a605a7dbf7303a55500a43cc51260"
    );
    assert!(wit_current().contains(&format!("package mattermost-codex:policy@{WORLD_VERSION};")));
}

#[test]
fn modules_of_both_versions_load_and_decide_in_one_chain() {
    let chain = engine()
        .load_chain(&[
            spec("allowlist", ALICE),
            spec("business-hours", HOURS_UTC),
            spec("approval-for-risky", RISKY),
        ])
        .unwrap();
    let worlds: Vec<String> = chain.modules().into_iter().map(|m| m.world).collect();
    assert_eq!(worlds, ["0.2.0", "0.1.0", "0.2.0"]);

    // The 0.1.0 module decides: outside business hours, denied.
    let report = chain.evaluate(&request("alice", "dev"));
    assert!(
        matches!(&report.decision, FinalDecision::Deny { module: Some(m), .. } if m == "business-hours"),
        "{report:?}"
    );
    assert_eq!(report.rule_ids, ["outside-business-hours"]);
}

#[test]
fn context_reaches_0_2_0_modules() {
    let chain = engine()
        .load_chain(&[
            spec("allowlist", ALICE),
            spec("business-hours", HOURS_CET),
            spec("approval-for-risky", RISKY),
        ])
        .unwrap();
    let mut req = request("alice", "dev");
    req.prompt = "do what I said above".into();
    assert!(chain.evaluate(&req).decision.is_allow());

    req.context = Some("@alice: we should deploy to prod tonight\n".into());
    let report = chain.evaluate(&req);
    let FinalDecision::RequireApproval { approval: a, .. } = &report.decision else {
        panic!("{report:?}")
    };
    assert_eq!(a.approvers, ["bob"]);
    assert!(
        a.reason
            .starts_with("The thread Codex receives with the prompt matches"),
        "{}",
        a.reason
    );
    assert_eq!(report.rule_ids, ["risky-prompt"]);
}

#[test]
fn command_and_file_change_are_asked_of_0_2_0_modules_only() {
    // `crash` (0.1.0) traps whenever it is asked anything: asked, it would deny the request.
    let chain = engine()
        .load_chain(&[
            hostile("crash", "unreachable"),
            spec("approval-for-risky", RISKY),
        ])
        .unwrap();
    let ask = |action: Action| {
        let req = PolicyRequest {
            action,
            ..request("alice", "dev")
        };
        chain.evaluate(&req)
    };

    let report = ask(command(&["git", "push", "origin", "main"]));
    assert!(abstained_unasked(outcome(&report, "crash")), "{report:?}");
    let FinalDecision::RequireApproval { approval: a, .. } = &report.decision else {
        panic!("{report:?}")
    };
    assert_eq!(
        a.reason,
        "The command matches the risky pattern `^git push`."
    );

    let report = ask(file_change(&["src/lib.rs", ".github/workflows/ci.yml"]));
    assert!(abstained_unasked(outcome(&report, "crash")), "{report:?}");
    assert_eq!(report.decision.kind(), "require-approval", "{report:?}");

    // Nobody decides a harmless command: every enforced module abstained, so it is denied.
    let report = ask(command(&["cargo", "test"]));
    assert_eq!(report.decision.kind(), "deny");
    assert!(abstained_unasked(outcome(&report, "crash")));

    // For the actions 0.1.0 has, the 0.1.0 module is asked (and here traps).
    let report = ask(Action::New);
    assert!(
        matches!(&outcome(&report, "crash").outcome, ModuleOutcome::Failed(f) if f.kind == FailureKind::Trap),
        "{report:?}"
    );
}

#[test]
fn a_module_claiming_0_2_0_with_0_1_0_types_is_refused_at_load() {
    let wit = wit_v0_1().replace("@0.1.0", "@0.2.0");
    let spec = ModuleSpec::from_bytes("liar", dummy_component(&wit, "policy-module"), "{}");
    let err = engine().load_chain(&[spec]).unwrap_err();
    // The bindings check the function types when the module is first instantiated, which is
    // for `validate-config`, still at load.
    assert!(
        matches!(&err, LoadError::ConfigCheckFailed { name, failure }
            if name == "liar" && failure.message.contains("type mismatch")),
        "{err}"
    );
}
