//! The Codex CLI versions this release was tested with: the pinned one (`tools/codex`) and the
//! earlier ones the suites passed on. Another version may work, but its events and flags were
//! never seen here, so health, `/codex status` and the log say so. No I/O.

/// The oldest version tested.
pub const TESTED_MIN: (u64, u64, u64) = (0, 169, 0);
/// The newest minor version tested (any patch release of it counts as tested).
pub const TESTED_MAX_MINOR: (u64, u64) = (0, 171);

/// The tested range as people read it.
pub fn tested_range() -> String {
    let (a, b, c) = TESTED_MIN;
    let (x, y) = TESTED_MAX_MINOR;
    format!("{a}.{b}.{c} to {x}.{y}.x")
}

/// The `x.y.z` in `codex --version`'s answer (`codex-cli 0.171.0`).
pub fn parse_version(reported: &str) -> Option<(u64, u64, u64)> {
    let word = reported
        .split_whitespace()
        .find(|w| w.chars().next().is_some_and(|c| c.is_ascii_digit()))?;
    let core = word.split(['-', '+']).next()?;
    let mut parts = core.split('.').map(|p| p.parse::<u64>().ok());
    Some((parts.next()??, parts.next()??, parts.next()??))
}

/// Whether a reported version is in the tested range; `None` when it cannot be read.
pub fn is_tested(reported: &str) -> Option<bool> {
    let v = parse_version(reported)?;
    Some(v >= TESTED_MIN && (v.0, v.1) <= TESTED_MAX_MINOR)
}

/// The warning for a version outside the tested range, if it is.
pub fn untested_warning(path: &str, reported: &str) -> Option<String> {
    match is_tested(reported) {
        Some(true) => None,
        Some(false) => Some(format!(
            "Codex CLI `{reported}` (`{path}`) is outside the versions this release was tested with ({}); runs may fail in ways nobody has seen. Install a tested version (`npm install -g @openai/codex@{}.{}`) or upgrade the plugin.",
            tested_range(),
            TESTED_MAX_MINOR.0,
            TESTED_MAX_MINOR.1
        )),
        None => Some(format!(
            "Codex CLI at `{path}` reported `{reported}`, which is not a version this host can read; it was tested with {}.",
            tested_range()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_read_and_placed() {
        assert_eq!(parse_version("codex-cli 0.171.0"), Some((0, 171, 0)));
        assert_eq!(
            parse_version("codex-cli 0.172.0-alpha.1"),
            Some((0, 172, 0))
        );
        assert_eq!(parse_version("codex-cli"), None);
        assert_eq!(is_tested("codex-cli 0.169.0"), Some(true));
        assert_eq!(is_tested("codex-cli 0.171.9"), Some(true));
        assert_eq!(is_tested("codex-cli 0.168.3"), Some(false));
        assert_eq!(is_tested("codex-cli 0.172.0"), Some(false));
        assert_eq!(is_tested("codex-cli 1.0.0"), Some(false));
        assert_eq!(untested_warning("codex", "codex-cli 0.170.1"), None);
        let w = untested_warning("/usr/bin/codex", "codex-cli 0.180.0").unwrap();
        assert!(w.contains("0.169.0 to 0.171.x"), "{w}");
        assert!(w.contains("@openai/codex@0.171"), "{w}");
    }

    #[test]
    fn the_pinned_cli_is_in_the_tested_range() {
        let pin: serde_json::Value =
            serde_json::from_str(include_str!("../../../tools/codex/package.json")).unwrap();
        let pinned = pin["dependencies"]["@openai/codex"].as_str().unwrap();
        assert_eq!(
            is_tested(&format!("codex-cli {pinned}")),
            Some(true),
            "tools/codex pins {pinned}; move TESTED_MAX_MINOR when the pin moves"
        );
    }
}
