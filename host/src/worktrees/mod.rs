//! Git worktrees for projects with `worktree=on`: each Mattermost thread works in its own
//! worktree, on its own branch `codex/<short thread id>`, so two threads on one repository never
//! edit the same files.
//!
//! The one place the host runs `git`. Every call has a timeout, runs without a terminal, prompts
//! or the host's environment beyond `PATH` and `HOME`, and gets only paths and names this module
//! built or checked (a thread id must be an id). Input: a repository, the worktree directory, a
//! thread's root id; output: the worktree's path and branch, its status, and what a run's sandbox
//! must bind of the main repository. Posts nothing and stores nothing.
//!
//! A run can rewrite anything in its worktree (the `.git` file included) and its own admin
//! directory (`commondir` included), so the host never lets those tell it where the repository
//! is: the git directories come from the project's repository, and git runs in a worktree with
//! `GIT_DIR`, `GIT_COMMON_DIR` and `GIT_WORK_TREE` set and `core.fsmonitor` off, so a planted
//! config cannot make the host's git run a command outside the sandbox.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

/// Longer than any local git operation takes; a git waiting on a lock or a hook gives up here.
const GIT_TIMEOUT: Duration = Duration::from_secs(60);
/// Branches of threads are `codex/<short id>`.
pub const BRANCH_PREFIX: &str = "codex";
/// Mattermost ids are 26 random characters; 8 of them tell threads of one repository apart.
const SHORT_ID_LEN: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum WorktreeError {
    #[error("`{0}` is not a thread id")]
    BadId(String),
    #[error("`{0}` cannot name a worktree directory")]
    BadProject(String),
    #[error("{} is not a git repository with a commit to branch from ({detail})", .repo.display())]
    NotARepo { repo: PathBuf, detail: String },
    #[error("`git {args}` failed: {detail}")]
    Git { args: String, detail: String },
    #[error("`git {0}` did not finish within {secs} s", secs = GIT_TIMEOUT.as_secs())]
    Timeout(String),
    #[error("git could not be started: {0}")]
    Spawn(std::io::Error),
    #[error("{path}: {err}", path = .path.display())]
    Io { path: PathBuf, err: std::io::Error },
    /// `remove` without force found work that would be lost.
    #[error("{0} uncommitted change(s)")]
    Dirty(usize),
}

type Result<T> = std::result::Result<T, WorktreeError>;

/// A thread's worktree: where it is and which branch it has checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Worktree {
    pub path: PathBuf,
    pub branch: String,
}

impl Worktree {
    /// Where the worktree of thread `root_id` of `project` lives under `dir`, and its branch.
    pub fn layout(dir: &Path, project: &str, root_id: &str) -> Result<Worktree> {
        let short = short_id(root_id)?;
        if project.is_empty()
            || project.starts_with('.')
            || !project
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(WorktreeError::BadProject(project.into()));
        }
        Ok(Worktree {
            path: dir.join(project).join(short),
            branch: format!("{BRANCH_PREFIX}/{short}"),
        })
    }
}

/// The first characters of a thread id, checked to be one: letters and digits (`-` and `_`
/// inside, as in the terminal's `local-1`), so it is safe as a path component and a branch name.
pub fn short_id(root_id: &str) -> Result<&str> {
    if root_id.is_empty()
        || root_id.len() > 64
        || !root_id.starts_with(|c: char| c.is_ascii_alphanumeric())
        || !root_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(WorktreeError::BadId(root_id.into()));
    }
    Ok(&root_id[..root_id.len().min(SHORT_ID_LEN)])
}

/// What a sandboxed run needs of the main repository to use git in its worktree.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SandboxPaths {
    /// The main repository's git directory (its history, config and hooks), read-only.
    pub read_only: Vec<PathBuf>,
    /// Bound writable over it: the worktree's own admin directory (its `HEAD`, index, reflog),
    /// the object store (a commit writes objects) and the `codex/` branches and their reflogs.
    pub writable: Vec<PathBuf>,
}

/// How a worktree differs from where it started.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Status {
    /// Files with uncommitted changes (untracked ones included).
    pub changed: usize,
    /// The branch the main checkout is on, which ahead/behind compare with (`None`: detached).
    pub base: Option<String>,
    pub ahead: u32,
    pub behind: u32,
}

/// Adding and removing worktrees one at a time: two threads of one repository starting together
/// would otherwise race on its worktree registry.
static CHANGING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Creates the worktree (and its branch from the main checkout's `HEAD`) unless it exists; an
/// existing branch is checked out again, so a removed worktree comes back with its commits.
pub async fn ensure(repo: &Path, wt: &Worktree) -> Result<()> {
    let _one_at_a_time = CHANGING.lock().await;
    if wt.path.join(".git").exists() {
        return Ok(());
    }
    if let Err(e) = git(repo, &["rev-parse", "--verify", "--quiet", "HEAD^{commit}"]).await {
        return Err(WorktreeError::NotARepo {
            repo: repo.to_path_buf(),
            detail: detail_of(e),
        });
    }
    if let Some(parent) = wt.path.parent() {
        std::fs::create_dir_all(parent).map_err(|err| WorktreeError::Io {
            path: parent.to_path_buf(),
            err,
        })?;
    }
    // A worktree deleted by hand leaves its registration behind, which would block `add`.
    git(repo, &["worktree", "prune"]).await?;
    let path = path_arg(&wt.path)?;
    let branch_ref = format!("refs/heads/{}", wt.branch);
    let exists = git(repo, &["rev-parse", "--verify", "--quiet", &branch_ref])
        .await
        .is_ok();
    if exists {
        git(repo, &["worktree", "add", "--", path, &wt.branch]).await?;
    } else {
        git(
            repo,
            &["worktree", "add", "-b", &wt.branch, "--", path, "HEAD"],
        )
        .await?;
    }
    Ok(())
}

/// The main repository's git directory and the worktree's admin directory in it, found from the
/// project's repository (which runs cannot change), never from the worktree.
struct GitDirs {
    common: PathBuf,
    admin: PathBuf,
}

async fn git_dirs(repo: &Path, wt: &Worktree) -> Result<GitDirs> {
    let common = PathBuf::from(
        git(
            repo,
            &["rev-parse", "--path-format=absolute", "--git-common-dir"],
        )
        .await?,
    );
    // `git worktree add` names the admin directory after the worktree's directory, which is the
    // thread's short id: unique among the repository's worktrees.
    let name = wt.path.file_name().unwrap_or_default();
    let admin = common.join("worktrees").join(name);
    if !admin.join("HEAD").is_file() {
        return Err(WorktreeError::Git {
            args: "worktree list".into(),
            detail: format!(
                "{} is not registered as a worktree of {}",
                wt.path.display(),
                repo.display()
            ),
        });
    }
    Ok(GitDirs { common, admin })
}

/// What a sandbox must bind for git to work in `wt`, commits included; creates the branch and
/// reflog directories so that they can be bound.
pub async fn sandbox_paths(repo: &Path, wt: &Worktree) -> Result<SandboxPaths> {
    let GitDirs { common, admin } = git_dirs(repo, wt).await?;
    let mut writable = vec![admin, common.join("objects")];
    for dir in ["refs/heads", "logs/refs/heads"] {
        let d = common.join(dir).join(BRANCH_PREFIX);
        std::fs::create_dir_all(&d).map_err(|err| WorktreeError::Io {
            path: d.clone(),
            err,
        })?;
        writable.push(d);
    }
    Ok(SandboxPaths {
        read_only: vec![common],
        writable,
    })
}

/// The worktree's uncommitted changes and how its branch compares with the main checkout's.
pub async fn status(repo: &Path, wt: &Worktree) -> Result<Status> {
    let changed = changed_files(repo, wt).await?;
    let base = git(repo, &["symbolic-ref", "--quiet", "--short", "HEAD"])
        .await
        .ok()
        .filter(|b| !b.is_empty());
    let (mut ahead, mut behind) = (0, 0);
    if let Some(base) = &base {
        let range = format!("refs/heads/{base}...refs/heads/{}", wt.branch);
        let counts = git(repo, &["rev-list", "--left-right", "--count", &range]).await?;
        let mut n = counts.split_whitespace().map(|n| n.parse().unwrap_or(0));
        behind = n.next().unwrap_or(0);
        ahead = n.next().unwrap_or(0);
    }
    Ok(Status {
        changed,
        base,
        ahead,
        behind,
    })
}

/// Removes the worktree; its branch (and so its commits) stays. Without `force`, a worktree with
/// uncommitted changes is kept and [`WorktreeError::Dirty`] says how many files would be lost.
pub async fn remove(repo: &Path, wt: &Worktree, force: bool) -> Result<()> {
    let _one_at_a_time = CHANGING.lock().await;
    if wt.path.exists() {
        if !force {
            let changed = changed_files(repo, wt).await?;
            if changed > 0 {
                return Err(WorktreeError::Dirty(changed));
            }
        }
        let path = path_arg(&wt.path)?;
        git(repo, &["worktree", "remove", "--force", "--", path]).await?;
    }
    git(repo, &["worktree", "prune"]).await.map(|_| ())
}

async fn changed_files(repo: &Path, wt: &Worktree) -> Result<usize> {
    let GitDirs { common, admin } = git_dirs(repo, wt).await?;
    let pinned = [
        ("GIT_DIR", admin.as_os_str()),
        ("GIT_COMMON_DIR", common.as_os_str()),
        ("GIT_WORK_TREE", wt.path.as_os_str()),
    ];
    let args = [
        "-c",
        "core.fsmonitor=false",
        "status",
        "--porcelain",
        "--untracked-files=all",
        "--ignore-submodules=all",
    ];
    let out = git_with(&wt.path, &args, &pinned).await?;
    Ok(out.lines().filter(|l| !l.trim().is_empty()).count())
}

/// A path as one argument; git gets it after `--`, so even a path starting with `-` is a path.
fn path_arg(p: &Path) -> Result<&str> {
    p.to_str().ok_or_else(|| WorktreeError::Io {
        path: p.to_path_buf(),
        err: std::io::Error::new(std::io::ErrorKind::InvalidInput, "not UTF-8"),
    })
}

fn detail_of(e: WorktreeError) -> String {
    match e {
        WorktreeError::Git { detail, .. } => detail,
        other => other.to_string(),
    }
}

/// Runs `git -C dir args...` and returns its trimmed stdout.
async fn git(dir: &Path, args: &[&str]) -> Result<String> {
    git_with(dir, args, &[]).await
}

/// [`git`] with extra environment variables.
async fn git_with(dir: &Path, args: &[&str], env: &[(&str, &OsStr)]) -> Result<String> {
    let mut cmd = tokio::process::Command::new("git");
    cmd.arg("-C")
        .arg(dir)
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .env(
            "PATH",
            std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into()),
        )
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    if let Some(home) = std::env::var_os("HOME") {
        cmd.env("HOME", home);
    }
    let shown = args.join(" ");
    let out = match tokio::time::timeout(GIT_TIMEOUT, cmd.output()).await {
        Err(_) => return Err(WorktreeError::Timeout(shown)),
        Ok(Err(e)) => return Err(WorktreeError::Spawn(e)),
        Ok(Ok(o)) => o,
    };
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).trim().to_string());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let detail = stderr
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("no message")
        .to_string();
    Err(WorktreeError::Git {
        args: shown,
        detail,
    })
}

#[cfg(test)]
mod tests;
