//! The example policies in policies/, through the same code paths as `codex-policy test` and
//! `codex-policy check`. Builds them first (policies/build.sh, i.e. `make policies`).

mod common;

use std::path::Path;

use codex_policy::cases;
use common::*;

fn run_cases(relative: &str) {
    policies();
    let path = repo_root().join(relative);
    let mut out = Vec::new();
    let summary =
        cases::run_file(&engine(), &path, &mut out).unwrap_or_else(|e| panic!("{relative}: {e:#}"));
    let out = String::from_utf8(out).unwrap();
    println!("{out}");
    assert!(summary.passed > 0, "{relative} has no cases");
    assert_eq!(summary.failed, 0, "{relative}:\n{out}");
}

#[test]
fn allowlist_cases() {
    run_cases("policies/allowlist/cases.toml");
}

#[test]
fn empty_allowlist_cases() {
    run_cases("policies/allowlist/cases-empty.toml");
    run_cases("policies/allowlist/cases-users-empty.toml");
}

#[test]
fn everyone_allowlist_cases() {
    run_cases("policies/allowlist/cases-everyone.toml");
}

#[test]
fn readonly_public_cases() {
    run_cases("policies/readonly-public/cases.toml");
    run_cases("policies/readonly-public/cases-alone.toml");
}

#[test]
fn approval_for_risky_cases() {
    run_cases("policies/approval-for-risky/cases.toml");
    run_cases("policies/approval-for-risky/cases-commands.toml");
}

#[test]
fn command_guard_cases() {
    run_cases("policies/command-guard/cases.toml");
    run_cases("policies/command-guard/cases-chain.toml");
}

#[test]
fn business_hours_cases() {
    run_cases("policies/business-hours/cases.toml");
}

/// A component written in Python (componentize-py) loads and decides like the Rust ones.
#[test]
fn python_policy_cases() {
    run_cases("policies/python-no-full-access/cases.toml");
}

#[test]
fn a_failing_case_exits_non_zero_with_a_readable_diff() {
    policies();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cases.toml");
    std::fs::write(
        &file,
        format!(
            r#"
[[module]]
name = "allowlist"
path = "{}"
config = '{{"users": ["alice"]}}'

[[case]]
name = "mallory gets in"
request = {{ user = {{ username = "mallory" }} }}
expect = {{ decision = "allow" }}
"#,
            policy("allowlist").display()
        ),
    )
    .unwrap();
    let mut out = Vec::new();
    let summary = cases::run_file(&engine(), &file, &mut out).unwrap();
    let out = String::from_utf8(out).unwrap();
    assert_eq!(summary.failed, 1);
    assert!(out.contains("FAIL mallory gets in"), "{out}");
    assert!(out.contains("decision: expected allow, got deny by allowlist (\"@mallory is not on the Codex allowlist."), "{out}");
    assert!(
        out.contains("allowlist: deny (rule user-not-listed)"),
        "{out}"
    );

    let output = std::process::Command::new(env!("CARGO_BIN_EXE_codex-policy"))
        .arg("test")
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stdout).contains("FAIL mallory gets in"));
}

#[test]
fn check_accepts_each_example_and_rejects_bad_configs() {
    let engine = engine();
    let dir = tempfile::tempdir().unwrap();
    let configs = [
        ("allowlist", r#"{"users": ["alice"]}"#, true),
        ("allowlist", r#"{"user": ["alice"]}"#, false),
        ("allowlist", r#"{"users": ["*"], "channels": ["*"]}"#, false),
        ("readonly-public", "{}", true),
        (
            "readonly-public",
            r#"{"sandbox": "danger-full-access"}"#,
            false,
        ),
        (
            "approval-for-risky",
            r#"{"patterns": ["deploy"], "approvers": ["bob"]}"#,
            true,
        ),
        (
            "approval-for-risky",
            r#"{"patterns": ["("], "approvers": ["bob"]}"#,
            false,
        ),
        (
            "approval-for-risky",
            r#"{"patterns": ["deploy"], "approvers": []}"#,
            false,
        ),
        (
            "business-hours",
            r#"{"utc_offset": "-05:00", "dst": "us"}"#,
            true,
        ),
        ("business-hours", r#"{"utc_offset": "CET"}"#, false),
        ("command-guard", r#"{"approvers": ["u-lead"]}"#, true),
        ("command-guard", r#"{"approvers": []}"#, false),
        (
            "command-guard",
            r#"{"approvers": ["u-lead"], "unlisted": "ask"}"#,
            false,
        ),
        ("python-no-full-access", r#"{"max_timeout_secs": 60}"#, true),
        (
            "python-no-full-access",
            r#"{"max_timeout_secs": -1}"#,
            false,
        ),
    ];
    for (i, (name, config, ok)) in configs.iter().enumerate() {
        let config_file = dir.path().join(format!("{i}.json"));
        std::fs::write(&config_file, config).unwrap();
        let mut out = Vec::new();
        let code =
            codex_policy::cli::check(&engine, &policy(name), Some(&config_file), &mut out).unwrap();
        let out = String::from_utf8(out).unwrap();
        assert_eq!(
            code == std::process::ExitCode::SUCCESS,
            *ok,
            "{name} {config}:\n{out}"
        );
        if !ok {
            assert!(
                out.contains(&format!("policy module `{name}`: rejected its config:")),
                "{out}"
            );
        }
    }
}

#[test]
fn check_names_what_is_wrong_with_a_file() {
    let mut out = Vec::new();
    let code =
        codex_policy::cli::check(&engine(), Path::new("/nonexistent/p.wasm"), None, &mut out)
            .unwrap();
    assert_ne!(code, std::process::ExitCode::SUCCESS);
    let out = String::from_utf8(out).unwrap();
    assert!(
        out.contains("policy module `p`: cannot read /nonexistent/p.wasm"),
        "{out}"
    );
}
