//! What people read about a thread's git worktree (`worktree=on` projects): the branch line of
//! an outcome, `/codex worktree`, its removal, and the note pruning leaves in a thread.

use std::time::Duration;

use super::{human_duration, plural};

/// What `/codex worktree` shows of one worktree.
#[derive(Debug, Clone, Default)]
pub struct WorktreeView<'a> {
    pub project: &'a str,
    pub path: &'a str,
    pub branch: &'a str,
    /// `None` when the worktree directory is gone.
    pub changed: Option<usize>,
    /// The main checkout's branch, when it is on one.
    pub base: Option<&'a str>,
    pub ahead: u32,
    pub behind: u32,
    pub idle: Duration,
    /// Idle worktrees are removed after this long; `None`: never.
    pub prune_after: Option<Duration>,
}

/// `3 days` once it is days, else `2h 5m`.
fn idle_time(d: Duration) -> String {
    let days = d.as_secs() / 86_400;
    if days >= 2 {
        format!("{days} days")
    } else {
        human_duration(d)
    }
}

/// The line an outcome post ends with when the run worked in a thread's worktree.
pub fn branch_line(branch: &str) -> String {
    format!("\n*Branch `{branch}` (`/codex worktree` in this thread shows it)*")
}

/// `/codex worktree` in a thread that has one.
pub fn status(v: &WorktreeView) -> String {
    let mut s = format!(
        "**Worktree** of this thread · `{}`\nBranch `{}` in `{}`",
        v.project, v.branch, v.path
    );
    match v.changed {
        None => s.push_str(
            "\nThe directory is gone; the thread's next run creates it again from the branch.",
        ),
        Some(0) => s.push_str("\nNo uncommitted changes."),
        Some(n) => s.push_str(&format!(
            "\n{n} file{} with uncommitted changes.",
            plural(n)
        )),
    }
    if let Some(base) = v.base {
        s.push_str(&format!(
            "\n{} commit{} ahead of `{base}`, {} behind.",
            v.ahead,
            plural(v.ahead as usize),
            v.behind
        ));
    }
    s.push_str(&format!("\nLast used {} ago", idle_time(v.idle)));
    match v.prune_after {
        Some(after) => s.push_str(&format!(
            "; removed after {} idle (never with uncommitted changes).",
            idle_time(after)
        )),
        None => s.push('.'),
    }
    s.push_str("\nRemove it with `/codex worktree remove`; the branch stays.");
    s
}

pub fn none_here(project_uses_worktrees: bool) -> String {
    if project_uses_worktrees {
        "This thread has no worktree yet: its first Codex run creates one, on its own branch."
            .into()
    } else {
        "This thread has no worktree. Threads get one (a git worktree on their own branch) when their project has `worktree=on` in the **Projects** setting.".into()
    }
}

pub fn outside_thread() -> String {
    "Use `/codex worktree` inside a Codex thread: each thread of a `worktree=on` project has its own.".into()
}

pub fn removed(branch: &str, forced: bool) -> String {
    let lost = if forced {
        " Its uncommitted changes were discarded."
    } else {
        ""
    };
    format!("Removed this thread's worktree.{lost} The branch `{branch}` and its commits stay in the repository (delete it with `git branch -D {branch}`); the thread's next run checks it out again.")
}

pub fn remove_refused_dirty(changed: usize) -> String {
    format!(
        "The worktree was not removed: {changed} file{} ha{} uncommitted changes that removing it would lose. Commit them (ask Codex in this thread), or discard them with `/codex worktree remove --force`.",
        plural(changed),
        if changed == 1 { "s" } else { "ve" }
    )
}

pub fn remove_refused_running() -> String {
    "The worktree was not removed: a Codex run in this thread is using it. Wait for it to finish or `/codex cancel` it first.".into()
}

pub fn remove_refused_user() -> String {
    "Only someone who ran Codex in this thread, or a system admin, can remove its worktree.".into()
}

/// Why a run in a `worktree=on` project could not start.
pub fn prepare_failed(error: &str) -> String {
    format!("the thread's git worktree could not be prepared: {error}. An admin can check the project's repository and the **Worktree directory** setting.")
}

/// The note pruning leaves in a thread whose idle worktree it kept.
pub fn prune_skipped(branch: &str, changed: usize, idle: Duration) -> String {
    format!(
        ":warning: This thread's worktree (branch `{branch}`) has been idle for {} and would have been removed, but {changed} file{} ha{} uncommitted changes, so it was kept. Commit them or remove it with `/codex worktree remove --force`.",
        idle_time(idle),
        plural(changed),
        if changed == 1 { "s" } else { "ve" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_names_the_branch_and_counts() {
        let s = status(&WorktreeView {
            project: "api",
            path: "/w/api/abcdefgh",
            branch: "codex/abcdefgh",
            changed: Some(2),
            base: Some("main"),
            ahead: 1,
            behind: 3,
            idle: Duration::from_secs(120),
            prune_after: Some(Duration::from_secs(14 * 86400)),
        });
        assert!(
            s.contains("Branch `codex/abcdefgh` in `/w/api/abcdefgh`"),
            "{s}"
        );
        assert!(s.contains("2 files with uncommitted changes"), "{s}");
        assert!(s.contains("1 commit ahead of `main`, 3 behind"), "{s}");
        assert!(s.contains("removed after 14 days idle"), "{s}");
    }
}
