//! `worktree=on` projects, end to end: the real `codex-host serve`, the real Codex CLI and the
//! mock model. Each thread writes in its own git worktree on its own branch, under bubblewrap
//! isolation (the default), commits from inside the sandbox included; `/codex worktree` shows
//! it and `/codex worktree remove` cleans it up.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use serde_json::json;

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A host whose project `api` is a git repository (one commit on `main`) with `worktree=on`
/// (and `extra` options); returns it with the worktree directory.
async fn start() -> (Env, PathBuf) {
    start_with("").await
}

async fn start_with(extra: &str) -> (Env, PathBuf) {
    let mut trees = PathBuf::new();
    let env = Env::start(|s| {
        let projects = s["projects"].as_str().unwrap().to_string();
        let repo = PathBuf::from(projects.split_once('=').unwrap().1.trim());
        git(&repo, &["init", "-q", "-b", "main"]);
        std::fs::write(repo.join("README.md"), "# api\n").unwrap();
        git(&repo, &["add", "README.md"]);
        git(&repo, &["commit", "-q", "-m", "first"]);
        trees = repo.parent().unwrap().join("worktrees");
        s["projects"] = json!(format!("{projects} ; worktree=on{extra}"));
        s["worktree_dir"] = json!(trees.display().to_string());
    })
    .await;
    (env, trees)
}

fn short(root_id: &str) -> &str {
    &root_id[..8]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_threads_write_in_their_own_worktrees_and_the_main_checkout_is_untouched() {
    let (env, trees) = start().await;
    env.command("[[mock:patch]] first thread").await;
    env.command("[[mock:patch]] second thread").await;
    let outs = env.outcomes(2).await;
    let mut roots = vec![];
    for out in &outs {
        let m = &out.post.message;
        assert_eq!(prop(out, "codex_status"), "answered", "{m}");
        let root = out.post.root_id.clone();
        let branch = format!("codex/{}", short(&root));
        assert!(
            m.contains(&format!("Branch `{branch}`")),
            "the outcome names the branch: {m}"
        );
        let wt = trees.join("api").join(short(&root));
        assert_eq!(
            std::fs::read_to_string(wt.join("mock.txt")).unwrap().trim(),
            "hello from mock"
        );
        assert_eq!(git(&wt, &["branch", "--show-current"]), branch);
        roots.push(root);
    }
    assert_ne!(roots[0], roots[1]);
    assert!(!env.repo.join("mock.txt").exists());
    assert_eq!(git(&env.repo, &["status", "--porcelain"]), "");
    assert_eq!(git(&env.repo, &["branch", "--show-current"]), "main");

    // `/codex worktree` shows the thread's own; removing it needs --force while work is uncommitted.
    let r = env.command_in(&roots[0], "worktree").await;
    let text = r["text"].as_str().unwrap();
    assert!(
        text.contains(&format!("Branch `codex/{}`", short(&roots[0])))
            && text.contains("1 file with uncommitted changes")
            && text.contains("0 commits ahead of `main`"),
        "{text}"
    );
    let r = env.command_in(&roots[0], "worktree remove").await;
    assert!(
        r["text"]
            .as_str()
            .unwrap()
            .contains("1 file has uncommitted changes"),
        "{r}"
    );
    let wt = trees.join("api").join(short(&roots[0]));
    assert!(wt.exists());
    let r = env.command_in(&roots[0], "worktree remove --force").await;
    assert!(
        r["text"]
            .as_str()
            .unwrap()
            .starts_with("Removed this thread's worktree."),
        "{r}"
    );
    assert!(!wt.exists());
    assert!(trees.join("api").join(short(&roots[1])).exists());
    assert_eq!(env.audit("worktree.removed").len(), 1);
    env.assert_one_outcome_per_run();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_from_inside_the_sandbox_lands_on_the_threads_branch() {
    let (mut env, trees) = start().await;
    let health = env.call("GET", "/v1/health", None).await.1;
    assert_eq!(health["isolation"]["active"], true, "{health}");
    let main_head = git(&env.repo, &["rev-parse", "main"]);
    env.command("[[mock:sh:echo from-codex > feature.txt && git add feature.txt && git -c user.name=codex -c user.email=codex@example.com commit -q -m codex-commit && git log --oneline -1]]")
        .await;
    let out = env.outcomes(1).await.remove(0);
    let m = &out.post.message;
    assert_eq!(prop(&out, "codex_status"), "answered", "{m}");
    let branch = format!("codex/{}", short(&out.post.root_id));
    assert!(m.contains("codex-commit"), "the commit ran inside: {m}");
    assert_eq!(
        git(&env.repo, &["log", "-1", "--format=%s", &branch]),
        "codex-commit"
    );
    assert_eq!(git(&env.repo, &["rev-parse", "main"]), main_head);
    assert!(!env.repo.join("feature.txt").exists());
    let wt = trees.join("api").join(short(&out.post.root_id));
    assert_eq!(git(&wt, &["status", "--porcelain"]), "");

    // The thread's next run is in the same worktree, even after the Worktree directory setting
    // changed, and `/codex worktree` counts the commit.
    let moved = trees.with_file_name("worktrees-moved");
    env.settings["worktree_dir"] = json!(moved.display().to_string());
    env.push_config().await;
    env.reply(
        &env.alice,
        &out.post.root_id,
        "[[mock:sh:pwd; git log --oneline -1]]",
    )
    .await;
    let next = env.outcomes(2).await.remove(1);
    assert!(
        next.post.message.contains("codex-commit")
            && next.post.message.contains(&wt.display().to_string()),
        "{}",
        next.post.message
    );
    assert!(!moved.exists());
    let r = env.command_in(&out.post.root_id, "worktree").await;
    let text = r["text"].as_str().unwrap();
    assert!(
        text.contains("No uncommitted changes") && text.contains("1 commit ahead of `main`"),
        "{text}"
    );
    // Clean: removed without --force; the branch and its commit stay.
    let r = env.command_in(&out.post.root_id, "worktree remove").await;
    assert!(r["text"].as_str().unwrap().starts_with("Removed"), "{r}");
    assert!(!wt.exists());
    assert_eq!(
        git(&env.repo, &["log", "-1", "--format=%s", &branch]),
        "codex-commit"
    );
}

/// With Codex's own sandbox off, bubblewrap alone keeps the run to its worktree and the git
/// files a commit needs: the main checkout is not there, and the main repository's hooks, config
/// and other branches cannot be changed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sandbox_exposes_only_what_a_commit_needs_of_the_main_repository() {
    let (env, _trees) = start_with(" ; sandbox=danger-full-access").await;
    let git_dir = env.repo.join(".git");
    let main_head = git(&env.repo, &["rev-parse", "main"]);
    let probe = format!(
        "ls {repo}/README.md >/dev/null 2>&1 && echo checkout-visible || echo checkout-hidden; \
         touch {g}/hooks/post-commit 2>/dev/null && echo hook-written || echo hook-refused; \
         echo x >> {g}/config 2>/dev/null && echo config-written || echo config-refused; \
         git update-ref refs/heads/main HEAD~0 2>/dev/null && echo main-moved || echo main-refused; \
         test -f README.md && echo own-checkout",
        repo = env.repo.display(),
        g = git_dir.display()
    );
    env.command(&format!("[[mock:sh:{probe}]]")).await;
    let out = env.outcomes(1).await.remove(0);
    let m = &out.post.message;
    assert_eq!(prop(&out, "codex_status"), "answered", "{m}");
    for want in [
        "checkout-hidden",
        "hook-refused",
        "config-refused",
        "main-refused",
        "own-checkout",
    ] {
        assert!(m.contains(want), "{want}: {m}");
    }
    assert!(!git_dir.join("hooks/post-commit").exists());
    assert_eq!(git(&env.repo, &["rev-parse", "main"]), main_head);
}
