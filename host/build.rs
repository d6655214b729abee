//! Builds the bundled `allowlist` policy (policies/allowlist) for wasm32-wasip2 and embeds it in
//! the `codex-host` binary, so that a host installed with `cargo install --path host` enforces
//! System Console's allowlists without the bundle's `policies/` folder. A bundle's
//! `policies/allowlist.wasm`, when present, is still preferred at run time (same source).
//!
//! The module is built with its own cargo, in the policies workspace's target directory
//! (`target/policies-build`, shared with `make policies`), so it is built once for every profile
//! and platform of the host. Needs the `wasm32-wasip2` Rust target; added with rustup when missing.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-wasip2";

fn main() {
    let manifest =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest
        .parent()
        .expect("host/ sits in the repository")
        .to_path_buf();
    let policies = root.join("policies");
    for watched in [
        "policies/allowlist/src",
        "policies/allowlist/Cargo.toml",
        "policies/sdk/src",
        "policies/sdk/Cargo.toml",
        "policies/Cargo.toml",
        "policies/Cargo.lock",
        "policies/.cargo/config.toml",
        "wit",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    println!("cargo:rerun-if-env-changed=CODEX_POLICIES_TARGET_DIR");

    let target_dir = env::var_os("CODEX_POLICIES_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target").join("policies-build"));
    ensure_wasm_target();

    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = Command::new(cargo);
    build
        .current_dir(&policies)
        .args([
            "build",
            "--release",
            "--locked",
            "--quiet",
            "-p",
            "allowlist",
            "--target",
            TARGET,
        ])
        .arg("--target-dir")
        .arg(&target_dir);
    // What cargo passes to this script describes the host's own build (its target, flags, linker
    // wrappers from cargo-zigbuild); none of it applies to a wasm component.
    for (key, _) in env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        let foreign = key == "RUSTFLAGS"
            || key == "CARGO_ENCODED_RUSTFLAGS"
            || key == "CARGO_BUILD_TARGET"
            || key == "CARGO_TARGET_DIR"
            || key == "CARGO_BUILD_TARGET_DIR"
            || key == "CARGO_MAKEFLAGS"
            || key == "RUSTC_WORKSPACE_WRAPPER"
            || key.starts_with("CARGO_PROFILE_")
            || key.starts_with("CARGO_FEATURE_")
            || key.starts_with("CARGO_CFG_")
            || (key.starts_with("CARGO_TARGET_") && key != "CARGO_TARGET_TMPDIR");
        if foreign {
            build.env_remove(&key);
        }
    }
    let status = build.status().unwrap_or_else(|e| {
        panic!("codex-host embeds the allowlist policy: could not run cargo to build it: {e}")
    });
    if !status.success() {
        panic!(
            "codex-host embeds the allowlist policy, and building it failed ({status}).\n\
             Build it alone to see why: (cd policies && cargo build --release -p allowlist)"
        );
    }
    let wasm = target_dir
        .join(TARGET)
        .join("release")
        .join("allowlist.wasm");
    let out =
        PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("allowlist.wasm");
    copy(&wasm, &out);
}

fn ensure_wasm_target() {
    let Ok(listed) = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
    else {
        return; // no rustup: a toolchain installed otherwise must bring the target itself
    };
    let installed = String::from_utf8_lossy(&listed.stdout);
    if installed.lines().any(|l| l.trim() == TARGET) {
        return;
    }
    let added = Command::new("rustup")
        .args(["target", "add", TARGET])
        .status();
    if !matches!(added, Ok(s) if s.success()) {
        panic!(
            "codex-host embeds the allowlist policy, built for {TARGET}, and that Rust target is not \
             installed: run `rustup target add {TARGET}`"
        );
    }
}

fn copy(from: &Path, to: &Path) {
    if let Err(e) = std::fs::copy(from, to) {
        panic!(
            "codex-host embeds the allowlist policy: copying {} failed: {e}",
            from.display()
        );
    }
}
