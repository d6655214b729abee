//! Driving one admitted run: its thread, the queue wait, then Codex (through `runner`), with the
//! progress post edited as it goes, to exactly one call of `conclude`.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::outcome::Finish;
use super::progress::progress_props;
use super::{Placement, Plan, Run};
use crate::buttons::ButtonAction;
use crate::model::{RunMode, RunStatus};
use crate::runner::isolation::RunSpace;
use crate::runner::session::Session;
use crate::runner::{self, Admission, Ending, Invocation, RunState, SpawnError};
use crate::state::{ActiveRun, Host};

impl Host {
    /// Takes one accepted run to its single outcome.
    pub(super) async fn drive(
        self: Arc<Self>,
        plan: Plan,
        mut admission: Admission,
        active: Arc<ActiveRun>,
    ) -> RunStatus {
        let run_id = plan.run_id.clone();
        let status = self.drive_inner(plan, &mut admission, active).await;
        self.active.lock().unwrap().remove(&run_id);
        self.scheduler.finish(&run_id);
        info!(status = status.as_str(), "run ended");
        status
    }

    async fn drive_inner(
        &self,
        plan: Plan,
        admission: &mut Admission,
        active: Arc<ActiveRun>,
    ) -> RunStatus {
        let redactor = self.redactor();
        // 1. The thread and its progress post.
        let root_id = match &plan.placement {
            Placement::Thread { root_id } => root_id.clone(),
            Placement::NewRoot => match self.start_thread(&plan, &active).await {
                Some(r) => r,
                None => return RunStatus::Failed,
            },
        };
        let cancel_button = self.buttons(
            &plan.run_id,
            &[ButtonAction::Cancel],
            plan.timeout.as_secs() as i64 + 24 * 3600,
        );
        let position = *admission.position.borrow();
        let progress_id = self
            .open_progress(&plan, &root_id, position, &cancel_button)
            .await;

        // 2. Wait for a slot, showing the queue position.
        self.wait_for_slot(
            &plan,
            progress_id.as_deref(),
            &cancel_button,
            admission,
            &active,
        )
        .await;
        let run = Run {
            plan,
            root_id,
            progress_id,
            active,
            started: Instant::now(),
        };
        if run.active.cancel.is_cancelled() {
            return self.conclude(&run, Finish::ended(Ending::Cancelled)).await;
        }
        *run.active.started.lock().unwrap() = Some(run.started);

        // 3. The prompt, with what others said in the thread before it was accepted.
        let plan = &run.plan;
        let thread = self.store.thread(&run.root_id).ok().flatten();
        let resume = thread.as_ref().and_then(|t| t.codex_thread_id.clone());
        let mode = match (&plan.placement, &resume) {
            (_, Some(_)) => RunMode::Resume,
            (Placement::Thread { .. }, None) if thread.as_ref().is_some_and(|t| !t.bot_started) => {
                RunMode::Bind
            }
            _ => RunMode::New,
        };
        let snapshot = self.snapshot();
        let _ = self.store.mark_running(&plan.run_id, mode);
        // The transcript was frozen when the prompt was accepted (and judged with it).
        let prompt = match &plan.context {
            Some(ctx) => format!(
                "{}\n\n---\nRequest from @{} in Mattermost:\n{}",
                ctx.text, plan.user.username, plan.prompt
            ),
            None => plan.prompt.clone(),
        };
        info!(mode = mode.as_str(), resume = ?resume, sandbox = plan.sandbox.as_str(), model = ?plan.model, timeout_secs = plan.timeout.as_secs(), "starting codex");

        // 4. Run Codex, editing the progress post as it goes.
        let Some(cfg) = snapshot.config.clone() else {
            return self
                .conclude(
                    &run,
                    Finish::failed("the host lost its configuration".into()),
                )
                .await;
        };
        let images = self.fetch_images(plan, &run.root_id).await;
        let admin_home = Some(cfg.settings.codex_home.clone())
            .filter(|h| !h.is_empty())
            .map(PathBuf::from);
        let tree = match self.run_worktree(&cfg, plan, &run.root_id).await {
            Ok(t) => t,
            Err(failure) => return self.conclude(&run, Finish::failed(failure)).await,
        };
        let repo = tree
            .as_ref()
            .map_or(&plan.project.repo, |t| &t.worktree.path);
        let mut read_only: Vec<PathBuf> = images.iter().map(|i| i.dir().to_path_buf()).collect();
        read_only.extend(tree.iter().flat_map(|t| t.sandbox.read_only.clone()));
        let space = RunSpace {
            repo,
            thread_key: if run.root_id.is_empty() {
                &plan.run_id
            } else {
                &run.root_id
            },
            admin_codex_home: admin_home.as_deref(),
            read_only: &read_only,
            writable: tree.as_ref().map_or(&[], |t| &t.sandbox.writable),
            pass_env: &cfg.codex_env,
            resume: resume.as_deref(),
        };
        let launch = match snapshot.isolation.launch(&cfg.settings.codex_path, &space) {
            Ok(l) => l,
            Err(e) => {
                let failure = match e.kind() {
                    std::io::ErrorKind::NotFound => {
                        SpawnError::NotFound(cfg.settings.codex_path.clone()).to_string()
                    }
                    _ => format!("the run's sandbox could not be prepared: {e}"),
                };
                warn!(error = %failure, "codex could not start");
                return self.conclude(&run, Finish::failed(failure)).await;
            }
        };
        let inv = Invocation {
            launch,
            repo: repo.clone(),
            sandbox: plan.sandbox,
            model: plan.model.clone(),
            overrides: [
                cfg.codex_overrides.clone(),
                tree.map_or(vec![], |t| t.codex_overrides(plan.sandbox)),
            ]
            .concat(),
            resume: resume.clone(),
            prompt,
            images: images.as_ref().map(|i| i.paths.clone()).unwrap_or_default(),
        };
        debug!(args = %redactor.redact(&inv.describe()), "codex invocation");
        let state = Mutex::new(RunState::default());
        let ticker_stop = CancellationToken::new();
        let running_props = progress_props(&plan.run_id, RunStatus::Running, cancel_button);
        let ticker = async {
            if let Some(pid) = &run.progress_id {
                self.tick_progress(&run, pid, &state, &running_props, &ticker_stop)
                    .await;
            }
        };
        // Codex's requests are answered one at a time (it waits for each) until the turn ends.
        let (asks_tx, asks_rx) = tokio::sync::mpsc::unbounded_channel();
        let asks = self.answer_requests(&run, asks_rx, &ticker_stop);
        let codex = async {
            let on_spawn = |pgid| {
                let _ = self.store.set_pgid(&plan.run_id, pgid);
            };
            let on_session = |session: Session| {
                *run.active.session.lock().unwrap() = Some(session);
            };
            let on_event = |ev: runner::events::Event| {
                match &ev {
                    runner::events::Event::ThreadStarted { thread_id } if resume.is_none() => {
                        let _ = self.store.set_codex_thread(&run.root_id, thread_id);
                    }
                    runner::events::Event::Resolved(id) => {
                        self.request_resolved(&plan.run_id, id);
                        run.active.close_question(id);
                    }
                    // File-change requests name their item: its paths and diffs come first.
                    runner::events::Event::Ask { .. }
                    | runner::events::Event::ItemStarted(runner::events::Item {
                        kind: runner::events::ItemKind::FileChange { .. },
                        ..
                    }) => {
                        let _ = asks_tx.send(ev.clone());
                    }
                    _ => {}
                }
                state.lock().unwrap().apply(&ev, &redactor);
            };
            let r = runner::session::run(
                &inv,
                &run.active.cancel,
                plan.timeout,
                on_spawn,
                on_session,
                on_event,
            )
            .await;
            run.active.session.lock().unwrap().take();
            ticker_stop.cancel();
            r
        };
        let (result, (), ()) = tokio::join!(codex, ticker, asks);
        let final_state = state.lock().unwrap().clone();
        let finish = match result {
            Ok(fin) => Finish {
                ending: fin.ending,
                state: final_state,
                stderr_tail: fin.stderr_tail,
            },
            Err(e) => {
                let msg = e.to_string();
                if let SpawnError::NotFound(_) | SpawnError::NoRepo(_) = e {
                    warn!(error = %msg, "codex could not start");
                }
                Finish {
                    ending: Ending::Exited(None),
                    state: RunState {
                        failure: Some(msg),
                        ..final_state
                    },
                    stderr_tail: String::new(),
                }
            }
        };
        self.conclude(&run, finish).await
    }
}
