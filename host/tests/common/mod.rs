//! Test environment for host scenarios: the real `codex-host serve` binary on a temporary socket,
//! the real Codex CLI, the mock model and the fake Mattermost from `codex-testkit`.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tempfile::TempDir;
use tokio::net::UnixStream;

use codex_testkit::mattermost::{NewPost, NewUser, TestPost};
use codex_testkit::{codex, FakeMattermost, MattermostConfig, MockModel};

pub const SECRET: &str = "test-secret-0123456789abcdef";
pub const WAIT: Duration = Duration::from_secs(60);

pub struct Env {
    pub model: MockModel,
    pub mm: FakeMattermost,
    pub dir: TempDir,
    pub repo: PathBuf,
    pub socket: PathBuf,
    pub state_dir: PathBuf,
    pub settings: Value,
    pub host: Option<tokio::process::Child>,
    pub alice: Value,
    pub channel: Value,
    /// Extra environment of the host process (on top of the secret, the mock key and the log level).
    pub host_env: Vec<(String, String)>,
    /// `--policy-dir` of the host: the bundled modules (default: the ones `make policies` built).
    pub policy_dir: PathBuf,
}

impl Env {
    /// Starts everything with default settings adjusted by `tweak`.
    pub async fn start(tweak: impl FnOnce(&mut Value)) -> Env {
        let model = MockModel::start().await.expect("mock model");
        let mm = FakeMattermost::start(MattermostConfig::default())
            .await
            .expect("fake mattermost");
        // Under the build's own temp directory rather than /tmp, like a real state directory:
        // the isolation tests then show it hidden by the sandbox, not merely by its private /tmp.
        let dir = tempfile::Builder::new()
            .prefix("scenario-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .expect("tempdir");
        let repo = dir.path().join("repo");
        std::fs::create_dir_all(&repo).unwrap();
        let codex_home = dir.path().join("codex-home");
        std::fs::create_dir_all(&codex_home).unwrap();
        let alice = mm.add_user(NewUser {
            username: "alice".into(),
            ..Default::default()
        });
        let codex_bin = codex::binary().expect("the Codex CLI (cd tools/codex && npm install)");
        let mut settings = json!({
            "allowed_users": [alice.id.clone()],
            "projects": format!("api = {}", repo.display()),
            "default_project": "api",
            "codex_path": codex_bin.display().to_string(),
            "codex_home": codex_home.display().to_string(),
            "codex_config": codex_overrides(&model.base_url()),
            "model": codex::MODEL,
            "run_timeout_minutes": 2,
            "max_concurrent_runs": 2,
            "queue_limit": 5,
            "codex_env": codex::API_KEY_ENV,
        });
        tweak(&mut settings);
        let mut env = Env {
            socket: dir.path().join("host.sock"),
            state_dir: dir.path().join("state"),
            model,
            mm,
            repo,
            dir,
            settings,
            host: None,
            alice: json!({"id": alice.id, "username": "alice", "roles": ["system_user"]}),
            host_env: vec![],
            policy_dir: policy_dir(),
            channel: json!({"id": "chan-dev-0000000000000000000", "name": "dev", "display_name": "Dev", "kind": "public", "team_id": "team-eng", "team_name": "eng"}),
        };
        env.start_host().await;
        env
    }

    pub async fn start_host(&mut self) {
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_codex-host"))
            .args(["serve", "--socket"])
            .arg(&self.socket)
            .arg("--policy-dir")
            .arg(&self.policy_dir)
            .arg("--state-dir")
            .arg(&self.state_dir)
            .env("CODEX_HOST_SECRET", SECRET)
            .env(codex::API_KEY_ENV, "mock-key")
            .env("CODEX_HOST_LOG", "info,codex_host=debug")
            .envs(self.host_env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.dir.path().join("host.log")).unwrap())
            .kill_on_drop(true)
            .spawn()
            .expect("spawning codex-host");
        self.host = Some(child);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok((200, _)) = self.try_call("GET", "/v1/health", None, SECRET).await {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "codex-host did not come up; log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.push_config().await;
    }

    pub async fn push_config(&self) -> (u16, Value) {
        let body = json!({
            "mattermost_url": self.mm.url(),
            "bot_user_id": self.mm.bot().id,
            "bot_token": self.mm.bot_token(),
            "plugin_version": "test",
            "plugin_id": "com.github.codex-for-mattermost",
            "actions_url": "/plugins/com.github.codex-for-mattermost/v1/actions",
            "settings": self.settings,
        });
        let r = self.call("PUT", "/v1/config", Some(body)).await;
        assert_eq!(r.0, 200, "config rejected: {}", r.1);
        r
    }

    /// Kills the host with SIGKILL (a crash, not a shutdown).
    pub async fn crash_host(&mut self) {
        let mut child = self.host.take().expect("host running");
        child.kill().await.unwrap();
    }

    /// Stops the host with SIGTERM and waits for it.
    pub async fn stop_host(&mut self) -> std::process::ExitStatus {
        let mut child = self.host.take().expect("host running");
        let pid = child.id().unwrap() as i32;
        unsafe { libc::kill(pid, libc::SIGTERM) };
        tokio::time::timeout(Duration::from_secs(30), child.wait())
            .await
            .expect("host stops within 30 s")
            .unwrap()
    }

    /// Waits until the host's log says `needle` at least `count` times.
    pub async fn wait_log_count(&self, needle: &str, count: usize) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while self.log().matches(needle).count() < count {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the host never logged {needle:?} ({count}×):\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn wait_log(&self, needle: &str) {
        self.wait_log_count(needle, 1).await;
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("host.log")).unwrap_or_default()
    }

    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.try_call(method, path, body, SECRET)
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}\nhost log:\n{}", self.log()))
    }

    pub async fn try_call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        secret: &str,
    ) -> anyhow::Result<(u16, Value)> {
        uds_call(&self.socket, method, path, body, secret).await
    }

    /// `/codex <text>` by `user` in the test channel, optionally inside a thread.
    pub async fn command_as(&self, user: &Value, text: &str, root_id: &str) -> Value {
        let body = json!({"user": user, "channel": self.channel, "root_id": root_id, "trigger_id": "t", "text": text});
        let (status, resp) = self.call("POST", "/v1/commands", Some(body)).await;
        assert_eq!(status, 200, "{resp}");
        resp
    }

    pub async fn command(&self, text: &str) -> Value {
        self.command_as(&self.alice.clone(), text, "").await
    }

    pub async fn command_in(&self, root_id: &str, text: &str) -> Value {
        self.command_as(&self.alice.clone(), text, root_id).await
    }

    /// Clicks button `action_id` of a post as `user`, the way the plugin forwards a click
    /// (context from the post's props, user id from the server-set header).
    pub async fn click(&self, user: &Value, post: &TestPost, action_id: &str) -> Value {
        let ctx = button_context(post, action_id)
            .unwrap_or_else(|| panic!("no {action_id} button on {:#?}", post.post));
        self.click_with(user, &post.post.id, ctx).await
    }

    pub async fn click_with(&self, user: &Value, post_id: &str, context: Value) -> Value {
        let body = json!({"user_id": user["id"], "user": user, "channel": self.channel, "post_id": post_id,
                          "channel_id": self.channel["id"], "team_id": "team-eng", "context": context});
        let (status, resp) = self.call("POST", "/v1/actions", Some(body)).await;
        assert_eq!(status, 200, "{resp}");
        resp
    }

    /// Audit rows of `kind`, read straight from the host's SQLite database.
    pub fn audit(&self, kind: &str) -> Vec<Value> {
        let store = codex_host::store::Store::open(&self.state_dir.join("codex-host.db")).unwrap();
        store
            .audit_of_kind(kind)
            .unwrap()
            .into_iter()
            .map(|(_, d)| d)
            .collect()
    }

    /// A human reply in a thread, as the plugin forwards it.
    pub async fn reply(&self, user: &Value, root_id: &str, message: &str) -> Value {
        self.reply_with_files(user, root_id, message, &[]).await
    }

    /// A reply carrying files uploaded beforehand (`mm.inject_file`), as the plugin forwards it.
    pub async fn reply_with_files(
        &self,
        user: &Value,
        root_id: &str,
        message: &str,
        file_ids: &[String],
    ) -> Value {
        let post = self
            .mm
            .inject_post(NewPost {
                user_id: user["id"].as_str().unwrap().into(),
                channel_id: self.channel["id"].as_str().unwrap().into(),
                root_id: root_id.into(),
                message: message.into(),
                file_ids: file_ids.to_vec(),
                ..Default::default()
            })
            .unwrap();
        let body = json!({"user": user, "channel": self.channel, "post": {
            "id": post.id, "root_id": root_id, "channel_id": post.channel_id, "user_id": post.user_id,
            "message": message, "file_ids": post.file_ids, "create_at": post.create_at}});
        let (status, resp) = self.call("POST", "/v1/posts", Some(body)).await;
        assert_eq!(status, 200, "{resp}");
        resp
    }

    /// Waits until `n` outcome posts exist in total and returns them, oldest first.
    pub async fn outcomes(&self, n: usize) -> Vec<TestPost> {
        let r = self
            .mm
            .wait_for(
                |s| {
                    let o: Vec<TestPost> = s
                        .posts
                        .iter()
                        .filter(|p| kind(p) == "outcome")
                        .cloned()
                        .collect();
                    (o.len() >= n).then_some(o)
                },
                WAIT,
            )
            .await;
        r.unwrap_or_else(|e| {
            panic!(
                "waiting for {n} outcome(s): {e}\nposts: {:#?}\nhost log:\n{}",
                self.summary(),
                self.log()
            )
        })
    }

    /// The whole answer an outcome closes: the run's earlier parts in order, then the outcome.
    pub fn whole_answer(&self, outcome: &TestPost) -> String {
        let run = prop(outcome, "codex_run_id");
        self.mm.read(|s| {
            let mut parts: Vec<&TestPost> = s
                .posts
                .iter()
                .filter(|p| kind(p) == "answer_part" && prop(p, "codex_run_id") == run)
                .collect();
            parts.sort_by_key(|p| p.post.props.get("codex_part").and_then(Value::as_u64));
            parts
                .iter()
                .map(|p| p.post.message.as_str())
                .chain(std::iter::once(outcome.post.message.as_str()))
                .collect::<Vec<_>>()
                .join("\n")
        })
    }

    /// Waits for a post matching `pred`.
    pub async fn wait_post(&self, what: &str, pred: impl Fn(&TestPost) -> bool) -> TestPost {
        self.mm
            .wait_for(|s| s.posts.iter().find(|p| pred(p)).cloned(), WAIT)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "waiting for {what}: {e}\nposts: {:#?}\nhost log:\n{}",
                    self.summary(),
                    self.log()
                )
            })
    }

    pub fn summary(&self) -> Vec<String> {
        self.mm
            .posts()
            .iter()
            .map(|p| {
                format!(
                    "[{}] root={} {}",
                    kind(p),
                    p.post.root_id,
                    p.post.message.chars().take(160).collect::<String>()
                )
            })
            .collect()
    }

    /// Every run that reached an outcome has exactly one outcome post.
    pub fn assert_one_outcome_per_run(&self) {
        let posts = self.mm.posts();
        let mut counts = std::collections::HashMap::<String, usize>::new();
        for p in posts.iter().filter(|p| kind(p) == "outcome") {
            *counts.entry(prop(p, "codex_run_id")).or_default() += 1;
        }
        for (run, n) in counts {
            assert_eq!(
                n,
                1,
                "run {run} has {n} outcome posts: {:#?}",
                self.summary()
            );
        }
    }

    /// Processes whose command line mentions this test's repository (i.e. Codex and its children).
    pub fn codex_processes(&self) -> Vec<String> {
        processes_mentioning(&self.repo)
    }
}

/// The integration context of a post's button, as Mattermost keeps it server-side.
pub fn button_context(p: &TestPost, action_id: &str) -> Option<Value> {
    p.post
        .props
        .get("attachments")?
        .as_array()?
        .iter()
        .flat_map(|a| a["actions"].as_array().cloned().unwrap_or_default())
        .find(|a| a["id"] == action_id)
        .map(|a| a["integration"]["context"].clone())
}

/// The example policy modules built by `make policies`.
pub fn policy_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/policies");
    assert!(
        dir.join("allowlist.wasm").is_file(),
        "the policy modules are not built: run `make policies` (expected {})",
        dir.display()
    );
    dir
}

pub fn kind(p: &TestPost) -> String {
    prop(p, "codex_kind")
}

pub fn prop(p: &TestPost, key: &str) -> String {
    p.post
        .props
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// The Codex `-c` overrides pointing at the mock, as the `codex_config` setting's lines.
pub fn codex_overrides(base_url: &str) -> String {
    codex::config_overrides(base_url).join("\n")
}

pub fn processes_mentioning(path: &Path) -> Vec<String> {
    let needle = path.display().to_string();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if !entry
            .file_name()
            .to_string_lossy()
            .chars()
            .all(|c| c.is_ascii_digit())
        {
            continue;
        }
        if let Ok(raw) = std::fs::read(entry.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&raw).replace('\0', " ");
            if cmd.contains(&needle) {
                found.push(format!("{}: {cmd}", entry.file_name().to_string_lossy()));
            }
        }
    }
    found
}

pub async fn uds_call(
    socket: &Path,
    method: &str,
    path: &str,
    body: Option<Value>,
    secret: &str,
) -> anyhow::Result<(u16, Value)> {
    let stream = UnixStream::connect(socket).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let bytes = body
        .map(|b| serde_json::to_vec(&b).unwrap())
        .unwrap_or_default();
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "codex-host")
        .header("authorization", format!("Bearer {secret}"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(bytes)))?;
    let resp = sender.send_request(req).await?;
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await?.to_bytes();
    let value = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body)?
    };
    Ok((status, value))
}
