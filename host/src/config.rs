//! Host configuration: the System Console settings as one typed struct, with defaults and
//! validation at load time.
//!
//! Settings arrive from the plugin (`PUT /v1/config`) or, for `codex-host run`, from a TOML file
//! with the same keys. A document that fails validation is rejected whole with every problem
//! named, so the previous good configuration stays in force. This module does no I/O.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::model::{CommandDefault, SteerBy};
use crate::runner::isolation::{check_env_names, IsolationMode};

/// Codex sandbox modes, as `codex exec -s` spells them, from tightest to loosest: the policy
/// engine's own enum, so the host, the policy modules and Codex share one name for each.
pub use codex_policy::SandboxMode;

/// The sandbox names a setting accepts, for messages.
pub const SANDBOX_ACCEPTED: &str = "read-only, workspace-write, danger-full-access";

/// A sandbox setting's value (`read-only`, `workspace-write`, `danger-full-access`).
pub fn parse_sandbox(s: &str) -> Option<SandboxMode> {
    match s.trim() {
        "read-only" => Some(SandboxMode::ReadOnly),
        "workspace-write" => Some(SandboxMode::WorkspaceWrite),
        "danger-full-access" => Some(SandboxMode::DangerFullAccess),
        _ => None,
    }
}

/// The settings an admin edits in System Console (keys as in `docs/socket-contract.md`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Settings {
    /// The allowlist settings, as ids (the plugin resolves System Console names before each push;
    /// `*` in users is everyone in the allowed places). Passed to the bundled allowlist as is.
    pub allowed_users: Vec<String>,
    pub allowed_channels: Vec<String>,
    pub allowed_teams: Vec<String>,
    /// One project per line: `name = /absolute/path [; sandbox=..] [; model=..] [; notes=..]
    /// [; worktree=on]`.
    pub projects: String,
    pub default_project: String,
    pub codex_path: String,
    pub codex_home: String,
    /// Extra `-c key=value` overrides for every run, one per line.
    pub codex_config: String,
    pub default_sandbox: String,
    pub model: String,
    pub run_timeout_minutes: f64,
    pub max_concurrent_runs: usize,
    pub queue_limit: usize,
    /// Days after which prompts, answers, output tails and audit entries are deleted; 0 keeps all.
    pub retention_days: u32,
    pub thread_replies_continue: bool,
    pub transcript_budget_chars: usize,
    pub policy_dir: String,
    /// System admins may approve runs that need approval, besides the listed approvers.
    pub approvers_include_admins: bool,
    /// Who gets access requests and may approve them, as ids (the plugin resolves names); empty:
    /// every system admin.
    pub access_approvers: Vec<String>,
    /// `bubblewrap` (each run in its own namespace; the default) or `off`.
    pub run_isolation: String,
    /// Names of the host's environment variables Codex also gets (one per line or comma separated).
    pub codex_env: String,
    /// What a command or file change no policy module decides gets: `ask-requester` (the
    /// default), `ask-approvers` or `decline`.
    pub command_approval_default: String,
    /// Who may steer a running turn with a reply: `requester` (the default) or `allowed-users`.
    pub steer_by: String,
    /// Where threads of `worktree=on` projects get their git worktrees; empty: `<state dir>/worktrees`.
    pub worktree_dir: String,
    /// Worktrees no run used for this many days are removed (never with uncommitted changes); 0: never.
    pub worktree_idle_days: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            allowed_users: vec![],
            allowed_channels: vec![],
            allowed_teams: vec![],
            projects: String::new(),
            default_project: String::new(),
            codex_path: "codex".into(),
            codex_home: String::new(),
            codex_config: String::new(),
            default_sandbox: "workspace-write".into(),
            model: String::new(),
            run_timeout_minutes: 30.0,
            max_concurrent_runs: 2,
            queue_limit: 20,
            retention_days: 90,
            thread_replies_continue: true,
            transcript_budget_chars: 12_000,
            policy_dir: String::new(),
            approvers_include_admins: false,
            access_approvers: vec![],
            run_isolation: "bubblewrap".into(),
            codex_env: String::new(),
            command_approval_default: "ask-requester".into(),
            steer_by: "requester".into(),
            worktree_dir: String::new(),
            worktree_idle_days: 14,
        }
    }
}

/// A configured project: the only places Codex may run.
#[derive(Debug, Clone, PartialEq)]
pub struct Project {
    pub name: String,
    pub repo: PathBuf,
    pub sandbox: Option<SandboxMode>,
    pub model: Option<String>,
    pub notes: String,
    /// `worktree=on`: each thread works in its own git worktree on its own branch.
    pub worktree: bool,
}

/// Settings after validation: what the rest of the host reads.
#[derive(Debug, Clone)]
pub struct Config {
    pub settings: Settings,
    pub projects: BTreeMap<String, Project>,
    pub default_project: Option<String>,
    pub default_sandbox: SandboxMode,
    pub run_timeout: Duration,
    pub codex_overrides: Vec<String>,
    pub isolation: IsolationMode,
    /// Variables passed from the host's environment to Codex, besides the base set.
    pub codex_env: Vec<String>,
    pub command_default: CommandDefault,
    pub steer_by: SteerBy,
}

impl Config {
    /// Validates settings; on failure returns every problem, each naming the setting and the
    /// accepted values.
    pub fn from_settings(settings: Settings) -> Result<Config, Vec<String>> {
        let mut problems = Vec::new();
        let mut projects = BTreeMap::new();
        for (i, line) in settings.projects.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            match parse_project(line) {
                Ok(p) => {
                    if projects.contains_key(&p.name) {
                        problems.push(format!(
                            "Projects, line {}: the name `{}` is used twice.",
                            i + 1,
                            p.name
                        ));
                    }
                    projects.insert(p.name.clone(), p);
                }
                Err(e) => problems.push(format!("Projects, line {}: {e}", i + 1)),
            }
        }
        let default_project = match settings.default_project.trim() {
            "" if projects.len() == 1 => projects.keys().next().cloned(),
            "" => None,
            name if projects.contains_key(name) => Some(name.to_string()),
            name => {
                problems.push(format!(
                    "Default project: `{name}` is not among the configured projects ({}).",
                    names(&projects)
                ));
                None
            }
        };
        let default_sandbox = parse_sandbox(&settings.default_sandbox).unwrap_or_else(|| {
            problems.push(format!(
                "Default sandbox: `{}` is not a sandbox mode; accepted: {}.",
                settings.default_sandbox, SANDBOX_ACCEPTED
            ));
            SandboxMode::WorkspaceWrite
        });
        if !(settings.run_timeout_minutes > 0.0 && settings.run_timeout_minutes <= 24.0 * 60.0) {
            problems.push(format!(
                "Run timeout (minutes): {} is out of range; accepted: more than 0, at most 1440.",
                settings.run_timeout_minutes
            ));
        }
        if settings.max_concurrent_runs == 0 || settings.max_concurrent_runs > 64 {
            problems.push(format!(
                "Max concurrent runs: {} is out of range; accepted: 1 to 64.",
                settings.max_concurrent_runs
            ));
        }
        if settings.queue_limit > 10_000 {
            problems.push(format!(
                "Queue limit: {} is out of range; accepted: 0 to 10000.",
                settings.queue_limit
            ));
        }
        if settings.retention_days > 3650 {
            problems.push(format!(
                "Keep history (days): {} is out of range; accepted: 0 (keep everything) to 3650.",
                settings.retention_days
            ));
        }
        if settings.codex_path.trim().is_empty() {
            problems.push(
                "Codex path: empty; give `codex` (found on PATH) or an absolute path.".into(),
            );
        }
        let codex_overrides: Vec<String> = settings
            .codex_config
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(String::from)
            .collect();
        for o in &codex_overrides {
            if !o.contains('=') {
                problems.push(format!(
                    "Codex config overrides: `{o}` is not of the form key=value."
                ));
            }
        }
        let isolation = IsolationMode::parse(&settings.run_isolation).unwrap_or_else(|| {
            problems.push(format!(
                "Run isolation: `{}` is not an isolation mode; accepted: {}.",
                settings.run_isolation,
                IsolationMode::ACCEPTED
            ));
            IsolationMode::Bubblewrap
        });
        let codex_env: Vec<String> = settings
            .codex_env
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|n| !n.is_empty())
            .map(String::from)
            .collect();
        problems.extend(check_env_names(&codex_env));
        let command_default = CommandDefault::parse(&settings.command_approval_default)
            .unwrap_or_else(|| {
                problems.push(format!(
                    "Commands no policy decides: `{}` is not accepted; accepted: {}.",
                    settings.command_approval_default,
                    CommandDefault::ACCEPTED
                ));
                CommandDefault::AskRequester
            });
        let steer_by = SteerBy::parse(&settings.steer_by).unwrap_or_else(|| {
            problems.push(format!(
                "Who may steer a running turn: `{}` is not accepted; accepted: {}.",
                settings.steer_by,
                SteerBy::ACCEPTED
            ));
            SteerBy::Requester
        });
        let dir = settings.worktree_dir.trim();
        if !dir.is_empty() && !dir.starts_with('/') {
            problems.push(format!(
                "Worktree directory: `{dir}` is not an absolute path; give one, or leave it empty for the host's state directory."
            ));
        }
        if settings.worktree_idle_days > 3650 {
            problems.push(format!(
                "Remove idle worktrees after (days): {} is out of range; accepted: 0 (never) to 3650.",
                settings.worktree_idle_days
            ));
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let run_timeout = Duration::from_secs_f64(settings.run_timeout_minutes * 60.0);
        Ok(Config {
            settings,
            projects,
            default_project,
            default_sandbox,
            run_timeout,
            codex_overrides,
            isolation,
            codex_env,
            command_default,
            steer_by,
        })
    }

    pub fn project_names(&self) -> String {
        names(&self.projects)
    }
}

fn names(projects: &BTreeMap<String, Project>) -> String {
    if projects.is_empty() {
        "none yet".to_string()
    } else {
        projects.keys().cloned().collect::<Vec<_>>().join(", ")
    }
}

fn parse_project(line: &str) -> Result<Project, String> {
    let mut parts = line.split(';').map(str::trim);
    let head = parts.next().unwrap_or_default();
    let (name, path) = head
        .split_once('=')
        .ok_or_else(|| format!("`{head}` is not of the form `name = /absolute/path`."))?;
    let name = name.trim();
    let path = path.trim();
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(format!(
            "`{name}` is not a valid project name; use letters, digits, `-`, `_` or `.`."
        ));
    }
    if !path.starts_with('/') {
        return Err(format!(
            "the path of `{name}` must be absolute, got `{path}`."
        ));
    }
    let mut project = Project {
        name: name.into(),
        repo: PathBuf::from(path),
        sandbox: None,
        model: None,
        notes: String::new(),
        worktree: false,
    };
    for opt in parts.filter(|p| !p.is_empty()) {
        let (k, v) = opt
            .split_once('=')
            .ok_or_else(|| format!("option `{opt}` of `{name}` is not key=value."))?;
        let v = v.trim();
        match k.trim() {
            "sandbox" => {
                project.sandbox = Some(parse_sandbox(v).ok_or_else(|| {
                    format!(
                        "sandbox `{v}` of `{name}` is not a sandbox mode; accepted: {}.",
                        SANDBOX_ACCEPTED
                    )
                })?)
            }
            "model" => project.model = Some(v.to_string()),
            // Read by the plugin, which sends a project only to its runner.
            "runner" => {}
            "notes" => project.notes = v.to_string(),
            "worktree" => {
                project.worktree = match v {
                    "on" => true,
                    "off" => false,
                    _ => return Err(format!("worktree `{v}` of `{name}` is not on or off.")),
                }
            }
            other => {
                return Err(format!(
                "unknown option `{other}` for `{name}`; accepted: sandbox, model, notes, worktree, runner."
            ))
            }
        }
    }
    Ok(project)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_projects_with_options() {
        let s = Settings {
            projects: "api = /srv/api ; worktree=on\n# comment\nweb = /srv/web ; sandbox=read-only ; model=gpt-5.5 ; notes=Frontend".into(),
            default_project: "web".into(),
            ..Settings::default()
        };
        let c = Config::from_settings(s).unwrap();
        assert_eq!(c.projects.len(), 2);
        let web = &c.projects["web"];
        assert_eq!(web.sandbox, Some(SandboxMode::ReadOnly));
        assert_eq!(web.model.as_deref(), Some("gpt-5.5"));
        assert_eq!(web.notes, "Frontend");
        assert!(c.projects["api"].worktree && !web.worktree);
        assert_eq!(c.default_project.as_deref(), Some("web"));
    }

    #[test]
    fn single_project_is_the_default() {
        let s = Settings {
            projects: "api = /srv/api".into(),
            ..Settings::default()
        };
        assert_eq!(
            Config::from_settings(s).unwrap().default_project.as_deref(),
            Some("api")
        );
    }

    #[test]
    fn reports_every_problem_with_the_setting_name() {
        let s = Settings {
            projects: "api = relative/path\nbad name = /x".into(),
            default_project: "nope".into(),
            default_sandbox: "yolo".into(),
            max_concurrent_runs: 0,
            codex_config: "novalue".into(),
            run_isolation: "none".into(),
            codex_env: "OPENAI_API_KEY, CODEX_HOST_SECRET".into(),
            worktree_dir: "worktrees".into(),
            worktree_idle_days: 4000,
            ..Settings::default()
        };
        let errs = Config::from_settings(s).unwrap_err();
        let all = errs.join("\n");
        assert!(
            all.contains("Projects, line 1: the path of `api` must be absolute"),
            "{all}"
        );
        assert!(all.contains("Projects, line 2"), "{all}");
        assert!(all.contains("Default project: `nope`"), "{all}");
        assert!(
            all.contains("Default sandbox: `yolo`") && all.contains("read-only, workspace-write"),
            "{all}"
        );
        assert!(all.contains("Max concurrent runs"), "{all}");
        assert!(all.contains("Codex config overrides"), "{all}");
        assert!(
            all.contains("Run isolation: `none`") && all.contains("bubblewrap, off"),
            "{all}"
        );
        assert!(
            all.contains("`CODEX_HOST_SECRET` belongs to the Codex host")
                && !all.contains("`OPENAI_API_KEY`"),
            "{all}"
        );
        assert!(
            all.contains("Worktree directory: `worktrees`")
                && all.contains("Remove idle worktrees after (days): 4000"),
            "{all}"
        );
        let bad = Settings {
            projects: "api = /srv/api ; worktree=yes".into(),
            ..Settings::default()
        };
        let errs = Config::from_settings(bad).unwrap_err().join("\n");
        assert!(
            errs.contains("worktree `yes` of `api` is not on or off"),
            "{errs}"
        );
    }

    #[test]
    fn isolation_is_on_unless_turned_off() {
        let c = Config::from_settings(Settings::default()).unwrap();
        assert_eq!(c.isolation, IsolationMode::Bubblewrap);
        let s = Settings {
            run_isolation: "off".into(),
            codex_env: "OPENAI_API_KEY\nSSL_CERT_FILE".into(),
            ..Settings::default()
        };
        let c = Config::from_settings(s).unwrap();
        assert_eq!(c.isolation, IsolationMode::Off);
        assert_eq!(c.codex_env, ["OPENAI_API_KEY", "SSL_CERT_FILE"]);
    }
}
