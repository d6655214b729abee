//! A whole host for unit tests, in memory: real store (SQLite in memory), real scheduler, real
//! runner and settings validation, [`MemoryChat`] for Mattermost and a [`Scripted`] gate for
//! the policy chain. No Node, no Codex CLI, no network: "Codex" is a path the test picks
//! (`/bin/false` fails like a Codex that exits 1).

use std::sync::{Arc, Mutex};

use serde_json::{json, Map, Value};

use crate::buttons::{ButtonAction, Signer};
use crate::chat::{Chat, MemoryChat, Post};
use crate::config::Settings;
use crate::gate::{Decision, Gate, GateRequest, Limits, Ruling};
use crate::protocol::{
    ActionRequest, ActionResponse, Channel, ChannelKind, CommandRequest, CommandResponse,
    ConfigRequest, PostKind, User,
};
use crate::runner::isolation::{Isolation, IsolationMode};
use crate::runs::{Accepted, Intent, Submission};
use crate::state::{now_s, Host};
use crate::store::Store;

pub const BOT: &str = "codex-bot";
const BUTTON_KEY: &[u8] = b"unit-test-button-key-of-32-bytes";

/// A gate that answers every request with one decision, and remembers the requests.
pub struct Scripted {
    pub decision: Mutex<Decision>,
    /// The rule ids the ruling names.
    pub rules: Mutex<Vec<String>>,
    pub asked: Mutex<Vec<GateRequest>>,
}

impl Scripted {
    pub fn new(decision: Decision) -> Arc<Scripted> {
        Arc::new(Scripted {
            decision: Mutex::new(decision),
            rules: Mutex::new(vec!["scripted".into()]),
            asked: Mutex::new(vec![]),
        })
    }

    pub fn allow() -> Arc<Scripted> {
        Scripted::new(Decision::Allow(Limits::default()))
    }
}

impl Gate for Scripted {
    fn decide(&self, req: &GateRequest) -> Ruling {
        self.asked.lock().unwrap().push(req.clone());
        Ruling {
            decision: self.decision.lock().unwrap().clone(),
            rules: self.rules.lock().unwrap().clone(),
            explanation: vec!["`scripted`: as the test says".into()],
            report: json!({"gate": "scripted"}),
            abstained: false,
        }
    }
}

pub struct TestHost {
    pub host: Arc<Host>,
    pub gate: Arc<Scripted>,
    /// Holds the projects' repositories.
    _repos: tempfile::TempDir,
}

pub fn user(name: &str) -> User {
    User {
        id: format!("{name}-id"),
        username: name.into(),
        roles: vec!["system_user".into()],
        is_bot: false,
    }
}

pub fn channel() -> Channel {
    Channel {
        id: "town-id".into(),
        name: "town".into(),
        display_name: "Town".into(),
        kind: ChannelKind::Public,
        team_id: "team-id".into(),
        team_name: "team".into(),
    }
}

impl TestHost {
    /// A configured host with projects `api` (the default) and `web`, `/bin/false` as Codex and
    /// isolation off; `adjust` changes the settings first.
    pub async fn new(gate: Arc<Scripted>, adjust: impl FnOnce(&mut Settings)) -> TestHost {
        let repos = tempfile::tempdir().unwrap();
        for p in ["api", "web"] {
            std::fs::create_dir(repos.path().join(p)).unwrap();
        }
        let mut settings = Settings {
            projects: format!(
                "api = {0}/api\nweb = {0}/web ; notes=the website",
                repos.path().display()
            ),
            default_project: "api".into(),
            codex_path: "/bin/false".into(),
            run_isolation: "off".into(),
            ..Settings::default()
        };
        adjust(&mut settings);
        let chat = Chat::Memory {
            chat: MemoryChat::default(),
            bot_user_id: BOT.into(),
        };
        let host = Host::new(
            Store::open_in_memory().unwrap(),
            chat,
            gate.clone(),
            Signer::new(BUTTON_KEY.to_vec()),
            vec!["host-secret-0123456789".into()],
            Isolation::new(IsolationMode::Off, "bwrap", repos.path()),
        );
        let req = ConfigRequest {
            mattermost_url: "http://mattermost.test".into(),
            bot_user_id: BOT.into(),
            bot_token: "bot-token-0123456789".into(),
            actions_url: "/plugins/codex/v1/actions".into(),
            settings,
            ..Default::default()
        };
        host.apply_config(req, true)
            .await
            .expect("the test settings apply");
        TestHost {
            host,
            gate,
            _repos: repos,
        }
    }

    pub fn chat(&self) -> &MemoryChat {
        match &self.host.chat {
            Chat::Memory { chat, .. } => chat,
            _ => unreachable!("a test host keeps its posts in memory"),
        }
    }

    /// `/codex <text>` from `who` in the channel (at channel level).
    pub async fn command(&self, who: &User, text: &str) -> CommandResponse {
        self.host
            .command(CommandRequest {
                user: who.clone(),
                channel: channel(),
                text: text.into(),
                ..Default::default()
            })
            .await
    }

    /// A prompt, as `/codex <prompt>` submits it at channel level (`root_id` empty) or in a
    /// thread.
    pub async fn submit(
        &self,
        who: &User,
        root_id: &str,
        prompt: &str,
    ) -> Result<Accepted, String> {
        let cfg = self.host.config().unwrap();
        let channel = channel();
        let submission = Submission {
            user: who,
            channel: &channel,
            root_id,
            intent: Intent::Auto,
            prompt,
            trigger: None,
            bot_can_post: true,
        };
        self.host.submit(&cfg, submission).await.map_err(|r| r.text)
    }

    /// The signed context of an `action` button for `run_id`, as the host puts in its posts.
    pub fn button(&self, action: ButtonAction, run_id: &str) -> Map<String, Value> {
        let context = Signer::new(BUTTON_KEY.to_vec()).context(action, run_id, now_s(), 600);
        let Value::Object(context) = context else {
            unreachable!("a context is an object")
        };
        context
    }

    /// `who` clicks a freshly signed `action` button of `run_id`'s post `post_id`.
    pub async fn click(
        &self,
        who: &User,
        action: ButtonAction,
        run_id: &str,
        post_id: &str,
    ) -> ActionResponse {
        self.press(who, self.button(action, run_id), post_id).await
    }

    /// `who` clicks the button with `context` on post `post_id`.
    pub async fn press(
        &self,
        who: &User,
        context: Map<String, Value>,
        post_id: &str,
    ) -> ActionResponse {
        self.host
            .action(ActionRequest {
                user_id: who.id.clone(),
                user: who.clone(),
                channel: channel(),
                channel_id: channel().id,
                post_id: post_id.into(),
                context,
                ..Default::default()
            })
            .await
    }

    /// The bot's posts of `kind` for `run_id`.
    pub fn posts_of(&self, kind: PostKind, run_id: &str) -> Vec<Post> {
        self.chat()
            .posts()
            .into_iter()
            .filter(|p| {
                p.user_id == BOT
                    && PostKind::of(&p.props) == Some(kind)
                    && p.props["codex_run_id"] == run_id
            })
            .collect()
    }
}
