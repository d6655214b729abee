//! `policy check | test | bench`: the command-line tools for policy authors. The host embeds
//! [`PolicyCommand`] as `codex-host policy ...`; the `codex-policy` binary of this crate runs the
//! same code stand-alone.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::cases::{self, CaseFile};
use crate::engine::{EngineOptions, PolicyEngine};
use crate::module::ModuleSpec;
use crate::types::{ModuleOutcome, PolicyRequest};

#[derive(Debug, clap::Subcommand)]
pub enum PolicyCommand {
    /// Load a module, check it against the policy WIT and its config, and try one request.
    Check {
        /// The component (.wasm).
        module: PathBuf,
        /// JSON config file for the module (default: "{}").
        #[arg(long)]
        config: Option<PathBuf>,
        #[command(flatten)]
        engine: EngineArgs,
    },
    /// Run tables of requests with expected decisions; exits 1 if any case fails.
    Test {
        /// Case files (TOML, or JSON by extension); see docs/policies.md.
        #[arg(required = true)]
        cases: Vec<PathBuf>,
        #[command(flatten)]
        engine: EngineArgs,
    },
    /// Measure decision latency: p50/p99 per module and for the whole chain.
    Bench {
        /// Components, in chain order (or take the chain from --cases).
        modules: Vec<PathBuf>,
        /// JSON config files, one per module, in the same order.
        #[arg(long)]
        config: Vec<PathBuf>,
        /// Take the chain and the requests from this case file.
        #[arg(long)]
        cases: Option<PathBuf>,
        /// Decisions to measure (per thread).
        #[arg(long, default_value_t = 5000)]
        iterations: u32,
        /// Threads evaluating at once.
        #[arg(long, default_value_t = 1)]
        threads: u32,
        #[command(flatten)]
        engine: EngineArgs,
    },
}

/// Sandbox settings for the CLI's engine (the host uses its own configuration).
#[derive(Debug, Clone, clap::Args)]
pub struct EngineArgs {
    /// Memory cap per module instance, in MiB.
    #[arg(long, default_value_t = 16)]
    pub memory_limit_mib: usize,
    /// Deadline per module evaluation, in milliseconds.
    #[arg(long, default_value_t = 20)]
    pub deadline_ms: u64,
    /// Fuel per evaluation (off by default).
    #[arg(long)]
    pub fuel: Option<u64>,
    /// Fresh instances kept ready per module (0: instantiate on the request path).
    #[arg(long, default_value_t = 0)]
    pub prewarm: usize,
    /// Cache compiled components here.
    #[arg(long, env = "CODEX_POLICY_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
}

impl EngineArgs {
    pub fn options(&self) -> EngineOptions {
        EngineOptions {
            cache_dir: self.cache_dir.clone(),
            memory_limit: self.memory_limit_mib << 20,
            deadline: Duration::from_millis(self.deadline_ms),
            fuel: self.fuel,
            prewarm: self.prewarm,
            ..EngineOptions::default()
        }
    }
}

/// Runs one command, printing to stdout. Returns the process exit code: 0 on success, 1 when a
/// check or a case fails. Errors (unreadable files, bad flags) come back as `Err`.
pub fn run(cmd: PolicyCommand) -> anyhow::Result<ExitCode> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match cmd {
        PolicyCommand::Check {
            module,
            config,
            engine,
        } => check(
            &PolicyEngine::new(engine.options())?,
            &module,
            config.as_deref(),
            &mut out,
        ),
        PolicyCommand::Test { cases, engine } => {
            let engine = PolicyEngine::new(engine.options())?;
            let mut failed = false;
            for file in &cases {
                let summary = cases::run_file(&engine, file, &mut out)?;
                failed |= summary.failed > 0;
            }
            Ok(if failed {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
        PolicyCommand::Bench {
            modules,
            config,
            cases,
            iterations,
            threads,
            engine,
        } => {
            let engine = PolicyEngine::new(engine.options())?;
            bench(
                &engine,
                &modules,
                &config,
                cases.as_deref(),
                iterations,
                threads,
                &mut out,
            )
        }
    }
}

fn name_of(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "module".into())
}

fn read_config(path: Option<&Path>) -> anyhow::Result<String> {
    match path {
        Some(p) => std::fs::read_to_string(p)
            .with_context(|| format!("cannot read the config file {}", p.display())),
        None => Ok("{}".to_owned()),
    }
}

/// A plausible request for `check` and `bench`: a user in a public channel starting a run.
pub fn sample_request() -> PolicyRequest {
    serde_json::from_value(serde_json::json!({
        "request_id": "sample",
        "user": {"id": "u-alice", "username": "alice", "roles": ["system_user"]},
        "channel": {"id": "c-dev", "name": "dev", "team": {"id": "t-eng", "name": "eng"}, "kind": "public"},
        "action": "new",
        "prompt": "fix the flaky login test",
        "project": {"name": "api", "repo_path": "/srv/api"},
        "requested_sandbox": "workspace-write",
        "time_unix_ms": 1_780_000_000_000i64,
    }))
    .expect("the sample request matches PolicyRequest")
}

/// `policy check`: loads one module and reports what it is and what it says to a sample request.
pub fn check(
    engine: &PolicyEngine,
    module: &Path,
    config: Option<&Path>,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let name = name_of(module);
    let spec = ModuleSpec::from_path(&name, module, &read_config(config)?);
    let started = Instant::now();
    let chain = match engine.load_chain(&[spec]) {
        Ok(chain) => chain,
        Err(e) => {
            writeln!(out, "FAIL {e}")?;
            return Ok(ExitCode::from(1));
        }
    };
    let info = &chain.modules()[0];
    writeln!(out, "module:  {name} ({})", module.display())?;
    writeln!(out, "hash:    {}", info.hash)?;
    let older = if info.world == crate::WORLD_VERSION {
        String::new()
    } else {
        format!("; the current version is {}", crate::WORLD_VERSION)
    };
    writeln!(
        out,
        "world:   {0} (exports mattermost-codex:policy/policy@{0}{older})",
        info.world
    )?;
    writeln!(out, "config:  accepted")?;
    writeln!(
        out,
        "load:    {:.1} ms (compile or cache, link, validate-config)",
        started.elapsed().as_secs_f64() * 1e3
    )?;
    let report = chain.evaluate(&sample_request());
    let m = &report.modules[0];
    let what = match &m.outcome {
        ModuleOutcome::Verdict(v) => serde_json::to_string(v)?,
        ModuleOutcome::Failed(f) => format!("FAILED: {}", f.message),
    };
    writeln!(out, "sample:  {what} in {} µs", m.elapsed_us)?;
    for line in &m.logs {
        writeln!(out, "  log {}: {}", line.level, line.message)?;
    }
    let ok = matches!(m.outcome, ModuleOutcome::Verdict(_));
    writeln!(
        out,
        "{}",
        if ok {
            "ok"
        } else {
            "FAIL the sample evaluation failed"
        }
    )?;
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Latency percentiles of one series, in microseconds.
#[derive(Debug, Clone, Copy)]
pub struct Percentiles {
    pub p50_us: f64,
    pub p99_us: f64,
}

pub fn percentiles(samples: &mut [f64]) -> Percentiles {
    samples.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| {
        if samples.is_empty() {
            return 0.0;
        }
        samples[((samples.len() - 1) as f64 * q).round() as usize]
    };
    Percentiles {
        p50_us: at(0.50),
        p99_us: at(0.99),
    }
}

/// `policy bench`.
pub fn bench(
    engine: &PolicyEngine,
    modules: &[PathBuf],
    configs: &[PathBuf],
    cases: Option<&Path>,
    iterations: u32,
    threads: u32,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let (specs, requests) = match cases {
        Some(path) => {
            if !modules.is_empty() {
                anyhow::bail!("give either modules or --cases, not both");
            }
            let file = CaseFile::read(path)?;
            let specs = file.specs(path.parent().unwrap_or(Path::new(".")))?;
            let requests = (file.cases.iter().enumerate())
                .map(|(i, c)| file.request(c, i))
                .collect::<anyhow::Result<Vec<_>>>()?;
            (specs, requests)
        }
        None => {
            if modules.is_empty() {
                anyhow::bail!("name at least one module, or --cases FILE");
            }
            if !configs.is_empty() && configs.len() != modules.len() {
                anyhow::bail!(
                    "give one --config per module ({} modules, {} configs)",
                    modules.len(),
                    configs.len()
                );
            }
            let specs = modules
                .iter()
                .enumerate()
                .map(|(i, m)| {
                    Ok(ModuleSpec::from_path(
                        &name_of(m),
                        m,
                        &read_config(configs.get(i).map(|p| p.as_path()))?,
                    ))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            (specs, vec![sample_request()])
        }
    };
    let requests = if requests.is_empty() {
        vec![sample_request()]
    } else {
        requests
    };
    let chain = Arc::new(engine.load_chain(&specs)?);
    for request in requests.iter().cycle().take(200) {
        chain.evaluate(request);
    }

    let started = Instant::now();
    let results: Vec<(Vec<f64>, Vec<Vec<f64>>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads.max(1))
            .map(|_| {
                let chain = chain.clone();
                let requests = &requests;
                let n_modules = specs.len();
                s.spawn(move || {
                    let mut total = Vec::with_capacity(iterations as usize);
                    let mut per_module = vec![Vec::with_capacity(iterations as usize); n_modules];
                    for request in requests.iter().cycle().take(iterations as usize) {
                        let t = Instant::now();
                        let report = chain.evaluate(request);
                        total.push(t.elapsed().as_secs_f64() * 1e6);
                        for (i, m) in report.modules.iter().enumerate() {
                            per_module[i].push(m.elapsed_us as f64);
                        }
                    }
                    (total, per_module)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("bench thread"))
            .collect()
    });
    let wall = started.elapsed();
    let mut total: Vec<f64> = results.iter().flat_map(|r| r.0.iter().copied()).collect();
    let decisions = total.len();
    writeln!(out, "{:<28} {:>10} {:>10}", "", "p50 µs", "p99 µs")?;
    for (i, spec) in specs.iter().enumerate() {
        let mut samples: Vec<f64> = results
            .iter()
            .flat_map(|r| r.1[i].iter().copied())
            .collect();
        let p = percentiles(&mut samples);
        writeln!(
            out,
            "{:<28} {:>10.1} {:>10.1}",
            format!("module {}", spec.name),
            p.p50_us,
            p.p99_us
        )?;
    }
    let p = percentiles(&mut total);
    writeln!(
        out,
        "{:<28} {:>10.1} {:>10.1}",
        format!("chain ({} modules)", specs.len()),
        p.p50_us,
        p.p99_us
    )?;
    writeln!(
        out,
        "{decisions} decisions on {} thread(s) in {:.2} s: {:.0} decisions/s{}",
        threads.max(1),
        wall.as_secs_f64(),
        decisions as f64 / wall.as_secs_f64(),
        if engine.uses_pooling_allocator() {
            ""
        } else {
            " (pooling allocator unavailable)"
        }
    )?;
    Ok(ExitCode::SUCCESS)
}
