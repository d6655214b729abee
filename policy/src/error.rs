//! Why a module could not be loaded. Every variant names the module and says what to do; the
//! service keeps the previous chain when a reload fails with one of these.

use std::path::PathBuf;

use crate::types::ModuleFailure;
use crate::world::{WorldVersion, POLICY_EXPORT};

#[derive(Debug, Clone, thiserror::Error)]
pub enum LoadError {
    #[error("policy module `{name}`: cannot read {}: {message}", path.display())]
    Read {
        name: String,
        path: PathBuf,
        message: String,
    },

    #[error("policy module `{name}`: {detail}")]
    NotAComponent { name: String, detail: String },

    #[error("policy module `{name}`: does not compile: {message}")]
    Compile { name: String, message: String },

    #[error(
        "policy module `{name}`: is not a policy module: it exports {}, but not `{POLICY_EXPORT}` \
         (or an earlier version of it). Build it against the `policy-module` world in wit/ \
         (docs/policies.md).",
        if exports.is_empty() { "nothing".to_owned() } else { exports.join(", ") }
    )]
    WrongWorld { name: String, exports: Vec<String> },

    #[error(
        "policy module `{name}`: was built for policy world version {found}, but this host \
         supports only {}. Rebuild it against this host's wit/ directory.",
        WorldVersion::supported()
    )]
    UnsupportedVersion { name: String, found: String },

    #[error(
        "policy module `{name}`: cannot be linked: {message}. A policy may import only \
         `mattermost-codex:policy/host` and WASI 0.2 interfaces."
    )]
    Link { name: String, message: String },

    #[error("policy module `{name}`: its config is not valid JSON: {message}")]
    ConfigNotJson { name: String, message: String },

    #[error("policy module `{name}`: rejected its config: {message}")]
    InvalidConfig { name: String, message: String },

    #[error("policy module `{name}`: failed while checking its config: {}", failure.message)]
    ConfigCheckFailed {
        name: String,
        failure: ModuleFailure,
    },

    #[error("policy module name `{name}` is used twice in the chain; names must be unique")]
    DuplicateName { name: String },
}

impl LoadError {
    /// The module the error is about.
    pub fn module(&self) -> &str {
        match self {
            LoadError::Read { name, .. }
            | LoadError::NotAComponent { name, .. }
            | LoadError::Compile { name, .. }
            | LoadError::WrongWorld { name, .. }
            | LoadError::UnsupportedVersion { name, .. }
            | LoadError::Link { name, .. }
            | LoadError::ConfigNotJson { name, .. }
            | LoadError::InvalidConfig { name, .. }
            | LoadError::ConfigCheckFailed { name, .. }
            | LoadError::DuplicateName { name } => name,
        }
    }
}
