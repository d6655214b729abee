//! allowlist: who may use Codex, and where. The default policy shipped in the plugin bundle; its
//! config comes from the System Console settings (Allowed users, channels, teams).
//!
//! Config (JSON, every field optional):
//! ```json
//! {"users": ["alice", "8xk3..."], "roles": ["system_admin"],
//!  "channels": ["dev", "eng/dev", "4n9w..."], "teams": ["eng"], "direct_messages": true}
//! ```
//! - who: `users` (username, with or without `@`, or user id) or `roles` (Mattermost system
//!   roles). If both are empty, anyone qualifies.
//! - where: `channels` (channel name, channel id, or `team/channel`) or `teams` (team name or id).
//!   If both are empty, anywhere qualifies. Direct and group messages qualify when
//!   `direct_messages` is true (the default).
//! - A request is allowed when both who and where qualify. An entirely empty allowlist admits no
//!   one, and the denial tells the admin which settings to fill in.

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

struct Allowlist;

impl Guest for Allowlist {
    fn validate_config(config: String) -> Result<(), String> {
        let config: Config = sdk::parse_config(&config)?;
        for entry in config
            .users
            .iter()
            .chain(&config.channels)
            .chain(&config.teams)
        {
            if entry.trim().is_empty() {
                return Err("allowlist entries must not be empty strings".into());
            }
        }
        Ok(())
    }

    fn evaluate(request: Request) -> Verdict {
        let config: Config = sdk::config();
        decide(&config, &request)
    }
}

fn decide(config: &Config, request: &Request) -> Verdict {
    let no_who = config.users.is_empty() && config.roles.is_empty();
    let no_where = config.channels.is_empty() && config.teams.is_empty();
    if no_who && no_where {
        return sdk::deny(
            format!(
                "Codex is not enabled for anyone yet: the allowlist is empty. A system admin can \
                 fill in Allowed users, Allowed channels or Allowed teams in {SETTINGS}."
            ),
            "allowlist-empty",
        );
    }
    if !no_who && !user_listed(config, request) {
        return sdk::deny(
            format!(
                "@{} is not on the Codex allowlist. Ask a system admin to add you under Allowed \
                 users in {SETTINGS}.",
                request.user.username
            ),
            "user-not-listed",
        );
    }
    if !no_where && !place_listed(config, request) {
        let place = match request.channel.kind {
            ChannelKind::Direct | ChannelKind::Group => "direct and group messages".to_string(),
            _ => format!("~{}", request.channel.name),
        };
        return sdk::deny(
            format!(
                "Codex is not enabled in {place}. Use it in an allowed channel, or ask a system \
                 admin to add this one under Allowed channels or Allowed teams in {SETTINGS}."
            ),
            "channel-not-listed",
        );
    }
    sdk::allow("allowlisted")
}

fn user_listed(config: &Config, request: &Request) -> bool {
    let user = &request.user;
    config.users.iter().any(|entry| {
        let entry = entry.trim();
        entry == user.id
            || entry
                .trim_start_matches('@')
                .eq_ignore_ascii_case(&user.username)
    }) || config
        .roles
        .iter()
        .any(|role| user.roles.iter().any(|r| r == role.trim()))
}

fn place_listed(config: &Config, request: &Request) -> bool {
    let channel = &request.channel;
    if matches!(channel.kind, ChannelKind::Direct | ChannelKind::Group) {
        return config.direct_messages.unwrap_or(true);
    }
    let team = &channel.team;
    config.channels.iter().any(|entry| {
        let entry = entry.trim().trim_start_matches('~');
        match entry.split_once('/') {
            Some((t, c)) => {
                (t.eq_ignore_ascii_case(&team.name) || t == team.id)
                    && c.trim_start_matches('~')
                        .eq_ignore_ascii_case(&channel.name)
            }
            None => entry == channel.id || entry.eq_ignore_ascii_case(&channel.name),
        }
    }) || config.teams.iter().any(|t| {
        let t = t.trim();
        !team.id.is_empty() && (t == team.id || t.eq_ignore_ascii_case(&team.name))
    })
}

export!(Allowlist);
