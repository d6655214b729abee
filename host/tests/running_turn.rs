//! A running turn and the thread, end to end: the real `codex-host serve`, the real Codex CLI's
//! app-server against the mock model, the fake Mattermost. Who may steer someone else's
//! running turn (setting `steer_by`), the policy judging the person who steers (not the
//! requester), Codex's question closing without an answer when the turn ends first, and the
//! rate-limit headroom Codex reports reaching the outcome's footer.

mod common;

use codex_testkit::mattermost::NewUser;
use codex_testkit::model::{last_user_text, RateLimitWindow, RateLimits, SLOW_ANSWER};
use common::*;
use serde_json::{json, Value};

/// Alice's slow run is running (the model has its first request); bob is a member of the
/// channel, listed in Allowed users when `bob_allowed`. Returns the env, bob and the thread.
async fn running(steer_by: &str, bob_allowed: bool) -> (Env, Value, String) {
    let mut env = Env::start(|s| s["steer_by"] = json!(steer_by)).await;
    let bob = env.mm.add_user(NewUser {
        username: "bob".into(),
        ..Default::default()
    });
    if bob_allowed {
        env.settings["allowed_users"]
            .as_array_mut()
            .unwrap()
            .push(json!(bob.id));
        env.push_config().await;
    }
    let bob = json!({"id": bob.id, "username": "bob", "roles": ["system_user"]});
    env.command("[[mock:slow:10]] take your time").await;
    env.model.wait_for_requests(1, WAIT).await.unwrap();
    let progress = env
        .wait_post("the progress post", |p| kind(p) == "progress")
        .await;
    let root = progress.post.root_id.clone();
    (env, bob, root)
}

fn model_got(env: &Env, text: &str) -> bool {
    env.model
        .requests()
        .iter()
        .filter_map(last_user_text)
        .any(|t| t.contains(text))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_default_only_the_requester_steers_and_others_are_told_why() {
    let (env, bob, root) = running("requester", true).await;
    let resp = env.reply(&bob, &root, "bob here: use tabs").await;
    assert_eq!(resp["handled"], true, "{resp}");
    let told = resp["ephemeral_text"].as_str().unwrap();
    assert!(
        told.contains("waits for the next turn")
            && told.contains("@alice")
            && told.contains("Who may steer a running turn"),
        "{told}"
    );
    // Alice's turn ran undisturbed (a steer would have replaced its slow answer); bob's reply
    // became a run of its own, judged as his.
    let outs = env.outcomes(2).await;
    assert!(
        outs.iter().any(|o| o.post.message.contains(SLOW_ANSWER)),
        "{:#?}",
        env.summary()
    );
    assert!(env.audit("run.steer").is_empty());
    assert_eq!(env.audit("run.accepted").len(), 2);
    assert!(model_got(&env, "bob here: use tabs"));
    env.assert_one_outcome_per_run();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allowed_user_steers_when_the_setting_says_so_and_is_named() {
    let (env, bob, root) = running("allowed-users", true).await;
    let resp = env.reply(&bob, &root, "bob here: use tabs").await;
    assert_eq!(resp["handled"], true, "{resp}");
    assert_eq!(resp["ephemeral_text"].as_str().unwrap_or_default(), "");
    env.wait_post("the steer acknowledgement", |p| {
        p.post
            .message
            .contains("Passed to Codex in the running turn (from @bob)")
    })
    .await;
    let out = env.outcomes(1).await.remove(0);
    assert_eq!(prop(&out, "codex_status"), "answered");
    assert!(model_got(
        &env,
        "Message from @bob in Mattermost:\nbob here: use tabs"
    ));
    let steer = env.audit("run.steer");
    assert_eq!(steer.len(), 1, "{steer:?}");
    // One run: the reply did not queue a second one.
    assert_eq!(env.audit("run.accepted").len(), 1);
    env.assert_one_outcome_per_run();
}

/// The policy judges the person who steers: bob is not allowed (alice is), so his text never
/// reaches Codex, whatever the setting lets through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_steer_by_someone_the_policy_refuses_never_reaches_codex() {
    let (env, bob, root) = running("allowed-users", false).await;
    let resp = env.reply(&bob, &root, "bob here: delete the tests").await;
    assert_eq!(resp["handled"], true, "{resp}");
    let told = resp["ephemeral_text"].as_str().unwrap();
    assert!(told.starts_with("Not passed to Codex:"), "{told}");
    let refused = env.audit("run.steer_refused");
    assert_eq!(refused.len(), 1, "{refused:?}");
    let out = env.outcomes(1).await.remove(0);
    assert!(
        out.post.message.contains(SLOW_ANSWER),
        "{}",
        out.post.message
    );
    assert!(!model_got(&env, "delete the tests"));
    assert!(env.audit("run.steer").is_empty());
    assert_eq!(env.audit("run.accepted").len(), 1);
}

/// Cancel while Codex waits for the requester's answer: the question post says it no longer
/// waits, and the requester's later reply is a new prompt, not an answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_question_closed_by_the_turns_end_takes_no_answer() {
    let env = Env::start(|_| {}).await;
    env.command("[[mock:ask]] pick a color").await;
    let q = env
        .wait_post("Codex's question", |p| {
            p.post.message.contains("Codex asks")
        })
        .await;
    let progress = env
        .wait_post("the progress post", |p| {
            kind(p) == "progress" && button_context(p, "cancel").is_some()
        })
        .await;
    env.click(&env.alice, &progress, "cancel").await;
    let out = env.outcomes(1).await.remove(0);
    assert_eq!(prop(&out, "codex_status"), "cancelled");
    let closed = env
        .wait_post("the closed question", |p| {
            p.post.id == q.post.id && p.post.message.contains("No longer waiting")
        })
        .await;
    assert!(
        closed.post.message.contains("the turn ended")
            && closed
                .post
                .message
                .contains("Which color should the button be?"),
        "{}",
        closed.post.message
    );
    let resp = env.reply(&env.alice, &q.post.root_id, "Teal, please").await;
    assert_eq!(resp["handled"], true, "{resp}");
    let second = env.outcomes(2).await.remove(1);
    assert_eq!(prop(&second, "codex_status"), "answered");
    assert_eq!(env.audit("run.accepted").len(), 2);
    let answered = env.mm.read(|s| {
        s.posts
            .iter()
            .any(|p| p.post.message.contains("Answer from @alice"))
    });
    assert!(!answered, "{:#?}", env.summary());
    env.assert_one_outcome_per_run();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_footer_shows_the_rate_limit_headroom_codex_reports() {
    let env = Env::start(|_| {}).await;
    env.command("say hello").await;
    let plain = env.outcomes(1).await.remove(0);
    assert!(
        !plain.post.message.contains("limit"),
        "{}",
        plain.post.message
    );
    env.model.set_rate_limits(Some(RateLimits {
        primary: RateLimitWindow {
            used_percent: 42,
            window_minutes: 300,
        },
        secondary: Some(RateLimitWindow {
            used_percent: 10,
            window_minutes: 10080,
        }),
    }));
    env.command("say hello again").await;
    let out = env.outcomes(2).await.remove(1);
    assert!(
        out.post
            .message
            .contains("· 5h limit 42% used · weekly 10% used*"),
        "{}",
        out.post.message
    );
}
