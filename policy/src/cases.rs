//! Test-case tables for `policy test` (like `opa test`): a file names the modules of a chain with
//! their configs, default request fields, and cases of requests with the decision expected.
//! TOML, or JSON when the file name ends in `.json`. See docs/policies.md for the format.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::Deserialize;
use serde_json::Value;

use crate::engine::PolicyEngine;
use crate::module::ModuleSpec;
use crate::types::{ChainReport, FinalDecision, ModuleOutcome, PolicyRequest, SandboxMode};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseFile {
    /// The chain, in order.
    #[serde(rename = "module")]
    pub modules: Vec<CaseModule>,
    /// Request fields every case starts from (merged field by field under `case.request`).
    #[serde(default)]
    pub defaults: Value,
    #[serde(rename = "case", default)]
    pub cases: Vec<Case>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseModule {
    pub name: String,
    /// Path of the component, relative to the case file.
    pub path: PathBuf,
    /// The config: a JSON string, or a table/object that is turned into JSON.
    #[serde(default)]
    pub config: Option<Value>,
    /// Path of a JSON config file, relative to the case file (instead of `config`).
    #[serde(default)]
    pub config_file: Option<PathBuf>,
    #[serde(default)]
    pub monitor: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub name: String,
    #[serde(default)]
    pub request: Value,
    pub expect: Expect,
}

/// What a case expects. Only the fields given are checked.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// `allow`, `deny` or `require-approval`.
    pub decision: String,
    /// A rule id that must be among the report's rule ids.
    pub rule: Option<String>,
    /// Text the deny or approval reason must contain.
    pub reason_contains: Option<String>,
    /// The module a deny must name.
    pub module: Option<String>,
    /// Limits of an allow, or of a require-approval once approved.
    pub sandbox: Option<SandboxMode>,
    pub timeout_secs: Option<u32>,
    pub model: Option<String>,
    /// Approval fields (approvers compared as a set).
    pub approvers: Option<Vec<String>>,
    pub min_approvals: Option<u32>,
    pub allow_self_approval: Option<bool>,
}

impl CaseFile {
    pub fn read(path: &Path) -> anyhow::Result<CaseFile> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the case file {}", path.display()))?;
        let file: CaseFile = if path.extension().is_some_and(|e| e == "json") {
            serde_json::from_str(&text)
                .with_context(|| format!("{} is not a valid case file", path.display()))?
        } else {
            toml::from_str(&text)
                .with_context(|| format!("{} is not a valid case file", path.display()))?
        };
        if file.modules.is_empty() {
            bail!("{}: name at least one [[module]]", path.display());
        }
        Ok(file)
    }

    /// The chain's specs, with paths resolved against `base` (the case file's directory).
    pub fn specs(&self, base: &Path) -> anyhow::Result<Vec<ModuleSpec>> {
        self.modules
            .iter()
            .map(|m| {
                let config = match (&m.config, &m.config_file) {
                    (Some(_), Some(_)) => {
                        bail!(
                            "module `{}`: give `config` or `config_file`, not both",
                            m.name
                        )
                    }
                    (Some(Value::String(s)), None) => s.clone(),
                    (Some(v), None) => v.to_string(),
                    (None, Some(file)) => {
                        let file = base.join(file);
                        std::fs::read_to_string(&file).with_context(|| {
                            format!("module `{}`: cannot read {}", m.name, file.display())
                        })?
                    }
                    (None, None) => "{}".to_owned(),
                };
                Ok(ModuleSpec::from_path(&m.name, base.join(&m.path), &config).monitor(m.monitor))
            })
            .collect()
    }

    /// The request of `case`: the defaults with the case's fields merged over them.
    pub fn request(&self, case: &Case, index: usize) -> anyhow::Result<PolicyRequest> {
        let mut merged = if self.defaults.is_null() {
            Value::Object(Default::default())
        } else {
            self.defaults.clone()
        };
        merge(&mut merged, &case.request);
        if let Value::Object(map) = &mut merged {
            map.entry("request_id")
                .or_insert_with(|| Value::String(format!("case-{}", index + 1)));
        }
        serde_json::from_value(merged)
            .with_context(|| format!("case `{}`: the request is not valid", case.name))
    }
}

fn merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                merge(b.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (b, o) if !o.is_null() => *b = o.clone(),
        _ => {}
    }
}

/// Compares a report with what a case expects; returns one line per mismatch.
pub fn mismatches(expect: &Expect, report: &ChainReport) -> Vec<String> {
    let mut out = Vec::new();
    let d = &report.decision;
    if expect.decision != d.kind() {
        out.push(format!(
            "decision: expected {}, got {}",
            expect.decision,
            describe(d)
        ));
        return out;
    }
    if let Some(rule) = &expect.rule {
        if !report.rule_ids.contains(rule) {
            out.push(format!(
                "rule: expected {rule:?} among {:?}",
                report.rule_ids
            ));
        }
    }
    let reason = match d {
        FinalDecision::Deny { reason, .. } => Some(reason.as_str()),
        FinalDecision::RequireApproval { approval, .. } => Some(approval.reason.as_str()),
        FinalDecision::Allow(_) => None,
    };
    if let Some(want) = &expect.reason_contains {
        if !reason.is_some_and(|r| r.contains(want.as_str())) {
            out.push(format!(
                "reason: expected to contain {want:?}, got {:?}",
                reason.unwrap_or("")
            ));
        }
    }
    if let Some(limits) = d.limits() {
        if expect.sandbox.is_some() && expect.sandbox != limits.sandbox {
            out.push(format!(
                "sandbox: expected {:?}, got {:?}",
                expect.sandbox, limits.sandbox
            ));
        }
        if expect.timeout_secs.is_some() && expect.timeout_secs != limits.timeout_secs {
            out.push(format!(
                "timeout_secs: expected {:?}, got {:?}",
                expect.timeout_secs, limits.timeout_secs
            ));
        }
        if expect.model.is_some() && expect.model != limits.model {
            out.push(format!(
                "model: expected {:?}, got {:?}",
                expect.model, limits.model
            ));
        }
    }
    match d {
        FinalDecision::Deny { module, .. } => {
            if let Some(want) = &expect.module {
                if module.as_deref() != Some(want.as_str()) {
                    out.push(format!("module: expected {want:?}, got {module:?}"));
                }
            }
        }
        FinalDecision::Allow(_) => {}
        FinalDecision::RequireApproval { approval: a, .. } => {
            if let Some(want) = &expect.approvers {
                let (mut w, mut g) = (want.clone(), a.approvers.clone());
                w.sort();
                g.sort();
                if w != g {
                    out.push(format!(
                        "approvers: expected {want:?}, got {:?}",
                        a.approvers
                    ));
                }
            }
            if expect.min_approvals.is_some_and(|m| m != a.min_approvals) {
                out.push(format!(
                    "min_approvals: expected {:?}, got {}",
                    expect.min_approvals, a.min_approvals
                ));
            }
            if expect
                .allow_self_approval
                .is_some_and(|s| s != a.allow_self_approval)
            {
                out.push(format!(
                    "allow_self_approval: expected {:?}, got {}",
                    expect.allow_self_approval, a.allow_self_approval
                ));
            }
        }
    }
    out
}

/// One line for a decision: its kind and the detail that matters.
pub fn describe(d: &FinalDecision) -> String {
    match d {
        FinalDecision::Allow(l) => {
            format!("allow {}", serde_json::to_string(l).unwrap_or_default())
        }
        FinalDecision::Deny { reason, module } => {
            format!(
                "deny by {} ({reason:?})",
                module.as_deref().unwrap_or("no module")
            )
        }
        FinalDecision::RequireApproval {
            approval: a,
            limits,
        } => format!(
            "require-approval by {:?}, {} needed ({:?}), then {}",
            a.approvers,
            a.min_approvals,
            a.reason,
            serde_json::to_string(limits).unwrap_or_default()
        ),
    }
}

/// Each module's outcome in one line per module, for failure output.
pub fn module_lines(report: &ChainReport) -> String {
    let mut out = String::new();
    for m in &report.modules {
        let what = match &m.outcome {
            ModuleOutcome::Verdict(v) => format!(
                "{}{}",
                v.decision.kind(),
                v.rule_id
                    .as_deref()
                    .map(|r| format!(" (rule {r})"))
                    .unwrap_or_default()
            ),
            ModuleOutcome::Failed(f) => format!("failed: {}", f.message),
        };
        let monitor = if m.monitor { " [monitor]" } else { "" };
        let _ = writeln!(out, "      {}{monitor}: {what}", m.name);
    }
    out
}

/// The outcome of running a case file.
#[derive(Debug, Default)]
pub struct TestSummary {
    pub passed: usize,
    pub failed: usize,
}

/// Runs every case of `path`, writing a line per case (and a diff per failure) to `out`.
pub fn run_file(
    engine: &PolicyEngine,
    path: &Path,
    out: &mut dyn std::io::Write,
) -> anyhow::Result<TestSummary> {
    let file = CaseFile::read(path)?;
    let base = path.parent().unwrap_or(Path::new("."));
    let chain = engine
        .load_chain(&file.specs(base)?)
        .with_context(|| format!("{}: the chain does not load", path.display()))?;
    let mut summary = TestSummary::default();
    for (i, case) in file.cases.iter().enumerate() {
        let request = file.request(case, i)?;
        let report = chain.evaluate(&request);
        let problems = mismatches(&case.expect, &report);
        if problems.is_empty() {
            summary.passed += 1;
            writeln!(out, "ok   {}", case.name)?;
        } else {
            summary.failed += 1;
            writeln!(out, "FAIL {}", case.name)?;
            for p in &problems {
                writeln!(out, "      {p}")?;
            }
            write!(out, "{}", module_lines(&report))?;
        }
    }
    writeln!(
        out,
        "{}: {} passed, {} failed",
        path.display(),
        summary.passed,
        summary.failed
    )?;
    Ok(summary)
}
