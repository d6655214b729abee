//! `/codex cancel`: stops the person's latest run in the channel, or the run of the thread it is
//! typed in. Only the requester or a system admin may.

use std::sync::Arc;

use serde_json::json;

use crate::protocol::{CommandRequest, CommandResponse};
use crate::state::{ActiveRun, Host, StopReason};

impl Host {
    pub(super) fn cmd_cancel(&self, req: &CommandRequest) -> CommandResponse {
        let target = {
            let active = self.active.lock().unwrap();
            let mut candidates: Vec<(&String, &Arc<ActiveRun>)> = active
                .iter()
                .filter(|(_, r)| r.channel_id == req.channel.id)
                .filter(|(_, r)| {
                    if req.root_id.is_empty() {
                        r.user_id == req.user.id
                    } else {
                        *r.root_id.lock().unwrap() == req.root_id
                    }
                })
                .collect();
            candidates.sort_by_key(|(_, r)| r.admitted);
            candidates
                .last()
                .map(|(id, r)| ((*id).clone(), (*r).clone()))
        };
        let Some((run_id, run)) = target else {
            return CommandResponse::ephemeral(if req.root_id.is_empty() {
                "You have no running or queued Codex run in this channel. To cancel someone else's, use `/codex cancel` inside its thread."
            } else {
                "Nothing is running or queued in this thread."
            });
        };
        if run.user_id != req.user.id && !req.user.is_system_admin() {
            return CommandResponse::ephemeral(format!(
                "Only @{} (who started it) or a system admin can cancel this run.",
                run.username
            ));
        }
        self.stop(
            &run_id,
            &run,
            StopReason::Cancelled {
                by: req.user.username.clone(),
            },
        );
        let _ = self.store.audit(
            "run.cancel",
            Some(&run_id),
            &req.user.id,
            &req.channel.id,
            &json!({"by": req.user.username}),
        );
        CommandResponse::ephemeral("Cancelling. The thread will show when Codex has stopped.")
    }
}
