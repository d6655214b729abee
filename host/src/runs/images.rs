//! Images attached to the post that asked for a run, handed to Codex with `-i`.
//!
//! Only the triggering post's own files count (a reply with a screenshot); other files in the
//! thread are named in the transcript. Each file's info is read first: images of a type Codex
//! reads, within the size cap, are downloaded into a private temporary directory that lives as
//! long as the run. Skipped images are said in the thread, so nobody wonders why Codex did not
//! see them; other kinds of file are left alone.

use std::path::PathBuf;

use tracing::{info, warn};

use super::Plan;
use crate::chat::{FileInfo, NewPost};
use crate::protocol::PostKind;
use crate::state::Host;

/// At most this many images go with one prompt.
const MAX_IMAGES: usize = 8;
/// Larger images are skipped (the model's own limit is about this size).
const MAX_IMAGE_BYTES: i64 = 20 << 20;
/// The image types Codex reads.
const IMAGE_TYPES: [&str; 4] = ["image/png", "image/jpeg", "image/gif", "image/webp"];

/// The downloaded images of one run; the files go when this is dropped.
pub(super) struct Images {
    pub paths: Vec<PathBuf>,
    dir: tempfile::TempDir,
}

impl Images {
    /// The directory holding the images (bound read-only into the run's sandbox).
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }
}

/// Why an image is not passed on, or `None` when it is.
fn refusal(info: &FileInfo, taken: usize) -> Option<String> {
    if !IMAGE_TYPES.contains(&info.mime_type.as_str()) {
        return Some("only PNG, JPEG, GIF and WebP images are passed on".into());
    }
    if info.size > MAX_IMAGE_BYTES {
        return Some(format!("larger than {} MB", MAX_IMAGE_BYTES >> 20));
    }
    if taken >= MAX_IMAGES {
        return Some(format!("at most {MAX_IMAGES} images go with one prompt"));
    }
    None
}

impl Host {
    /// Downloads the images of the triggering post; `None` when it has no files.
    pub(super) async fn fetch_images(&self, plan: &Plan, root_id: &str) -> Option<Images> {
        if plan.file_ids.is_empty() {
            return None;
        }
        let mut skipped = Vec::new();
        let mut paths = Vec::new();
        let dir = match tempfile::Builder::new()
            .prefix("codex-host-images-")
            .tempdir()
        {
            Ok(dir) => dir,
            Err(e) => {
                warn!(error = %e, "cannot make a directory for the attached images; running without them");
                self.note_skipped(
                    plan,
                    root_id,
                    &["the attached images (the host could not store them)".into()],
                )
                .await;
                return None;
            }
        };
        for (i, id) in plan.file_ids.iter().enumerate() {
            let taken = paths.len();
            let (info, bytes) = match self
                .chat
                .download(id, |info| refusal(info, taken).is_none())
                .await
            {
                Ok(got) => got,
                Err(e) => {
                    warn!(file = %id, error = %e, "cannot download an attached file");
                    skipped.push(format!("an attached file (Mattermost answered: {e})"));
                    continue;
                }
            };
            let Some(bytes) = bytes else {
                if info.mime_type.starts_with("image/") {
                    skipped.push(format!(
                        "`{}` ({})",
                        info.name,
                        refusal(&info, taken).unwrap_or_default()
                    ));
                }
                continue;
            };
            let extension: String = info
                .extension
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .take(8)
                .collect();
            let path = dir.path().join(format!("image-{i}.{extension}"));
            match std::fs::write(&path, &bytes) {
                Ok(()) => paths.push(path),
                Err(e) => {
                    warn!(error = %e, "cannot store an attached image");
                    skipped.push(format!("`{}` (the host could not store it)", info.name));
                }
            }
        }
        info!(
            images = paths.len(),
            skipped = skipped.len(),
            "attached images"
        );
        if !skipped.is_empty() {
            self.note_skipped(plan, root_id, &skipped).await;
        }
        Some(Images { paths, dir })
    }

    /// Says in the thread which attachments Codex does not get.
    async fn note_skipped(&self, plan: &Plan, root_id: &str, skipped: &[String]) {
        let message = format!("Not passed to Codex: {}.", skipped.join("; "));
        let post = NewPost {
            channel_id: plan.channel.id.clone(),
            root_id: root_id.to_string(),
            message,
            props: PostKind::Note.props(&plan.run_id, None),
            file_ids: vec![],
        };
        if let Err(e) = self.chat.create_post(post).await {
            warn!(error = %e, "could not say which attachments were skipped");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(mime: &str, size: i64) -> FileInfo {
        FileInfo {
            mime_type: mime.into(),
            size,
            ..Default::default()
        }
    }

    #[test]
    fn images_codex_reads_within_the_caps_pass() {
        assert_eq!(refusal(&info("image/png", 1000), 0), None);
        assert_eq!(refusal(&info("image/webp", MAX_IMAGE_BYTES), 7), None);
        assert!(refusal(&info("image/tiff", 10), 0)
            .unwrap()
            .contains("PNG, JPEG"));
        assert!(refusal(&info("image/png", MAX_IMAGE_BYTES + 1), 0)
            .unwrap()
            .contains("20 MB"));
        assert!(refusal(&info("image/jpeg", 10), MAX_IMAGES)
            .unwrap()
            .contains("at most 8"));
        assert!(refusal(&info("application/pdf", 10), 0).is_some());
    }
}
