//! Splitting long answers into posts without cutting anything or breaking code blocks.

/// Mattermost's limit on a post message (`PostMessageMaxRunesV2`).
pub const POST_MAX_RUNES: usize = 16383;

/// Splits `text` into chunks of at most `max` characters, preferring paragraph, then line, then
/// word boundaries. A chunk that ends inside a ``` fence closes it, and the next one reopens it
/// with the same info string, so each post renders on its own. Joining the chunks (minus the
/// added fence lines) gives back the whole text.
pub fn split_message(text: &str, max: usize) -> Vec<String> {
    // Room for a closing fence added at the end of a chunk and a reopening one at the start.
    let budget = max.saturating_sub(24).max(64);
    let mut chunks = Vec::new();
    let mut rest = text;
    let mut reopen: Option<String> = None;
    while !rest.is_empty() {
        let prefix = reopen
            .take()
            .map(|info| format!("```{info}\n"))
            .unwrap_or_default();
        let room = budget - prefix.chars().count();
        if rest.chars().count() <= room {
            chunks.push(format!("{prefix}{rest}"));
            break;
        }
        let cut = cut_point(rest, room);
        let (head, tail) = rest.split_at(cut);
        let mut chunk = format!("{prefix}{head}");
        if let Some(info) = open_fence(&chunk) {
            if !chunk.ends_with('\n') {
                chunk.push('\n');
            }
            chunk.push_str("```");
            reopen = Some(info);
        }
        chunks.push(chunk);
        rest = tail;
    }
    chunks
}

/// Byte index at most `room` characters in, at the best boundary available.
fn cut_point(s: &str, room: usize) -> usize {
    let limit = s
        .char_indices()
        .nth(room)
        .map(|(i, _)| i)
        .unwrap_or(s.len());
    let window = &s[..limit];
    let min = limit / 2;
    for sep in ["\n\n", "\n", " "] {
        if let Some(i) = window.rfind(sep) {
            if i >= min {
                return i + sep.len();
            }
        }
    }
    limit
}

/// If `chunk` leaves a ``` fence open, its info string.
fn open_fence(chunk: &str) -> Option<String> {
    let mut open: Option<String> = None;
    for line in chunk.lines() {
        let t = line.trim_start();
        if let Some(info) = t.strip_prefix("```") {
            open = match open {
                Some(_) => None,
                None => Some(info.trim().to_string()),
            };
        }
    }
    open
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_one_chunk() {
        assert_eq!(split_message("hello", 100), vec!["hello".to_string()]);
    }

    #[test]
    fn long_text_splits_on_paragraphs_and_loses_nothing() {
        let text: String = (0..400)
            .map(|i| format!("Paragraph {i}: some words here.\n\n"))
            .collect();
        let chunks = split_message(&text, 1000);
        assert!(chunks.len() > 10);
        assert!(chunks.iter().all(|c| c.chars().count() <= 1000));
        assert_eq!(chunks.concat(), text);
        assert!(chunks[0].ends_with("\n\n"));
    }

    #[test]
    fn code_fences_are_closed_and_reopened() {
        let body: String = (0..200).map(|i| format!("let x{i} = {i};\n")).collect();
        let text = format!("Intro\n```rust\n{body}```\nOutro");
        let chunks = split_message(&text, 800);
        assert!(chunks.len() > 2);
        for c in &chunks {
            assert_eq!(c.matches("```").count() % 2, 0, "unbalanced fence in {c}");
            assert!(c.chars().count() <= 800);
        }
        assert!(chunks[1].starts_with("```rust\n"));
        let all = chunks.concat();
        for i in 0..200 {
            assert!(all.contains(&format!("let x{i} = {i};")));
        }
    }

    #[test]
    fn multibyte_text_is_cut_on_char_boundaries() {
        let text = "é".repeat(5000);
        let chunks = split_message(&text, 1000);
        assert_eq!(chunks.concat(), text);
    }
}
