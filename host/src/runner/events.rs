//! The `codex exec --json` event stream, as typed values.
//!
//! One JSON object per stdout line. Known events and item types are parsed into variants; anything
//! else (a newer CLI, a field we do not use) becomes `Other`/`ItemKind::Other` and is ignored, never
//! fatal. This module does no I/O.

use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    ThreadStarted {
        thread_id: String,
    },
    TurnStarted,
    TurnCompleted {
        usage: Usage,
    },
    TurnFailed {
        message: String,
    },
    ItemStarted(Item),
    ItemUpdated(Item),
    ItemCompleted(Item),
    /// A bare `error` line: may be a retry notice, not necessarily terminal.
    Error {
        message: String,
    },
    Other,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Usage {
    pub input_tokens: u64,
    pub cached_input_tokens: u64,
    pub output_tokens: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub id: String,
    pub kind: ItemKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ItemKind {
    AgentMessage {
        text: String,
    },
    Reasoning {
        text: String,
    },
    CommandExecution {
        command: String,
        exit_code: Option<i64>,
        status: String,
    },
    FileChange {
        changes: Vec<FileChange>,
    },
    McpToolCall {
        server: String,
        tool: String,
    },
    WebSearch {
        query: String,
    },
    TodoList {
        done: usize,
        total: usize,
    },
    Error {
        message: String,
    },
    Other(String),
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct FileChange {
    #[serde(default)]
    pub path: String,
    #[serde(default)]
    pub kind: String,
}

/// Parses one stdout line. Lines that are not JSON objects yield `None` (the caller keeps them as
/// diagnostics); JSON with an unknown `type` yields `Some(Event::Other)`.
pub fn parse_line(line: &str) -> Option<Event> {
    let v: Value = serde_json::from_str(line.trim()).ok()?;
    let ty = v.get("type")?.as_str()?;
    let s = |v: &Value, k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    Some(match ty {
        "thread.started" => Event::ThreadStarted {
            thread_id: s(&v, "thread_id"),
        },
        "turn.started" => Event::TurnStarted,
        "turn.completed" => Event::TurnCompleted {
            usage: v
                .get("usage")
                .cloned()
                .and_then(|u| serde_json::from_value(u).ok())
                .unwrap_or_default(),
        },
        "turn.failed" => Event::TurnFailed {
            message: v.get("error").map(|e| s(e, "message")).unwrap_or_default(),
        },
        "error" => Event::Error {
            message: s(&v, "message"),
        },
        "item.started" | "item.updated" | "item.completed" => {
            let item = parse_item(v.get("item")?);
            match ty {
                "item.started" => Event::ItemStarted(item),
                "item.updated" => Event::ItemUpdated(item),
                _ => Event::ItemCompleted(item),
            }
        }
        _ => Event::Other,
    })
}

fn parse_item(v: &Value) -> Item {
    let s = |k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let ty = s("type");
    let kind = match ty.as_str() {
        "agent_message" => ItemKind::AgentMessage { text: s("text") },
        "reasoning" => ItemKind::Reasoning { text: s("text") },
        "command_execution" => ItemKind::CommandExecution {
            command: s("command"),
            exit_code: v.get("exit_code").and_then(Value::as_i64),
            status: s("status"),
        },
        "file_change" => ItemKind::FileChange {
            changes: v
                .get("changes")
                .cloned()
                .and_then(|c| serde_json::from_value(c).ok())
                .unwrap_or_default(),
        },
        "mcp_tool_call" => ItemKind::McpToolCall {
            server: s("server"),
            tool: s("tool"),
        },
        "web_search" => ItemKind::WebSearch { query: s("query") },
        "todo_list" => {
            let items = v
                .get("items")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let done = items
                .iter()
                .filter(|i| i.get("completed").and_then(Value::as_bool) == Some(true))
                .count();
            ItemKind::TodoList {
                done,
                total: items.len(),
            }
        }
        "error" => ItemKind::Error {
            message: s("message"),
        },
        _ => ItemKind::Other(ty),
    };
    Item { id: s("id"), kind }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_known_events_and_tolerates_unknown_ones() {
        assert_eq!(
            parse_line(r#"{"type":"thread.started","thread_id":"0199-abc"}"#),
            Some(Event::ThreadStarted {
                thread_id: "0199-abc".into()
            })
        );
        let done = parse_line(
            r#"{"type":"item.completed","item":{"id":"item_3","type":"agent_message","text":"hi"}}"#,
        );
        assert_eq!(
            done,
            Some(Event::ItemCompleted(Item {
                id: "item_3".into(),
                kind: ItemKind::AgentMessage { text: "hi".into() }
            }))
        );
        let usage = parse_line(
            r#"{"type":"turn.completed","usage":{"input_tokens":10,"cached_input_tokens":2,"output_tokens":5,"new":1}}"#,
        );
        assert_eq!(
            usage,
            Some(Event::TurnCompleted {
                usage: Usage {
                    input_tokens: 10,
                    cached_input_tokens: 2,
                    output_tokens: 5
                }
            })
        );
        assert_eq!(
            parse_line(r#"{"type":"something.new","x":1}"#),
            Some(Event::Other)
        );
        let odd = parse_line(r#"{"type":"item.started","item":{"id":"i","type":"hologram"}}"#);
        assert_eq!(
            odd,
            Some(Event::ItemStarted(Item {
                id: "i".into(),
                kind: ItemKind::Other("hologram".into())
            }))
        );
        assert_eq!(parse_line("not json"), None);
        assert_eq!(
            parse_line(r#"{"type":"turn.failed","error":{"message":"boom"}}"#),
            Some(Event::TurnFailed {
                message: "boom".into()
            })
        );
    }

    #[test]
    fn parses_file_changes_and_commands() {
        let e = parse_line(
            r#"{"type":"item.completed","item":{"id":"item_1","type":"file_change","changes":[{"path":"/r/a.txt","kind":"add"}],"status":"completed"}}"#,
        );
        match e {
            Some(Event::ItemCompleted(Item {
                kind: ItemKind::FileChange { changes },
                ..
            })) => {
                assert_eq!(
                    changes,
                    vec![FileChange {
                        path: "/r/a.txt".into(),
                        kind: "add".into()
                    }]
                )
            }
            other => panic!("unexpected {other:?}"),
        }
        let c = parse_line(
            r#"{"type":"item.started","item":{"id":"item_0","type":"command_execution","command":"bash -lc ls","aggregated_output":"","exit_code":null,"status":"in_progress"}}"#,
        );
        match c {
            Some(Event::ItemStarted(Item {
                kind:
                    ItemKind::CommandExecution {
                        command, exit_code, ..
                    },
                ..
            })) => {
                assert_eq!(command, "bash -lc ls");
                assert_eq!(exit_code, None);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
