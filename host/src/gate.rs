//! Who may do what, where: the decision seam the policy engine plugs into.
//!
//! Input: a [`GateRequest`] (who, where, what) and the current config; output: a [`Decision`].
//! Never does I/O. [`AllowlistGate`] is the interim rule set from System Console's allowlists;
//! [`LocalGate`] serves `codex-host run`, where the person at the terminal owns the machine.

use std::time::Duration;

use crate::api::contract::{Channel, ChannelKind, User};
use crate::config::{Config, Sandbox};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    New,
    Continue,
    Cancel,
    Query,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::New => "new",
            Action::Continue => "continue",
            Action::Cancel => "cancel",
            Action::Query => "policy-query",
        }
    }
}

pub struct GateRequest<'a> {
    pub user: &'a User,
    pub channel: &'a Channel,
    pub action: Action,
    pub prompt: &'a str,
    pub project: &'a str,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Allowed, with limits that may only tighten the project's defaults.
    Allow { sandbox: Option<Sandbox>, timeout: Option<Duration>, model: Option<String>, rule: String },
    Deny { reason: String, rule: String },
}

pub trait Gate: Send + Sync {
    fn decide(&self, req: &GateRequest, cfg: &Config) -> Decision;
}

pub struct AllowlistGate;

impl Gate for AllowlistGate {
    fn decide(&self, req: &GateRequest, cfg: &Config) -> Decision {
        let s = &cfg.settings;
        let deny = |reason: String, rule: &str| Decision::Deny { reason, rule: rule.into() };
        if s.allowed_users.is_empty() {
            return deny(
                "nobody is allowed to use Codex yet. An admin adds people under System Console > Plugins > Codex for Mattermost > Allowed users.".into(),
                "allowlist/no-users",
            );
        }
        if !s.allowed_users.iter().any(|u| matches(u, &[&req.user.username, &req.user.id])) {
            return deny(format!("@{} is not on the allowed users list. Ask an admin to add you.", req.user.username), "allowlist/user");
        }
        let in_dm = matches!(req.channel.kind, ChannelKind::Direct | ChannelKind::Group);
        if !in_dm && !s.allowed_teams.is_empty() && !s.allowed_teams.iter().any(|t| matches(t, &[&req.channel.team_name, &req.channel.team_id])) {
            return deny(format!("the team `{}` is not allowed. Ask an admin to add it to Allowed teams.", req.channel.team_name), "allowlist/team");
        }
        let qualified = format!("{}/{}", req.channel.team_name, req.channel.name);
        if !in_dm
            && !s.allowed_channels.is_empty()
            && !s.allowed_channels.iter().any(|c| matches(c, &[&req.channel.name, &req.channel.id, &qualified]))
        {
            return deny(format!("Codex is not enabled in ~{}. Ask an admin to add it to Allowed channels.", req.channel.name), "allowlist/channel");
        }
        Decision::Allow { sandbox: None, timeout: None, model: None, rule: "allowlist/allow".into() }
    }
}

fn matches(entry: &str, candidates: &[&str]) -> bool {
    let e = entry.trim().trim_start_matches(['@', '~']);
    !e.is_empty() && candidates.iter().any(|c| !c.is_empty() && c.eq_ignore_ascii_case(e))
}

pub struct LocalGate;

impl Gate for LocalGate {
    fn decide(&self, _req: &GateRequest, _cfg: &Config) -> Decision {
        Decision::Allow { sandbox: None, timeout: None, model: None, rule: "local/terminal".into() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;

    fn cfg(users: &[&str], channels: &[&str], teams: &[&str]) -> Config {
        Config::from_settings(Settings {
            allowed_users: users.iter().map(|s| s.to_string()).collect(),
            allowed_channels: channels.iter().map(|s| s.to_string()).collect(),
            allowed_teams: teams.iter().map(|s| s.to_string()).collect(),
            ..Settings::default()
        })
        .unwrap()
    }

    fn decide(c: &Config, user: &str, channel: &str, kind: ChannelKind) -> Decision {
        let u = User { id: format!("id-{user}"), username: user.into(), ..Default::default() };
        let ch = Channel { id: format!("id-{channel}"), name: channel.into(), kind, team_name: "eng".into(), team_id: "id-eng".into(), ..Default::default() };
        AllowlistGate.decide(&GateRequest { user: &u, channel: &ch, action: Action::New, prompt: "p", project: "api" }, c)
    }

    #[test]
    fn empty_allowlist_denies_everyone_with_an_admin_hint() {
        match decide(&cfg(&[], &[], &[]), "alice", "town-square", ChannelKind::Public) {
            Decision::Deny { reason, .. } => assert!(reason.contains("Allowed users"), "{reason}"),
            d => panic!("{d:?}"),
        }
    }

    #[test]
    fn users_channels_and_teams_are_checked() {
        let c = cfg(&["@alice"], &["eng/dev", "ops"], &["eng"]);
        assert!(matches!(decide(&c, "alice", "dev", ChannelKind::Public), Decision::Allow { .. }));
        assert!(matches!(decide(&c, "ALICE", "ops", ChannelKind::Private), Decision::Allow { .. }));
        assert!(matches!(decide(&c, "bob", "dev", ChannelKind::Public), Decision::Deny { rule, .. } if rule == "allowlist/user"));
        assert!(matches!(decide(&c, "alice", "random", ChannelKind::Public), Decision::Deny { rule, .. } if rule == "allowlist/channel"));
        assert!(matches!(decide(&c, "alice", "dm", ChannelKind::Direct), Decision::Allow { .. }));
    }
}
