//! Shared by the integration tests: the example policies (built on first use by the same script
//! as `make policies`), engines with test-friendly limits, requests, and hostile components
//! assembled from WAT with wit-component.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use codex_policy::{EngineOptions, ModuleSpec, PolicyEngine, PolicyRequest};

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// `target/policies`, after running `policies/build.sh` once per test process. Panics with the
/// script's output if the build fails: these tests never skip.
pub fn policies() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let root = repo_root();
        let output = Command::new("bash")
            .arg(root.join("policies/build.sh"))
            .current_dir(&root)
            .output()
            .expect("running policies/build.sh (needs bash)");
        assert!(
            output.status.success(),
            "building the example policies failed (this is `make policies`; it needs rustup's \
             wasm32-wasip2 target and python3 for componentize-py):\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        root.join("target/policies")
    })
}

/// An example policy's component; the Python one lives in target/policy-fixtures.
pub fn policy(name: &str) -> PathBuf {
    let dir = if name.starts_with("python-") {
        policies().parent().unwrap().join("policy-fixtures")
    } else {
        policies().to_path_buf()
    };
    let path = dir.join(format!("{name}.wasm"));
    assert!(
        path.exists(),
        "{} is missing after `make policies`",
        path.display()
    );
    path
}

/// An engine with a compile cache shared by the test processes.
pub fn engine_with(f: impl FnOnce(&mut EngineOptions)) -> PolicyEngine {
    let mut options = EngineOptions {
        cache_dir: Some(repo_root().join("target/policy-test-cache")),
        // The deadline is wall-clock time: on a shared 2-core machine under load a test thread
        // can wait longer than the default 20 ms for a CPU, and a healthy module then fails
        // closed. Tests about deadlines set their own.
        deadline: generous_deadline(),
        ..EngineOptions::default()
    };
    f(&mut options);
    PolicyEngine::new(options).expect("engine")
}

pub fn engine() -> PolicyEngine {
    engine_with(|_| {})
}

pub fn spec(name: &str, config: &str) -> ModuleSpec {
    ModuleSpec::from_path(name, policy(name), config)
}

pub fn request(username: &str, channel: &str) -> PolicyRequest {
    serde_json::from_value(serde_json::json!({
        "request_id": format!("r-{username}-{channel}"),
        "user": {"id": format!("u-{username}"), "username": username},
        "channel": {"id": format!("c-{channel}"), "name": channel,
                    "team": {"id": "t-eng", "name": "eng"}, "kind": "private"},
        "prompt": "fix the flaky test",
        "time_unix_ms": 1_767_600_000_000i64,
    }))
    .unwrap()
}

/// The 0.1.0 policy WIT (wit/0.1.0/), which the hand-written WAT fixtures below implement.
pub fn wit_v0_1() -> String {
    std::fs::read_to_string(repo_root().join("wit/0.1.0/policy.wit")).unwrap()
}

/// The current policy WIT as published in wit/.
pub fn wit_current() -> String {
    std::fs::read_to_string(repo_root().join("wit/policy.wit")).unwrap()
}

/// Assembles a component from a core module in WAT that implements the `policy-module` world
/// by hand (see `hostile_wat`), with the world taken from `wit` (so a test can pass another
/// version or another world).
pub fn component_from_wat(wit: &str, world: &str, wat: &str) -> Vec<u8> {
    let mut resolve = wit_parser::Resolve::default();
    let pkg = resolve.push_str("policy.wit", wit).expect("parse WIT");
    let world = resolve.select_world(&[pkg], Some(world)).expect("world");
    let mut module = wat::parse_str(wat).expect("valid WAT");
    wit_component::embed_component_metadata(
        &mut module,
        &resolve,
        world,
        wit_component::StringEncoding::UTF8,
    )
    .expect("embed metadata");
    wit_component::ComponentEncoder::default()
        .module(&module)
        .expect("module")
        .validate(true)
        .encode()
        .expect("encode component")
}

/// A component for a world whose functions all trap (wit-component's dummy module).
pub fn dummy_component(wit: &str, world: &str) -> Vec<u8> {
    let mut resolve = wit_parser::Resolve::default();
    let pkg = resolve.push_str("world.wit", wit).expect("parse WIT");
    let world = resolve.select_world(&[pkg], Some(world)).expect("world");
    let mut module = wit_component::dummy_module(
        &resolve,
        world,
        wit_parser::ManglingAndAbi::Legacy(wit_parser::LiftLowerAbi::Sync),
    );
    wit_component::embed_component_metadata(
        &mut module,
        &resolve,
        world,
        wit_component::StringEncoding::UTF8,
    )
    .unwrap();
    wit_component::ComponentEncoder::default()
        .module(&module)
        .unwrap()
        .validate(true)
        .encode()
        .unwrap()
}

/// A policy module in WAT whose `evaluate` body is `evaluate` and `validate-config` body is
/// `validate`. Both must leave an i32 address on the stack: the verdict (or result) in memory.
///
/// The module targets world 0.1.0. Canonical ABI layouts used (wit/0.1.0/policy.wit): `verdict` is 48 bytes: the `decision`
/// discriminant (u8) at 0 and its payload at 4; `rule-id` at 36. Prepared in data segments:
/// - 1024: all zeros = allow with no limits, no rule id.
/// - 2048: deny, reason = 1,000,000 NUL bytes at 65536.
/// - 3072: require-approval with no approvers (malformed).
/// - 4096: `result<_, string>` = err("bad config value").
/// - 8192: zeros = ok(()) for validate-config.
///
/// Memory: 24 pages; `cabi_realloc` bumps from 1,100,000.
pub fn hostile_wat(evaluate: &str, validate: &str) -> String {
    format!(
        r#"(module
  (import "mattermost-codex:policy/host@0.1.0" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 24)
  (global $heap (mut i32) (i32.const 1100000))
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
    (local $p i32)
    (local.set $p (i32.and
      (i32.add (global.get $heap) (i32.sub (local.get 2) (i32.const 1)))
      (i32.sub (i32.const 0) (local.get 2))))
    (global.set $heap (i32.add (local.get $p) (local.get 3)))
    (if (i32.gt_u (global.get $heap) (i32.mul (memory.size) (i32.const 65536)))
      (then (drop (memory.grow (i32.const 16)))))
    (local.get $p))
  (func (export "mattermost-codex:policy/policy@0.1.0#validate-config") (param i32 i32) (result i32)
    {validate})
  (func (export "mattermost-codex:policy/policy@0.1.0#evaluate") (param i32) (result i32)
    (local $i i32)
    {evaluate})
  (data (i32.const 2048) "\01\00\00\00\00\00\01\00\40\42\0f\00")
  (data (i32.const 3072) "\02\00\00\00\00\00\00\00\00\00\00\00\01\00\00\00")
  (data (i32.const 4096) "\01\00\00\00\00\50\00\00\10\00\00\00")
  (data (i32.const 0x5000) "bad config value")
)"#
    )
}

pub const OK_CONFIG: &str = "(i32.const 8192)";
pub const ALLOW: &str = "(i32.const 1024)";

/// A hostile (or not) 0.1.0 module spec named `name` with the given evaluate body.
pub fn hostile(name: &str, evaluate: &str) -> ModuleSpec {
    let bytes = component_from_wat(
        &wit_v0_1(),
        "policy-module",
        &hostile_wat(evaluate, OK_CONFIG),
    );
    ModuleSpec::from_bytes(name, bytes, "{}")
}

pub fn generous_deadline() -> Duration {
    Duration::from_secs(2)
}
