//! Driving `codex app-server`: one process per run, spawned like `codex exec` (its own process
//! group, the run's [`Launch`](super::isolation::Launch) with its environment and sandbox
//! wrapper), spoken to in JSON-RPC over stdio. This is what gives per-command approvals,
//! streamed text, steering, interrupts, questions to the user and the turn's diff.
//!
//! Input: a [`Spec`]; output: an [`AppServer`] (owns the process), a [`Client`] (requests and
//! answers, cloneable) and the [`Events`] stream (notifications and Codex's requests, typed in
//! [`incoming`]). Decides nothing: whether to approve, what to post, when to give up are the
//! run driver's. See `docs/app-server.md` for the protocol facts this relies on.

mod client;
pub mod incoming;
pub mod protocol;

use std::process::Stdio;
use std::time::Duration;

use tokio::process::Child;
use tokio::task::JoinHandle;

pub use client::{ActiveTurn, Client, ClientError, Event, Events};

use super::isolation::Launch;
use super::process::{self, signal_group, SpawnError};
use protocol::{ClientInfo, InitializeCapabilities, InitializeParams, InitializeResponse};

/// How to start one app-server.
#[derive(Debug, Clone)]
pub struct Spec {
    /// The program, its sandbox wrapper and its environment (from [`super::isolation`]).
    pub launch: Launch,
    /// Codex config overrides, `key=value` as `-c` takes them.
    pub overrides: Vec<String>,
    /// Notifications not to send on this connection (e.g. `item/commandExecution/outputDelta`
    /// when nobody shows command output live).
    pub opt_out: Vec<String>,
}

impl Spec {
    /// The argument list after the program name.
    pub fn args(&self) -> Vec<String> {
        let mut args = vec!["app-server".to_string()];
        for o in &self.overrides {
            args.push("-c".into());
            args.push(o.clone());
        }
        args
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Spawn(#[from] SpawnError),
    #[error("Codex app-server did not start: {error}{}", stderr_hint(.stderr_tail))]
    Handshake {
        error: ClientError,
        stderr_tail: String,
        /// How the process exited (`None`: a signal, or the host ended it).
        exit_code: Option<i32>,
    },
}

fn stderr_hint(tail: &str) -> String {
    let last = tail.lines().rev().find(|l| !l.trim().is_empty());
    last.map(|l| format!(" (Codex said: {})", l.trim()))
        .unwrap_or_default()
}

/// How the process ended.
#[derive(Debug)]
pub struct Finished {
    /// The exit code, `None` when a signal ended it.
    pub exit_code: Option<i32>,
    /// Whether the host had to signal the process group because Codex did not exit on its own.
    pub killed: bool,
    pub stderr_tail: String,
}

/// A running `codex app-server`. Dropping it kills the whole process group; [`AppServer::finish`]
/// ends it gracefully.
pub struct AppServer {
    client: Client,
    child: Child,
    pgid: Option<i32>,
    reader: JoinHandle<()>,
    stderr: JoinHandle<String>,
    init: InitializeResponse,
}

impl AppServer {
    /// Spawns the server and completes the handshake (`initialize`, then `initialized`).
    pub async fn start(spec: &Spec) -> Result<(AppServer, Events), StartError> {
        let mut child = process::spawn(&spec.launch, spec.args(), Stdio::piped())?;
        let pgid = child.id().map(|p| p as i32);
        tracing::debug!(pid = ?pgid, "codex app-server started");
        let stdin = child.stdin.take().expect("stdin is piped");
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = tokio::spawn(process::read_tail(
            child.stderr.take().expect("stderr is piped"),
        ));
        let (client, events, reader) = Client::start(stdin, stdout);
        let mut server = AppServer {
            client,
            child,
            pgid,
            reader,
            stderr,
            init: InitializeResponse {
                user_agent: String::new(),
                codex_home: String::new(),
            },
        };
        let params = InitializeParams {
            client_info: ClientInfo {
                name: "codex_mattermost".into(),
                title: Some("Codex for Mattermost".into()),
                version: env!("CARGO_PKG_VERSION").into(),
            },
            capabilities: Some(InitializeCapabilities {
                opt_out_notification_methods: spec.opt_out.clone(),
            }),
        };
        let handshake = async {
            let init: InitializeResponse = server
                .client
                .request(protocol::method::INITIALIZE, &params)
                .await?;
            server.client.notify(protocol::method::INITIALIZED).await?;
            Ok::<_, ClientError>(init)
        };
        match handshake.await {
            Ok(init) => server.init = init,
            Err(error) => {
                let finished = server.finish(Duration::ZERO).await;
                return Err(StartError::Handshake {
                    error,
                    stderr_tail: finished.stderr_tail,
                    exit_code: finished.exit_code,
                });
            }
        }
        Ok((server, events))
    }

    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// The process id (= its process group id), for the record of running runs.
    pub fn pid(&self) -> Option<u32> {
        self.pgid.map(|p| p as u32)
    }

    /// What the server said at `initialize` (its user agent and Codex home).
    pub fn info(&self) -> &InitializeResponse {
        &self.init
    }

    /// Cancel: interrupts the running turn, if any, and waits up to `grace` for it to end,
    /// then [`finish`](AppServer::finish)es the process with the same grace.
    pub async fn interrupt_and_finish(self, grace: Duration) -> Finished {
        if let Some(turn) = self.client.active_turn() {
            let client = self.client.clone();
            let interrupted = async move {
                if client
                    .interrupt(&turn.thread_id, &turn.turn_id)
                    .await
                    .is_ok()
                {
                    client.turn_ended().await;
                }
            };
            let _ = tokio::time::timeout(grace, interrupted).await;
        }
        self.finish(grace).await
    }

    /// Ends the server: closes its stdin (it exits by itself), then after `grace` SIGTERM to
    /// the group, after another `grace` SIGKILL. Anything left in the group is killed.
    pub async fn finish(mut self, grace: Duration) -> Finished {
        self.client.close().await;
        let mut killed = false;
        let mut status = tokio::time::timeout(grace, self.child.wait()).await.ok();
        if status.is_none() {
            killed = true;
            signal_group(self.pgid, libc::SIGTERM);
            status = tokio::time::timeout(grace.max(process::KILL_GRACE), self.child.wait())
                .await
                .ok();
        }
        if status.is_none() {
            signal_group(self.pgid, libc::SIGKILL);
            status = Some(self.child.wait().await);
        }
        signal_group(self.pgid, libc::SIGKILL);
        let exit_code = status.and_then(|s| s.ok()).and_then(|s| s.code());
        // Both end with the pipes; a process that escaped the group could hold them open.
        if tokio::time::timeout(process::KILL_GRACE, &mut self.reader)
            .await
            .is_err()
        {
            self.reader.abort();
        }
        let stderr_tail = tokio::time::timeout(process::KILL_GRACE, &mut self.stderr)
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
        Finished {
            exit_code,
            killed,
            stderr_tail,
        }
    }
}

impl Drop for AppServer {
    fn drop(&mut self) {
        // Also reached after `finish`, when the group is long gone (a stale group gives ESRCH).
        if matches!(self.child.try_wait(), Ok(None)) {
            signal_group(self.pgid, libc::SIGKILL);
        }
        self.reader.abort();
        self.stderr.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(program: &str) -> Spec {
        Spec {
            launch: Launch {
                wrapper: None,
                program: program.into(),
                codex_home: None,
                env: vec![("PATH".into(), "/usr/bin:/bin".into())],
            },
            overrides: vec!["analytics.enabled=false".into()],
            opt_out: vec![],
        }
    }

    #[test]
    fn overrides_follow_the_subcommand() {
        assert_eq!(
            spec("codex").args(),
            ["app-server", "-c", "analytics.enabled=false"]
        );
    }

    #[tokio::test]
    async fn a_missing_cli_is_a_spawn_error() {
        let Err(err) = AppServer::start(&spec("/nonexistent/codex")).await else {
            panic!("started")
        };
        assert!(
            matches!(err, StartError::Spawn(SpawnError::NotFound(_))),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_server_that_exits_at_once_fails_the_handshake_with_its_last_words() {
        // `sh app-server ...` cannot open a script named `app-server` and exits.
        let Err(err) = AppServer::start(&spec("/bin/sh")).await else {
            panic!("started")
        };
        let msg = err.to_string();
        // Closed or a broken pipe, depending on how fast `sh` gives up; either way it says why.
        assert!(matches!(err, StartError::Handshake { .. }), "{msg}");
        assert!(
            msg.contains("(Codex said: ") && msg.contains("app-server"),
            "{msg}"
        );
    }
}
