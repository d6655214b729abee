//! `codex-bench report`: turns the section results into `bench/REPORT.md`, with the machine, the
//! date, the versions, every figure as the median of its rounds with the spread, and each target
//! marked met or not. Run from the repository root (it reads Cargo.lock, go.mod and the pinned
//! Codex CLI for the versions).

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use anyhow::Context;

use crate::results::{Figure, Section};

/// The order sections appear in; unknown ones follow, by id.
const ORDER: [&str; 7] = [
    "policy", "commands", "host", "plugin", "runners", "memory", "bridge",
];

pub fn run(results: &Path, out: &Path, elapsed_secs: Option<u64>) -> anyhow::Result<()> {
    let mut sections = Vec::new();
    for entry in std::fs::read_dir(results).with_context(|| {
        format!(
            "no results in {}: run the benchmarks first",
            results.display()
        )
    })? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "json") {
            sections.push(Section::read(&path)?);
        }
    }
    if sections.is_empty() {
        anyhow::bail!(
            "no results in {}: run the benchmarks first",
            results.display()
        );
    }
    sections.sort_by_key(|s| {
        (
            ORDER
                .iter()
                .position(|id| *id == s.id)
                .unwrap_or(ORDER.len()),
            s.id.clone(),
        )
    });
    let text = render(&sections, elapsed_secs);
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(out, text).with_context(|| format!("cannot write {}", out.display()))?;
    let missed: Vec<String> = sections
        .iter()
        .flat_map(|s| {
            s.figures
                .iter()
                .filter(|f| f.met() == Some(false))
                .map(|f| f.name.clone())
        })
        .collect();
    eprintln!(
        "wrote {} ({} sections; targets missed: {})",
        out.display(),
        sections.len(),
        if missed.is_empty() {
            "none".to_owned()
        } else {
            missed.join("; ")
        }
    );
    Ok(())
}

fn render(sections: &[Section], elapsed_secs: Option<u64>) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# Benchmark report\n");
    let _ = writeln!(
        md,
        "Written by `make bench` (`bench/src/`, `tests/harness/bench_test.go`); do not edit by \
         hand. Every figure is the median of its rounds, with the spread (lowest – highest round) \
         beside it; targets are judged on the median.\n"
    );
    let _ = writeln!(
        md,
        "- Date: {}",
        command_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"])
    );
    let _ = writeln!(md, "- Commit: {}", commit());
    if let Some(secs) = elapsed_secs {
        let _ = writeln!(
            md,
            "- Duration of `make bench` (measurements only): {} min {} s",
            secs / 60,
            secs % 60
        );
    }
    let _ = writeln!(md, "\n## Machine\n");
    for line in machine() {
        let _ = writeln!(md, "- {line}");
    }
    let _ = writeln!(md, "\n## Versions\n");
    for line in versions() {
        let _ = writeln!(md, "- {line}");
    }

    let _ = writeln!(md, "\n## Targets\n");
    let _ = writeln!(md, "| Section | Figure | Median | Target | Met |");
    let _ = writeln!(md, "|---|---|---:|---|---|");
    for section in sections {
        for f in section.figures.iter().filter(|f| f.target.is_some()) {
            let t = f.target.as_ref().expect("filtered");
            let _ = writeln!(
                md,
                "| {} | {} | {} {} | {} {} {} | {} |",
                section.title,
                f.name,
                num(f.median()),
                f.unit,
                t.op,
                num(t.value),
                f.unit,
                met(f),
            );
        }
    }

    for section in sections {
        let _ = writeln!(md, "\n## {}\n", section.title);
        let _ = writeln!(md, "{}\n", section.method);
        let _ = writeln!(md, "| Figure | Median | Spread | Rounds | Target |");
        let _ = writeln!(md, "|---|---:|---:|---:|---|");
        for f in &section.figures {
            let (lo, hi) = f.spread();
            let target = match &f.target {
                Some(t) => format!("{} {} {}: {}", t.op, num(t.value), f.unit, met(f)),
                None => String::new(),
            };
            let _ = writeln!(
                md,
                "| {} | {} {} | {} – {} | {} | {} |",
                f.name,
                num(f.median()),
                f.unit,
                num(lo),
                num(hi),
                f.rounds.len(),
                target
            );
        }
        if !section.notes.is_empty() {
            let _ = writeln!(md);
            for note in &section.notes {
                let _ = writeln!(md, "- {note}");
            }
        }
    }
    md
}

fn met(f: &Figure) -> &'static str {
    match f.met() {
        Some(true) => "met",
        Some(false) => "**not met**",
        None => "",
    }
}

/// Readable at a glance: thousands separated, fewer decimals for bigger numbers.
fn num(x: f64) -> String {
    if !x.is_finite() {
        return "–".into();
    }
    let digits = if x.abs() >= 100.0 {
        0
    } else if x.abs() >= 10.0 {
        1
    } else {
        2
    };
    let s = format!("{x:.digits$}");
    let (int, frac) = s
        .split_once('.')
        .map_or((s.as_str(), None), |(i, f)| (i, Some(f)));
    let (sign, int) = int.strip_prefix('-').map_or(("", int), |i| ("-", i));
    let mut grouped = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    match frac {
        Some(f) => format!("{sign}{grouped}.{f}"),
        None => format!("{sign}{grouped}"),
    }
}

fn command_line(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".into())
}

fn commit() -> String {
    let sha = command_line("git", &["rev-parse", "--short", "HEAD"]);
    let dirty = !command_line("git", &["status", "--porcelain", "--untracked-files=no"]).is_empty();
    if dirty {
        format!("{sha} with uncommitted changes")
    } else {
        sha
    }
}

fn machine() -> Vec<String> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .and_then(|r| r.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into());
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_gib = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| format!("{:.1} GiB", kb / 1024.0 / 1024.0))
        .unwrap_or_else(|| "unknown".into());
    let os = std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("PRETTY_NAME=")
                    .map(|v| v.trim_matches('"').to_owned())
            })
        })
        .unwrap_or_else(|| "unknown".into());
    let load = std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into());
    vec![
        format!("CPU: {model}, {cpus} logical CPUs available to the process"),
        format!("Memory: {mem_gib}"),
        format!("OS: {os}, kernel {}", command_line("uname", &["-r"])),
        format!("Load average when the report was written (1, 5, 15 min): {load}"),
    ]
}

fn versions() -> Vec<String> {
    let codex = std::fs::read_to_string("tools/codex/node_modules/@openai/codex/package.json")
        .ok()
        .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
        .and_then(|v| v["version"].as_str().map(str::to_owned))
        .unwrap_or_else(|| "not installed".into());
    let mattermost = std::fs::read_to_string("tests/harness/go.mod")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.trim()
                    .strip_prefix("github.com/mattermost/mattermost/server/public ")
                    .map(|v| v.trim().to_owned())
            })
        })
        .unwrap_or_else(|| "unknown".into());
    vec![
        format!(
            "{} (release profile, thin LTO)",
            command_line("rustc", &["--version"])
        ),
        command_line("go", &["version"]),
        format!("Node.js {}", command_line("node", &["--version"])),
        format!("wasmtime {}", locked_version("wasmtime")),
        format!("cedar-policy {}", locked_version("cedar-policy")),
        format!("Codex CLI (@openai/codex) {codex}"),
        format!("Mattermost server plugin SDK (server/public) {mattermost}"),
    ]
}

/// The version of a crate in Cargo.lock (the first one, if several are locked).
pub fn locked_version(name: &str) -> String {
    let lock = std::fs::read_to_string("Cargo.lock").unwrap_or_default();
    let needle = format!("name = \"{name}\"");
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() == needle {
            if let Some(v) = lines
                .next()
                .and_then(|l| l.trim().strip_prefix("version = "))
            {
                return v.trim_matches('"').to_owned();
            }
        }
    }
    "unknown".into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::Figure;

    #[test]
    fn numbers_read_at_a_glance() {
        assert_eq!(num(1234567.8), "1,234,568");
        assert_eq!(num(123.4), "123");
        assert_eq!(num(12.34), "12.3");
        assert_eq!(num(1.234), "1.23");
        assert_eq!(num(-4321.0), "-4,321");
        assert_eq!(num(f64::NAN), "–");
    }

    #[test]
    fn missed_targets_are_marked() {
        let section = Section {
            id: "policy".into(),
            title: "Policy".into(),
            method: "m".into(),
            figures: vec![
                Figure::new("ratio", "×", vec![3.0, 2.5, 4.0]).target("<=", 2.0),
                Figure::new("p50", "µs", vec![10.0, 12.0, 11.0]).target("<", 100.0),
                Figure::new("untargeted", "µs", vec![1.0]),
            ],
            notes: vec!["why".into()],
        };
        let md = render(&[section], Some(125));
        assert!(
            md.contains("| Policy | ratio | 3.00 × | <= 2.00 × | **not met** |"),
            "{md}"
        );
        assert!(
            md.contains("| p50 | 11.0 µs | 10.0 – 12.0 | 3 | < 100 µs: met |"),
            "{md}"
        );
        assert!(md.contains("2 min 5 s"));
        assert!(md.contains("- why"));
    }
}
