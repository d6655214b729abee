//! The posts a person reads: progress, answers and outcomes, approval requests (Codex's own in
//! `asks`), access requests (`access`), the thread root, help, the transcript Codex gets and the texts about a thread's git
//! worktree (`worktree`). One-line answers and refusals (a command's reply, why a
//! prompt was refused) are written where they are decided, in `commands` and `runs`.
//!
//! Input: run state and texts; output: Mattermost markdown strings (or terminal text for
//! `codex-host run`, which uses the same strings). Never does I/O. Every text that leaves the host
//! with Codex output in it goes through [`redact`] first.

mod access;
mod asks;
mod limits;
mod progress;
mod redact;
mod split;
mod status;
mod transcript;
pub mod worktree;

use std::time::Duration;

pub use access::{
    access_answered, access_closed, access_grant_failed, access_no_approvers, access_not_permitted,
    access_pending, access_request, access_requested,
};
pub use asks::{
    answered, ask_closed, ask_declined, ask_granted_before, ask_request, question, question_closed,
    question_unanswered, steer_waits, steered, AskView, Asked, Question, QuestionClosed,
};
pub use limits::headroom;
pub use progress::{progress, PlanItem, Progress};
pub use redact::Redactor;
pub use split::{
    layout_answer, part_label, rendered_lines, split_message, Layout, PHONE_LINES, POST_MAX_RUNES,
};
pub use status::policy_modules;
pub use transcript::{fence_tag, transcript, ContextMessage, Source, Transcript};

use crate::model::{RateLimits, RunStatus};

/// A short description of the step Codex is on, for the progress post. Redacted before it is
/// cut, so a secret cut in half is still recognised.
pub fn step_command(r: &Redactor, command: &str) -> String {
    format!("Running `{}`", one_line(&r.redact(command), 120))
}

pub fn step_files(r: &Redactor, paths: &[String]) -> String {
    let names: Vec<String> = paths
        .iter()
        .map(|p| format!("`{}`", file_name(p)))
        .collect();
    format!("Editing {}", one_line(&r.redact(&names.join(", ")), 160))
}

pub fn step_other(r: &Redactor, what: &str) -> String {
    one_line(&r.redact(what), 140)
}

/// The progress post once the run has ended: one line, so the thread stays readable on a phone.
pub fn progress_final(status: RunStatus, project: &str, elapsed: Duration) -> String {
    let (icon, word) = status_words(status);
    format!("{icon} **{word}** · `{project}` · {}", clock(elapsed))
}

/// Facts for the footer under an answer.
#[derive(Debug, Clone, Default)]
pub struct Footer<'a> {
    pub project: &'a str,
    pub elapsed: Duration,
    pub files_changed: usize,
    /// Lines the turn's diff adds and removes.
    pub lines_added: u64,
    pub lines_removed: u64,
    pub exit_code: Option<i32>,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// The account's usage windows, when Codex reported them.
    pub rate_limits: RateLimits,
    /// The requester to @-mention, so that a long run's end reaches their phone.
    pub notify: Option<&'a str>,
}

pub fn footer(f: &Footer) -> String {
    let mut parts = vec![format!("`{}`", f.project), human_duration(f.elapsed)];
    if f.files_changed > 0 {
        let mut changed = format!(
            "{} file{} changed",
            f.files_changed,
            plural(f.files_changed)
        );
        if f.lines_added + f.lines_removed > 0 {
            changed.push_str(&format!(" (+{} −{})", f.lines_added, f.lines_removed));
        }
        parts.push(changed);
    }
    if let Some(code) = f.exit_code {
        parts.push(format!("exit {code}"));
    }
    if f.input_tokens + f.output_tokens > 0 {
        parts.push(format!(
            "{} in / {} out tokens",
            thousands(f.input_tokens),
            thousands(f.output_tokens)
        ));
    }
    parts.extend(headroom(&f.rate_limits));
    let notify = f.notify.map(|u| format!(" · @{u}")).unwrap_or_default();
    format!("\n\n---\n*{}*{notify}", parts.join(" · "))
}

/// The answer body: Codex's last message, or a note when it gave none.
pub fn answer(last_message: Option<&str>) -> String {
    match last_message.map(str::trim) {
        Some(m) if !m.is_empty() => m.to_string(),
        _ => "Codex finished without a final message.".to_string(),
    }
}

pub fn failed(exit_code: Option<i32>, message: &str, stderr_tail: &str) -> String {
    let code = exit_code
        .map(|c| format!(" (exit {c})"))
        .unwrap_or_default();
    let mut s = format!(
        ":x: **Codex failed**{code}: {}",
        if message.is_empty() {
            "no error message"
        } else {
            message
        }
    );
    if !stderr_tail.trim().is_empty() {
        s.push_str(&format!("\n```\n{}\n```", stderr_tail.trim()));
    }
    s.push_str("\nReply in this thread to try again, or ask an admin to check the host log.");
    s
}

pub fn cancelled(by: &str, partial: Option<&str>) -> String {
    with_partial(format!(":stop_sign: **Cancelled** by @{by}."), partial)
}

pub fn timed_out(limit: Duration, partial: Option<&str>) -> String {
    with_partial(
        format!(
            ":stopwatch: **Timed out** after {} (the run timeout set by your admin). Reply to continue where it stopped.",
            human_duration(limit)
        ),
        partial,
    )
}

/// `@a, @b` from usernames (or ids), with or without their leading `@`.
pub fn mentions(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("@{}", n.trim().trim_start_matches('@')))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What an approver sees: what will run, where, for whom, why, who may decide, until when.
pub fn approval_request(a: &ApprovalView) -> String {
    let rules = if a.rules.is_empty() {
        String::new()
    } else {
        format!(
            " (rule {})",
            a.rules
                .iter()
                .map(|r| format!("`{r}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let who = mentions(a.approvers);
    let need = if a.min_approvals == 1 {
        "one of them must approve".to_string()
    } else {
        format!("{} of them must approve", a.min_approvals)
    };
    let model = a.model.map_or("Codex's default model".to_string(), |m| {
        format!("model `{m}`")
    });
    let mut s = format!(
        ":raised_hand: **Approval needed** · `{}` · requested by @{}\n{}\n**Why:** {}{rules}\n**Runs with:** sandbox `{}` · timeout {} · {model}\n**Approvers:** {who} — {need}. Expires in {}.",
        a.project,
        a.requester,
        quote(&one_line_block(a.prompt, 1_000)),
        a.reason,
        a.sandbox,
        human_duration(a.timeout),
        human_duration(a.expires_in),
    );
    s.push_str(&match a.context {
        Some(t) if t.messages > 0 => format!(
            "\n**Context:** with {} message{} of thread context from {}.",
            t.messages,
            plural(t.messages),
            mentions(&t.authors)
        ),
        _ => "\n**Context:** the prompt only, no thread context.".to_string(),
    });
    if !a.approved_by.is_empty() {
        s.push_str(&format!(
            "\nApproved so far by {}.",
            mentions(a.approved_by)
        ));
    }
    s
}

pub struct ApprovalView<'a> {
    pub requester: &'a str,
    pub project: &'a str,
    pub prompt: &'a str,
    pub reason: &'a str,
    pub rules: &'a [String],
    pub approvers: &'a [String],
    pub min_approvals: u32,
    pub expires_in: Duration,
    pub approved_by: &'a [String],
    /// What the run gets once approved: the policy's limits are kept, never lifted.
    pub sandbox: &'a str,
    pub timeout: Duration,
    pub model: Option<&'a str>,
    /// The thread context frozen with the request, if any.
    pub context: Option<&'a Transcript>,
}

pub fn approval_closed(word: &str, by: &[String], prompt: &str) -> String {
    let by = if by.is_empty() {
        String::new()
    } else {
        format!(" by {}", mentions(by))
    };
    format!(
        ":raised_hand: **Approval {word}**{by}\n{}",
        quote(&one_line(prompt, 300))
    )
}

pub fn denied(by: &str, reason: &str) -> String {
    format!(":no_entry: **Denied** by @{by}. Codex did not run ({reason}).")
}

pub fn approval_expired(reason: &str) -> String {
    format!(":no_entry: **Not run**: nobody approved this request before it expired ({reason}).")
}

pub fn cancelling(by: &str) -> String {
    format!(":stop_sign: **Cancelling** · requested by @{by}. The outcome follows in this thread.")
}

pub fn retried(message: &str, by: &str) -> String {
    format!("{message}\n\n*Retried by @{by}: the new run follows in this thread.*")
}

pub fn interrupted() -> String {
    ":warning: **Interrupted**: the Codex host restarted while this run was in progress. Reply in this thread to run it again.".into()
}

pub fn refused(reason: &str) -> String {
    format!(":no_entry: **Not run**: {reason}")
}

fn with_partial(mut s: String, partial: Option<&str>) -> String {
    if let Some(p) = partial.filter(|p| !p.trim().is_empty()) {
        s.push_str("\n\nLast message before it stopped:\n\n");
        s.push_str(p.trim());
    }
    s
}

/// Root post of a thread the bot starts for a channel-level `/codex`.
pub fn thread_root(username: &str, project: &str, prompt: &str) -> String {
    format!(
        "@{username} asked Codex in `{project}`:\n{}",
        quote(&one_line_block(prompt, 2_000))
    )
}

/// `/codex help`: `usage` has one line per subcommand, in the order shown.
pub fn help(usage: &[&str], projects: &str, active: Option<&str>) -> String {
    let active = active
        .map(|a| format!("Active project here: `{a}`."))
        .unwrap_or_else(|| "No project is active here yet.".into());
    format!(
        "#### Codex for Mattermost\n\
`/codex <prompt>` — ask Codex. At channel level this starts a new thread; inside a thread it continues that thread's session.\n\
{}\n\n\
Replies in a Codex thread continue the same session. {active} Projects: {projects}.",
        usage.join("\n")
    )
}

pub fn status_words(status: RunStatus) -> (&'static str, &'static str) {
    match status {
        RunStatus::AwaitingApproval => (":raised_hand:", "Awaiting approval"),
        RunStatus::Queued => (":hourglass:", "Queued"),
        RunStatus::Running => (":hourglass_flowing_sand:", "Working"),
        RunStatus::Answered => (":white_check_mark:", "Answered"),
        RunStatus::Failed => (":x:", "Failed"),
        RunStatus::Cancelled => (":stop_sign:", "Cancelled"),
        RunStatus::TimedOut => (":stopwatch:", "Timed out"),
        RunStatus::Refused => (":no_entry:", "Refused"),
        RunStatus::Interrupted => (":warning:", "Interrupted"),
    }
}

/// `m:ss` (or `h:mm:ss`) for progress.
pub fn clock(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

/// `1m 12s`, `45s`, `2h 3m` for footers.
pub fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=59 => format!("{}s", d.as_secs_f64().max(0.1).round().max(1.0) as u64),
        60..=3599 => format!("{}m {}s", s / 60, s % 60),
        _ => format!("{}h {}m", s / 3600, (s / 60) % 60),
    }
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// Collapses white space and cuts to `max` characters with an ellipsis. Text that may hold a
/// secret is redacted before this: a cut secret no longer has the shape that would find it.
pub fn one_line(s: &str, max: usize) -> String {
    let flat = s.split_whitespace().collect::<Vec<_>>().join(" ");
    cut(&flat, max)
}

fn one_line_block(s: &str, max: usize) -> String {
    cut(s.trim(), max)
}

fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

fn quote(s: &str) -> String {
    s.lines()
        .map(|l| format!("> {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn footer_is_compact_and_complete() {
        let f = footer(&Footer {
            project: "api",
            elapsed: Duration::from_secs(72),
            files_changed: 2,
            exit_code: Some(0),
            input_tokens: 12_345,
            output_tokens: 321,
            notify: None,
            ..Default::default()
        });
        assert_eq!(
            f,
            "\n\n---\n*`api` · 1m 12s · 2 files changed · exit 0 · 12,345 in / 321 out tokens*"
        );
        let f = footer(&Footer {
            project: "api",
            files_changed: 1,
            lines_added: 3,
            lines_removed: 1,
            ..Default::default()
        });
        assert!(f.contains("1 file changed (+3 −1)"), "{f}");
    }

    #[test]
    fn a_long_runs_footer_mentions_the_requester() {
        let f = footer(&Footer {
            project: "api",
            elapsed: Duration::from_secs(72),
            notify: Some("alice"),
            ..Default::default()
        });
        assert_eq!(f, "\n\n---\n*`api` · 1m 12s* · @alice");
    }

    #[test]
    fn progress_shows_step_and_queue_position() {
        let p = progress(&Progress {
            project: "api",
            elapsed: Duration::from_secs(42),
            step: Some(step_command(
                &Redactor::default(),
                "cargo   test\n -p login",
            )),
            steps_done: 1,
            queue_position: None,
            ..Default::default()
        });
        assert_eq!(p, ":hourglass_flowing_sand: **Working** · `api` · 0:42 · 1 step done\nRunning `cargo test -p login`");
        let q = progress(&Progress {
            project: "api",
            queue_position: Some(3),
            ..Default::default()
        });
        assert!(q.starts_with(":hourglass: **Queued** · position 3"), "{q}");
    }

    #[test]
    fn progress_shows_the_plan_and_the_tail_of_the_streaming_text() {
        let long = format!("{}the newest words", "x".repeat(700));
        let p = progress(&Progress {
            project: "api",
            plan: vec![
                PlanItem {
                    step: "read the test".into(),
                    done: true,
                    active: false,
                },
                PlanItem {
                    step: "fix it".into(),
                    done: false,
                    active: true,
                },
            ],
            streaming: Some(long),
            ..Default::default()
        });
        assert!(
            p.contains("\n- [x] read the test\n- [ ] **fix it**\n> …"),
            "{p}"
        );
        assert!(p.ends_with("the newest words"), "{p}");
    }

    #[test]
    fn steps_are_redacted_before_they_are_cut() {
        let r = Redactor::new(vec!["bot-token-known-to-the-host".into()]);
        // Both secrets straddle the cut at 119 characters: what is left of them after the cut no
        // longer has the shape (or the whole literal) that would find it.
        let command = format!(
            "{} gh auth login --with-token ghp_{}",
            "x".repeat(72),
            "a1B2c3D4e5".repeat(4)
        );
        let step = step_command(&r, &command);
        assert!(step.contains("[redacted GitH"), "{step}");
        assert!(!step.contains("ghp_"), "{step}");
        let command = format!(
            "curl {}-H 'Auth: bot-token-known-to-the-host'",
            "y".repeat(85)
        );
        let step = step_command(&r, &command);
        assert!(step.contains("[redacted secret]"), "{step}");
        assert!(!step.contains("bot-token"), "{step}");
    }

    #[test]
    fn an_approval_request_shows_what_the_run_will_get() {
        let approvers = ["carol".to_string()];
        let view = ApprovalView {
            requester: "alice",
            project: "api",
            prompt: "deploy it",
            reason: "deploys need a second pair of eyes",
            rules: &[],
            approvers: &approvers,
            min_approvals: 1,
            expires_in: Duration::from_secs(600),
            approved_by: &[],
            sandbox: "read-only",
            timeout: Duration::from_secs(300),
            model: Some("gpt-5.5"),
            context: None,
        };
        let m = approval_request(&view);
        assert!(
            m.contains("\n**Runs with:** sandbox `read-only` · timeout 5m 0s · model `gpt-5.5`\n"),
            "{m}"
        );
        let m = approval_request(&ApprovalView {
            model: None,
            ..view
        });
        assert!(m.contains("timeout 5m 0s · Codex's default model\n"), "{m}");
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(clock(Duration::from_secs(3725)), "1:02:05");
        assert_eq!(human_duration(Duration::from_millis(300)), "1s");
        assert_eq!(human_duration(Duration::from_secs(7380)), "2h 3m");
    }
}
