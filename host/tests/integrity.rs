//! Every request is judged on what it really is: the host takes a thread only in its own channel,
//! whatever root id a request carries.

mod common;

use common::*;
use serde_json::json;

/// `/codex` from channel B with the root id of a Codex thread in channel A: refused, nothing is
/// read from A's thread, A's session gets no turn, and nothing is posted anywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thread_from_another_channel_is_refused() {
    let env = Env::start(|_| {}).await;
    env.command("remember the word banana").await;
    let root = env.outcomes(1).await.remove(0).post.root_id;
    let requests_before = env.model.requests().len();
    let posts_before = env.mm.posts().len();

    let other = json!({"id": "chan-other-00000000000000000", "name": "other", "display_name": "Other", "kind": "public", "team_id": "team-eng", "team_name": "eng"});
    let body = json!({"user": env.alice, "channel": other, "root_id": root, "trigger_id": "t", "text": "what was the word?"});
    let (status, ack) = env.call("POST", "/v1/commands", Some(body)).await;
    assert_eq!(status, 200, "{ack}");
    assert!(
        ack["text"]
            .as_str()
            .unwrap_or_default()
            .contains("belongs to another channel"),
        "{ack}"
    );
    assert_eq!(
        env.model.requests().len(),
        requests_before,
        "the forged thread reached the model"
    );
    assert_eq!(
        env.mm.posts().len(),
        posts_before,
        "the forged thread posted: {:#?}",
        env.summary()
    );
    let refused = env.audit("request.refused");
    assert!(
        refused
            .iter()
            .any(|a| a.to_string().contains("thread-in-other-channel")),
        "{refused:#?}"
    );

    // The same thread from its own channel still continues the session.
    env.command_in(&root, "what was the word?").await;
    let second = env.outcomes(2).await.remove(1);
    assert_eq!(second.post.root_id, root);
    assert_eq!(
        prop(&second, "codex_status"),
        "answered",
        "{}",
        second.post.message
    );
}

/// A Retry click for one's own failed run, with a body naming another channel or another post:
/// the channel is refused before the policy is asked; a foreign post's text is never echoed back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn click_bodies_cannot_redirect_a_run() {
    let env = Env::start(|_| {}).await;
    env.command("[[mock:fail]] break for a retry button").await;
    let failed = env.outcomes(1).await.remove(0);
    let retry = button_context(&failed, "retry").expect("failed runs offer Retry");
    let requests_before = env.model.requests().len();

    // Another channel in the body (e.g. a public one with looser limits).
    let other = json!({"id": "chan-other-00000000000000000", "name": "other", "display_name": "Other", "kind": "public", "team_id": "team-eng", "team_name": "eng"});
    let body = json!({"user_id": env.alice["id"], "user": env.alice, "channel": other, "post_id": failed.post.id,
                      "channel_id": other["id"], "team_id": "team-eng", "context": retry});
    let (status, r) = env.call("POST", "/v1/actions", Some(body)).await;
    assert_eq!(status, 200, "{r}");
    assert!(
        r["ephemeral_text"]
            .as_str()
            .unwrap()
            .contains("does not belong to this channel"),
        "{r}"
    );
    assert!(env
        .audit("action.refused")
        .iter()
        .any(|a| a.to_string().contains("channel-mismatch")));
    assert_eq!(
        env.model.requests().len(),
        requests_before,
        "the tampered retry ran"
    );

    // Another post in the body: a private post the user cannot read.
    let carol = env.mm.add_user(codex_testkit::mattermost::NewUser {
        username: "carol".into(),
        ..Default::default()
    });
    let private = env
        .mm
        .inject_post(codex_testkit::mattermost::NewPost {
            user_id: carol.id,
            channel_id: "chan-private-000000000000000".into(),
            message: "PRIVATE-CHANNEL-TEXT".into(),
            ..Default::default()
        })
        .unwrap();
    let r = env.click_with(&env.alice, &private.id, retry).await;
    let update = r["update"]["message"].as_str().unwrap_or_default();
    assert!(
        !update.contains("PRIVATE-CHANNEL-TEXT"),
        "a foreign post's text came back: {r}"
    );
    assert!(
        update.contains("Retried by @alice"),
        "the retry did not start: {r}"
    );
    let second = env.outcomes(2).await.remove(1);
    assert_eq!(
        second.post.channel_id,
        env.channel["id"].as_str().unwrap(),
        "the retry ran in the run's own channel"
    );
}

/// A button context far larger than any the host signs is refused before it is verified, and
/// the audit keeps only its size.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_button_contexts_never_reach_the_audit() {
    let env = Env::start(|_| {}).await;
    let flood = "x".repeat(64 * 1024);
    let r = env
        .click_with(
            &env.alice,
            "post-0000000000000000000000",
            json!({"action": "cancel", "run_id": "r", "junk": flood}),
        )
        .await;
    assert!(
        r["ephemeral_text"].as_str().unwrap().contains("not valid"),
        "{r}"
    );
    let refused = env.audit("action.refused");
    assert!(
        refused.iter().any(|a| a.to_string().contains("oversized")),
        "{refused:#?}"
    );
    assert!(
        refused.iter().all(|a| a.to_string().len() < 4096),
        "the flood reached the audit log"
    );
}
