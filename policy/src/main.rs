//! `codex-policy`: the policy tools stand-alone, the same code as `codex-host policy ...`.

use std::process::ExitCode;

use clap::Parser;

#[derive(Parser)]
#[command(
    name = "codex-policy",
    version,
    about = "Check, test and benchmark Codex for Mattermost policy modules"
)]
struct Cli {
    #[command(subcommand)]
    command: codex_policy::cli::PolicyCommand,
}

fn main() -> ExitCode {
    match codex_policy::cli::run(Cli::parse().command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
