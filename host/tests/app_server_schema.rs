//! The host's app-server protocol types still match the pinned Codex CLI: runs
//! `codex app-server generate-json-schema` and checks, for every method the host uses, that the
//! method exists, that what the host sends validates against Codex's schema, and that what
//! Codex may send (every required field; then every field) parses into the host's typed
//! variant rather than the untyped fallback. Fails on a CLI bump that renames a method, adds a
//! required field the host does not send, or changes the type of a field the host reads.

mod json_schema;

use codex_host::config::SandboxMode;
use codex_host::runner::app_server::incoming::{ServerNotification, ServerRequest, ThreadItem};
use codex_host::runner::app_server::protocol::*;
use codex_testkit::codex;
use json_schema::Schema;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

fn generate() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("app-server-schema-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    let out = std::process::Command::new(codex::binary().unwrap())
        .args(["app-server", "generate-json-schema", "--out"])
        .arg(dir.path())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "codex app-server generate-json-schema failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

fn assert_valid(schema: &Schema, def: &Value, what: &str, value: &impl Serialize) {
    let value = serde_json::to_value(value).unwrap();
    let errs = schema.errors(def, &value, what);
    assert!(
        errs.is_empty(),
        "{what} as the host sends it: {value}\n{errs:#?}"
    );
}

fn assert_parses<T: DeserializeOwned>(schema: &Schema, def: &Value, what: &str) {
    for full in [false, true] {
        let sample = schema.sample(def, full, 0);
        if let Err(e) = T::deserialize(&sample) {
            panic!("{what} as Codex may send it no longer parses ({e}): {sample}");
        }
    }
}

#[test]
fn the_host_speaks_the_pinned_cli_protocol() {
    let dir = generate();
    let dir = dir.path();

    // What the host sends.
    let client = Schema::load(dir, "ClientRequest.json");
    let sandboxes = [
        SandboxMode::ReadOnly,
        SandboxMode::WorkspaceWrite,
        SandboxMode::DangerFullAccess,
    ];
    let policies = [
        ApprovalPolicy::Untrusted,
        ApprovalPolicy::OnRequest,
        ApprovalPolicy::Never,
    ];
    let input = vec![
        UserInput::Text {
            text: "fix it".into(),
        },
        UserInput::LocalImage {
            path: "/tmp/i/image-0.png".into(),
        },
    ];
    let (_, init) = client.method_params(method::INITIALIZE);
    let init_params = InitializeParams {
        client_info: ClientInfo {
            name: "codex_mattermost".into(),
            version: "1.0.0".into(),
            title: Some("t".into()),
        },
        capabilities: Some(InitializeCapabilities {
            opt_out_notification_methods: vec!["item/commandExecution/outputDelta".into()],
        }),
    };
    assert_valid(&client, init, "initialize", &init_params);
    for (sandbox, policy) in sandboxes.iter().zip(policies) {
        let settings = ThreadSettings {
            cwd: Some("/srv/api".into()),
            model: Some("gpt-5.5".into()),
            approval_policy: Some(policy),
            sandbox: Some(*sandbox),
            developer_instructions: Some("be brief".into()),
        };
        let (_, start) = client.method_params(method::THREAD_START);
        assert_valid(&client, start, "thread/start", &settings);
        let (_, resume) = client.method_params(method::THREAD_RESUME);
        let params = ThreadResumeParams {
            thread_id: "th".into(),
            settings,
        };
        assert_valid(&client, resume, "thread/resume", &params);
        let (_, turn) = client.method_params(method::TURN_START);
        let params = TurnStartParams {
            thread_id: "th".into(),
            input: input.clone(),
            cwd: Some("/srv/api".into()),
            model: Some("gpt-5.5".into()),
            approval_policy: Some(policy),
            sandbox_policy: Some(SandboxPolicy::from(*sandbox)),
        };
        assert_valid(&client, turn, "turn/start", &params);
    }
    let (_, steer) = client.method_params(method::TURN_STEER);
    let params = TurnSteerParams {
        thread_id: "th".into(),
        expected_turn_id: "tu".into(),
        input,
    };
    assert_valid(&client, steer, "turn/steer", &params);
    let (_, interrupt) = client.method_params(method::TURN_INTERRUPT);
    let params = TurnInterruptParams {
        thread_id: "th".into(),
        turn_id: "tu".into(),
    };
    assert_valid(&client, interrupt, "turn/interrupt", &params);
    let notifications = Schema::load(dir, "ClientNotification.json");
    assert!(
        notifications.root["oneOf"][0]["properties"]["method"]["enum"][0] == method::INITIALIZED
    );

    // What the host reads in answer to its requests.
    let init = Schema::load(dir, "v1/InitializeResponse.json");
    assert_parses::<InitializeResponse>(&init, &init.root, "the initialize response");
    for file in [
        "v2/ThreadStartResponse.json",
        "v2/ThreadResumeResponse.json",
    ] {
        let s = Schema::load(dir, file);
        assert_parses::<ThreadResponse>(&s, &s.root, file);
    }
    let s = Schema::load(dir, "v2/TurnStartResponse.json");
    assert_parses::<TurnResponse>(&s, &s.root, "the turn/start response");
    let s = Schema::load(dir, "v2/TurnSteerResponse.json");
    assert_parses::<TurnSteerResponse>(&s, &s.root, "the turn/steer response");
}

#[test]
fn codex_requests_and_notifications_parse_and_the_answers_validate() {
    let dir = generate();
    let dir = dir.path();

    let requests = Schema::load(dir, "ServerRequest.json");
    use codex_host::runner::app_server::incoming::request as r;
    for method in [
        r::COMMAND_APPROVAL,
        r::FILE_CHANGE_APPROVAL,
        r::PERMISSIONS_APPROVAL,
        r::USER_INPUT,
    ] {
        let (name, params) = requests.method_params(method);
        for full in [false, true] {
            let sample = requests.sample(params, full, 0);
            let parsed = ServerRequest::parse(method, sample.clone());
            assert!(
                !matches!(parsed, ServerRequest::Other { .. }),
                "{method} as Codex may send it no longer parses: {sample}"
            );
        }
        // The answer the host gives, against Codex's schema for it.
        let answer = Schema::load(dir, &format!("{}.json", name.replace("Params", "Response")));
        let answers: Vec<Value> = match method {
            r::PERMISSIONS_APPROVAL => [PermissionScope::Turn, PermissionScope::Session]
                .into_iter()
                .map(|scope| {
                    let permissions = PermissionProfile {
                        file_system: Some(FileSystemPermissions {
                            read: None,
                            write: Some(vec!["/srv/api".into()]),
                            entries: None,
                        }),
                        network: Some(NetworkPermissions {
                            enabled: Some(true),
                        }),
                    };
                    serde_json::to_value(PermissionsResponse { permissions, scope }).unwrap()
                })
                .chain([serde_json::to_value(PermissionsResponse {
                    permissions: PermissionProfile::default(),
                    scope: PermissionScope::Turn,
                })
                .unwrap()])
                .collect(),
            r::USER_INPUT => {
                let mut a = UserInputResponse::default();
                a.answers.insert(
                    "color".into(),
                    UserInputAnswer {
                        answers: vec!["Blue".into()],
                    },
                );
                vec![serde_json::to_value(a).unwrap()]
            }
            _ => [
                ApprovalDecision::Accept,
                ApprovalDecision::AcceptForSession,
                ApprovalDecision::Decline,
                ApprovalDecision::Cancel,
            ]
            .into_iter()
            .map(|decision| serde_json::to_value(ApprovalResponse { decision }).unwrap())
            .collect(),
        };
        for a in answers {
            assert_valid(
                &answer,
                &answer.root,
                &format!("the answer to {method}"),
                &a,
            );
        }
    }

    let notes = Schema::load(dir, "ServerNotification.json");
    use codex_host::runner::app_server::incoming::notification as n;
    for method in [
        n::TURN_STARTED,
        n::TURN_COMPLETED,
        n::ITEM_STARTED,
        n::ITEM_COMPLETED,
        n::AGENT_MESSAGE_DELTA,
        n::TURN_DIFF_UPDATED,
        n::TURN_PLAN_UPDATED,
        n::TOKEN_USAGE_UPDATED,
        n::RATE_LIMITS_UPDATED,
        n::ERROR,
        n::SERVER_REQUEST_RESOLVED,
    ] {
        let (_, params) = notes.method_params(method);
        for full in [false, true] {
            let sample = notes.sample(params, full, 0);
            let parsed = ServerNotification::parse(method, sample.clone());
            assert!(
                !matches!(parsed, ServerNotification::Other { .. }),
                "{method} as Codex may send it no longer parses: {sample}"
            );
        }
    }
    // Every item type the host shows, each way Codex may send it.
    let modelled = [
        "userMessage",
        "agentMessage",
        "reasoning",
        "commandExecution",
        "fileChange",
        "mcpToolCall",
        "webSearch",
    ];
    let branches = notes.def("ThreadItem")["oneOf"].as_array().unwrap();
    for t in modelled {
        let branch = branches
            .iter()
            .find(|b| b["properties"]["type"]["enum"][0] == t)
            .unwrap_or_else(|| panic!("Codex no longer has the item type `{t}`"));
        for full in [false, true] {
            let sample = notes.sample(branch, full, 0);
            let item: ThreadItem = serde_json::from_value(sample.clone()).unwrap();
            assert!(
                matches!(item, ThreadItem::Known(_)),
                "a `{t}` item no longer parses: {sample}"
            );
        }
    }
    // The states the host tells apart still exist.
    let has = |def: &str, values: &[&str]| {
        let known = notes.enum_values(def);
        for v in values {
            assert!(
                known.iter().any(|k| k == v),
                "{def} no longer has `{v}` ({known:?})"
            );
        }
    };
    has(
        "TurnStatus",
        &["inProgress", "completed", "interrupted", "failed"],
    );
    has(
        "CommandExecutionStatus",
        &["inProgress", "completed", "failed", "declined"],
    );
    has(
        "PatchApplyStatus",
        &["inProgress", "completed", "failed", "declined"],
    );
    has(
        "TurnPlanStepStatus",
        &["pending", "inProgress", "completed"],
    );
}
