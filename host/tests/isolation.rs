//! A Codex run cannot reach the host, the Mattermost server or other projects: the real
//! `codex-host serve`, the real Codex CLI, and the mock model told to run an attacker's commands
//! through its exec tool (`[[mock:sh:...]]`), in every sandbox mode.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use serde_json::json;

/// What an attacker would go for, laid out as on a real machine: the host's state directory and
/// socket, a Mattermost server's `config/config.json` next to its plugin data, another project's
/// repository, another run's file in the host's `/tmp`.
struct Targets {
    outside: tempfile::TempDir,
    mm_config: PathBuf,
    other_repo: PathBuf,
    host_tmp_file: tempfile::NamedTempFile,
}

impl Targets {
    fn new() -> Targets {
        let outside = tempfile::Builder::new()
            .prefix("codex-isolation-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .unwrap();
        let mm = outside.path().join("mattermost");
        std::fs::create_dir_all(mm.join("config")).unwrap();
        std::fs::create_dir_all(mm.join("plugins/com.github.codex-for-mattermost/server/dist"))
            .unwrap();
        let mm_config = mm.join("config/config.json");
        std::fs::write(&mm_config, r#"{"SqlSettings":{"DataSource":"postgres://mmuser:db-password-canary@localhost/mattermost"}}"#).unwrap();
        let other_repo = outside.path().join("web");
        std::fs::create_dir_all(&other_repo).unwrap();
        std::fs::write(other_repo.join("secret.txt"), "other-project-canary").unwrap();
        let mut host_tmp_file = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut host_tmp_file, b"other-run-temp-canary").unwrap();
        Targets {
            outside,
            mm_config,
            other_repo,
            host_tmp_file,
        }
    }
}

/// A shell script that reports, for each path, whether it is visible (`LEAK`) or not (`hidden`),
/// scans every visible process environment for the host's secret, and tries the host socket.
fn probe_script(paths: &[&Path], socket: &Path) -> String {
    let mut script = String::new();
    for p in paths {
        let p = p.display();
        script.push_str(&format!(
            "if test -e '{p}'; then echo 'LEAK {p}'; else echo 'hidden {p}'; fi; "
        ));
    }
    script.push_str(&format!("if grep -qa '{SECRET}' /proc/[0-9]*/environ 2>/dev/null; then echo ENV-LEAK; else echo env-clean; fi; "));
    script.push_str(&format!(
        "python3 -c 'import socket; socket.socket(socket.AF_UNIX).connect(\"{}\")' 2>/dev/null && echo SOCKET-LEAK || echo socket-refused; ",
        socket.display()
    ));
    script.push_str("echo '[mcp_servers.planted]' >> \"$CODEX_HOME/config.toml\" 2>/dev/null; mkdir -p \"$CODEX_HOME/skills/planted\" 2>/dev/null; ");
    script.push_str("cat README.md; ");
    script.push_str("echo written > own.txt && echo repo-writable || echo repo-read-only; ");
    script.push_str(
        "find / -name 'rollout-*.jsonl' -not -path '/proc/*' 2>/dev/null | sed 's/^/session /'",
    );
    script
}

async fn attack_in(sandbox: &str) {
    let targets = Targets::new();
    let mut env = Env::start(|s| s["default_sandbox"] = json!(sandbox)).await;
    add_project(&mut env, &targets).await;
    std::fs::write(env.repo.join("README.md"), "own-repo-readme").unwrap();

    // An earlier thread leaves its Codex session behind; the attacking thread must not see it.
    env.command("remember the word pineapple").await;
    env.outcomes(1).await;

    let state = env.state_dir.clone();
    let paths: Vec<PathBuf> = vec![
        state.clone(),
        state.join("button.key"),
        state.join("codex-host.db"),
        state.join("sessions"),
        env.socket.clone(),
        targets.mm_config.clone(),
        targets.other_repo.join("secret.txt"),
        targets.host_tmp_file.path().to_path_buf(),
        targets.outside.path().to_path_buf(),
        PathBuf::from(env!("CARGO_MANIFEST_DIR")),
    ];
    let refs: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
    env.command(&format!("[[mock:sh:{}]]", probe_script(&refs, &env.socket)))
        .await;
    let out = env.outcomes(2).await.remove(1);
    // The probe's output is long enough to come in parts (one screen each).
    let m = &env.whole_answer(&out);
    assert_eq!(prop(&out, "codex_status"), "answered", "{m}");
    assert!(m.contains("Command output:"), "{m}");
    for p in &paths {
        assert!(
            m.contains(&format!("hidden {}", p.display())),
            "{sandbox}: {} is visible to the run:\n{m}",
            p.display()
        );
    }
    assert!(!m.contains("LEAK"), "{sandbox}: {m}");
    assert!(
        m.contains("env-clean") && m.contains("socket-refused"),
        "{sandbox}: {m}"
    );
    assert!(
        m.contains("own-repo-readme"),
        "{sandbox}: the run cannot read its own repository: {m}"
    );
    // At most its own session (Codex may not have written it yet), never the earlier thread's.
    let sessions: Vec<&str> = m
        .lines()
        .filter_map(|l| l.strip_prefix("session "))
        .collect();
    assert!(
        sessions.len() <= 1,
        "{sandbox}: the run sees sessions other than its own: {m}"
    );
    assert!(
        sessions
            .iter()
            .all(|s| s.starts_with("/codex-run/home/sessions/")),
        "{m}"
    );
    let wrote = env.repo.join("own.txt").exists();
    match sandbox {
        "read-only" => assert!(
            !wrote && m.contains("repo-read-only"),
            "read-only run wrote its repository: {m}"
        ),
        _ => assert!(
            wrote && m.contains("repo-writable"),
            "{sandbox} run could not write its repository: {m}"
        ),
    }

    // Whatever the run wrote into its Codex home is gone for the thread's next run.
    env.reply(
        &env.alice,
        &out.post.root_id,
        "[[mock:sh:cat $CODEX_HOME/config.toml; ls -R $CODEX_HOME/skills]]",
    )
    .await;
    let next = env.outcomes(3).await.remove(2);
    assert_eq!(
        prop(&next, "codex_status"),
        "answered",
        "{}",
        next.post.message
    );
    assert!(
        !next.post.message.contains("planted"),
        "{sandbox}: a run planted Codex configuration for the next one: {}",
        next.post.message
    );

    let (_, health) = env.call("GET", "/v1/health", None).await;
    assert_eq!(
        health["isolation"],
        json!({"mode": "bubblewrap", "active": true, "problem": null})
    );
}

/// Another project, `web`, joins the configured ones.
async fn add_project(env: &mut Env, targets: &Targets) {
    let projects = format!(
        "api = {}\nweb = {}",
        env.repo.display(),
        targets.other_repo.display()
    );
    env.settings["projects"] = json!(projects);
    env.push_config().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_run_reaches_nothing_but_its_repository() {
    attack_in("read-only").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workspace_write_run_reaches_nothing_but_its_repository() {
    attack_in("workspace-write").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_access_run_is_still_confined_to_its_repository() {
    attack_in("danger-full-access").await;
}

/// A thread's second run resumes its own session from the thread's own sessions directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thread_resumes_its_own_session_inside_the_sandbox() {
    let env = Env::start(|_| {}).await;
    env.command("remember the word banana").await;
    let root = env.outcomes(1).await.remove(0).post.root_id;
    env.reply(&env.alice, &root, "which word?").await;
    let second = env.outcomes(2).await.remove(1);
    assert_eq!(
        prop(&second, "codex_status"),
        "answered",
        "{}",
        second.post.message
    );
    let last = env.model.requests().last().unwrap().to_string();
    assert!(
        last.contains("remember the word banana"),
        "the resumed run lost its session: {last}"
    );
    assert!(
        env.state_dir.join("sessions").join(&root).is_dir(),
        "no sessions directory for the thread"
    );
}

/// Without bubblewrap, runs are refused with what the admin must do; health and status say why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_are_refused_when_isolation_is_unavailable() {
    let mut env = Env::start(|_| {}).await;
    env.stop_host().await;
    env.host_env = vec![(
        "CODEX_HOST_BWRAP".into(),
        env.dir.path().join("no-such-bwrap").display().to_string(),
    )];
    env.start_host().await;
    let ack = env.command("explain the login flow").await;
    let text = ack["text"].as_str().unwrap_or_default();
    assert!(
        text.contains("isolation is not available") && text.contains("apt-get install bubblewrap"),
        "{ack}"
    );
    assert!(text.contains("Run isolation"), "{ack}");
    assert!(
        env.mm.posts().is_empty(),
        "a refused run posted: {:#?}",
        env.summary()
    );
    let (_, health) = env.call("GET", "/v1/health", None).await;
    assert_eq!(health["isolation"]["active"], false);
    assert!(
        health["isolation"]["problem"]
            .as_str()
            .unwrap()
            .contains("not installed"),
        "{health}"
    );
    let status = env.command("status").await;
    assert!(
        status["text"]
            .as_str()
            .unwrap()
            .contains("isolation unavailable"),
        "{status}"
    );
    assert!(
        env.log().contains("Run isolation: bubblewrap"),
        "the server log does not say why: {}",
        env.log()
    );
}

/// A machine where bubblewrap exists but cannot create namespaces (as in some containers): the
/// refusal carries bubblewrap's own words.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_are_refused_when_namespaces_are_forbidden() {
    let mut env = Env::start(|_| {}).await;
    let fake = env.dir.path().join("bwrap");
    std::fs::write(&fake, "#!/bin/sh\necho 'bwrap: No permissions to create new namespace, likely because the kernel does not allow non-privileged user namespaces.' >&2\nexit 1\n").unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    env.stop_host().await;
    env.host_env = vec![("CODEX_HOST_BWRAP".into(), fake.display().to_string())];
    env.start_host().await;
    let ack = env.command("explain the login flow").await;
    let text = ack["text"].as_str().unwrap_or_default();
    assert!(
        text.contains("No permissions to create new namespace") && text.contains("user namespaces"),
        "{ack}"
    );
    assert!(
        env.mm.posts().is_empty(),
        "a refused run posted: {:#?}",
        env.summary()
    );
}

/// An admin may turn isolation off explicitly; runs then work without bubblewrap, and health says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn isolation_turned_off_runs_without_bubblewrap() {
    let mut env = Env::start(|s| s["run_isolation"] = json!("off")).await;
    env.stop_host().await;
    env.host_env = vec![("CODEX_HOST_BWRAP".into(), "/nonexistent/bwrap".into())];
    env.start_host().await;
    env.command("[[mock:sh:echo codex-home=$CODEX_HOME; env | grep -c CODEX_HOST_SECRET]]")
        .await;
    let out = env.outcomes(1).await.remove(0);
    assert_eq!(
        prop(&out, "codex_status"),
        "answered",
        "{}",
        out.post.message
    );
    // Codex's own environment is still an allowlist: the host's secret is not in it.
    assert!(
        out.post.message.contains("codex-home=") && out.post.message.contains("\n0"),
        "{}",
        out.post.message
    );
    let (_, health) = env.call("GET", "/v1/health", None).await;
    assert_eq!(
        health["isolation"],
        json!({"mode": "off", "active": false, "problem": null})
    );
}
