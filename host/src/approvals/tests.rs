//! Approvals end to end in memory: the request post, the clicks, the wait and the outcome.

use std::time::Duration;

use crate::buttons::ButtonAction;
use crate::gate::Decision;
use crate::model::{ApprovalState, RunStatus};
use crate::protocol::PostKind;
use crate::render;
use crate::testing::{user, Scripted, TestHost};

const REASON: &str = "deploys need a second pair of eyes";

fn needs_approval(approvers: &[&str], min: u32, allow_self: bool, expiry: Duration) -> Decision {
    Decision::RequireApproval {
        approvers: approvers.iter().map(|a| a.to_string()).collect(),
        min_approvals: min,
        reason: REASON.into(),
        expiry,
        allow_self_approval: allow_self,
        limits: Default::default(),
    }
}

const HOUR: Duration = Duration::from_secs(3600);

fn state(t: &TestHost, run_id: &str) -> ApprovalState {
    t.host.store().approval(run_id).unwrap().unwrap().state
}

#[tokio::test]
async fn the_requester_cannot_approve_their_own_run() {
    let gate = Scripted::new(needs_approval(&["alice", "bob"], 1, false, HOUR));
    let t = TestHost::new(gate, |_| {}).await;
    let alice = user("alice");
    let accepted = t.submit(&alice, "", "deploy it").await.unwrap();
    assert!(accepted.needs_approval);
    let run_id = accepted.run_id.clone();

    let r = t.click(&alice, ButtonAction::Approve, &run_id, "").await;
    assert_eq!(
        r.ephemeral_text,
        "You cannot approve your own request; ask @alice, @bob."
    );
    assert_eq!(r.update, None);
    assert_eq!(state(&t, &run_id), ApprovalState::Pending);
    let refusals = t.host.store().audit_of_kind("action.refused").unwrap();
    assert_eq!(refusals.len(), 1);
    assert_eq!(refusals[0].1["reason"], "self-approval");

    // Another listed approver can: the run is queued and runs (and fails: Codex is /bin/false).
    let r = t
        .click(&user("bob"), ButtonAction::Approve, &run_id, "")
        .await;
    let update = r.update.expect("the request post is updated");
    assert_eq!(update.props["codex_status"], "approved");
    assert!(update
        .message
        .starts_with(":raised_hand: **Approval granted** by @bob"));
    assert_eq!(accepted.outcome().await, RunStatus::Failed);
    assert_eq!(state(&t, &run_id), ApprovalState::Approved);
}

#[tokio::test]
async fn the_requester_approves_their_own_run_when_the_policy_allows_it() {
    let gate = Scripted::new(needs_approval(&["alice"], 1, true, HOUR));
    let t = TestHost::new(gate, |_| {}).await;
    let alice = user("alice");
    let accepted = t.submit(&alice, "", "deploy it").await.unwrap();
    let r = t
        .click(&alice, ButtonAction::Approve, &accepted.run_id, "")
        .await;
    assert_eq!(r.ephemeral_text, "");
    assert_eq!(state(&t, &accepted.run_id), ApprovalState::Approved);
    assert_eq!(accepted.outcome().await, RunStatus::Failed);
}

#[tokio::test]
async fn n_of_m_distinct_approvers_are_needed_and_each_counts_once() {
    let gate = Scripted::new(needs_approval(&["bob", "carol", "dave"], 2, false, HOUR));
    let t = TestHost::new(gate, |_| {}).await;
    let accepted = t.submit(&user("alice"), "", "deploy it").await.unwrap();
    let run_id = accepted.run_id.clone();

    let r = t
        .click(&user("mallory"), ButtonAction::Approve, &run_id, "")
        .await;
    assert_eq!(
        r.ephemeral_text,
        "Only @bob, @carol, @dave can approve or deny this request."
    );

    // One Approve button serves every approver.
    let approve = t.button(ButtonAction::Approve, &run_id);
    let r = t.press(&user("bob"), approve.clone(), "").await;
    let update = r.update.expect("the request post shows who approved");
    assert_eq!(update.props["codex_status"], "awaiting_approval");
    assert_eq!(
        update.props["codex_approved_by"],
        serde_json::json!(["bob"])
    );
    assert!(
        update.props["attachments"].is_array(),
        "still has its buttons"
    );
    assert_eq!(state(&t, &run_id), ApprovalState::Pending);

    let r = t.press(&user("bob"), approve.clone(), "").await;
    assert_eq!(r.ephemeral_text, "You already answered this request.");
    assert_eq!(state(&t, &run_id), ApprovalState::Pending);

    let r = t.press(&user("carol"), approve, "").await;
    let update = r.update.unwrap();
    assert_eq!(update.props["codex_status"], "approved");
    assert!(
        update.message.contains("by @bob, @carol"),
        "{}",
        update.message
    );
    assert_eq!(accepted.outcome().await, RunStatus::Failed);
}

#[tokio::test]
async fn a_request_nobody_approves_in_time_expires_into_one_refusal() {
    let gate = Scripted::new(needs_approval(&["bob"], 1, false, Duration::ZERO));
    let t = TestHost::new(gate, |_| {}).await;
    let accepted = t.submit(&user("alice"), "", "deploy it").await.unwrap();
    let run_id = accepted.run_id.clone();
    assert_eq!(accepted.outcome().await, RunStatus::Refused);
    assert_eq!(state(&t, &run_id), ApprovalState::Expired);

    let outcomes = t.posts_of(PostKind::Outcome, &run_id);
    assert_eq!(outcomes.len(), 1);
    assert!(outcomes[0]
        .message
        .starts_with(&render::approval_expired(REASON)));
    assert_eq!(outcomes[0].props["codex_status"], "refused");
    // The request post lost its buttons and says how it closed.
    let request = t.posts_of(PostKind::Approval, &run_id);
    assert_eq!(request.len(), 1);
    assert_eq!(request[0].props["codex_status"], "expired");
    assert!(request[0].props.get("attachments").is_none());
    assert!(request[0]
        .message
        .starts_with(":raised_hand: **Approval expired**"));
    // Codex never started: no progress post.
    assert!(t.posts_of(PostKind::Progress, &run_id).is_empty());

    // A click after the expiry decides nothing.
    let r = t
        .click(&user("bob"), ButtonAction::Approve, &run_id, "")
        .await;
    assert_eq!(r.ephemeral_text, "This request was already expired.");
}

#[tokio::test]
async fn a_denied_request_ends_refused_naming_who_denied() {
    let gate = Scripted::new(needs_approval(&["bob"], 1, false, HOUR));
    let t = TestHost::new(gate, |_| {}).await;
    let accepted = t.submit(&user("alice"), "", "deploy it").await.unwrap();
    let run_id = accepted.run_id.clone();
    let r = t.click(&user("bob"), ButtonAction::Deny, &run_id, "").await;
    assert_eq!(r.update.unwrap().props["codex_status"], "denied");
    assert_eq!(accepted.outcome().await, RunStatus::Refused);
    let outcomes = t.posts_of(PostKind::Outcome, &run_id);
    assert_eq!(outcomes.len(), 1);
    assert!(outcomes[0]
        .message
        .starts_with(&render::denied("bob", REASON)));
}
