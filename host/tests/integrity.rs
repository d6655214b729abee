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
    assert!(ack["text"].as_str().unwrap_or_default().contains("belongs to another channel"), "{ack}");
    assert_eq!(env.model.requests().len(), requests_before, "the forged thread reached the model");
    assert_eq!(env.mm.posts().len(), posts_before, "the forged thread posted: {:#?}", env.summary());
    let refused = env.audit("request.refused");
    assert!(refused.iter().any(|a| a.to_string().contains("thread-in-other-channel")), "{refused:#?}");

    // The same thread from its own channel still continues the session.
    env.command_in(&root, "what was the word?").await;
    let second = env.outcomes(2).await.remove(1);
    assert_eq!(second.post.root_id, root);
    assert_eq!(prop(&second, "codex_status"), "answered", "{}", second.post.message);
}
