use std::sync::{mpsc, Mutex};

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

fn request() -> GateRequest {
    GateRequest {
        request_id: "r".into(),
        user: User::default(),
        channel: Channel::default(),
        action: Action::New,
        prompt: "p".into(),
        project: None,
        sandbox: SandboxMode::WorkspaceWrite,
        root_id: String::new(),
        attachments: 0,
        context: None,
    }
}

/// Allows once the test releases it; denies if nobody does within a few seconds.
struct Held(Mutex<mpsc::Receiver<()>>);

impl Gate for Held {
    fn decide(&self, _req: &GateRequest) -> Ruling {
        let released = self.0.lock().unwrap().recv_timeout(Duration::from_secs(5));
        Ruling {
            decision: match released {
                Ok(()) => Decision::Allow(Limits::default()),
                Err(_) => Decision::Deny {
                    reason: "the evaluation held the async worker".into(),
                },
            },
            rules: vec![],
            explanation: vec![],
            report: Value::Null,
            abstained: false,
        }
    }
}

/// On a runtime with one worker thread, another task still runs while a module evaluates: the
/// evaluation is on the blocking pool.
#[tokio::test(flavor = "current_thread")]
async fn a_slow_evaluation_does_not_hold_the_async_worker() {
    let (release, held) = mpsc::channel();
    let evaluator = Arc::new(Evaluator::new(
        Arc::new(Held(Mutex::new(held))),
        Default::default(),
    ));
    let evaluating = tokio::spawn({
        let evaluator = evaluator.clone();
        async move { evaluator.decide(request()).await }
    });
    tokio::spawn(async move { release.send(()).unwrap() })
        .await
        .unwrap();
    let ruling = evaluating.await.unwrap();
    assert_eq!(ruling.decision, Decision::Allow(Limits::default()));
}

struct Panicking;

impl Gate for Panicking {
    fn decide(&self, _req: &GateRequest) -> Ruling {
        panic!("a bug in the engine")
    }
}

#[tokio::test]
async fn an_evaluation_that_panics_is_a_deny() {
    let ruling = Evaluator::new(Arc::new(Panicking), Default::default())
        .decide(request())
        .await;
    assert!(matches!(ruling.decision, Decision::Deny { .. }));
    assert_eq!(ruling.rules, ["policy-evaluation-crashed"]);
}
