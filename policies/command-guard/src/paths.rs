//! Where a path points, worked out lexically: the module has no filesystem, so `..` is resolved
//! by name and symlinks are not followed (a symlink inside the repository that leads out of it
//! is the sandbox's business, not this module's).

/// A place a command names, resolved against the working directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// An absolute path, as its components (`/` is the empty list).
    Abs(Vec<String>),
    /// A path under the user's home directory (`~`, `$HOME`, `${HOME}`), as the components
    /// below it. Never inside the repository as far as this module can tell.
    Home(Vec<String>),
    /// Something whose value is only known when the shell runs (`$VAR`, `~user`).
    Unknown,
}

impl Place {
    /// Resolves `path` against `cwd`.
    pub fn resolve(cwd: &Place, path: &str) -> Place {
        let (home, mut parts, rest) = if let Some(rest) = path.strip_prefix('/') {
            (false, Vec::new(), rest)
        } else if let Some(rest) = home_prefix(path) {
            (true, Vec::new(), rest)
        } else if path.starts_with('~') {
            return Place::Unknown;
        } else {
            match cwd {
                Place::Abs(parts) => (false, parts.clone(), path),
                Place::Home(parts) => (true, parts.clone(), path),
                Place::Unknown => return Place::Unknown,
            }
        };
        if rest.contains('$') {
            return Place::Unknown;
        }
        for part in rest.split('/') {
            match part {
                "" | "." => {}
                ".." => {
                    parts.pop();
                }
                other => parts.push(other.to_owned()),
            }
        }
        if home {
            Place::Home(parts)
        } else {
            Place::Abs(parts)
        }
    }

    /// Whether this place is `root` or inside it.
    pub fn within(&self, root: &Place) -> bool {
        match (self, root) {
            (Place::Abs(p), Place::Abs(r)) | (Place::Home(p), Place::Home(r)) => p.starts_with(r),
            _ => false,
        }
    }

    /// The place with its last component dropped when that component is a glob (`/*`, `./*`):
    /// what a glob removes is decided by the directory it lists.
    pub fn glob_parent(self) -> (Place, bool) {
        match self {
            Place::Abs(mut parts) if parts.last().is_some_and(|p| is_glob(p)) => {
                parts.pop();
                (Place::Abs(parts), true)
            }
            Place::Home(mut parts) if parts.last().is_some_and(|p| is_glob(p)) => {
                parts.pop();
                (Place::Home(parts), true)
            }
            other => (other, false),
        }
    }

    /// `/`, a directory right under it (`/usr`, `/home`), or the home directory itself.
    pub fn is_system_root(&self) -> bool {
        match self {
            Place::Abs(parts) => parts.len() <= 1,
            Place::Home(parts) => parts.is_empty(),
            Place::Unknown => false,
        }
    }

    /// For messages: the place as a path.
    pub fn display(&self) -> String {
        match self {
            Place::Abs(parts) => format!("/{}", parts.join("/")),
            Place::Home(parts) if parts.is_empty() => "~".to_owned(),
            Place::Home(parts) => format!("~/{}", parts.join("/")),
            Place::Unknown => "an unknown place".to_owned(),
        }
    }
}

/// The rest of `path` after a leading home-directory reference, if it has one.
fn home_prefix(path: &str) -> Option<&str> {
    ["~", "$HOME", "${HOME}"].iter().find_map(|prefix| {
        let rest = path.strip_prefix(prefix)?;
        (rest.is_empty() || rest.starts_with('/')).then_some(rest)
    })
}

fn is_glob(part: &str) -> bool {
    part.contains(['*', '?', '['])
}

/// Device files that are not really "outside the repository".
pub fn is_harmless_device(path: &str) -> bool {
    matches!(
        path,
        "/dev/null" | "/dev/stdin" | "/dev/stdout" | "/dev/stderr" | "/dev/zero" | "/dev/tty"
    )
}
