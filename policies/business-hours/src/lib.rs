//! business-hours: Codex runs only during working hours; outside them a run is denied (or waits
//! for an approver). Uses the request time, the only clock a policy has.
//!
//! There is no time zone database in the sandbox. The zone is a fixed UTC offset plus, if you
//! want, one of two bundled daylight-saving rules:
//! - `"eu"`: +1 h from the last Sunday of March 01:00 UTC to the last Sunday of October 01:00 UTC.
//! - `"us"`: +1 h from the second Sunday of March 02:00 local to the first Sunday of November
//!   02:00 local.
//! - `"none"` (default): the offset applies all year.
//!
//! Config (JSON):
//! ```json
//! {"utc_offset": "+01:00", "dst": "eu", "days": ["mon", "tue", "wed", "thu", "fri"],
//!  "start": "09:00", "end": "18:00", "outside": "deny",
//!  "approvers": [], "min_approvals": 1, "actions": ["new", "continue", "retry"]}
//! ```
//! - `start` < `end`, both `HH:MM` local time; a request at `end` is outside.
//! - `outside`: `deny` (default) or `require-approval` (then `approvers` must be non-empty).
//! - Inside business hours, and for actions not listed, the module abstains.
//!
//! Built against the frozen 0.1.0 world (`wit/0.1.0`), on purpose and without the SDK (which
//! targets the current world): it needs nothing 0.2.0 added, and it keeps a real module proving
//! that 0.1.0 modules still load and decide. The host never asks it about `command` or
//! `file-change`.

use serde::Deserialize;

wit_bindgen::generate!({ path: "../../wit/0.1.0", world: "policy-module" });

use exports::mattermost_codex::policy::policy::Guest;
use mattermost_codex::policy::host;
use mattermost_codex::policy::types::{Action, Approval, Decision, Request, Verdict};

#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Config {
    utc_offset: String,
    dst: String,
    days: Vec<String>,
    start: String,
    end: String,
    outside: String,
    approvers: Vec<String>,
    min_approvals: u32,
    actions: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            utc_offset: "+00:00".into(),
            dst: "none".into(),
            days: ["mon", "tue", "wed", "thu", "fri"]
                .map(String::from)
                .to_vec(),
            start: "09:00".into(),
            end: "18:00".into(),
            outside: "deny".into(),
            approvers: Vec::new(),
            min_approvals: 1,
            actions: ["new", "continue", "retry"].map(String::from).to_vec(),
        }
    }
}

const DAY_NAMES: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 60 * MINUTE_MS;
const DAY_MS: i64 = 24 * HOUR_MS;

#[derive(Clone, Copy)]
enum Dst {
    None,
    Eu,
    Us,
}

struct Hours {
    offset_ms: i64,
    dst: Dst,
    days: [bool; 7],
    start_min: i64,
    end_min: i64,
}

fn parse_hhmm(what: &str, s: &str) -> Result<i64, String> {
    let bad = || format!("{what} must be a time like \"09:00\", not {s:?}");
    let (h, m) = s.split_once(':').ok_or_else(bad)?;
    let (h, m): (i64, i64) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if !(0..=24).contains(&h) || !(0..60).contains(&m) || h * 60 + m > 24 * 60 {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

fn parse(config: &Config) -> Result<Hours, String> {
    let offset = config.utc_offset.trim();
    let bad_offset =
        || format!("utc_offset must look like \"+02:00\" or \"-05:30\", not {offset:?}");
    let (sign, rest) = match offset.as_bytes().first() {
        Some(b'+') => (1, &offset[1..]),
        Some(b'-') => (-1, &offset[1..]),
        _ => return Err(bad_offset()),
    };
    let offset_min = parse_hhmm("utc_offset", rest).map_err(|_| bad_offset())?;
    if offset_min > 14 * 60 {
        return Err(bad_offset());
    }
    let dst = match config.dst.as_str() {
        "none" => Dst::None,
        "eu" => Dst::Eu,
        "us" => Dst::Us,
        other => {
            return Err(format!(
                "dst must be \"none\", \"eu\" or \"us\", not {other:?}"
            ))
        }
    };
    let mut days = [false; 7];
    for day in &config.days {
        let i = DAY_NAMES
            .iter()
            .position(|d| day.to_ascii_lowercase().starts_with(d))
            .ok_or_else(|| format!("days: {day:?} is not a day; use mon, tue, ... sun"))?;
        days[i] = true;
    }
    let start_min = parse_hhmm("start", &config.start)?;
    let end_min = parse_hhmm("end", &config.end)?;
    if start_min >= end_min {
        return Err(
            "start must be earlier than end (windows across midnight are not supported)".into(),
        );
    }
    match config.outside.as_str() {
        "deny" => {}
        "require-approval" => {
            if config.approvers.is_empty()
                || config.min_approvals == 0
                || config.min_approvals as usize > config.approvers.len()
            {
                return Err(
                    "outside = \"require-approval\" needs approvers and a min_approvals \
                            between 1 and their number"
                        .into(),
                );
            }
        }
        other => {
            return Err(format!(
                "outside must be \"deny\" or \"require-approval\", not {other:?}"
            ))
        }
    }
    Ok(Hours {
        offset_ms: sign * offset_min * MINUTE_MS,
        dst,
        days,
        start_min,
        end_min,
    })
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn year_of(days: i64) -> i64 {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    yoe + era * 400 + i64::from(m <= 2)
}

/// 0 = Sunday.
fn weekday(days: i64) -> usize {
    (days + 4).rem_euclid(7) as usize
}

fn nth_sunday(y: i64, m: i64, n: i64) -> i64 {
    let first = days_from_civil(y, m, 1);
    first + (7 - weekday(first) as i64) % 7 + 7 * (n - 1)
}

fn last_sunday(y: i64, m: i64) -> i64 {
    let last = days_from_civil(y, m + 1, 1) - 1;
    last - weekday(last) as i64
}

/// The offset from UTC in force at `utc_ms`.
fn offset_at(hours: &Hours, utc_ms: i64) -> i64 {
    let year = year_of((utc_ms + hours.offset_ms).div_euclid(DAY_MS));
    let (start, end) = match hours.dst {
        Dst::None => return hours.offset_ms,
        Dst::Eu => (
            last_sunday(year, 3) * DAY_MS + HOUR_MS,
            last_sunday(year, 10) * DAY_MS + HOUR_MS,
        ),
        Dst::Us => (
            nth_sunday(year, 3, 2) * DAY_MS + 2 * HOUR_MS - hours.offset_ms,
            nth_sunday(year, 11, 1) * DAY_MS + 2 * HOUR_MS - (hours.offset_ms + HOUR_MS),
        ),
    };
    if (start..end).contains(&utc_ms) {
        hours.offset_ms + HOUR_MS
    } else {
        hours.offset_ms
    }
}

fn fmt_min(min: i64) -> String {
    format!("{:02}:{:02}", min / 60, min % 60)
}

fn fmt_offset(ms: i64) -> String {
    let min = ms / MINUTE_MS;
    format!(
        "UTC{}{}",
        if min < 0 { '-' } else { '+' },
        fmt_min(min.abs())
    )
}

struct BusinessHours;

impl Guest for BusinessHours {
    fn validate_config(config: String) -> Result<(), String> {
        let config: Config = parse_config(&config)?;
        parse(&config).map(|_| ())
    }

    fn evaluate(request: Request) -> Verdict {
        let config: Config = parse_config(&host::config()).unwrap_or_else(|e| panic!("{e}"));
        if !config
            .actions
            .iter()
            .any(|a| a == action_name(request.action))
        {
            return verdict(Decision::Abstain, None);
        }
        let hours = parse(&config).unwrap_or_else(|e| panic!("{e}"));
        let offset = offset_at(&hours, request.time_unix_ms);
        let local = request.time_unix_ms + offset;
        let day = weekday(local.div_euclid(DAY_MS));
        let minute = local.rem_euclid(DAY_MS) / MINUTE_MS;
        if hours.days[day] && (hours.start_min..hours.end_min).contains(&minute) {
            return verdict(Decision::Abstain, None);
        }
        let open_days: Vec<&str> = (0..7)
            .map(|i| (i + 1) % 7)
            .filter(|&i| hours.days[i])
            .map(|i| DAY_NAMES[i])
            .collect();
        let reason = format!(
            "Codex runs only during business hours: {} {}-{} ({}). It is now {} {} there.",
            open_days.join(","),
            fmt_min(hours.start_min),
            fmt_min(hours.end_min),
            fmt_offset(offset),
            DAY_NAMES[day],
            fmt_min(minute),
        );
        if config.outside == "require-approval" {
            return verdict(
                Decision::RequireApproval(Approval {
                    approvers: config.approvers,
                    min_approvals: config.min_approvals,
                    reason,
                    expiry_secs: None,
                    allow_self_approval: false,
                }),
                Some("outside-business-hours"),
            );
        }
        verdict(Decision::Deny(reason), Some("outside-business-hours"))
    }
}

fn parse_config(json: &str) -> Result<Config, String> {
    let json = if json.trim().is_empty() { "{}" } else { json };
    serde_json::from_str(json).map_err(|e| format!("config is not valid: {e}"))
}

fn verdict(decision: Decision, rule: Option<&str>) -> Verdict {
    Verdict {
        decision,
        rule_id: rule.map(str::to_owned),
    }
}

fn action_name(action: Action) -> &'static str {
    match action {
        Action::New => "new",
        Action::Continue => "continue",
        Action::Approve => "approve",
        Action::Reject => "reject",
        Action::Cancel => "cancel",
        Action::Retry => "retry",
        Action::PolicyQuery => "policy-query",
    }
}

export!(BusinessHours);
