//! The rate-limit headroom line of an outcome's footer: how much of the account's Codex usage
//! windows is used, e.g. `5h limit 42% used · weekly 10% used`. Absent when Codex reported none.

use crate::model::{RateLimits, RateWindow};

/// `None` when no window is known (an API-key provider reports none).
pub fn headroom(limits: &RateLimits) -> Option<String> {
    let windows: Vec<RateWindow> = [limits.primary, limits.secondary]
        .into_iter()
        .flatten()
        .collect();
    let parts: Vec<String> = windows
        .iter()
        .enumerate()
        .map(|(i, w)| {
            // The first names what the figures are; the rest read on from it.
            let noun = if i == 0 { " limit" } else { "" };
            let name = window_name(w.window_minutes);
            let name = if name.is_empty() && i > 0 {
                "other".to_string()
            } else {
                name
            };
            format!("{name}{noun} {}% used", w.used_percent.clamp(0, 100))
                .trim_start()
                .to_string()
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join(" · "))
}

/// `5h`, `weekly`, `daily`, `30d`, `90m`; empty when the length is unknown.
fn window_name(minutes: Option<i64>) -> String {
    match minutes {
        Some(10080) => "weekly".into(),
        Some(1440) => "daily".into(),
        Some(m) if m > 0 && m % 1440 == 0 => format!("{}d", m / 1440),
        Some(m) if m > 0 && m % 60 == 0 => format!("{}h", m / 60),
        Some(m) if m > 0 => format!("{m}m"),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(used_percent: i64, minutes: Option<i64>) -> Option<RateWindow> {
        Some(RateWindow {
            used_percent,
            window_minutes: minutes,
        })
    }

    #[test]
    fn both_windows_read_short() {
        let l = RateLimits {
            primary: window(42, Some(300)),
            secondary: window(10, Some(10080)),
        };
        assert_eq!(
            headroom(&l).as_deref(),
            Some("5h limit 42% used · weekly 10% used")
        );
    }

    #[test]
    fn unknown_parts_are_left_out_or_named_plainly() {
        assert_eq!(headroom(&RateLimits::default()), None);
        let only_long = RateLimits {
            primary: None,
            secondary: window(97, Some(10080)),
        };
        assert_eq!(
            headroom(&only_long).as_deref(),
            Some("weekly limit 97% used")
        );
        let no_lengths = RateLimits {
            primary: window(5, None),
            secondary: window(140, None),
        };
        assert_eq!(
            headroom(&no_lengths).as_deref(),
            Some("limit 5% used · other 100% used")
        );
        let odd = RateLimits {
            primary: window(1, Some(90)),
            secondary: window(2, Some(43200)),
        };
        assert_eq!(
            headroom(&odd).as_deref(),
            Some("90m limit 1% used · 30d 2% used")
        );
    }

    #[test]
    fn the_footer_ends_with_the_headroom() {
        let f = crate::render::footer(&crate::render::Footer {
            project: "api",
            elapsed: std::time::Duration::from_secs(5),
            rate_limits: RateLimits {
                primary: window(42, Some(300)),
                secondary: None,
            },
            ..Default::default()
        });
        assert_eq!(f, "\n\n---\n*`api` · 5s · 5h limit 42% used*");
    }

    #[test]
    fn a_sparse_update_keeps_what_it_leaves_out() {
        let mut l = RateLimits {
            primary: window(40, Some(300)),
            secondary: window(10, Some(10080)),
        };
        l.merge(RateLimits {
            primary: window(41, Some(300)),
            secondary: None,
        });
        assert_eq!(l.primary, window(41, Some(300)));
        assert_eq!(l.secondary, window(10, Some(10080)));
    }
}
