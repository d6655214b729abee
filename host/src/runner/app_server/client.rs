//! JSON-RPC over the app-server's stdio: one JSON message per line each way. A reader task
//! routes every line from Codex: responses to the request waiting for them, notifications and
//! Codex's own requests to the [`Events`] stream. [`Client`] sends requests and answers; it is
//! cheap to clone, so approval and steer handlers can each hold one.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use tokio::process::{ChildStdin, ChildStdout};
use tokio::sync::{mpsc, oneshot, watch};

use super::incoming::{ServerNotification, ServerRequest};
use super::protocol::{
    method, ApprovalDecision, ApprovalResponse, PermissionProfile, PermissionScope,
    PermissionsResponse, RequestId, RpcError, ThreadResponse, ThreadResumeParams, ThreadSettings,
    TurnInterruptParams, TurnResponse, TurnStartParams, TurnSteerParams, TurnSteerResponse,
    UserInput, UserInputResponse,
};
use crate::runner::process::{CappedLines, Line, MAX_EVENT_LINE_BYTES};

/// How long a request may wait for its response before the client gives up on it.
const RPC_TIMEOUT: Duration = Duration::from_secs(120);
/// JSON-RPC "method not found", the answer to a request of Codex's the host does not know.
const METHOD_NOT_FOUND: i64 = -32601;

/// What Codex sent that nobody asked for, in order.
#[derive(Debug, Clone)]
pub enum Event {
    Notification(ServerNotification),
    /// Codex waits for an answer: [`Client::answer_approval`], [`Client::grant_permissions`]
    /// or [`Client::answer_user_input`] with this `id`.
    Request {
        id: RequestId,
        request: ServerRequest,
    },
}

/// The events of one app-server, until its stdout closes (then [`Events::next`] is `None`).
pub struct Events(mpsc::UnboundedReceiver<Event>);

impl Events {
    pub async fn next(&mut self) -> Option<Event> {
        self.0.recv().await
    }

    /// The next event already received, without waiting.
    pub fn try_next(&mut self) -> Option<Event> {
        self.0.try_recv().ok()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("Codex app-server answered `{method}` with error {}: {}", .error.code, .error.message)]
    Rpc { method: String, error: RpcError },
    #[error("Codex app-server exited or closed its output before answering `{0}`")]
    Closed(String),
    #[error("Codex app-server did not answer `{method}` within {timeout:?}")]
    Timeout { method: String, timeout: Duration },
    #[error("Codex app-server's answer to `{method}` did not match the pinned protocol: {source}")]
    Decode {
        method: String,
        source: serde_json::Error,
    },
    #[error("writing to Codex app-server failed: {0}")]
    Write(std::io::Error),
}

/// The turn Codex is running right now, as its notifications tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveTurn {
    pub thread_id: String,
    pub turn_id: String,
}

type Pending = Mutex<HashMap<i64, oneshot::Sender<Result<Value, RpcError>>>>;

/// Sends requests and answers to one app-server.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    stdin: tokio::sync::Mutex<Option<ChildStdin>>,
    pending: Pending,
    /// Set (under the `pending` lock) once the server's output has ended: no answer can come.
    closed: AtomicBool,
    next_id: AtomicI64,
    active_turn: watch::Receiver<Option<ActiveTurn>>,
}

impl Client {
    /// Starts routing `stdout`; returns the client, the event stream and the reader task.
    pub(super) fn start(
        stdin: ChildStdin,
        stdout: ChildStdout,
    ) -> (Client, Events, tokio::task::JoinHandle<()>) {
        let (turn_tx, turn_rx) = watch::channel(None);
        let inner = Arc::new(Inner {
            stdin: tokio::sync::Mutex::new(Some(stdin)),
            pending: Mutex::new(HashMap::new()),
            closed: AtomicBool::new(false),
            next_id: AtomicI64::new(1),
            active_turn: turn_rx,
        });
        // Unbounded: a reader blocked on a full channel would also hold back the response a
        // consumer may be awaiting before it reads events again.
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let reader = tokio::spawn(read_loop(stdout, inner.clone(), events_tx, turn_tx));
        (Client { inner }, Events(events_rx), reader)
    }

    /// Sends `method` and waits for its result.
    pub async fn request<P: Serialize, R: DeserializeOwned>(
        &self,
        method: &str,
        params: &P,
    ) -> Result<R, ClientError> {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        {
            let mut pending = lock(&self.inner.pending);
            if self.inner.closed.load(Ordering::Acquire) {
                return Err(ClientError::Closed(method.into()));
            }
            pending.insert(id, tx);
        }
        let sent = self
            .send(&json!({ "id": id, "method": method, "params": params }))
            .await;
        if let Err(e) = sent {
            lock(&self.inner.pending).remove(&id);
            return Err(e);
        }
        let answer = match tokio::time::timeout(RPC_TIMEOUT, rx).await {
            Err(_) => {
                lock(&self.inner.pending).remove(&id);
                return Err(ClientError::Timeout {
                    method: method.into(),
                    timeout: RPC_TIMEOUT,
                });
            }
            Ok(Err(_)) => return Err(ClientError::Closed(method.into())),
            Ok(Ok(answer)) => answer,
        };
        let value = answer.map_err(|error| ClientError::Rpc {
            method: method.into(),
            error,
        })?;
        R::deserialize(value).map_err(|source| ClientError::Decode {
            method: method.into(),
            source,
        })
    }

    pub async fn notify(&self, method: &str) -> Result<(), ClientError> {
        self.send(&json!({ "method": method })).await
    }

    /// Answers Codex's request `id` with `result`.
    pub async fn respond(
        &self,
        id: &RequestId,
        result: &impl Serialize,
    ) -> Result<(), ClientError> {
        self.send(&json!({ "id": id, "result": result })).await
    }

    /// Answers Codex's request `id` with a JSON-RPC error.
    pub async fn respond_error(
        &self,
        id: &RequestId,
        code: i64,
        message: &str,
    ) -> Result<(), ClientError> {
        self.send(&json!({ "id": id, "error": { "code": code, "message": message } }))
            .await
    }

    pub async fn start_thread(
        &self,
        settings: &ThreadSettings,
    ) -> Result<ThreadResponse, ClientError> {
        self.request(method::THREAD_START, settings).await
    }

    /// Loads a thread from its rollout in Codex's home (`sessions/`) so turns continue it.
    pub async fn resume_thread(
        &self,
        params: &ThreadResumeParams,
    ) -> Result<ThreadResponse, ClientError> {
        self.request(method::THREAD_RESUME, params).await
    }

    /// Starts a turn; it runs on after the answer, reported by [`Events`] until `turn/completed`.
    pub async fn start_turn(&self, params: &TurnStartParams) -> Result<TurnResponse, ClientError> {
        self.request(method::TURN_START, params).await
    }

    /// Adds input to the running turn `turn_id` (Codex refuses when another turn runs); the
    /// model sees it in its next request. Returns the turn that took it.
    pub async fn steer(
        &self,
        thread_id: &str,
        turn_id: &str,
        input: Vec<UserInput>,
    ) -> Result<String, ClientError> {
        let params = TurnSteerParams {
            thread_id: thread_id.into(),
            expected_turn_id: turn_id.into(),
            input,
        };
        let r: TurnSteerResponse = self.request(method::TURN_STEER, &params).await?;
        Ok(r.turn_id)
    }

    /// Asks Codex to stop the turn; it ends with `turn/completed`, status `interrupted`.
    pub async fn interrupt(&self, thread_id: &str, turn_id: &str) -> Result<(), ClientError> {
        let params = TurnInterruptParams {
            thread_id: thread_id.into(),
            turn_id: turn_id.into(),
        };
        self.request::<_, Value>(method::TURN_INTERRUPT, &params)
            .await
            .map(drop)
    }

    /// Answers a command or file-change approval request.
    pub async fn answer_approval(
        &self,
        id: &RequestId,
        decision: ApprovalDecision,
    ) -> Result<(), ClientError> {
        self.respond(id, &ApprovalResponse { decision }).await
    }

    /// Answers a permissions request with what is granted (an empty profile denies all).
    pub async fn grant_permissions(
        &self,
        id: &RequestId,
        permissions: PermissionProfile,
        scope: PermissionScope,
    ) -> Result<(), ClientError> {
        self.respond(id, &PermissionsResponse { permissions, scope })
            .await
    }

    pub async fn answer_user_input(
        &self,
        id: &RequestId,
        answers: UserInputResponse,
    ) -> Result<(), ClientError> {
        self.respond(id, &answers).await
    }

    /// The turn running now, if any.
    pub fn active_turn(&self) -> Option<ActiveTurn> {
        self.inner.active_turn.borrow().clone()
    }

    /// Waits until no turn is running (or the server is gone).
    pub async fn turn_ended(&self) {
        let mut rx = self.inner.active_turn.clone();
        let _ = rx.wait_for(Option::is_none).await;
    }

    /// Closes the server's stdin: `codex app-server` exits once it has no connection left.
    pub(super) async fn close(&self) {
        if let Some(mut stdin) = self.inner.stdin.lock().await.take() {
            let _ = stdin.shutdown().await;
        }
    }

    async fn send(&self, message: &Value) -> Result<(), ClientError> {
        let mut line = serde_json::to_vec(message).expect("JSON values serialize");
        line.push(b'\n');
        let mut stdin = self.inner.stdin.lock().await;
        let Some(stdin) = stdin.as_mut() else {
            return Err(ClientError::Write(std::io::ErrorKind::BrokenPipe.into()));
        };
        stdin.write_all(&line).await.map_err(ClientError::Write)?;
        stdin.flush().await.map_err(ClientError::Write)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

async fn read_loop(
    stdout: ChildStdout,
    inner: Arc<Inner>,
    events: mpsc::UnboundedSender<Event>,
    active_turn: watch::Sender<Option<ActiveTurn>>,
) {
    let client = Client {
        inner: inner.clone(),
    };
    let mut lines = CappedLines::new(stdout, MAX_EVENT_LINE_BYTES);
    loop {
        let line = match lines.next_line().await {
            Ok(Some(Line::Text(line))) => line,
            Ok(Some(Line::TooLong)) => {
                tracing::warn!(
                    limit = MAX_EVENT_LINE_BYTES,
                    "skipped a Codex app-server message longer than the limit"
                );
                continue;
            }
            Ok(None) => break,
            Err(e) => {
                tracing::warn!(error = %e, "reading Codex app-server output failed");
                break;
            }
        };
        let Ok(Value::Object(mut msg)) = serde_json::from_str::<Value>(&line) else {
            if !line.trim().is_empty() {
                tracing::debug!(line = %line.chars().take(200).collect::<String>(), "non-JSON line from codex app-server");
            }
            continue;
        };
        let method = msg.get("method").and_then(Value::as_str).map(str::to_owned);
        let id = msg.remove("id");
        let params = msg.remove("params").unwrap_or(Value::Null);
        match (method, id) {
            (None, Some(id)) => {
                let Some(id) = id.as_i64() else { continue };
                let answer = match msg.remove("error") {
                    Some(error) => Err(serde_json::from_value(error).unwrap_or(RpcError {
                        code: 0,
                        message: "malformed error".into(),
                        data: None,
                    })),
                    None => Ok(msg.remove("result").unwrap_or(Value::Null)),
                };
                if let Some(tx) = lock(&inner.pending).remove(&id) {
                    let _ = tx.send(answer);
                }
            }
            (Some(method), Some(id)) => {
                let Ok(id) = serde_json::from_value::<RequestId>(id) else {
                    continue;
                };
                let request = ServerRequest::parse(&method, params);
                if let ServerRequest::Other { method, .. } = &request {
                    // Codex would wait for an answer forever; say no at once.
                    tracing::warn!(%method, "declined a Codex app-server request the host does not handle");
                    let msg = format!("{method} is not supported by codex-host");
                    let _ = client.respond_error(&id, METHOD_NOT_FOUND, &msg).await;
                    continue;
                }
                let _ = events.send(Event::Request { id, request });
            }
            (Some(method), None) => {
                let notification = ServerNotification::parse(&method, params);
                track_turn(&active_turn, &notification);
                let _ = events.send(Event::Notification(notification));
            }
            (None, None) => {}
        }
    }
    // Whoever still waits for an answer gets `Closed`; the event stream ends with this task.
    {
        let mut pending = lock(&inner.pending);
        inner.closed.store(true, Ordering::Release);
        pending.clear();
    }
    active_turn.send_replace(None);
}

fn track_turn(active: &watch::Sender<Option<ActiveTurn>>, n: &ServerNotification) {
    match n {
        ServerNotification::TurnStarted(t) => {
            active.send_replace(Some(ActiveTurn {
                thread_id: t.thread_id.clone(),
                turn_id: t.turn.id.clone(),
            }));
        }
        ServerNotification::TurnCompleted(t) => {
            active.send_if_modified(|cur| {
                let ends = cur.as_ref().is_some_and(|c| c.turn_id == t.turn.id);
                if ends {
                    *cur = None;
                }
                ends
            });
        }
        _ => {}
    }
}
