//! What reads alike in every world version's bindings, written once: the `host` interface, the
//! request parts every version has (user, channel, project, sandbox) and the verdict read back.
//!
//! Each version's bindings are distinct Rust types of the same shape, so this is a macro expanded
//! inside each version module (`common_mappings!();`), where `wit` names that version's `types`
//! interface and `Level` its log level. What differs between versions (the action, `context`)
//! stays in the version's module.

macro_rules! common_mappings {
    () => {
        pub fn add_to_linker(
            linker: &mut wasmtime::component::Linker<State>,
        ) -> wasmtime::Result<()> {
            PolicyModule::add_to_linker::<State, wasmtime::component::HasSelf<State>>(linker, |s| s)
        }

        impl mattermost_codex::policy::types::Host for State {}

        impl mattermost_codex::policy::host::Host for State {
            fn log(&mut self, level: Level, message: String) {
                let level = match level {
                    Level::Trace => "trace",
                    Level::Debug => "debug",
                    Level::Info => "info",
                    Level::Warn => "warn",
                    Level::Error => "error",
                };
                self.push_log(level, message);
            }

            fn config(&mut self) -> String {
                self.config_text()
            }
        }

        fn user(u: &types::User) -> wit::User {
            wit::User {
                id: u.id.clone(),
                username: u.username.clone(),
                roles: u.roles.clone(),
            }
        }

        fn channel(c: &types::Channel) -> wit::Channel {
            wit::Channel {
                id: c.id.clone(),
                name: c.name.clone(),
                team: wit::Team {
                    id: c.team.id.clone(),
                    name: c.team.name.clone(),
                },
                kind: match c.kind {
                    types::ChannelKind::Public => wit::ChannelKind::Public,
                    types::ChannelKind::Private => wit::ChannelKind::Private,
                    types::ChannelKind::Direct => wit::ChannelKind::Direct,
                    types::ChannelKind::Group => wit::ChannelKind::Group,
                },
            }
        }

        fn project(p: &types::Project) -> wit::Project {
            wit::Project {
                name: p.name.clone(),
                repo_path: p.repo_path.clone(),
            }
        }

        fn sandbox_to_wit(s: types::SandboxMode) -> wit::SandboxMode {
            match s {
                types::SandboxMode::ReadOnly => wit::SandboxMode::ReadOnly,
                types::SandboxMode::WorkspaceWrite => wit::SandboxMode::WorkspaceWrite,
                types::SandboxMode::DangerFullAccess => wit::SandboxMode::DangerFullAccess,
            }
        }

        fn sandbox_from_wit(s: wit::SandboxMode) -> types::SandboxMode {
            match s {
                wit::SandboxMode::ReadOnly => types::SandboxMode::ReadOnly,
                wit::SandboxMode::WorkspaceWrite => types::SandboxMode::WorkspaceWrite,
                wit::SandboxMode::DangerFullAccess => types::SandboxMode::DangerFullAccess,
            }
        }

        /// The verdict as the module gave it, unchecked (`wasm::check_verdict` checks it).
        pub fn verdict(v: Verdict) -> types::Verdict {
            let decision = match v.decision {
                wit::Decision::Allow(l) => types::Decision::Allow(types::Limits {
                    sandbox: l.sandbox.map(sandbox_from_wit),
                    timeout_secs: l.timeout_secs,
                    model: l.model,
                }),
                wit::Decision::Deny(reason) => types::Decision::Deny { reason },
                wit::Decision::RequireApproval(a) => {
                    types::Decision::RequireApproval(types::Approval {
                        approvers: a.approvers,
                        min_approvals: a.min_approvals,
                        reason: a.reason,
                        expiry_secs: a.expiry_secs,
                        allow_self_approval: a.allow_self_approval,
                    })
                }
                wit::Decision::Abstain => types::Decision::Abstain,
            };
            types::Verdict {
                decision,
                rule_id: v.rule_id,
            }
        }
    };
}
