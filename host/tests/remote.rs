//! `codex-host connect` (a remote runner), the real binary against a stand-in for the plugin's
//! runner routes shaped as `plugin/server/runnerhttp.go` and `runnerrelay.go` serve them: polls
//! answered with envelopes, answers collected, and Mattermost calls relayed to the fake Mattermost
//! as the bot. The real plugin and server are exercised by tests/e2e/runners_test.go.

mod common;

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpListener;

use codex_testkit::mattermost::NewUser;
use codex_testkit::{codex, FakeMattermost, MattermostConfig, MockModel};

const PLUGIN: &str = "com.github.codex-for-mattermost";
const TOKEN: &str = "cxr.one.c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0";

#[derive(Default)]
struct Plugin {
    queue: Mutex<VecDeque<Value>>,
    answers: Mutex<Vec<Value>>,
    /// (path, runner token header, authorization header) of each relayed call.
    relayed: Mutex<Vec<(String, String, String)>>,
    refuse_all: bool,
}

struct Stand {
    plugin: Arc<Plugin>,
    mm_url: String,
    bot_token: String,
}

async fn serve(stand: Arc<Stand>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let reply = |status: StatusCode, body: Value| {
        Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.to_string())))
            .unwrap()
    };
    let path = req.uri().path().to_string();
    let query = req
        .uri()
        .query()
        .map(|q| format!("?{q}"))
        .unwrap_or_default();
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let (token, auth) = (header("x-codex-runner-token"), header("authorization"));
    let content_type = header("content-type");
    let method = req.method().clone();
    let body = req.into_body().collect().await.unwrap().to_bytes();
    let p = &stand.plugin;
    if p.refuse_all || token != TOKEN {
        return reply(
            StatusCode::UNAUTHORIZED,
            json!({"error": "Refused: not a valid runner token"}),
        );
    }
    let prefix = format!("/plugins/{PLUGIN}/runner/v1");
    let Some(route) = path.strip_prefix(&prefix) else {
        return reply(StatusCode::NOT_FOUND, json!({"error": "no route"}));
    };
    match route {
        "/poll" => {
            for _ in 0..20 {
                let envs: Vec<Value> = p.queue.lock().unwrap().drain(..).collect();
                if !envs.is_empty() {
                    return reply(StatusCode::OK, json!({ "envelopes": envs }));
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            reply(StatusCode::OK, json!({"envelopes": []}))
        }
        "/answer" => {
            p.answers
                .lock()
                .unwrap()
                .push(serde_json::from_slice(&body).unwrap());
            reply(StatusCode::NO_CONTENT, Value::Null)
        }
        relay => {
            let api = relay.strip_prefix("/mm").unwrap_or(relay);
            p.relayed
                .lock()
                .unwrap()
                .push((api.to_string(), token.clone(), auth.clone()));
            let resp = reqwest::Client::new()
                .request(method, format!("{}{api}{query}", stand.mm_url))
                .bearer_auth(&stand.bot_token)
                .header("content-type", content_type)
                .body(body)
                .send()
                .await
                .unwrap();
            let status = StatusCode::from_u16(resp.status().as_u16()).unwrap();
            let bytes = resp.bytes().await.unwrap();
            Response::builder()
                .status(status)
                .header("content-type", "application/json")
                .body(Full::new(bytes))
                .unwrap()
        }
    }
}

async fn start_stand(stand: Arc<Stand>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let stand = stand.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| {
                    let stand = stand.clone();
                    async move { Ok::<_, Infallible>(serve(stand, req).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    format!("http://{addr}")
}

fn connect(
    server: &str,
    dir: &std::path::Path,
    token: &str,
) -> (tokio::process::Child, std::path::PathBuf) {
    let token_file = dir.join("token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    let log = dir.join("runner.log");
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_codex-host"))
        .args(["connect", "--server", server, "--token-file"])
        .arg(&token_file)
        .arg("--state-dir")
        .arg(dir.join("state"))
        .arg("--policy-dir")
        .arg(common::policy_dir())
        .env(codex::API_KEY_ENV, "mock-key")
        .env("CODEX_HOST_LOG", "info,codex_host=debug")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .kill_on_drop(true)
        .spawn()
        .expect("spawning codex-host connect");
    (child, log)
}

async fn wait_answer(plugin: &Plugin, id: &str) -> Value {
    for _ in 0..600 {
        if let Some(a) = plugin
            .answers
            .lock()
            .unwrap()
            .iter()
            .find(|a| a["id"] == id)
        {
            return a.clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no answer to envelope {id}");
}

#[tokio::test]
async fn a_runner_serves_envelopes_and_posts_only_through_the_relay() {
    let model = MockModel::start().await.unwrap();
    let mm = FakeMattermost::start(MattermostConfig::default())
        .await
        .unwrap();
    let dir = tempfile::Builder::new()
        .prefix("remote-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    let repo = dir.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    std::fs::create_dir_all(dir.path().join("codex-home")).unwrap();
    let alice = mm.add_user(NewUser {
        username: "alice".into(),
        ..Default::default()
    });
    let plugin = Arc::new(Plugin::default());
    let stand = Arc::new(Stand {
        plugin: plugin.clone(),
        mm_url: mm.url(),
        bot_token: mm.bot_token(),
    });
    let server = start_stand(stand).await;

    // The plugin sends a runner neither the server's URL nor the bot's token.
    plugin.queue.lock().unwrap().push_back(json!({
        "id": "cfg1", "method": "PUT", "path": "/v1/config",
        "body": {
            "mattermost_url": "", "bot_token": "", "bot_user_id": mm.bot().id,
            "plugin_version": "test", "plugin_id": PLUGIN,
            "actions_url": format!("/plugins/{PLUGIN}/v1/actions"),
            "settings": {
                "allowed_users": [alice.id.clone()],
                "projects": format!("api = {} ; runner=one", repo.display()),
                "default_project": "api",
                "codex_path": codex::binary().unwrap().display().to_string(),
                "codex_home": dir.path().join("codex-home").display().to_string(),
                "codex_config": common::codex_overrides(&model.base_url()),
                "model": codex::MODEL,
                "codex_env": codex::API_KEY_ENV,
            }
        }
    }));
    let (_runner, log) = connect(&server, dir.path(), TOKEN);
    let cfg = wait_answer(&plugin, "cfg1").await;
    assert_eq!(
        cfg["status"],
        200,
        "{cfg}\n{}",
        std::fs::read_to_string(&log).unwrap()
    );
    assert_eq!(cfg["body"]["ok"], true);

    plugin.queue.lock().unwrap().push_back(json!({
        "id": "cmd1", "method": "POST", "path": "/v1/commands",
        "body": {
            "user": {"id": alice.id, "username": "alice", "roles": ["system_user"]},
            "channel": {"id": "chan-dev-0000000000000000000", "name": "dev", "display_name": "Dev", "kind": "public", "team_id": "team-eng", "team_name": "eng"},
            "text": "[[mock:exec]] check the build", "bot_can_post": true
        }
    }));
    let cmd = wait_answer(&plugin, "cmd1").await;
    assert_eq!(cmd["status"], 200, "{cmd}");
    let outcome = mm
        .wait_for(
            |s| {
                s.bot_posts()
                    .into_iter()
                    .find(|p| p.post.props.get("codex_kind") == Some(&json!("outcome")))
                    .cloned()
            },
            Duration::from_secs(60),
        )
        .await
        .unwrap_or_else(|_| {
            panic!(
                "no outcome; log:\n{}",
                std::fs::read_to_string(&log).unwrap()
            )
        });
    assert!(
        outcome.post.message.contains("Ran the command."),
        "{}",
        outcome.post.message
    );

    let relayed = plugin.relayed.lock().unwrap().clone();
    assert!(relayed.iter().any(|(p, _, _)| p == "/api/v4/posts"));
    for (path, token, auth) in &relayed {
        assert_eq!(
            token, TOKEN,
            "{path}: the runner's token travels in its own header"
        );
        assert!(
            auth.is_empty(),
            "{path}: no Authorization header from a runner"
        );
    }
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        !text.contains(TOKEN.rsplit('.').next().unwrap()),
        "the token is never logged"
    );
    // Health over the same envelope road.
    plugin
        .queue
        .lock()
        .unwrap()
        .push_back(json!({"id": "h1", "method": "GET", "path": "/v1/health"}));
    let health = wait_answer(&plugin, "h1").await;
    assert_eq!(health["body"]["configured"], true, "{health}");
}

#[tokio::test]
async fn a_refused_token_stops_the_runner_saying_what_to_do() {
    let dir = tempfile::Builder::new()
        .prefix("remote-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    let plugin = Arc::new(Plugin {
        refuse_all: true,
        ..Default::default()
    });
    let server = start_stand(Arc::new(Stand {
        plugin,
        mm_url: String::new(),
        bot_token: String::new(),
    }))
    .await;
    let (mut runner, log) = connect(&server, dir.path(), TOKEN);
    let status = tokio::time::timeout(Duration::from_secs(30), runner.wait())
        .await
        .expect("the runner exits when its token is refused")
        .unwrap();
    assert_eq!(
        status.code(),
        Some(78),
        "EX_CONFIG: a service manager should not restart it"
    );
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("refused this runner's token"), "{text}");
    assert!(text.contains("/codex runner add"), "{text}");

    // Not a runner token at all: refused before any connection.
    let (mut runner, log) = connect(&server, dir.path(), "not-a-token");
    let status = runner.wait().await.unwrap();
    assert_eq!(status.code(), Some(78));
    assert!(std::fs::read_to_string(&log)
        .unwrap()
        .contains("does not hold a runner token"));
}
