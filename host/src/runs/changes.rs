//! The turn's changes as its outcome shows them: the unified diff Codex reported
//! (`turn/diff/updated`) attached to the outcome post as `changes.diff`, redacted, and the
//! lines it adds and removes for the footer.

use tracing::warn;

use crate::state::Host;

/// The name Mattermost shows (and previews with diff highlighting).
pub(super) const DIFF_FILE_NAME: &str = "changes.diff";

/// Lines added and removed by a unified diff (file headers not counted).
pub(super) fn diff_stat(diff: &str) -> (u64, u64) {
    diff.lines().fold((0, 0), |(a, r), l| {
        if l.starts_with('+') && !l.starts_with("+++") {
            (a + 1, r)
        } else if l.starts_with('-') && !l.starts_with("---") {
            (a, r + 1)
        } else {
            (a, r)
        }
    })
}

impl Host {
    /// Uploads the redacted diff to `channel_id`; the file id, or `None` when there is nothing
    /// to attach or Mattermost refused (the outcome is posted without it).
    pub(super) async fn attach_diff(&self, channel_id: &str, diff: Option<&str>) -> Option<String> {
        let diff = diff.filter(|d| !d.trim().is_empty())?;
        let body = self.redactor().redact(diff);
        match self
            .chat
            .upload_file(channel_id, DIFF_FILE_NAME, body.into_bytes())
            .await
        {
            Ok(id) => Some(id),
            Err(e) => {
                warn!(error = %e, "could not attach the turn's diff");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_do_not_count() {
        let d = "diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1 +1,2 @@\n-a\n+b\n+c\n";
        assert_eq!(diff_stat(d), (2, 1));
    }
}
