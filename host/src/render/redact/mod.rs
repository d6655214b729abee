//! Redaction of known secret shapes before anything is posted, printed or stored.
//!
//! One pass: a `RegexSet` says which shapes occur at all (text without secrets costs one scan),
//! then only those patterns look for their spans in the original text. Overlapping spans merge, so
//! a token inside `Authorization: Bearer …` or `GITHUB_TOKEN=…` is replaced once. Never does I/O.

mod rules;
#[cfg(test)]
mod tests;

use std::sync::LazyLock;

use regex::{Regex, RegexSet};
use serde_json::Value;

use rules::{Check, Rule};

/// Replaces API keys, tokens, passwords and private keys with a marker naming what was removed,
/// plus any literal secrets the host knows (its socket secret, the bot token).
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    literals: Vec<String>,
}

struct Compiled {
    set: RegexSet,
    rules: Vec<(Regex, Rule)>,
}

/// The patterns are the same for every redactor: compiled once per process.
static COMPILED: LazyLock<Compiled> = LazyLock::new(|| {
    let rules = rules::rules();
    // ASCII word boundaries keep the set on its fast engines for text that is not ASCII.
    let patterns: Vec<String> = rules
        .iter()
        .map(|r| r.pattern.replace(r"\b", r"(?-u:\b)"))
        .collect();
    let set = RegexSet::new(&patterns).expect("valid redaction patterns");
    let rules = rules
        .into_iter()
        .zip(&patterns)
        .map(|(r, p)| (Regex::new(p).expect("valid redaction pattern"), r))
        .collect();
    Compiled { set, rules }
});

/// A part of the text to replace; `rank` orders rules (literals first) when spans overlap.
struct Span {
    start: usize,
    end: usize,
    rank: usize,
    what: &'static str,
}

impl Redactor {
    /// `literals` are the exact secrets the host holds; ones shorter than 8 characters are ignored,
    /// since they would match ordinary text.
    pub fn new(literals: Vec<String>) -> Self {
        let literals = literals.into_iter().filter(|l| l.len() >= 8).collect();
        Redactor { literals }
    }

    pub fn redact(&self, text: &str) -> String {
        let mut spans = Vec::new();
        for lit in &self.literals {
            spans.extend(text.match_indices(lit.as_str()).map(|(i, m)| Span {
                start: i,
                end: i + m.len(),
                rank: 0,
                what: "secret",
            }));
        }
        let compiled = &*COMPILED;
        for i in compiled.set.matches(text).iter() {
            let (re, rule) = &compiled.rules[i];
            for caps in re.captures_iter(text) {
                let m = caps
                    .name("s")
                    .or_else(|| caps.get(0))
                    .expect("group 0 always matches");
                if !m.is_empty()
                    && plausible(rule.check, m.as_str(), text[m.end()..].chars().next())
                {
                    spans.push(Span {
                        start: m.start(),
                        end: m.end(),
                        rank: i + 1,
                        what: rule.what,
                    });
                }
            }
        }
        if spans.is_empty() {
            return text.to_string();
        }
        spans.sort_by_key(|s| (s.start, s.rank));
        let mut merged: Vec<Span> = Vec::with_capacity(spans.len());
        for s in spans {
            match merged.last_mut() {
                Some(last) if s.start < last.end => {
                    last.end = last.end.max(s.end);
                    if s.rank < last.rank {
                        (last.rank, last.what) = (s.rank, s.what);
                    }
                }
                _ => merged.push(s),
            }
        }
        let mut out = String::with_capacity(text.len());
        let mut pos = 0;
        for s in merged {
            out.push_str(&text[pos..s.start]);
            out.push_str(&format!("[redacted {}]", s.what));
            pos = s.end;
        }
        out.push_str(&text[pos..]);
        out
    }

    /// Redacts every string in a JSON value (keys stay), for details written to the audit log.
    pub fn redact_json(&self, value: &Value) -> Value {
        match value {
            Value::String(s) => Value::String(self.redact(s)),
            Value::Array(a) => Value::Array(a.iter().map(|v| self.redact_json(v)).collect()),
            Value::Object(o) => Value::Object(
                o.iter()
                    .map(|(k, v)| (k.clone(), self.redact_json(v)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }
}

/// Whether a match is worth redacting: filters what the patterns cannot express without
/// look-around (see [`Check`]). `next` is the character after the value.
fn plausible(check: Check, value: &str, next: Option<char>) -> bool {
    match check {
        Check::Shape => true,
        Check::Mixed => {
            value.bytes().any(|b| b.is_ascii_digit())
                && value.bytes().any(|b| b.is_ascii_alphabetic())
        }
        Check::Quoted => !placeholder(value) && !stock_word(value),
        Check::Bare => {
            value.len() >= 4 && !placeholder(value) && !stock_word(value) && !code(value, next)
        }
    }
}

/// `$VAR`, `${VAR}`, `<your token>`, `{{ secret }}`, `%(pw)s`, `****`, `xxxx`: nothing to hide.
fn placeholder(v: &str) -> bool {
    v.starts_with(['$', '<', '{'])
        || v.starts_with("%(")
        || v.chars().all(|c| matches!(c, '*' | 'x' | 'X' | '.'))
}

/// Values that name a kind rather than hold a secret (`password: string`, `token: null`).
fn stock_word(v: &str) -> bool {
    const WORDS: &[&str] = &[
        "password",
        "passwd",
        "secret",
        "token",
        "none",
        "null",
        "nil",
        "true",
        "false",
        "yes",
        "no",
        "string",
        "str",
        "bool",
        "boolean",
        "int",
        "integer",
        "number",
        "any",
        "undefined",
        "required",
        "optional",
        "empty",
        "hidden",
        "masked",
        "redacted",
    ];
    WORDS.iter().any(|w| w.eq_ignore_ascii_case(v))
}

/// What follows a secret-sounding key in code rather than config: a type (`String`), a call or
/// index (`getpass()`, `form['pw']`), a generic (`Option<…>`), a field (`self.password`) or a
/// variable named after the secret (`db_password`).
fn code(v: &str, next: Option<char>) -> bool {
    if matches!(next, Some('(' | '[' | '<')) {
        return true;
    }
    let ident = |s: &str| {
        s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    };
    let type_name = v.starts_with(|c: char| c.is_ascii_uppercase())
        && v.bytes().all(|b| b.is_ascii_alphabetic());
    let field = v.contains('.') && v.split('.').all(ident);
    let lower = v.to_ascii_lowercase();
    let named_after = ident(v)
        && v.contains('_')
        && ["pass", "secret", "token", "key"]
            .iter()
            .any(|w| lower.contains(w));
    type_name || field || named_after
}
