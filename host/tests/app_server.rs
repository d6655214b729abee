//! The app-server client against the real Codex CLI (`codex app-server`, pinned in
//! `tools/codex`) and the mock model: streamed text, command and file-change approvals (accept,
//! decline, accept for the session), a question to the user, steer, interrupt, resume — with
//! run isolation off and, where it costs little, inside bubblewrap. Every wait is on an event
//! or on the mock's request log, never on a clock.

use std::path::{Path, PathBuf};
use std::time::Duration;

use codex_host::config::Sandbox;
use codex_host::runner::app_server::incoming::{
    Item, ItemStatus, PatchChangeKind, ServerNotification, ServerRequest, ThreadItem,
};
use codex_host::runner::app_server::protocol::{
    ApprovalDecision, ApprovalPolicy, ThreadResumeParams, ThreadSettings, TurnStartParams,
    TurnStatus, UserInput, UserInputAnswer, UserInputResponse,
};
use codex_host::runner::app_server::{AppServer, Client, Event, Events, Spec};
use codex_host::runner::isolation::{Isolation, IsolationMode, RunSpace};
use codex_testkit::model::{last_user_text, ASK_ANSWER_PREFIX, ASK_QUESTION, ASK_QUESTION_ID};
use codex_testkit::{codex, MockModel};

const WAIT: Duration = Duration::from_secs(60);
const GRACE: Duration = Duration::from_secs(3);

/// A git repository, an admin Codex home, a host state directory and the mock model.
struct Rig {
    model: MockModel,
    dir: tempfile::TempDir,
    mode: IsolationMode,
    /// Codex config overrides besides the mock provider's.
    extra: Vec<String>,
}

impl Rig {
    async fn new(mode: IsolationMode) -> Rig {
        let dir = tempfile::Builder::new()
            .prefix("app-server-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .unwrap();
        for d in ["repo", "codex-home", "state"] {
            std::fs::create_dir_all(dir.path().join(d)).unwrap();
        }
        // A project is a git repository; Codex names the files of its turn diff relative to
        // the repository's root.
        let git = std::process::Command::new("git")
            .args(["init", "-q"])
            .current_dir(dir.path().join("repo"))
            .status()
            .unwrap();
        assert!(git.success());
        Rig {
            model: MockModel::start().await.unwrap(),
            dir,
            mode,
            extra: vec![],
        }
    }

    fn repo(&self) -> PathBuf {
        self.dir.path().join("repo")
    }

    async fn start(&self, resume: Option<&str>) -> (AppServer, Events, Client) {
        let isolation = Isolation::new(self.mode, "bwrap", &self.dir.path().join("state"))
            .probe()
            .await;
        assert_eq!(isolation.refusal(), None, "isolation must work here");
        let codex_path = codex::binary().unwrap().display().to_string();
        let repo = self.repo();
        let home = self.dir.path().join("codex-home");
        let space = RunSpace {
            repo: &repo,
            thread_key: "thread-1",
            admin_codex_home: Some(&home),
            read_only: &[],
            pass_env: &[],
            resume,
        };
        let mut launch = isolation.launch(&codex_path, &space).unwrap();
        launch
            .env
            .push((codex::API_KEY_ENV.into(), "mock-key".into()));
        let spec = Spec {
            launch,
            overrides: [
                codex::config_overrides(&self.model.base_url()),
                self.extra.clone(),
            ]
            .concat(),
            opt_out: vec![],
        };
        let (server, events) = AppServer::start(&spec).await.unwrap();
        let client = server.client();
        (server, events, client)
    }

    fn settings(&self, policy: ApprovalPolicy) -> ThreadSettings {
        ThreadSettings {
            cwd: Some(self.repo().display().to_string()),
            model: Some(codex::MODEL.into()),
            approval_policy: Some(policy),
            sandbox: Some(Sandbox::WorkspaceWrite),
            developer_instructions: None,
        }
    }
}

fn turn(thread_id: &str, prompt: &str) -> TurnStartParams {
    TurnStartParams {
        thread_id: thread_id.into(),
        input: vec![UserInput::Text {
            text: prompt.into(),
        }],
        cwd: None,
        model: None,
        approval_policy: None,
        sandbox_policy: None,
    }
}

/// Reads events (keeping them in `seen`) until `f` picks one.
async fn until<T>(
    events: &mut Events,
    seen: &mut Vec<Event>,
    what: &str,
    mut f: impl FnMut(&Event) -> Option<T>,
) -> T {
    let wait = async {
        while let Some(ev) = events.next().await {
            let found = f(&ev);
            seen.push(ev);
            if let Some(found) = found {
                return found;
            }
        }
        panic!("the app-server's events ended before {what}; saw {seen:#?}");
    };
    match tokio::time::timeout(WAIT, wait).await {
        Ok(found) => found,
        Err(_) => panic!("no {what} within {WAIT:?}"),
    }
}

/// Reads events until the turn completes; returns its status.
async fn completion(events: &mut Events, seen: &mut Vec<Event>) -> TurnStatus {
    until(events, seen, "turn/completed", |ev| match ev {
        Event::Notification(ServerNotification::TurnCompleted(t)) => Some(t.turn.status),
        _ => None,
    })
    .await
}

fn items(seen: &[Event], completed: bool) -> impl Iterator<Item = &Item> {
    seen.iter().filter_map(move |ev| match ev {
        Event::Notification(ServerNotification::ItemCompleted(n)) if completed => match &n.item {
            ThreadItem::Known(item) => Some(item),
            ThreadItem::Other(_) => None,
        },
        Event::Notification(ServerNotification::ItemStarted(n)) if !completed => match &n.item {
            ThreadItem::Known(item) => Some(item),
            ThreadItem::Other(_) => None,
        },
        _ => None,
    })
}

fn agent_text(seen: &[Event]) -> Vec<String> {
    items(seen, true)
        .filter_map(|i| match i {
            Item::AgentMessage { text, .. } => Some(text.clone()),
            _ => None,
        })
        .collect()
}

fn command_status(seen: &[Event]) -> Option<ItemStatus> {
    items(seen, true).find_map(|i| match i {
        Item::CommandExecution { status, .. } => Some(*status),
        _ => None,
    })
}

fn requests(seen: &[Event]) -> Vec<&ServerRequest> {
    seen.iter()
        .filter_map(|ev| match ev {
            Event::Request { request, .. } => Some(request),
            _ => None,
        })
        .collect()
}

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
