//! Codex's requests during a run, end to end: the real `codex-host serve`, the real Codex CLI's
//! app-server against the mock model, the fake Mattermost. A file change the policy puts to an
//! approver is approved, denied, approved for the session, or left to expire; the turn's diff
//! is attached; a reply steers a running turn; Codex's question is answered by a reply.

mod common;

use codex_testkit::mattermost::{NewUser, TestPost};
use codex_testkit::model::{
    last_user_text, ASK_ANSWER_PREFIX, ESCALATE_JUSTIFICATION, SHELL_ANSWER_PREFIX, SLOW_ANSWER,
};
use common::*;
use serde_json::{json, Value};

/// A host whose chain puts every file change touching `mock.txt` to @carol (expiring after
/// `expiry_secs`); returns it with carol.
async fn file_change_env(expiry_secs: u32) -> (Env, Value) {
    // Under approval policy on-request Codex asks for a file change only outside its sandbox:
    // in a read-only run, every one.
    policy_env(
        "approval-for-risky",
        json!({"patterns": ["mock\\.txt"], "approvers": ["carol"], "actions": ["file-change"],
               "expiry_secs": expiry_secs}),
    )
    .await
}

/// A read-only host with one built example module (`module`, configured with `config`) as the
/// admin's policy chain; returns it with @carol, a user who is not allowed to run Codex.
async fn policy_env(module: &str, config: Value) -> (Env, Value) {
    let mut env = Env::start(|s| s["default_sandbox"] = json!("read-only")).await;
    let admin_dir = env.dir.path().join("admin-policies");
    std::fs::create_dir_all(&admin_dir).unwrap();
    std::fs::copy(
        policy_dir().join(format!("{module}.wasm")),
        admin_dir.join(format!("50-{module}.wasm")),
    )
    .unwrap();
    std::fs::write(
        admin_dir.join(format!("50-{module}.json")),
        config.to_string(),
    )
    .unwrap();
    env.settings["policy_dir"] = json!(admin_dir.display().to_string());
    env.push_config().await;
    let carol = env.mm.add_user(NewUser {
        username: "carol".into(),
        ..Default::default()
    });
    let carol = json!({"id": carol.id, "username": "carol", "roles": ["system_user"]});
    (env, carol)
}

/// The request post for one of Codex's requests.
async fn request_post(env: &Env, n: usize) -> TestPost {
    env.wait_post("a command approval request", |p| {
        kind(p) == "approval"
            && p.post.props["codex_request"]
                .as_str()
                .is_some_and(|k| k.ends_with(&format!("#{n}")))
    })
    .await
}

fn message(v: &Value) -> String {
    v["update"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_change_approved_by_button_is_applied_and_its_diff_attached() {
    let (env, carol) = file_change_env(600).await;
    env.command("[[mock:patch]] add a file").await;
    let request = request_post(&env, 1).await;
    let shown = &request.post.message;
    assert!(
        shown.contains("Codex asks to change files")
            && shown.contains("`mock.txt` (+1 −0)")
            && shown.contains("+hello from mock")
            && shown.contains("@carol"),
        "{shown}"
    );
    assert!(
        !env.repo.join("mock.txt").exists(),
        "nothing before the answer"
    );
    // The requester may not approve; carol may, once.
    let own = env.click(&env.alice, &request, "approve").await;
    assert!(
        own["ephemeral_text"]
            .as_str()
            .unwrap()
            .contains("cannot approve"),
        "{own}"
    );
    let ok = env.click(&carol, &request, "approve").await;
    assert!(message(&ok).contains("Approved by @carol"), "{ok}");
    assert!(ok["update"]["props"].get("attachments").is_none(), "{ok}");
    let again = env.click(&carol, &request, "approve").await;
    assert!(again["update"].is_null(), "a button is one-shot: {again}");

    let out = env.outcomes(1).await.remove(0);
    assert_eq!(prop(&out, "codex_status"), "answered");
    assert_eq!(
        std::fs::read_to_string(env.repo.join("mock.txt"))
            .unwrap()
            .trim(),
        "hello from mock"
    );
    assert!(
        out.post.message.contains("1 file changed (+1 −0)"),
        "{}",
        out.post.message
    );
    let file_id = out.post.file_ids.first().expect("changes.diff attached");
    let file = env.mm.file(file_id).unwrap();
    assert_eq!(file.info.name, "changes.diff");
    let diff = String::from_utf8_lossy(&file.bytes);
    assert!(
        diff.contains("mock.txt") && diff.contains("+hello from mock"),
        "{diff}"
    );
    // Every decision is audited, the chain's with the module hashes.
    let answered = env.audit("command.answered");
    assert_eq!(answered[0]["answer"], "accept", "{answered:?}");
    let decisions = env.audit("decision");
    assert!(
        decisions
            .iter()
            .any(|d| d["action"].as_str().unwrap().starts_with("FileChange")
                && d["report"]["modules"][1]["hash"]
                    .as_str()
                    .unwrap()
                    .starts_with("sha256:")),
        "{decisions:?}"
    );
    env.assert_one_outcome_per_run();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_file_change_is_not_applied_and_the_run_goes_on() {
    let (env, carol) = file_change_env(600).await;
    env.command("[[mock:patch]] add a file").await;
    let request = request_post(&env, 1).await;
    let no = env.click(&carol, &request, "deny").await;
    assert!(message(&no).contains("Denied by @carol"), "{no}");
    let out = env.outcomes(1).await.remove(0);
    assert_eq!(prop(&out, "codex_status"), "answered");
    assert!(!env.repo.join("mock.txt").exists());
    assert!(out.post.file_ids.is_empty(), "no diff without a change");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approved_for_the_session_is_not_asked_again_in_the_thread() {
    let (env, carol) = file_change_env(600).await;
    env.command("[[mock:patch]] add a file").await;
    let request = request_post(&env, 1).await;
    let ok = env.click(&carol, &request, "approvesession").await;
    assert!(
        message(&ok).contains("Approved for this session by @carol"),
        "{ok}"
    );
    let first = env.outcomes(1).await.remove(0);
    std::fs::remove_file(env.repo.join("mock.txt")).unwrap();
    // A later run in the thread is a new Codex process: the host remembers the grant.
    env.reply(&env.alice, &first.post.root_id, "[[mock:patch]] once more")
        .await;
    let second = env.outcomes(2).await.remove(1);
    assert_eq!(prop(&second, "codex_status"), "answered");
    assert!(env.repo.join("mock.txt").exists());
    let asks = env
        .mm
        .read(|s| s.posts.iter().filter(|p| kind(p) == "approval").count());
    assert_eq!(asks, 1, "asked again: {:#?}", env.summary());
    let answered = env.audit("command.answered");
    assert_eq!(
        answered[1]["detail"]["session_grant_by"], "carol",
        "{answered:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unanswered_request_expires_to_a_decline() {
    let (env, _carol) = file_change_env(2).await;
    env.command("[[mock:patch]] add a file").await;
    let out = env.outcomes(1).await.remove(0);
    assert_eq!(prop(&out, "codex_status"), "answered");
    assert!(!env.repo.join("mock.txt").exists());
    let request = request_post(&env, 1).await;
    assert!(
        request.post.message.contains("nobody answered in time")
            && request.post.props.get("attachments").is_none(),
        "{}",
        request.post.message
    );
    assert_eq!(env.audit("command.answered")[0]["detail"]["by"], "expiry");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_while_the_turn_runs_steers_it() {
    let env = Env::start(|_| {}).await;
    env.command("[[mock:slow:20]] take your time").await;
    // The turn is running once the model has its first request.
    env.model.wait_for_requests(1, WAIT).await.unwrap();
    let progress = env
        .wait_post("the progress post", |p| kind(p) == "progress")
        .await;
    let resp = env
        .reply(&env.alice, &progress.post.root_id, "also fix the typo")
        .await;
    assert_eq!(resp["handled"], true, "{resp}");
    env.wait_post("the steer acknowledgement", |p| {
        p.post
            .message
            .contains("Passed to Codex in the running turn")
    })
    .await;
    let out = env.outcomes(1).await.remove(0);
    assert_eq!(prop(&out, "codex_status"), "answered");
    let steered = env
        .model
        .requests()
        .iter()
        .filter_map(last_user_text)
        .any(|t| t.contains("also fix the typo"));
    assert!(steered, "the steer never reached the model");
    // The steer replaced the slow request: the model answered the steer text.
    assert!(
        out.post.message.contains("also fix the typo") && !out.post.message.contains(SLOW_ANSWER),
        "{}",
        out.post.message
    );
    // One run: the reply did not queue a second one.
    env.assert_one_outcome_per_run();
    assert_eq!(env.audit("run.accepted").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codex_asks_a_question_and_the_requesters_reply_answers_it() {
    let env = Env::start(|_| {}).await;
    env.command("[[mock:ask]] pick a color").await;
    let q = env
        .wait_post("Codex's question", |p| {
            p.post.message.contains("Codex asks")
        })
        .await;
    assert!(
        q.post.message.contains("Which color should the button be?"),
        "{}",
        q.post.message
    );
    env.reply(&env.alice, &q.post.root_id, "Teal, please").await;
    let out = env.outcomes(1).await.remove(0);
    assert_eq!(prop(&out, "codex_status"), "answered");
    assert!(
        out.post.message.contains(ASK_ANSWER_PREFIX) && out.post.message.contains("Teal, please"),
        "{}",
        out.post.message
    );
}

/// Cancel while Codex waits for an answer: the turn is interrupted, the request post closes
/// without buttons, nothing is applied and no Codex process is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_interrupts_a_turn_waiting_for_an_answer() {
    let (env, _carol) = file_change_env(600).await;
    env.command("[[mock:patch]] add a file").await;
    let request = request_post(&env, 1).await;
    let progress = env
        .wait_post("the progress post", |p| {
            kind(p) == "progress" && button_context(p, "cancel").is_some()
        })
        .await;
    env.click(&env.alice, &progress, "cancel").await;
    let out = env.outcomes(1).await.remove(0);
    assert_eq!(prop(&out, "codex_status"), "cancelled");
    let closed = env
        .wait_post("the closed request", |p| {
            p.post.id == request.post.id && p.post.message.contains("No longer needed")
        })
        .await;
    assert!(
        closed.post.props.get("attachments").is_none(),
        "{closed:#?}"
    );
    assert!(!env.repo.join("mock.txt").exists());
    assert!(
        env.codex_processes().is_empty(),
        "{:?}",
        env.codex_processes()
    );
}

/// command-guard denies a destructive `rm` Codex asks to run outside the sandbox: the reason is
/// in the thread without buttons, Codex is told no, nothing waits for a person.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_guard_declines_a_destructive_command_and_codex_is_told() {
    let (env, _carol) = policy_env("command-guard", json!({"approvers": ["carol"]})).await;
    // A top-level directory that does not exist: harmless even if the guard failed open.
    env.command("[[mock:esc:rm -rf /codex-guard-probe]] clean up")
        .await;
    let declined = env
        .wait_post("the policy's decline", |p| {
            p.post.message.contains("Declined by policy")
        })
        .await;
    let shown = &declined.post.message;
    assert!(
        shown.contains("rm -rf /codex-guard-probe"),
        "the full command: {shown}"
    );
    assert!(
        shown.contains(ESCALATE_JUSTIFICATION),
        "Codex's stated reason: {shown}"
    );
    assert!(
        shown.contains("would remove /codex-guard-probe") && shown.contains("Codex was told"),
        "the command and what happened: {shown}"
    );
    assert!(
        declined.post.props.get("attachments").is_none(),
        "no buttons on a decline: {declined:#?}"
    );
    let out = env.outcomes(1).await.remove(0);
    assert_eq!(prop(&out, "codex_status"), "answered");
    // The model's follow-up request carries Codex's report of the declined call.
    let reqs = env.model.requests();
    let output = reqs
        .iter()
        .filter_map(|r| r["input"].as_array()?.last().cloned())
        .find(|l| l["type"] == "function_call_output")
        .expect("Codex sent the model the declined call's output");
    assert!(
        output.to_string().to_lowercase().contains("rejected")
            || output.to_string().to_lowercase().contains("declined"),
        "{output}"
    );
    assert!(
        out.post.message.contains(SHELL_ANSWER_PREFIX),
        "{}",
        out.post.message
    );
    let answered = env.audit("command.answered");
    assert_eq!(answered.len(), 1, "{answered:?}");
    assert_eq!(answered[0]["answer"], "decline", "{answered:?}");
    assert_eq!(
        answered[0]["detail"]["rules"][0], "destructive-rm",
        "{answered:?}"
    );
    let asks = env
        .mm
        .read(|s| s.posts.iter().filter(|p| kind(p) == "approval").count());
    assert_eq!(asks, 0, "nobody was asked: {:#?}", env.summary());
    env.assert_one_outcome_per_run();
}
