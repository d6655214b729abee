//! The texts of access requests: the approvers' DM, its closed forms, and what the requester is
//! told. Never does I/O.

use super::mentions;

const SETTINGS: &str = "System Console > Plugins > Codex for Mattermost";

/// The DM an approver gets, above Approve and Deny.
pub fn access_request(requester: &str, channel: &str, approvers: &[String]) -> String {
    format!(
        "**@{requester} asks for access to Codex.** The allowlist refused them in ~{channel}.\n\
         **Approve** adds @{requester} to Allowed users ({SETTINGS}); **Deny** tells them no.\n\
         Asked: {}. The first answer counts.",
        mentions(approvers)
    )
}

/// The DM once answered: who answered and what it did.
pub fn access_closed(requester: &str, approved: bool, by: &str) -> String {
    if approved {
        format!(
            "**@{requester} was given access to Codex** by @{by}: they are on Allowed users now."
        )
    } else {
        format!("**@{requester}'s request for access to Codex was denied** by @{by}.")
    }
}

/// What the requester reads after pressing Request access.
pub fn access_requested(approvers: &[String]) -> String {
    format!(
        "Asked {} to add you to Allowed users. You will get a direct message from the bot when \
         one of them answers.",
        mentions(approvers)
    )
}

/// Pressing Request access again while a request waits.
pub fn access_pending() -> String {
    "You asked for access already and the request is still waiting for an answer; the approvers \
     were not asked again. You will get a direct message from the bot when one of them answers."
        .into()
}

/// The requester's DM once someone answered.
pub fn access_answered(approved: bool, by: &str) -> String {
    if approved {
        format!("@{by} approved your request: you are on Codex's Allowed users now. Try `/codex` again.")
    } else {
        format!(
            "@{by} denied your request for access to Codex. Ask them or another system admin if \
             you think this is a mistake."
        )
    }
}

/// Nobody could be asked.
pub fn access_no_approvers(named: bool) -> String {
    let who = if named {
        "none of the people under Access requests go to can be reached"
    } else {
        "the bot found no active system admin to ask"
    };
    format!(
        "Your request was not sent: {who}. Ask a system admin to add you under Allowed users in \
         {SETTINGS}."
    )
}

/// An Approve or Deny by someone who may not answer.
pub fn access_not_permitted(named: &[String]) -> String {
    if named.is_empty() {
        "Only a system admin can answer an access request.".into()
    } else {
        format!(
            "Only a system admin or someone listed under Access requests go to ({}) can answer \
             an access request.",
            mentions(named)
        )
    }
}

/// The DM again after the grant failed: nothing changed, fresh buttons follow.
pub fn access_grant_failed(requester: &str, error: &str) -> String {
    format!(
        "**@{requester} asks for access to Codex.**\n\
         Approving did not add them: {error}. Nothing changed and the request is still open; try \
         again, or add them under Allowed users in {SETTINGS}."
    )
}
