//! One run through `codex app-server`: start the process (the run's isolation, its own process
//! group), start or resume the Codex thread, start one turn, and follow it to its end.
//!
//! Input: an [`Invocation`], a cancellation token and a timeout; output: the turn's events as
//! [`Event`]s (mapped from app-server notifications, in order) and a [`Finished`]. Codex's
//! requests (approvals, questions) are handed to the caller as [`Event::Ask`] and answered
//! through the [`Session`]'s client, never here: this module decides nothing. Cancel and timeout
//! interrupt the turn (`turn/interrupt`), then end the process group after a grace period.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::app_server::incoming::{Item, RateLimitWindow, ServerNotification, ThreadItem};
use super::app_server::protocol::{
    ApprovalPolicy, ThreadResumeParams, ThreadSettings, TurnStartParams, TurnStatus, UserInput,
};
use super::app_server::{AppServer, Client, Event as Incoming, Events, Spec, StartError};
use super::events::{Event, FileChange, ItemKind, Usage};
use super::process::{Ending, Finished, Invocation, SpawnError, KILL_GRACE};
use crate::model::{RateLimits, RateWindow};

/// Codex asks before leaving the sandbox (network, writes outside the workspace) and for file
/// changes; commands the sandbox allows run unasked, as they did under `codex exec`. `untrusted`
/// would ask for every command not known to be read-only — approval fatigue, and a run nobody
/// watches would stall on `ls`.
pub const APPROVAL_POLICY: ApprovalPolicy = ApprovalPolicy::OnRequest;

/// Streamed notifications nobody shows: leaving them out keeps the pipe quiet.
const OPT_OUT: &[&str] = &[
    "item/commandExecution/outputDelta",
    "item/reasoning/summaryTextDelta",
    "item/reasoning/summaryPartAdded",
    "item/reasoning/textDelta",
    "item/fileChange/outputDelta",
];

/// The running session, handed to the caller once the thread exists: the client answers
/// Codex's requests, steers and interrupts the turn.
#[derive(Clone)]
pub struct Session {
    pub client: Client,
    pub thread_id: String,
    pub turn_id: String,
}

/// Runs one turn to its end. `on_spawn` gets the process group id, `on_session` the session once
/// the turn has started, `on_event` every event in order.
pub async fn run(
    inv: &Invocation,
    cancel: &CancellationToken,
    timeout: Duration,
    on_spawn: impl FnOnce(u32),
    on_session: impl FnOnce(Session),
    mut on_event: impl FnMut(Event),
) -> Result<Finished, SpawnError> {
    if !inv.repo.is_dir() {
        return Err(SpawnError::NoRepo(inv.repo.display().to_string()));
    }
    let mut overrides = inv.overrides.clone();
    // Without it 0.171 answers the model's questions itself ("unavailable in Default mode").
    overrides.push("features.default_mode_request_user_input=true".into());
    let spec = Spec {
        launch: inv.launch.clone(),
        overrides,
        opt_out: OPT_OUT.iter().map(|s| s.to_string()).collect(),
    };
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    let (server, mut events) = match AppServer::start(&spec).await {
        Ok(s) => s,
        Err(StartError::Spawn(e)) => return Err(e),
        Err(e) => {
            let message = e.to_string();
            on_event(Event::TurnFailed { message });
            let (stderr_tail, exit_code) = match e {
                StartError::Handshake {
                    stderr_tail,
                    exit_code,
                    ..
                } => (stderr_tail, exit_code),
                StartError::Spawn(_) => (String::new(), None),
            };
            return Ok(Finished {
                ending: Ending::Exited(exit_code),
                stderr_tail,
            });
        }
    };
    if let Some(pid) = server.pid() {
        on_spawn(pid);
    }
    let client = server.client();
    let begun = tokio::select! {
        r = begin(inv, &client) => r,
        _ = cancel.cancelled() => return Ok(stop(server, Ending::Cancelled).await),
        _ = &mut deadline => return Ok(stop(server, Ending::TimedOut).await),
    };
    let session = match begun {
        Ok(s) => s,
        Err(message) => {
            on_event(Event::TurnFailed { message });
            let fin = server.finish(KILL_GRACE).await;
            return Ok(Finished {
                ending: Ending::Exited(Some(1)),
                stderr_tail: fin.stderr_tail,
            });
        }
    };
    on_event(Event::ThreadStarted {
        thread_id: session.thread_id.clone(),
    });
    let turn_id = session.turn_id.clone();
    on_session(session);

    let mut turn = Turn::new(turn_id);
    let ended = loop {
        tokio::select! {
            ev = events.next() => match ev {
                Some(ev) => if let Some(end) = turn.apply(ev, &mut on_event) { break Some(end) },
                None => break None,
            },
            _ = cancel.cancelled() => return Ok(stop(server, Ending::Cancelled).await),
            _ = &mut deadline => return Ok(stop(server, Ending::TimedOut).await),
        }
    };
    // Anything still queued (e.g. a request resolved at the turn's end) is moot now.
    drain(&mut events, &mut turn, &mut on_event);
    let fin = server.finish(KILL_GRACE).await;
    let ending = match ended {
        Some(code) => Ending::Exited(Some(code)),
        None => {
            on_event(Event::TurnFailed {
                message: "Codex app-server exited before the turn ended".into(),
            });
            Ending::Exited(fin.exit_code.or(Some(1)))
        }
    };
    Ok(Finished {
        ending,
        stderr_tail: fin.stderr_tail,
    })
}

/// What Codex is told about where its answer goes: a Mattermost thread, often read on a phone,
/// where the first lines are what a notification and a collapsed post show.
pub const CHAT_INSTRUCTIONS: &str = "Your final answer is posted in a Mattermost thread that people often read on a phone. Start it with a summary of at most three short lines: what you changed, which tests or checks you ran and how they went, and what is left or needs a decision. Put any detail after that summary.";

/// Starts (or resumes) the thread and its one turn.
async fn begin(inv: &Invocation, client: &Client) -> Result<Session, String> {
    let settings = ThreadSettings {
        cwd: Some(inv.repo.display().to_string()),
        model: inv.model.clone(),
        approval_policy: Some(APPROVAL_POLICY),
        sandbox: Some(inv.sandbox),
        developer_instructions: Some(CHAT_INSTRUCTIONS.into()),
    };
    let thread = match &inv.resume {
        Some(id) => {
            client
                .resume_thread(&ThreadResumeParams {
                    thread_id: id.clone(),
                    settings,
                })
                .await
        }
        None => client.start_thread(&settings).await,
    }
    .map_err(|e| e.to_string())?;
    let mut input = vec![UserInput::Text {
        text: inv.prompt.clone(),
    }];
    input.extend(inv.images.iter().map(|p| UserInput::LocalImage {
        path: p.display().to_string(),
    }));
    let turn = client
        .start_turn(&TurnStartParams {
            thread_id: thread.thread.id.clone(),
            input,
            cwd: None,
            model: None,
            approval_policy: None,
            sandbox_policy: None,
        })
        .await
        .map_err(|e| e.to_string())?;
    Ok(Session {
        client: client.clone(),
        thread_id: thread.thread.id,
        turn_id: turn.turn.id,
    })
}

/// Cancel or timeout: interrupt the turn, then end the process group.
async fn stop(server: AppServer, ending: Ending) -> Finished {
    let fin = server.interrupt_and_finish(KILL_GRACE).await;
    Finished {
        ending,
        stderr_tail: fin.stderr_tail,
    }
}

fn drain(events: &mut Events, turn: &mut Turn, on_event: &mut impl FnMut(Event)) {
    while let Some(ev) = events.try_next() {
        turn.apply(ev, on_event);
    }
}

/// What one turn has reported so far.
struct Turn {
    id: String,
    usage: Usage,
}

impl Turn {
    fn new(id: String) -> Turn {
        Turn {
            id,
            usage: Usage::default(),
        }
    }

    /// Maps one app-server event; returns the exit code once the turn has ended (0 completed,
    /// 1 otherwise, as `codex exec` exits).
    fn apply(&mut self, ev: Incoming, on_event: &mut impl FnMut(Event)) -> Option<i32> {
        let n = match ev {
            Incoming::Request { id, request } => {
                on_event(Event::Ask {
                    id,
                    request: Box::new(request),
                });
                return None;
            }
            Incoming::Notification(n) => n,
        };
        match n {
            ServerNotification::ItemStarted(i) => on_event(Event::ItemStarted(item(&i.item))),
            ServerNotification::ItemCompleted(i) => on_event(Event::ItemCompleted(item(&i.item))),
            ServerNotification::AgentMessageDelta(d) => on_event(Event::AgentDelta {
                item_id: d.item_id,
                delta: d.delta,
            }),
            ServerNotification::TurnPlanUpdated(p) => on_event(Event::Plan(
                p.plan
                    .into_iter()
                    .map(|s| super::events::PlanStep {
                        step: s.step,
                        status: s.status,
                    })
                    .collect(),
            )),
            ServerNotification::TurnDiffUpdated(d) if d.turn_id == self.id => {
                on_event(Event::Diff(d.diff))
            }
            ServerNotification::TokenUsageUpdated(u) if u.turn_id == self.id => {
                let last = u.token_usage.last;
                self.usage.input_tokens += last.input_tokens.max(0) as u64;
                self.usage.cached_input_tokens += last.cached_input_tokens.max(0) as u64;
                self.usage.output_tokens += last.output_tokens.max(0) as u64;
            }
            ServerNotification::Error(e) => on_event(Event::Error {
                message: e.error.message,
            }),
            ServerNotification::ServerRequestResolved(r) => on_event(Event::Resolved(r.request_id)),
            // Codex's own account limits; other families (per model) would mix in.
            ServerNotification::RateLimitsUpdated(r)
                if r.rate_limits
                    .limit_id
                    .as_deref()
                    .is_none_or(|id| id == "codex") =>
            {
                let window = |w: Option<RateLimitWindow>| {
                    w.map(|w| RateWindow {
                        used_percent: w.used_percent,
                        window_minutes: w.window_duration_mins,
                    })
                };
                let limits = RateLimits {
                    primary: window(r.rate_limits.primary),
                    secondary: window(r.rate_limits.secondary),
                };
                if limits != RateLimits::default() {
                    on_event(Event::RateLimits(limits));
                }
            }
            ServerNotification::TurnCompleted(t) if t.turn.id == self.id => {
                let code = match t.turn.status {
                    TurnStatus::Completed => {
                        on_event(Event::TurnCompleted {
                            usage: self.usage.clone(),
                        });
                        0
                    }
                    TurnStatus::Interrupted => {
                        on_event(Event::TurnFailed {
                            message: "Codex stopped the turn".into(),
                        });
                        1
                    }
                    _ => {
                        let message = t
                            .turn
                            .error
                            .map(|e| e.message)
                            .unwrap_or_else(|| "the turn failed".into());
                        on_event(Event::TurnFailed { message });
                        1
                    }
                };
                return Some(code);
            }
            _ => {}
        }
        None
    }
}

/// The app-server item as the run's state knows items.
fn item(i: &ThreadItem) -> super::events::Item {
    use super::app_server::incoming::{ItemStatus, PatchChangeKind};
    let (id, kind) = match i {
        ThreadItem::Known(k) => match k {
            Item::UserMessage { id } => (id.clone(), ItemKind::Other("userMessage".into())),
            Item::AgentMessage { id, text } => {
                (id.clone(), ItemKind::AgentMessage { text: text.clone() })
            }
            Item::Reasoning { id, summary } => (
                id.clone(),
                ItemKind::Reasoning {
                    text: summary.join("\n"),
                },
            ),
            Item::CommandExecution {
                id,
                command,
                status,
                exit_code,
                ..
            } => (
                id.clone(),
                ItemKind::CommandExecution {
                    command: command.clone(),
                    exit_code: *exit_code,
                    status: format!("{status:?}"),
                },
            ),
            Item::FileChange {
                id,
                changes,
                status,
            } => {
                // A declined or failed change changed nothing.
                let applied = !matches!(status, ItemStatus::Declined | ItemStatus::Failed);
                (
                    id.clone(),
                    ItemKind::FileChange {
                        changes: changes
                            .iter()
                            .filter(|_| applied)
                            .map(|c| FileChange {
                                path: c.path.clone(),
                                kind: match c.kind {
                                    PatchChangeKind::Add => "add",
                                    PatchChangeKind::Delete => "delete",
                                    PatchChangeKind::Update { .. } => "update",
                                },
                                diff: c.diff.clone(),
                            })
                            .collect(),
                    },
                )
            }
            Item::McpToolCall {
                id, server, tool, ..
            } => (
                id.clone(),
                ItemKind::McpToolCall {
                    server: server.clone(),
                    tool: tool.clone(),
                },
            ),
            Item::WebSearch { id, query } => (
                id.clone(),
                ItemKind::WebSearch {
                    query: query.clone(),
                },
            ),
        },
        ThreadItem::Other(v) => (
            v.get("id")
                .and_then(|x| x.as_str())
                .unwrap_or_default()
                .to_string(),
            ItemKind::Other(
                v.get("type")
                    .and_then(|x| x.as_str())
                    .unwrap_or_default()
                    .to_string(),
            ),
        ),
    };
    super::events::Item { id, kind }
}
