//! Codex's requests during a run, answered: a command or a file change goes to the policy chain
//! (action `command` / `file-change`) — allow accepts, deny declines with the reason in the
//! thread, require-approval puts it to the approvers (`approvals::commands`), and when no module
//! decides, the `command_approval_default` setting does. A grant "for this session" is
//! remembered per Codex thread in the store and answers the same request again without asking.
//! Permission requests are granted nothing; questions go to `runs/steer.rs`.
//!
//! Every decision is audited (`decision` with the chain's report and module hashes, then
//! `command.answered`).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use serde_json::json;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::decide::Ask;
use super::Run;
use crate::approvals::{ApprovalSpec, CommandAsk, CommandVerdict, DEFAULT_ASK_EXPIRY};
use crate::chat::NewPost;
use crate::gate::{Action, Decision};
use crate::model::CommandDefault;
use crate::protocol::PostKind;
use crate::render::{self, Asked};
use crate::runner::app_server::incoming::{CommandApproval, FileChangeApproval, ServerRequest};
use crate::runner::app_server::protocol::{
    ApprovalDecision, PermissionProfile, PermissionScope, RequestId,
};
use crate::runner::events::{Event, FileChange, ItemKind};
use crate::state::Host;
use crate::store::now_ms;

/// Items Codex announced, by id: a file-change request names its item, whose paths and diffs
/// came with `item/started`.
type Announced = HashMap<String, Vec<FileChange>>;

impl Host {
    /// Answers Codex's requests for `run`, in order, until `turn_over`.
    pub(super) async fn answer_requests(
        &self,
        run: &Run,
        mut rx: UnboundedReceiver<Event>,
        turn_over: &CancellationToken,
    ) {
        let mut announced = Announced::new();
        let mut asked = 0u32;
        loop {
            let ev = tokio::select! {
                biased;
                ev = rx.recv() => match ev { Some(ev) => ev, None => break },
                _ = turn_over.cancelled() => break,
            };
            match ev {
                Event::ItemStarted(item) => {
                    if let ItemKind::FileChange { changes } = item.kind {
                        announced.insert(item.id, changes);
                    }
                }
                Event::Ask { id, request } => {
                    asked += 1;
                    let key = format!("{}#{asked}", run.plan.run_id);
                    self.answer_request(run, &announced, key, id, *request, turn_over)
                        .await;
                }
                _ => {}
            }
        }
    }

    async fn answer_request(
        &self,
        run: &Run,
        announced: &Announced,
        key: String,
        id: RequestId,
        request: ServerRequest,
        turn_over: &CancellationToken,
    ) {
        let session = run.active.session.lock().unwrap().clone();
        let Some(session) = session else { return };
        let client = session.client.clone();
        let asked = match request {
            ServerRequest::CommandApproval(r) => command(&r),
            ServerRequest::FileChangeApproval(r) => files(&r, announced, &run.plan.project.repo),
            ServerRequest::PermissionsApproval(r) => {
                // Not offered to the model by default (`features.request_permissions_tool`);
                // widening the sandbox is the policy's to grant through a run's limits.
                info!(reason = ?r.reason, "granted Codex no extra permissions");
                let _ = client
                    .grant_permissions(&id, PermissionProfile::default(), PermissionScope::Turn)
                    .await;
                return;
            }
            ServerRequest::UserInput(r) => {
                self.ask_question(run, &client, id, r, turn_over).await;
                return;
            }
            ServerRequest::Other { .. } => return,
        };
        let decision = self
            .judge(run, &session.thread_id, key, (asked, id.clone()), turn_over)
            .await;
        if let Err(e) = client.answer_approval(&id, decision).await {
            warn!(error = %e, "could not answer Codex's approval request");
        }
    }

    /// The answer to one command or file change.
    async fn judge(
        &self,
        run: &Run,
        codex_thread: &str,
        key: String,
        (asked, request_id): (Asked, RequestId),
        turn_over: &CancellationToken,
    ) -> ApprovalDecision {
        let plan = &run.plan;
        let Some(cfg) = self.config() else {
            return ApprovalDecision::Decline;
        };
        let audit = |how: &str, detail: serde_json::Value| {
            let _ = self.store.audit(
                "command.answered",
                Some(&plan.run_id),
                &plan.user.id,
                &plan.channel.id,
                &json!({"request": key, "answer": how, "asked": format!("{asked:?}"), "detail": detail}),
            );
        };
        let subject = subject(&asked);
        if let Ok(Some(by)) = self.store.session_grant(codex_thread, &subject) {
            audit("accept", json!({"session_grant_by": by}));
            self.note(run, render::ask_granted_before(&asked, &by))
                .await;
            return ApprovalDecision::Accept;
        }
        let ruling = self
            .decide(
                &cfg,
                Ask {
                    action: action(&asked, &plan.project.repo),
                    prompt: &plan.prompt,
                    project: Some(&plan.project),
                    root_id: &run.root_id,
                    run_id: Some(&plan.run_id),
                    context: plan.context.as_ref().map(|c| c.text.as_str()),
                    ..Ask::new(&plan.user, &plan.channel, Action::New)
                },
            )
            .await;
        let requester = plan.user.username.clone();
        let (spec, admins) = match ruling.decision {
            _ if ruling.abstained => match cfg.command_default {
                CommandDefault::Decline => {
                    audit("decline", json!({"by": "default"}));
                    let why = "no policy module decided it, and the setting for such requests is to decline";
                    self.note(run, render::ask_declined(&asked, why)).await;
                    return ApprovalDecision::Decline;
                }
                CommandDefault::AskRequester => (
                    spec(vec![requester], 1, true, "no policy module decided it", &[]),
                    false,
                ),
                CommandDefault::AskApprovers => (
                    spec(vec![], 1, false, "no policy module decided it", &[]),
                    true,
                ),
            },
            Decision::Allow(_) => {
                audit("accept", json!({"rules": ruling.rules}));
                return ApprovalDecision::Accept;
            }
            Decision::Deny { reason } => {
                audit("decline", json!({"rules": ruling.rules, "reason": reason}));
                self.note(run, render::ask_declined(&asked, &reason)).await;
                return ApprovalDecision::Decline;
            }
            Decision::RequireApproval {
                approvers,
                min_approvals,
                reason,
                expiry,
                allow_self_approval,
                ..
            } => {
                let mut s = spec(
                    approvers,
                    min_approvals,
                    allow_self_approval,
                    &reason,
                    &ruling.rules,
                );
                s.expires_at_ms = now_ms() + expiry.as_millis() as i64;
                (s, cfg.settings.approvers_include_admins)
            }
        };
        let Ok(Some(row)) = self.store.run(&plan.run_id) else {
            return ApprovalDecision::Decline;
        };
        let mut row = row;
        row.root_id = run.root_id.clone();
        let ask = Arc::new(CommandAsk::new(
            key.clone(),
            &row,
            plan.user.clone(),
            (asked.clone(), request_id),
            spec,
            admins,
        ));
        match self.put_to_people(ask, turn_over).await {
            CommandVerdict::Accept { by } => {
                audit("accept", json!({"by": by}));
                ApprovalDecision::Accept
            }
            CommandVerdict::AcceptForSession { by } => {
                let by = by.join(",");
                let _ = self.store.grant_for_session(codex_thread, &subject, &by);
                audit("accept_for_session", json!({"by": by}));
                ApprovalDecision::AcceptForSession
            }
            CommandVerdict::Decline { by } => {
                audit("decline", json!({"by": by}));
                ApprovalDecision::Decline
            }
            CommandVerdict::Expired => {
                audit("decline", json!({"by": "expiry"}));
                ApprovalDecision::Decline
            }
            CommandVerdict::Moot => {
                audit("none", json!({"by": "turn ended"}));
                ApprovalDecision::Cancel
            }
        }
    }

    /// A note in the run's thread; its post id when it was posted.
    pub(super) async fn note(&self, run: &Run, message: String) -> Option<String> {
        self.post_note(
            &run.plan.channel.id,
            &run.root_id,
            &run.plan.run_id,
            message,
        )
        .await
    }

    /// A note (redacted) in thread `root_id` about run `run_id`; its post id when it was posted.
    pub(super) async fn post_note(
        &self,
        channel_id: &str,
        root_id: &str,
        run_id: &str,
        message: String,
    ) -> Option<String> {
        let post = NewPost {
            channel_id: channel_id.to_string(),
            root_id: root_id.to_string(),
            message: self.redactor().redact(&message),
            props: PostKind::Note.props(run_id, None),
            file_ids: vec![],
        };
        match self.chat.create_post(post).await {
            Ok(p) => Some(p.id),
            Err(e) => {
                warn!(error = %e, "could not post a note in the thread");
                None
            }
        }
    }
}

fn spec(
    approvers: Vec<String>,
    min_approvals: u32,
    allow_self_approval: bool,
    reason: &str,
    rules: &[String],
) -> ApprovalSpec {
    ApprovalSpec {
        approvers,
        min_approvals: min_approvals.max(1),
        reason: reason.to_string(),
        rules: rules.to_vec(),
        allow_self_approval,
        expires_at_ms: now_ms() + DEFAULT_ASK_EXPIRY.as_millis() as i64,
    }
}

fn command(r: &CommandApproval) -> Asked {
    let network = r.network_approval_context.as_ref().map(|n| n.host.clone());
    Asked::Command {
        line: r
            .command
            .clone()
            .or_else(|| network.as_ref().map(|h| format!("(network access to {h})")))
            .unwrap_or_default(),
        cwd: r.cwd.clone().unwrap_or_default(),
        reason: r.reason.clone(),
        network,
    }
}

fn files(r: &FileChangeApproval, announced: &Announced, repo: &Path) -> Asked {
    let changes = announced.get(&r.item_id).cloned().unwrap_or_default();
    let mut files: Vec<(String, u32, u32)> = changes
        .iter()
        .map(|c| {
            let (added, removed) = line_counts(c);
            (relative(&c.path, repo), added, removed)
        })
        .collect();
    if files.is_empty() {
        // Never judged as "no files": a module must see that something unknown is asked.
        let root = r
            .grant_root
            .clone()
            .unwrap_or_else(|| "(files not announced)".into());
        files.push((root, 0, 0));
    }
    let diff = changes
        .iter()
        .map(|c| match c.kind {
            "add" => format!(
                "--- /dev/null\n+++ {}\n{}",
                c.path,
                c.diff
                    .lines()
                    .map(|l| format!("+{l}\n"))
                    .collect::<String>()
            ),
            _ => c.diff.clone(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    Asked::Files {
        files,
        diff,
        reason: r.reason.clone(),
    }
}

/// Lines added and removed by one file's change (for an added file its diff is its content).
fn line_counts(c: &FileChange) -> (u32, u32) {
    match c.kind {
        "add" => (c.diff.lines().count() as u32, 0),
        "delete" => (0, c.diff.lines().count() as u32),
        _ => {
            let (added, removed) = super::changes::diff_stat(&c.diff);
            (added as u32, removed as u32)
        }
    }
}

fn relative(path: &str, repo: &Path) -> String {
    Path::new(path)
        .strip_prefix(repo)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| path.to_string())
}

/// The policy's view of the request.
fn action(asked: &Asked, repo: &Path) -> Action {
    match asked {
        Asked::Command {
            line,
            cwd,
            reason,
            network,
        } => Action::Command(codex_policy::Command {
            argv: shlex::split(line)
                .filter(|a| !a.is_empty())
                .unwrap_or_else(|| vec![line.clone()]),
            cwd: if cwd.is_empty() {
                repo.display().to_string()
            } else {
                cwd.clone()
            },
            reason: reason.clone(),
            // Under `on-request` Codex asks only to leave the sandbox.
            escalated: network.is_none(),
            network: network.is_some(),
        }),
        Asked::Files { files, reason, .. } => Action::FileChange(codex_policy::FileChange {
            files: files
                .iter()
                .map(|(path, a, r)| codex_policy::FileEdit {
                    path: path.clone(),
                    added_lines: *a,
                    removed_lines: *r,
                })
                .collect(),
            reason: reason.clone(),
        }),
    }
}

/// What a session grant is for: the exact command line, or the exact set of files.
fn subject(asked: &Asked) -> String {
    match asked {
        Asked::Command { line, network, .. } => match network {
            Some(host) => format!("network:{host}"),
            None => format!("command:{line}"),
        },
        Asked::Files { files, .. } => {
            let mut paths: Vec<&str> = files.iter().map(|(p, _, _)| p.as_str()).collect();
            paths.sort_unstable();
            format!("files:{}", paths.join("\n"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_counts_follow_the_diff() {
        let c = FileChange {
            path: "/r/a.rs".into(),
            kind: "update",
            diff: "--- a/a.rs\n+++ b/a.rs\n@@ -1,2 +1,2 @@\n-old\n+new\n+more\n ctx\n".into(),
        };
        assert_eq!(line_counts(&c), (2, 1));
        assert_eq!(relative("/r/a.rs", Path::new("/r")), "a.rs");
        assert_eq!(relative("/etc/x", Path::new("/r")), "/etc/x");
    }

    #[test]
    fn a_shell_line_becomes_argv() {
        let asked = Asked::Command {
            line: "/bin/bash -lc 'git push origin main'".into(),
            cwd: "/r".into(),
            reason: None,
            network: None,
        };
        let Action::Command(c) = action(&asked, Path::new("/r")) else {
            panic!()
        };
        assert_eq!(c.argv, ["/bin/bash", "-lc", "git push origin main"]);
        assert!(c.escalated && !c.network);
        assert_eq!(
            subject(&asked),
            "command:/bin/bash -lc 'git push origin main'"
        );
    }
}
