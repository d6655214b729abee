//! allowlist: who may use Codex, and where. The default policy shipped in the plugin bundle; its
//! config comes from the System Console settings (Allowed users, channels, teams), which the
//! plugin resolves from names to ids each time it hands the settings to the host.
//!
//! Config (JSON, every field optional):
//! ```json
//! {"users": ["8xk3...", "*"], "roles": ["system_admin"],
//!  "channels": ["4n9w..."], "teams": ["q7ct..."], "direct_messages": true}
//! ```
//! - Entries are ids, compared exactly: names are never matched, because anyone can take a free
//!   username or create a channel with a listed name in another team. An entry that is not an id
//!   (the plugin sends `unresolved:<entry>` for one it could not resolve) matches nothing, but
//!   still counts as an entry, so a list naming only missing channels admits no channel.
//! - who: `users` (user ids, or `*` for everyone in the allowed places) or `roles` (Mattermost
//!   system roles). **Both empty: nobody**, whatever the other lists say; the denial tells the
//!   admin what to fill in.
//! - where: `channels` (channel ids) or `teams` (team ids). Both empty: anywhere. Direct and group
//!   messages qualify when `direct_messages` is true (the default) for people admitted by id or
//!   role; people admitted only by `*` get them only when channels and teams are both empty
//!   (`*` means everyone in the allowed channels and teams, and a DM is in none of them).
//! - A request is allowed when both who and where qualify.

use codex_policy_sdk::{self as sdk, export, ChannelKind, Guest, Request, Verdict};
use serde::Deserialize;

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct Config {
    users: Vec<String>,
    roles: Vec<String>,
    channels: Vec<String>,
    teams: Vec<String>,
    direct_messages: Option<bool>,
}

const SETTINGS: &str = "System Console > Plugins > Codex for Mattermost";
const EVERYONE: &str = "*";

struct Allowlist;

impl Guest for Allowlist {
    fn validate_config(config: String) -> Result<(), String> {
        let config: Config = sdk::parse_config(&config)?;
        for entry in config.users.iter().chain(&config.channels).chain(&config.teams) {
            if entry.trim().is_empty() {
                return Err("allowlist entries must not be empty strings".into());
            }
        }
        if let Some(list) = [("channels", &config.channels), ("teams", &config.teams)]
            .into_iter()
            .find(|(_, list)| list.iter().any(|e| e.trim() == EVERYONE))
            .map(|(name, _)| name)
        {
            return Err(format!(
                "`*` is accepted in users only; leave {list} empty to not limit by {list}"
            ));
        }
        Ok(())
    }

    fn evaluate(request: Request) -> Verdict {
        let config: Config = sdk::config();
        decide(&config, &request)
    }
}

/// How a user qualifies.
#[derive(PartialEq)]
enum Who {
    /// Listed by id or admitted by a role.
    Named,
    /// Admitted by `*` only.
    Everyone,
    Nobody,
}

fn decide(config: &Config, request: &Request) -> Verdict {
    if config.users.is_empty() && config.roles.is_empty() {
        return sdk::deny(
            format!(
                "Codex is not enabled for anyone: Allowed users is empty, and an empty list \
                 admits nobody. A system admin can list people (usernames or user ids) under \
                 Allowed users in {SETTINGS}, or put `*` there to admit everyone in the Allowed \
                 channels and Allowed teams."
            ),
            "allowlist-empty",
        );
    }
    let who = who(config, request);
    if who == Who::Nobody {
        return sdk::deny(
            format!(
                "@{} is not on the Codex allowlist. Ask a system admin to add you under Allowed \
                 users in {SETTINGS}.",
                request.user.username
            ),
            "user-not-listed",
        );
    }
    if !place_listed(config, request, &who) {
        let direct = matches!(request.channel.kind, ChannelKind::Direct | ChannelKind::Group);
        let reason = if direct && who == Who::Everyone {
            format!(
                "Codex is enabled for everyone only in the allowed channels and teams; in direct \
                 and group messages only for the people listed under Allowed users in {SETTINGS}. \
                 Use it in an allowed channel."
            )
        } else {
            let place = if direct {
                "direct and group messages".to_string()
            } else {
                format!("~{}", request.channel.name)
            };
            format!(
                "Codex is not enabled in {place}. Use it in an allowed channel, or ask a system \
                 admin to add this one under Allowed channels or Allowed teams in {SETTINGS}."
            )
        };
        return sdk::deny(reason, "channel-not-listed");
    }
    sdk::allow("allowlisted")
}

fn who(config: &Config, request: &Request) -> Who {
    let user = &request.user;
    let named = config.users.iter().any(|e| e.trim() == user.id)
        || config.roles.iter().any(|role| user.roles.iter().any(|r| r == role.trim()));
    if named && !user.id.is_empty() {
        Who::Named
    } else if config.users.iter().any(|e| e.trim() == EVERYONE) {
        Who::Everyone
    } else {
        Who::Nobody
    }
}

fn place_listed(config: &Config, request: &Request, who: &Who) -> bool {
    let channel = &request.channel;
    let anywhere = config.channels.is_empty() && config.teams.is_empty();
    if matches!(channel.kind, ChannelKind::Direct | ChannelKind::Group) {
        return config.direct_messages.unwrap_or(true) && (anywhere || *who == Who::Named);
    }
    anywhere
        || (!channel.id.is_empty() && config.channels.iter().any(|e| e.trim() == channel.id))
        || (!channel.team.id.is_empty() && config.teams.iter().any(|e| e.trim() == channel.team.id))
}

export!(Allowlist);
