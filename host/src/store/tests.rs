use super::*;
use crate::model::{RunMode, RunStatus};

fn run(id: &str, channel: &str) -> RunRow {
    RunRow {
        id: id.into(),
        root_id: "root".into(),
        channel_id: channel.into(),
        user_id: "u".into(),
        username: "alice".into(),
        project: "api".into(),
        prompt: "p".into(),
        mode: RunMode::New,
        status: RunStatus::Queued,
        progress_post_id: None,
        created_at: now_ms(),
        started_at: None,
        finished_at: None,
        exit_code: None,
        summary: None,
    }
}

#[test]
fn a_run_keeps_its_first_outcome() {
    let s = Store::open_in_memory().unwrap();
    s.insert_run(&run("r1", "c")).unwrap();
    s.mark_running("r1", RunMode::New).unwrap();
    assert!(s
        .finish_run("r1", RunStatus::Cancelled, &RunResult::default())
        .unwrap());
    assert!(!s
        .finish_run("r1", RunStatus::Answered, &RunResult::default())
        .unwrap());
    assert_eq!(s.run("r1").unwrap().unwrap().status, RunStatus::Cancelled);
}

#[test]
fn leftovers_are_interrupted_on_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    {
        let s = Store::open(&path).unwrap();
        s.insert_run(&run("r1", "c")).unwrap();
        s.mark_running("r1", RunMode::Resume).unwrap();
        s.insert_run(&run("r2", "c")).unwrap();
        s.insert_run(&run("r3", "c")).unwrap();
        s.finish_run("r3", RunStatus::Answered, &RunResult::default())
            .unwrap();
    }
    let s = Store::open(&path).unwrap();
    let left: Vec<String> = s
        .interrupt_leftovers()
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(left, vec!["r1", "r2"]);
    assert_eq!(s.run("r1").unwrap().unwrap().status, RunStatus::Interrupted);
    assert_eq!(s.run("r3").unwrap().unwrap().status, RunStatus::Answered);
    assert!(s.interrupt_leftovers().unwrap().is_empty());
}

#[test]
fn an_outcome_is_kept_in_full_until_its_post_is_confirmed() {
    let s = Store::open_in_memory().unwrap();
    for id in ["answered", "no-thread", "left"] {
        s.insert_run(&run(id, "c")).unwrap();
    }
    let body = "x".repeat(20_000);
    let outcome = OutcomeText {
        body: body.clone(),
        footer: "\n---\nfooter".into(),
    };
    let res = RunResult {
        summary: body.chars().take(500).collect(),
        outcome: Some(outcome.clone()),
        ..Default::default()
    };
    assert!(s.finish_run("answered", RunStatus::Answered, &res).unwrap());
    s.finish_run("no-thread", RunStatus::Failed, &RunResult::default())
        .unwrap();
    s.interrupt_leftovers().unwrap();
    let undelivered = s.undelivered_outcomes().unwrap();
    let ids: Vec<&str> = undelivered.iter().map(|(r, _)| r.id.as_str()).collect();
    assert_eq!(ids, ["answered", "left"]);
    assert_eq!(undelivered[0].1.as_ref(), Some(&outcome));
    assert_eq!(undelivered[1].1, None);
    s.mark_outcome_posted("answered").unwrap();
    s.mark_outcome_posted("left").unwrap();
    assert!(s.undelivered_outcomes().unwrap().is_empty());
    let kept: Option<String> = s
        .with(|c| {
            c.query_row(
                "SELECT outcome_body FROM runs WHERE id = 'answered'",
                [],
                |r| r.get(0),
            )
        })
        .unwrap();
    assert_eq!(kept, None, "the text is dropped once posted");
}

#[test]
fn a_nonce_is_spent_once() {
    let s = Store::open_in_memory().unwrap();
    assert!(s.spend_nonce("n1").unwrap());
    assert!(!s.spend_nonce("n1").unwrap());
}

#[test]
fn threads_and_channel_projects_round_trip() {
    let s = Store::open_in_memory().unwrap();
    assert_eq!(s.channel_project("c").unwrap(), None);
    s.set_channel_project("c", "api", "u").unwrap();
    s.set_channel_project("c", "web", "u").unwrap();
    assert_eq!(s.channel_project("c").unwrap().as_deref(), Some("web"));
    let t = ThreadRow {
        root_id: "r".into(),
        channel_id: "c".into(),
        project: "web".into(),
        codex_thread_id: None,
        bot_started: true,
        seen_until: 5,
    };
    s.insert_thread(&t).unwrap();
    assert_eq!(s.latest_thread("c", "web").unwrap(), None);
    s.set_codex_thread("r", "th-1").unwrap();
    s.set_seen_until("r", 3).unwrap();
    let got = s.latest_thread("c", "web").unwrap().unwrap();
    assert_eq!(got.codex_thread_id.as_deref(), Some("th-1"));
    assert_eq!(got.seen_until, 5);
}
