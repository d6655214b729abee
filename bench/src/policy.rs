//! The policy section: the example chain (allowlist → readonly-public → approval-for-risky) run by
//! the engine the host embeds, a fresh component instance per module per evaluation, against the
//! same rules written for Cedar and evaluated by the `cedar-policy` crate, in the same process on
//! the same requests. Before anything is timed, every request of the workload is decided by both
//! and the decisions must agree; a disagreement stops the benchmark.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use cedar_policy::{
    Authorizer, Context, Decision, Entities, Entity, EntityUid, PolicyId, PolicySet, Request,
    RestrictedExpression,
};
use codex_policy::{
    Chain, ChannelKind, EngineOptions, FinalDecision, ModuleSpec, PolicyEngine, PolicyRequest,
    SandboxMode,
};
use serde_json::json;

use crate::results::{median, quantile, Figure, Section};
use crate::Common;

/// The three example modules and the configuration the chain runs them with.
fn module_specs(dir: &Path) -> anyhow::Result<Vec<ModuleSpec>> {
    let modules = [
        (
            "allowlist",
            json!({"users": ["u-alice", "u-bob", "u-carol"]}),
        ),
        ("readonly-public", json!({})),
        (
            "approval-for-risky",
            json!({
                "patterns": ["(?i)\\bdeploy\\b", "(?i)rm -rf", "(?i)\\bprod(uction)?\\b"],
                "sandboxes": ["danger-full-access"],
                "approvers": ["bob", "carol"],
            }),
        ),
    ];
    built_specs(dir, &modules)
}

/// The specs of example modules built into `dir` (`make policies`), each with its configuration.
pub fn built_specs(
    dir: &Path,
    modules: &[(&str, serde_json::Value)],
) -> anyhow::Result<Vec<ModuleSpec>> {
    modules
        .iter()
        .map(|(name, config)| {
            let path = dir.join(format!("{name}.wasm"));
            if !path.is_file() {
                bail!(
                    "{} is missing: build the example policies with `make policies`",
                    path.display()
                );
            }
            Ok(ModuleSpec::from_path(name, path, &config.to_string()))
        })
        .collect()
}

/// The same three rules for Cedar. Cedar answers permit/deny; the sandbox limit and the approval
/// are read from which policies determined the permit (`public-read-only`, `needs-approval`), the
/// usual way to carry obligations out of Cedar. Cedar has no regular expressions: the risky
/// patterns become `like` on the lower-cased prompt (the workload avoids words where `\b` would
/// make a difference, and the agreement check would catch one).
const CEDAR_POLICIES: &str = r#"
@id("allowlisted")
permit (principal, action == Action::"new", resource)
when { ["u-alice", "u-bob", "u-carol"].contains(principal.user_id) };

@id("public-read-only")
permit (principal, action == Action::"new", resource)
when { ["u-alice", "u-bob", "u-carol"].contains(principal.user_id) && resource.kind == "public" };

@id("needs-approval")
permit (principal, action == Action::"new", resource)
when {
  ["u-alice", "u-bob", "u-carol"].contains(principal.user_id) &&
  (context.prompt like "*deploy*" || context.prompt like "*rm -rf*" || context.prompt like "*prod*" ||
   context.sandbox == "danger-full-access")
};
"#;

/// What both engines decide, reduced to what the host enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Allow { read_only: bool },
    Approval,
    Deny,
}

fn chain_outcome(decision: &FinalDecision) -> Outcome {
    match decision {
        FinalDecision::Allow(limits) => Outcome::Allow {
            read_only: limits.sandbox == Some(SandboxMode::ReadOnly),
        },
        FinalDecision::RequireApproval { .. } => Outcome::Approval,
        FinalDecision::Deny { .. } => Outcome::Deny,
    }
}

struct Cedar {
    authorizer: Authorizer,
    policies: PolicySet,
    read_only: PolicyId,
    approval: PolicyId,
}

impl Cedar {
    fn new() -> anyhow::Result<Cedar> {
        let policies =
            PolicySet::from_str(CEDAR_POLICIES).context("the Cedar policies do not parse")?;
        let id_of = |rule: &str| {
            policies
                .policies()
                .find(|p| p.annotation("id") == Some(rule))
                .map(|p| p.id().clone())
                .with_context(|| format!("no Cedar policy has @id({rule:?})"))
        };
        Ok(Cedar {
            read_only: id_of("public-read-only")?,
            approval: id_of("needs-approval")?,
            authorizer: Authorizer::new(),
            policies,
        })
    }

    /// One decision, including turning the request into Cedar's entities and context (the wasm
    /// side pays for passing the request into the component, too).
    fn decide(&self, request: &PolicyRequest) -> Outcome {
        let (request, entities) = cedar_request(request).expect("the request converts to Cedar");
        let response = self
            .authorizer
            .is_authorized(&request, &self.policies, &entities);
        if response.decision() == Decision::Deny {
            return Outcome::Deny;
        }
        let reasons: HashSet<&PolicyId> = response.diagnostics().reason().collect();
        if reasons.contains(&self.approval) {
            Outcome::Approval
        } else {
            Outcome::Allow {
                read_only: reasons.contains(&self.read_only),
            }
        }
    }
}

fn cedar_request(r: &PolicyRequest) -> anyhow::Result<(Request, Entities)> {
    let user = EntityUid::from_type_name_and_id("User".parse()?, r.user.id.parse()?);
    let channel = EntityUid::from_type_name_and_id("Channel".parse()?, r.channel.id.parse()?);
    let action_name = r.action.as_str();
    let action = EntityUid::from_type_name_and_id("Action".parse()?, action_name.parse()?);
    let kind = match r.channel.kind {
        ChannelKind::Public => "public",
        ChannelKind::Private => "private",
        ChannelKind::Direct => "direct",
        ChannelKind::Group => "group",
    };
    let entities = Entities::from_entities(
        [
            Entity::new(
                user.clone(),
                HashMap::from([
                    (
                        "user_id".to_owned(),
                        RestrictedExpression::new_string(r.user.id.clone()),
                    ),
                    (
                        "roles".to_owned(),
                        RestrictedExpression::new_set(
                            r.user
                                .roles
                                .iter()
                                .map(|x| RestrictedExpression::new_string(x.clone())),
                        ),
                    ),
                ]),
                HashSet::new(),
            )?,
            Entity::new(
                channel.clone(),
                HashMap::from([
                    (
                        "kind".to_owned(),
                        RestrictedExpression::new_string(kind.to_owned()),
                    ),
                    (
                        "name".to_owned(),
                        RestrictedExpression::new_string(r.channel.name.clone()),
                    ),
                ]),
                HashSet::new(),
            )?,
        ],
        None,
    )?;
    let context = Context::from_pairs([
        (
            "prompt".to_owned(),
            RestrictedExpression::new_string(r.prompt.to_lowercase()),
        ),
        (
            "sandbox".to_owned(),
            RestrictedExpression::new_string(r.requested_sandbox.as_str().to_owned()),
        ),
    ])?;
    Ok((
        Request::new(user, action, channel, context, None)?,
        entities,
    ))
}

/// The workload: requests that exercise every rule of the chain, cycled through.
fn workload() -> Vec<PolicyRequest> {
    let cases = [
        (
            "alice",
            "public",
            "fix the flaky login test",
            "workspace-write",
        ),
        (
            "alice",
            "private",
            "fix the flaky login test",
            "workspace-write",
        ),
        (
            "bob",
            "private",
            "deploy the api to production",
            "workspace-write",
        ),
        (
            "carol",
            "private",
            "clean the build directory",
            "danger-full-access",
        ),
        (
            "dave",
            "public",
            "fix the flaky login test",
            "workspace-write",
        ),
        (
            "alice",
            "public",
            "explain why rm -rf target is slow",
            "workspace-write",
        ),
        (
            "bob",
            "public",
            "add a unit test for the parser",
            "read-only",
        ),
        (
            "mallory",
            "private",
            "deploy everything",
            "danger-full-access",
        ),
    ];
    cases
        .iter()
        .enumerate()
        .map(|(i, (user, kind, prompt, sandbox))| {
            serde_json::from_value(json!({
                "request_id": format!("bench-{i}"),
                "user": {"id": format!("u-{user}"), "username": user, "roles": ["system_user"]},
                "channel": {"id": format!("c-{kind}"), "name": format!("{kind}-dev"),
                            "team": {"id": "t-eng", "name": "eng"}, "kind": kind},
                "action": "new",
                "prompt": prompt,
                "project": {"name": "api", "repo_path": "/srv/api"},
                "requested_sandbox": sandbox,
                "time_unix_ms": 1_780_000_000_000i64,
            }))
            .expect("workload requests match PolicyRequest")
        })
        .collect()
}

/// One timed pass: `threads` threads each deciding `per_thread` requests back to back.
/// Returns the per-decision latencies (µs) and the decisions per second over the wall time.
fn closed_loop(
    threads: usize,
    per_thread: usize,
    requests: &[PolicyRequest],
    decide: &(dyn Fn(&PolicyRequest) + Sync),
) -> (Vec<f64>, f64) {
    let started = Instant::now();
    let samples: Vec<Vec<f64>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    let mut samples = Vec::with_capacity(per_thread);
                    for request in requests.iter().cycle().skip(t).take(per_thread) {
                        let start = Instant::now();
                        decide(request);
                        samples.push(start.elapsed().as_secs_f64() * 1e6);
                    }
                    samples
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("bench thread"))
            .collect()
    });
    let wall = started.elapsed().as_secs_f64();
    let all: Vec<f64> = samples.into_iter().flatten().collect();
    let rate = all.len() as f64 / wall;
    (all, rate)
}

/// One paced pass on one thread: a decision every `interval`, as requests arrive in a host that
/// is not saturated (this is where ready instances can help).
fn paced(
    count: usize,
    interval: Duration,
    requests: &[PolicyRequest],
    decide: &dyn Fn(&PolicyRequest),
) -> Vec<f64> {
    let start = Instant::now();
    let mut samples = Vec::with_capacity(count);
    for (i, request) in requests.iter().cycle().take(count).enumerate() {
        let due = start + interval * i as u32;
        while Instant::now() < due {
            std::thread::sleep(
                due.saturating_duration_since(Instant::now())
                    .min(Duration::from_micros(200)),
            );
        }
        let t = Instant::now();
        decide(request);
        samples.push(t.elapsed().as_secs_f64() * 1e6);
    }
    samples
}

/// Per-round p50, p99 and throughput of one contender.
#[derive(Default, Clone)]
struct Series {
    p50: Vec<f64>,
    p99: Vec<f64>,
    rate: Vec<f64>,
}

impl Series {
    fn push(&mut self, samples: &[f64], rate: f64) {
        self.p50.push(quantile(samples, 0.50));
        self.p99.push(quantile(samples, 0.99));
        self.rate.push(rate);
    }
}

pub fn run(common: &Common, policy_dir: &Path) -> anyhow::Result<()> {
    let (rounds, per_thread) = if common.quick { (1, 300) } else { (7, 6000) };
    let specs = module_specs(policy_dir)?;
    let requests = workload();
    let cedar = Cedar::new()?;

    // Both engines must decide every request alike before either is timed.
    let engine = PolicyEngine::new(EngineOptions::default())?;
    if !engine.uses_pooling_allocator() {
        eprintln!("warning: the pooling allocator is unavailable here; the figures will be slower");
    }
    let chain = engine.load_chain(&specs)?;
    let mut kinds = HashSet::new();
    for request in &requests {
        let wasm = chain_outcome(&chain.evaluate(request).decision);
        let cedar = cedar.decide(request);
        if wasm != cedar {
            bail!(
                "the chain and Cedar disagree on {}: {wasm:?} vs {cedar:?}",
                request.request_id
            );
        }
        kinds.insert(format!("{wasm:?}"));
    }
    eprintln!(
        "policy: the chain and Cedar agree on all {} requests ({} kinds of outcome)",
        requests.len(),
        kinds.len()
    );

    let prewarmed_engine = PolicyEngine::new(EngineOptions {
        prewarm: 2,
        ..EngineOptions::default()
    })?;
    let prewarmed = prewarmed_engine.load_chain(&specs)?;
    let singles: Vec<(String, Chain)> = specs
        .iter()
        .map(|s| Ok((s.name.clone(), engine.load_chain(std::slice::from_ref(s))?)))
        .collect::<anyhow::Result<_>>()?;

    let wasm = |r: &PolicyRequest| {
        chain.evaluate(r);
    };
    let wasm_pre = |r: &PolicyRequest| {
        prewarmed.evaluate(r);
    };
    let cedar_fn = |r: &PolicyRequest| {
        cedar.decide(r);
    };
    // Warm-up: caches, branch predictors, the allocator's slots.
    for f in [
        &wasm as &(dyn Fn(&PolicyRequest) + Sync),
        &wasm_pre,
        &cedar_fn,
    ] {
        closed_loop(2, 500, &requests, f);
    }

    let mut chain1 = Series::default();
    let mut chain2 = Series::default();
    let mut cedar1 = Series::default();
    let mut cedar2 = Series::default();
    let mut pre1 = Series::default();
    let mut pre2 = Series::default();
    let mut ratio = Vec::new();
    let mut paced_plain = Series::default();
    let mut paced_pre = Series::default();
    let mut single: Vec<Series> = singles.iter().map(|_| Series::default()).collect();
    let paced_interval = Duration::from_micros(500);
    let paced_count = per_thread / 4;
    for round in 0..rounds {
        eprintln!("policy: round {}/{rounds}", round + 1);
        // Interleaved within the round so that a noisy moment hurts all contenders alike.
        let (s, r) = closed_loop(1, per_thread, &requests, &cedar_fn);
        cedar1.push(&s, r);
        let (s, r) = closed_loop(1, per_thread, &requests, &wasm);
        chain1.push(&s, r);
        ratio.push(chain1.p50[round] / cedar1.p50[round]);
        let (s, r) = closed_loop(1, per_thread, &requests, &wasm_pre);
        pre1.push(&s, r);
        let (s, r) = closed_loop(2, per_thread, &requests, &cedar_fn);
        cedar2.push(&s, r);
        let (s, r) = closed_loop(2, per_thread, &requests, &wasm);
        chain2.push(&s, r);
        let (s, r) = closed_loop(2, per_thread, &requests, &wasm_pre);
        pre2.push(&s, r);
        let s = paced(paced_count, paced_interval, &requests, &wasm);
        paced_plain.push(&s, 0.0);
        let s = paced(paced_count, paced_interval, &requests, &wasm_pre);
        paced_pre.push(&s, 0.0);
        for ((_, c), series) in singles.iter().zip(single.iter_mut()) {
            let (s, r) = closed_loop(1, per_thread, &requests, &|r: &PolicyRequest| {
                c.evaluate(r);
            });
            series.push(&s, r);
        }
    }

    let loads = load_times(&specs, rounds)?;
    let notes = explain(&Explain {
        ratio: median(&ratio),
        chain_p50: median(&chain1.p50),
        chain_p99: median(&chain1.p99),
        chain_p99_2: median(&chain2.p99),
        rate_2: median(&chain2.rate),
        prewarmed_p50: median(&pre1.p50),
        paced_p50: median(&paced_plain.p50),
        singles: singles
            .iter()
            .zip(&single)
            .map(|((n, _), s)| (n.clone(), median(&s.p50)))
            .collect(),
    });

    let mut figures = vec![
        Figure::new("chain p50 ÷ Cedar p50 (1 thread)", "×", ratio).target("<=", 2.0),
        Figure::new("chain of 3, 1 thread: p50", "µs", chain1.p50),
        Figure::new("chain of 3, 1 thread: p99", "µs", chain1.p99).target("<", 100.0),
        Figure::new(
            "chain of 3, 1 thread: throughput",
            "decisions/s",
            chain1.rate,
        ),
        Figure::new("chain of 3, 2 threads: p50", "µs", chain2.p50),
        Figure::new("chain of 3, 2 threads: p99", "µs", chain2.p99).target("<", 100.0),
        Figure::new(
            "chain of 3, 2 threads: throughput",
            "decisions/s",
            chain2.rate,
        )
        .target(">=", 20_000.0),
        Figure::new("Cedar, 1 thread: p50", "µs", cedar1.p50),
        Figure::new("Cedar, 1 thread: p99", "µs", cedar1.p99),
        Figure::new("Cedar, 1 thread: throughput", "decisions/s", cedar1.rate),
        Figure::new("Cedar, 2 threads: p50", "µs", cedar2.p50),
        Figure::new("Cedar, 2 threads: p99", "µs", cedar2.p99),
        Figure::new("Cedar, 2 threads: throughput", "decisions/s", cedar2.rate),
        Figure::new(
            "chain of 3, pre-instantiated (2 ready), 1 thread: p50",
            "µs",
            pre1.p50,
        ),
        Figure::new(
            "chain of 3, pre-instantiated (2 ready), 1 thread: p99",
            "µs",
            pre1.p99,
        ),
        Figure::new(
            "chain of 3, pre-instantiated (2 ready), 1 thread: throughput",
            "decisions/s",
            pre1.rate,
        ),
        Figure::new(
            "chain of 3, pre-instantiated (2 ready), 2 threads: p50",
            "µs",
            pre2.p50,
        ),
        Figure::new(
            "chain of 3, pre-instantiated (2 ready), 2 threads: p99",
            "µs",
            pre2.p99,
        ),
        Figure::new(
            "chain of 3, pre-instantiated (2 ready), 2 threads: throughput",
            "decisions/s",
            pre2.rate,
        ),
        Figure::new("chain of 3 at 2,000/s paced: p50", "µs", paced_plain.p50),
        Figure::new("chain of 3 at 2,000/s paced: p99", "µs", paced_plain.p99),
        Figure::new(
            "chain of 3, pre-instantiated, at 2,000/s paced: p50",
            "µs",
            paced_pre.p50,
        ),
        Figure::new(
            "chain of 3, pre-instantiated, at 2,000/s paced: p99",
            "µs",
            paced_pre.p99,
        ),
    ];
    for ((name, _), series) in singles.iter().zip(single.clone()) {
        figures.push(Figure::new(
            format!("module {name} alone, 1 thread: p50"),
            "µs",
            series.p50,
        ));
        figures.push(Figure::new(
            format!("module {name} alone, 1 thread: p99"),
            "µs",
            series.p99,
        ));
    }
    figures.extend([
        Figure::new("compile the 3 modules (empty cache)", "ms", loads.compile),
        Figure::new(
            "cold load of the 3 modules from the compile cache",
            "ms",
            loads.cold,
        ),
        Figure::new(
            "engine start (pooling allocator, ticker)",
            "ms",
            loads.engine_start,
        ),
        Figure::new("Cedar: parse the policy set", "ms", loads.cedar_parse),
    ]);

    Section {
        id: "policy".into(),
        title: "Policy engine vs Cedar".into(),
        method: format!(
            "The example chain `allowlist → readonly-public → approval-for-risky` (the modules \
             from `policies/`, built for wasm32-wasip2) run by `codex-policy` with wasmtime {}: \
             every evaluation makes a fresh store and instance per module from its `InstancePre` \
             (pooling allocator, 16 MiB memory cap, epoch deadline armed), passes the request in, \
             calls `evaluate` and combines the verdicts. Cedar: the same three rules as one \
             `cedar-policy` {} policy set, one `is_authorized` per decision, building the \
             entities and context from the request each time. {} requests cycled (allowed, \
             read-only in public channels, approval for risky prompts or the full-access sandbox, \
             denied users); both engines decide each of them identically before timing starts. \
             {rounds} rounds; in each round every contender decides {per_thread} requests per \
             thread back to back, interleaved. Paced: one thread, one decision every {} µs, {} \
             decisions. Loads: fresh engine and empty cache (compile), then a fresh engine on the \
             filled cache (cold load).",
            crate::report::locked_version("wasmtime"),
            crate::report::locked_version("cedar-policy"),
            requests.len(),
            paced_interval.as_micros(),
            paced_count,
        ),
        figures,
        notes,
    }
    .write(&common.results)
}

/// Load times per round, in ms.
#[derive(Default)]
struct LoadTimes {
    /// A fresh engine with an empty cache compiles the modules.
    compile: Vec<f64>,
    /// A fresh engine loads them from the filled cache.
    cold: Vec<f64>,
    /// Making the engine itself (pooling allocator, ticker).
    engine_start: Vec<f64>,
    /// Cedar parsing its policy set.
    cedar_parse: Vec<f64>,
}

fn load_times(specs: &[ModuleSpec], rounds: usize) -> anyhow::Result<LoadTimes> {
    let mut times = LoadTimes::default();
    let ms = |t: Instant| t.elapsed().as_secs_f64() * 1e3;
    for _ in 0..rounds.min(5) {
        let cache = tempfile::tempdir()?;
        let options = EngineOptions {
            cache_dir: Some(cache.path().to_owned()),
            ..EngineOptions::default()
        };
        let t = Instant::now();
        let engine = PolicyEngine::new(options.clone())?;
        times.engine_start.push(ms(t));
        let t = Instant::now();
        drop(engine.load_chain(specs)?);
        times.compile.push(ms(t));
        drop(engine);
        let engine = PolicyEngine::new(options)?;
        let t = Instant::now();
        drop(engine.load_chain(specs)?);
        times.cold.push(ms(t));
        let t = Instant::now();
        let set = PolicySet::from_str(CEDAR_POLICIES)?;
        times.cedar_parse.push(ms(t));
        drop(set);
    }
    Ok(times)
}

/// The medians the notes are written from.
struct Explain {
    ratio: f64,
    chain_p50: f64,
    chain_p99: f64,
    chain_p99_2: f64,
    rate_2: f64,
    prewarmed_p50: f64,
    paced_p50: f64,
    singles: Vec<(String, f64)>,
}

/// What a reader needs to interpret this run's figures, including why a target was missed.
fn explain(e: &Explain) -> Vec<String> {
    let mut notes = vec![
        "Cedar has no regular expressions: the patterns `\\bdeploy\\b`, `rm -rf` and \
         `\\bprod(uction)?\\b` are `like \"*deploy*\"` etc. on the lower-cased prompt, which is \
         slightly broader; the workload's decisions are checked to agree."
            .to_owned(),
    ];
    let singles = e
        .singles
        .iter()
        .map(|(name, p50)| format!("{name} {p50:.1} µs"))
        .collect::<Vec<_>>()
        .join(", ");
    let floor = e
        .singles
        .iter()
        .map(|(_, p50)| *p50)
        .fold(f64::INFINITY, f64::min);
    if e.ratio > 2.0 {
        notes.push(format!(
            "Target missed: the chain's p50 is {:.1}× Cedar's. Alone, the modules take {singles} \
             at p50, and the chain ({:.1} µs) costs about their sum. Every evaluation gets a \
             fresh instance of every module (the isolation the design asks for: nothing a module \
             saw survives into the next request), so each module pays instantiation, copying the \
             request in and its own setup each time: parsing its JSON configuration and, for \
             approval-for-risky, compiling its three regular expressions. The cheapest module \
             ({floor:.1} µs, it only reads the channel kind) is the per-module floor of the \
             sandbox. Cedar evaluates one pre-parsed policy set in the host's own memory, with no \
             isolation boundary to cross.",
            e.ratio, e.chain_p50
        ));
    }
    if e.chain_p99 >= 100.0 || e.chain_p99_2 >= 100.0 {
        notes.push(format!(
            "Target missed: the chain's p99 is {:.0} µs on 1 thread and {:.0} µs on 2. With 2 \
             threads on 2 cores, the benchmark threads share the CPUs with the engine's epoch \
             ticker and the rest of the machine, so the tail includes being descheduled.",
            e.chain_p99, e.chain_p99_2
        ));
    }
    if e.rate_2 < 20_000.0 {
        notes.push(format!(
            "Target missed: {:.0} decisions/s on 2 threads. Throughput is bounded by the per-decision \
             cost above: each decision of the chain makes three instances.",
            e.rate_2
        ));
    }
    if e.prewarmed_p50 > e.chain_p50 {
        notes.push(format!(
            "Ready (pre-instantiated) instances did not help on this machine: p50 {:.1} µs with \
             them against {:.1} µs without. Back-to-back requests empty the ready pool, and the \
             thread that refills it competes with the requests for the same 2 cores. This is why \
             the host ships with `prewarm` 0.",
            e.prewarmed_p50, e.chain_p50
        ));
    }
    if e.paced_p50 > e.chain_p50 {
        notes.push(format!(
            "Paced decisions (one every 500 µs) are slower than back-to-back ones (p50 {:.1} vs \
             {:.1} µs): between requests the CPU's caches and branch predictors go cold.",
            e.paced_p50, e.chain_p50
        ));
    }
    notes
}
