//! How a chain turns module outcomes into one decision. Pure: no wasm, no I/O.
//!
//! In chain order: a failed module is a deny naming it (fail closed); the first deny wins; else
//! any require-approval, merged, carrying the tightest limits of the allowing modules; else allow
//! with those limits; abstentions are ignored; if nothing but abstentions remain, deny. Monitor
//! modules never count.

use crate::types::{Approval, Decision, FinalDecision, Limits, ModuleOutcome, ModuleReport};

/// Reason given when no module is configured at all.
pub const NO_POLICY_REASON: &str = "No policy is configured: Codex allows nothing until an admin \
     adds one. In System Console > Plugins > Codex for Mattermost, enable the default allowlist \
     policy and fill in Allowed users, channels or teams, or add a policy module of your own \
     (see docs/policies.md).";

/// Reason given when every enforced module abstained.
pub const ALL_ABSTAINED_REASON: &str = "No policy module made a decision for this request, so it \
     is denied. An admin can add a policy that allows it (for example the allowlist).";

/// Combines the outcomes of `modules`; when `include_monitors` is false, monitor modules are
/// skipped. Returns the decision and the rule ids behind it.
pub fn combine(modules: &[ModuleReport], include_monitors: bool) -> (FinalDecision, Vec<String>) {
    let counted: Vec<&ModuleReport> = modules
        .iter()
        .filter(|m| include_monitors || !m.monitor)
        .collect();
    if counted.is_empty() && modules.is_empty() {
        return (deny(NO_POLICY_REASON, None), Vec::new());
    }

    let mut approvals: Option<(Approval, Vec<String>)> = None;
    let mut allow: Option<(Limits, Vec<String>)> = None;
    for m in &counted {
        let verdict = match &m.outcome {
            ModuleOutcome::Failed(failure) => {
                let reason = format!(
                    "The policy module `{}` failed ({}), so the request is denied. An admin can \
                     find the details in the host log or with `codex-host policy check`.",
                    m.name,
                    serde_json::to_value(failure.kind)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default(),
                );
                return (deny(&reason, Some(&m.name)), Vec::new());
            }
            ModuleOutcome::Verdict(v) => v,
        };
        let rule = verdict.rule_id.iter().cloned();
        match &verdict.decision {
            Decision::Deny { reason } => {
                return (deny(reason, Some(&m.name)), rule.collect());
            }
            Decision::RequireApproval(a) => match &mut approvals {
                None => approvals = Some((a.clone(), rule.collect())),
                Some((merged, rules)) => {
                    merge_approval(merged, a);
                    rules.extend(rule);
                }
            },
            Decision::Allow(limits) => match &mut allow {
                None => allow = Some((limits.clone(), rule.collect())),
                Some((merged, rules)) => {
                    merged.tighten(limits);
                    rules.extend(rule);
                }
            },
            Decision::Abstain => {}
        }
    }
    if let Some((approval, rules)) = approvals {
        // An approval lifts the wait, never a limit another module set.
        let limits = allow.map(|(limits, _)| limits).unwrap_or_default();
        return (FinalDecision::RequireApproval { approval, limits }, rules);
    }
    if let Some((limits, rules)) = allow {
        return (FinalDecision::Allow(limits), rules);
    }
    (deny(ALL_ABSTAINED_REASON, None), Vec::new())
}

fn deny(reason: &str, module: Option<&str>) -> FinalDecision {
    FinalDecision::Deny {
        reason: reason.to_owned(),
        module: module.map(str::to_owned),
    }
}

fn merge_approval(merged: &mut Approval, next: &Approval) {
    for approver in &next.approvers {
        if !merged.approvers.contains(approver) {
            merged.approvers.push(approver.clone());
        }
    }
    merged.min_approvals = merged.min_approvals.max(next.min_approvals);
    merged.expiry_secs = match (merged.expiry_secs, next.expiry_secs) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    merged.allow_self_approval &= next.allow_self_approval;
    if !next.reason.is_empty() && next.reason != merged.reason {
        if !merged.reason.is_empty() {
            merged.reason.push(' ');
        }
        merged.reason.push_str(&next.reason);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{FailureKind, ModuleFailure, SandboxMode, Verdict};

    fn report(name: &str, monitor: bool, decision: Decision, rule: &str) -> ModuleReport {
        ModuleReport {
            name: name.into(),
            hash: String::new(),
            monitor,
            outcome: ModuleOutcome::Verdict(Verdict {
                decision,
                rule_id: Some(rule.into()),
            }),
            elapsed_us: 0,
            logs: Vec::new(),
            logs_dropped: 0,
        }
    }

    fn approval(approvers: &[&str], min: u32, expiry: Option<u32>, self_ok: bool) -> Decision {
        Decision::RequireApproval(Approval {
            approvers: approvers.iter().map(|s| s.to_string()).collect(),
            min_approvals: min,
            reason: format!("needs {min}"),
            expiry_secs: expiry,
            allow_self_approval: self_ok,
        })
    }

    #[test]
    fn empty_chain_denies_with_admin_hint() {
        let (d, _) = combine(&[], false);
        let FinalDecision::Deny {
            reason,
            module: None,
        } = d
        else {
            panic!("{d:?}")
        };
        assert!(reason.starts_with("No policy is configured: "));
    }

    #[test]
    fn first_deny_wins_over_later_allows_and_approvals() {
        let chain = [
            report("a", false, Decision::Allow(Limits::default()), "a1"),
            report(
                "b",
                false,
                Decision::Deny {
                    reason: "b says no".into(),
                },
                "b1",
            ),
            report(
                "c",
                false,
                Decision::Deny {
                    reason: "c says no".into(),
                },
                "c1",
            ),
            report("d", false, approval(&["x"], 1, None, false), "d1"),
        ];
        let (d, rules) = combine(&chain, false);
        assert_eq!(
            d,
            FinalDecision::Deny {
                reason: "b says no".into(),
                module: Some("b".into())
            }
        );
        assert_eq!(rules, ["b1"]);
    }

    #[test]
    fn approvals_merge() {
        let chain = [
            report("a", false, approval(&["x", "y"], 1, Some(600), true), "a1"),
            report("b", false, Decision::Allow(Limits::default()), "b1"),
            report("c", false, approval(&["y", "z"], 2, Some(300), false), "c1"),
        ];
        let (d, rules) = combine(&chain, false);
        let FinalDecision::RequireApproval {
            approval: a,
            limits,
        } = d
        else {
            panic!("{d:?}")
        };
        assert_eq!(limits, Limits::default());
        assert_eq!(a.approvers, ["x", "y", "z"]);
        assert_eq!(a.min_approvals, 2);
        assert_eq!(a.expiry_secs, Some(300));
        assert!(!a.allow_self_approval);
        assert_eq!(a.reason, "needs 1 needs 2");
        assert_eq!(rules, ["a1", "c1"]);
    }

    #[test]
    fn allows_keep_tightest_limits_and_first_model() {
        let l = |s, t, m: Option<&str>| Limits {
            sandbox: s,
            timeout_secs: t,
            model: m.map(str::to_owned),
        };
        let chain = [
            report(
                "a",
                false,
                Decision::Allow(l(Some(SandboxMode::WorkspaceWrite), Some(600), None)),
                "a1",
            ),
            report("b", false, Decision::Abstain, "b1"),
            report(
                "c",
                false,
                Decision::Allow(l(Some(SandboxMode::ReadOnly), None, Some("m1"))),
                "c1",
            ),
            report(
                "d",
                false,
                Decision::Allow(l(None, Some(300), Some("m2"))),
                "d1",
            ),
        ];
        let (d, rules) = combine(&chain, false);
        assert_eq!(
            d,
            FinalDecision::Allow(l(Some(SandboxMode::ReadOnly), Some(300), Some("m1")))
        );
        assert_eq!(rules, ["a1", "c1", "d1"]);
    }

    fn limits(sandbox: Option<SandboxMode>, timeout: Option<u32>, model: Option<&str>) -> Limits {
        Limits {
            sandbox,
            timeout_secs: timeout,
            model: model.map(str::to_owned),
        }
    }

    /// The limits a require-approval decision carries, or a panic naming what came instead.
    fn approval_limits(chain: &[ModuleReport]) -> Limits {
        match combine(chain, false).0 {
            FinalDecision::RequireApproval { limits, .. } => limits,
            d => panic!("expected require-approval, got {d:?}"),
        }
    }

    #[test]
    fn approval_keeps_a_read_only_limit_set_before_or_after_it() {
        let read_only = Decision::Allow(limits(Some(SandboxMode::ReadOnly), None, None));
        let before = [
            report("ro", false, read_only.clone(), "ro1"),
            report("ask", false, approval(&["x"], 1, None, false), "ask1"),
        ];
        let after = [
            report("ask", false, approval(&["x"], 1, None, false), "ask1"),
            report("ro", false, read_only, "ro1"),
        ];
        for chain in [&before[..], &after[..]] {
            assert_eq!(
                approval_limits(chain),
                limits(Some(SandboxMode::ReadOnly), None, None)
            );
            // The approval's rules explain the wait; the limit is carried all the same.
            assert_eq!(combine(chain, false).1, ["ask1"]);
        }
    }

    #[test]
    fn approval_keeps_timeout_and_model() {
        let chain = [
            report(
                "t",
                false,
                Decision::Allow(limits(None, Some(120), None)),
                "t1",
            ),
            report("ask", false, approval(&["x"], 1, None, false), "ask1"),
            report(
                "m",
                false,
                Decision::Allow(limits(None, None, Some("m1"))),
                "m1",
            ),
        ];
        assert_eq!(approval_limits(&chain), limits(None, Some(120), Some("m1")));
    }

    #[test]
    fn approval_carries_the_tightest_merge_of_every_allow() {
        let chain = [
            report(
                "a",
                false,
                Decision::Allow(limits(
                    Some(SandboxMode::WorkspaceWrite),
                    Some(600),
                    Some("m1"),
                )),
                "a1",
            ),
            report("ask1", false, approval(&["x"], 1, None, false), "q1"),
            report(
                "b",
                false,
                Decision::Allow(limits(Some(SandboxMode::ReadOnly), Some(900), Some("m2"))),
                "b1",
            ),
            report("ask2", false, approval(&["y"], 1, None, false), "q2"),
            report("c", false, Decision::Abstain, "c1"),
        ];
        let merged = limits(Some(SandboxMode::ReadOnly), Some(600), Some("m1"));
        assert_eq!(approval_limits(&chain), merged);
        // Exactly what the same allows give without the approvals.
        let allows: Vec<ModuleReport> = chain
            .iter()
            .filter(|m| !matches!(&m.outcome, ModuleOutcome::Verdict(v) if v.decision.kind() == "require-approval"))
            .cloned()
            .collect();
        assert_eq!(combine(&allows, false).0, FinalDecision::Allow(merged));
    }

    #[test]
    fn approval_with_no_allow_carries_no_limits() {
        let chain = [
            report("ask", false, approval(&["x"], 1, None, false), "ask1"),
            report("c", false, Decision::Abstain, "c1"),
        ];
        assert_eq!(approval_limits(&chain), Limits::default());
    }

    #[test]
    fn monitor_limits_never_reach_an_approval() {
        let chain = [
            report(
                "watch",
                true,
                Decision::Allow(limits(Some(SandboxMode::ReadOnly), Some(60), Some("m"))),
                "w1",
            ),
            report("ask", false, approval(&["x"], 1, None, false), "ask1"),
        ];
        assert_eq!(approval_limits(&chain), Limits::default());
        // What the monitor would have done, had it been enforced.
        let FinalDecision::RequireApproval { limits: would, .. } = combine(&chain, true).0 else {
            panic!()
        };
        assert_eq!(
            would,
            limits(Some(SandboxMode::ReadOnly), Some(60), Some("m"))
        );
    }

    #[test]
    fn all_abstain_denies() {
        let chain = [report("a", false, Decision::Abstain, "a1")];
        let (d, _) = combine(&chain, false);
        assert_eq!(
            d,
            FinalDecision::Deny {
                reason: ALL_ABSTAINED_REASON.into(),
                module: None
            }
        );
    }

    #[test]
    fn monitor_modules_never_count() {
        let chain = [
            report(
                "m",
                true,
                Decision::Deny {
                    reason: "monitor no".into(),
                },
                "m1",
            ),
            report("a", false, Decision::Allow(Limits::default()), "a1"),
        ];
        assert!(combine(&chain, false).0.is_allow());
        assert_eq!(combine(&chain, true).0.kind(), "deny");
        let only_monitors = [report("m", true, Decision::Allow(Limits::default()), "m1")];
        assert_eq!(combine(&only_monitors, false).0.kind(), "deny");
    }

    #[test]
    fn failure_is_a_deny_naming_the_module() {
        let mut failed = report("bad", false, Decision::Abstain, "");
        failed.outcome = ModuleOutcome::Failed(ModuleFailure {
            kind: FailureKind::Deadline,
            message: "deadline".into(),
        });
        let chain = [
            report("a", false, Decision::Allow(Limits::default()), "a1"),
            failed,
        ];
        let (d, _) = combine(&chain, false);
        let FinalDecision::Deny { reason, module } = d else {
            panic!()
        };
        assert_eq!(module.as_deref(), Some("bad"));
        assert!(reason.contains("`bad` failed (deadline)"), "{reason}");
    }
}
