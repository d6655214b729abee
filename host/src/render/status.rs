//! Texts of `/codex status` that describe the host itself.

/// The loaded policy modules, as health describes them (`name`, `hash`, `world`, `monitor`).
pub fn policy_modules(modules: &[serde_json::Value]) -> String {
    if modules.is_empty() {
        return "Policy modules: none loaded.".to_string();
    }
    let lines: Vec<String> = modules
        .iter()
        .map(|m| {
            let text = |k: &str| m[k].as_str().unwrap_or("?").to_string();
            let hash = text("hash");
            let short = hash.get(..12).unwrap_or(&hash);
            let monitor = if m["monitor"].as_bool() == Some(true) {
                " (monitor only)"
            } else {
                ""
            };
            format!(
                "- `{}` · world {} · sha256 `{short}`{monitor}",
                text("name"),
                text("world")
            )
        })
        .collect();
    format!(
        "Policy modules, in order:
{}",
        lines.join(
            "
"
        )
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_modules_show_name_world_and_a_short_hash() {
        let modules = vec![
            serde_json::json!({"name": "allowlist", "hash": "0123456789abcdef0123", "world": "0.2.0", "monitor": false}),
            serde_json::json!({"name": "audit", "hash": "fedcba", "world": "0.1.0", "monitor": true}),
        ];
        assert_eq!(
            policy_modules(&modules),
            "Policy modules, in order:\n- `allowlist` · world 0.2.0 · sha256 `0123456789ab`\n- `audit` · world 0.1.0 · sha256 `fedcba` (monitor only)"
        );
    }
}
