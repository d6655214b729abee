//! The test rig of the app-server suites: a git repository, Codex homes, the mock model and a
//! started `codex app-server` (isolation off or bubblewrap), plus helpers that wait on its
//! events — never on a clock.

use std::path::PathBuf;
use std::time::Duration;

use codex_host::config::SandboxMode;
use codex_host::runner::app_server::incoming::{
    Item, ItemStatus, ServerNotification, ServerRequest, ThreadItem,
};
use codex_host::runner::app_server::protocol::{
    ApprovalPolicy, ThreadSettings, TurnStartParams, TurnStatus, UserInput,
};
use codex_host::runner::app_server::{AppServer, Client, Event, Events, Spec};
use codex_host::runner::isolation::{Isolation, IsolationMode, RunSpace};
use codex_testkit::{codex, MockModel};

pub const WAIT: Duration = Duration::from_secs(60);
pub const GRACE: Duration = Duration::from_secs(3);

/// A git repository, an admin Codex home, a host state directory and the mock model.
pub struct Rig {
    pub model: MockModel,
    pub dir: tempfile::TempDir,
    pub mode: IsolationMode,
    /// Codex config overrides besides the mock provider's.
    pub extra: Vec<String>,
}

impl Rig {
    pub async fn new(mode: IsolationMode) -> Rig {
        let dir = tempfile::Builder::new()
            .prefix("app-server-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .unwrap();
        for d in ["repo", "codex-home", "state"] {
            std::fs::create_dir_all(dir.path().join(d)).unwrap();
        }
        // A project is a git repository; Codex names the files of its turn diff relative to
        // the repository's root.
        let git = std::process::Command::new("git")
            .args(["init", "-q"])
            .current_dir(dir.path().join("repo"))
            .status()
            .unwrap();
        assert!(git.success());
        Rig {
            model: MockModel::start().await.unwrap(),
            dir,
            mode,
            extra: vec![],
        }
    }

    pub fn repo(&self) -> PathBuf {
        self.dir.path().join("repo")
    }

    pub async fn start(&self, resume: Option<&str>) -> (AppServer, Events, Client) {
        let isolation = Isolation::new(self.mode, "bwrap", &self.dir.path().join("state"))
            .probe()
            .await;
        assert_eq!(isolation.refusal(), None, "isolation must work here");
        let codex_path = codex::binary().unwrap().display().to_string();
        let repo = self.repo();
        let home = self.dir.path().join("codex-home");
        let space = RunSpace {
            repo: &repo,
            thread_key: "thread-1",
            admin_codex_home: Some(&home),
            read_only: &[],
            writable: &[],
            pass_env: &[],
            resume,
        };
        let mut launch = isolation.launch(&codex_path, &space).unwrap();
        launch
            .env
            .push((codex::API_KEY_ENV.into(), "mock-key".into()));
        let spec = Spec {
            launch,
            overrides: [
                codex::config_overrides(&self.model.base_url()),
                self.extra.clone(),
            ]
            .concat(),
            opt_out: vec![],
        };
        let (server, events) = AppServer::start(&spec).await.unwrap();
        let client = server.client();
        (server, events, client)
    }

    pub fn settings(&self, policy: ApprovalPolicy) -> ThreadSettings {
        ThreadSettings {
            cwd: Some(self.repo().display().to_string()),
            model: Some(codex::MODEL.into()),
            approval_policy: Some(policy),
            sandbox: Some(SandboxMode::WorkspaceWrite),
            developer_instructions: None,
        }
    }
}

pub fn turn(thread_id: &str, prompt: &str) -> TurnStartParams {
    TurnStartParams {
        thread_id: thread_id.into(),
        input: vec![UserInput::Text {
            text: prompt.into(),
        }],
        cwd: None,
        model: None,
        approval_policy: None,
        sandbox_policy: None,
    }
}

/// Reads events (keeping them in `seen`) until `f` picks one.
pub async fn until<T>(
    events: &mut Events,
    seen: &mut Vec<Event>,
    what: &str,
    mut f: impl FnMut(&Event) -> Option<T>,
) -> T {
    let wait = async {
        while let Some(ev) = events.next().await {
            let found = f(&ev);
            seen.push(ev);
            if let Some(found) = found {
                return found;
            }
        }
        panic!("the app-server's events ended before {what}; saw {seen:#?}");
    };
    match tokio::time::timeout(WAIT, wait).await {
        Ok(found) => found,
        Err(_) => panic!("no {what} within {WAIT:?}"),
    }
}

/// Reads events until the turn completes; returns its status.
pub async fn completion(events: &mut Events, seen: &mut Vec<Event>) -> TurnStatus {
    until(events, seen, "turn/completed", |ev| match ev {
        Event::Notification(ServerNotification::TurnCompleted(t)) => Some(t.turn.status),
        _ => None,
    })
    .await
}

pub fn items(seen: &[Event], completed: bool) -> impl Iterator<Item = &Item> {
    seen.iter().filter_map(move |ev| match ev {
        Event::Notification(ServerNotification::ItemCompleted(n)) if completed => match &n.item {
            ThreadItem::Known(item) => Some(item),
            ThreadItem::Other(_) => None,
        },
        Event::Notification(ServerNotification::ItemStarted(n)) if !completed => match &n.item {
            ThreadItem::Known(item) => Some(item),
            ThreadItem::Other(_) => None,
        },
        _ => None,
    })
}

pub fn agent_text(seen: &[Event]) -> Vec<String> {
    items(seen, true)
        .filter_map(|i| match i {
            Item::AgentMessage { text, .. } => Some(text.clone()),
            _ => None,
        })
        .collect()
}

pub fn command_status(seen: &[Event]) -> Option<ItemStatus> {
    items(seen, true).find_map(|i| match i {
        Item::CommandExecution { status, .. } => Some(*status),
        _ => None,
    })
}

pub fn requests(seen: &[Event]) -> Vec<&ServerRequest> {
    seen.iter()
        .filter_map(|ev| match ev {
            Event::Request { request, .. } => Some(request),
            _ => None,
        })
        .collect()
}
