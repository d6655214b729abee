//! The mock OpenAI Responses API that the real Codex CLI talks to in tests.
//!
//! Serves `POST <base_url>/responses` (base URL `http://127.0.0.1:PORT/v1`) with server-sent
//! events; the reply is chosen by the `[[mock:...]]` marker in the last user message (see
//! [`Scenario`]). Every request body is recorded in order: read it with [`MockModel::requests`] or
//! `GET /_mock/requests`, clear it with [`MockModel::reset`] or `POST /_mock/reset`. It never calls
//! anything itself and keeps no state besides that record and the tool call ids it issued.

mod scenario;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use serde_json::{json, Value};

use scenario::Reply;
pub use scenario::{
    last_user_text, Scenario, ASK_ANSWER_PREFIX, ASK_QUESTION, ASK_QUESTION_ID,
    ESCALATE_JUSTIFICATION, EXEC_ANSWER, EXEC_COMMAND, EXEC_REASONING, FAIL_MESSAGE,
    FAKE_AWS_KEY_ID, FAKE_GITHUB_TOKEN, FAKE_OPENAI_KEY, FAKE_SSH_KEY, LONG_END, PATCH_ANSWER,
    PATCH_FILE, PATCH_LINE, PERM_ANSWER_PREFIX, SHELL_ANSWER_PREFIX, SLOW_ANSWER,
};

use crate::server::{self, Handler, Recorded, Running};

/// How often a `[[mock:slow:N]]` stream shows it is alive.
const SLOW_TICK: Duration = Duration::from_millis(200);

/// A running mock model server. Dropping it stops the server and closes every open stream.
pub struct MockModel {
    running: Running,
    inner: Arc<Inner>,
}

struct Inner {
    state: Recorded<ModelState>,
}

/// The account's rate-limit usage the mock reports in the response headers Codex reads
/// (`x-codex-primary-*`, `x-codex-secondary-*`); Codex turns them into its rate-limit snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// The short window (a 5-hour window for ChatGPT plans).
    pub primary: RateLimitWindow,
    /// The long window (weekly).
    pub secondary: Option<RateLimitWindow>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitWindow {
    pub used_percent: u32,
    pub window_minutes: u32,
}

#[derive(Default)]
struct ModelState {
    requests: Vec<Value>,
    /// Tool calls this mock issued, so a follow-up is answered only for a call it made.
    calls: HashMap<String, Scenario>,
    next_id: u64,
    /// Sent as headers with every response while set.
    rate_limits: Option<RateLimits>,
}

impl MockModel {
    /// Starts on `127.0.0.1` with a free port.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    pub async fn start_on(addr: SocketAddr) -> anyhow::Result<Self> {
        let inner = Arc::new(Inner {
            state: Recorded::new(ModelState::default()),
        });
        let running = Running::bind(addr, inner.clone()).await?;
        Ok(Self { running, inner })
    }

    pub fn addr(&self) -> SocketAddr {
        self.running.addr()
    }

    /// The provider `base_url` for Codex: `http://127.0.0.1:PORT/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr())
    }

    /// The `-c` overrides that point Codex at this server.
    pub fn codex_args(&self) -> Vec<String> {
        crate::codex::provider_args(&self.base_url())
    }

    /// Every request body received so far, parsed, in arrival order.
    pub fn requests(&self) -> Vec<Value> {
        self.inner.state.read(|s| s.requests.clone())
    }

    /// Reports `limits` in the headers of every later response (`None`: no such headers, as
    /// an API-key provider answers).
    pub fn set_rate_limits(&self, limits: Option<RateLimits>) {
        self.inner.state.update(|s| s.rate_limits = limits);
    }

    pub fn reset(&self) {
        self.inner.state.update(|s| s.requests.clear());
    }

    /// Waits until `probe` over the recorded request bodies returns `Some`.
    pub async fn wait_for<R>(
        &self,
        mut probe: impl FnMut(&[Value]) -> Option<R>,
        timeout: Duration,
    ) -> anyhow::Result<R> {
        self.inner
            .state
            .wait_for(|s| probe(&s.requests), timeout)
            .await
    }

    /// Waits until at least `count` requests were received and returns them all.
    pub async fn wait_for_requests(
        &self,
        count: usize,
        timeout: Duration,
    ) -> anyhow::Result<Vec<Value>> {
        self.wait_for(|r| (r.len() >= count).then(|| r.to_vec()), timeout)
            .await
            .map_err(|e| anyhow::anyhow!("waiting for {count} model request(s): {e}"))
    }
}

impl Handler for Inner {
    async fn handle(self: Arc<Self>, req: Request<Incoming>) -> server::Response {
        let path = req.uri().path().to_owned();
        match (req.method().clone(), path.as_str()) {
            (Method::POST, p) if p.ends_with("/responses") => {
                let (_, body) = server::read_body(req).await;
                self.responses(body)
            }
            (Method::GET, "/_mock/requests") => {
                server::json(StatusCode::OK, &self.state.read(|s| s.requests.clone()))
            }
            (Method::POST, "/_mock/reset") => {
                self.state.update(|s| s.requests.clear());
                server::json(StatusCode::OK, &json!({ "ok": true }))
            }
            (method, _) => server::json(
                StatusCode::NOT_FOUND,
                &json!({ "error": {
                    "message": format!("mock model: no route for {method} {path}; only POST <base_url>/responses"),
                    "type": "invalid_request_error", "param": null, "code": null,
                }}),
            ),
        }
    }
}

impl Inner {
    fn responses(&self, raw: Bytes) -> server::Response {
        let body: Value = serde_json::from_slice(&raw)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&raw).into_owned()));
        let model = body
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or("mock")
            .to_owned();
        let (reply, delay, n, limits) = self.state.update(|s| {
            s.requests.push(body.clone());
            s.next_id += 1;
            let n = s.next_id;
            let (reply, delay) = choose_reply(s, &body, n);
            (reply, delay, n, s.rate_limits)
        });

        let response_id = format!("resp_mock_{n}");
        let item_id = format!("item_mock_{n}");
        let reasoning = matches!(&reply, Reply::FunctionCall { .. }).then_some(EXEC_REASONING);
        let events =
            scenario::reply_events(&response_id, &model, &item_id, raw.len(), reasoning, &reply);
        let created = json!({ "type": "response.created",
            "response": scenario::response_stub(&response_id, &model, "in_progress") });
        let in_progress = json!({ "type": "response.in_progress",
            "response": scenario::response_stub(&response_id, &model, "in_progress") });

        let (tx, body) = server::channel_body();
        tokio::spawn(async move {
            let send = |event: &Value| tx.send(Bytes::from(scenario::sse(event)));
            if send(&created).await.is_err() {
                return;
            }
            let until = tokio::time::Instant::now() + delay;
            while tokio::time::Instant::now() < until {
                tokio::time::sleep(SLOW_TICK.min(until - tokio::time::Instant::now())).await;
                if send(&in_progress).await.is_err() {
                    return; // the client went away (cancelled run)
                }
            }
            for event in &events {
                if send(event).await.is_err() {
                    return;
                }
            }
        });

        let mut response = hyper::Response::new(body);
        let headers = response.headers_mut();
        headers.insert(
            hyper::header::CONTENT_TYPE,
            "text/event-stream; charset=utf-8".parse().unwrap(),
        );
        headers.insert(hyper::header::CACHE_CONTROL, "no-cache".parse().unwrap());
        if let Ok(value) = format!("req_mock_{n}").parse() {
            headers.insert("x-request-id", value);
        }
        if let Some(limits) = limits {
            let windows = [
                ("primary", Some(limits.primary)),
                ("secondary", limits.secondary),
            ];
            for (name, window) in windows {
                let Some(w) = window else { continue };
                let used = format!("x-codex-{name}-used-percent");
                let minutes = format!("x-codex-{name}-window-minutes");
                for (header, value) in [(used, w.used_percent), (minutes, w.window_minutes)] {
                    if let (Ok(h), Ok(v)) = (
                        hyper::header::HeaderName::try_from(header),
                        value.to_string().parse(),
                    ) {
                        headers.insert(h, v);
                    }
                }
            }
        }
        response
    }
}

fn choose_reply(state: &mut ModelState, body: &Value, n: u64) -> (Reply, Duration) {
    if let Some((kind, call_id)) = scenario::trailing_tool_output(body) {
        let reply = match state.calls.get(call_id) {
            Some(Scenario::Exec) => Reply::Message(EXEC_ANSWER.into()),
            Some(Scenario::Patch) => Reply::Message(PATCH_ANSWER.into()),
            Some(Scenario::Shell | Scenario::Escalated) => Reply::Message(format!(
                "{SHELL_ANSWER_PREFIX}\n{}",
                scenario::tool_output_text(body)
            )),
            Some(Scenario::Perm) => Reply::Message(format!(
                "{PERM_ANSWER_PREFIX} {}",
                scenario::tool_output_text(body)
            )),
            Some(Scenario::Ask) => Reply::Message(format!(
                "{ASK_ANSWER_PREFIX} {}",
                scenario::tool_output_text(body)
            )),
            _ => Reply::Failed(format!(
                "mock model: got a {kind} for call_id {call_id}, which this mock never issued"
            )),
        };
        return (reply, Duration::ZERO);
    }
    let prompt = last_user_text(body).unwrap_or_default();
    let scenario = Scenario::from_prompt(&prompt);
    let reply = match scenario {
        Scenario::Echo => Reply::Message(scenario::echo_answer(&prompt)),
        Scenario::Exec
        | Scenario::Patch
        | Scenario::Shell
        | Scenario::Escalated
        | Scenario::Ask
        | Scenario::Perm => {
            let call_id = format!("call_mock_{n}");
            state.calls.insert(call_id.clone(), scenario);
            match scenario {
                Scenario::Exec => scenario::exec_call(call_id),
                Scenario::Patch => scenario::patch_call(call_id),
                Scenario::Ask => scenario::ask_call(call_id),
                Scenario::Perm => {
                    scenario::perm_call(call_id, scenario::perm_path(&prompt).unwrap_or_default())
                }
                Scenario::Escalated => scenario::escalated_call(
                    call_id,
                    scenario::escalated_command(&prompt).unwrap_or_default(),
                ),
                _ => scenario::shell_call(
                    call_id,
                    scenario::shell_command(&prompt).unwrap_or_default(),
                ),
            }
        }
        Scenario::Fail => Reply::Failed(FAIL_MESSAGE.into()),
        Scenario::Slow { seconds } => {
            return (
                Reply::Message(SLOW_ANSWER.into()),
                Duration::from_secs(seconds),
            )
        }
        Scenario::Long { chars } => Reply::Message(scenario::long_answer(chars)),
        Scenario::Secret => Reply::Message(scenario::secret_answer()),
    };
    (reply, Duration::ZERO)
}
