//! The progress post's text: queue position, or Codex at work — elapsed time, steps done, the
//! current step, the plan as a checklist and the tail of the text Codex is writing.

use std::time::Duration;

use super::{clock, one_line, plural, quote};

/// What a progress post shows.
#[derive(Debug, Clone, Default)]
pub struct Progress<'a> {
    pub project: &'a str,
    pub elapsed: Duration,
    pub step: Option<String>,
    pub steps_done: usize,
    pub queue_position: Option<usize>,
    /// Codex's plan, as a checklist.
    pub plan: Vec<PlanItem>,
    /// What Codex is writing right now (the agent message as it streams).
    pub streaming: Option<String>,
}

/// One step of Codex's plan.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanItem {
    pub step: String,
    pub done: bool,
    pub active: bool,
}

/// The streamed text a progress post shows: its tail, so the newest words are in view.
const STREAM_TAIL_CHARS: usize = 600;

pub fn progress(p: &Progress) -> String {
    if let Some(pos) = p.queue_position {
        return format!(
            ":hourglass: **Queued** · position {pos} · `{}`\nCodex starts when a slot is free. Cancel with `/codex cancel` in this thread.",
            p.project
        );
    }
    let mut s = format!(
        ":hourglass_flowing_sand: **Working** · `{}` · {}",
        p.project,
        clock(p.elapsed)
    );
    if p.steps_done > 0 {
        s.push_str(&format!(
            " · {} step{} done",
            p.steps_done,
            plural(p.steps_done)
        ));
    }
    match &p.step {
        Some(step) => s.push_str(&format!("\n{step}")),
        None => s.push_str("\nThinking…"),
    }
    for item in &p.plan {
        let mark = if item.done { "x" } else { " " };
        let step = one_line(&item.step, 120);
        if item.active {
            s.push_str(&format!("\n- [{mark}] **{step}**"));
        } else {
            s.push_str(&format!("\n- [{mark}] {step}"));
        }
    }
    if let Some(text) = p
        .streaming
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        let n = text.chars().count();
        let tail: String = text
            .chars()
            .skip(n.saturating_sub(STREAM_TAIL_CHARS))
            .collect();
        let lead = if n > STREAM_TAIL_CHARS { "…" } else { "" };
        s.push_str(&format!("\n{}", quote(&format!("{lead}{tail}"))));
    }
    s
}
