//! The socket API: HTTP/1.1 + JSON on a Unix socket, bearer secret and peer-uid checked on every
//! connection and request. Routes map one-to-one onto [`Host`] methods.
//!
//! Input: bytes on the socket; output: JSON responses. Owns no behaviour beyond parsing,
//! authentication and routing.

use std::convert::Infallible;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::net::UnixListener;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::buttons::constant_time_eq;
use crate::protocol::*;
use crate::state::Host;

const MAX_BODY: usize = 1 << 20;
/// Connections served at once. The plugin keeps a pool of keep-alive connections that grows with
/// bursts of commands; far more than a burst needs means something is wrong.
const MAX_CONNECTIONS: usize = 512;
/// A client that has not sent its request headers by then is disconnected.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

pub struct ServerOptions {
    pub socket: PathBuf,
    pub secret: String,
    /// Uids allowed to connect besides the host's own.
    pub allow_uids: Vec<u32>,
    /// A group to give the socket file to (so a server in that group can open it, without
    /// sharing any other file of the host's).
    pub socket_group: Option<String>,
}

/// Binds the socket (mode 0660, and the group if one is given).
pub fn bind(opts: &ServerOptions) -> Result<UnixListener> {
    bind_path(&opts.socket, opts.socket_group.as_deref())
}

/// Serves on `listener` until `shutdown` fires; then stops accepting and lets open connections
/// finish their current request.
pub async fn serve(
    host: Arc<Host>,
    listener: UnixListener,
    opts: ServerOptions,
    shutdown: CancellationToken,
) -> Result<()> {
    info!(socket = %opts.socket.display(), "listening");
    let own_uid = unsafe { libc::geteuid() };
    let auth = Arc::new(Auth {
        secret: opts.secret,
        uids: std::iter::once(own_uid).chain(opts.allow_uids).collect(),
    });
    let conns = tokio_util::task::TaskTracker::new();
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let (stream, _) = tokio::select! {
            r = listener.accept() => match r {
                Ok(s) => s,
                Err(e) => { warn!(error = %e, "accept failed"); continue; }
            },
            _ = shutdown.cancelled() => break,
        };
        // Checked before a byte is read: a peer of another uid gets nothing from this host.
        let peer_uid = stream.peer_cred().map(|c| c.uid()).ok();
        if !peer_uid.is_some_and(|u| auth.uids.contains(&u)) {
            warn!(peer_uid = ?peer_uid, "refused a connection from a uid that may not connect; start codex-host with --allow-uid for the Mattermost server's user");
            continue;
        }
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            warn!(
                limit = MAX_CONNECTIONS,
                "refused a connection: too many open connections"
            );
            continue;
        };
        let (host, auth, shutdown) = (host.clone(), auth.clone(), shutdown.clone());
        conns.spawn(async move {
            let _slot = slot;
            let svc = hyper::service::service_fn(move |req| {
                let (host, auth) = (host.clone(), auth.clone());
                async move { Ok::<_, Infallible>(handle(&host, &auth, peer_uid, req).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .serve_connection(TokioIo::new(stream), svc);
            tokio::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => if let Err(e) = r { debug!(error = %e, "connection ended with an error") },
                _ = shutdown.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
    conns.close();
    conns.wait().await;
    let _ = std::fs::remove_file(&opts.socket);
    Ok(())
}

fn bind_path(path: &Path, group: Option<&str>) -> Result<UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the socket directory {}", dir.display()))?;
    }
    if path.exists() {
        // A live host would answer; a stale file from a crash would block bind.
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            anyhow::bail!(
                "another codex-host is already listening on {}; stop it or choose another --socket",
                path.display()
            );
        }
        std::fs::remove_file(path)
            .with_context(|| format!("removing the stale socket {}", path.display()))?;
    }
    let listener =
        UnixListener::bind(path).with_context(|| format!("binding {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .with_context(|| format!("setting mode 0660 on {}", path.display()))?;
    if let Some(group) = group {
        let gid = group_id(group)?;
        std::os::unix::fs::chown(path, None, Some(gid))
            .with_context(|| format!("giving {} to the group {group}", path.display()))?;
    }
    Ok(listener)
}

/// The id of a group given by name or number.
fn group_id(group: &str) -> Result<u32> {
    if let Ok(gid) = group.parse::<u32>() {
        return Ok(gid);
    }
    let name = std::ffi::CString::new(group).context("a group name has no NUL byte")?;
    // SAFETY: getgrnam takes a valid C string; the returned record is read at once, before any
    // other call could reuse its static storage.
    let record = unsafe { libc::getgrnam(name.as_ptr()) };
    if record.is_null() {
        anyhow::bail!("--socket-group: there is no group `{group}` on this machine");
    }
    Ok(unsafe { (*record).gr_gid })
}

struct Auth {
    secret: String,
    uids: Vec<u32>,
}

impl Auth {
    fn check(
        &self,
        peer_uid: Option<u32>,
        req: &Request<Incoming>,
    ) -> Result<(), (StatusCode, String)> {
        match peer_uid {
            Some(uid) if self.uids.contains(&uid) => {}
            other => {
                return Err((
                    StatusCode::FORBIDDEN,
                    format!("peer uid {other:?} may not connect; start codex-host with --allow-uid for the Mattermost server's user"),
                ))
            }
        }
        let given = req
            .headers()
            .get(hyper::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if given.is_empty() || !constant_time_eq(given.as_bytes(), self.secret.as_bytes()) {
            return Err((StatusCode::UNAUTHORIZED, "missing or wrong bearer secret; the plugin and the host must share the same secret".into()));
        }
        Ok(())
    }
}

async fn handle(
    host: &Arc<Host>,
    auth: &Auth,
    peer_uid: Option<u32>,
    req: Request<Incoming>,
) -> Response<Full<Bytes>> {
    if let Err((status, msg)) = auth.check(peer_uid, &req) {
        warn!(%status, path = %req.uri().path(), "refused a socket request");
        return error(status, msg);
    }
    let method = req.method().clone();
    let path_and_query = req
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    let bytes = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("could not read the request body: {e}"),
            )
        }
    };
    route(host, &method, &path_and_query, &bytes).await
}

/// Serves one request of the contract (docs/socket-contract.md), whichever way it came: the
/// socket, or an envelope from the plugin to a remote runner (`remote`). Authentication is the
/// caller's.
pub async fn route(
    host: &Arc<Host>,
    method: &Method,
    path_and_query: &str,
    bytes: &[u8],
) -> Response<Full<Bytes>> {
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    match (method.clone(), path) {
        (Method::GET, "/v1/health") => json(StatusCode::OK, &host.health()),
        (Method::POST, "/v1/commands") => match body::<CommandRequest>(bytes) {
            Ok(r) => json(StatusCode::OK, &host.command(r).await),
            Err(e) => e,
        },
        (Method::POST, "/v1/posts") => match body::<PostRequest>(bytes) {
            Ok(r) => json(StatusCode::OK, &host.reply(r).await),
            Err(e) => e,
        },
        (Method::POST, "/v1/actions") => match body::<ActionRequest>(bytes) {
            Ok(r) => json(StatusCode::OK, &host.action(r).await),
            Err(e) => e,
        },
        (Method::GET, "/v1/autocomplete/projects") => {
            let channel = query_param(query, "channel_id").unwrap_or_default();
            json(StatusCode::OK, &host.autocomplete_projects(&channel))
        }
        (Method::PUT, "/v1/config") => match body::<ConfigRequest>(bytes) {
            Ok(r) => match host.apply_config(r, true).await {
                Ok(warnings) => json(StatusCode::OK, &ConfigResponse { ok: true, warnings }),
                Err(problems) => {
                    warn!(problems = %problems.join(" | "), "rejected a configuration");
                    error(
                        StatusCode::BAD_REQUEST,
                        format!("The settings were not applied: {}", problems.join(" ")),
                    )
                }
            },
            Err(e) => e,
        },
        (
            _,
            "/v1/health"
            | "/v1/commands"
            | "/v1/posts"
            | "/v1/actions"
            | "/v1/autocomplete/projects"
            | "/v1/config",
        ) => error(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{method} is not allowed on {path}"),
        ),
        _ => error(
            StatusCode::NOT_FOUND,
            format!("no route {path}; see docs/socket-contract.md"),
        ),
    }
}

#[allow(clippy::result_large_err)]
fn body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Response<Full<Bytes>>> {
    serde_json::from_slice(bytes)
        .map_err(|e| error(StatusCode::BAD_REQUEST, format!("invalid JSON body: {e}")))
}

fn query_param(query: &str, key: &str) -> Option<String> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v.to_string())
}

fn json<T: Serialize>(status: StatusCode, value: &T) -> Response<Full<Bytes>> {
    let body = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    Response::builder()
        .status(status)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))
        .expect("valid response")
}

fn error(status: StatusCode, message: String) -> Response<Full<Bytes>> {
    json(status, &ErrorBody { error: message })
}
