//! What a Codex run may see: its environment, and (with bubblewrap) the filesystem.
//!
//! Codex is a process the host does not trust: a prompt or a file it reads can steer it, and its
//! own sandboxes restrict writes and network, not reads. So every run gets an environment built
//! from an allowlist, never the host's, and — unless an admin turned isolation off — a mount
//! namespace built by bubblewrap that holds only the system's programs and libraries, the project's
//! repository, a fresh Codex home (the admin's login and config read-only, the thread's own
//! sessions), a private `/tmp` and a private `/proc`. The host's state directory and socket, the
//! Mattermost server's files, other projects and other runs are simply not there. Codex's own
//! sandbox (`-s`) still applies inside.
//!
//! Input: the run's repository, its thread key and the settings; output: the program, arguments
//! and environment to spawn. Spawns nothing except the one-off availability probe.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Where the run's Codex home and `HOME` live inside the sandbox (a private tmpfs).
pub const INNER_ROOT: &str = "/codex-run";
const INNER_CODEX_HOME: &str = "/codex-run/home";
const INNER_HOME: &str = "/codex-run/user";

/// Variables Codex always gets (with the host's values), besides those an admin names.
const BASE_ENV: &[&str] = &["PATH", "LANG", "TERM", "TZ"];
/// Names an admin may not pass on: they are the host's own credentials.
const NEVER_PASSED: &[&str] = &["CODEX_HOST_SECRET", "CODEX_HOST_BWRAP"];

/// System directories bound read-only into every sandbox (when they exist). Deliberately not
/// `/opt`, `/srv`, `/var`, `/home`, `/root` or `/run`: the Mattermost server and other people's
/// files usually live there.
const SYSTEM_DIRS: &[&str] = &[
    "/usr", "/etc", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32",
];

const UNPROBED: &str = "the host has not received its settings yet, so bubblewrap was not checked";

/// The `Run isolation` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IsolationMode {
    /// Each run in its own mount and PID namespace, built with bubblewrap.
    #[default]
    Bubblewrap,
    /// No namespace: Codex sees what the host's OS user sees (only the environment is filtered).
    Off,
}

impl IsolationMode {
    pub const ACCEPTED: &'static str = "bubblewrap, off";

    pub fn parse(s: &str) -> Option<IsolationMode> {
        match s.trim() {
            "" | "bubblewrap" => Some(IsolationMode::Bubblewrap),
            "off" => Some(IsolationMode::Off),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            IsolationMode::Bubblewrap => "bubblewrap",
            IsolationMode::Off => "off",
        }
    }
}

/// Checks the names of the `Codex environment` setting; returns the problems.
pub fn check_env_names(names: &[String]) -> Vec<String> {
    let mut problems = Vec::new();
    for n in names {
        if n.is_empty()
            || !n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            || n.starts_with(|c: char| c.is_ascii_digit())
        {
            problems.push(format!("Codex environment: `{n}` is not a variable name; give one name per line, e.g. OPENAI_API_KEY."));
        } else if NEVER_PASSED.contains(&n.as_str()) || n.starts_with("MM_") {
            problems.push(format!("Codex environment: `{n}` belongs to the Codex host or the Mattermost server and is never passed to Codex."));
        }
    }
    problems
}

/// The isolation the host applies to every run, as probed on this machine.
#[derive(Debug, Clone)]
pub struct Isolation {
    pub mode: IsolationMode,
    bwrap: PathBuf,
    /// Where each thread's Codex sessions are kept (one directory per thread key).
    sessions_dir: PathBuf,
    /// Why bubblewrap cannot be used here, if it cannot.
    problem: Option<String>,
}

/// What `GET /v1/health` and `/codex status` say about isolation.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct IsolationInfo {
    /// `bubblewrap` or `off`, as configured.
    pub mode: String,
    /// Whether runs are confined right now.
    pub active: bool,
    /// Why runs are refused, when the configured isolation cannot be set up.
    pub problem: Option<String>,
}

/// Everything one run's sandbox is made of.
#[derive(Debug, Clone)]
pub struct RunSpace<'a> {
    pub repo: &'a Path,
    /// The thread this run belongs to (its sessions persist across the thread's runs).
    pub thread_key: &'a str,
    /// The admin's Codex home (`Codex home` setting; `None`: the host's `CODEX_HOME`, else
    /// `~/.codex`): its login and config are shared read-only.
    pub admin_codex_home: Option<&'a Path>,
    /// Extra read-only paths the run needs (the images attached to its prompt; the main
    /// repository's git directory when the run works in a worktree).
    pub read_only: &'a [PathBuf],
    /// Writable paths bound over the read-only ones (what git writes for a worktree's commits).
    pub writable: &'a [PathBuf],
    /// The names of the `Codex environment` setting.
    pub pass_env: &'a [String],
    /// The Codex thread this run resumes, if any.
    pub resume: Option<&'a str>,
}

/// How to start Codex for one run.
#[derive(Debug, Clone, PartialEq)]
pub struct Launch {
    /// `Some(bwrap, its arguments up to and including `--`)` when confined.
    pub wrapper: Option<(PathBuf, Vec<String>)>,
    /// The Codex program to execute (resolved to its real path when confined).
    pub program: String,
    /// `CODEX_HOME` as Codex sees it.
    pub codex_home: Option<PathBuf>,
    /// The whole environment Codex starts with.
    pub env: Vec<(String, String)>,
}

impl Isolation {
    /// An isolation of `mode`, using `bwrap` (a name looked up on `PATH`, or a path), keeping
    /// thread sessions under `state_dir/sessions`. Call [`Isolation::probe`] before use.
    pub fn new(mode: IsolationMode, bwrap: impl Into<PathBuf>, state_dir: &Path) -> Isolation {
        Isolation {
            mode,
            bwrap: bwrap.into(),
            sessions_dir: state_dir.join("sessions"),
            problem: Some(UNPROBED.into()),
        }
    }

    /// The host's state directory (worktrees live under it unless an admin says otherwise).
    pub fn state_dir(&self) -> &Path {
        self.sessions_dir.parent().unwrap_or(&self.sessions_dir)
    }

    /// The same bubblewrap and state directory with another mode, not yet probed.
    pub fn with_mode(&self, mode: IsolationMode) -> Isolation {
        Isolation {
            mode,
            problem: Some(UNPROBED.into()),
            ..self.clone()
        }
    }

    /// Checks that bubblewrap can build a sandbox here (it is installed, and namespaces are
    /// allowed), by starting `true` in the same kind of sandbox a run gets.
    pub async fn probe(mut self) -> Isolation {
        self.problem = match self.mode {
            IsolationMode::Off => None,
            IsolationMode::Bubblewrap => self.try_bwrap().await.err(),
        };
        self
    }

    async fn try_bwrap(&self) -> Result<(), String> {
        let mut args = system_binds();
        args.extend(["--tmpfs", "/tmp", "--", "true"].map(String::from));
        let out = tokio::process::Command::new(&self.bwrap)
            .args(base_args())
            .args(&args)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output();
        match tokio::time::timeout(Duration::from_secs(10), out).await {
            Err(_) => Err(format!("`{}` did not finish a test sandbox within 10 s.", self.bwrap.display())),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => Err(format!(
                "bubblewrap (`{}`) is not installed on the Codex host's machine. Install it (Debian/Ubuntu: `apt-get install bubblewrap`; Fedora/RHEL: `dnf install bubblewrap`)",
                self.bwrap.display()
            )),
            Ok(Err(e)) => Err(format!("bubblewrap (`{}`) could not be started: {e}", self.bwrap.display())),
            Ok(Ok(o)) if o.status.success() => Ok(()),
            Ok(Ok(o)) => {
                let stderr = String::from_utf8_lossy(&o.stderr);
                let first = stderr.lines().find(|l| !l.trim().is_empty()).unwrap_or("no message").trim().to_string();
                Err(format!(
                    "bubblewrap could not create a sandbox on the Codex host's machine (`{first}`). It needs user namespaces: allow them (`sysctl -w kernel.unprivileged_userns_clone=1`; on Ubuntu 24.04 also `kernel.apparmor_restrict_unprivileged_userns=0` or an AppArmor profile for bwrap), or run the host where they are allowed (some containers forbid them)"
                ))
            }
        }
    }

    pub fn info(&self) -> IsolationInfo {
        IsolationInfo {
            mode: self.mode.as_str().into(),
            active: self.mode == IsolationMode::Bubblewrap && self.problem.is_none(),
            problem: self.problem.clone(),
        }
    }

    /// The message a refused run shows, when isolation is configured but cannot be set up.
    pub fn refusal(&self) -> Option<String> {
        self.problem.as_ref().map(|p| {
            format!(
                "Codex did not run: runs are isolated from the host machine, and that isolation is not available. {p}. A system admin can fix this on the host, or set **Run isolation** to `off` in System Console > Plugins > Codex (not recommended: Codex can then read everything the host's OS user can)."
            )
        })
    }

    /// The program, arguments and environment for one run.
    pub fn launch(&self, codex_path: &str, space: &RunSpace<'_>) -> std::io::Result<Launch> {
        let host_env: Vec<(String, String)> = std::env::vars().collect();
        let var = |name: &str| {
            host_env
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
                .filter(|v| !v.is_empty())
        };
        // The admin's Codex home: the setting, else the host's own CODEX_HOME, else Codex's default.
        let admin_home = space
            .admin_codex_home
            .map(Path::to_path_buf)
            .or_else(|| var("CODEX_HOME").map(PathBuf::from))
            .or_else(|| var("HOME").map(|h| Path::new(h).join(".codex")));
        if self.mode == IsolationMode::Off {
            return Ok(Launch {
                wrapper: None,
                program: codex_path.to_string(),
                env: codex_env(
                    &host_env,
                    space.pass_env,
                    var("HOME"),
                    admin_home.as_deref(),
                ),
                codex_home: admin_home,
            });
        }
        let path_var = var("PATH").unwrap_or("/usr/bin:/bin");
        let program = resolve_program(codex_path, path_var).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("`{codex_path}` was not found"),
            )
        })?;
        let sessions = self.sessions_dir.join(safe_key(space.thread_key));
        std::fs::create_dir_all(&sessions)?;
        if let (Some(id), Some(admin)) = (space.resume, &admin_home) {
            adopt_session(&admin.join("sessions"), &sessions, id)?;
        }

        let mut args = base_args();
        args.extend(system_binds());
        // The resolver may point outside /etc (systemd-resolved keeps it under /run).
        if let Ok(target) = std::fs::canonicalize("/etc/resolv.conf") {
            if !under_system_dirs(&target) {
                ro_bind(&mut args, &target);
            }
        }
        args.extend(["--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"].map(String::from));
        for dir in program_dirs(&program, path_var) {
            ro_bind(&mut args, &dir);
        }
        for p in space.read_only {
            ro_bind(&mut args, p);
        }
        let repo = space.repo.display().to_string();
        args.extend(["--bind".into(), repo.clone(), repo.clone()]);
        for p in space.writable {
            let p = p.display().to_string();
            args.extend(["--bind".into(), p.clone(), p]);
        }
        args.extend(
            [
                "--tmpfs",
                INNER_ROOT,
                "--dir",
                INNER_HOME,
                "--dir",
                INNER_CODEX_HOME,
            ]
            .map(String::from),
        );
        args.extend([
            "--bind".into(),
            sessions.display().to_string(),
            format!("{INNER_CODEX_HOME}/sessions"),
        ]);
        if let Some(admin) = &admin_home {
            // The login and the admin's own configuration, never writable by a run.
            for name in ["auth.json", "config.toml", "AGENTS.md"] {
                let file = admin.join(name);
                if file.is_file() {
                    args.extend([
                        "--ro-bind".into(),
                        file.display().to_string(),
                        format!("{INNER_CODEX_HOME}/{name}"),
                    ]);
                }
            }
        }
        args.extend(["--chdir".into(), repo, "--".into()]);
        Ok(Launch {
            wrapper: Some((self.bwrap.clone(), args)),
            program: program.display().to_string(),
            env: codex_env(
                &host_env,
                space.pass_env,
                Some(INNER_HOME),
                Some(Path::new(INNER_CODEX_HOME)),
            ),
            codex_home: Some(PathBuf::from(INNER_CODEX_HOME)),
        })
    }
}

/// Namespace options every sandbox gets: its own PIDs (so no other process's `/proc` entry is
/// visible), its own session (no terminal injection), and it dies with the host.
fn base_args() -> Vec<String> {
    [
        "--die-with-parent",
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        "--new-session",
    ]
    .map(String::from)
    .to_vec()
}

/// The system's programs and libraries, read-only; merged-/usr symlinks stay symlinks.
fn system_binds() -> Vec<String> {
    let mut args = Vec::new();
    for dir in SYSTEM_DIRS {
        let path = Path::new(dir);
        match std::fs::symlink_metadata(path) {
            Ok(m) if m.file_type().is_symlink() => {
                if let Ok(target) = std::fs::read_link(path) {
                    args.extend([
                        "--symlink".into(),
                        target.display().to_string(),
                        dir.to_string(),
                    ]);
                }
            }
            Ok(m) if m.is_dir() => {
                args.extend(["--ro-bind".into(), dir.to_string(), dir.to_string()])
            }
            _ => {}
        }
    }
    args
}

fn ro_bind(args: &mut Vec<String>, path: &Path) {
    let p = path.display().to_string();
    args.extend(["--ro-bind".into(), p.clone(), p]);
}

fn under_system_dirs(p: &Path) -> bool {
    SYSTEM_DIRS.iter().any(|d| p.starts_with(d))
}

/// The environment Codex starts with: the base names and the admin's names with the host's
/// values, then `HOME` and `CODEX_HOME` as the run sees them. Nothing else of the host's.
fn codex_env(
    host_env: &[(String, String)],
    pass: &[String],
    home: Option<&str>,
    codex_home: Option<&Path>,
) -> Vec<(String, String)> {
    let wanted = |k: &str| {
        BASE_ENV.contains(&k)
            || k.starts_with("LC_")
            || (pass.iter().any(|p| p == k) && !NEVER_PASSED.contains(&k) && !k.starts_with("MM_"))
    };
    let mut env: Vec<(String, String)> = host_env
        .iter()
        .filter(|(k, _)| wanted(k))
        .cloned()
        .collect();
    if let Some(h) = home {
        env.push(("HOME".into(), h.into()));
    }
    if let Some(c) = codex_home {
        env.push(("CODEX_HOME".into(), c.display().to_string()));
    }
    env
}

/// A thread started before runs were isolated keeps its session in the admin's Codex home: copy
/// that one rollout (found by the thread id in its file name) into the thread's own sessions, so
/// the thread resumes instead of failing. Nothing else of the admin's sessions is exposed.
fn adopt_session(
    admin_sessions: &Path,
    thread_sessions: &Path,
    thread_id: &str,
) -> std::io::Result<()> {
    let suffix = format!("{thread_id}.jsonl");
    if thread_id.is_empty() || find_file(thread_sessions, &suffix, 4).is_some() {
        return Ok(());
    }
    let Some(found) = find_file(admin_sessions, &suffix, 4) else {
        return Ok(());
    };
    let Ok(relative) = found.strip_prefix(admin_sessions) else {
        return Ok(());
    };
    let target = thread_sessions.join(relative);
    if let Some(dir) = target.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::copy(&found, &target).map(|_| ())
}

/// The first file under `dir` (at most `depth` levels down) whose name ends with `suffix`.
fn find_file(dir: &Path, suffix: &str, depth: usize) -> Option<PathBuf> {
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        let kind = entry.file_type().ok()?;
        if kind.is_file() && entry.file_name().to_string_lossy().ends_with(suffix) {
            return Some(path);
        }
        if kind.is_dir() && depth > 0 {
            if let Some(found) = find_file(&path, suffix, depth - 1) {
                return Some(found);
            }
        }
    }
    None
}

/// A thread key as a directory name.
fn safe_key(key: &str) -> String {
    let s: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() {
        "_".into()
    } else {
        s
    }
}

/// `codex` (looked up on `PATH`) or a path, resolved through symlinks.
fn resolve_program(program: &str, path_var: &str) -> Option<PathBuf> {
    let found = if program.contains('/') {
        PathBuf::from(program)
    } else {
        std::env::split_paths(path_var)
            .map(|d| d.join(program))
            .find(|p| p.is_file())?
    };
    std::fs::canonicalize(found).ok()
}

/// The directories outside the system ones that the program needs, read-only: the npm package
/// tree it belongs to (the `codex` wrapper starts a native binary from a sibling package), else
/// its own directory; and the install prefix of a `#!` interpreter such as `node`.
fn program_dirs(program: &Path, path_var: &str) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if !under_system_dirs(program) {
        let tree = program
            .ancestors()
            .find(|a| a.file_name().is_some_and(|n| n == "node_modules"));
        if let Some(dir) = tree.or_else(|| program.parent()) {
            dirs.push(dir.to_path_buf());
        }
    }
    if let Some(interp) = interpreter(program).and_then(|i| resolve_program(&i, path_var)) {
        if !under_system_dirs(&interp) {
            // <prefix>/bin/node: the prefix holds its libraries too.
            if let Some(prefix) = interp.parent().and_then(Path::parent) {
                dirs.push(prefix.to_path_buf());
            }
        }
    }
    dirs
}

/// The interpreter of a `#!` script (`#!/usr/bin/env node` → `node`).
fn interpreter(program: &Path) -> Option<String> {
    use std::io::Read;
    let mut head = [0u8; 256];
    let n = std::fs::File::open(program).ok()?.read(&mut head).ok()?;
    let line = std::str::from_utf8(&head[..n])
        .ok()?
        .strip_prefix("#!")?
        .lines()
        .next()?;
    let mut words = line.split_whitespace();
    let first = words.next()?;
    if first.ends_with("/env") {
        words.find(|w| !w.starts_with('-')).map(String::from)
    } else {
        Some(first.to_string())
    }
}

#[cfg(test)]
mod tests;
