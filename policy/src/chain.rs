//! A loaded chain: its modules in configured order and the evaluation of one request through
//! all of them, combined by `combine` (first deny wins, approvals merge, tightest limits, fail
//! closed). Loading a chain (`PolicyEngine::load_chain`) lives here too, so that `engine` knows
//! nothing of chains or modules.

use std::sync::Arc;
use std::time::Instant;

use crate::combine::combine;
use crate::engine::PolicyEngine;
use crate::error::LoadError;
use crate::module::{LoadedModule, ModuleSpec};
use crate::types::{
    ChainReport, FailureKind, FinalDecision, ModuleFailure, ModuleOutcome, ModuleReport,
    PolicyRequest,
};
use crate::world::Lowered;

/// An ordered, immutable set of loaded modules. Evaluate from any number of threads at once.
pub struct Chain {
    engine: PolicyEngine,
    modules: Vec<Arc<LoadedModule>>,
    /// Set when the chain stands for a configuration that failed to load and no earlier chain
    /// exists: every request is then denied naming the broken module.
    load_error: Option<LoadError>,
}

/// A module of a loaded chain, as reported by `/v1/health` and `policy check`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ModuleInfo {
    pub name: String,
    pub hash: String,
    pub monitor: bool,
    /// The policy world version the module was built for, e.g. `0.2.0`.
    pub world: String,
}

impl PolicyEngine {
    /// Loads, checks and compiles every module of `specs`, runs their `validate-config`, and
    /// returns the chain. The first module that fails stops the load.
    pub fn load_chain(&self, specs: &[ModuleSpec]) -> Result<Chain, LoadError> {
        let mut modules = Vec::with_capacity(specs.len());
        for spec in specs {
            if modules.iter().any(|m: &LoadedModule| m.name == spec.name) {
                return Err(LoadError::DuplicateName {
                    name: spec.name.clone(),
                });
            }
            modules.push(LoadedModule::load(self, spec)?);
        }
        Ok(Chain::new(self.clone(), modules))
    }
}

impl Chain {
    fn new(engine: PolicyEngine, modules: Vec<LoadedModule>) -> Chain {
        let modules: Vec<Arc<LoadedModule>> = modules.into_iter().map(Arc::new).collect();
        for module in &modules {
            module.queue_top_up(&engine);
        }
        Chain {
            engine,
            modules,
            load_error: None,
        }
    }

    /// A chain that denies everything because its configuration failed to load.
    pub fn failed(engine: PolicyEngine, error: LoadError) -> Chain {
        Chain {
            engine,
            modules: Vec::new(),
            load_error: Some(error),
        }
    }

    /// The modules, in chain order.
    pub fn modules(&self) -> Vec<ModuleInfo> {
        self.modules
            .iter()
            .map(|m| ModuleInfo {
                name: m.name.clone(),
                hash: m.hash.clone(),
                monitor: m.monitor,
                world: m.version().as_str().to_owned(),
            })
            .collect()
    }

    /// The load error this chain stands for, if it is a failed chain.
    pub fn load_error(&self) -> Option<&LoadError> {
        self.load_error.as_ref()
    }

    /// Runs every module on `request` and combines their verdicts.
    pub fn evaluate(&self, request: &PolicyRequest) -> ChainReport {
        let started = Instant::now();
        if let Some(error) = &self.load_error {
            let module = error.module().to_owned();
            return ChainReport {
                request_id: request.request_id.clone(),
                decision: FinalDecision::Deny {
                    reason: format!(
                        "The policy chain failed to load, so nothing is allowed until an admin \
                         fixes it: {error}"
                    ),
                    module: Some(module.clone()),
                },
                rule_ids: Vec::new(),
                monitor_decision: None,
                modules: vec![ModuleReport {
                    name: module,
                    hash: String::new(),
                    monitor: false,
                    outcome: ModuleOutcome::Failed(ModuleFailure {
                        kind: FailureKind::Load,
                        message: error.to_string(),
                    }),
                    elapsed_us: 0,
                    logs: Vec::new(),
                    logs_dropped: 0,
                }],
                elapsed_us: started.elapsed().as_micros() as u64,
            };
        }
        let wit_request = Lowered::new(request);
        // One guard for the whole chain: the epoch ticker runs while any module does.
        let ticking = self.engine.tick_guard();
        let modules: Vec<ModuleReport> = self
            .modules
            .iter()
            .map(|m| m.evaluate(&self.engine, &wit_request, &ticking))
            .collect();
        drop(ticking);
        let (decision, rule_ids) = combine(&modules, false);
        let monitor_decision = modules
            .iter()
            .any(|m| m.monitor)
            .then(|| combine(&modules, true).0);
        ChainReport {
            request_id: request.request_id.clone(),
            decision,
            rule_ids,
            monitor_decision,
            modules,
            elapsed_us: started.elapsed().as_micros() as u64,
        }
    }
}

impl std::fmt::Debug for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chain")
            .field("modules", &self.modules())
            .field("load_error", &self.load_error)
            .finish()
    }
}
