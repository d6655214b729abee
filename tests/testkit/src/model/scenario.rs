//! What the mock model answers: the `[[mock:...]]` marker grammar, the choice of reply for one
//! Responses API request body, and the server-sent events that carry it. Pure functions of the
//! request (plus the tool call ids the mock issued earlier); no I/O.

use serde_json::{json, Value};

/// A scenario selected by a marker in the text of the last user message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// No marker: `Mock answer: <first 200 chars of the prompt>`.
    Echo,
    /// `[[mock:exec]]`: an `exec_command` function call, then `Ran the command.`
    Exec,
    /// `[[mock:patch]]`: an `apply_patch` custom tool call adding `mock.txt`, then `Patched mock.txt.`
    Patch,
    /// `[[mock:fail]]`: `response.failed` with `mock failure: the model refused`.
    Fail,
    /// `[[mock:slow:N]]`: the stream stays open N seconds, then `Slow answer done.`
    Slow { seconds: u64 },
    /// `[[mock:long:N]]`: about N characters of numbered paragraphs ending in `END-OF-LONG-ANSWER`.
    Long { chars: usize },
    /// `[[mock:secret]]`: an answer carrying fake secrets of well-known shapes.
    Secret,
    /// `[[mock:sh:COMMAND]]`: an `exec_command` call running COMMAND (everything up to `]]`), then
    /// `Command output:` and what the command printed, as Codex reported it back.
    Shell,
    /// `[[mock:esc:COMMAND]]`: like `sh`, but the call asks to run outside the sandbox
    /// (`sandbox_permissions: require_escalated`, with [`ESCALATE_JUSTIFICATION`]), so Codex asks
    /// for approval under approval policy `on-request`, the host's.
    Escalated,
    /// `[[mock:perm:PATH]]`: a `request_permissions` call asking to write PATH, then
    /// `Permissions:` and the tool output Codex sent back (what was granted).
    Perm,
    /// `[[mock:ask]]`: a `request_user_input` call with one question ([`ASK_QUESTION_ID`]), then
    /// `User answered:` and the tool output Codex sent back (the answers).
    Ask,
}

pub const EXEC_COMMAND: &str = "echo mock-exec-output";
pub const EXEC_ANSWER: &str = "Ran the command.";
/// The reasoning summary sent with the `exec_command` call (Codex shows it as a `reasoning` item).
pub const EXEC_REASONING: &str =
    "**Running the command**\n\nThe user asked for a command; running it.";
pub const PATCH_FILE: &str = "mock.txt";
pub const PATCH_LINE: &str = "hello from mock";
pub const PATCH_ANSWER: &str = "Patched mock.txt.";
pub const FAIL_MESSAGE: &str = "mock failure: the model refused";
pub const SLOW_ANSWER: &str = "Slow answer done.";
pub const SHELL_ANSWER_PREFIX: &str = "Command output:";
pub const ESCALATE_JUSTIFICATION: &str = "mock: this command must run outside the sandbox";
pub const PERM_ANSWER_PREFIX: &str = "Permissions:";
pub const ASK_QUESTION_ID: &str = "color";
pub const ASK_QUESTION: &str = "Which color should the button be?";
pub const ASK_ANSWER_PREFIX: &str = "User answered:";
pub const LONG_END: &str = "END-OF-LONG-ANSWER";
pub const FAKE_OPENAI_KEY: &str = "sk-proj-Mock0Key1For2Redaction3Tests4Only5AbcDef";
pub const FAKE_GITHUB_TOKEN: &str = "ghp_Mock0Token1For2Redaction3Tests4Abcde";
pub const FAKE_AWS_KEY_ID: &str = "AKIAMOCK0KEY1TEST2XY";
pub const FAKE_SSH_KEY: &str = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\nMockPrivateKeyMaterialForRedactionTestsOnlyNotARealKey0123456789abcdef\n-----END OPENSSH PRIVATE KEY-----";

impl Scenario {
    /// Finds the first well-formed `[[mock:...]]` marker; unknown or malformed markers are ignored.
    pub fn from_prompt(text: &str) -> Self {
        let mut rest = text;
        while let Some(start) = rest.find("[[mock:") {
            let after = &rest[start + "[[mock:".len()..];
            let Some(end) = after.find("]]") else { break };
            if let Some(scenario) = Self::from_marker(&after[..end]) {
                return scenario;
            }
            rest = after;
        }
        Self::Echo
    }

    fn from_marker(body: &str) -> Option<Self> {
        let (name, arg) = body
            .split_once(':')
            .map_or((body, None), |(n, a)| (n, Some(a)));
        let number = || arg.and_then(|a| a.trim().parse::<u64>().ok());
        Some(match name.trim() {
            "exec" => Self::Exec,
            "patch" => Self::Patch,
            "fail" => Self::Fail,
            "slow" => Self::Slow { seconds: number()? },
            "long" => Self::Long {
                chars: number()? as usize,
            },
            "secret" => Self::Secret,
            "ask" => Self::Ask,
            "perm" if arg.is_some_and(|a| !a.trim().is_empty()) => Self::Perm,
            "sh" if arg.is_some_and(|a| !a.trim().is_empty()) => Self::Shell,
            "esc" if arg.is_some_and(|a| !a.trim().is_empty()) => Self::Escalated,
            _ => return None,
        })
    }
}

/// The command of a `[[mock:sh:COMMAND]]` marker.
pub fn shell_command(text: &str) -> Option<&str> {
    marker_arg(text, "[[mock:sh:")
}

/// The command of a `[[mock:esc:COMMAND]]` marker.
pub fn escalated_command(text: &str) -> Option<&str> {
    marker_arg(text, "[[mock:esc:")
}

/// The path of a `[[mock:perm:PATH]]` marker.
pub fn perm_path(text: &str) -> Option<&str> {
    marker_arg(text, "[[mock:perm:")
}

fn marker_arg<'a>(text: &'a str, marker: &str) -> Option<&'a str> {
    let start = text.find(marker)? + marker.len();
    let len = text[start..].find("]]")?;
    Some(text[start..start + len].trim())
}

/// The text of the last input item with role `user`, i.e. the prompt of the current turn.
/// Codex also sends its `<environment_context>` as a user message (in 0.169 just before the
/// prompt, also on resume); those are skipped so their placement can change without effect.
pub fn last_user_text(body: &Value) -> Option<String> {
    let input = body.get("input")?.as_array()?;
    input
        .iter()
        .rev()
        .filter(|item| item.get("role").and_then(Value::as_str) == Some("user"))
        .filter_map(message_text)
        .find(|text| !text.trim_start().starts_with("<environment_context>"))
}

fn message_text(message: &Value) -> Option<String> {
    Some(match message.get("content")? {
        Value::String(text) => text.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|part| part.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => return None,
    })
}

/// What the tool that ends the input printed, as Codex reports it (a string, or text parts).
pub fn tool_output_text(body: &Value) -> String {
    let output = body
        .get("input")
        .and_then(Value::as_array)
        .and_then(|i| i.last())
        .and_then(|l| l.get("output"));
    match output {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        Some(other) => other.to_string(),
        None => String::new(),
    }
}

/// The tool output that ends the input, if the request is the follow-up to a tool call.
pub fn trailing_tool_output(body: &Value) -> Option<(&str, &str)> {
    let last = body.get("input")?.as_array()?.last()?;
    let kind = last.get("type")?.as_str()?;
    matches!(kind, "function_call_output" | "custom_tool_call_output")
        .then(|| Some((kind, last.get("call_id")?.as_str()?)))?
}

/// What one response stream carries, before it is turned into events.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Message(String),
    FunctionCall {
        call_id: String,
        name: String,
        arguments: String,
    },
    CustomToolCall {
        call_id: String,
        name: String,
        input: String,
    },
    Failed(String),
}

pub fn echo_answer(prompt: &str) -> String {
    format!(
        "Mock answer: {}",
        prompt.chars().take(200).collect::<String>()
    )
}

pub fn exec_call(call_id: String) -> Reply {
    Reply::FunctionCall {
        call_id,
        name: "exec_command".into(),
        arguments: json!({ "cmd": EXEC_COMMAND }).to_string(),
    }
}

pub fn shell_call(call_id: String, command: &str) -> Reply {
    Reply::FunctionCall {
        call_id,
        name: "exec_command".into(),
        arguments: json!({ "cmd": command }).to_string(),
    }
}

pub fn escalated_call(call_id: String, command: &str) -> Reply {
    Reply::FunctionCall {
        call_id,
        name: "exec_command".into(),
        arguments: json!({
            "cmd": command,
            "sandbox_permissions": "require_escalated",
            "justification": ESCALATE_JUSTIFICATION,
        })
        .to_string(),
    }
}

pub fn perm_call(call_id: String, path: &str) -> Reply {
    Reply::FunctionCall {
        call_id,
        name: "request_permissions".into(),
        arguments: json!({
            "permissions": { "file_system": { "write": [path] } },
            "reason": format!("need to write {path}"),
        })
        .to_string(),
    }
}

pub fn ask_call(call_id: String) -> Reply {
    let question = json!({
        "id": ASK_QUESTION_ID, "header": "Color", "question": ASK_QUESTION,
        "options": [
            { "label": "Blue (Recommended)", "description": "Matches the theme." },
            { "label": "Red", "description": "Stands out." },
        ],
    });
    Reply::FunctionCall {
        call_id,
        name: "request_user_input".into(),
        arguments: json!({ "questions": [question] }).to_string(),
    }
}

pub fn patch_call(call_id: String) -> Reply {
    Reply::CustomToolCall {
        call_id,
        name: "apply_patch".into(),
        input: format!(
            "*** Begin Patch\n*** Add File: {PATCH_FILE}\n+{PATCH_LINE}\n*** End Patch\n"
        ),
    }
}

pub fn long_answer(chars: usize) -> String {
    const LOREM: &str = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor \
        incididunt ut labore et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation \
        ullamco laboris nisi ut aliquip ex ea commodo consequat.";
    let mut text = String::with_capacity(chars + 256);
    let mut n = 1;
    while text.len() + LONG_END.len() < chars {
        text.push_str(&format!("Paragraph {n}: {LOREM}\n\n"));
        n += 1;
    }
    text.push_str(LONG_END);
    text
}

pub fn secret_answer() -> String {
    format!(
        "Here are the credentials I found (no secret here is real):\n\n\
         OPENAI_API_KEY={FAKE_OPENAI_KEY}\n\
         GITHUB_TOKEN={FAKE_GITHUB_TOKEN}\n\
         AWS_ACCESS_KEY_ID={FAKE_AWS_KEY_ID}\n\n\
         ```\n{FAKE_SSH_KEY}\n```\n\n\
         The rest of this answer has no secret here."
    )
}

/// Token counts shaped like the real API's `usage`, sized from the request and the reply so
/// `turn.completed` carries plausible, non-zero numbers.
fn usage(request_bytes: usize, reply: &Reply) -> Value {
    let output_chars = match reply {
        Reply::Message(text) | Reply::Failed(text) => text.len(),
        Reply::FunctionCall { arguments, .. } => arguments.len(),
        Reply::CustomToolCall { input, .. } => input.len(),
    };
    let input_tokens = (request_bytes / 4).max(1);
    let output_tokens = (output_chars / 4).max(1);
    json!({
        "input_tokens": input_tokens,
        "input_tokens_details": { "cached_tokens": 0 },
        "output_tokens": output_tokens,
        "output_tokens_details": { "reasoning_tokens": 0 },
        "total_tokens": input_tokens + output_tokens,
    })
}

/// The `response` object as `response.created` / `response.in_progress` carry it.
pub fn response_stub(response_id: &str, model: &str, status: &str) -> Value {
    json!({ "id": response_id, "object": "response", "status": status, "model": model, "output": [] })
}

/// The events after `response.created` for one reply, in the order the real API sends them.
/// A `reasoning` summary, if given, comes as its own output item first (Codex shows it as a
/// `reasoning` item).
pub fn reply_events(
    response_id: &str,
    model: &str,
    item_id: &str,
    request_bytes: usize,
    reasoning: Option<&str>,
    reply: &Reply,
) -> Vec<Value> {
    let item = match reply {
        Reply::Failed(message) => {
            let mut response = response_stub(response_id, model, "failed");
            // `invalid_prompt` is not retryable, so Codex reports the message as is; with
            // `server_error` or no code it says "stream disconnected before completion: ...".
            response["error"] = json!({ "code": "invalid_prompt", "message": message });
            return vec![json!({ "type": "response.failed", "response": response })];
        }
        Reply::Message(text) => json!({
            "type": "message", "id": item_id, "role": "assistant", "status": "completed",
            "content": [{ "type": "output_text", "text": text, "annotations": [] }],
        }),
        Reply::FunctionCall {
            call_id,
            name,
            arguments,
        } => json!({
            "type": "function_call", "id": item_id, "status": "completed",
            "call_id": call_id, "name": name, "arguments": arguments,
        }),
        Reply::CustomToolCall {
            call_id,
            name,
            input,
        } => json!({
            "type": "custom_tool_call", "id": item_id, "status": "completed",
            "call_id": call_id, "name": name, "input": input,
        }),
    };
    let mut events = Vec::new();
    let mut output = Vec::new();
    if let Some(summary) = reasoning {
        let reasoning = json!({
            "type": "reasoning", "id": format!("rs_{item_id}"), "encrypted_content": null,
            "summary": [{ "type": "summary_text", "text": summary }],
        });
        events.push(
            json!({ "type": "response.output_item.added", "output_index": 0, "item": reasoning }),
        );
        events.push(
            json!({ "type": "response.output_item.done", "output_index": 0, "item": reasoning }),
        );
        output.push(reasoning);
    }
    let index = output.len();
    let mut added = item.clone();
    added["status"] = json!("in_progress");
    if let Reply::Message(text) = reply {
        added["content"] = json!([]);
        events.push(
            json!({ "type": "response.output_item.added", "output_index": index, "item": added }),
        );
        events.push(json!({
            "type": "response.output_text.delta", "item_id": item_id, "output_index": index,
            "content_index": 0, "delta": text,
        }));
    } else {
        events.push(
            json!({ "type": "response.output_item.added", "output_index": index, "item": added }),
        );
    }
    events
        .push(json!({ "type": "response.output_item.done", "output_index": index, "item": item }));
    output.push(item);
    let mut response = response_stub(response_id, model, "completed");
    response["output"] = json!(output);
    response["usage"] = usage(request_bytes, reply);
    events.push(json!({ "type": "response.completed", "response": response }));
    events
}

/// One server-sent event, named like the real API does (`event:` line = the JSON `type`).
pub fn sse(event: &Value) -> String {
    let name = event
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("message");
    format!("event: {name}\ndata: {event}\n\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers() {
        assert_eq!(Scenario::from_prompt("hello"), Scenario::Echo);
        assert_eq!(
            Scenario::from_prompt("do [[mock:exec]] now"),
            Scenario::Exec
        );
        assert_eq!(
            Scenario::from_prompt("[[mock:slow:3]]"),
            Scenario::Slow { seconds: 3 }
        );
        assert_eq!(
            Scenario::from_prompt("[[mock:long:x]] [[mock:long:500]]"),
            Scenario::Long { chars: 500 }
        );
        assert_eq!(Scenario::from_prompt("[[mock:nope]]"), Scenario::Echo);
        assert_eq!(
            Scenario::from_prompt("try [[mock:sh: cat /etc/hostname ]]"),
            Scenario::Shell
        );
        assert_eq!(
            shell_command("try [[mock:sh: cat /etc/hostname ]]"),
            Some("cat /etc/hostname")
        );
        assert_eq!(Scenario::from_prompt("[[mock:sh: ]]"), Scenario::Echo);
        assert_eq!(
            Scenario::from_prompt("[[mock:esc: touch x ]]"),
            Scenario::Escalated
        );
        assert_eq!(escalated_command("[[mock:esc: touch x ]]"), Some("touch x"));
        assert_eq!(Scenario::from_prompt("[[mock:ask]]"), Scenario::Ask);
        assert_eq!(
            Scenario::from_prompt("[[mock:perm:/srv/x]]"),
            Scenario::Perm
        );
        assert_eq!(perm_path("[[mock:perm: /srv/x ]]"), Some("/srv/x"));
    }

    #[test]
    fn last_user_message_wins() {
        let body = json!({ "input": [
            { "type": "message", "role": "user", "content": [{ "type": "input_text", "text": "[[mock:fail]]" }] },
            { "type": "message", "role": "assistant", "content": [{ "type": "output_text", "text": "x" }] },
            { "type": "message", "role": "user", "content": [{ "type": "input_text", "text": "again" }] },
            { "type": "message", "role": "user", "content": [{ "type": "input_text", "text": "<environment_context>\n</environment_context>" }] },
        ]});
        assert_eq!(last_user_text(&body).as_deref(), Some("again"));
    }

    #[test]
    fn fake_secrets_have_the_documented_shapes() {
        let alnum = |s: &str| s.chars().all(|c| c.is_ascii_alphanumeric());
        let key = FAKE_OPENAI_KEY.strip_prefix("sk-proj-").unwrap();
        assert!(key.len() == 40 && alnum(key));
        let token = FAKE_GITHUB_TOKEN.strip_prefix("ghp_").unwrap();
        assert!(token.len() == 36 && alnum(token));
        let id = FAKE_AWS_KEY_ID.strip_prefix("AKIA").unwrap();
        assert!(
            id.len() == 16
                && id
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        );
        assert!(secret_answer().contains("no secret here"));
    }

    #[test]
    fn long_answer_has_its_length_and_end() {
        let text = long_answer(5000);
        assert!(text.len() >= 5000 && text.len() < 5300, "{}", text.len());
        assert!(text.starts_with("Paragraph 1: ") && text.ends_with(LONG_END));
    }
}
