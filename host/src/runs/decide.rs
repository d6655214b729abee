//! Asking the policy chain, with the full ruling audited. The evaluation itself runs off the
//! async workers (`gate::Evaluator`).

use serde_json::json;

use crate::config::{Config, Project};
use crate::gate::{Action, GateRequest, Ruling};
use crate::protocol::{Channel, User};
use crate::state::{new_id, Host};

/// One question to the policy: who wants to do what, where, with which prompt and context.
#[derive(Clone)]
pub(crate) struct Ask<'a> {
    pub user: &'a User,
    pub channel: &'a Channel,
    pub action: Action,
    pub prompt: &'a str,
    pub project: Option<&'a Project>,
    pub root_id: &'a str,
    /// The run the question is about; a fresh request id is made when there is none.
    pub run_id: Option<&'a str>,
    pub attachments: u32,
    /// The frozen thread transcript Codex would receive.
    pub context: Option<&'a str>,
}

impl<'a> Ask<'a> {
    /// `user` asking for `action` in `channel`, with nothing else said.
    pub fn new(user: &'a User, channel: &'a Channel, action: Action) -> Ask<'a> {
        Ask {
            user,
            channel,
            action,
            prompt: "",
            project: None,
            root_id: "",
            run_id: None,
            attachments: 0,
            context: None,
        }
    }
}

impl Host {
    /// Asks the gate and audits the full ruling (`decision`).
    pub(crate) async fn decide(&self, cfg: &Config, ask: Ask<'_>) -> Ruling {
        let request_id = ask.run_id.map(String::from).unwrap_or_else(new_id);
        let req = GateRequest {
            request_id: request_id.clone(),
            user: ask.user.clone(),
            channel: ask.channel.clone(),
            action: ask.action.clone(),
            prompt: ask.prompt.to_string(),
            project: ask.project.map(|p| (p.name.clone(), p.repo.clone())),
            sandbox: ask
                .project
                .and_then(|p| p.sandbox)
                .unwrap_or(cfg.default_sandbox),
            root_id: ask.root_id.to_string(),
            attachments: ask.attachments,
            context: ask.context.map(String::from),
        };
        let ruling = self.policy.decide(req).await;
        let _ = self.store.audit(
            "decision",
            ask.run_id,
            &ask.user.id,
            &ask.channel.id,
            &json!({"request_id": request_id, "decision": ruling.decision.name(), "action": format!("{:?}", ask.action), "project": ask.project.map(|p| &p.name), "rules": ruling.rules, "report": self.redactor().redact_json(&ruling.report)}),
        );
        ruling
    }

    /// Whether the policy chain would let `author` continue here: a label for the transcript,
    /// audited, never enforced. Anything but an allow (a deny, an approval, a failing module)
    /// counts as not allowed.
    pub(crate) async fn author_allowed(&self, cfg: &Config, author: &User, ask: &Ask<'_>) -> bool {
        let request_id = new_id();
        let req = GateRequest {
            request_id: request_id.clone(),
            user: author.clone(),
            channel: ask.channel.clone(),
            action: Action::Continue,
            prompt: String::new(),
            project: ask.project.map(|p| (p.name.clone(), p.repo.clone())),
            sandbox: ask
                .project
                .and_then(|p| p.sandbox)
                .unwrap_or(cfg.default_sandbox),
            root_id: ask.root_id.to_string(),
            attachments: 0,
            context: None,
        };
        let ruling = self.policy.decide(req).await;
        let allowed = matches!(ruling.decision, crate::gate::Decision::Allow { .. });
        let _ = self.store.audit(
            "decision.context_author",
            ask.run_id,
            &author.id,
            &ask.channel.id,
            &json!({"request_id": request_id, "allowed": allowed, "rules": ruling.rules}),
        );
        allowed
    }
}
