use super::*;

fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn the_environment_is_an_allowlist() {
    let host = vars(&[
        ("PATH", "/usr/bin"),
        ("LANG", "C.UTF-8"),
        ("LC_ALL", "C"),
        ("CODEX_HOST_SECRET", "s3cret"),
        ("MM_SQLSETTINGS_DATASOURCE", "postgres://u:p@db"),
        ("HTTPS_PROXY", "http://user:pw@proxy"),
        ("OPENAI_API_KEY", "sk-x"),
        ("HOME", "/var/lib/mattermost"),
    ]);
    let pass = vec![
        "OPENAI_API_KEY".to_string(),
        "CODEX_HOST_SECRET".to_string(),
        "MM_SQLSETTINGS_DATASOURCE".to_string(),
    ];
    let env = codex_env(
        &host,
        &pass,
        Some("/codex-run/user"),
        Some(Path::new("/codex-run/home")),
    );
    let names: Vec<&str> = env.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        [
            "PATH",
            "LANG",
            "LC_ALL",
            "OPENAI_API_KEY",
            "HOME",
            "CODEX_HOME"
        ]
    );
    assert!(env.contains(&("HOME".into(), "/codex-run/user".into())));
}

#[test]
fn host_credentials_cannot_be_named() {
    let names = [
        "OPENAI_API_KEY",
        "CODEX_HOST_SECRET",
        "MM_SERVICESETTINGS_SITEURL",
        "1BAD",
        "A-B",
    ]
    .map(String::from);
    let problems = check_env_names(&names).join("\n");
    assert!(!problems.contains("`OPENAI_API_KEY`"), "{problems}");
    for n in [
        "CODEX_HOST_SECRET",
        "MM_SERVICESETTINGS_SITEURL",
        "1BAD",
        "A-B",
    ] {
        assert!(
            problems.contains(&format!("`{n}`")),
            "{n} not refused: {problems}"
        );
    }
}

#[test]
fn thread_keys_become_plain_directory_names() {
    assert_eq!(safe_key("new:abc"), "new_abc");
    assert_eq!(safe_key("../../etc"), "______etc");
    assert_eq!(safe_key(""), "_");
}

#[test]
fn env_scripts_name_their_interpreter() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("codex.js");
    std::fs::write(&script, "#!/usr/bin/env node\nconsole.log(1)\n").unwrap();
    assert_eq!(interpreter(&script).as_deref(), Some("node"));
    std::fs::write(&script, "#!/bin/sh -e\n").unwrap();
    assert_eq!(interpreter(&script).as_deref(), Some("/bin/sh"));
    std::fs::write(&script, "\x7fELF").unwrap();
    assert_eq!(interpreter(&script), None);
}

#[test]
fn an_npm_install_binds_its_package_tree() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("node_modules/@openai/codex/bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::write(bin.join("codex.js"), "#!/usr/bin/env node\n").unwrap();
    let dirs = program_dirs(&bin.join("codex.js"), "/usr/bin:/bin");
    assert_eq!(dirs.first(), Some(&dir.path().join("node_modules")));
}

#[test]
fn a_thread_from_before_isolation_takes_only_its_own_session_along() {
    let dir = tempfile::tempdir().unwrap();
    let admin = dir.path().join("admin/sessions/2026/11/27");
    std::fs::create_dir_all(&admin).unwrap();
    std::fs::write(admin.join("rollout-2026-11-27T09-00-00-th-1.jsonl"), "mine").unwrap();
    std::fs::write(
        admin.join("rollout-2026-11-27T09-01-00-th-2.jsonl"),
        "someone else's",
    )
    .unwrap();
    let thread = dir.path().join("state/sessions/root-1");
    std::fs::create_dir_all(&thread).unwrap();
    adopt_session(&dir.path().join("admin/sessions"), &thread, "th-1").unwrap();
    let copied = thread.join("2026/11/27/rollout-2026-11-27T09-00-00-th-1.jsonl");
    assert_eq!(std::fs::read_to_string(&copied).unwrap(), "mine");
    assert!(
        find_file(&thread, "th-2.jsonl", 4).is_none(),
        "another thread's session was copied"
    );
    // Once the thread has its session, the admin's copy is not read again.
    std::fs::write(&copied, "continued").unwrap();
    adopt_session(&dir.path().join("admin/sessions"), &thread, "th-1").unwrap();
    assert_eq!(std::fs::read_to_string(&copied).unwrap(), "continued");
}

#[tokio::test]
async fn a_missing_bwrap_is_a_problem_named_for_the_admin() {
    let dir = tempfile::tempdir().unwrap();
    let iso = Isolation::new(
        IsolationMode::Bubblewrap,
        dir.path().join("no-bwrap"),
        dir.path(),
    )
    .probe()
    .await;
    let info = iso.info();
    assert!(!info.active);
    assert!(info.problem.unwrap().contains("apt-get install bubblewrap"));
    assert!(iso.refusal().unwrap().contains("Run isolation"));
    let off = Isolation::new(IsolationMode::Off, dir.path().join("no-bwrap"), dir.path())
        .probe()
        .await;
    assert_eq!(off.refusal(), None);
    assert_eq!(
        off.info(),
        IsolationInfo {
            mode: "off".into(),
            active: false,
            problem: None
        }
    );
}
