//! Posts printed to the terminal, for `codex-host run`: answers on stdout, progress on stderr.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use super::{NewPost, Post};
use crate::protocol::PostKind;

pub struct TerminalChat {
    next: AtomicU64,
    last_progress: Mutex<String>,
    files_dir: PathBuf,
}

impl TerminalChat {
    /// Files that would be attached in Mattermost are written to `files_dir`.
    pub fn new(files_dir: PathBuf) -> Self {
        TerminalChat {
            next: AtomicU64::new(1),
            last_progress: Mutex::new(String::new()),
            files_dir,
        }
    }

    pub fn create_post(&self, post: NewPost) -> Post {
        let id = format!("local-{}", self.next.fetch_add(1, Ordering::Relaxed));
        let progress = PostKind::of(&post.props) == Some(PostKind::Progress);
        if progress {
            self.update_post(&id, &post.message);
        } else {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{}\n", post.message);
            let _ = out.flush();
        }
        Post {
            id,
            channel_id: post.channel_id,
            root_id: post.root_id,
            message: post.message,
            props: post.props,
            ..Post::default()
        }
    }

    /// Progress edits: each new state once, on stderr.
    pub fn update_post(&self, _post_id: &str, message: &str) {
        let mut last = self.last_progress.lock().unwrap_or_else(|p| p.into_inner());
        // The elapsed clock changes every edit; print only when the step itself changes.
        let key: String = message.lines().skip(1).collect::<Vec<_>>().join("\n")
            + message.split('·').next().unwrap_or("");
        if *last != key {
            eprintln!("{}", message.replace('\n', " — "));
            *last = key;
        }
    }

    pub fn save_file(&self, name: &str, bytes: &[u8]) -> String {
        let path = self.files_dir.join(name);
        match std::fs::create_dir_all(&self.files_dir).and_then(|_| std::fs::write(&path, bytes)) {
            Ok(()) => eprintln!("(attachment written to {})", path.display()),
            Err(e) => eprintln!("(could not write attachment {}: {e})", path.display()),
        }
        path.display().to_string()
    }
}
