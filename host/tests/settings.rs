//! The host's settings against manifest.json, which defines every System Console setting once:
//! each field of the host's `Settings` (what the plugin pushes in `PUT /v1/config`) is a manifest
//! setting spelled in snake case, with the manifest's default; every manifest setting is either
//! such a field or one the plugin keeps to itself. The plugin's twin is
//! plugin/server/settings_test.go.

use std::path::Path;

use serde_json::{Map, Value};

use codex_host::config::Settings;

/// Manifest settings the host is not given in `settings`: the plugin acts on them itself
/// (`MattermostURL` reaches the host as the config push's `mattermost_url`).
const PLUGIN_ONLY: &[&str] = &[
    "AllowedBotIds",
    "HostMode",
    "SocketPath",
    "HostSecret",
    "ExternalHostUID",
    "MattermostURL",
];

/// Every setting of manifest.json, section by section.
fn manifest_settings() -> Vec<Map<String, Value>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../manifest.json");
    let manifest: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let sections = manifest["settings_schema"]["sections"]
        .as_array()
        .expect("manifest.json defines its settings in settings_schema.sections");
    sections
        .iter()
        .flat_map(|s| s["settings"].as_array().unwrap().iter())
        .map(|s| s.as_object().unwrap().clone())
        .collect()
}

/// A manifest key as the contract spells it: `RunTimeoutMinutes` -> `run_timeout_minutes`,
/// `MattermostURL` -> `mattermost_url`.
fn snake_case(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    let mut out = String::new();
    for (i, c) in chars.iter().enumerate() {
        let boundary = i > 0
            && c.is_uppercase()
            && (chars[i - 1].is_lowercase() || chars.get(i + 1).is_some_and(|n| n.is_lowercase()));
        if boundary {
            out.push('_');
        }
        out.extend(c.to_lowercase());
    }
    out
}

/// The manifest's default as the host holds it: numbers compare as numbers (30 == 30.0), and an
/// empty text default is an empty list for list settings.
fn same_default(manifest: &Value, host: &Value) -> bool {
    match (manifest, host) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (Value::String(s), Value::Array(a)) => s.is_empty() && a.is_empty(),
        (a, b) => a == b,
    }
}

#[test]
fn host_settings_are_the_manifest_settings_with_its_defaults() {
    let Value::Object(mut host) = serde_json::to_value(Settings::default()).unwrap() else {
        panic!("Settings serializes as an object");
    };
    let mut problems = Vec::new();
    for setting in manifest_settings() {
        let key = setting["key"].as_str().unwrap();
        let field = snake_case(key);
        if PLUGIN_ONLY.contains(&key) {
            if host.contains_key(&field) {
                problems.push(format!(
                    "{key} is listed as plugin-only, but Settings has `{field}`"
                ));
            }
            continue;
        }
        match host.remove(&field) {
            None => problems.push(format!(
                "manifest setting {key} is neither a field `{field}` of Settings (host/src/config.rs) nor listed in PLUGIN_ONLY"
            )),
            Some(value) => {
                let default = setting.get("default").cloned().unwrap_or(Value::Null);
                if !same_default(&default, &value) {
                    problems.push(format!(
                        "{key}: the manifest's default is {default}, Settings::default() has {value}"
                    ));
                }
            }
        }
    }
    for field in host.keys() {
        problems.push(format!(
            "Settings.{field} is not a setting in manifest.json"
        ));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn snake_case_spells_keys_as_the_contract() {
    assert_eq!(snake_case("RunTimeoutMinutes"), "run_timeout_minutes");
    assert_eq!(snake_case("MattermostURL"), "mattermost_url");
    assert_eq!(snake_case("ExternalHostUID"), "external_host_uid");
    assert_eq!(snake_case("AllowedBotIds"), "allowed_bot_ids");
}
