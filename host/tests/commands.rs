//! The `/codex` grammar against contract/commands.json, the one list that plugin autocomplete is
//! built from: the host accepts exactly the subcommands listed there, and its help names each.
//! And the host, not the plugin, says when a text needs the bot in the channel.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::{json, Value};

use common::Env;

/// The host's subcommands: the grammar's own list.
use codex_host::commands::SUBCOMMANDS as HOST_SUBCOMMANDS;

fn listed() -> Vec<Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../contract/commands.json");
    let list: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    list["subcommands"]
        .as_array()
        .expect("contract/commands.json has a subcommands list")
        .clone()
}

fn listed_subcommands() -> Vec<String> {
    listed()
        .iter()
        .map(|s| {
            s["name"]
                .as_str()
                .expect("every subcommand has a name")
                .to_string()
        })
        .collect()
}

#[test]
fn autocomplete_shows_the_hosts_hints_and_help_in_its_order() {
    let listed: Vec<(String, String, String)> = listed()
        .iter()
        .map(|s| {
            let field = |k: &str| s[k].as_str().unwrap_or_default().to_string();
            (field("name"), field("hint"), field("help"))
        })
        .collect();
    let host: Vec<(String, String, String)> = HOST_SUBCOMMANDS
        .iter()
        .map(|s| (s.name.to_string(), s.hint.to_string(), s.help.to_string()))
        .collect();
    assert_eq!(
        listed, host,
        "contract/commands.json (autocomplete) and commands::SUBCOMMANDS (the host's grammar) differ"
    );
}

#[test]
fn the_host_accepts_exactly_the_listed_subcommands() {
    let listed: BTreeSet<String> = listed_subcommands().into_iter().collect();
    let host: BTreeSet<String> = HOST_SUBCOMMANDS
        .iter()
        .map(|s| s.name.to_string())
        .collect();
    assert_eq!(
        listed.difference(&host).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "listed in contract/commands.json (so offered by autocomplete) but unknown to the host"
    );
    assert_eq!(
        host.difference(&listed).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "accepted by the host but missing from contract/commands.json (so from autocomplete)"
    );
}

#[test]
fn the_help_names_every_subcommand() {
    let usage: Vec<&str> = HOST_SUBCOMMANDS.iter().map(|s| s.usage).collect();
    let help = codex_host::render::help(&usage, "api", Some("api"));
    for name in listed_subcommands() {
        assert!(
            help.contains(&format!("`/codex {name}")),
            "`/codex help` does not mention `{name}`:\n{help}"
        );
    }
}

/// Asked with `bot_can_post: false`, the host answers everything that starts no run, and asks
/// for the bot's access before a run without starting it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_run_request_asks_for_the_bots_access() {
    let env = Env::start(|_| {}).await;
    let ask = |text: &str| json!({"user": env.alice, "channel": env.channel, "root_id": "", "trigger_id": "t", "text": text, "bot_can_post": false});
    for text in ["help", "status", "stauts", "projects", ""] {
        let (status, resp) = env.call("POST", "/v1/commands", Some(ask(text))).await;
        assert_eq!(status, 200, "{resp}");
        assert!(
            resp.get("needs_bot_access").is_none(),
            "/codex {text}: {resp}"
        );
        assert!(
            !resp["text"].as_str().unwrap_or_default().is_empty(),
            "/codex {text}: {resp}"
        );
    }
    let (_, resp) = env.call("POST", "/v1/commands", Some(ask("stauts"))).await;
    assert!(
        resp["text"].as_str().unwrap().contains("Unknown command"),
        "{resp}"
    );

    let posts_before = env.mm.posts().len();
    for text in ["fix the flaky login test", "new add a health check"] {
        let (status, resp) = env.call("POST", "/v1/commands", Some(ask(text))).await;
        assert_eq!(status, 200, "{resp}");
        assert_eq!(
            resp,
            json!({"response_type": "ephemeral", "text": "", "needs_bot_access": true}),
            "/codex {text}"
        );
    }
    assert!(env.model.requests().is_empty(), "no run started");
    assert_eq!(env.mm.posts().len(), posts_before, "nothing posted");
}
