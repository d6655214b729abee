//! The app-server client against the real Codex CLI (`codex app-server`, pinned in
//! `tools/codex`) and the mock model: streamed text, command and file-change approvals (accept,
//! decline, accept for the session), a question to the user, steer, interrupt, resume — with
//! run isolation off and, where it costs little, inside bubblewrap. Every wait is on an event
//! or on the mock's request log, never on a clock.

mod app_server_rig;

use std::path::Path;

use app_server_rig::*;
use codex_host::runner::app_server::incoming::{
    Item, ItemStatus, PatchChangeKind, ServerNotification, ServerRequest,
};
use codex_host::runner::app_server::protocol::{
    ApprovalDecision, ApprovalPolicy, PermissionProfile, PermissionScope, ThreadResumeParams,
    TurnStatus, UserInput, UserInputAnswer, UserInputResponse,
};
use codex_host::runner::app_server::{Client, Event, Events};
use codex_host::runner::isolation::IsolationMode;
use codex_testkit::model::{
    last_user_text, RateLimitWindow, RateLimits, ASK_ANSWER_PREFIX, ASK_QUESTION, ASK_QUESTION_ID,
    PERM_ANSWER_PREFIX,
};
use serde_json::Value;

async fn streams_text_and_completes(mode: IsolationMode) {
    let rig = Rig::new(mode).await;
    let (server, mut events, client) = rig.start(None).await;
    let thread = client
        .start_thread(&rig.settings(ApprovalPolicy::Untrusted))
        .await
        .unwrap();
    let started = client
        .start_turn(&turn(&thread.thread.id, "say hello"))
        .await
        .unwrap();
    let mut seen = Vec::new();
    assert_eq!(
        completion(&mut events, &mut seen).await,
        TurnStatus::Completed
    );

    let deltas: String = seen
        .iter()
        .filter_map(|ev| match ev {
            Event::Notification(ServerNotification::AgentMessageDelta(d)) => {
                assert_eq!(d.turn_id, started.turn.id);
                Some(d.delta.as_str())
            }
            _ => None,
        })
        .collect();
    assert_eq!(deltas, "Mock answer: say hello");
    assert_eq!(
        agent_text(&seen),
        vec!["Mock answer: say hello".to_string()]
    );
    let usage = seen.iter().find_map(|ev| match ev {
        Event::Notification(ServerNotification::TokenUsageUpdated(u)) => Some(u.token_usage.total),
        _ => None,
    });
    assert!(usage.is_some_and(|u| u.input_tokens > 0 && u.output_tokens > 0));
    // Notifications the host has no type for arrive untyped and change nothing.
    assert!(seen.iter().any(|ev| matches!(ev,
        Event::Notification(ServerNotification::Other { method, .. }) if method == "thread/status/changed")));
    assert_eq!(client.active_turn(), None);
    let finished = server.finish(GRACE).await;
    assert!(
        !finished.killed,
        "app-server exits when its stdin closes: {finished:?}"
    );
}

#[tokio::test]
async fn a_turn_streams_agent_text_and_completes() {
    streams_text_and_completes(IsolationMode::Off).await;
}

#[tokio::test]
async fn a_turn_streams_agent_text_and_completes_in_bubblewrap() {
    streams_text_and_completes(IsolationMode::Bubblewrap).await;
}

/// Runs `touch <file>` under approval policy `untrusted`, answering the approval with
/// `decision`; returns everything seen.
async fn command_with_decision(
    rig: &Rig,
    client: &Client,
    events: &mut Events,
    thread_id: &str,
    file: &str,
    decision: ApprovalDecision,
) -> Vec<Event> {
    let mut seen = Vec::new();
    let prompt = format!("[[mock:sh:touch {file}]]");
    client.start_turn(&turn(thread_id, &prompt)).await.unwrap();
    let id = until(
        events,
        &mut seen,
        "a command approval request",
        |ev| match ev {
            Event::Request {
                id,
                request: ServerRequest::CommandApproval(r),
            } => {
                assert!(
                    r.command
                        .as_deref()
                        .unwrap_or("")
                        .contains(&format!("touch {file}")),
                    "{r:?}"
                );
                assert_eq!(r.cwd.as_deref(), Some(rig.repo().to_str().unwrap()));
                Some(id.clone())
            }
            _ => None,
        },
    )
    .await;
    client.answer_approval(&id, decision).await.unwrap();
    assert_eq!(completion(events, &mut seen).await, TurnStatus::Completed);
    assert!(
        seen.iter().any(|ev| matches!(ev,
            Event::Notification(ServerNotification::ServerRequestResolved(r)) if r.request_id == id)),
        "serverRequest/resolved names the answered request"
    );
    seen
}

async fn accepted_command_runs(mode: IsolationMode) {
    let rig = Rig::new(mode).await;
    let (server, mut events, client) = rig.start(None).await;
    let thread = client
        .start_thread(&rig.settings(ApprovalPolicy::Untrusted))
        .await
        .unwrap();
    let id = &thread.thread.id;
    let seen = command_with_decision(
        &rig,
        &client,
        &mut events,
        id,
        "accepted.txt",
        ApprovalDecision::Accept,
    )
    .await;
    assert!(rig.repo().join("accepted.txt").exists());
    assert_eq!(command_status(&seen), Some(ItemStatus::Completed));
    server.finish(GRACE).await;
}

#[tokio::test]
async fn an_accepted_command_runs() {
    accepted_command_runs(IsolationMode::Off).await;
}

#[tokio::test]
async fn an_accepted_command_runs_in_bubblewrap() {
    accepted_command_runs(IsolationMode::Bubblewrap).await;
}

#[tokio::test]
async fn a_declined_command_does_not_run_and_the_model_is_told() {
    let rig = Rig::new(IsolationMode::Off).await;
    let (server, mut events, client) = rig.start(None).await;
    let thread = client
        .start_thread(&rig.settings(ApprovalPolicy::Untrusted))
        .await
        .unwrap();
    let id = &thread.thread.id;
    let seen = command_with_decision(
        &rig,
        &client,
        &mut events,
        id,
        "declined.txt",
        ApprovalDecision::Decline,
    )
    .await;
    assert!(!rig.repo().join("declined.txt").exists());
    assert_eq!(command_status(&seen), Some(ItemStatus::Declined));
    // The turn went on: the model got the refusal as the command's output and answered.
    let reqs = rig.model.requests();
    assert_eq!(reqs.len(), 2, "the call, then its (declined) output");
    let last = reqs[1]["input"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["type"], "function_call_output");
    server.finish(GRACE).await;
}

#[tokio::test]
async fn accept_for_session_is_not_asked_again_for_the_same_command() {
    let rig = Rig::new(IsolationMode::Off).await;
    let (server, mut events, client) = rig.start(None).await;
    let thread = client
        .start_thread(&rig.settings(ApprovalPolicy::Untrusted))
        .await
        .unwrap();
    let id = &thread.thread.id;
    command_with_decision(
        &rig,
        &client,
        &mut events,
        id,
        "again.txt",
        ApprovalDecision::AcceptForSession,
    )
    .await;
    let file = rig.repo().join("again.txt");
    std::fs::remove_file(&file).unwrap();

    let mut seen = Vec::new();
    client
        .start_turn(&turn(id, "[[mock:sh:touch again.txt]]"))
        .await
        .unwrap();
    assert_eq!(
        completion(&mut events, &mut seen).await,
        TurnStatus::Completed
    );
    assert!(
        requests(&seen).is_empty(),
        "asked again: {:?}",
        requests(&seen)
    );
    assert!(file.exists(), "the command ran without asking");
    assert_eq!(command_status(&seen), Some(ItemStatus::Completed));
    server.finish(GRACE).await;
}

#[tokio::test]
async fn accept_for_session_ends_with_the_process() {
    let rig = Rig::new(IsolationMode::Off).await;
    let (server, mut events, client) = rig.start(None).await;
    let thread = client
        .start_thread(&rig.settings(ApprovalPolicy::Untrusted))
        .await
        .unwrap();
    let id = thread.thread.id;
    command_with_decision(
        &rig,
        &client,
        &mut events,
        &id,
        "again.txt",
        ApprovalDecision::AcceptForSession,
    )
    .await;
    server.finish(GRACE).await;

    // The next run of the thread is a new app-server: Codex asks again.
    let (server, mut events, client) = rig.start(Some(&id)).await;
    let params = ThreadResumeParams {
        thread_id: id.clone(),
        settings: rig.settings(ApprovalPolicy::Untrusted),
    };
    client.resume_thread(&params).await.unwrap();
    command_with_decision(
        &rig,
        &client,
        &mut events,
        &id,
        "again.txt",
        ApprovalDecision::Accept,
    )
    .await;
    server.finish(GRACE).await;
}

#[tokio::test]
async fn an_interrupt_clears_a_pending_approval() {
    let rig = Rig::new(IsolationMode::Off).await;
    let (server, mut events, client) = rig.start(None).await;
    let thread = client
        .start_thread(&rig.settings(ApprovalPolicy::Untrusted))
        .await
        .unwrap();
    let turn_id = client
        .start_turn(&turn(&thread.thread.id, "[[mock:sh:touch never.txt]]"))
        .await
        .unwrap()
        .turn
        .id;
    let mut seen = Vec::new();
    let id = until(
        &mut events,
        &mut seen,
        "a command approval request",
        |ev| match ev {
            Event::Request {
                id,
                request: ServerRequest::CommandApproval(_),
            } => Some(id.clone()),
            _ => None,
        },
    )
    .await;
    client.interrupt(&thread.thread.id, &turn_id).await.unwrap();
    assert_eq!(
        completion(&mut events, &mut seen).await,
        TurnStatus::Interrupted
    );
    // 0.171 clears the unanswered request just after `turn/completed`.
    until(
        &mut events,
        &mut seen,
        "serverRequest/resolved",
        |ev| match ev {
            Event::Notification(ServerNotification::ServerRequestResolved(r)) => {
                (r.request_id == id).then_some(())
            }
            _ => None,
        },
    )
    .await;
    // Answering it now is harmless and runs nothing.
    client
        .answer_approval(&id, ApprovalDecision::Accept)
        .await
        .unwrap();
    let finished = server.finish(GRACE).await;
    assert!(!rig.repo().join("never.txt").exists(), "{finished:?}");
}

#[tokio::test]
async fn a_file_change_is_approved_and_its_diff_is_reported() {
    let rig = Rig::new(IsolationMode::Off).await;
    let (server, mut events, client) = rig.start(None).await;
    let thread = client
        .start_thread(&rig.settings(ApprovalPolicy::Untrusted))
        .await
        .unwrap();
    client
        .start_turn(&turn(&thread.thread.id, "[[mock:patch]]"))
        .await
        .unwrap();
    let mut seen = Vec::new();
    let (id, item_id) = until(
        &mut events,
        &mut seen,
        "a file change approval",
        |ev| match ev {
            Event::Request {
                id,
                request: ServerRequest::FileChangeApproval(r),
            } => Some((id.clone(), r.item_id.clone())),
            _ => None,
        },
    )
    .await;
    // The paths and per-file diff come with the item announced just before the request.
    let proposed = items(&seen, false)
        .find_map(|i| match i {
            Item::FileChange { id, changes, .. } if *id == item_id => Some(changes.clone()),
            _ => None,
        })
        .expect("item/started for the file change");
    assert_eq!(proposed.len(), 1);
    assert!(proposed[0].path.ends_with("/mock.txt"));
    assert_eq!(proposed[0].kind, PatchChangeKind::Add);
    assert_eq!(proposed[0].diff, "hello from mock\n");
    assert!(
        !rig.repo().join("mock.txt").exists(),
        "nothing written before the answer"
    );

    client
        .answer_approval(&id, ApprovalDecision::Accept)
        .await
        .unwrap();
    assert_eq!(
        completion(&mut events, &mut seen).await,
        TurnStatus::Completed
    );
    assert_eq!(
        std::fs::read_to_string(rig.repo().join("mock.txt")).unwrap(),
        "hello from mock\n"
    );
    let diffs: Vec<&str> = seen
        .iter()
        .filter_map(|ev| match ev {
            Event::Notification(ServerNotification::TurnDiffUpdated(d)) => Some(d.diff.as_str()),
            _ => None,
        })
        .collect();
    // The whole turn's diff so far, git-style, after the patch and again at the turn's end.
    assert!(!diffs.is_empty(), "no turn/diff/updated");
    for diff in diffs {
        assert!(
            diff.starts_with("diff --git a/mock.txt b/mock.txt\nnew file mode 100644\n"),
            "{diff}"
        );
        assert!(
            diff.contains("--- /dev/null\n+++ b/mock.txt\n@@ -0,0 +1 @@\n+hello from mock\n"),
            "{diff}"
        );
    }
    server.finish(GRACE).await;
}

#[tokio::test]
async fn a_question_is_answered_and_the_answer_reaches_the_model() {
    let mut rig = Rig::new(IsolationMode::Off).await;
    // Without it, 0.171 answers the model's `request_user_input` call itself with
    // "request_user_input is unavailable in Default mode" and never asks.
    rig.extra
        .push("features.default_mode_request_user_input=true".into());
    let (server, mut events, client) = rig.start(None).await;
    let thread = client
        .start_thread(&rig.settings(ApprovalPolicy::OnRequest))
        .await
        .unwrap();
    client
        .start_turn(&turn(&thread.thread.id, "[[mock:ask]]"))
        .await
        .unwrap();
    let mut seen = Vec::new();
    let id = until(&mut events, &mut seen, "a question", |ev| match ev {
        Event::Request {
            id,
            request: ServerRequest::UserInput(r),
        } => {
            assert_eq!(r.questions.len(), 1);
            assert_eq!(r.questions[0].id, ASK_QUESTION_ID);
            assert_eq!(r.questions[0].question, ASK_QUESTION);
            Some(id.clone())
        }
        _ => None,
    })
    .await;
    let mut answers = UserInputResponse::default();
    answers.answers.insert(
        ASK_QUESTION_ID.into(),
        UserInputAnswer {
            answers: vec!["Teal, please".into()],
        },
    );
    client.answer_user_input(&id, answers).await.unwrap();
    assert_eq!(
        completion(&mut events, &mut seen).await,
        TurnStatus::Completed
    );
    let text = agent_text(&seen).join("\n");
    assert!(
        text.starts_with(ASK_ANSWER_PREFIX) && text.contains("Teal, please"),
        "{text}"
    );
    server.finish(GRACE).await;
}

/// Asks for write access outside the repository and answers with `grant`; returns the text
/// the model wrote about what it got.
async fn permission_turn(
    rig: &Rig,
    client: &Client,
    events: &mut Events,
    thread_id: &str,
    grant: impl Fn(&PermissionProfile) -> PermissionProfile,
) -> String {
    let outside = rig.dir.path().join("outside").display().to_string();
    let prompt = format!("[[mock:perm:{outside}]]");
    client.start_turn(&turn(thread_id, &prompt)).await.unwrap();
    let mut seen = Vec::new();
    let (id, granted) = until(events, &mut seen, "a permissions request", |ev| match ev {
        Event::Request {
            id,
            request: ServerRequest::PermissionsApproval(r),
        } => {
            let fs = r.permissions.file_system.as_ref().unwrap();
            assert_eq!(fs.write.as_deref(), Some(&[outside.clone()][..]));
            assert_eq!(
                r.reason.as_deref(),
                Some(&*format!("need to write {outside}"))
            );
            Some((id.clone(), grant(&r.permissions)))
        }
        _ => None,
    })
    .await;
    client
        .grant_permissions(&id, granted, PermissionScope::Turn)
        .await
        .unwrap();
    assert_eq!(completion(events, &mut seen).await, TurnStatus::Completed);
    agent_text(&seen).join("\n")
}

#[tokio::test]
async fn a_permission_request_is_answered_with_a_grant_or_nothing() {
    let mut rig = Rig::new(IsolationMode::Off).await;
    // 0.171 offers the model `request_permissions` only with this (under development) feature.
    rig.extra
        .push("features.request_permissions_tool=true".into());
    let (server, mut events, client) = rig.start(None).await;
    let thread = client
        .start_thread(&rig.settings(ApprovalPolicy::OnRequest))
        .await
        .unwrap();
    let outside = rig.dir.path().join("outside").display().to_string();

    let text = permission_turn(&rig, &client, &mut events, &thread.thread.id, |asked| {
        asked.clone()
    })
    .await;
    assert!(text.starts_with(PERM_ANSWER_PREFIX), "{text}");
    assert!(
        text.contains(&format!("\"write\":[\"{outside}\"]")),
        "{text}"
    );

    let text = permission_turn(&rig, &client, &mut events, &thread.thread.id, |_| {
        PermissionProfile::default()
    })
    .await;
    assert!(text.starts_with(PERM_ANSWER_PREFIX), "{text}");
    assert!(!text.contains(&outside), "nothing granted, yet: {text}");
    server.finish(GRACE).await;
}

/// A 1×1 PNG.
const PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x02, 0x00, 0x00, 0x00, 0x90, 0x77, 0x53,
    0xde, 0x00, 0x00, 0x00, 0x0c, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8, 0xcf, 0xc0, 0x00,
    0x00, 0x03, 0x01, 0x01, 0x00, 0xc9, 0xfe, 0x92, 0xef, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e,
    0x44, 0xae, 0x42, 0x60, 0x82,
];

#[tokio::test]
async fn a_local_image_reaches_the_model_with_the_prompt() {
    let rig = Rig::new(IsolationMode::Off).await;
    let image = rig.dir.path().join("image-0.png");
    std::fs::write(&image, PNG).unwrap();
    let (server, mut events, client) = rig.start(None).await;
    let thread = client
        .start_thread(&rig.settings(ApprovalPolicy::Untrusted))
        .await
        .unwrap();
    let mut params = turn(&thread.thread.id, "what is in the picture?");
    params.input.push(UserInput::LocalImage {
        path: image.display().to_string(),
    });
    client.start_turn(&params).await.unwrap();
    let mut seen = Vec::new();
    assert_eq!(
        completion(&mut events, &mut seen).await,
        TurnStatus::Completed
    );
    let request = rig.model.requests().pop().unwrap();
    let parts: Vec<&Value> = request["input"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["role"] == "user")
        .flat_map(|i| i["content"].as_array().into_iter().flatten())
        .collect();
    assert!(parts.iter().any(|p| p["text"] == "what is in the picture?"));
    assert!(
        parts.iter().any(|p| p["type"] == "input_image"
            && p["image_url"]
                .as_str()
                .is_some_and(|u| u.starts_with("data:image/png;base64,"))),
        "{parts:#?}"
    );
    server.finish(GRACE).await;
}

/// Starts a `[[mock:slow:N]]` turn and waits until the model is streaming it.
async fn slow_turn(
    rig: &Rig,
    client: &Client,
    events: &mut Events,
    seconds: u64,
) -> (String, String) {
    let thread = client
        .start_thread(&rig.settings(ApprovalPolicy::Untrusted))
        .await
        .unwrap();
    let turn_id = client
        .start_turn(&turn(
            &thread.thread.id,
            &format!("[[mock:slow:{seconds}]]"),
        ))
        .await
        .unwrap()
        .turn
        .id;
    let mut seen = Vec::new();
    until(events, &mut seen, "turn/started", |ev| {
        matches!(ev, Event::Notification(ServerNotification::TurnStarted(_))).then_some(())
    })
    .await;
    rig.model.wait_for_requests(1, WAIT).await.unwrap();
    (thread.thread.id, turn_id)
}

#[tokio::test]
async fn steer_text_reaches_the_models_next_request() {
    let rig = Rig::new(IsolationMode::Off).await;
    let (server, mut events, client) = rig.start(None).await;
    let (thread_id, turn_id) = slow_turn(&rig, &client, &mut events, 30).await;
    assert_eq!(
        client.active_turn().map(|t| t.turn_id),
        Some(turn_id.clone())
    );
    let took = client
        .steer(
            &thread_id,
            &turn_id,
            vec![UserInput::Text {
                text: "STEER-TEXT use tabs".into(),
            }],
        )
        .await
        .unwrap();
    assert_eq!(took, turn_id);
    let mut seen = Vec::new();
    assert_eq!(
        completion(&mut events, &mut seen).await,
        TurnStatus::Completed
    );
    let reqs = rig.model.requests();
    assert_eq!(
        last_user_text(reqs.last().unwrap()).as_deref(),
        Some("STEER-TEXT use tabs")
    );
    assert_eq!(
        agent_text(&seen),
        vec!["Mock answer: STEER-TEXT use tabs".to_string()]
    );
    server.finish(GRACE).await;
}

#[tokio::test]
async fn a_steer_for_another_turn_is_refused() {
    let rig = Rig::new(IsolationMode::Off).await;
    let (server, mut events, client) = rig.start(None).await;
    let (thread_id, _) = slow_turn(&rig, &client, &mut events, 30).await;
    let err = client
        .steer(
            &thread_id,
            "not-the-turn",
            vec![UserInput::Text { text: "x".into() }],
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("turn/steer"), "{err}");
    server.interrupt_and_finish(GRACE).await;
}

#[tokio::test]
async fn interrupt_ends_the_turn_and_the_process() {
    let rig = Rig::new(IsolationMode::Off).await;
    let (server, mut events, client) = rig.start(None).await;
    let (thread_id, turn_id) = slow_turn(&rig, &client, &mut events, 120).await;
    client.interrupt(&thread_id, &turn_id).await.unwrap();
    let mut seen = Vec::new();
    assert_eq!(
        completion(&mut events, &mut seen).await,
        TurnStatus::Interrupted
    );
    assert_eq!(client.active_turn(), None);
    let pid = server.pid().unwrap();
    let finished = server.interrupt_and_finish(GRACE).await;
    assert!(!Path::new(&format!("/proc/{pid}")).exists(), "{finished:?}");
    assert_eq!(rig.model.requests().len(), 1, "nothing after the interrupt");
}

#[tokio::test]
async fn cancel_interrupts_a_running_turn_then_ends_the_process() {
    let rig = Rig::new(IsolationMode::Bubblewrap).await;
    let (server, mut events, client) = rig.start(None).await;
    slow_turn(&rig, &client, &mut events, 120).await;
    let pid = server.pid().unwrap();
    let finished = server.interrupt_and_finish(GRACE).await;
    assert!(!Path::new(&format!("/proc/{pid}")).exists(), "{finished:?}");
    let mut seen = Vec::new();
    let status = completion(&mut events, &mut seen).await;
    assert_eq!(status, TurnStatus::Interrupted);
}

async fn resume_continues(mode: IsolationMode) {
    let rig = Rig::new(mode).await;
    let (server, mut events, client) = rig.start(None).await;
    let thread = client
        .start_thread(&rig.settings(ApprovalPolicy::Untrusted))
        .await
        .unwrap();
    let thread_id = thread.thread.id;
    client
        .start_turn(&turn(&thread_id, "remember the word banana"))
        .await
        .unwrap();
    let mut seen = Vec::new();
    assert_eq!(
        completion(&mut events, &mut seen).await,
        TurnStatus::Completed
    );
    server.finish(GRACE).await;

    let (server, mut events, client) = rig.start(Some(&thread_id)).await;
    let resumed = client
        .resume_thread(&ThreadResumeParams {
            thread_id: thread_id.clone(),
            settings: rig.settings(ApprovalPolicy::Untrusted),
        })
        .await
        .unwrap();
    assert_eq!(resumed.thread.id, thread_id);
    client
        .start_turn(&turn(&thread_id, "which word?"))
        .await
        .unwrap();
    let mut seen = Vec::new();
    assert_eq!(
        completion(&mut events, &mut seen).await,
        TurnStatus::Completed
    );
    let last = rig.model.requests().last().cloned().unwrap();
    let history = serde_json::to_string(&last["input"]).unwrap();
    assert!(history.contains("remember the word banana"), "{history}");
    assert!(history.contains("Mock answer: remember the word banana"));
    assert_eq!(last_user_text(&last).as_deref(), Some("which word?"));
    server.finish(GRACE).await;
}

#[tokio::test]
async fn a_resumed_thread_continues_the_same_session() {
    resume_continues(IsolationMode::Off).await;
}

#[tokio::test]
async fn a_resumed_thread_continues_the_same_session_in_bubblewrap() {
    resume_continues(IsolationMode::Bubblewrap).await;
}

#[tokio::test]
async fn rate_limits_the_model_reports_reach_the_client() {
    let rig = Rig::new(IsolationMode::Off).await;
    rig.model.set_rate_limits(Some(RateLimits {
        primary: RateLimitWindow {
            used_percent: 42,
            window_minutes: 300,
        },
        secondary: Some(RateLimitWindow {
            used_percent: 10,
            window_minutes: 10080,
        }),
    }));
    let (server, mut events, client) = rig.start(None).await;
    let thread = client
        .start_thread(&rig.settings(ApprovalPolicy::Untrusted))
        .await
        .unwrap();
    client
        .start_turn(&turn(&thread.thread.id, "say hello"))
        .await
        .unwrap();
    let mut seen = Vec::new();
    assert_eq!(
        completion(&mut events, &mut seen).await,
        TurnStatus::Completed
    );
    let snapshots: Vec<_> = seen
        .iter()
        .filter_map(|ev| match ev {
            Event::Notification(ServerNotification::RateLimitsUpdated(r)) => {
                Some(r.rate_limits.clone())
            }
            _ => None,
        })
        .collect();
    // Codex derives the snapshot from the response headers: its own account limits.
    let last = snapshots.last().expect("a rate-limit snapshot");
    assert_eq!(last.limit_id.as_deref(), Some("codex"), "{snapshots:?}");
    let primary = last.primary.as_ref().expect("the primary window");
    assert_eq!(
        (primary.used_percent, primary.window_duration_mins),
        (42, Some(300))
    );
    let secondary = last.secondary.as_ref().expect("the secondary window");
    assert_eq!(
        (secondary.used_percent, secondary.window_duration_mins),
        (10, Some(10080))
    );
    server.finish(GRACE).await;
}
