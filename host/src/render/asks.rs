//! What people read about Codex's requests during a run: the approval post for a command or a
//! file change (the full command, or the paths with their sizes and a diff excerpt), how it was
//! closed, and why the policy declined one. Pure text; the caller redacts.

use std::time::Duration;

use super::{human_duration, one_line};

/// The most diff lines an approval post shows; the whole diff is in the final `changes.diff`.
const DIFF_EXCERPT_LINES: usize = 40;

/// What Codex asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Asked {
    Command {
        /// As Codex would run it, e.g. `/bin/bash -lc 'git push'`.
        line: String,
        cwd: String,
        reason: Option<String>,
        /// The network host it wants to reach, for a network approval.
        network: Option<String>,
    },
    Files {
        /// Path, lines added, lines removed.
        files: Vec<(String, u32, u32)>,
        diff: String,
        reason: Option<String>,
    },
}

pub struct AskView<'a> {
    pub asked: &'a Asked,
    pub requester: &'a str,
    pub project: &'a str,
    pub reason: &'a str,
    pub rules: &'a [String],
    /// `@name`s, or a description such as "a system admin".
    pub approvers: Vec<String>,
    pub min_approvals: u32,
    pub expires_in: Duration,
}

/// A fence that the text cannot close.
fn fenced(lang: &str, text: &str) -> String {
    let mut fence = "```".to_string();
    while text.contains(&fence) {
        fence.push('`');
    }
    format!("{fence}{lang}\n{}\n{fence}", text.trim_end())
}

fn what(asked: &Asked) -> String {
    match asked {
        Asked::Command {
            line,
            cwd,
            reason,
            network,
        } => {
            let mut s = fenced("sh", line);
            s.push_str(&format!("\n**In:** `{cwd}`"));
            if let Some(host) = network {
                s.push_str(&format!(" · **Network:** `{host}`"));
            }
            if let Some(r) = reason.as_deref().filter(|r| !r.trim().is_empty()) {
                s.push_str(&format!("\n**Codex says:** {}", one_line(r, 300)));
            }
            s
        }
        Asked::Files {
            files,
            diff,
            reason,
        } => {
            let mut s: String = files
                .iter()
                .map(|(p, a, r)| format!("- `{p}` (+{a} −{r})\n"))
                .collect();
            let lines: Vec<&str> = diff.lines().collect();
            let mut excerpt = lines[..lines.len().min(DIFF_EXCERPT_LINES)].join("\n");
            if lines.len() > DIFF_EXCERPT_LINES {
                excerpt.push_str(&format!(
                    "\n… {} more lines",
                    lines.len() - DIFF_EXCERPT_LINES
                ));
            }
            if !excerpt.trim().is_empty() {
                s.push_str(&fenced("diff", &excerpt));
            }
            if let Some(r) = reason.as_deref().filter(|r| !r.trim().is_empty()) {
                s.push_str(&format!("\n**Codex says:** {}", one_line(r, 300)));
            }
            s
        }
    }
}

fn title(asked: &Asked) -> &'static str {
    match asked {
        Asked::Command {
            network: Some(_), ..
        } => "Codex asks for network access",
        Asked::Command { .. } => "Codex asks to run a command",
        Asked::Files { .. } => "Codex asks to change files",
    }
}

/// The request post, with who has approved so far.
pub fn ask_request(v: &AskView, approved_by: &[String]) -> String {
    let rules = if v.rules.is_empty() {
        String::new()
    } else {
        let r: Vec<String> = v.rules.iter().map(|r| format!("`{r}`")).collect();
        format!(" (rule {})", r.join(", "))
    };
    let need = match v.min_approvals {
        0 | 1 => "one answer decides".to_string(),
        n => format!("{n} approvals needed"),
    };
    let mut s = format!(
        ":raised_hand: **{}** · `{}` · run by @{}\n{}\n**Why asked:** {}{rules}\n**Who answers:** {} — {need}. Unanswered in {}, it is declined.",
        title(v.asked),
        v.project,
        v.requester,
        what(v.asked),
        v.reason,
        v.approvers.join(", "),
        human_duration(v.expires_in),
    );
    if !approved_by.is_empty() {
        s.push_str(&format!(
            "\nApproved so far by {}.",
            super::mentions(approved_by)
        ));
    }
    s
}

/// The request once decided, expired or moot: no buttons, the subject kept.
pub fn ask_closed(asked: &Asked, how: &str) -> String {
    format!(
        ":raised_hand: **{}** — {how}.\n{}",
        title(asked),
        what(asked)
    )
}

/// A request the policy declined: Codex is told and goes on.
pub fn ask_declined(asked: &Asked, reason: &str) -> String {
    format!(
        ":no_entry: **Declined by policy**: {}\n{}\nCodex was told and goes on without it.",
        one_line(reason, 500),
        what(asked)
    )
}

/// A request answered from an earlier "Approve for this session".
pub fn ask_granted_before(asked: &Asked, by: &str) -> String {
    format!(
        ":white_check_mark: **Approved for this session** earlier by @{by}, so allowed again.\n{}",
        what(asked)
    )
}

/// One question Codex asks: header, question, option labels.
pub struct Question<'a> {
    pub header: &'a str,
    pub question: &'a str,
    pub options: Vec<&'a str>,
}

/// Codex's questions, for the requester to answer with a reply.
pub fn question(requester: &str, qs: &[Question], expires_in: Duration) -> String {
    let mut s = format!(":question: **Codex asks** @{requester}:");
    s.push_str(&questions(qs));
    s.push_str(&format!(
        "\nReply in this thread to answer (an option's number or your own words{}). Unanswered in {}, the turn is stopped.",
        if qs.len() > 1 { ", one line per question" } else { "" },
        human_duration(expires_in)
    ));
    s
}

/// Why a question stopped waiting before anyone answered it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuestionClosed {
    /// Codex withdrew it (`serverRequest/resolved`) and went on.
    Withdrawn,
    /// The turn ended (finished, cancelled, timed out).
    TurnEnded,
}

/// The question post once it no longer takes an answer.
pub fn question_closed(qs: &[Question], why: QuestionClosed) -> String {
    let why = match why {
        QuestionClosed::Withdrawn => "Codex went on without it",
        QuestionClosed::TurnEnded => "the turn ended",
    };
    format!(
        ":heavy_multiplication_x: **No longer waiting** for an answer ({why}); a reply here now goes to Codex as usual.{}",
        questions(qs)
    )
}

fn questions(qs: &[Question]) -> String {
    let mut s = String::new();
    for (i, q) in qs.iter().enumerate() {
        let n = if qs.len() > 1 {
            format!("{}. ", i + 1)
        } else {
            String::new()
        };
        s.push_str(&format!("\n{n}**{}** {}", q.header, q.question));
        for (k, o) in q.options.iter().enumerate() {
            s.push_str(&format!("\n   {}. {o}", k + 1));
        }
    }
    s
}

pub fn question_unanswered(expires_in: Duration) -> String {
    format!(
        ":stop_sign: **No answer** to Codex's question within {}: the turn is stopped.",
        human_duration(expires_in)
    )
}

/// What a reply did while the turn ran.
pub fn steered(by: &str) -> String {
    format!(":arrow_right_hook: Passed to Codex in the running turn (from @{by}).")
}

/// Why a reply waits for the next turn instead of steering this one.
pub fn steer_waits(requester: &str, question_pending: bool) -> String {
    if question_pending {
        format!("Codex is waiting for @{requester}'s answer to its question, so your reply waits for the next turn.")
    } else {
        format!("Your reply waits for the next turn: only @{requester}, who started this run, may steer a running turn here (System Console setting **Who may steer a running turn**).")
    }
}

pub fn answered(by: &str) -> String {
    format!(":speech_balloon: Answer from @{by} passed to Codex.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_request_shows_the_whole_command_in_a_fence_it_cannot_close() {
        let asked = Asked::Command {
            line: "bash -lc 'echo ``` && git push'".into(),
            cwd: "/srv/api".into(),
            reason: Some("publish".into()),
            network: None,
        };
        let s = ask_request(
            &AskView {
                asked: &asked,
                requester: "alice",
                project: "api",
                reason: "no policy decided",
                rules: &[],
                approvers: vec!["@alice".into()],
                min_approvals: 1,
                expires_in: Duration::from_secs(900),
            },
            &[],
        );
        assert!(
            s.contains("````sh\nbash -lc 'echo ``` && git push'\n````"),
            "{s}"
        );
        assert!(
            s.contains("**Codex says:** publish") && s.contains("@alice"),
            "{s}"
        );
    }

    #[test]
    fn a_file_request_lists_sizes_and_cuts_the_diff() {
        let diff: String = (0..50).map(|i| format!("+line {i}\n")).collect();
        let asked = Asked::Files {
            files: vec![("a.txt".into(), 50, 0)],
            diff,
            reason: None,
        };
        let s = ask_closed(&asked, "Approved by @bob");
        assert!(
            s.contains("- `a.txt` (+50 −0)") && s.contains("… 10 more lines"),
            "{s}"
        );
        assert!(!s.contains("+line 45"), "{s}");
    }

    #[test]
    fn a_closed_question_keeps_its_text_and_says_replies_go_on() {
        let qs = [Question {
            header: "Color",
            question: "Which color?",
            options: vec!["Red", "Teal"],
        }];
        let open = question("alice", &qs, Duration::from_secs(600));
        assert!(
            open.contains("**Color** Which color?\n   1. Red\n   2. Teal"),
            "{open}"
        );
        let closed = question_closed(&qs, QuestionClosed::Withdrawn);
        assert!(
            closed.starts_with(":heavy_multiplication_x: **No longer waiting**")
                && closed.contains("Codex went on without it")
                && closed.contains("**Color** Which color?\n   1. Red"),
            "{closed}"
        );
        assert!(
            !closed.contains("Reply in this thread to answer"),
            "{closed}"
        );
        assert!(question_closed(&qs, QuestionClosed::TurnEnded).contains("the turn ended"));
    }
}
