//! Every shape with a made-up sample of the real format, and ordinary text that must stay as it is.

use super::*;

/// `n` characters cycling through letters and digits, so samples mix both like real tokens.
fn fill(n: usize) -> String {
    "a1B2c3D4e5F6g7H8i9J0".chars().cycle().take(n).collect()
}

fn hex(n: usize) -> String {
    "0123456789abcdef".chars().cycle().take(n).collect()
}

fn letters(n: usize) -> String {
    "abcdEFGHijklMNOP".chars().cycle().take(n).collect()
}

/// (sample text, the secret part that must go, what the output must contain instead)
fn positives() -> Vec<(String, String, String)> {
    let plain = |secret: String, what: &str| {
        (
            format!("see {secret} here"),
            secret,
            format!("see [redacted {what}] here"),
        )
    };
    let keyed = |text: String, secret: String, kept: &str| (text, secret, kept.to_string());
    vec![
        plain(format!("sk-proj-{}", fill(48)), "OpenAI API key"),
        plain(format!("sk-svcacct-{}", fill(40)), "OpenAI API key"),
        plain(format!("sk-{}", fill(48)), "OpenAI API key"),
        plain(format!("sk-ant-api03-{}AA", fill(93)), "Anthropic API key"),
        plain(format!("ghp_{}", fill(36)), "GitHub token"),
        plain(format!("gho_{}", fill(36)), "GitHub token"),
        plain(format!("ghu_{}", fill(36)), "GitHub token"),
        plain(format!("ghs_{}", fill(36)), "GitHub token"),
        plain(format!("ghr_{}", fill(36)), "GitHub token"),
        plain(format!("github_pat_11{}_{}", fill(20), fill(59)), "GitHub token"),
        plain(format!("glpat-{}", fill(20)), "GitLab token"),
        plain("AKIAIOSFODNN7EXAMPLE".into(), "AWS key id"),
        plain("ASIAIOSFODNN7EXAMPLE".into(), "AWS key id"),
        plain(format!("AIza{}", fill(35)), "Google API key"),
        plain(format!("GOCSPX-{}", fill(28)), "Google OAuth secret"),
        plain(format!("sk_live_{}", fill(24)), "Stripe key"),
        plain(format!("rk_live_{}", fill(24)), "Stripe key"),
        plain(format!("sk_test_{}", fill(24)), "Stripe key"),
        plain(format!("whsec_{}", fill(32)), "Stripe webhook secret"),
        plain(format!("npm_{}", fill(36)), "npm token"),
        plain(format!("pypi-AgEIcHlwaS5vcmc{}", fill(60)), "PyPI token"),
        plain(format!("hf_{}", letters(34)), "Hugging Face token"),
        plain(format!("SG.{}.{}", fill(22), fill(43)), "SendGrid key"),
        plain(format!("xoxb-1234567890-1234567890123-{}", fill(24)), "Slack token"),
        plain(format!("xoxp-1234567890-1234567890-1234567890123-{}", hex(32)), "Slack token"),
        plain(format!("xapp-1-A0123456789-1234567890123-{}", hex(64)), "Slack token"),
        plain(format!("MTA{}.G{}.{}", fill(23), fill(5), fill(38)), "Discord bot token"),
        plain(format!("1234567890:AA{}", fill(33)), "Telegram bot token"),
        plain(format!("SK{}", hex(32)), "Twilio API key"),
        plain(format!("AC{}", hex(32)), "Twilio account id"),
        plain(format!("key-{}", hex(32)), "Mailgun key"),
        plain(format!("shpat_{}", hex(32)), "Shopify token"),
        plain(format!("shpss_{}", hex(32)), "Shopify token"),
        plain(format!("dop_v1_{}", hex(64)), "DigitalOcean token"),
        plain(format!("HRKU-AA{}", fill(58)), "Heroku key"),
        plain(format!("hvs.{}", fill(90)), "Vault token"),
        plain(format!("dp.pt.{}", fill(43)), "Doppler token"),
        plain(format!("glsa_{}_{}", fill(32), hex(8)), "Grafana token"),
        plain(format!("NRAK-{}", fill(27).to_uppercase()), "New Relic key"),
        plain(format!("lin_api_{}", fill(40)), "Linear key"),
        plain(format!("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.{}", fill(43)), "JWT"),
        keyed(
            format!("POST https://hooks.slack.com/services/T0123ABCD/B0123ABCD/{}", fill(24)),
            "T0123ABCD/B0123ABCD".into(),
            "https://hooks.slack.com/services/[redacted Slack webhook]",
        ),
        keyed(
            format!("https://discord.com/api/webhooks/123456789012345678/{}", fill(68)),
            fill(68),
            "https://discord.com/api/webhooks/123456789012345678/[redacted Discord webhook]",
        ),
        keyed(
            "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----\nafter".into(),
            "MIIEowIBAAKCAQEA".into(),
            "[redacted private key]\nafter",
        ),
        keyed("-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBAAAA\n-----END EC PRIVATE KEY-----".into(), "MHcCAQEEIBAAAA".into(), "[redacted private key]"),
        keyed("-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkq".into(), "MIIEvQIBADANBgkq".into(), "[redacted private key]"),
        keyed(
            "-----BEGIN PGP PRIVATE KEY BLOCK-----\nlQOYBF0AAAAA\n-----END PGP PRIVATE KEY BLOCK-----".into(),
            "lQOYBF0AAAAA".into(),
            "[redacted private key]",
        ),
        keyed(
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIFHDBOBgkqAAAA\n-----END ENCRYPTED PRIVATE KEY-----".into(),
            "MIIFHDBOBgkqAAAA".into(),
            "[redacted private key]",
        ),
        // Mattermost access and session tokens in credential context.
        keyed(
            "curl -H 'Authorization: Bearer 9xk3q7w1y5jhbm8ny4rfa6tzpe' $MM/api/v4/users/me".into(),
            "9xk3q7w1y5jhbm8ny4rfa6tzpe".into(),
            "Authorization: Bearer [redacted",
        ),
        keyed("Authorization: Token 9xk3q7w1y5jhbm8ny4rfa6tzpe".into(), "9xk3q7w1y5jhbm8ny4rfa6tzpe".into(), "Authorization: Token [redacted"),
        keyed("Cookie: MMAUTHTOKEN=9xk3q7w1y5jhbm8ny4rfa6tzpe; MMUSERID=x".into(), "9xk3q7w1y5jhbm8ny4rfa6tzpe".into(), "MMAUTHTOKEN=[redacted secret]; MMUSERID=x"),
        keyed("mmctl auth login $MM --name local --access-token 9xk3q7w1y5jhbm8ny4rfa6tzpe".into(), "9xk3q7w1y5jhbm8ny4rfa6tzpe".into(), "--access-token [redacted Mattermost token]"),
        keyed("use token 9xk3q7w1y5jhbm8ny4rfa6tzpe for the bot".into(), "9xk3q7w1y5jhbm8ny4rfa6tzpe".into(), "use token [redacted Mattermost token] for the bot"),
        keyed("Authorization: Basic dXNlcjpodW50ZXIy".into(), "dXNlcjpodW50ZXIy".into(), "Authorization: Basic [redacted credentials]"),
        // Azure.
        keyed(
            format!("DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={}==;EndpointSuffix=core.windows.net", fill(86)),
            fill(86),
            "AccountName=acct;AccountKey=[redacted Azure key];EndpointSuffix",
        ),
        keyed(
            format!("https://acct.blob.core.windows.net/c/f?sv=2022-11-02&sp=r&sig={}%3D", fill(43)),
            fill(43),
            "&sp=r&sig=[redacted Azure signature]",
        ),
        // Key/value shapes: JSON, env, YAML, CLI flags.
        keyed(r#"{"password": "hunter2"}"#.into(), "hunter2".into(), r#"{"password": "[redacted secret]"}"#),
        keyed(r#"{\"api_key\": \"abc123def\"}"#.into(), "abc123def".into(), r#"{\"api_key\": \"[redacted secret]\"}"#),
        keyed("DB_PASSWORD=hunter2x\nDB_HOST=db".into(), "hunter2x".into(), "DB_PASSWORD=[redacted secret]\nDB_HOST=db"),
        keyed("client_secret=s3cr3tvalue&grant_type=x".into(), "s3cr3tvalue".into(), "client_secret=[redacted secret]&grant_type=x"),
        keyed("export AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(), "wJalrXUtnFEMI".into(), "export AWS_SECRET_ACCESS_KEY=[redacted secret]"),
        keyed("db:\n  user: mm\n  password: hunter2x\n".into(), "hunter2x".into(), "  password: [redacted secret]\n"),
        keyed("password = 'correct horse battery'".into(), "correct horse".into(), "password = '[redacted secret]'"),
        keyed("token := \"t0k3n-value\"".into(), "t0k3n-value".into(), "token := \"[redacted secret]\""),
        keyed("mysql --password=hunter2x -u root".into(), "hunter2x".into(), "--password=[redacted secret] -u root"),
        // URLs and DSNs with credentials keep user and host.
        keyed("postgres://mmuser:hunter2x@db:5432/mattermost?sslmode=disable".into(), "hunter2x".into(), "postgres://mmuser:[redacted password]@db:5432/mattermost"),
        keyed("git clone https://oauth2:glpat_abc123@gitlab.example.com/g/r.git".into(), "glpat_abc123".into(), "https://oauth2:[redacted password]@gitlab.example.com"),
        keyed("redis://:hunter2x@cache:6379".into(), "hunter2x".into(), "redis://:[redacted password]@cache:6379"),
        keyed("mmuser:hunter2x@tcp(localhost:3306)/mattermost".into(), "hunter2x".into(), "mmuser:[redacted password]@tcp(localhost:3306)"),
    ]
}

#[test]
fn every_known_shape_is_redacted() {
    let r = Redactor::default();
    for (text, secret, kept) in positives() {
        let out = r.redact(&text);
        assert!(
            !out.contains(&secret),
            "{secret} leaked from {text:?}: {out:?}"
        );
        assert!(out.contains(&kept), "expected {kept:?} in {out:?}");
    }
}

#[test]
fn mattermost_config_secrets_are_redacted() {
    let r = Redactor::default();
    let config = r#"{
    "SqlSettings": {
        "DriverName": "postgres",
        "DataSource": "postgres://mmuser:mostest1@localhost/mattermost_test?sslmode=disable",
        "DataSourceReplicas": ["postgres://mmuser:replica1pw@replica/mattermost"],
        "DataSourceSearchReplicas": ["mmuser:search1pw@tcp(search:3306)/mattermost"],
        "AtRestEncryptKey": "n8x3q7w1y5jhbm8ny4rfa6tzpe5mdks1"
    },
    "FileSettings": { "PublicLinkSalt": "q7w1y5jhbm8ny4rfa6tzpe5mdks1n8x3", "AmazonS3SecretAccessKey": "wJalrXUtnFEMIK7MDENG" },
    "EmailSettings": { "SMTPPassword": "smtp-pass-1", "SMTPUsername": "mailer" }
}"#;
    let out = r.redact(config);
    for leaked in [
        "mostest1",
        "replica1pw",
        "search1pw",
        "n8x3q7w1",
        "q7w1y5jh",
        "wJalrXUtn",
        "smtp-pass-1",
    ] {
        assert!(!out.contains(leaked), "{leaked} leaked: {out}");
    }
    for kept in [
        "postgres://mmuser:[redacted password]@localhost/mattermost_test",
        r#""AtRestEncryptKey": "[redacted secret]""#,
        r#""SMTPPassword": "[redacted secret]""#,
        r#""SMTPUsername": "mailer""#,
        r#""DriverName": "postgres""#,
    ] {
        assert!(out.contains(kept), "{kept} missing: {out}");
    }
}

#[test]
fn the_hosts_own_secrets_are_redacted_wherever_they_appear() {
    let r = Redactor::new(vec![
        "host-socket-secret-1".into(),
        "botaccesstoken26charsxxxxx".into(),
        "short".into(),
    ]);
    let out = r.redact("a host-socket-secret-1 b botaccesstoken26charsxxxxx c short");
    assert_eq!(out, "a [redacted secret] b [redacted secret] c short");
}

#[test]
fn overlapping_shapes_are_replaced_once() {
    let r = Redactor::default();
    let token = format!("ghp_{}", fill(36));
    assert_eq!(
        r.redact(&format!("GITHUB_TOKEN={token}")),
        "GITHUB_TOKEN=[redacted GitHub token]"
    );
    let jwt = format!(
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.{}",
        fill(43)
    );
    assert_eq!(
        r.redact(&format!("Authorization: Bearer {jwt}")),
        "Authorization: Bearer [redacted JWT]"
    );
}

#[test]
fn ordinary_code_and_prose_stay_as_they_are() {
    let r = Redactor::default();
    let post_id = "9xk3q7w1y5jhbm8ny4rfa6tzpe";
    let texts = [
        "Fixed `login_test.rs`: the token refresh raced with logout. See commit 1a2b3c4d.",
        "Enter your password and press Enter.",
        "Reset your password: click the link in the email.",
        "token_count: 12",
        "\"max_tokens\": 100, \"temperature\": 0.2",
        "max_tokens=100",
        "commit 3f786850e387550fdab836ed7e6dc881de23001b",
        "request 123e4567-e89b-12d3-a456-426614174000 failed",
        &format!("https://chat.example.com/team/pl/{post_id}"),
        &format!("post {post_id} in channel {post_id}"),
        "fn login(password: String, token: &str) -> Result<Token> {",
        "struct Creds { password: Option<String>, api_key: SecretString }",
        "password = getpass.getpass()",
        "token = request.headers['X-Token']",
        "db.connect(password=db_password, user=self.user)",
        "password: ${DB_PASSWORD}",
        "GITHUB_TOKEN: ${{ secrets.GITHUB_TOKEN }}",
        "secret: true",
        "password: null",
        r#"{"password": "", "token": null}"#,
        "if password == \"\" { return }",
        "the bearer of bad news",
        "class=\"sk-dropdown-menu-item-active-highlighted\"",
        "See https://example.com:8443/path?q=1 and git@github.com:org/repo.git",
        "token_type: bearer\nexpires_in: 3600",
        "--token-file /etc/mm/token",
        "Passwords must be at least 8 characters; tokens expire after 30 days.",
        "Ünïcödé prose with a password word in it — nothing to hide.",
    ];
    for text in texts {
        assert_eq!(r.redact(text), text);
    }
}

#[test]
fn json_details_are_redacted_in_every_string() {
    let r = Redactor::default();
    let detail = serde_json::json!({"prompt": format!("use ghp_{}", fill(36)), "n": 3, "list": ["password=hunter2x"]});
    let out = r.redact_json(&detail);
    assert_eq!(
        out,
        serde_json::json!({"prompt": "use [redacted GitHub token]", "n": 3, "list": ["password=[redacted secret]"]})
    );
}
