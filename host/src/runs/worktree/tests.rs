use std::path::Path;
use std::process::Command;

use super::*;
use crate::protocol::{CommandRequest, User};
use crate::testing::{channel, user, Scripted, TestHost};

const DAY: i64 = 86_400_000;

/// A host whose project `api` is a git repository with `worktree=on`.
async fn host() -> (TestHost, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("api");
    std::fs::create_dir(&repo).unwrap();
    for args in [
        &["init", "-q", "-b", "main"][..],
        &["commit", "-q", "--allow-empty", "-m", "first"],
    ] {
        let ok = Command::new("git")
            .arg("-C")
            .arg(&repo)
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
            .args(args)
            .status()
            .unwrap()
            .success();
        assert!(ok);
    }
    let (projects, trees) = (
        format!("api = {} ; worktree=on", repo.display()),
        dir.path().join("trees").display().to_string(),
    );
    let t = TestHost::new(Scripted::allow(), |s| {
        s.projects = projects;
        s.worktree_dir = trees;
    })
    .await;
    (t, dir)
}

/// A worktree for thread `root_id`, last used `age` ms ago, with `dirty` uncommitted files.
async fn worktree(t: &TestHost, root_id: &str, age: i64, dirty: bool) -> Worktree {
    let cfg = t.host.config().unwrap();
    let project = &cfg.projects["api"];
    let wt = Worktree::layout(&t.host.worktree_dir(&cfg), "api", root_id).unwrap();
    worktrees::ensure(&project.repo, &wt).await.unwrap();
    if dirty {
        std::fs::write(wt.path.join("wip.txt"), "unsaved\n").unwrap();
    }
    t.host
        .store
        .use_worktree(&WorktreeRow {
            root_id: root_id.into(),
            channel_id: channel().id,
            project: "api".into(),
            repo: project.repo.display().to_string(),
            path: wt.path.display().to_string(),
            branch: wt.branch.clone(),
            last_used_at: now_ms() - age,
            dirty_noted: false,
        })
        .unwrap();
    wt
}

fn in_thread(who: &User, root_id: &str, text: &str) -> CommandRequest {
    CommandRequest {
        user: who.clone(),
        channel: channel(),
        root_id: root_id.into(),
        text: text.into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn idle_clean_worktrees_are_pruned_and_dirty_ones_kept_with_a_note() {
    let (t, _dir) = host().await;
    let old_clean = worktree(&t, "oldclean0000", 15 * DAY, false).await;
    let old_dirty = worktree(&t, "olddirty0000", 20 * DAY, true).await;
    let recent = worktree(&t, "recent000000", DAY, false).await;

    let pruned = t.host.prune_worktrees(now_ms()).await;
    assert_eq!(
        pruned,
        Pruned {
            removed: vec!["oldclean0000".into()],
            kept_dirty: vec!["olddirty0000".into()],
        }
    );
    assert!(!old_clean.path.exists() && old_dirty.path.exists() && recent.path.exists());
    assert!(t.host.store.worktree("oldclean0000").unwrap().is_none());
    let notes = t.chat().thread("olddirty0000");
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(
        notes[0]
            .message
            .contains("1 file has uncommitted changes, so it was kept")
            && notes[0].message.contains("`codex/olddirty`"),
        "{}",
        notes[0].message
    );
    // The thread is told once, not every hour.
    t.host.prune_worktrees(now_ms()).await;
    assert_eq!(t.chat().thread("olddirty0000").len(), 1);
}

#[tokio::test]
async fn the_worktree_command_shows_and_removes_with_care() {
    let (t, _dir) = host().await;
    let wt = worktree(&t, "thread000001", 0, true).await;
    let admin = User {
        roles: vec!["system_user".into(), "system_admin".into()],
        ..user("root")
    };
    let r = t
        .host
        .command(in_thread(&user("bob"), "thread000001", "worktree"))
        .await;
    assert!(
        r.text.contains("Branch `codex/thread00`")
            && r.text.contains(&wt.path.display().to_string())
            && r.text.contains("1 file with uncommitted changes")
            && r.text.contains("0 commits ahead of `main`"),
        "{}",
        r.text
    );
    let r = t
        .host
        .command(in_thread(&user("bob"), "thread000001", "worktree remove"))
        .await;
    assert!(r.text.contains("Only someone who ran Codex"), "{}", r.text);
    let r = t
        .host
        .command(in_thread(&admin, "thread000001", "worktree remove"))
        .await;
    assert!(
        r.text.contains("1 file has uncommitted changes"),
        "{}",
        r.text
    );
    assert!(wt.path.exists());
    let r = t
        .host
        .command(in_thread(&admin, "thread000001", "worktree remove --force"))
        .await;
    assert!(
        r.text.starts_with("Removed this thread's worktree."),
        "{}",
        r.text
    );
    assert!(!wt.path.exists());
    let r = t
        .host
        .command(in_thread(&admin, "thread000001", "worktree"))
        .await;
    assert!(r.text.contains("no worktree"), "{}", r.text);
    let r = t.host.command(in_thread(&admin, "", "worktree")).await;
    assert!(r.text.contains("inside a Codex thread"), "{}", r.text);
    assert!(Path::new(&t.host.worktree_dir(&t.host.config().unwrap())).exists());
}
