//! Outcome posts against a failing Mattermost and a failing database: every accepted prompt ends
//! in exactly one outcome post, whether the server fails before or after saving, the host's
//! database refuses writes, Mattermost stays down longer than a run retries, or settings pushes
//! race each other after a restart.

mod common;

use codex_testkit::mattermost::Fault;
use common::*;

/// Starts a run and waits until it is under way (its progress post is made and Codex asked the
/// model), so that the next `POST /api/v4/posts` is its outcome.
async fn start_run(env: &Env, prompt: &str) {
    env.command(prompt).await;
    env.wait_post("progress post", |p| kind(p) == "progress")
        .await;
    env.model.wait_for_requests(1, WAIT).await.unwrap();
}

fn post_fault(status: u16, count: u32, after: bool) -> Fault {
    Fault {
        status,
        count,
        path_prefix: "/api/v4/posts".into(),
        method: Some("POST".into()),
        after,
    }
}

fn creates(env: &Env) -> Vec<u16> {
    env.mm
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path == "/api/v4/posts")
        .map(|r| r.status)
        .collect()
}

fn outcome_count(env: &Env) -> usize {
    env.mm
        .posts()
        .iter()
        .filter(|p| kind(p) == "outcome")
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_5xx_after_the_outcome_was_saved_does_not_post_it_twice() {
    let env = Env::start(|_| {}).await;
    start_run(&env, "[[mock:slow:1]] answer through a slow proxy").await;
    env.mm.inject_fault(post_fault(502, 1, true));
    let out = env.outcomes(1).await.remove(0);
    assert!(
        out.post.message.starts_with("Slow answer done."),
        "{}",
        out.post.message
    );
    env.wait_log("run ended").await;
    // Root, progress, then the outcome: saved but answered 502, retried, answered with the saved post.
    assert_eq!(creates(&env), [201, 201, 502, 201]);
    env.assert_one_outcome_per_run();
    assert_eq!(outcome_count(&env), 1, "{:#?}", env.summary());
    // Every create the host made carries a pending_post_id; the outcome's names its run.
    for p in env.mm.posts() {
        let pending = p.history[0].request["pending_post_id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(
            pending.starts_with(&format!("{}:", env.mm.bot().id)),
            "{pending:?} on {:?}",
            p.post.message
        );
    }
    let pending = out.history[0].request["pending_post_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        pending.ends_with(&format!("{}:outcome", prop(&out, "codex_run_id"))),
        "{pending}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_5xx_before_the_outcome_was_saved_is_retried_once() {
    let env = Env::start(|_| {}).await;
    start_run(&env, "[[mock:slow:1]] answer through a flaky server").await;
    env.mm.inject_fault(post_fault(503, 2, false));
    let out = env.outcomes(1).await.remove(0);
    assert!(
        out.post.message.starts_with("Slow answer done."),
        "{}",
        out.post.message
    );
    env.wait_log("run ended").await;
    assert_eq!(creates(&env), [201, 201, 503, 503, 201]);
    env.assert_one_outcome_per_run();
    assert_eq!(outcome_count(&env), 1, "{:#?}", env.summary());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_refuses_writes_does_not_lose_the_answer() {
    let env = Env::start(|_| {}).await;
    start_run(&env, "[[mock:slow:2]] answer with a full disk").await;
    // Another process holds the write lock while the run ends: every write the host tries fails
    // (SQLITE_BUSY after its busy timeout), as a full disk would fail them.
    let db = env.state_dir.join("codex-host.db");
    let lock = rusqlite::Connection::open(&db).unwrap();
    lock.busy_timeout(std::time::Duration::from_secs(10))
        .unwrap();
    lock.execute_batch("BEGIN EXCLUSIVE").unwrap();

    let out = env.outcomes(1).await.remove(0);
    assert!(
        out.post.message.starts_with("Slow answer done."),
        "{}",
        out.post.message
    );
    env.wait_log("the outcome is posted but still not recorded")
        .await;
    assert!(
        env.log()
            .contains("could not record the run's outcome; posting it anyway"),
        "{}",
        env.log()
    );
    lock.execute_batch("ROLLBACK").unwrap();

    // The next settings push writes what the database refused; nothing is posted again.
    env.push_config().await;
    env.wait_log_count("redelivery finished", 2).await;
    let store = codex_host::store::Store::open(&db).unwrap();
    let run = store.run(&prop(&out, "codex_run_id")).unwrap().unwrap();
    assert_eq!(run.status, codex_host::model::RunStatus::Answered);
    assert!(store.undelivered_outcomes().unwrap().is_empty());
    env.assert_one_outcome_per_run();
    assert_eq!(outcome_count(&env), 1, "{:#?}", env.summary());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outcome_mattermost_refused_through_the_run_is_posted_whole_after_the_next_push() {
    let env = Env::start(|_| {}).await;
    // Longer than one post: two parts, which must both arrive whole (not a 500-character summary).
    start_run(
        &env,
        "[[mock:long:20000]] a long answer while Mattermost is down",
    )
    .await;
    env.mm.inject_fault(post_fault(503, 1000, false));
    env.wait_log("the outcome is kept in the store and posted on the next settings push")
        .await;
    assert_eq!(outcome_count(&env), 0);

    env.mm.clear_faults();
    env.push_config().await;
    let out = env.outcomes(1).await.remove(0);
    assert!(
        out.post.message.contains("END-OF-LONG-ANSWER"),
        "{}",
        out.post.message
    );
    assert!(
        out.post.message.contains("*(part 2 of 2)*"),
        "{}",
        out.post.message
    );
    // (The first redelivery was the one at start.)
    env.wait_log_count("redelivery finished", 2).await;
    let parts: Vec<_> = env
        .mm
        .posts()
        .into_iter()
        .filter(|p| kind(p) == "answer_part")
        .collect();
    assert_eq!(parts.len(), 1, "{:#?}", env.summary());
    assert!(
        parts[0].post.message.starts_with("*(part 1 of 2)*"),
        "{}",
        parts[0].post.message
    );

    // Another push finds nothing left to send.
    env.push_config().await;
    env.wait_log_count("redelivery finished", 3).await;
    env.assert_one_outcome_per_run();
    assert_eq!(outcome_count(&env), 1, "{:#?}", env.summary());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quick_settings_pushes_after_a_restart_tell_an_interrupted_run_once() {
    let mut env = Env::start(|_| {}).await;
    start_run(&env, "[[mock:slow:20]] interrupted by a crash").await;
    env.crash_host().await;
    // Slow answers make the notices' creates overlap with the pushes that follow.
    env.mm.inject_fault(post_fault(503, 2, false));
    env.start_host().await;
    tokio::join!(env.push_config(), env.push_config(), env.push_config());
    env.wait_log_count("redelivery finished", 4).await;
    let out = env.outcomes(1).await.remove(0);
    assert_eq!(prop(&out, "codex_status"), "interrupted");
    env.assert_one_outcome_per_run();
    assert_eq!(outcome_count(&env), 1, "{:#?}", env.summary());
}
