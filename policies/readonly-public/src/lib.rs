//! readonly-public: in public channels, Codex may read the repository but not change it.
//! Everything said in a public channel is visible to the whole team, so runs started there get
//! the `read-only` sandbox; elsewhere this policy abstains.
//!
//! Config (JSON, every field optional):
//! ```json
//! {"sandbox": "read-only", "kinds": ["public"]}
//! ```
//! - `sandbox`: the most permissive sandbox allowed in those channels (`read-only` by default;
//!   `workspace-write` also accepted).
//! - `kinds`: which channel kinds the limit applies to: `public` (default), `private`, `direct`,
//!   `group`.

use codex_policy_sdk::{
    self as sdk, export, ChannelKind, Guest, Limits, Request, SandboxMode, Verdict,
};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Config {
    sandbox: String,
    kinds: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            sandbox: "read-only".into(),
            kinds: vec!["public".into()],
        }
    }
}

fn kind_name(kind: ChannelKind) -> &'static str {
    match kind {
        ChannelKind::Public => "public",
        ChannelKind::Private => "private",
        ChannelKind::Direct => "direct",
        ChannelKind::Group => "group",
    }
}

struct ReadonlyPublic;

impl Guest for ReadonlyPublic {
    fn validate_config(config: String) -> Result<(), String> {
        let config: Config = sdk::parse_config(&config)?;
        match SandboxMode::parse(&config.sandbox) {
            Some(SandboxMode::DangerFullAccess) | None => {
                return Err(format!(
                    "sandbox must be read-only or workspace-write, not {:?}",
                    config.sandbox
                ))
            }
            Some(_) => {}
        }
        for kind in &config.kinds {
            if !["public", "private", "direct", "group"].contains(&kind.as_str()) {
                return Err(format!(
                    "kinds: {kind:?} is not a channel kind; use public, private, direct or group"
                ));
            }
        }
        Ok(())
    }

    fn evaluate(request: Request) -> Verdict {
        let config: Config = sdk::config();
        if !config
            .kinds
            .iter()
            .any(|k| k == kind_name(request.channel.kind))
        {
            return sdk::abstain();
        }
        let sandbox = SandboxMode::parse(&config.sandbox).unwrap_or(SandboxMode::ReadOnly);
        sdk::allow_within(
            Limits {
                sandbox: Some(sandbox),
                timeout_secs: None,
                model: None,
            },
            "public-read-only",
        )
    }
}

export!(ReadonlyPublic);
