//! Redaction of known secret shapes before anything is posted or printed.

use regex::Regex;

/// Replaces API keys, tokens and private keys with a marker naming what was removed, plus any
/// literal secrets the host knows (its socket secret, the bot token).
#[derive(Debug, Clone)]
pub struct Redactor {
    patterns: Vec<(Regex, &'static str)>,
    literals: Vec<String>,
}

impl Default for Redactor {
    fn default() -> Self {
        Redactor::new(Vec::new())
    }
}

impl Redactor {
    pub fn new(literals: Vec<String>) -> Self {
        let rules: &[(&str, &'static str)] = &[
            (r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----[\s\S]*?(?:-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|\z)", "private key"),
            (r"\bsk-(?:proj-|ant-|live_|test_)?[A-Za-z0-9_\-]{20,}", "API key"),
            (r"\bgh[pousr]_[A-Za-z0-9]{36,}\b", "GitHub token"),
            (r"\bgithub_pat_[A-Za-z0-9_]{40,}\b", "GitHub token"),
            (r"\bglpat-[A-Za-z0-9_\-]{20,}\b", "GitLab token"),
            (r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b", "AWS key id"),
            (r"\bxox[abposr]-[A-Za-z0-9\-]{10,}\b", "Slack token"),
            (r"\bAIza[0-9A-Za-z_\-]{35}\b", "Google API key"),
            (r"\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\b", "JWT"),
            (r"(?i)\b(bearer)\s+[A-Za-z0-9_\-\.=]{20,}", "bearer token"),
            (r#"(?i)\b((?:aws_secret_access_key|api[_-]?key|secret|password|passwd|token)\s*[:=]\s*["']?)[^\s"']{12,}"#, "secret"),
        ];
        let patterns = rules.iter().map(|(p, what)| (Regex::new(p).expect("valid redaction regex"), *what)).collect();
        let literals = literals.into_iter().filter(|l| l.len() >= 8).collect();
        Redactor { patterns, literals }
    }

    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for lit in &self.literals {
            if out.contains(lit.as_str()) {
                out = out.replace(lit.as_str(), "[redacted secret]");
            }
        }
        for (re, what) in &self.patterns {
            out = re
                .replace_all(&out, |caps: &regex::Captures| {
                    // Keep a `key =` / `Bearer` prefix so the reader still sees what was there.
                    let keep = caps.get(1).map(|m| m.as_str()).unwrap_or("");
                    let sep = if keep.eq_ignore_ascii_case("bearer") { " " } else { "" };
                    format!("{keep}{sep}[redacted {what}]")
                })
                .into_owned();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_known_shapes_and_keeps_the_rest() {
        let r = Redactor::new(vec!["literal-host-secret-123".into()]);
        let text = "key sk-proj-abcdefghijklmnopqrstuvwxyz0123456789ABCD and ghp_abcdefghijklmnopqrstuvwxyz0123456789 \
                    AKIAABCDEFGHIJKLMNOP; no secret here; literal-host-secret-123\n\
                    -----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n\
                    Authorization: Bearer abcdefghijklmnopqrstuvwxyz123456\npassword = hunter2hunter2hunter2";
        let out = r.redact(text);
        for leaked in ["sk-proj-abc", "ghp_abc", "AKIAABCD", "b3BlbnNzaC1rZXktdjEAAAAA", "literal-host-secret-123", "abcdefghijklmnopqrstuvwxyz123456", "hunter2"] {
            assert!(!out.contains(leaked), "{leaked} leaked in {out}");
        }
        for kept in ["no secret here", "[redacted API key]", "[redacted GitHub token]", "[redacted AWS key id]", "[redacted private key]", "Bearer [redacted bearer token]", "password = [redacted secret]"] {
            assert!(out.contains(kept), "{kept} missing in {out}");
        }
    }

    #[test]
    fn leaves_ordinary_text_alone() {
        let r = Redactor::default();
        let text = "Fixed `login_test.rs`: the token refresh raced with logout. See commit 1a2b3c4d.";
        assert_eq!(r.redact(text), text);
    }
}
