//! `codex-host audit`: the audit and run history as JSON lines, oldest first, for an admin to
//! read, grep or load elsewhere. Reads the state database; changes nothing.

use std::io::Write;

use anyhow::{bail, Context, Result};
use serde_json::json;

use crate::store::{HistoryFilter, Store};

/// Reads `--since`: a duration back from `now_ms` (`30m`, `12h`, `7d`), a date (`2026-11-01`,
/// midnight UTC) or an RFC 3339 time.
pub fn parse_since(text: &str, now_ms: i64) -> Result<i64> {
    let text = text.trim();
    let units = [('m', 60_000i64), ('h', 3_600_000), ('d', 86_400_000)];
    for (unit, ms) in units {
        if let Some(n) = text.strip_suffix(unit) {
            if let Ok(n) = n.parse::<i64>() {
                return Ok(now_ms - n * ms);
            }
        }
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(t.timestamp_millis());
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(d
            .and_hms_opt(0, 0, 0)
            .context("midnight")?
            .and_utc()
            .timestamp_millis());
    }
    bail!("--since {text:?}: give a duration back from now (30m, 12h, 7d), a date (2026-11-01) or an RFC 3339 time")
}

/// Accepted `--decision` values.
pub const DECISIONS: &[&str] = &["allow", "deny", "require-approval"];

/// Writes every audit entry and run matching `filter` as one JSON object per line, merged by
/// time: `{"type": "audit", ...}` and `{"type": "run", ...}`. Returns how many lines it wrote.
pub fn write_jsonl(store: &Store, filter: &HistoryFilter, out: &mut impl Write) -> Result<usize> {
    if let Some(d) = &filter.decision {
        if !DECISIONS.contains(&d.as_str()) {
            bail!("--decision {d:?}: accepted: {}", DECISIONS.join(", "));
        }
    }
    let mut lines: Vec<(i64, serde_json::Value)> = vec![];
    for e in store.audit_entries(filter)? {
        let at = e.at;
        let mut v = serde_json::to_value(e)?;
        v["type"] = json!("audit");
        lines.push((at, v));
    }
    for r in store.runs_matching(filter)? {
        lines.push((
            r.created_at,
            json!({
                "type": "run", "id": r.id, "at": r.created_at, "root_id": r.root_id,
                "channel_id": r.channel_id, "user_id": r.user_id, "username": r.username,
                "project": r.project, "prompt": r.prompt, "mode": r.mode.as_str(),
                "status": r.status.as_str(), "started_at": r.started_at,
                "finished_at": r.finished_at, "exit_code": r.exit_code, "summary": r.summary,
            }),
        ));
    }
    lines.sort_by_key(|(at, _)| *at);
    for (_, v) in &lines {
        writeln!(out, "{v}")?;
    }
    Ok(lines.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{RunMode, RunStatus};
    use crate::store::{now_ms, RunRow};

    #[test]
    fn since_reads_durations_dates_and_times() {
        let now = 1_800_000_000_000;
        assert_eq!(parse_since("7d", now).unwrap(), now - 7 * 86_400_000);
        assert_eq!(parse_since("30m", now).unwrap(), now - 1_800_000);
        assert_eq!(
            parse_since("2026-11-01", now).unwrap(),
            1_761_955_200_000 + 365 * 86_400_000
        );
        assert_eq!(
            parse_since("2026-11-01T12:00:00Z", now).unwrap(),
            parse_since("2026-11-01", now).unwrap() + 12 * 3_600_000
        );
        assert!(parse_since("last week", now).is_err());
    }

    fn run(id: &str, user: &str, channel: &str, at: i64) -> RunRow {
        RunRow {
            id: id.into(),
            root_id: String::new(),
            channel_id: channel.into(),
            user_id: user.into(),
            username: user.into(),
            project: "api".into(),
            prompt: format!("prompt of {id}"),
            mode: RunMode::Pending,
            status: RunStatus::Queued,
            progress_post_id: None,
            created_at: at,
            started_at: None,
            finished_at: None,
            exit_code: None,
            summary: None,
        }
    }

    #[test]
    fn history_is_filtered_and_merged_by_time() {
        let store = Store::open_in_memory().unwrap();
        let now = now_ms();
        store
            .insert_run(&run("r1", "alice", "c1", now - 10))
            .unwrap();
        store.insert_run(&run("r2", "bob", "c2", now + 10)).unwrap();
        store
            .audit(
                "decision",
                Some("r1"),
                "alice",
                "c1",
                &json!({"decision": "allow"}),
            )
            .unwrap();
        store
            .audit("decision", None, "bob", "c2", &json!({"decision": "deny"}))
            .unwrap();

        let mut out = vec![];
        let n = write_jsonl(&store, &HistoryFilter::default(), &mut out).unwrap();
        assert_eq!(n, 4);
        let lines: Vec<serde_json::Value> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines[0]["type"], "run");
        assert_eq!(lines[0]["id"], "r1");
        assert_eq!(lines.last().unwrap()["id"], "r2", "merged by time");

        let alice = HistoryFilter {
            user_id: Some("alice".into()),
            ..Default::default()
        };
        let mut out = vec![];
        assert_eq!(write_jsonl(&store, &alice, &mut out).unwrap(), 2);
        assert!(!String::from_utf8(out).unwrap().contains("bob"));

        let denied = HistoryFilter {
            decision: Some("deny".into()),
            ..Default::default()
        };
        let mut out = vec![];
        assert_eq!(write_jsonl(&store, &denied, &mut out).unwrap(), 1);
        let line: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(line["user_id"], "bob");

        let bad = HistoryFilter {
            decision: Some("maybe".into()),
            ..Default::default()
        };
        assert!(write_jsonl(&store, &bad, &mut vec![]).is_err());
    }

    #[test]
    fn retention_erases_old_words_and_keeps_new_ones() {
        let store = Store::open_in_memory().unwrap();
        let now = now_ms();
        store
            .insert_run(&run("old", "alice", "c1", now - 10))
            .unwrap();
        store
            .audit("decision", Some("old"), "alice", "c1", &json!({}))
            .unwrap();
        store
            .finish_run("old", RunStatus::Answered, &Default::default())
            .unwrap();
        let cutoff = now_ms() + 1;
        store
            .insert_run(&run("new", "alice", "c1", now + 10))
            .unwrap();

        let forgotten = store.forget_before(cutoff).unwrap();
        assert_eq!(forgotten.runs, 1);
        assert_eq!(forgotten.audit_entries, 1);
        assert_eq!(store.run("old").unwrap().unwrap().prompt, "");
        assert_eq!(store.run("new").unwrap().unwrap().prompt, "prompt of new");
        assert_eq!(
            store.forget_before(cutoff).unwrap(),
            Default::default(),
            "nothing twice"
        );
    }
}
