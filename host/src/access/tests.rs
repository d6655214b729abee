//! Access requests end to end through a whole host in memory: the button under a refusal, the
//! approvers' DMs, and answers by people who may and may not give them.

use serde_json::{Map, Value};

use crate::chat::Post;
use crate::gate::Decision;
use crate::protocol::{AccessGrant, ActionResponse, PostKind, User};
use crate::testing::{user, Scripted, TestHost, BOT};

fn admin(name: &str) -> User {
    User {
        roles: vec!["system_user".into(), "system_admin".into()],
        ..user(name)
    }
}

/// A host whose allowlist refuses everyone for `rule`, with two admins and three members known.
async fn refusing(rule: &str, adjust: impl FnOnce(&mut crate::config::Settings)) -> TestHost {
    let gate = Scripted::new(Decision::Deny {
        reason: "@alice is not on the Codex allowlist.".into(),
    });
    *gate.rules.lock().unwrap() = vec![rule.into()];
    let t = TestHost::new(gate, adjust).await;
    for u in [
        admin("root"),
        admin("sam"),
        user("alice"),
        user("bob"),
        user("carol"),
    ] {
        t.chat().add_user(u);
    }
    t
}

/// The signed context of the button `id` in a message attachment list.
fn button(attachments: &[Value], id: &str) -> Option<Map<String, Value>> {
    attachments
        .iter()
        .flat_map(|a| a["actions"].as_array().cloned().unwrap_or_default())
        .find(|b| b["id"] == id)
        .and_then(|b| b["integration"]["context"].as_object().cloned())
}

fn post_button(p: &Post, id: &str) -> Map<String, Value> {
    let attachments = p.props["attachments"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    button(&attachments, id).unwrap_or_else(|| panic!("no {id} button on {:?}", p.props))
}

/// The access request DMs, as they are now.
fn requests(t: &TestHost) -> Vec<Post> {
    t.chat()
        .posts()
        .into_iter()
        .filter(|p| p.user_id == BOT && PostKind::of(&p.props) == Some(PostKind::AccessRequest))
        .collect()
}

/// What the bot said in its DM with `u` other than access requests.
fn told(t: &TestHost, u: &User) -> Vec<String> {
    t.chat()
        .posts()
        .into_iter()
        .filter(|p| {
            p.channel_id == format!("dm:{BOT}:{}", u.id) && PostKind::of(&p.props).is_none()
        })
        .map(|p| p.message)
        .collect()
}

/// `who` is refused by `/codex` and presses Request access.
async fn ask(t: &TestHost, who: &User) -> ActionResponse {
    let refusal = t.command(who, "fix the login test").await;
    let context = button(&refusal.attachments, "requestaccess").expect("a Request access button");
    t.press(who, context, "ephemeral-post").await
}

#[tokio::test]
async fn a_refused_user_asks_once_and_every_admin_gets_a_dm() {
    let t = refusing("user-not-listed", |_| {}).await;
    let alice = user("alice");
    let refusal = t.command(&alice, "fix the login test").await;
    assert!(
        refusal.text.contains("not on the Codex allowlist"),
        "{}",
        refusal.text
    );
    let answer = ask(&t, &alice).await;
    assert!(
        answer.ephemeral_text.contains("@root, @sam"),
        "{}",
        answer.ephemeral_text
    );
    let dms = requests(&t);
    let channels: Vec<&str> = dms.iter().map(|p| p.channel_id.as_str()).collect();
    assert_eq!(
        channels,
        [format!("dm:{BOT}:root-id"), format!("dm:{BOT}:sam-id")]
    );
    assert!(
        dms[0].message.contains("@alice asks for access"),
        "{}",
        dms[0].message
    );
    post_button(&dms[0], "approve");
    post_button(&dms[0], "deny");

    let again = ask(&t, &alice).await;
    assert!(
        again.ephemeral_text.contains("still waiting"),
        "{}",
        again.ephemeral_text
    );
    assert_eq!(requests(&t).len(), 2, "the admins are not asked twice");
    let audited = t.host.store().audit_of_kind("access.requested").unwrap();
    assert_eq!(audited.len(), 1);
    assert_eq!(
        audited[0].1["approvers"],
        serde_json::json!(["root", "sam"])
    );
}

#[tokio::test]
async fn approve_adds_the_user_through_the_plugin_and_tells_both() {
    let t = refusing("user-not-listed", |_| {}).await;
    let (alice, root) = (user("alice"), admin("root"));
    ask(&t, &alice).await;
    let dms = requests(&t);
    let answer = t
        .press(&root, post_button(&dms[0], "approve"), &dms[0].id)
        .await;
    let update = answer.update.expect("the DM is updated");
    assert!(
        update
            .message
            .contains("was given access to Codex** by @root"),
        "{}",
        update.message
    );
    assert!(
        update.props.get("attachments").is_none(),
        "the buttons are gone"
    );
    assert_eq!(
        t.chat().grants(),
        [AccessGrant {
            user_id: "alice-id".into(),
            approved_by: "root-id".into()
        }]
    );
    let other = t.chat().post(&dms[1].id).unwrap();
    assert!(
        other.message.contains("by @root"),
        "the other admin's DM is closed too"
    );
    assert!(other.props.get("attachments").is_none());
    assert!(told(&t, &alice)[0].contains("@root approved your request"));
    // The second admin's buttons, and the same button again, do nothing.
    let late = t
        .press(&admin("sam"), post_button(&dms[1], "deny"), &dms[1].id)
        .await;
    assert!(
        late.ephemeral_text.contains("approved already"),
        "{}",
        late.ephemeral_text
    );
    let replay = t
        .press(&root, post_button(&dms[0], "approve"), &dms[0].id)
        .await;
    assert!(replay.update.is_none());
    assert_eq!(t.chat().grants().len(), 1);
    assert_eq!(
        t.host
            .store()
            .audit_of_kind("access.approved")
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn deny_tells_the_requester_and_adds_nobody() {
    let t = refusing("user-not-listed", |_| {}).await;
    let alice = user("alice");
    ask(&t, &alice).await;
    let dms = requests(&t);
    let answer = t
        .press(&admin("sam"), post_button(&dms[1], "deny"), &dms[1].id)
        .await;
    assert!(answer.update.unwrap().message.contains("denied** by @sam"));
    assert!(t.chat().grants().is_empty());
    assert!(told(&t, &alice)[0].contains("@sam denied your request"));
    // Denied is not pending: the user may ask again.
    let again = ask(&t, &alice).await;
    assert!(
        again.ephemeral_text.starts_with("Asked"),
        "{}",
        again.ephemeral_text
    );
}

#[tokio::test]
async fn members_and_the_requester_cannot_answer() {
    let t = refusing("user-not-listed", |_| {}).await;
    // The requester is an admin refused by a custom module: still not their own approver.
    let root = admin("root");
    ask(&t, &user("alice")).await;
    let dms = requests(&t);
    let bob = t
        .press(&user("bob"), post_button(&dms[0], "approve"), &dms[0].id)
        .await;
    assert!(
        bob.ephemeral_text.contains("Only a system admin"),
        "{}",
        bob.ephemeral_text
    );
    // A forged body naming bob an admin is not what the host reads: roles come from the plugin,
    // and bob's are a member's. The requester answering is refused even with an admin's roles.
    let alice_as_admin = User {
        roles: root.roles.clone(),
        ..user("alice")
    };
    let own = t
        .press(&alice_as_admin, post_button(&dms[0], "approve"), &dms[0].id)
        .await;
    assert!(
        own.ephemeral_text.contains("your own"),
        "{}",
        own.ephemeral_text
    );
    assert!(t.chat().grants().is_empty());
    let reasons: Vec<Value> = (t.host.store().audit_of_kind("action.refused").unwrap())
        .into_iter()
        .map(|(_, d)| d["reason"].clone())
        .collect();
    assert_eq!(reasons, ["not-an-approver", "self-approval"]);
    // A Request access button is its owner's only.
    let refusal = t.command(&user("alice"), "again").await;
    let theirs = button(&refusal.attachments, "requestaccess").unwrap();
    let stolen = t.press(&user("bob"), theirs, "ephemeral-post").await;
    assert!(
        stolen.ephemeral_text.contains("someone else's"),
        "{}",
        stolen.ephemeral_text
    );
    // The answer still works for an admin afterwards.
    let ok = t
        .press(&root, post_button(&dms[0], "approve"), &dms[0].id)
        .await;
    assert!(ok.update.is_some());
}

#[tokio::test]
async fn a_failed_grant_keeps_the_request_open_with_fresh_buttons() {
    let t = refusing("user-not-listed", |_| {}).await;
    let root = admin("root");
    ask(&t, &user("alice")).await;
    let dms = requests(&t);
    t.chat().refuse_grants(true);
    let failed = t
        .press(&root, post_button(&dms[0], "approve"), &dms[0].id)
        .await;
    let update = failed.update.expect("the DM says what failed");
    assert!(
        update.message.contains("did not add them"),
        "{}",
        update.message
    );
    assert!(
        told(&t, &user("alice")).is_empty(),
        "the requester is told nothing yet"
    );
    t.chat().refuse_grants(false);
    let retry = Post {
        props: update.props,
        ..dms[0].clone()
    };
    let ok = t
        .press(&root, post_button(&retry, "approve"), &dms[0].id)
        .await;
    assert!(ok.update.unwrap().message.contains("was given access"));
    assert_eq!(t.chat().grants().len(), 1);
    assert_eq!(
        t.host
            .store()
            .audit_of_kind("access.grant_failed")
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn named_approvers_get_the_requests_and_may_answer() {
    let t = refusing("allowlist-empty", |s| {
        s.access_approvers = vec!["carol-id".into()]
    })
    .await;
    ask(&t, &user("alice")).await;
    let dms = requests(&t);
    assert_eq!(dms.len(), 1);
    assert_eq!(dms[0].channel_id, format!("dm:{BOT}:carol-id"));
    let ok = t
        .press(&user("carol"), post_button(&dms[0], "approve"), &dms[0].id)
        .await;
    assert!(ok.update.is_some(), "{}", ok.ephemeral_text);
    assert_eq!(t.chat().grants()[0].approved_by, "carol-id");
}

#[tokio::test]
async fn a_refusal_of_the_place_offers_no_button() {
    let t = refusing("channel-not-listed", |_| {}).await;
    let refusal = t.command(&user("alice"), "fix it").await;
    assert!(refusal.attachments.is_empty());
}

/// The plugin forwarding `@codex fix the login test` by `who` (`POST /v1/posts`).
async fn mention(
    t: &TestHost,
    who: &User,
    id: &str,
    bot_can_post: bool,
) -> crate::protocol::PostResponse {
    use crate::protocol::{IncomingPost, PostRequest};
    t.host
        .reply(PostRequest {
            user: who.clone(),
            channel: crate::testing::channel(),
            post: IncomingPost {
                id: id.into(),
                channel_id: crate::testing::channel().id,
                user_id: who.id.clone(),
                message: "@codex fix the login test".into(),
                ..Default::default()
            },
            bot_can_post,
        })
        .await
}

/// `@codex <prompt>` by someone the allowlist refuses gets the same Request access button as
/// `/codex`: the plugin shows it with the refusal (an ephemeral post), and it works the same.
#[tokio::test]
async fn a_refused_mention_carries_the_request_access_button() {
    let t = refusing("user-not-listed", |_| {}).await;
    let alice = user("alice");
    let answer = mention(&t, &alice, "mention-1", true).await;
    assert!(
        answer.ephemeral_text.contains("not on the Codex allowlist"),
        "{answer:?}"
    );
    let context = button(&answer.attachments, "requestaccess").expect("a Request access button");
    let asked = t.press(&alice, context, "ephemeral-post").await;
    assert!(
        asked.ephemeral_text.contains("@root, @sam"),
        "{}",
        asked.ephemeral_text
    );
    assert_eq!(requests(&t).len(), 2);

    // A refusal of the place, not the person, offers nothing to ask for.
    let t = refusing("channel-not-listed", |_| {}).await;
    let answer = mention(&t, &alice, "mention-2", true).await;
    assert!(!answer.ephemeral_text.is_empty(), "{answer:?}");
    assert!(answer.attachments.is_empty(), "{answer:?}");
}

/// Where the bot may not post yet, someone the policy refuses is told so, and the plugin is not
/// asked to add the bot to the channel: a mention or a command of a stranger must not make the
/// bot join anything.
#[tokio::test]
async fn a_refused_person_never_makes_the_bot_join_a_channel() {
    let t = refusing("user-not-listed", |_| {}).await;
    let alice = user("alice");
    let answer = mention(&t, &alice, "mention-3", false).await;
    assert!(!answer.needs_bot_access, "{answer:?}");
    assert!(
        answer.ephemeral_text.contains("not on the Codex allowlist"),
        "{answer:?}"
    );
    assert!(button(&answer.attachments, "requestaccess").is_some());

    let req = crate::protocol::CommandRequest {
        user: alice.clone(),
        channel: crate::testing::channel(),
        text: "fix the login test".into(),
        bot_can_post: false,
        ..Default::default()
    };
    let answer = t.host.command(req).await;
    assert!(!answer.needs_bot_access, "{answer:?}");
    assert!(
        answer.text.contains("not on the Codex allowlist"),
        "{answer:?}"
    );
    assert!(t.chat().posts().is_empty(), "nothing was posted");
}
