//! A stand-in for `codex exec --json` used by the host load benchmark: prints the events of one
//! successful turn, shaped like Codex CLI 0.169's output, and exits at once. It accepts (and
//! ignores) the same arguments as `codex exec`, reads nothing from the network and writes no
//! files, so the measurement is of the host, not of a model.

use std::io::Write;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--version") {
        println!("codex-cli 0.169.0 (codex-bench stand-in)");
        return;
    }
    let prompt = args.last().cloned().unwrap_or_default();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let thread_id = format!("0199bench-{:x}-{:x}", std::process::id(), nanos);
    let answer = serde_json::to_string(&format!("Stand-in answer: {prompt}")).unwrap_or_default();
    let mut out = std::io::stdout().lock();
    let _ = write!(
        out,
        "{{\"type\":\"thread.started\",\"thread_id\":\"{thread_id}\"}}\n\
         {{\"type\":\"turn.started\"}}\n\
         {{\"type\":\"item.completed\",\"item\":{{\"id\":\"item_0\",\"type\":\"agent_message\",\"text\":{answer}}}}}\n\
         {{\"type\":\"turn.completed\",\"usage\":{{\"input_tokens\":1200,\"cached_input_tokens\":0,\"output_tokens\":40}}}}\n"
    );
}
