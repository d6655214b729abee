//! A stand-in for `codex app-server` used by the host load benchmark: it answers the JSON-RPC
//! the host speaks (`initialize`, `thread/start` or `thread/resume`, `turn/start`) over stdio,
//! shaped like Codex CLI 0.171's messages, and completes each turn at once with one agent
//! message, "Stand-in answer: <the turn's text>". It exits when its stdin closes, as the CLI
//! does. It reads nothing from the network and writes no files, so the measurement is of the
//! host, not of a model.

use std::io::{BufRead, Write};

use serde_json::{json, Value};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--version") {
        println!("codex-cli 0.171.0 (codex-bench stand-in)");
        return;
    }
    if args.first().map(String::as_str) != Some("app-server") {
        eprintln!("codex-standin: only `app-server` is stood in for, not {args:?}");
        std::process::exit(2);
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let thread_id = format!("0199bench-{:x}-{:x}", std::process::id(), nanos);
    let stdin = std::io::stdin();
    let mut out = std::io::stdout().lock();
    let mut send = |v: Value| {
        let _ = writeln!(out, "{v}");
        let _ = out.flush();
    };
    let mut turns = 0u32;
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        let Ok(msg) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        let (Some(method), id) = (msg["method"].as_str(), msg.get("id").cloned()) else {
            continue; // an answer to a request of ours: we send none
        };
        let Some(id) = id else {
            continue; // a notification (`initialized`)
        };
        let params = &msg["params"];
        match method {
            "initialize" => send(json!({"id": id, "result": {
                "userAgent": "codex_cli_rs/0.171.0 (codex-bench stand-in)",
                "codexHome": std::env::var("CODEX_HOME").unwrap_or_default()}})),
            "thread/start" | "thread/resume" => {
                let thread = params["threadId"].as_str().unwrap_or(&thread_id);
                send(json!({"id": id, "result": {
                    "thread": {"id": thread}, "model": params["model"].as_str().unwrap_or("stand-in"),
                    "cwd": params["cwd"].as_str().unwrap_or("")}}));
            }
            "turn/start" => {
                turns += 1;
                let thread = params["threadId"].clone();
                let turn = format!("turn-{turns}");
                let text: String = params["input"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|i| i["text"].as_str())
                    .collect::<Vec<_>>()
                    .join("\n");
                send(json!({"id": id, "result": {"turn": {"id": turn, "status": "inProgress"}}}));
                send(json!({"method": "turn/started", "params": {
                    "threadId": thread, "turn": {"id": turn, "status": "inProgress"}}}));
                send(json!({"method": "item/completed", "params": {
                    "threadId": thread, "turnId": turn,
                    "item": {"type": "agentMessage", "id": format!("item-{turns}"),
                             "text": format!("Stand-in answer: {text}")}}}));
                send(json!({"method": "turn/completed", "params": {
                    "threadId": thread, "turn": {"id": turn, "status": "completed"}}}));
            }
            _ => send(json!({"id": id, "error": {"code": -32601,
                "message": format!("codex-standin does not stand in for {method}")}})),
        }
    }
}
