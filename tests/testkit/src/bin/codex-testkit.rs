//! `codex-testkit`: serves the mock model or the fake Mattermost for test suites that are not
//! written in Rust (the Go plugin harness, shell end-to-end scripts), and prints the Codex config
//! that points Codex at the mock model. A server writes the bound `host:port` to `--addr-file`
//! once listening and serves until SIGTERM or SIGINT.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use codex_testkit::{FakeMattermost, MattermostConfig, MockModel};

#[derive(Parser)]
#[command(
    version,
    about = "Local fake peers for Codex for Mattermost test suites"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Mock OpenAI Responses API for the Codex CLI (base_url = http://ADDR/v1).
    MockModel {
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
        /// Gets the bound host:port once the server is listening.
        #[arg(long)]
        addr_file: Option<PathBuf>,
    },
    /// Prints the Codex config overrides (one `key=value` per line) that point Codex at a mock
    /// model at BASE_URL, for suites not written in Rust.
    CodexConfig {
        #[arg(long)]
        base_url: String,
    },
    /// Fake Mattermost REST API v4 plus /_test/ control endpoints.
    FakeMattermost {
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
        #[arg(long)]
        addr_file: Option<PathBuf>,
        #[arg(long)]
        bot_user_id: String,
        #[arg(long)]
        bot_token: String,
        #[arg(long, default_value = "codex")]
        bot_username: String,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::MockModel { listen, addr_file } => {
            let server = MockModel::start_on(listen).await?;
            announce("mock-model", server.addr(), addr_file.as_deref())?;
            wait_for_signal().await?;
        }
        Command::CodexConfig { base_url } => {
            for line in codex_testkit::codex::config_overrides(&base_url) {
                println!("{line}");
            }
        }
        Command::FakeMattermost {
            listen,
            addr_file,
            bot_user_id,
            bot_token,
            bot_username,
        } => {
            let config = MattermostConfig {
                bot_user_id,
                bot_username,
                bot_token,
            };
            let server = FakeMattermost::start_on(listen, config).await?;
            announce("fake-mattermost", server.addr(), addr_file.as_deref())?;
            wait_for_signal().await?;
        }
    }
    Ok(())
}

/// Writes the address through a temporary file and a rename, so a reader polling for the file
/// never sees it half-written.
fn announce(name: &str, addr: SocketAddr, addr_file: Option<&Path>) -> anyhow::Result<()> {
    if let Some(path) = addr_file {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, addr.to_string())
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    }
    eprintln!("codex-testkit {name} listening on {addr}");
    Ok(())
}

async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}
