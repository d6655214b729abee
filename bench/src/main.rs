//! `codex-bench`: the measurements behind `make bench`. Each subcommand measures one section and
//! writes it as JSON under `--results`; `report` turns every section found there into
//! `bench/REPORT.md`. `make bench` runs them all in order (see mk/bench.mk).

mod bridge;
mod command_gate;
mod host_load;
mod policy;
mod report;
mod results;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(about = "Benchmarks of Codex for Mattermost (run them with `make bench`)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
pub struct Common {
    /// Where the section results (JSON) are written.
    #[arg(long, default_value = "target/bench/results")]
    pub results: PathBuf,
    /// Fewer rounds and smaller counts: checks that the benchmark works, not what it measures.
    #[arg(long)]
    pub quick: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Policy chain (wasmtime, fresh instance per evaluation) against the same rules in Cedar.
    Policy {
        #[command(flatten)]
        common: Common,
        /// Directory holding the built example policies (`make policies`).
        #[arg(long, default_value = "target/policies")]
        policy_dir: PathBuf,
    },
    /// The policy decision per command approval (allowlist → command-guard, allow path).
    Commands {
        #[command(flatten)]
        common: Common,
        /// Directory holding the built example policies (`make policies`).
        #[arg(long, default_value = "target/policies")]
        policy_dir: PathBuf,
    },
    /// Host acknowledgement latency under load over the Unix socket, and host memory.
    Host {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        bins: host_load::Bins,
    },
    /// Wall time of `codex-host run` against the same `codex exec` run directly.
    Bridge {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        bins: bridge::Bins,
    },
    /// Writes the report from every section in the results directory.
    Report {
        /// Where the section results (JSON) are read from.
        #[arg(long, default_value = "target/bench/results")]
        results: PathBuf,
        #[arg(long, default_value = "bench/REPORT.md")]
        out: PathBuf,
        /// Figures, in seconds, for the report's "how long it took" line.
        #[arg(long)]
        elapsed_secs: Option<u64>,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Policy { common, policy_dir } => policy::run(&common, &policy_dir),
        Command::Commands { common, policy_dir } => command_gate::run(&common, &policy_dir),
        Command::Host { common, bins } => host_load::run(&common, &bins),
        Command::Bridge { common, bins } => bridge::run(&common, &bins),
        Command::Report {
            results,
            out,
            elapsed_secs,
        } => report::run(&results, &out, elapsed_secs),
    }
}
