//! The real Codex CLI (pinned in `tools/codex`) against the mock model, one test per scenario:
//! checks the JSONL events codex prints, its exit code and what the mock was sent. Fails (never
//! skips) when the CLI is not installed, with the command that installs it.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use codex_testkit::model::{
    EXEC_ANSWER, EXEC_REASONING, FAIL_MESSAGE, FAKE_AWS_KEY_ID, FAKE_GITHUB_TOKEN, FAKE_OPENAI_KEY,
    LONG_END, PATCH_ANSWER, PATCH_LINE, SLOW_ANSWER,
};
use codex_testkit::{codex, MockModel};
use serde_json::Value;
use tokio::io::AsyncReadExt;

const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// A fresh CODEX_HOME and working directory under Cargo's per-crate temp dir (not `/tmp`, where
/// codex declines to install its helper binaries and says so on stderr).
fn dirs(name: &str) -> (PathBuf, PathBuf) {
    static N: AtomicUsize = AtomicUsize::new(0);
    let base = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "codex-cli-{}-{}-{name}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let (home, work) = (base.join("home"), base.join("work"));
    std::fs::create_dir_all(&home).unwrap();
    std::fs::create_dir_all(&work).unwrap();
    (home, work)
}

struct Run {
    events: Vec<Value>,
    code: i32,
    stderr: String,
}

impl Run {
    fn of_type(&self, kind: &str) -> Vec<&Value> {
        self.events.iter().filter(|e| e["type"] == kind).collect()
    }

    fn items(&self, event: &str, item_type: &str) -> Vec<&Value> {
        self.of_type(event)
            .into_iter()
            .map(|e| &e["item"])
            .filter(|i| i["type"] == item_type)
            .collect()
    }

    fn final_message(&self) -> String {
        let messages = self.items("item.completed", "agent_message");
        messages
            .last()
            .and_then(|m| m["text"].as_str())
            .unwrap_or_else(|| panic!("no agent_message in {self}"))
            .to_owned()
    }

    fn thread_id(&self) -> String {
        self.of_type("thread.started")[0]["thread_id"]
            .as_str()
            .expect("thread_id")
            .to_owned()
    }

    fn types(&self) -> Vec<String> {
        self.events
            .iter()
            .map(|e| match e["item"]["type"].as_str() {
                Some(item) => format!("{}:{item}", e["type"].as_str().unwrap_or("?")),
                None => e["type"].as_str().unwrap_or("?").to_owned(),
            })
            .collect()
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "exit code {}", self.code)?;
        for event in &self.events {
            writeln!(f, "  {event}")?;
        }
        write!(f, "stderr:\n{}", self.stderr)
    }
}

fn command(mock: &MockModel, home: &Path, work: &Path) -> tokio::process::Command {
    let binary = codex::binary().unwrap_or_else(|e| panic!("{e:#}"));
    let mut command = codex::exec_command(&binary, home, work, &mock.base_url());
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    command
}

async fn finish(mut child: tokio::process::Child) -> Run {
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let (mut out, mut err) = (String::new(), String::new());
    let (status, _, _) = tokio::time::timeout(RUN_TIMEOUT, async {
        tokio::join!(
            child.wait(),
            stdout.read_to_string(&mut out),
            stderr.read_to_string(&mut err)
        )
    })
    .await
    .expect("codex did not finish in time");
    let events = out
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {l}"))
        })
        .collect();
    Run {
        events,
        code: status.unwrap().code().unwrap_or(-1),
        stderr: err,
    }
}

async fn run(mock: &MockModel, home: &Path, work: &Path, args: &[&str]) -> Run {
    finish(
        command(mock, home, work)
            .args(args)
            .spawn()
            .expect("spawn codex"),
    )
    .await
}

fn assert_turn_completed(run: &Run) {
    assert_eq!(run.code, 0, "{run}");
    let types = run.types();
    assert_eq!(
        types.first().map(String::as_str),
        Some("thread.started"),
        "{run}"
    );
    assert_eq!(
        types.get(1).map(String::as_str),
        Some("turn.started"),
        "{run}"
    );
    assert_eq!(
        types.last().map(String::as_str),
        Some("turn.completed"),
        "{run}"
    );
    let usage = &run.of_type("turn.completed")[0]["usage"];
    assert!(usage["input_tokens"].as_u64().unwrap_or(0) > 0, "{run}");
    assert!(usage["output_tokens"].as_u64().unwrap_or(0) > 0, "{run}");
}

#[tokio::test]
async fn plain_prompt_is_echoed() {
    let mock = MockModel::start().await.unwrap();
    let (home, work) = dirs("echo");
    let run = run(&mock, &home, &work, &["say hello to the mock"]).await;
    assert_turn_completed(&run);
    assert_eq!(
        run.types(),
        [
            "thread.started",
            "turn.started",
            "item.completed:agent_message",
            "turn.completed"
        ],
        "{run}"
    );
    assert_eq!(run.final_message(), "Mock answer: say hello to the mock");
    let requests = mock.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0]["model"], codex::MODEL);
    assert_eq!(requests[0]["stream"], true);
}

#[tokio::test]
async fn exec_runs_a_command_then_answers() {
    let mock = MockModel::start().await.unwrap();
    let (home, work) = dirs("exec");
    let run = run(
        &mock,
        &home,
        &work,
        &["-s", "workspace-write", "[[mock:exec]] run something"],
    )
    .await;
    assert_turn_completed(&run);
    let started = run.items("item.started", "command_execution");
    let completed = run.items("item.completed", "command_execution");
    assert_eq!((started.len(), completed.len()), (1, 1), "{run}");
    assert!(
        started[0]["command"]
            .as_str()
            .unwrap()
            .contains("echo mock-exec-output"),
        "{run}"
    );
    assert_eq!(started[0]["status"], "in_progress", "{run}");
    assert_eq!(completed[0]["status"], "completed", "{run}");
    assert_eq!(completed[0]["exit_code"], 0, "{run}");
    assert!(
        completed[0]["aggregated_output"]
            .as_str()
            .unwrap()
            .contains("mock-exec-output"),
        "{run}"
    );
    assert_eq!(run.final_message(), EXEC_ANSWER);
    let reasoning = run.items("item.completed", "reasoning");
    assert_eq!(reasoning.len(), 1, "{run}");
    assert_eq!(reasoning[0]["text"], EXEC_REASONING, "{run}");
    assert_eq!(
        run.types(),
        [
            "thread.started",
            "turn.started",
            "item.completed:reasoning",
            "item.started:command_execution",
            "item.completed:command_execution",
            "item.completed:agent_message",
            "turn.completed",
        ],
        "{run}"
    );

    let requests = mock.requests();
    assert_eq!(requests.len(), 2, "{run}");
    let last = requests[1]["input"].as_array().unwrap().last().unwrap();
    assert_eq!(last["type"], "function_call_output");
    assert_eq!(last["call_id"], "call_mock_1");
}

#[tokio::test]
async fn patch_adds_a_file_then_answers() {
    let mock = MockModel::start().await.unwrap();
    let (home, work) = dirs("patch");
    let run = run(
        &mock,
        &home,
        &work,
        &["-s", "workspace-write", "[[mock:patch]] add a file"],
    )
    .await;
    assert_turn_completed(&run);
    let changes = run.items("item.completed", "file_change");
    assert_eq!(changes.len(), 1, "{run}");
    assert_eq!(changes[0]["status"], "completed", "{run}");
    let change = &changes[0]["changes"][0];
    assert!(
        change["path"].as_str().unwrap().ends_with("mock.txt"),
        "{run}"
    );
    assert_eq!(change["kind"], "add", "{run}");
    assert_eq!(
        std::fs::read_to_string(work.join("mock.txt"))
            .unwrap()
            .trim_end(),
        PATCH_LINE
    );
    assert_eq!(run.final_message(), PATCH_ANSWER);
    let requests = mock.requests();
    let last = requests[1]["input"].as_array().unwrap().last().unwrap();
    assert_eq!(last["type"], "custom_tool_call_output", "{run}");
}

#[tokio::test]
async fn fail_gives_turn_failed_and_exit_1() {
    let mock = MockModel::start().await.unwrap();
    let (home, work) = dirs("fail");
    let run = run(&mock, &home, &work, &["[[mock:fail]]"]).await;
    assert_eq!(run.code, 1, "{run}");
    let failed = run.of_type("turn.failed");
    assert_eq!(failed.len(), 1, "{run}");
    assert_eq!(failed[0]["error"]["message"], FAIL_MESSAGE, "{run}");
    let errors = run.of_type("error");
    assert_eq!(errors.len(), 1, "{run}");
    assert_eq!(errors[0]["message"], FAIL_MESSAGE, "{run}");
    assert!(run.of_type("turn.completed").is_empty(), "{run}");
    assert_eq!(mock.requests().len(), 1, "zero retries configured: {run}");
}

#[tokio::test]
async fn slow_keeps_the_stream_open_then_answers() {
    let mock = MockModel::start().await.unwrap();
    let (home, work) = dirs("slow");
    let started = Instant::now();
    let run = run(&mock, &home, &work, &["[[mock:slow:2]]"]).await;
    assert!(started.elapsed() >= Duration::from_secs(2), "{run}");
    assert_turn_completed(&run);
    assert_eq!(run.final_message(), SLOW_ANSWER);
}

#[tokio::test]
async fn slow_run_can_be_killed_mid_stream() {
    let mock = MockModel::start().await.unwrap();
    let (home, work) = dirs("kill");
    // `codex` is a Node wrapper around the native binary: killing only the wrapper leaves the
    // native process running with stdout open, so cancel the whole process group, as the host does.
    let child = command(&mock, &home, &work)
        .process_group(0)
        .arg("[[mock:slow:60]]")
        .spawn()
        .unwrap();
    let pgid = child.id().unwrap();
    mock.wait_for_requests(1, RUN_TIMEOUT).await.unwrap();
    let started = Instant::now();
    let status = std::process::Command::new("kill")
        .args(["-TERM", "--", &format!("-{pgid}")])
        .status()
        .unwrap();
    assert!(status.success());
    let run = finish(child).await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "codex took {:?} to stop",
        started.elapsed()
    );
    assert_ne!(run.code, 0, "{run}");
    assert!(run.of_type("turn.completed").is_empty(), "{run}");
}

#[tokio::test]
async fn long_answer_has_its_length_and_end_marker() {
    let mock = MockModel::start().await.unwrap();
    let (home, work) = dirs("long");
    let run = run(&mock, &home, &work, &["[[mock:long:20000]]"]).await;
    assert_turn_completed(&run);
    let text = run.final_message();
    assert!(text.len() >= 20000, "{}", text.len());
    assert!(text.starts_with("Paragraph 1: "));
    assert!(text.ends_with(LONG_END));
}

#[tokio::test]
async fn secret_answer_carries_fake_secrets() {
    let mock = MockModel::start().await.unwrap();
    let (home, work) = dirs("secret");
    let run = run(&mock, &home, &work, &["[[mock:secret]]"]).await;
    assert_turn_completed(&run);
    let text = run.final_message();
    for needle in [
        FAKE_OPENAI_KEY,
        FAKE_GITHUB_TOKEN,
        FAKE_AWS_KEY_ID,
        "-----BEGIN OPENSSH PRIVATE KEY-----",
        "-----END OPENSSH PRIVATE KEY-----",
        "no secret here",
    ] {
        assert!(text.contains(needle), "missing {needle} in {text}");
    }
}

#[tokio::test]
async fn resume_by_thread_id_continues_the_conversation() {
    let mock = MockModel::start().await.unwrap();
    let (home, work) = dirs("resume");
    let first = run(&mock, &home, &work, &["first question [[mock:long:300]]"]).await;
    assert_turn_completed(&first);
    let thread_id = first.thread_id();

    let second = run(
        &mock,
        &home,
        &work,
        &["resume", &thread_id, "second question"],
    )
    .await;
    assert_turn_completed(&second);
    assert_eq!(second.thread_id(), thread_id, "{second}");
    // The earlier marker is in the history but only the last user message picks the scenario.
    assert_eq!(second.final_message(), "Mock answer: second question");

    let requests = mock.requests();
    assert_eq!(requests.len(), 2);
    let history = requests[1]["input"].to_string();
    assert!(
        history.contains("first question [[mock:long:300]]"),
        "earlier prompt not resent"
    );
    assert!(history.contains(LONG_END), "earlier answer not resent");
}
