//! `codex-host connect`: the host on another machine, dialling out to the Mattermost server. It
//! long-polls the plugin (`POST /plugins/<id>/runner/v1/poll`) for envelopes — the same requests
//! the socket carries — serves each with [`crate::api::route`], and posts the answer back
//! (`POST .../runner/v1/answer`). Its Mattermost calls go through the plugin's relay with the
//! runner's token (`MattermostClient::through_plugin`). No inbound port, no tunnel.
//!
//! Input: the server URL, the plugin id and the runner token; output: nothing but the host's own
//! posts. A refused token stops the runner with a message naming what to do; everything else
//! (server down, proxy hiccups) is retried with a bounded backoff.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Result};
use http_body_util::BodyExt;
use hyper::Method;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::chat::RUNNER_TOKEN_HEADER;
use crate::state::Host;

/// Longer than the plugin holds a poll (25 s), so an idle poll ends on the plugin's side.
const POLL_TIMEOUT: Duration = Duration::from_secs(60);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

pub struct ConnectOptions {
    /// The Mattermost server, as people reach it (`https://chat.example.com`).
    pub server: String,
    pub plugin_id: String,
    pub token: String,
    /// Shown to admins in `/codex runner list`.
    pub hostname: String,
}

#[derive(Serialize)]
struct PollRequest<'a> {
    version: &'a str,
    hostname: &'a str,
    projects: Vec<String>,
    /// False until this process took settings: the plugin then sends them, even if it sent
    /// the same ones to this runner's previous process.
    configured: bool,
}

#[derive(Deserialize)]
struct PollResponse {
    envelopes: Vec<Envelope>,
}

/// One request of the socket contract, as the plugin wraps it for a runner.
#[derive(Deserialize)]
struct Envelope {
    id: String,
    method: String,
    path: String,
    #[serde(default)]
    body: Value,
}

#[derive(Serialize)]
struct Answer {
    id: String,
    status: u16,
    body: Value,
}

struct Link {
    http: reqwest::Client,
    base: String,
    opts: ConnectOptions,
}

/// Polls until `shutdown` fires, or until the server refuses the token.
pub async fn connect(
    host: Arc<Host>,
    opts: ConnectOptions,
    shutdown: CancellationToken,
) -> Result<()> {
    let base = format!(
        "{}/plugins/{}/runner/v1",
        opts.server.trim_end_matches('/'),
        opts.plugin_id
    );
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(POLL_TIMEOUT)
        .user_agent(concat!("codex-host/", env!("CARGO_PKG_VERSION")))
        .build()?;
    let link = Arc::new(Link { http, base, opts });
    let mut backoff = Duration::from_secs(1);
    let mut connected = false;
    loop {
        let config = host.config();
        let configured = config.is_some();
        let projects = config
            .map(|c| c.projects.keys().cloned().collect())
            .unwrap_or_default();
        let poll = link
            .http
            .post(format!("{}/poll", link.base))
            .header(RUNNER_TOKEN_HEADER, &link.opts.token)
            .json(&PollRequest {
                version: env!("CARGO_PKG_VERSION"),
                hostname: &link.opts.hostname,
                projects,
                configured,
            })
            .send();
        let sent = tokio::select! {
            r = poll => r,
            _ = shutdown.cancelled() => return Ok(()),
        };
        let problem = match sent {
            Ok(resp) if resp.status().is_success() => match resp.json::<PollResponse>().await {
                Ok(polled) => {
                    if !connected {
                        info!(server = %link.opts.server, "connected to the Mattermost server");
                        connected = true;
                    }
                    backoff = Duration::from_secs(1);
                    for env in polled.envelopes {
                        tokio::spawn(serve(host.clone(), link.clone(), env));
                    }
                    continue;
                }
                Err(e) => format!("the poll's answer is not the runner protocol: {e}"),
            },
            Ok(resp)
                if resp.status() == reqwest::StatusCode::UNAUTHORIZED
                    || resp.status() == reqwest::StatusCode::FORBIDDEN =>
            {
                let said = resp.text().await.unwrap_or_default();
                bail!("the server refused this runner's token ({said}); a system admin can issue a new one with `/codex runner add <name>` after `/codex runner remove <name>`");
            }
            Ok(resp) if resp.status() == reqwest::StatusCode::NOT_FOUND => format!(
                "the server has no Codex plugin `{}` answering at {} (is it installed and enabled, and is --plugin-id right?)",
                link.opts.plugin_id, link.base
            ),
            Ok(resp) => format!("the server answered {}", resp.status()),
            Err(e) => format!("could not reach the server: {e}"),
        };
        if connected {
            warn!(problem = %problem, "lost the connection to the Mattermost server; retrying");
            connected = false;
        } else {
            warn!(problem = %problem, retry_in = ?backoff, "cannot connect to the Mattermost server yet");
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = shutdown.cancelled() => return Ok(()),
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Serves one envelope and posts its answer.
async fn serve(host: Arc<Host>, link: Arc<Link>, env: Envelope) {
    let Ok(method) = env.method.parse::<Method>() else {
        warn!(method = %env.method, "an envelope with an unknown method was ignored");
        return;
    };
    let mut body = env.body;
    if method == Method::PUT && env.path == "/v1/config" {
        // The plugin sends runners neither the server's URL nor the bot's token: this runner
        // reaches the server where it dialled, through the relay, with its own token.
        if let Value::Object(doc) = &mut body {
            doc.insert("mattermost_url".into(), link.opts.server.clone().into());
            doc.insert("bot_token".into(), link.opts.token.clone().into());
        }
    }
    let bytes = if body.is_null() {
        Vec::new()
    } else {
        serde_json::to_vec(&body).unwrap_or_default()
    };
    let resp = crate::api::route(&host, &method, &env.path, &bytes).await;
    let status = resp.status().as_u16();
    let out = resp
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let answer = Answer {
        id: env.id,
        status,
        body: serde_json::from_slice(&out).unwrap_or(Value::Null),
    };
    let sent = link
        .http
        .post(format!("{}/answer", link.base))
        .header(RUNNER_TOKEN_HEADER, &link.opts.token)
        .json(&answer)
        .send()
        .await;
    match sent {
        Ok(r) if r.status().is_success() => {}
        Ok(r) => {
            warn!(path = %env.path, status = %r.status(), "the server did not take an answer (the plugin gave up waiting for it)")
        }
        Err(e) => warn!(path = %env.path, error = %e, "could not send an answer"),
    }
}
