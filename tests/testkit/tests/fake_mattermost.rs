//! The fake Mattermost over real HTTP, as `codex-host` will use it: create, patch, read a post and
//! its thread, upload and read back files, users, injected 429s and the 401 for a bad token.

use std::time::Duration;

use codex_testkit::mattermost::{Fault, NewPost, NewUser};
use codex_testkit::{FakeMattermost, MattermostConfig};
use serde_json::{json, Value};

const BOT_ID: &str = "bot1bot1bot1bot1bot1bot1bo";
const TOKEN: &str = "bottoken";
const CHANNEL: &str = "chan1chan1chan1chan1chan1c";

async fn start() -> (FakeMattermost, reqwest::Client) {
    let config = MattermostConfig {
        bot_user_id: BOT_ID.into(),
        bot_username: "codex".into(),
        bot_token: TOKEN.into(),
    };
    (
        FakeMattermost::start(config).await.unwrap(),
        reqwest::Client::new(),
    )
}

async fn call(
    client: &reqwest::Client,
    mm: &FakeMattermost,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = client
        .request(method, format!("{}/api/v4{path}", mm.url()))
        .bearer_auth(TOKEN);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn is_mattermost_id(id: &str) -> bool {
    id.len() == 26
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
}

#[tokio::test]
async fn create_patch_get_and_thread() {
    let (mm, client) = start().await;
    let (status, root) = call(&client, &mm, reqwest::Method::POST, "/posts",
        Some(json!({ "channel_id": CHANNEL, "message": "Working on it", "props": { "codex_run": "r1" } }))).await;
    assert_eq!(status, 201, "{root}");
    let root_id = root["id"].as_str().unwrap().to_owned();
    assert!(is_mattermost_id(&root_id), "{root_id}");
    assert_eq!(root["user_id"], BOT_ID);
    assert_eq!(root["root_id"], "");
    assert_eq!(root["props"]["codex_run"], "r1");
    assert_eq!(root["props"]["from_bot"], "true");
    assert!(root["create_at"].as_i64().unwrap() > 1_600_000_000_000);
    for field in [
        "update_at",
        "edit_at",
        "delete_at",
        "is_pinned",
        "original_id",
        "type",
        "hashtags",
        "file_ids",
        "pending_post_id",
        "reply_count",
        "last_reply_at",
        "participants",
    ] {
        assert!(root.get(field).is_some(), "Post JSON lacks {field}: {root}");
    }

    let human = mm.add_user(NewUser {
        username: "alice".into(),
        ..Default::default()
    });
    let reply = mm
        .inject_post(NewPost {
            user_id: human.id.clone(),
            channel_id: CHANNEL.into(),
            root_id: root_id.clone(),
            message: "and the tests".into(),
            ..Default::default()
        })
        .unwrap();

    let (status, patched) = call(
        &client,
        &mm,
        reqwest::Method::PUT,
        &format!("/posts/{root_id}/patch"),
        Some(json!({ "message": "Done", "props": { "codex_run": "r1", "state": "done" } })),
    )
    .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["message"], "Done");
    assert_eq!(patched["props"]["state"], "done");
    assert!(patched["edit_at"].as_i64().unwrap() > 0);
    assert!(patched["update_at"].as_i64() > root["update_at"].as_i64());

    let (status, got) = call(
        &client,
        &mm,
        reqwest::Method::GET,
        &format!("/posts/{root_id}"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(got["message"], "Done");
    assert_eq!(got["reply_count"], 1);

    let (status, thread) = call(
        &client,
        &mm,
        reqwest::Method::GET,
        &format!("/posts/{root_id}/thread"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{thread}");
    assert_eq!(thread["order"], json!([root_id, reply.id]));
    assert_eq!(thread["posts"][&reply.id]["user_id"], human.id.as_str());
    assert_eq!(thread["next_post_id"], "");
    assert_eq!(thread["prev_post_id"], "");
    assert_eq!(thread["has_next"], false);

    // Replying to a reply, an unknown post, a too-long message: the server's errors.
    let (status, error) = call(
        &client,
        &mm,
        reqwest::Method::POST,
        "/posts",
        Some(json!({ "channel_id": CHANNEL, "root_id": reply.id, "message": "x" })),
    )
    .await;
    assert_eq!(
        (status, error["id"].as_str()),
        (400, Some("api.post.create_post.root_id.app_error"))
    );
    let (status, error) = call(
        &client,
        &mm,
        reqwest::Method::PUT,
        "/posts/nosuchpostnosuchpostnosuch/patch",
        Some(json!({ "message": "x" })),
    )
    .await;
    assert_eq!(
        (status, error["id"].as_str()),
        (403, Some("api.context.permissions.app_error"))
    );
    let (status, error) = call(
        &client,
        &mm,
        reqwest::Method::GET,
        "/posts/nosuchpostnosuchpostnosuch",
        None,
    )
    .await;
    assert_eq!((status, error["status_code"].as_u64()), (404, Some(404)));
    let (status, error) = call(
        &client,
        &mm,
        reqwest::Method::POST,
        "/posts",
        Some(json!({ "channel_id": CHANNEL, "message": "é".repeat(16384) })),
    )
    .await;
    assert_eq!(
        (status, error["id"].as_str()),
        (400, Some("model.post.is_valid.msg.app_error"))
    );
    let (status, _) = call(
        &client,
        &mm,
        reqwest::Method::PUT,
        &format!("/posts/{}/patch", reply.id),
        Some(json!({ "message": "x" })),
    )
    .await;
    assert_eq!(status, 403, "the bot may not edit a human's post");

    // Every version is kept, in order.
    let history = &mm.read(|s| s.post(&root_id).cloned()).unwrap().history;
    let changes: Vec<(&str, &str)> = history
        .iter()
        .map(|v| (v.change.as_str(), v.post.message.as_str()))
        .collect();
    assert_eq!(changes, [("create", "Working on it"), ("patch", "Done")]);
    let listed: Value = client
        .get(format!("{}/_test/posts", mm.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 2);
    assert_eq!(listed[0]["history"][1]["request"]["message"], "Done");
}

#[tokio::test]
async fn files_upload_attach_and_read_back() {
    let (mm, client) = start().await;
    let form = reqwest::multipart::Form::new()
        .text("channel_id", CHANNEL)
        .part(
            "files",
            reqwest::multipart::Part::bytes(b"line one\nline two\n".to_vec())
                .file_name("output.txt"),
        )
        .part(
            "files",
            reqwest::multipart::Part::bytes(vec![0u8, 1, 2]).file_name("blob.bin"),
        );
    let response = client
        .post(format!("{}/api/v4/files", mm.url()))
        .bearer_auth(TOKEN)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 201);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["client_ids"], json!([]));
    let infos = body["file_infos"].as_array().unwrap();
    assert_eq!(infos.len(), 2);
    assert_eq!(infos[0]["name"], "output.txt");
    assert_eq!(infos[0]["extension"], "txt");
    assert_eq!(infos[0]["size"], 18);
    assert_eq!(infos[0]["user_id"], BOT_ID);
    assert_eq!(infos[0]["channel_id"], CHANNEL);
    assert!(
        infos[0].get("post_id").is_none(),
        "post_id is omitted until attached"
    );
    let file_id = infos[0]["id"].as_str().unwrap().to_owned();

    let (status, post) = call(&client, &mm, reqwest::Method::POST, "/posts",
        Some(json!({ "channel_id": CHANNEL, "message": "see attached", "file_ids": [file_id, "notarealfileidnotarealfile"] }))).await;
    assert_eq!(status, 201);
    assert_eq!(
        post["file_ids"],
        json!([file_id]),
        "unknown file ids are dropped"
    );
    assert_eq!(post["metadata"]["files"][0]["post_id"], post["id"]);

    let stored = mm.file(&file_id).unwrap();
    assert_eq!(&stored.bytes[..], b"line one\nline two\n");
    let bytes = client
        .get(format!("{}/_test/files/{file_id}", mm.url()))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(&bytes[..], b"line one\nline two\n");
}

#[tokio::test]
async fn users_by_ids_me_and_by_id() {
    let (mm, client) = start().await;
    let alice = mm.add_user(NewUser {
        id: Some("alicealicealicealicealicea".into()),
        username: "alice".into(),
        roles: vec!["system_user".into(), "system_admin".into()],
        ..Default::default()
    });
    let (status, users) = call(
        &client,
        &mm,
        reqwest::Method::POST,
        "/users/ids",
        Some(json!([alice.id, BOT_ID, "unknownunknownunknownunkno"])),
    )
    .await;
    assert_eq!(status, 200);
    let users = users.as_array().unwrap();
    assert_eq!(users.len(), 2);
    assert_eq!(users[0]["username"], "alice");
    assert_eq!(users[0]["roles"], "system_user system_admin");
    assert_eq!(users[1]["is_bot"], true);
    let (_, me) = call(&client, &mm, reqwest::Method::GET, "/users/me", None).await;
    assert_eq!(
        (me["id"].as_str(), me["username"].as_str()),
        (Some(BOT_ID), Some("codex"))
    );
    let (status, _) = call(
        &client,
        &mm,
        reqwest::Method::GET,
        &format!("/users/{}", alice.id),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (status, error) = call(
        &client,
        &mm,
        reqwest::Method::GET,
        "/users/unknownunknownunknownunkno",
        None,
    )
    .await;
    assert_eq!(
        (status, error["id"].as_str()),
        (404, Some("app.user.missing_account.const"))
    );
}

#[tokio::test]
async fn injected_429_then_success() {
    let (mm, client) = start().await;
    let fault: Value = json!({ "status": 429, "count": 2, "path_prefix": "/api/v4/posts" });
    let response = client
        .post(format!("{}/_test/faults", mm.url()))
        .json(&fault)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    for _ in 0..2 {
        let response = client
            .post(format!("{}/api/v4/posts", mm.url()))
            .bearer_auth(TOKEN)
            .json(&json!({ "channel_id": CHANNEL, "message": "hi" }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 429);
        let headers = response.headers();
        assert_eq!(headers["retry-after"], "1");
        assert_eq!(headers["x-ratelimit-limit"], "10");
        assert_eq!(headers["x-ratelimit-remaining"], "0");
        assert_eq!(headers["x-ratelimit-reset"], "1");
        assert_eq!(response.text().await.unwrap(), "limit exceeded\n");
    }
    let (status, _) = call(
        &client,
        &mm,
        reqwest::Method::POST,
        "/posts",
        Some(json!({ "channel_id": CHANNEL, "message": "hi" })),
    )
    .await;
    assert_eq!(status, 201);
    let statuses: Vec<u16> = mm.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [429, 429, 201]);

    // A fault on another prefix does not touch posts; the Rust API injects the same way.
    mm.inject_fault(Fault {
        status: 500,
        count: 1,
        path_prefix: "/api/v4/files".into(),
        method: None,
        after: false,
    });
    let (status, _) = call(&client, &mm, reqwest::Method::GET, "/users/me", None).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_pending_post_id_deduplicates_creates_for_30_seconds() {
    let (mm, client) = start().await;
    let body = json!({ "channel_id": CHANNEL, "message": "answer", "pending_post_id": format!("{BOT_ID}:1700000000000") });
    let (status, first) = call(
        &client,
        &mm,
        reqwest::Method::POST,
        "/posts",
        Some(body.clone()),
    )
    .await;
    assert_eq!(status, 201, "{first}");
    // The same pending id again: the post the first create made, same id, same status.
    let (status, again) = call(
        &client,
        &mm,
        reqwest::Method::POST,
        "/posts",
        Some(body.clone()),
    )
    .await;
    assert_eq!(status, 201, "{again}");
    assert_eq!(again["id"], first["id"]);
    assert_eq!(mm.posts().len(), 1);

    // Without a pending id there is no de-duplication; another pending id is another post.
    let plain = json!({ "channel_id": CHANNEL, "message": "answer" });
    for _ in 0..2 {
        let (status, _) = call(
            &client,
            &mm,
            reqwest::Method::POST,
            "/posts",
            Some(plain.clone()),
        )
        .await;
        assert_eq!(status, 201);
    }
    let other = json!({ "channel_id": CHANNEL, "message": "answer", "pending_post_id": format!("{BOT_ID}:1700000000001") });
    let (_, third) = call(&client, &mm, reqwest::Method::POST, "/posts", Some(other)).await;
    assert_ne!(third["id"], first["id"]);
    assert_eq!(mm.posts().len(), 4);

    // Once the 30 s window has passed, the same pending id creates a new post.
    assert_eq!(
        codex_testkit::mattermost::PENDING_POST_ID_TTL,
        Duration::from_secs(30)
    );
    mm.expire_pending_post_ids();
    let (status, late) = call(&client, &mm, reqwest::Method::POST, "/posts", Some(body)).await;
    assert_eq!(status, 201);
    assert_ne!(late["id"], first["id"]);
    assert_eq!(mm.posts().len(), 5);
}

#[tokio::test]
async fn a_fault_after_the_request_answers_an_error_for_work_done() {
    let (mm, client) = start().await;
    // Over HTTP, like every other fault: the post is saved, then a 502 is answered.
    let fault =
        json!({ "status": 502, "path_prefix": "/api/v4/posts", "method": "POST", "after": true });
    let response = client
        .post(format!("{}/_test/faults", mm.url()))
        .json(&fault)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let body =
        json!({ "channel_id": CHANNEL, "message": "slow answer", "pending_post_id": "p-after" });
    let (status, error) = call(
        &client,
        &mm,
        reqwest::Method::POST,
        "/posts",
        Some(body.clone()),
    )
    .await;
    assert_eq!(status, 502);
    assert_eq!(error["id"], "testkit.fault_injected.app_error");
    assert_eq!(mm.posts().len(), 1, "the request took effect");
    // A retry with the same pending id gets the saved post, not a second one.
    let (status, retried) = call(&client, &mm, reqwest::Method::POST, "/posts", Some(body)).await;
    assert_eq!(status, 201);
    assert_eq!(retried["id"], mm.posts()[0].post.id);
    assert_eq!(mm.posts().len(), 1);

    // A fault before the request (the default) leaves nothing behind: the retry creates it.
    mm.inject_fault(Fault {
        status: 500,
        count: 1,
        path_prefix: "/api/v4/posts".into(),
        method: None,
        after: false,
    });
    let body =
        json!({ "channel_id": CHANNEL, "message": "refused first", "pending_post_id": "p-before" });
    let (status, _) = call(
        &client,
        &mm,
        reqwest::Method::POST,
        "/posts",
        Some(body.clone()),
    )
    .await;
    assert_eq!(status, 500);
    assert_eq!(mm.posts().len(), 1);
    let (status, _) = call(&client, &mm, reqwest::Method::POST, "/posts", Some(body)).await;
    assert_eq!(status, 201);
    assert_eq!(mm.posts().len(), 2);

    // `after` on a patch: the edit is applied, the answer is the fault.
    let id = mm.posts()[1].post.id.clone();
    mm.inject_fault(Fault {
        status: 504,
        count: 1,
        path_prefix: format!("/api/v4/posts/{id}/patch"),
        method: None,
        after: true,
    });
    let (status, _) = call(
        &client,
        &mm,
        reqwest::Method::PUT,
        &format!("/posts/{id}/patch"),
        Some(json!({ "message": "edited" })),
    )
    .await;
    assert_eq!(status, 504);
    assert_eq!(mm.posts()[1].post.message, "edited");

    // Faults not used up can be cleared.
    mm.inject_fault(Fault {
        status: 503,
        count: 100,
        path_prefix: "/api/v4/".into(),
        method: None,
        after: false,
    });
    mm.clear_faults();
    let statuses: Vec<u16> = mm.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [502, 201, 500, 201, 504]);
    let (status, _) = call(&client, &mm, reqwest::Method::GET, "/users/me", None).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn wrong_or_missing_token_is_401_session_expired() {
    let (mm, client) = start().await;
    for auth in [Some("Bearer nope"), None] {
        let mut request = client
            .post(format!("{}/api/v4/posts", mm.url()))
            .json(&json!({ "channel_id": CHANNEL, "message": "x" }));
        if let Some(auth) = auth {
            request = request.header("Authorization", auth);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status().as_u16(), 401);
        let request_id = response.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["id"], "api.context.session_expired.app_error");
        assert_eq!(body["status_code"], 401);
        assert_eq!(body["detailed_error"], "");
        assert_eq!(body["request_id"], request_id.as_str());
        assert!(body["message"].as_str().unwrap().len() > 10);
    }
    assert!(mm.posts().is_empty());
}

#[tokio::test]
async fn wait_for_wakes_on_a_new_post() {
    let (mm, _client) = start().await;
    let mm = std::sync::Arc::new(mm);
    let waiter = {
        let mm = mm.clone();
        tokio::spawn(async move {
            mm.wait_for(
                |s| s.bot_posts().first().map(|p| p.post.message.clone()),
                Duration::from_secs(10),
            )
            .await
        })
    };
    tokio::task::yield_now().await;
    let client = reqwest::Client::new();
    client
        .post(format!("{}/api/v4/posts", mm.url()))
        .bearer_auth(TOKEN)
        .json(&json!({ "channel_id": CHANNEL, "message": "hello" }))
        .send()
        .await
        .unwrap();
    assert_eq!(waiter.await.unwrap().unwrap(), "hello");
    let timeout = mm
        .wait_for(|s| s.posts.get(5).map(|_| ()), Duration::from_millis(50))
        .await;
    assert!(timeout.is_err());
}
