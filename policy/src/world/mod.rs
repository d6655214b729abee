//! The policy world versions this host speaks, one submodule (and one `bindgen!`) per WIT package
//! version: which version a component implements, read from its exports at load, and how the
//! engine's one request and verdict types (`types`) are shown to and read back from each.
//!
//! Nothing outside this module knows which versions exist. Adding one is a submodule, a
//! `WorldVersion` case and an arm in each match below; `chain` stays as it is.

use std::cell::OnceCell;

use wasmtime::component::{InstancePre, Linker};
use wasmtime::Store;

use crate::types::{Action, Decision, PolicyRequest, Verdict};
use crate::wasm::State;

#[macro_use]
mod common;
mod v0_1;
mod v0_2;

/// The current WIT package version (`wit/policy.wit`), the one new modules should target.
pub const WORLD_VERSION: &str = "0.2.0";
/// The interface a module of the current version exports.
pub const POLICY_EXPORT: &str = "mattermost-codex:policy/policy@0.2.0";
/// Prefix of the policy export in any version, to recognise a module built for another one.
const POLICY_EXPORT_PREFIX: &str = "mattermost-codex:policy/policy@";

/// A world version a module can be built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorldVersion {
    /// `wit/0.1.0/policy.wit`: no context; not asked about `command` or `file-change`.
    V0_1,
    /// `wit/policy.wit`, current.
    V0_2,
}

impl WorldVersion {
    /// Every version this host loads, newest first.
    pub const ALL: [WorldVersion; 2] = [WorldVersion::V0_2, WorldVersion::V0_1];

    pub fn as_str(self) -> &'static str {
        match self {
            WorldVersion::V0_1 => "0.1.0",
            WorldVersion::V0_2 => "0.2.0",
        }
    }

    /// The policy interface a module of this version exports.
    pub fn export_name(self) -> String {
        format!("{POLICY_EXPORT_PREFIX}{}", self.as_str())
    }

    /// Whether a module of this version is asked about `action`. A module is never asked about an
    /// action its world does not have; for that action it counts as abstaining.
    pub fn asks(self, action: &Action) -> bool {
        match self {
            WorldVersion::V0_1 => !matches!(action, Action::Command(_) | Action::FileChange(_)),
            WorldVersion::V0_2 => true,
        }
    }

    /// Every version this host loads, for messages: `0.2.0, 0.1.0`.
    pub fn supported() -> String {
        WorldVersion::ALL.map(WorldVersion::as_str).join(", ")
    }
}

/// What a component's exports say about its world.
#[derive(Debug, PartialEq, Eq)]
pub enum Detected {
    Version(WorldVersion),
    /// It exports the policy interface, but of a version this host does not know.
    UnknownVersion(String),
    /// It does not export the policy interface at all.
    NotAPolicy,
}

/// Which world a component with these exports implements.
pub fn detect<'a>(exports: impl IntoIterator<Item = &'a str>) -> Detected {
    let mut unknown = None;
    for export in exports {
        let Some(version) = export.strip_prefix(POLICY_EXPORT_PREFIX) else {
            continue;
        };
        match WorldVersion::ALL
            .into_iter()
            .find(|v| v.as_str() == version)
        {
            Some(v) => return Detected::Version(v),
            None => unknown = Some(version.to_owned()),
        }
    }
    unknown.map_or(Detected::NotAPolicy, Detected::UnknownVersion)
}

/// Adds the `host` interface of every version to `linker`.
pub fn add_to_linker(linker: &mut Linker<State>) -> wasmtime::Result<()> {
    v0_1::add_to_linker(linker)?;
    v0_2::add_to_linker(linker)
}

/// A linked module of a known version, ready to instantiate.
pub(crate) enum ModulePre {
    V0_1(v0_1::PolicyModulePre<State>),
    V0_2(v0_2::PolicyModulePre<State>),
}

/// One instance of a module.
pub(crate) enum Instance {
    V0_1(v0_1::PolicyModule),
    V0_2(v0_2::PolicyModule),
}

impl ModulePre {
    /// Checks the linked component against the bindings of `version`.
    pub fn new(version: WorldVersion, pre: InstancePre<State>) -> wasmtime::Result<ModulePre> {
        Ok(match version {
            WorldVersion::V0_1 => ModulePre::V0_1(v0_1::PolicyModulePre::new(pre)?),
            WorldVersion::V0_2 => ModulePre::V0_2(v0_2::PolicyModulePre::new(pre)?),
        })
    }

    pub fn version(&self) -> WorldVersion {
        match self {
            ModulePre::V0_1(_) => WorldVersion::V0_1,
            ModulePre::V0_2(_) => WorldVersion::V0_2,
        }
    }

    pub fn instantiate(&self, store: &mut Store<State>) -> wasmtime::Result<Instance> {
        Ok(match self {
            ModulePre::V0_1(pre) => Instance::V0_1(pre.instantiate(store)?),
            ModulePre::V0_2(pre) => Instance::V0_2(pre.instantiate(store)?),
        })
    }
}

impl Instance {
    pub fn validate_config(
        &self,
        store: &mut Store<State>,
        config: &str,
    ) -> wasmtime::Result<Result<(), String>> {
        match self {
            Instance::V0_1(i) => i
                .mattermost_codex_policy_policy()
                .call_validate_config(store, config),
            Instance::V0_2(i) => i
                .mattermost_codex_policy_policy()
                .call_validate_config(store, config),
        }
    }

    /// Calls `evaluate` and returns the verdict unchecked (see `wasm::check_verdict`). The caller
    /// asks only modules whose version `asks` the request's action; any other answers `abstain`
    /// without running.
    pub fn evaluate(
        &self,
        store: &mut Store<State>,
        request: &Lowered<'_>,
    ) -> wasmtime::Result<Verdict> {
        match self {
            Instance::V0_1(i) => match request.v0_1() {
                Some(r) => i
                    .mattermost_codex_policy_policy()
                    .call_evaluate(store, r)
                    .map(v0_1::verdict),
                None => Ok(Verdict {
                    decision: Decision::Abstain,
                    rule_id: None,
                }),
            },
            Instance::V0_2(i) => i
                .mattermost_codex_policy_policy()
                .call_evaluate(store, request.v0_2())
                .map(v0_2::verdict),
        }
    }
}

/// One request, lowered into each version's bindings the first time a module of that version
/// needs it, so a chain converts it at most once per version.
pub(crate) struct Lowered<'a> {
    request: &'a PolicyRequest,
    v0_1: OnceCell<Option<v0_1::Request>>,
    v0_2: OnceCell<v0_2::Request>,
}

impl<'a> Lowered<'a> {
    pub fn new(request: &'a PolicyRequest) -> Lowered<'a> {
        Lowered {
            request,
            v0_1: OnceCell::new(),
            v0_2: OnceCell::new(),
        }
    }

    pub fn request(&self) -> &PolicyRequest {
        self.request
    }

    fn v0_1(&self) -> Option<&v0_1::Request> {
        self.v0_1
            .get_or_init(|| v0_1::request(self.request))
            .as_ref()
    }

    fn v0_2(&self) -> &v0_2::Request {
        self.v0_2.get_or_init(|| v0_2::request(self.request))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_the_version_from_the_exports() {
        let v = |exports: &[&str]| detect(exports.iter().copied());
        assert_eq!(
            v(&["mattermost-codex:policy/policy@0.1.0"]),
            Detected::Version(WorldVersion::V0_1)
        );
        assert_eq!(
            v(&["wasi:cli/run@0.2.0", "mattermost-codex:policy/policy@0.2.0"]),
            Detected::Version(WorldVersion::V0_2)
        );
        assert_eq!(
            v(&["mattermost-codex:policy/policy@9.0.0"]),
            Detected::UnknownVersion("9.0.0".into())
        );
        assert_eq!(v(&["other:thing/api@1.0.0"]), Detected::NotAPolicy);
        assert_eq!(POLICY_EXPORT, WorldVersion::ALL[0].export_name());
        assert_eq!(WORLD_VERSION, WorldVersion::ALL[0].as_str());
    }

    #[test]
    fn modules_of_0_1_are_not_asked_about_actions_0_1_lacks() {
        let command = Action::Command(Default::default());
        let change = Action::FileChange(Default::default());
        assert!(!WorldVersion::V0_1.asks(&command));
        assert!(!WorldVersion::V0_1.asks(&change));
        assert!(WorldVersion::V0_1.asks(&Action::New));
        assert!(WorldVersion::V0_2.asks(&command) && WorldVersion::V0_2.asks(&change));
    }
}
