use super::*;
use crate::chat::Post;
use crate::gate::Decision;
use crate::testing::{user, Scripted, TestHost};

#[test]
fn typos_of_subcommands_are_caught_but_prompts_are_not() {
    assert!(looks_like_subcommand("stauts"));
    assert!(looks_like_subcommand("projcts"));
    assert_eq!(closest_subcommand("stauts"), "status");
    assert!(!looks_like_subcommand("refactor"));
    assert!(!looks_like_subcommand("hello"));
}

#[test]
fn the_subcommand_list_has_one_entry_per_name() {
    let mut names: Vec<&str> = SUBCOMMANDS.iter().map(|s| s.name).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), SUBCOMMANDS.len());
    assert_eq!(subcommand("STATUS").map(|s| s.name), Some("status"));
    assert_eq!(subcommand("stauts"), None);
    // Only the prompt-taking subcommands post in the channel.
    let posting: Vec<&str> = SUBCOMMANDS
        .iter()
        .filter(|s| !s.answer_only)
        .map(|s| s.name)
        .collect();
    assert_eq!(posting, ["new", "continue"]);
}

#[tokio::test]
async fn help_lists_every_subcommand_and_the_projects() {
    let t = TestHost::new(Scripted::allow(), |_| {}).await;
    let r = t.command(&user("alice"), "").await;
    assert_eq!(r, t.command(&user("alice"), "HELP").await);
    assert_eq!(
        r.text,
        "#### Codex for Mattermost\n\
`/codex <prompt>` — ask Codex. At channel level this starts a new thread; inside a thread it continues that thread's session.\n\
`/codex new <prompt>` — always start a new thread and session.\n\
`/codex continue <prompt>` — continue this channel's latest session for the active project.\n\
`/codex project [name]` — show or set the active project for this channel.\n\
`/codex projects` — list configured projects.\n\
`/codex status` — what is running or queued here (for system admins: on the whole host, with the policy modules).\n\
`/codex last` — the latest run in this channel.\n\
`/codex cancel` — cancel the run in this thread (or your latest run in this channel).\n\
`/codex policy` — what the policy would decide for you here, and why.\n\
`/codex worktree [remove [--force]]` — in a thread of a `worktree=on` project: its worktree and branch, or remove it.\n\
`/codex runner add <name> | list | remove <name>` — system admins: machines that run `codex-host connect` for the projects marked `runner=<name>`.\n\
`/codex help` — this text.\n\n\
Replies in a Codex thread continue the same session. Active project here: `api`. Projects: api, web."
    );
}

#[tokio::test]
async fn an_unknown_subcommand_gets_a_suggestion_and_runs_nothing() {
    let t = TestHost::new(Scripted::allow(), |_| {}).await;
    let r = t.command(&user("alice"), "stauts").await;
    assert_eq!(r.response_type, "ephemeral");
    assert!(
        r.text
            .starts_with("Unknown command `stauts`. Did you mean `/codex status`?"),
        "{}",
        r.text
    );
    assert!(t.chat().posts().is_empty());
    assert!(t.gate.asked.lock().unwrap().is_empty());
    assert_eq!(t.host.store().last_run("town-id").unwrap(), None);
}

#[tokio::test]
async fn a_project_is_chosen_per_channel_among_the_configured_ones() {
    let t = TestHost::new(Scripted::allow(), |_| {}).await;
    let alice = user("alice");
    let r = t.command(&alice, "project").await;
    assert!(
        r.text.starts_with("Active project in ~town: `api`."),
        "{}",
        r.text
    );

    let r = t.command(&alice, "project web").await;
    assert_eq!(r.text, "Active project in ~town is now `web`.");
    assert_eq!(
        t.host
            .store()
            .channel_project("town-id")
            .unwrap()
            .as_deref(),
        Some("web")
    );
    let r = t.command(&alice, "projects").await;
    assert!(
        r.text.contains("- `web` — the website · **active here**"),
        "{}",
        r.text
    );

    let r = t.command(&alice, "project nope").await;
    assert_eq!(r.text, "There is no project `nope`. Configured: api, web.");
    assert_eq!(
        t.host
            .store()
            .channel_project("town-id")
            .unwrap()
            .as_deref(),
        Some("web")
    );
}

#[tokio::test]
async fn a_denied_person_cannot_switch_the_project() {
    let gate = Scripted::new(Decision::Deny {
        reason: "not on the allowlist".into(),
    });
    let t = TestHost::new(gate, |_| {}).await;
    let r = t.command(&user("mallory"), "project web").await;
    assert_eq!(
        r.text,
        "You cannot change the project here: not on the allowlist"
    );
    assert_eq!(t.host.store().channel_project("town-id").unwrap(), None);
    // The question the policy got: a new run in `web`, by mallory.
    let asked = t.gate.asked.lock().unwrap();
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0].user.username, "mallory");
    assert_eq!(asked[0].project.as_ref().unwrap().0, "web");
}

#[tokio::test]
async fn status_shows_the_channels_runs_and_the_hosts_slots() {
    let gate = Scripted::new(Decision::RequireApproval {
        approvers: vec!["bob".into()],
        min_approvals: 1,
        reason: "deploys need a second pair of eyes".into(),
        expiry: std::time::Duration::from_secs(600),
        allow_self_approval: false,
        limits: Default::default(),
    });
    let t = TestHost::new(gate, |_| {}).await;
    let r = t.command(&user("alice"), "status").await;
    assert_eq!(
        r.text,
        "Nothing is running or queued in this channel.\n\nOn this host: 0 of 2 run slots busy, 0 waiting; run isolation off."
    );

    // A run waiting for approval in a thread is listed with its thread, and holds no slot.
    let root = t.chat().add_post(Post {
        channel_id: "town-id".into(),
        user_id: "alice-id".into(),
        message: "the deploy is stuck".into(),
        ..Default::default()
    });
    let accepted = t
        .submit(&user("alice"), &root.id, "deploy it")
        .await
        .unwrap();
    assert!(accepted.needs_approval);
    let root = root.id;
    let r = t.command(&user("carol"), "status").await;
    assert!(
        r.text.starts_with(&format!(
            "- `api` for @alice — queued — [thread](http://mattermost.test/team/pl/{root})\n\nOn this host: 0 of 2 run slots busy, 0 waiting"
        )),
        "{}",
        r.text
    );
    t.host.shutdown(std::time::Duration::from_secs(5)).await;
}

#[tokio::test]
async fn status_shows_a_system_admin_the_whole_host_and_the_policy_modules() {
    let t = TestHost::new(Scripted::allow(), |_| {}).await;
    let mut admin = user("root");
    admin.roles.push("system_admin".into());
    let r = t.command(&user("alice"), "status").await;
    assert!(
        r.text
            .starts_with("Nothing is running or queued in this channel."),
        "{}",
        r.text
    );
    assert!(!r.text.contains("Policy modules"), "{}", r.text);
    let r = t.command(&admin, "status").await;
    assert!(
        r.text
            .starts_with("Nothing is running or queued on this host."),
        "{}",
        r.text
    );
    assert!(
        r.text.contains("Policy modules: none loaded."),
        "{}",
        r.text
    );
}
