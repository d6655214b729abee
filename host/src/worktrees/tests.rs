use std::path::Path;
use std::process::Command;

use super::*;

const T1: &str = "abcdefgh1234567890abcdefgh";
const T2: &str = "zyxwvuts1234567890abcdefgh";

/// A repository with one commit on `main`, and a directory for worktrees.
fn repo() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    std::fs::create_dir(&repo).unwrap();
    sh(&repo, &["init", "-q", "-b", "main"]);
    std::fs::write(repo.join("README"), "hello\n").unwrap();
    sh(&repo, &["add", "README"]);
    sh(&repo, &["commit", "-q", "-m", "first"]);
    let trees = dir.path().join("worktrees");
    (dir, repo, trees)
}

fn sh(dir: &Path, args: &[&str]) -> String {
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

#[test]
fn thread_ids_are_checked_and_shortened() {
    assert_eq!(short_id(T1).unwrap(), "abcdefgh");
    assert_eq!(short_id("abc").unwrap(), "abc");
    assert_eq!(short_id("local-1").unwrap(), "local-1");
    for bad in ["", "../../etc", "a b", "-rf", "_x", "x;y", "a/b"] {
        assert!(
            matches!(short_id(bad), Err(WorktreeError::BadId(_))),
            "{bad}"
        );
    }
    let wt = Worktree::layout(Path::new("/w"), "api", T1).unwrap();
    assert_eq!(wt.path, Path::new("/w/api/abcdefgh"));
    assert_eq!(wt.branch, "codex/abcdefgh");
    assert!(Worktree::layout(Path::new("/w"), "..", T1).is_err());
}

#[tokio::test]
async fn a_thread_gets_its_worktree_once_and_two_threads_get_two_branches() {
    let (_dir, repo, trees) = repo();
    let one = Worktree::layout(&trees, "api", T1).unwrap();
    ensure(&repo, &one).await.unwrap();
    std::fs::write(one.path.join("work.txt"), "in progress\n").unwrap();
    // The same thread again: the same worktree, its work still there.
    ensure(&repo, &one).await.unwrap();
    assert!(one.path.join("work.txt").exists());
    assert_eq!(
        sh(&one.path, &["branch", "--show-current"]),
        "codex/abcdefgh"
    );

    let two = Worktree::layout(&trees, "api", T2).unwrap();
    ensure(&repo, &two).await.unwrap();
    assert_eq!(
        sh(&two.path, &["branch", "--show-current"]),
        "codex/zyxwvuts"
    );
    assert!(!two.path.join("work.txt").exists());
    // The main checkout is untouched and still on its branch.
    assert_eq!(sh(&repo, &["status", "--porcelain"]), "");
    assert_eq!(sh(&repo, &["branch", "--show-current"]), "main");

    let s = status(&repo, &one).await.unwrap();
    assert_eq!(
        s,
        Status {
            changed: 1,
            base: Some("main".into()),
            ahead: 0,
            behind: 0
        }
    );
    sh(&one.path, &["add", "work.txt"]);
    sh(&one.path, &["commit", "-q", "-m", "work"]);
    let s = status(&repo, &one).await.unwrap();
    assert_eq!((s.changed, s.ahead, s.behind), (0, 1, 0));
}

#[tokio::test]
async fn remove_refuses_uncommitted_changes_unless_forced_and_keeps_the_branch() {
    let (_dir, repo, trees) = repo();
    let wt = Worktree::layout(&trees, "api", T1).unwrap();
    ensure(&repo, &wt).await.unwrap();
    std::fs::write(wt.path.join("README"), "changed\n").unwrap();
    std::fs::write(wt.path.join("new.txt"), "new\n").unwrap();
    assert!(matches!(
        remove(&repo, &wt, false).await,
        Err(WorktreeError::Dirty(2))
    ));
    assert!(wt.path.exists());
    remove(&repo, &wt, true).await.unwrap();
    assert!(!wt.path.exists());
    assert_eq!(
        sh(&repo, &["branch", "--list", "codex/*"]),
        "codex/abcdefgh"
    );
    // The thread's next run gets its branch back.
    ensure(&repo, &wt).await.unwrap();
    assert_eq!(
        sh(&wt.path, &["branch", "--show-current"]),
        "codex/abcdefgh"
    );
    // A clean worktree goes without force; one deleted by hand is forgotten too.
    remove(&repo, &wt, false).await.unwrap();
    ensure(&repo, &wt).await.unwrap();
    std::fs::remove_dir_all(&wt.path).unwrap();
    remove(&repo, &wt, false).await.unwrap();
    assert!(!sh(&repo, &["worktree", "list"]).contains("abcdefgh"));
}

#[tokio::test]
async fn a_repository_without_commits_is_named_in_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let wt = Worktree::layout(&dir.path().join("w"), "api", T1).unwrap();
    let err = ensure(dir.path(), &wt).await.unwrap_err().to_string();
    assert!(err.contains("is not a git repository"), "{err}");
}

#[tokio::test]
async fn the_sandbox_paths_cover_what_a_commit_writes() {
    let (_dir, repo, trees) = repo();
    let wt = Worktree::layout(&trees, "api", T1).unwrap();
    ensure(&repo, &wt).await.unwrap();
    let p = sandbox_paths(&repo, &wt).await.unwrap();
    let git_dir = std::fs::canonicalize(repo.join(".git")).unwrap();
    let canon: Vec<PathBuf> = p
        .writable
        .iter()
        .map(|w| std::fs::canonicalize(w).unwrap())
        .collect();
    assert_eq!(
        canon,
        [
            git_dir.join("worktrees/abcdefgh"),
            git_dir.join("objects"),
            git_dir.join("refs/heads/codex"),
            git_dir.join("logs/refs/heads/codex"),
        ]
    );
    assert_eq!(
        p.read_only
            .iter()
            .map(|r| std::fs::canonicalize(r).unwrap())
            .collect::<Vec<_>>(),
        [git_dir]
    );
}

/// A run can rewrite its worktree's `.git` file and its admin directory's `commondir`; the
/// host's git must neither follow them elsewhere nor run a command a planted config names.
#[tokio::test]
async fn what_a_run_rewrites_does_not_steer_the_hosts_git() {
    let (dir, repo, trees) = repo();
    let wt = Worktree::layout(&trees, "api", T1).unwrap();
    ensure(&repo, &wt).await.unwrap();
    let before = sandbox_paths(&repo, &wt).await.unwrap();
    let marker = dir.path().join("fsmonitor-ran");
    let fake = wt.path.join("fake-git");
    sh(&wt.path, &["init", "-q", "--bare", fake.to_str().unwrap()]);
    let evil = format!(
        "[core]\n\tbare = false\n\tfsmonitor = \"touch {}\"\n",
        marker.display()
    );
    std::fs::write(fake.join("config"), &evil).unwrap();
    std::fs::write(
        wt.path.join(".git"),
        format!("gitdir: {}\n", fake.display()),
    )
    .unwrap();
    let admin = &before.writable[0];
    std::fs::write(admin.join("commondir"), format!("{}\n", fake.display())).unwrap();

    assert_eq!(sandbox_paths(&repo, &wt).await.unwrap(), before);
    let s = status(&repo, &wt).await.unwrap();
    assert!(s.changed >= 1, "{s:?}");
    assert!(matches!(
        remove(&repo, &wt, false).await,
        Err(WorktreeError::Dirty(_))
    ));
    assert!(!marker.exists(), "the host's git ran a planted fsmonitor");
}
