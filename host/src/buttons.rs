//! Signed button contexts: every interactive button the host posts carries its action, run id,
//! issue and expiry times and a nonce, bound together by an HMAC-SHA256 under a key only the host
//! knows. A click is honoured only if the signature holds, it has not expired, and its nonce was
//! never used. Pure: the key comes in, the store of used nonces is the caller's.

use std::path::Path;

use anyhow::{Context, Result};
use hmac::{Hmac, Mac};
use serde_json::{json, Map, Value};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// What a button does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ButtonAction {
    Cancel,
    Retry,
    Approve,
    /// Approve a command (or file change) and the same again for the rest of the Codex thread.
    ApproveSession,
    Deny,
    /// Ask the approvers of access requests to add oneself to Allowed users.
    RequestAccess,
}

impl ButtonAction {
    pub fn as_str(self) -> &'static str {
        match self {
            ButtonAction::Cancel => "cancel",
            ButtonAction::Retry => "retry",
            ButtonAction::Approve => "approve",
            ButtonAction::ApproveSession => "approve_session",
            ButtonAction::Deny => "deny",
            ButtonAction::RequestAccess => "request_access",
        }
    }

    /// The button's id in the attachment. Mattermost routes clicks through
    /// `/api/v4/posts/{post_id}/actions/{action_id:[A-Za-z0-9]+}`: an id with `_` never reaches
    /// the plugin, so ids are the action's name without underscores.
    pub fn id(self) -> String {
        self.as_str().replace('_', "")
    }

    fn parse(s: &str) -> Option<ButtonAction> {
        Some(match s {
            "cancel" => ButtonAction::Cancel,
            "retry" => ButtonAction::Retry,
            "approve" => ButtonAction::Approve,
            "approve_session" => ButtonAction::ApproveSession,
            "deny" => ButtonAction::Deny,
            "request_access" => ButtonAction::RequestAccess,
            _ => return None,
        })
    }

    fn label(self) -> (&'static str, &'static str) {
        match self {
            ButtonAction::Cancel => ("Cancel", "danger"),
            ButtonAction::Retry => ("Retry", "primary"),
            ButtonAction::Approve => ("Approve", "success"),
            ButtonAction::ApproveSession => ("Approve for this session", "primary"),
            ButtonAction::Deny => ("Deny", "danger"),
            ButtonAction::RequestAccess => ("Request access", "primary"),
        }
    }
}

/// A verified click.
#[derive(Debug, Clone, PartialEq)]
pub struct Click {
    pub action: ButtonAction,
    pub run_id: String,
    pub nonce: String,
}

/// Why a click was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Refusal {
    #[error("this button is not valid (its signature does not match); it may have been altered")]
    BadSignature,
    #[error("this button is malformed")]
    Malformed,
    #[error("this button has expired")]
    Expired,
}

impl Refusal {
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::BadSignature => "forged",
            Refusal::Malformed => "malformed",
            Refusal::Expired => "expired",
        }
    }
}

pub struct Signer {
    key: Vec<u8>,
}

impl Signer {
    pub fn new(key: Vec<u8>) -> Signer {
        Signer { key }
    }

    /// The key kept in `<state dir>/button.key` (mode 0600), created on first use.
    pub fn from_state_dir(dir: &Path) -> Result<Signer> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let path = dir.join("button.key");
        if let Ok(key) = std::fs::read(&path) {
            if key.len() >= 32 {
                return Ok(Signer::new(key));
            }
        }
        let key: Vec<u8> = (0..32).map(|_| rand::random::<u8>()).collect();
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("creating the button key {}", path.display()))?;
        f.write_all(&key)?;
        Ok(Signer::new(key))
    }

    pub fn random() -> Signer {
        Signer::new((0..32).map(|_| rand::random::<u8>()).collect())
    }

    fn mac(&self, action: &str, run_id: &str, iat: i64, exp: i64, nonce: &str) -> String {
        let mut m = HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key length");
        m.update(format!("v1|{action}|{run_id}|{iat}|{exp}|{nonce}").as_bytes());
        hex(&m.finalize().into_bytes())
    }

    /// The `integration.context` of a button.
    pub fn context(&self, action: ButtonAction, run_id: &str, now_s: i64, ttl_s: i64) -> Value {
        let nonce: String = (0..16)
            .map(|_| format!("{:02x}", rand::random::<u8>()))
            .collect();
        let exp = now_s + ttl_s;
        let sig = self.mac(action.as_str(), run_id, now_s, exp, &nonce);
        json!({"action": action.as_str(), "run_id": run_id, "iat": now_s, "exp": exp, "nonce": nonce, "sig": sig})
    }

    /// Checks a context from a click.
    pub fn verify(&self, ctx: &Map<String, Value>, now_s: i64) -> Result<Click, Refusal> {
        let s = |k: &str| ctx.get(k).and_then(Value::as_str).ok_or(Refusal::Malformed);
        let n = |k: &str| ctx.get(k).and_then(Value::as_i64).ok_or(Refusal::Malformed);
        let (action, run_id, nonce, sig) = (s("action")?, s("run_id")?, s("nonce")?, s("sig")?);
        let (iat, exp) = (n("iat")?, n("exp")?);
        let expected = self.mac(action, run_id, iat, exp, nonce);
        if !constant_time_eq(expected.as_bytes(), sig.as_bytes()) {
            return Err(Refusal::BadSignature);
        }
        let action = ButtonAction::parse(action).ok_or(Refusal::Malformed)?;
        if now_s > exp || iat > now_s + 300 {
            return Err(Refusal::Expired);
        }
        Ok(Click {
            action,
            run_id: run_id.to_string(),
            nonce: nonce.to_string(),
        })
    }

    /// A message attachment holding buttons, as Mattermost's `props.attachments` expects.
    pub fn attachment(
        &self,
        actions_url: &str,
        run_id: &str,
        buttons: &[ButtonAction],
        now_s: i64,
        ttl_s: i64,
    ) -> Value {
        let actions: Vec<Value> = buttons
            .iter()
            .map(|b| {
                let (name, style) = b.label();
                json!({
                    "id": b.id(),
                    "name": name,
                    "type": "button",
                    "style": style,
                    "integration": {"url": actions_url, "context": self.context(*b, run_id, now_s, ttl_s)},
                })
            })
            .collect();
        json!({"text": "", "actions": actions})
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Compares two secrets without leaking where they differ through timing.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {

    #[test]
    fn button_ids_are_what_mattermost_routes_clicks_for() {
        use ButtonAction::*;
        for b in [Cancel, Retry, Approve, ApproveSession, Deny, RequestAccess] {
            let id = b.id();
            assert!(
                !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric()),
                "{id}: Mattermost answers 404 to a click on an id that is not [A-Za-z0-9]+"
            );
        }
        assert_eq!(ApproveSession.id(), "approvesession");
    }

    use super::*;

    fn ctx(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn a_signed_context_verifies_once_within_its_lifetime() {
        let s = Signer::random();
        let c = ctx(s.context(ButtonAction::Cancel, "run1", 1000, 60));
        let click = s.verify(&c, 1010).unwrap();
        assert_eq!(
            (click.action, click.run_id.as_str()),
            (ButtonAction::Cancel, "run1")
        );
        assert_eq!(s.verify(&c, 1061), Err(Refusal::Expired));
    }

    #[test]
    fn altered_or_foreign_contexts_are_refused() {
        let s = Signer::random();
        let mut c = ctx(s.context(ButtonAction::Retry, "run1", 1000, 60));
        c.insert("run_id".into(), json!("run2"));
        assert_eq!(s.verify(&c, 1001), Err(Refusal::BadSignature));
        let mut c = ctx(s.context(ButtonAction::Retry, "run1", 1000, 60));
        c.insert("exp".into(), json!(99999));
        assert_eq!(s.verify(&c, 1001), Err(Refusal::BadSignature));
        let other = Signer::random();
        let c = ctx(other.context(ButtonAction::Retry, "run1", 1000, 60));
        assert_eq!(s.verify(&c, 1001), Err(Refusal::BadSignature));
        assert_eq!(
            s.verify(&ctx(json!({"action": "retry"})), 1001),
            Err(Refusal::Malformed)
        );
    }

    #[test]
    fn the_key_persists_in_the_state_dir() {
        let dir = tempfile::tempdir().unwrap();
        let a = Signer::from_state_dir(dir.path()).unwrap();
        let b = Signer::from_state_dir(dir.path()).unwrap();
        let c = ctx(a.context(ButtonAction::Cancel, "r", 10, 60));
        assert!(b.verify(&c, 11).is_ok());
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(dir.path().join("button.key"))
                .unwrap()
                .permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
    }
}
