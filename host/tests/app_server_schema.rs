//! The host's app-server protocol types still match the pinned Codex CLI: runs
//! `codex app-server generate-json-schema` and checks, for every method the host uses, that the
//! method exists, that what the host sends validates against Codex's schema, and that what
//! Codex may send (every required field; then every field) parses into the host's typed
//! variant rather than the untyped fallback. Fails on a CLI bump that renames a method, adds a
//! required field the host does not send, or changes the type of a field the host reads.

use std::path::Path;

use codex_host::config::Sandbox;
use codex_host::runner::app_server::incoming::{ServerNotification, ServerRequest, ThreadItem};
use codex_host::runner::app_server::protocol::*;
use codex_testkit::codex;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

/// One schema file of the generated bundle (each is self-contained: `#/definitions/...`).
struct Schema {
    root: Value,
}

impl Schema {
    fn load(dir: &Path, file: &str) -> Schema {
        let text = std::fs::read_to_string(dir.join(file))
            .unwrap_or_else(|e| panic!("{file} is not in the generated schema: {e}"));
        Schema {
            root: serde_json::from_str(&text).unwrap(),
        }
    }

    fn def(&self, name: &str) -> &Value {
        self.root["definitions"]
            .get(name)
            .unwrap_or_else(|| panic!("definition {name} is gone"))
    }

    fn resolve<'a>(&'a self, s: &'a Value) -> &'a Value {
        match s.get("$ref").and_then(Value::as_str) {
            Some(r) => self.resolve(self.def(r.trim_start_matches("#/definitions/"))),
            None => s,
        }
    }

    /// The params schema of `method` in a `ClientRequest`/`ServerRequest`/`ServerNotification`
    /// union, and the name of its definition.
    fn method_params(&self, method: &str) -> (String, &Value) {
        let variant = self.root["oneOf"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["properties"]["method"]["enum"][0] == method)
            .unwrap_or_else(|| panic!("Codex no longer has the method `{method}`"));
        let r = variant["properties"]["params"]["$ref"].as_str().unwrap();
        let name = r.trim_start_matches("#/definitions/").to_string();
        (name.clone(), self.def(&name))
    }

    fn enum_values(&self, def: &str) -> Vec<String> {
        let d = self.def(def);
        let mut out = Vec::new();
        for branch in d["oneOf"]
            .as_array()
            .cloned()
            .unwrap_or_else(|| vec![d.clone()])
        {
            for v in branch["enum"].as_array().into_iter().flatten() {
                out.push(v.as_str().unwrap().to_string());
            }
        }
        out
    }

    /// Where `value` breaks `schema` (empty: it validates). Enough of JSON Schema for Codex's:
    /// `$ref`, `allOf`/`anyOf`/`oneOf`, `type`, `enum`, `properties`, `required`,
    /// `additionalProperties: false`, `items`.
    fn errors(&self, schema: &Value, value: &Value, at: &str) -> Vec<String> {
        let s = self.resolve(schema);
        let mut errs = Vec::new();
        if let Some(all) = s.get("allOf").and_then(Value::as_array) {
            for sub in all {
                errs.extend(self.errors(sub, value, at));
            }
        }
        for key in ["anyOf", "oneOf"] {
            if let Some(any) = s.get(key).and_then(Value::as_array) {
                if !any.iter().any(|sub| self.errors(sub, value, at).is_empty()) {
                    errs.push(format!("{at}: {value} matches no branch of {key}"));
                }
            }
        }
        if let Some(e) = s.get("enum").and_then(Value::as_array) {
            if !e.contains(value) {
                errs.push(format!("{at}: {value} is not one of {e:?}"));
            }
        }
        if let Some(t) = s.get("type") {
            let types: Vec<&str> = match t {
                Value::String(t) => vec![t.as_str()],
                Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
                _ => vec![],
            };
            if !types.iter().any(|t| type_matches(t, value)) {
                errs.push(format!("{at}: {value} is not of type {types:?}"));
                return errs;
            }
        }
        if let Value::Object(obj) = value {
            let props = s.get("properties").and_then(Value::as_object);
            for req in s
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if !obj.contains_key(req.as_str().unwrap()) {
                    errs.push(format!(
                        "{at}: required field `{}` is missing",
                        req.as_str().unwrap()
                    ));
                }
            }
            for (k, v) in obj {
                match props.and_then(|p| p.get(k)) {
                    Some(sub) => errs.extend(self.errors(sub, v, &format!("{at}.{k}"))),
                    None if s.get("additionalProperties").is_some_and(Value::is_object) => {
                        let sub = &s["additionalProperties"];
                        errs.extend(self.errors(sub, v, &format!("{at}.{k}")))
                    }
                    None if s.get("additionalProperties") == Some(&Value::Bool(false)) => {
                        errs.push(format!("{at}: field `{k}` is not allowed"))
                    }
                    None if props.is_some() && s.get("additionalProperties").is_none() => {
                        errs.push(format!("{at}: Codex does not know the field `{k}`"))
                    }
                    None => {}
                }
            }
        }
        if let (Value::Array(items), Some(item_schema)) = (value, s.get("items")) {
            for (i, v) in items.iter().enumerate() {
                errs.extend(self.errors(item_schema, v, &format!("{at}[{i}]")));
            }
        }
        errs
    }

    /// A value Codex could send for `schema`: only required fields (`full` false), or every
    /// field (`full` true, down to a depth limit). The first branch of each union.
    fn sample(&self, schema: &Value, full: bool, depth: usize) -> Value {
        let s = self.resolve(schema);
        if let Some(e) = s.get("enum").and_then(Value::as_array) {
            return e[0].clone();
        }
        for key in ["allOf", "anyOf", "oneOf"] {
            if let Some(branches) = s.get(key).and_then(Value::as_array) {
                let branch = branches
                    .iter()
                    .find(|b| self.resolve(b).get("type") != Some(&json!("null")))
                    .unwrap_or(&branches[0]);
                let mut v = self.sample(branch, full, depth);
                // `oneOf` alongside `properties` (e.g. image input): merge both.
                if s.get("properties").is_some() {
                    let own = self.sample_object(s, full, depth);
                    if let (Value::Object(v), Value::Object(own)) = (&mut v, own) {
                        v.extend(own);
                    }
                }
                return v;
            }
        }
        let ty = match s.get("type") {
            Some(Value::String(t)) => t.as_str(),
            Some(Value::Array(ts)) => ts
                .iter()
                .filter_map(Value::as_str)
                .find(|t| *t != "null")
                .unwrap_or("null"),
            _ if s.get("properties").is_some() => "object",
            _ => "null",
        };
        match ty {
            "object" => self.sample_object(s, full, depth),
            "array" if full && depth < 10 => match s.get("items") {
                Some(items) => json!([self.sample(items, full, depth + 1)]),
                None => json!([]),
            },
            "array" => json!([]),
            "string" => json!("x"),
            "integer" => json!(1),
            "number" => json!(1.5),
            "boolean" => json!(false),
            _ => Value::Null,
        }
    }

    fn sample_object(&self, s: &Value, full: bool, depth: usize) -> Value {
        let required: Vec<&str> = s
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let mut obj = serde_json::Map::new();
        for (k, sub) in s
            .get("properties")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            if required.contains(&k.as_str()) || (full && depth < 10) {
                obj.insert(k.clone(), self.sample(sub, full, depth + 1));
            }
        }
        Value::Object(obj)
    }
}

fn type_matches(t: &str, v: &Value) -> bool {
    match t {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        _ => true,
    }
}

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
        Sandbox::ReadOnly,
        Sandbox::WorkspaceWrite,
        Sandbox::DangerFullAccess,
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
