//! The secret shapes the redactor knows, most specific first.
//!
//! Provider formats follow the rules secret scanners such as gitleaks detect; the patterns are our
//! own. A pattern with a group named `s` redacts only that group and keeps the rest (a key name, a
//! URL's user and host) so the reader still sees what was there.

/// What must hold for a match to be redacted, beyond the pattern itself.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Check {
    /// The shape alone is distinctive enough.
    Shape,
    /// Random tokens mix letters and digits; words and kebab-case names do not.
    Mixed,
    /// A quoted value next to a secret-sounding key: not a placeholder or a stock word.
    Quoted,
    /// An unquoted value next to a secret-sounding key: additionally not a type name, a variable or
    /// a call, which is what such keys are followed by in ordinary code.
    Bare,
}

pub(super) struct Rule {
    pub what: &'static str,
    pub pattern: String,
    pub check: Check,
}

/// Key names whose value is a secret: the name ends in one of these words, so `DB_PASSWORD`,
/// `client_secret`, `SMTPPassword` and `AtRestEncryptKey` count, `max_tokens` and `token_count` do not.
const KEY: &str = r"[A-Za-z0-9_.\-]*(?:passwd|password|passphrase|secret|token|api[_\-]?key|access[_\-]?key|private[_\-]?key|encrypt(?:ion)?[_\-]?key|signing[_\-]?key|master[_\-]?key|salt|credentials?|_pwd)";

/// Characters of an unquoted value: what a shell or YAML leaves unquoted, without `$` (variables).
const BARE: &str = r"[A-Za-z0-9_\-+/=.@!#%^~:?]";

/// The first character of an unquoted value: no quote, `$`, `=`, `:` or `#` (a comment).
const BARE_FIRST: &str = r"[A-Za-z0-9_\-+/.@!%^~?]";

pub(super) fn rules() -> Vec<Rule> {
    use Check::*;
    let shapes: &[(&'static str, &str, Check)] = &[
        (
            "private key",
            r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----[\s\S]*?(?:-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|\z)",
            Shape,
        ),
        (
            "JWT",
            r"\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]*",
            Shape,
        ),
        ("Anthropic API key", r"\bsk-ant-[A-Za-z0-9_\-]{20,}", Shape),
        (
            "OpenAI API key",
            r"\bsk-(?:proj|svcacct|admin)-[A-Za-z0-9_\-]{20,}",
            Shape,
        ),
        ("OpenAI API key", r"\bsk-[A-Za-z0-9]{32,}\b", Mixed),
        ("GitHub token", r"\bgh[pousr]_[A-Za-z0-9]{36,}\b", Shape),
        ("GitHub token", r"\bgithub_pat_[A-Za-z0-9_]{40,}\b", Shape),
        (
            "GitLab token",
            r"\bgl(?:pat|dt|ptt|rt|cbt|ft|imt|oas|soat|ffct|agent)-[A-Za-z0-9_\-]{20,}",
            Shape,
        ),
        ("GitLab token", r"\bGR1348941[A-Za-z0-9_\-]{20,}", Shape),
        (
            "AWS key id",
            r"\b(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}\b",
            Shape,
        ),
        ("Google API key", r"\bAIza[0-9A-Za-z_\-]{35}\b", Shape),
        (
            "Google OAuth secret",
            r"\bGOCSPX-[A-Za-z0-9_\-]{28}\b",
            Shape,
        ),
        ("Google OAuth token", r"\bya29\.[A-Za-z0-9_\-]{20,}", Shape),
        (
            "Stripe key",
            r"\b(?:sk|rk)_(?:live|test|prod)_[A-Za-z0-9]{10,}\b",
            Shape,
        ),
        (
            "Stripe webhook secret",
            r"\bwhsec_[A-Za-z0-9+/=]{24,}",
            Shape,
        ),
        ("npm token", r"\bnpm_[A-Za-z0-9]{36}\b", Shape),
        (
            "PyPI token",
            r"\bpypi-AgE(?:IcHlwaS5vcmc|NdGVzdC5weXBpLm9yZw)[A-Za-z0-9_\-]{50,}",
            Shape,
        ),
        (
            "Hugging Face token",
            r"\b(?:hf_|api_org_)[A-Za-z]{34}\b",
            Shape,
        ),
        (
            "SendGrid key",
            r"\bSG\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43}\b",
            Shape,
        ),
        (
            "Slack token",
            r"\bxox(?:e\.xox)?[abposre]-[A-Za-z0-9\-]{10,}",
            Shape,
        ),
        (
            "Slack token",
            r"\bxapp-\d-[A-Z0-9]+-\d+-[A-Za-z0-9]+",
            Shape,
        ),
        (
            "Slack webhook",
            r"hooks\.slack\.com/(?:services|workflows|triggers)/(?P<s>[A-Za-z0-9_/+\-]{20,})",
            Shape,
        ),
        (
            "Discord webhook",
            r"discord(?:app)?\.com/api/webhooks/\d+/(?P<s>[A-Za-z0-9_\-]{30,})",
            Shape,
        ),
        (
            "Discord bot token",
            r"\b[MNO][A-Za-z0-9_\-]{23,27}\.[A-Za-z0-9_\-]{6}\.[A-Za-z0-9_\-]{27,40}\b",
            Mixed,
        ),
        (
            "Telegram bot token",
            r"\b\d{8,10}:AA[A-Za-z0-9_\-]{33}\b",
            Shape,
        ),
        ("Twilio API key", r"\bSK[0-9a-fA-F]{32}\b", Shape),
        ("Twilio account id", r"\bAC[0-9a-f]{32}\b", Shape),
        ("Mailgun key", r"\bkey-[0-9a-f]{32}\b", Shape),
        (
            "Shopify token",
            r"\bshp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}\b",
            Shape,
        ),
        ("DigitalOcean token", r"\bdo[opr]_v1_[a-f0-9]{64}\b", Shape),
        ("Heroku key", r"\bHRKU-[A-Za-z0-9_\-]{58,}", Shape),
        ("Vault token", r"\bhv[sb]\.[A-Za-z0-9_\-]{24,}", Shape),
        (
            "Doppler token",
            r"\bdp\.(?:pt|st|ct|scim|audit)\.[A-Za-z0-9]{40,}",
            Shape,
        ),
        (
            "Grafana token",
            r"\bglsa_[A-Za-z0-9]{32}_[A-Fa-f0-9]{8}\b",
            Shape,
        ),
        (
            "New Relic key",
            r"\bNR(?:AK|II|JS)-[A-Za-z0-9]{19,27}\b",
            Shape,
        ),
        ("Linear key", r"\blin_api_[A-Za-z0-9]{40}\b", Shape),
        ("age key", r"\bAGE-SECRET-KEY-1[0-9A-Z]{58}\b", Shape),
        (
            "Azure key",
            r"(?i)\b(?:AccountKey|SharedAccessKey)\s*=\s*(?P<s>[A-Za-z0-9+/]{20,}={0,2})",
            Shape,
        ),
        (
            "Azure signature",
            r"[?&]sig=(?P<s>[A-Za-z0-9%+/=]{20,})",
            Shape,
        ),
        // `user:pass@tcp(host)/db`: the DSN form of Go's MySQL driver, as in Mattermost's DataSource.
        (
            "password",
            r#"\b[A-Za-z0-9_.\-]+:(?P<s>[^@\s:/"'`]+)@(?:tcp|unix)\("#,
            Quoted,
        ),
        (
            "password",
            r#"\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s/:@"'<>]*:(?P<s>[^\s@/"'<>]+)@"#,
            Quoted,
        ),
        (
            "credentials",
            r#"(?i)\bauthorization\\?["']?\s*[:=]\s*\\?["']?(?:(?:bearer|basic|token|digest)\s+)?(?P<s>[A-Za-z0-9_\-.=+/~]{8,})"#,
            Quoted,
        ),
        (
            "bearer token",
            r"(?i)\bbearer[ \t]+(?P<s>[A-Za-z0-9_\-.=+/~]{20,})",
            Mixed,
        ),
        // Mattermost access and session tokens: 26 lowercase base32 characters. Only after `Token`,
        // since the same shape is every post, user and channel id.
        (
            "Mattermost token",
            r"\b(?i:token):?[ \t]+(?P<s>[a-z0-9]{26})\b",
            Mixed,
        ),
        (
            "secret",
            r#"(?i)(?:^|\s)--?(?:[a-z]+-)*(?:password|passwd|token|secret|api-?key|access-key|secret-key)(?:=|\s+)["']?(?P<s>[^\s"'$<{\-][^\s"']*)"#,
            Quoted,
        ),
    ];
    let mut rules: Vec<Rule> = shapes
        .iter()
        .map(|&(what, p, check)| Rule {
            what,
            pattern: p.to_string(),
            check,
        })
        .collect();
    // `"password": "…"`, `password = '…'`, `token := "…"`, also inside escaped JSON.
    rules.push(Rule {
        what: "secret",
        pattern: format!(
            r#"(?i){KEY}\\?["']?\s*(?::=|[:=])\s*\\?["'](?P<s>[^"'\\\n]{{3,}})\\?["']"#
        ),
        check: Quoted,
    });
    // `DB_PASSWORD=…`, `export AWS_SECRET_ACCESS_KEY=…`, `?token=…&`, `password=… user=…`.
    rules.push(Rule {
        what: "secret",
        pattern: format!(
            r"(?i)(?:^|[\s;&|,{{(?])(?:export\s+)?{KEY}\s*=\s*(?P<s>{BARE_FIRST}{BARE}*)"
        ),
        check: Bare,
    });
    // YAML `password: …`, only when the value ends the line: after a colon in prose comes a sentence.
    rules.push(Rule {
        what: "secret",
        pattern: format!(
            r"(?im)(?:^|[\s,{{]){KEY}\s*:[ \t]*(?P<s>{BARE_FIRST}{BARE}*)[ \t]*(?:$|[,}}]|\#)"
        ),
        check: Bare,
    });
    rules
}
