//! The one place that spawns Codex ([`spawn`]): the environment and sandbox
//! [`isolation`](super::isolation) built, its own process group, stdout and stderr piped, stderr
//! kept as a bounded tail; plus the line reader and group signals that
//! [`app_server`](super::app_server) uses. What a run is ([`Invocation`]) and how it ended
//! ([`Finished`]) live here too; [`session`](super::session) drives it.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use codex_policy::SandboxMode;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::Command;

use super::isolation::Launch;

pub(super) const KILL_GRACE: Duration = Duration::from_secs(3);
const STDERR_TAIL_BYTES: usize = 4096;
/// The longest event line read from Codex; a longer one is skipped, so a run cannot exhaust the
/// host's memory with one line.
pub(super) const MAX_EVENT_LINE_BYTES: usize = 8 << 20;

/// Everything that decides how Codex runs for one run.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// The program, its sandbox and its environment.
    pub launch: Launch,
    pub repo: PathBuf,
    pub sandbox: SandboxMode,
    pub model: Option<String>,
    /// Codex config overrides (`-c key=value`).
    pub overrides: Vec<String>,
    /// Resume this Codex thread instead of starting a new one.
    pub resume: Option<String>,
    pub prompt: String,
    pub images: Vec<PathBuf>,
}

impl Invocation {
    /// The run as `codex exec` options would state it (`-C`, `-s`, `-m`, `-c`, `resume`), for
    /// the log; the prompt is left out (it can carry a whole transcript).
    pub fn describe(&self) -> String {
        let mut s = format!(
            "app-server -C {} -s {}",
            self.repo.display(),
            self.sandbox.as_str()
        );
        if let Some(m) = &self.model {
            s.push_str(&format!(" -m {m}"));
        }
        for o in &self.overrides {
            s.push_str(&format!(" -c {o}"));
        }
        if let Some(id) = &self.resume {
            s.push_str(&format!(" resume {id}"));
        }
        for i in &self.images {
            s.push_str(&format!(" -i {}", i.display()));
        }
        s
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
/// `launch`'s environment, in its own process group, stdout and stderr piped. Used by
/// [`super::app_server`] to start `codex app-server`.
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

    #[test]
    fn the_logged_invocation_states_the_sandbox_and_leaves_out_the_prompt() {
        let inv = Invocation {
            launch: Launch {
                wrapper: None,
                program: "codex".into(),
                codex_home: None,
                env: vec![],
            },
            repo: "/srv/api".into(),
            sandbox: SandboxMode::ReadOnly,
            model: Some("gpt-5.5".into()),
            overrides: vec!["analytics.enabled=false".into()],
            resume: Some("th-1".into()),
            prompt: "secret plans".into(),
            images: vec!["/tmp/i/image-0.png".into()],
        };
        assert_eq!(
            inv.describe(),
            "app-server -C /srv/api -s read-only -m gpt-5.5 -c analytics.enabled=false resume th-1 -i /tmp/i/image-0.png"
        );
    }
}
