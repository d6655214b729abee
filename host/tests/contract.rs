//! The golden contract documents (contract/golden/*.json), which the plugin's
//! plugin/server/contract_test.go decodes too: each decodes into the host's wire type and encodes
//! back to the same document. The host's types tolerate unknown fields, so a field only one side
//! knows shows up here as a document that does not come back whole. The posts the host makes are
//! checked for their kinds and statuses.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use codex_host::chat::Post;
use codex_host::model::{ApprovalState, RunStatus};
/// The wire types. Repoint this line when they move.
use codex_host::protocol::{
    AccessGrant, AccessGranted, ActionRequest, ActionResponse, AutocompleteItem, CommandRequest,
    CommandResponse, ConfigRequest, ConfigResponse, ErrorBody, Health, PostRequest, PostResponse,
};

/// `props.codex_kind` of every post the host makes in a run's thread (and of access requests).
const POST_KINDS: &[&str] = &[
    "root",
    "progress",
    "answer_part",
    "outcome",
    "approval",
    "note",
    "access_request",
];
/// `props.codex_status` of an approval post.
const APPROVAL_STATUSES: &[&str] = &[
    "awaiting_approval",
    "approved",
    "denied",
    "expired",
    "withdrawn",
];

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../contract/golden")
}

fn golden_files() -> Vec<(String, Value)> {
    let mut files: Vec<(String, Value)> = std::fs::read_dir(golden_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            let name = p.file_stem().unwrap().to_string_lossy().into_owned();
            let doc = serde_json::from_str(&std::fs::read_to_string(&p).unwrap())
                .unwrap_or_else(|e| panic!("{name}.json is not JSON: {e}"));
            (name, doc)
        })
        .collect();
    assert!(!files.is_empty(), "no golden documents");
    files.sort_by(|a, b| a.0.cmp(&b.0));
    files
}

/// Numbers compare by value: the host writes 30.0 where the document says 30.
fn normalized(v: &Value) -> Value {
    match v {
        Value::Number(n) => serde_json::json!(n.as_f64().unwrap()),
        Value::Array(a) => Value::Array(a.iter().map(normalized).collect()),
        Value::Object(o) => {
            Value::Object(o.iter().map(|(k, v)| (k.clone(), normalized(v))).collect())
        }
        other => other.clone(),
    }
}

/// Decodes `doc` as `T` and encodes it again: the same document, or (`exact` false, for
/// Mattermost's own types, which have more fields than the host sends) one that contains it.
fn round_trip<T: DeserializeOwned + Serialize>(
    name: &str,
    doc: &Value,
    exact: bool,
) -> Result<(), String> {
    let value: T = serde_json::from_value(doc.clone()).map_err(|e| {
        format!(
            "{name}: does not decode into {}: {e}",
            std::any::type_name::<T>()
        )
    })?;
    let again = normalized(&serde_json::to_value(&value).unwrap());
    let want = normalized(doc);
    let same = if exact {
        again == want
    } else {
        contains(&again, &want)
    };
    if same {
        Ok(())
    } else {
        Err(format!(
            "{name}: {} encodes it back as\n{}\nnot as\n{}",
            std::any::type_name::<T>(),
            serde_json::to_string_pretty(&again).unwrap(),
            serde_json::to_string_pretty(&want).unwrap()
        ))
    }
}

fn contains(got: &Value, want: &Value) -> bool {
    match (got, want) {
        (Value::Object(g), Value::Object(w)) => w
            .iter()
            .all(|(k, wv)| g.get(k).is_some_and(|gv| contains(gv, wv))),
        (Value::Array(g), Value::Array(w)) => {
            g.len() == w.len() && g.iter().zip(w).all(|(g, w)| contains(g, w))
        }
        (g, w) => g == w,
    }
}

/// What a golden file decodes into, by the longest matching name prefix.
fn check(name: &str, doc: &Value) -> Result<(), String> {
    let is = |prefix: &str| name == prefix || name.starts_with(&format!("{prefix}-"));
    if is("command-request") {
        round_trip::<CommandRequest>(name, doc, true)
    } else if is("command-response") {
        round_trip::<CommandResponse>(name, doc, true)
    } else if is("post-request") {
        round_trip::<PostRequest>(name, doc, true)
    } else if is("post-response") {
        round_trip::<PostResponse>(name, doc, true)
    } else if is("action-request") {
        round_trip::<ActionRequest>(name, doc, true)
    } else if is("action-response") {
        round_trip::<ActionResponse>(name, doc, true)
    } else if is("autocomplete") {
        round_trip::<Vec<AutocompleteItem>>(name, doc, true)
    } else if is("config-request") {
        round_trip::<ConfigRequest>(name, doc, true)
    } else if is("config-response") {
        round_trip::<ConfigResponse>(name, doc, true)
    } else if is("health") {
        round_trip::<Health>(name, doc, true)
    } else if is("access-grant-request") {
        round_trip::<AccessGrant>(name, doc, true)
    } else if is("access-grant-response") {
        round_trip::<AccessGranted>(name, doc, true)
    } else if is("error") {
        round_trip::<ErrorBody>(name, doc, true)
    } else if is("post") {
        round_trip::<Post>(name, doc, false)?;
        check_post_props(name, &doc["props"])
    } else {
        Err(format!(
            "{name}: no host type for this golden document; add it to check()"
        ))
    }
}

fn check_post_props(name: &str, props: &Value) -> Result<(), String> {
    let kind = props["codex_kind"].as_str().unwrap_or_default();
    if !POST_KINDS.contains(&kind) {
        return Err(format!(
            "{name}: codex_kind `{kind}` is not a post kind ({POST_KINDS:?})"
        ));
    }
    if props["codex_run_id"]
        .as_str()
        .unwrap_or_default()
        .is_empty()
    {
        return Err(format!("{name}: no codex_run_id"));
    }
    let status = props["codex_status"].as_str();
    match (kind, status) {
        ("progress" | "outcome", Some(s)) if RunStatus::parse(s).is_some() => Ok(()),
        ("approval", Some(s)) if APPROVAL_STATUSES.contains(&s) => Ok(()),
        ("access_request", Some(s)) if ApprovalState::parse(s).is_some() => Ok(()),
        ("root" | "answer_part" | "note", None) => Ok(()),
        _ => Err(format!(
            "{name}: codex_status {status:?} is not a status of a {kind} post"
        )),
    }
}

#[test]
fn golden_documents_decode_into_the_host_types_and_back() {
    let problems: Vec<String> = golden_files()
        .iter()
        .filter_map(|(name, doc)| check(name, doc).err())
        .collect();
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

#[test]
fn every_post_kind_has_a_golden_post() {
    let kinds: Vec<String> = golden_files()
        .iter()
        .filter(|(name, _)| name.starts_with("post-") && !name.starts_with("post-re"))
        .map(|(_, doc)| {
            doc["props"]["codex_kind"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    for kind in POST_KINDS {
        assert!(
            kinds.iter().any(|k| k == kind),
            "no golden post of kind {kind}"
        );
    }
}

#[test]
fn a_command_request_without_bot_can_post_means_the_bot_can_post() {
    let req: CommandRequest = serde_json::from_value(serde_json::json!({"text": "hi"})).unwrap();
    assert!(
        req.bot_can_post,
        "plugins that joined the bot before asking send no bot_can_post"
    );
}
