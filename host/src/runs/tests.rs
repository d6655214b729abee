//! Runs end to end in memory, with the real runner starting a "Codex" that fails.

use std::time::Duration;

use crate::buttons::ButtonAction;
use crate::chat::Post;
use crate::gate::{Action, Decision};
use crate::model::{RunMode, RunStatus};
use crate::protocol::{IncomingPost, PostKind, PostRequest, User};
use crate::testing::{channel, user, Scripted, TestHost, BOT};

/// `who` posts `message` in the channel (in `root_id`'s thread, or as a new root).
fn say(t: &TestHost, who: &User, root_id: &str, message: &str) -> Post {
    t.chat().add_post(Post {
        channel_id: channel().id,
        root_id: root_id.into(),
        user_id: who.id.clone(),
        message: message.into(),
        ..Default::default()
    })
}

/// The plugin forwarding `post` (`POST /v1/posts`).
async fn forward(t: &TestHost, who: &User, post: &Post) -> crate::protocol::PostResponse {
    forward_as(t, who, post, true).await
}

async fn forward_as(
    t: &TestHost,
    who: &User,
    post: &Post,
    bot_can_post: bool,
) -> crate::protocol::PostResponse {
    t.host
        .reply(PostRequest {
            user: who.clone(),
            channel: channel(),
            post: IncomingPost {
                id: post.id.clone(),
                root_id: post.root_id.clone(),
                channel_id: post.channel_id.clone(),
                user_id: post.user_id.clone(),
                message: post.message.clone(),
                file_ids: vec![],
                create_at: post.create_at,
            },
            bot_can_post,
        })
        .await
}

#[tokio::test]
async fn a_run_whose_codex_fails_ends_in_exactly_one_outcome_post() {
    let t = TestHost::new(Scripted::allow(), |_| {}).await;
    let accepted = t
        .submit(&user("alice"), "", "fix the flaky login test")
        .await
        .unwrap();
    assert_eq!(accepted.position, 0);
    let run_id = accepted.run_id.clone();
    assert_eq!(accepted.outcome().await, RunStatus::Failed);

    let roots = t.posts_of(PostKind::Root, &run_id);
    assert_eq!(roots.len(), 1);
    let root = &roots[0];
    assert!(root.root_id.is_empty());
    assert!(root.message.contains("fix the flaky login test"));

    let outcomes = t.posts_of(PostKind::Outcome, &run_id);
    assert_eq!(outcomes.len(), 1, "{:#?}", t.chat().posts());
    let outcome = &outcomes[0];
    assert_eq!(outcome.root_id, root.id);
    assert_eq!(outcome.props["codex_status"], "failed");
    assert!(
        outcome.message.starts_with(":x: **Codex failed** (exit 1)"),
        "{}",
        outcome.message
    );
    // A failed run offers Retry.
    assert_eq!(outcome.props["attachments"][0]["actions"][0]["id"], "retry");

    // The progress post ends showing the outcome, without its Cancel button.
    let progress = t.posts_of(PostKind::Progress, &run_id);
    assert_eq!(progress.len(), 1);
    assert_eq!(progress[0].props["codex_status"], "failed");
    assert!(progress[0].props.get("attachments").is_none());

    let run = t.host.store().run(&run_id).unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(run.exit_code, Some(1));
    assert!(t.host.store().undelivered_outcomes().unwrap().is_empty());
    // Nothing but the root, the progress post and the outcome.
    assert_eq!(t.chat().posts().len(), 3);
    assert!(t.chat().posts().iter().all(|p| p.user_id == BOT));
}

#[tokio::test]
async fn a_codex_that_is_not_installed_fails_the_run_saying_so() {
    let t = TestHost::new(Scripted::allow(), |s| {
        s.codex_path = "/nonexistent/codex".into()
    })
    .await;
    let accepted = t.submit(&user("alice"), "", "hello").await.unwrap();
    let run_id = accepted.run_id.clone();
    assert_eq!(accepted.outcome().await, RunStatus::Failed);
    let outcomes = t.posts_of(PostKind::Outcome, &run_id);
    assert_eq!(outcomes.len(), 1);
    assert!(
        outcomes[0].message.contains("/nonexistent/codex"),
        "{}",
        outcomes[0].message
    );
}

#[tokio::test]
async fn a_denied_prompt_is_refused_and_leaves_no_trace_in_the_channel() {
    let gate = Scripted::new(Decision::Deny {
        reason: "you are not on the allowlist".into(),
    });
    let t = TestHost::new(gate, |_| {}).await;
    let refusal = t
        .submit(&user("mallory"), "", "rm -rf /")
        .await
        .err()
        .unwrap();
    assert_eq!(refusal, "Codex did not run: you are not on the allowlist");
    assert!(t.chat().posts().is_empty());
    assert_eq!(t.host.store().last_run("town-id").unwrap(), None);
    let r = t.command(&user("mallory"), "rm -rf /").await;
    assert_eq!(
        r.text,
        "Codex did not run: you are not on the allowlist\nYour prompt was: rm -rf /"
    );
}

#[tokio::test]
async fn retry_on_a_failed_run_starts_a_new_run_in_the_same_thread() {
    let t = TestHost::new(Scripted::allow(), |_| {}).await;
    let alice = user("alice");
    let accepted = t.submit(&alice, "", "fix it").await.unwrap();
    let first = accepted.run_id.clone();
    assert_eq!(accepted.outcome().await, RunStatus::Failed);
    let outcome = t.posts_of(PostKind::Outcome, &first).remove(0);

    // Only the requester (or an admin) may retry.
    let r = t
        .click(&user("bob"), ButtonAction::Retry, &first, &outcome.id)
        .await;
    assert_eq!(
        r.ephemeral_text,
        "Only @alice (who started this run) or a system admin can retry it."
    );

    let r = t
        .click(&alice, ButtonAction::Retry, &first, &outcome.id)
        .await;
    let update = r.update.expect("the outcome post is updated");
    assert!(update
        .message
        .ends_with("*Retried by @alice: the new run follows in this thread.*"));
    assert!(update.message.starts_with(":x: **Codex failed**"));
    t.host.shutdown(std::time::Duration::from_secs(10)).await;
    let retried = t.host.store().last_run("town-id").unwrap().unwrap();
    assert_ne!(retried.id, first);
    assert_eq!(retried.root_id, outcome.root_id);
    assert_eq!(retried.prompt, "fix it");
}

#[tokio::test]
async fn a_prompt_in_a_peoples_thread_is_judged_with_the_thread_codex_gets() {
    let t = TestHost::new(Scripted::allow(), |_| {}).await;
    let sam = user("sam");
    t.chat().add_user(sam.clone());
    let root = say(&t, &sam, "", "login fails since the deploy");
    say(&t, &sam, &root.id, "here is the log: connection refused");
    let accepted = t
        .submit(&user("alice"), &root.id, "find the cause")
        .await
        .unwrap();
    let run_id = accepted.run_id.clone();

    let asked = t.gate.asked.lock().unwrap().clone();
    // Sam is asked about as an author of the context (labelled, never enforced)...
    assert!(asked
        .iter()
        .any(|r| r.user.username == "sam" && r.action == Action::Continue && r.context.is_none()));
    // ...and Alice's prompt is judged together with the transcript Codex will get.
    let judged = asked.iter().find(|r| r.user.username == "alice").unwrap();
    assert_eq!(judged.action, Action::Continue);
    assert_eq!(judged.prompt, "find the cause");
    let context = judged.context.as_deref().expect("the thread is context");
    assert!(
        context.contains("login fails since the deploy"),
        "{context}"
    );
    assert!(context.contains("connection refused"), "{context}");
    assert!(context.contains("@sam"), "{context}");
    let accepted_audit = t.host.store().audit_of_kind("run.accepted").unwrap();
    assert_eq!(accepted_audit[0].1["context_messages"], 2);

    assert_eq!(accepted.outcome().await, RunStatus::Failed);
    // A new Codex session bound to the people's thread: no root post of the bot's.
    assert!(t.posts_of(PostKind::Root, &run_id).is_empty());
    let run = t.host.store().run(&run_id).unwrap().unwrap();
    assert_eq!(run.mode, RunMode::Bind);
    assert_eq!(run.root_id, root.id);
    assert!(
        !t.host
            .store()
            .thread(&root.id)
            .unwrap()
            .unwrap()
            .bot_started
    );
}

#[tokio::test]
async fn a_reply_in_the_bots_thread_continues_it_and_other_threads_are_left_alone() {
    let t = TestHost::new(Scripted::allow(), |_| {}).await;
    let alice = user("alice");
    let first = t.submit(&alice, "", "fix it").await.unwrap();
    let first_id = first.run_id.clone();
    assert_eq!(first.outcome().await, RunStatus::Failed);
    let root = t.posts_of(PostKind::Root, &first_id).remove(0);

    // People talking in their own thread are not talking to Codex.
    let lunch = say(&t, &alice, "", "lunch?");
    let r = forward(&t, &alice, &say(&t, &alice, &lunch.id, "anyone?")).await;
    assert!(!r.handled);

    let reply = say(&t, &alice, &root.id, "try again with the logs");
    let r = forward(&t, &alice, &reply).await;
    assert!(r.handled);
    assert_eq!(r.ephemeral_text, "");
    t.host.shutdown(Duration::from_secs(10)).await;

    let second = t.host.store().last_run("town-id").unwrap().unwrap();
    assert_ne!(second.id, first_id);
    assert_eq!(second.root_id, root.id);
    assert_eq!(second.prompt, "try again with the logs");
    // The reply is the prompt, not context; the bot's own posts are never context.
    let asked = t.gate.asked.lock().unwrap();
    let judged = asked.last().unwrap();
    assert_eq!(judged.prompt, "try again with the logs");
    assert_eq!(judged.context, None);
}

#[tokio::test]
async fn a_mention_at_channel_level_starts_a_thread_on_that_post_like_codex_new() {
    let t = TestHost::new(Scripted::allow(), |_| {}).await;
    let alice = user("alice");

    // Not a mention of the bot: ignored, nothing judged.
    let r = forward(&t, &alice, &say(&t, &alice, "", "ask @codexbot about it")).await;
    assert!(!r.handled);
    // A mention with nothing to do: told how, nothing judged.
    let r = forward(&t, &alice, &say(&t, &alice, "", "@codex")).await;
    assert!(r.handled);
    assert!(
        r.ephemeral_text.contains("@codex fix the flaky login test"),
        "{}",
        r.ephemeral_text
    );
    assert!(t.gate.asked.lock().unwrap().is_empty());

    // Where the bot may not post yet, the plugin is asked to give it access first.
    let post = say(&t, &alice, "", "@codex, fix the flaky login test");
    let r = forward_as(&t, &alice, &post, false).await;
    assert!(r.needs_bot_access && r.handled);
    assert!(t.host.store().last_run("town-id").unwrap().is_none());

    let r = forward(&t, &alice, &post).await;
    assert!(r.handled);
    assert_eq!(r.ephemeral_text, "");
    t.host.shutdown(Duration::from_secs(10)).await;
    let run = t.host.store().last_run("town-id").unwrap().unwrap();
    assert_eq!(run.prompt, "fix the flaky login test");
    assert_eq!(run.root_id, post.id, "the mention itself roots the thread");
    let outcome = t.posts_of(PostKind::Outcome, &run.id);
    assert_eq!(outcome.len(), 1);
    assert_eq!(outcome[0].root_id, post.id);
    // Judged exactly as `/codex <prompt>`: a new session, without the post as context.
    let asked = t.gate.asked.lock().unwrap();
    let judged = asked.last().unwrap();
    assert_eq!(judged.action, Action::New);
    assert_eq!(judged.prompt, "fix the flaky login test");
    assert_eq!(judged.context, None);
    // Later replies in that thread continue it without a mention.
    let thread = t.host.store().thread(&post.id).unwrap().unwrap();
    assert!(thread.bot_started);
}

#[tokio::test]
async fn a_mention_in_peoples_thread_works_like_codex_typed_there() {
    let t = TestHost::new(Scripted::allow(), |_| {}).await;
    let (alice, bob) = (user("alice"), user("bob"));
    let root = say(&t, &bob, "", "the login test flakes on CI");
    let post = say(&t, &alice, &root.id, "@codex look into it");
    let r = forward(&t, &alice, &post).await;
    assert!(r.handled);
    t.host.shutdown(Duration::from_secs(10)).await;
    let run = t.host.store().last_run("town-id").unwrap().unwrap();
    assert_eq!(run.root_id, root.id);
    assert_eq!(run.prompt, "look into it");
    let asked = t.gate.asked.lock().unwrap();
    let judged = asked.last().unwrap();
    assert_eq!(judged.action, Action::Continue);
    // Bob's root post reaches Codex as labelled context.
    assert!(judged
        .context
        .as_deref()
        .unwrap_or_default()
        .contains("the login test flakes on CI"));
}
