//! The judgement of one command: its argv, or the script of a shell wrapper, word by word.
//!
//! Every simple command gets a `Judgement`; a command line is as severe as its most severe part
//! (`ls && git push` needs approval, `ls; rm -rf /` is denied).

use crate::paths::{is_harmless_device, Place};
use crate::programs::{read_only_flags, scripts, INSTALLERS, NETWORK, READ_ONLY, RUNNERS, SHELLS};
use crate::shell::{self, Redirect, Segment};

/// What the guard makes of a command, least severe first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Judgement {
    /// Only reads, inside the repository.
    ReadOnly,
    /// Allowed by the named rule (a file change inside the repository).
    Allow(&'static str),
    /// Not one the guard has a rule for (e.g. `cargo test`): it abstains.
    Unlisted,
    /// A human decides: rule id and reason.
    Approval(&'static str, String),
    /// Never: rule id and reason.
    Deny(&'static str, String),
}

impl Judgement {
    /// The more severe of the two; on a tie the first, so the reason names what came first.
    pub fn and(self, other: Judgement) -> Judgement {
        if other.severity() > self.severity() {
            other
        } else {
            self
        }
    }

    fn severity(&self) -> u8 {
        match self {
            Judgement::ReadOnly | Judgement::Allow(_) => 0,
            Judgement::Unlisted => 1,
            Judgement::Approval(..) => 2,
            Judgement::Deny(..) => 3,
        }
    }
}

/// What a command is judged against.
pub struct Scope<'a> {
    /// The repository root; `None` when the run has no project.
    pub repo: Option<Place>,
    /// Program names the admin adds to the read-only list.
    pub extra_read_only: &'a [String],
}

/// How deep shell wrappers may nest (`bash -c "sh -c '…'"`) before the guard gives up and asks.
const MAX_DEPTH: u8 = 4;

/// Judges `argv` run in `cwd`.
pub fn judge(scope: &Scope, argv: &[String], cwd: &str) -> Judgement {
    let mut cwd = Place::resolve(&Place::Abs(Vec::new()), cwd);
    let words: Vec<&str> = argv.iter().map(String::as_str).collect();
    let start = match &scope.repo {
        None => Judgement::Approval(
            "outside-repo",
            "The run has no project, so the command cannot be kept to a repository.".into(),
        ),
        Some(repo) if !cwd.within(repo) => Judgement::Approval(
            "outside-repo",
            format!(
                "The command runs in {}, outside the repository.",
                cwd.display()
            ),
        ),
        Some(_) => Judgement::ReadOnly,
    };
    start.and(simple(scope, &mut cwd, &words, &[], 0))
}

/// One simple command: its words and redirections.
fn simple(
    scope: &Scope,
    cwd: &mut Place,
    words: &[&str],
    redirects: &[Redirect],
    depth: u8,
) -> Judgement {
    let mut j = Judgement::ReadOnly;
    for r in redirects {
        j = j.and(path(scope, cwd, &r.target));
        if r.output && !is_harmless_device(&r.target) {
            j = j.and(Judgement::Unlisted);
        }
    }
    let words = skip_while(words, |w| is_assignment(w) || matches!(w, "{" | "}" | "!"));
    let Some((&first, args)) = words.split_first() else {
        return j;
    };
    if first.contains('/') && !first.starts_with('/') {
        j = j.and(path(scope, cwd, first));
    }
    let program = first.rsplit('/').next().unwrap_or(first);
    j.and(program_judgement(scope, cwd, program, args, depth))
}

fn program_judgement(
    scope: &Scope,
    cwd: &mut Place,
    program: &str,
    args: &[&str],
    depth: u8,
) -> Judgement {
    match program {
        "rm" | "rmdir" | "unlink" | "shred" => remove(scope, cwd, args),
        "git" => git(scope, cwd, args),
        "cd" | "pushd" => {
            let target = args
                .iter()
                .find(|a| !a.starts_with('-'))
                .copied()
                .unwrap_or("~");
            let j = path(scope, cwd, target);
            *cwd = Place::resolve(cwd, target);
            j
        }
        "sudo" | "doas" | "su" | "pkexec" | "runuser" => Judgement::Approval(
            "escalated",
            format!("`{program}` runs the command as another user, outside the sandbox."),
        )
        .and(wrapped(
            scope,
            cwd,
            args,
            &["-u", "-g", "-h", "-p", "-C", "-U"],
            depth,
        )),
        "env" => wrapped(scope, cwd, args, &["-u", "-C", "-S"], depth),
        "nice" | "ionice" => wrapped(scope, cwd, args, &["-n", "-c"], depth),
        "timeout" => {
            let rest = skip_flags(args, &["-s", "-k"]);
            wrapped(scope, cwd, rest.get(1..).unwrap_or(&[]), &[], depth)
        }
        "nohup" | "time" | "command" | "exec" | "builtin" | "stdbuf" => {
            wrapped(scope, cwd, args, &[], depth)
        }
        "xargs" => {
            let inner = skip_flags(args, &["-n", "-I", "-P", "-d", "-L", "-s", "-E", "-a"]);
            let j = wrapped(scope, cwd, inner, &[], depth);
            if matches!(
                inner.first().map(|p| p.rsplit('/').next().unwrap_or(p)),
                Some("rm" | "shred")
            ) {
                j.and(Judgement::Approval(
                    "destructive-rm",
                    "`xargs rm` removes files named only at run time.".into(),
                ))
            } else {
                j
            }
        }
        p if SHELLS.contains(&p) => shell_wrapper(scope, cwd, args, depth),
        p if NETWORK.contains(&p) => Judgement::Approval(
            "network",
            format!("`{p}` uses the network or leaves the sandbox."),
        ),
        p if RUNNERS.contains(&p) => install(p),
        "python" | "python3" if matches!(args, ["-m", "pip", ..]) => {
            program_judgement(scope, cwd, "pip", &args[2..], depth)
        }
        p => {
            if let Some((_, subcommands)) = INSTALLERS.iter().find(|(name, _)| *name == p) {
                let sub = args
                    .iter()
                    .find(|a| !a.starts_with('-') || p == "pacman")
                    .copied()
                    .unwrap_or("");
                if subcommands.contains(&sub) {
                    return install(p);
                }
            }
            let read_only = (READ_ONLY.contains(&p)
                || scope.extra_read_only.iter().any(|x| x == p))
                && read_only_flags(p, args);
            operands(scope, cwd, p, args).and(if read_only {
                Judgement::ReadOnly
            } else {
                Judgement::Unlisted
            })
        }
    }
}

fn install(program: &str) -> Judgement {
    Judgement::Approval(
        "package-install",
        format!("`{program}` installs or runs packages from a registry."),
    )
}

/// A wrapper such as `env` or `sudo`: the command it runs, after the wrapper's own options
/// (`with_value` names those that take a value) and `NAME=value` assignments.
fn wrapped(
    scope: &Scope,
    cwd: &mut Place,
    args: &[&str],
    with_value: &[&str],
    depth: u8,
) -> Judgement {
    let rest = skip_flags(args, with_value);
    let rest = skip_while(rest, is_assignment);
    simple(scope, cwd, rest, &[], depth)
}

/// `bash -lc "<script>"`: the script, read as the shell would. Without `-c` the shell runs a
/// script file (or stdin) the guard cannot see.
fn shell_wrapper(scope: &Scope, cwd: &mut Place, args: &[&str], depth: u8) -> Judgement {
    let mut has_c = false;
    let mut i = 0;
    while let Some(arg) = args.get(i) {
        if matches!(*arg, "-o" | "+o" | "-O" | "+O") {
            i += 2;
            continue;
        }
        if !(arg.starts_with('-') || arg.starts_with('+')) || *arg == "-" || *arg == "--" {
            break;
        }
        if !arg.starts_with("--") && arg.contains('c') {
            has_c = true;
        }
        i += 1;
    }
    if !has_c {
        return operands(scope, cwd, "sh", &args[i.min(args.len())..]).and(Judgement::Unlisted);
    }
    let Some(script) = args.get(i) else {
        return Judgement::Approval(
            "opaque-shell",
            "A shell is started without a script.".into(),
        );
    };
    if depth >= MAX_DEPTH {
        return Judgement::Approval("opaque-shell", "Shells nest too deep to read.".into());
    }
    match shell::parse(script) {
        Ok(segments) => {
            segments
                .iter()
                .fold(Judgement::ReadOnly, |j, Segment { words, redirects }| {
                    let words: Vec<&str> = words.iter().map(String::as_str).collect();
                    j.and(simple(scope, cwd, &words, redirects, depth + 1))
                })
        }
        Err(shell::Opaque(what)) => Judgement::Approval(
            "opaque-shell",
            format!("The shell script uses {what}, so what it runs is only known when it runs."),
        ),
    }
}

/// `rm` and friends: removing `/`, a top-level directory, the home directory, the repository
/// or anything containing it is denied; removing outside the repository needs approval.
fn remove(scope: &Scope, cwd: &Place, args: &[&str]) -> Judgement {
    let mut recursive = false;
    let mut operands = Vec::new();
    let mut options_done = false;
    for &arg in args {
        if options_done || !arg.starts_with('-') || arg == "-" {
            operands.push(arg);
        } else if arg == "--" {
            options_done = true;
        } else if arg == "--no-preserve-root" {
            return Judgement::Deny(
                "destructive-rm",
                "`rm --no-preserve-root` is never run.".into(),
            );
        } else if arg == "--recursive" || (!arg.starts_with("--") && arg.contains(['r', 'R'])) {
            recursive = true;
        }
    }
    let mut j = Judgement::Unlisted;
    for operand in operands {
        let (place, glob) = Place::resolve(cwd, operand).glob_parent();
        let contains_repo = scope.repo.as_ref().is_some_and(|repo| repo.within(&place));
        if (recursive || glob) && (place.is_system_root() || contains_repo) {
            let what = if place.is_system_root() {
                place.display()
            } else if scope.repo.as_ref() == Some(&place) {
                "the repository".to_owned()
            } else {
                format!("{}, which contains the repository", place.display())
            };
            let all = if glob { "everything in " } else { "" };
            return Judgement::Deny(
                "destructive-rm",
                format!("`rm {}` would remove {all}{what}.", args.join(" ")),
            );
        }
        if place == Place::Unknown && recursive {
            j = j.and(Judgement::Approval(
                "destructive-rm",
                format!(
                    "`rm {}` removes a path only known at run time.",
                    args.join(" ")
                ),
            ));
        }
        j = j.and(path(scope, cwd, operand));
    }
    j
}

/// `git`: reading subcommands are read-only, `push` and the network ones need approval.
fn git(scope: &Scope, cwd: &mut Place, args: &[&str]) -> Judgement {
    let mut j = Judgement::ReadOnly;
    let mut i = 0;
    while let Some(&arg) = args.get(i) {
        match arg {
            "-C" => {
                let target = args.get(i + 1).copied().unwrap_or(".");
                j = j.and(path(scope, cwd, target));
                *cwd = Place::resolve(cwd, target);
                i += 2;
            }
            "-c" => i += 2,
            a if a.starts_with("--git-dir=") || a.starts_with("--work-tree=") => {
                j = j.and(path(scope, cwd, &a[a.find('=').map_or(0, |p| p + 1)..]));
                i += 1;
            }
            a if a.starts_with('-') => i += 1,
            _ => break,
        }
    }
    let sub = args.get(i).copied().unwrap_or("");
    let rest = args.get(i + 1..).unwrap_or(&[]);
    let listing = |allowed: &[&str]| rest.iter().all(|a| allowed.contains(a));
    let read_only = match sub {
        "push" => {
            return j.and(Judgement::Approval(
                "git-push",
                "`git push` publishes commits.".into(),
            ))
        }
        "fetch" | "pull" | "clone" | "ls-remote" | "submodule" => {
            return j.and(Judgement::Approval(
                "network",
                format!("`git {sub}` uses the network."),
            ))
        }
        "status" | "diff" | "log" | "show" | "blame" | "rev-parse" | "ls-files" | "ls-tree"
        | "grep" | "describe" | "shortlog" | "cat-file" | "rev-list" | "reflog" | "" => {
            !rest.iter().any(|a| a.starts_with("--output"))
        }
        "branch" => listing(&[
            "-a",
            "-r",
            "-v",
            "-vv",
            "-l",
            "--list",
            "--all",
            "--remotes",
            "--show-current",
        ]),
        "remote" => listing(&["-v", "--verbose", "show", "get-url", "origin"]),
        "tag" => listing(&["-l", "--list"]),
        "stash" => listing(&["list"]),
        "config" => rest
            .iter()
            .any(|a| matches!(*a, "--get" | "--list" | "-l" | "--get-regexp")),
        _ => false,
    };
    let program = if sub == "grep" { "grep" } else { "git" };
    j.and(operands(scope, cwd, program, rest))
        .and(if read_only {
            Judgement::ReadOnly
        } else {
            Judgement::Unlisted
        })
}

/// Checks every operand that names a place (or a `--flag=place`) is inside the repository.
/// `echo` and `printf` print their operands; a pattern or script is not a path.
fn operands(scope: &Scope, cwd: &Place, program: &str, args: &[&str]) -> Judgement {
    if matches!(program, "echo" | "printf") {
        return Judgement::ReadOnly;
    }
    let skip = scripts(program, args);
    let mut j = Judgement::ReadOnly;
    for &arg in args {
        if skip.iter().any(|s| std::ptr::eq(*s, arg)) {
            continue;
        }
        let candidate = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with('-') => value,
            _ if arg.starts_with('-') => continue,
            _ => arg,
        };
        if looks_like_path(candidate) {
            j = j.and(path(scope, cwd, candidate));
        }
    }
    j
}

fn looks_like_path(s: &str) -> bool {
    s.starts_with(['/', '~', '$'])
        || s == ".."
        || s.starts_with("../")
        || s.contains("/../")
        || s.ends_with("/..")
}

/// Approval when `target` is outside the repository.
fn path(scope: &Scope, cwd: &Place, target: &str) -> Judgement {
    if is_harmless_device(target) {
        return Judgement::ReadOnly;
    }
    let place = Place::resolve(cwd, target);
    match &scope.repo {
        Some(repo) if place.within(repo) => Judgement::ReadOnly,
        _ if place == Place::Unknown => Judgement::Approval(
            "outside-repo",
            format!("`{target}` is only known at run time; it may be outside the repository."),
        ),
        _ => Judgement::Approval(
            "outside-repo",
            format!(
                "The command touches {}, outside the repository.",
                place.display()
            ),
        ),
    }
}

fn is_assignment(word: &str) -> bool {
    word.split_once('=').is_some_and(|(name, _)| {
        !name.is_empty()
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

/// `args` after the leading options; `with_value` names options whose value is the next word.
fn skip_flags<'a, 'b>(args: &'a [&'b str], with_value: &[&str]) -> &'a [&'b str] {
    let mut i = 0;
    while let Some(arg) = args.get(i) {
        if *arg == "--" {
            return &args[i + 1..];
        }
        if !arg.starts_with('-') {
            break;
        }
        i += if with_value.contains(arg) { 2 } else { 1 };
    }
    &args[i.min(args.len())..]
}

fn skip_while<'a, 'b>(words: &'a [&'b str], skip: impl Fn(&str) -> bool) -> &'a [&'b str] {
    let n = words.iter().take_while(|w| skip(w)).count();
    &words[n..]
}
