use super::*;

fn terms(sandbox: SandboxMode, secs: u64, model: Option<&str>) -> RunTerms {
    RunTerms {
        sandbox,
        timeout: Duration::from_secs(secs),
        model: model.map(String::from),
    }
}

#[test]
fn limits_only_tighten_the_project_defaults() {
    let defaults = terms(SandboxMode::WorkspaceWrite, 600, Some("project-model"));
    assert_eq!(Limits::default().apply(defaults.clone()), defaults);
    let tight = Limits {
        sandbox: Some(SandboxMode::ReadOnly),
        timeout: Some(Duration::from_secs(60)),
        model: Some("policy-model".into()),
    };
    assert_eq!(
        tight.apply(defaults.clone()),
        terms(SandboxMode::ReadOnly, 60, Some("policy-model"))
    );
    // A looser sandbox or a longer timeout than the project's is no loosening.
    let loose = Limits {
        sandbox: Some(SandboxMode::DangerFullAccess),
        timeout: Some(Duration::from_secs(6000)),
        model: None,
    };
    assert_eq!(loose.apply(defaults.clone()), defaults);
}

#[test]
fn an_approval_carries_the_chains_limits() {
    let chain = FinalDecision::RequireApproval {
        approval: codex_policy::Approval {
            approvers: vec!["carol".into()],
            min_approvals: 1,
            ..Default::default()
        },
        limits: codex_policy::Limits {
            sandbox: Some(SandboxMode::ReadOnly),
            timeout_secs: Some(90),
            model: Some("m".into()),
        },
    };
    let Decision::RequireApproval {
        limits,
        approvers,
        expiry,
        ..
    } = from_policy_decision(&chain)
    else {
        panic!("{chain:?}")
    };
    assert_eq!(approvers, ["carol"]);
    assert_eq!(expiry, DEFAULT_APPROVAL_EXPIRY);
    assert_eq!(
        limits,
        Limits {
            sandbox: Some(SandboxMode::ReadOnly),
            timeout: Some(Duration::from_secs(90)),
            model: Some("m".into())
        }
    );
}
