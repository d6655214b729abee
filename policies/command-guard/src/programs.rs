//! What the guard knows about programs: which only read, which use the network, which install
//! packages, and the flags that turn a reading program into a writing one. Edit these tables to
//! change what counts as what; `command` applies them.

pub const SHELLS: [&str; 7] = ["sh", "bash", "zsh", "dash", "ksh", "ash", "fish"];

/// Programs that only read (some only without certain flags, see `read_only_flags`).
pub const READ_ONLY: [&str; 56] = [
    "ls",
    "cat",
    "head",
    "tail",
    "wc",
    "rg",
    "grep",
    "egrep",
    "fgrep",
    "ag",
    "find",
    "fd",
    "tree",
    "pwd",
    "echo",
    "printf",
    "which",
    "type",
    "file",
    "stat",
    "du",
    "df",
    "sort",
    "uniq",
    "cut",
    "tr",
    "nl",
    "diff",
    "cmp",
    "comm",
    "sed",
    "jq",
    "basename",
    "dirname",
    "realpath",
    "readlink",
    "true",
    "false",
    "test",
    "[",
    "date",
    "whoami",
    "id",
    "uname",
    "printenv",
    "sha256sum",
    "sha1sum",
    "md5sum",
    "cksum",
    "od",
    "hexdump",
    "tac",
    "rev",
    "seq",
    "column",
    "sleep",
];

/// Programs whose first operand is a pattern or a script, not a path.
pub const PATTERN_FIRST: [&str; 6] = ["grep", "egrep", "fgrep", "rg", "ag", "sed"];

pub const NETWORK: [&str; 24] = [
    "curl",
    "wget",
    "ssh",
    "scp",
    "sftp",
    "rsync",
    "nc",
    "ncat",
    "netcat",
    "telnet",
    "ftp",
    "ping",
    "dig",
    "nslookup",
    "http",
    "https",
    "aria2c",
    "gh",
    "docker",
    "podman",
    "kubectl",
    "helm",
    "terraform",
    "socat",
];

/// Package managers and the subcommands that install (and so download and run code).
pub const INSTALLERS: [(&str, &[&str]); 20] = [
    (
        "npm",
        &[
            "install", "i", "add", "ci", "update", "up", "upgrade", "exec",
        ],
    ),
    ("pnpm", &["install", "i", "add", "update", "up", "dlx"]),
    ("yarn", &["", "install", "add", "upgrade", "dlx"]),
    ("bun", &["install", "i", "add", "update", "x"]),
    ("pip", &["install", "download"]),
    ("pip3", &["install", "download"]),
    ("pipx", &["install", "run"]),
    ("uv", &["pip", "add", "sync", "tool", "run"]),
    ("poetry", &["add", "install", "update"]),
    ("conda", &["install", "create", "update"]),
    ("cargo", &["install", "add", "update", "fetch"]),
    ("go", &["install", "get"]),
    ("gem", &["install", "update"]),
    ("apt", &["install", "update", "upgrade", "reinstall"]),
    (
        "apt-get",
        &["install", "update", "upgrade", "reinstall", "dist-upgrade"],
    ),
    ("dnf", &["install", "update", "upgrade", "reinstall"]),
    ("yum", &["install", "update", "upgrade", "reinstall"]),
    ("apk", &["add", "update", "upgrade"]),
    ("brew", &["install", "upgrade", "update", "reinstall"]),
    ("pacman", &["-S", "-Sy", "-Syu", "-U"]),
];

/// Programs that download and run a package in one go.
pub const RUNNERS: [&str; 4] = ["npx", "pnpx", "bunx", "uvx"];

/// Flags that make an otherwise read-only program write or run something.
pub fn read_only_flags(program: &str, args: &[&str]) -> bool {
    match program {
        "sed" => {
            !args
                .iter()
                .any(|a| a.starts_with("-i") || a.starts_with("--in-place"))
                && scripts(program, args)
                    .iter()
                    .all(|s| s.chars().all(|c| "0123456789,$pdq;{}! \n".contains(c)))
        }
        "sort" => !args
            .iter()
            .any(|a| a.starts_with("-o") || a.starts_with("--output")),
        "find" => !args.iter().any(|a| {
            matches!(*a, "-delete" | "-exec" | "-execdir" | "-ok" | "-okdir")
                || a.starts_with("-fprint")
                || a.starts_with("-fls")
        }),
        "rg" => !args.iter().any(|a| a.starts_with("--pre")),
        _ => true,
    }
}

/// The pattern or script operands of a `PATTERN_FIRST` program: the `-e` values, else the first
/// operand.
pub fn scripts<'a>(program: &str, args: &[&'a str]) -> Vec<&'a str> {
    let mut given = Vec::new();
    for pair in args.windows(2) {
        if matches!(pair[0], "-e" | "--regexp" | "--expression") {
            given.push(pair[1]);
        }
    }
    if given.is_empty() && PATTERN_FIRST.contains(&program) {
        given.extend(args.iter().find(|a| !a.starts_with('-')));
    }
    given
}
