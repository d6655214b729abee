//! Where the pinned Codex CLI is and how to point it at a [`crate::MockModel`] offline.
//!
//! The CLI comes from npm (`@openai/codex`, pinned in `tools/codex/package.json`); `CODEX_BIN`
//! overrides the location. Everything that keeps a run on this machine lives in
//! [`config_overrides`] (as arguments: [`provider_args`]); [`exec_command`] assembles a complete `codex exec` invocation for tests.

use std::path::{Path, PathBuf};

/// Model slug from Codex's built-in catalog; any catalog slug works against the mock.
pub const MODEL: &str = "gpt-5.5";
/// Environment variable the mock provider's `env_key` names; any value is accepted.
pub const API_KEY_ENV: &str = "MOCK_API_KEY";

/// The Codex CLI to test against: `$CODEX_BIN`, else `tools/codex/node_modules/.bin/codex` in
/// this repository. The error says how to install it.
pub fn binary() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("CODEX_BIN") {
        let path = PathBuf::from(path);
        anyhow::ensure!(
            path.is_file(),
            "CODEX_BIN={} does not exist",
            path.display()
        );
        return Ok(path);
    }
    let tools = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tools/codex");
    let path = tools.join("node_modules/.bin/codex");
    anyhow::ensure!(
        path.exists(),
        "the Codex CLI is not installed at {}.\nInstall the pinned version with: cd {} && npm install\n\
         (or set CODEX_BIN to a codex 0.171.x binary)",
        path.display(),
        tools.display(),
    );
    Ok(path)
}

/// The Codex config overrides (`key=value`, as `codex -c` and codex-host's Codex config setting
/// take them) selecting a provider `mock` at `base_url` (Responses wire API, key from
/// [`API_KEY_ENV`], no retries) with analytics and plugins off, so nothing leaves the machine.
/// The one list every suite uses: Rust through this function, the Go suites and scripts through
/// `codex-testkit codex-config`.
pub fn config_overrides(base_url: &str) -> Vec<String> {
    vec![
        "model_provider=mock".to_owned(),
        "model_providers.mock.name=\"mock\"".to_owned(),
        format!("model_providers.mock.base_url=\"{base_url}\""),
        "model_providers.mock.wire_api=\"responses\"".to_owned(),
        format!("model_providers.mock.env_key=\"{API_KEY_ENV}\""),
        "model_providers.mock.request_max_retries=0".to_owned(),
        "model_providers.mock.stream_max_retries=0".to_owned(),
        "analytics.enabled=false".to_owned(),
        "features.plugins=false".to_owned(),
    ]
}

/// [`config_overrides`] as `codex` arguments: `-c key=value` each.
pub fn provider_args(base_url: &str) -> Vec<String> {
    config_overrides(base_url)
        .into_iter()
        .flat_map(|o| ["-c".to_owned(), o])
        .collect()
}

/// `codex exec --json --skip-git-repo-check -C <workdir> -m gpt-5.5 <provider args>` with
/// `CODEX_HOME`, the mock key and stdin null set; append `-s <sandbox>`, then
/// `resume <thread_id>` if wanted, then the prompt.
pub fn exec_command(
    binary: &Path,
    codex_home: &Path,
    workdir: &Path,
    base_url: &str,
) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(binary);
    command
        .args(["exec", "--json", "--skip-git-repo-check", "-C"])
        .arg(workdir)
        .args(["-m", MODEL])
        .args(provider_args(base_url))
        .env("CODEX_HOME", codex_home)
        .env(API_KEY_ENV, "mock-key")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    command
}
