//! The one place that spawns Codex: `codex exec --json`, stdin closed, its own process group,
//! the environment and sandbox [`isolation`](super::isolation) built, stdout read to the end as
//! JSONL events, stderr kept as a bounded tail. Cancel and timeout end the whole group: SIGTERM,
//! then SIGKILL after a grace period. [`spawn`] and the line and signal helpers are shared with
//! [`app_server`](super::app_server), which starts `codex app-server` the same way.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use codex_policy::SandboxMode;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

use super::events::{parse_line, Event};
use super::isolation::Launch;

pub(super) const KILL_GRACE: Duration = Duration::from_secs(3);
const STDERR_TAIL_BYTES: usize = 4096;
/// The longest event line read from Codex; a longer one is skipped, so a run cannot exhaust the
/// host's memory with one line.
pub(super) const MAX_EVENT_LINE_BYTES: usize = 8 << 20;

/// Everything that decides how Codex is invoked for one run.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// The program, its sandbox and its environment.
    pub launch: Launch,
    pub repo: PathBuf,
    pub sandbox: SandboxMode,
    pub model: Option<String>,
    pub overrides: Vec<String>,
    /// Resume this Codex thread instead of starting a new one.
    pub resume: Option<String>,
    pub prompt: String,
    pub images: Vec<PathBuf>,
}

impl Invocation {
    /// The argument list after the program name. `-C` and the other exec options come before
    /// `resume`; `--` keeps a prompt that starts with `-` from being read as a flag.
    pub fn args(&self) -> Vec<String> {
        let mut a: Vec<String> = vec![
            "exec".into(),
            "--json".into(),
            "--skip-git-repo-check".into(),
        ];
        a.push("-C".into());
        a.push(self.repo.display().to_string());
        a.push("-s".into());
        a.push(self.sandbox.as_str().into());
        if let Some(m) = &self.model {
            a.push("-m".into());
            a.push(m.clone());
        }
        for o in &self.overrides {
            a.push("-c".into());
            a.push(o.clone());
        }
        // `exec -i` takes several values and would read `resume` as one more image, so images go
        // after the subcommand when resuming (`exec resume -i` attaches them to the new prompt).
        if let Some(id) = &self.resume {
            a.push("resume".into());
            a.extend(self.image_args());
            a.push("--".into());
            a.push(id.clone());
        } else {
            a.extend(self.image_args());
            a.push("--".into());
        }
        a.push(self.prompt.clone());
        a
    }

    fn image_args(&self) -> impl Iterator<Item = String> + '_ {
        self.images
            .iter()
            .flat_map(|img| ["-i".to_string(), img.display().to_string()])
    }
}

/// How the process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    Exited(Option<i32>),
    Cancelled,
    TimedOut,
}

#[derive(Debug)]
pub struct Finished {
    pub ending: Ending,
    pub stderr_tail: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("the Codex CLI was not found at `{0}`; install it (`npm install -g @openai/codex`) or set the Codex path in System Console")]
    NotFound(String),
    #[error("the project directory `{0}` does not exist or is not a directory; fix the Projects setting")]
    NoRepo(String),
    #[error("could not start `{path}`: {source}")]
    Other {
        path: String,
        source: std::io::Error,
    },
}

/// Starts `launch`'s program (inside its sandbox wrapper, if any) with `args` and exactly
/// `launch`'s environment, in its own process group, stdout and stderr piped. Shared by
/// `codex exec` ([`run`]) and `codex app-server` ([`super::app_server`]).
pub(super) fn spawn(
    launch: &Launch,
    args: Vec<String>,
    stdin: Stdio,
) -> Result<tokio::process::Child, SpawnError> {
    let mut cmd = match &launch.wrapper {
        Some((wrapper, args)) => {
            let mut c = Command::new(wrapper);
            c.args(args).arg(&launch.program);
            c
        }
        None => Command::new(&launch.program),
    };
    cmd.args(args)
        .env_clear()
        .envs(launch.env.iter().map(|(k, v)| (k, v)))
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    cmd.spawn().map_err(|e| match (e.kind(), &launch.wrapper) {
        (std::io::ErrorKind::NotFound, None) => SpawnError::NotFound(launch.program.clone()),
        (_, Some((wrapper, _))) => SpawnError::Other {
            path: wrapper.display().to_string(),
            source: e,
        },
        _ => SpawnError::Other {
            path: launch.program.clone(),
            source: e,
        },
    })
}

/// Runs Codex to completion, calling `on_event` for every parsed event in order.
pub async fn run(
    inv: &Invocation,
    cancel: &CancellationToken,
    timeout: Duration,
    on_spawn: impl FnOnce(u32),
    mut on_event: impl FnMut(Event),
) -> Result<Finished, SpawnError> {
    if !inv.repo.is_dir() {
        return Err(SpawnError::NoRepo(inv.repo.display().to_string()));
    }
    let mut child = spawn(&inv.launch, inv.args(), Stdio::null())?;
    let pgid = child.id().map(|p| p as i32);
    tracing::debug!(pid = ?pgid, "codex started");
    if let Some(p) = child.id() {
        on_spawn(p);
    }

    let stdout = child.stdout.take().expect("stdout is piped");
    let stderr = child.stderr.take().expect("stderr is piped");
    let stderr_task = tokio::spawn(read_tail(stderr));

    let mut lines = CappedLines::new(stdout, MAX_EVENT_LINE_BYTES);
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    let mut stopped: Option<Ending> = None;
    loop {
        tokio::select! {
            line = lines.next_line() => match line {
                Ok(Some(Line::Text(line))) => {
                    if let Some(ev) = parse_line(&line) {
                        on_event(ev);
                    } else if !line.trim().is_empty() {
                        tracing::debug!(line = %line.chars().take(200).collect::<String>(), "non-JSON line on codex stdout");
                    }
                }
                Ok(Some(Line::TooLong)) => tracing::warn!(limit = MAX_EVENT_LINE_BYTES, "skipped a Codex event line longer than the limit"),
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "reading codex stdout failed");
                    break;
                }
            },
            _ = cancel.cancelled(), if stopped.is_none() => {
                stopped = Some(Ending::Cancelled);
                terminate(pgid);
            }
            _ = &mut deadline, if stopped.is_none() => {
                stopped = Some(Ending::TimedOut);
                terminate(pgid);
            }
        }
    }
    let status = wait_with_grace(&mut child, pgid, stopped.is_some()).await;
    // Anything Codex left behind in its group goes with it.
    signal_group(pgid, libc::SIGKILL);
    let stderr_tail = stderr_task.await.unwrap_or_default();
    let ending = stopped.unwrap_or(Ending::Exited(status));
    Ok(Finished {
        ending,
        stderr_tail,
    })
}

async fn wait_with_grace(
    child: &mut tokio::process::Child,
    pgid: Option<i32>,
    terminating: bool,
) -> Option<i32> {
    if terminating {
        if let Ok(status) = tokio::time::timeout(KILL_GRACE, child.wait()).await {
            return status.ok().and_then(|s| s.code());
        }
        signal_group(pgid, libc::SIGKILL);
    }
    child.wait().await.ok().and_then(|s| s.code())
}

fn terminate(pgid: Option<i32>) {
    signal_group(pgid, libc::SIGTERM);
}

pub(super) fn signal_group(pgid: Option<i32>, sig: libc::c_int) {
    if let Some(pg) = pgid.filter(|p| *p > 0) {
        // SAFETY: killpg has no memory-safety preconditions; a stale group yields ESRCH.
        unsafe {
            libc::killpg(pg, sig);
        }
    }
}

/// A line of Codex's stdout, or the fact that one was too long to keep.
#[derive(Debug, PartialEq)]
pub(super) enum Line {
    Text(String),
    TooLong,
}

/// Newline-separated lines of at most `max` bytes; the bytes of a longer line are dropped as they
/// arrive. Cancel safe, like `Lines::next_line`: a partial line stays buffered between calls.
pub(super) struct CappedLines<R> {
    reader: BufReader<R>,
    buf: Vec<u8>,
    skipping: bool,
    max: usize,
}

impl<R: tokio::io::AsyncRead + Unpin> CappedLines<R> {
    pub(super) fn new(reader: R, max: usize) -> Self {
        CappedLines {
            reader: BufReader::new(reader),
            buf: Vec::new(),
            skipping: false,
            max,
        }
    }

    pub(super) async fn next_line(&mut self) -> std::io::Result<Option<Line>> {
        loop {
            let chunk = self.reader.fill_buf().await?;
            if chunk.is_empty() {
                if self.buf.is_empty() && !self.skipping {
                    return Ok(None);
                }
                return Ok(Some(self.take_line()));
            }
            let newline = chunk.iter().position(|b| *b == b'\n');
            let content = newline.unwrap_or(chunk.len());
            if !self.skipping {
                if self.buf.len() + content > self.max {
                    self.skipping = true;
                    self.buf = Vec::new();
                } else {
                    self.buf.extend_from_slice(&chunk[..content]);
                }
            }
            self.reader.consume(newline.map_or(content, |i| i + 1));
            if newline.is_some() {
                return Ok(Some(self.take_line()));
            }
        }
    }

    fn take_line(&mut self) -> Line {
        let buf = std::mem::take(&mut self.buf);
        if std::mem::take(&mut self.skipping) {
            Line::TooLong
        } else {
            Line::Text(String::from_utf8_lossy(&buf).into_owned())
        }
    }
}

pub(super) async fn read_tail(mut r: impl tokio::io::AsyncRead + Unpin) -> String {
    let mut tail: VecDeque<u8> = VecDeque::with_capacity(STDERR_TAIL_BYTES);
    let mut buf = [0u8; 8192];
    while let Ok(n) = r.read(&mut buf).await {
        if n == 0 {
            break;
        }
        tail.extend(&buf[..n]);
        let excess = tail.len().saturating_sub(STDERR_TAIL_BYTES);
        tail.drain(..excess);
    }
    String::from_utf8_lossy(tail.make_contiguous()).into_owned()
}

/// Ends a process group a previous host left running, if it is still a Codex group: its leader
/// must still lead group `pgid` and mention `codex` on its command line (so a reused pid is left
/// alone). Returns whether it was signalled.
pub fn kill_leftover_group(pgid: u32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pgid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name: state, ppid, pgrp, ...
    let pgrp = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(2))
        .and_then(|g| g.parse::<u32>().ok());
    let cmdline = std::fs::read(format!("/proc/{pgid}/cmdline")).unwrap_or_default();
    if pgrp != Some(pgid) || !String::from_utf8_lossy(&cmdline).contains("codex") {
        return false;
    }
    signal_group(Some(pgid as i32), libc::SIGKILL);
    true
}

/// `codex --version`, for health.
pub async fn codex_version(codex_path: &str) -> Option<String> {
    let out = Command::new(codex_path)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .await
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn overlong_event_lines_are_skipped_whole() {
        let input: &[u8] = b"{\"a\":1}\n0123456789abcdef\n\nlast";
        let mut lines = CappedLines::new(input, 10);
        assert_eq!(
            lines.next_line().await.unwrap(),
            Some(Line::Text("{\"a\":1}".into()))
        );
        assert_eq!(lines.next_line().await.unwrap(), Some(Line::TooLong));
        assert_eq!(
            lines.next_line().await.unwrap(),
            Some(Line::Text(String::new()))
        );
        assert_eq!(
            lines.next_line().await.unwrap(),
            Some(Line::Text("last".into()))
        );
        assert_eq!(lines.next_line().await.unwrap(), None);
    }

    fn unconfined() -> Launch {
        Launch {
            wrapper: None,
            program: "codex".into(),
            codex_home: None,
            env: vec![],
        }
    }

    #[test]
    fn resume_puts_exec_options_before_the_subcommand() {
        let inv = Invocation {
            launch: unconfined(),
            repo: "/srv/api".into(),
            sandbox: SandboxMode::ReadOnly,
            model: Some("gpt-5.5".into()),
            overrides: vec!["analytics.enabled=false".into()],
            resume: Some("th-1".into()),
            prompt: "-v and more".into(),
            images: vec![],
        };
        assert_eq!(
            inv.args().join(" "),
            "exec --json --skip-git-repo-check -C /srv/api -s read-only -m gpt-5.5 -c analytics.enabled=false resume -- th-1 -v and more"
        );
    }

    #[test]
    fn images_go_after_resume_and_before_the_prompt() {
        let mut inv = Invocation {
            launch: unconfined(),
            repo: "/srv/api".into(),
            sandbox: SandboxMode::ReadOnly,
            model: None,
            overrides: vec![],
            resume: Some("th-1".into()),
            prompt: "see this".into(),
            images: vec!["/tmp/i/image-0.png".into(), "/tmp/i/image-1.jpg".into()],
        };
        assert_eq!(
            inv.args().join(" "),
            "exec --json --skip-git-repo-check -C /srv/api -s read-only resume -i /tmp/i/image-0.png -i /tmp/i/image-1.jpg -- th-1 see this"
        );
        inv.resume = None;
        assert_eq!(
            inv.args().join(" "),
            "exec --json --skip-git-repo-check -C /srv/api -s read-only -i /tmp/i/image-0.png -i /tmp/i/image-1.jpg -- see this"
        );
    }
}
