//! Splitting long answers into posts without cutting anything or breaking code blocks, and
//! measuring how tall a post renders on a phone.

/// Mattermost's limit on a post message (`PostMessageMaxRunesV2`).
pub const POST_MAX_RUNES: usize = 16383;

/// Rendered lines above which Mattermost folds a post behind "Show more" (the web app and the
/// phone apps collapse posts taller than about 600 px, some 25 lines of text).
pub const PHONE_LINES: usize = 25;

/// Characters of prose a phone shows on one line before wrapping.
const PHONE_LINE_CHARS: usize = 60;

/// How many lines `text` takes on a phone: a prose line wraps every [`PHONE_LINE_CHARS`]
/// characters; a line inside a code fence scrolls sideways and takes one.
pub fn rendered_lines(text: &str) -> usize {
    let mut fence = false;
    text.lines().map(|l| line_height(l, &mut fence)).sum()
}

/// The height of one line, updating whether a fence is open.
fn line_height(line: &str, fence: &mut bool) -> usize {
    if line.trim_start().starts_with("```") {
        *fence = !*fence;
        return 1;
    }
    if *fence {
        1
    } else {
        line.chars().count().div_ceil(PHONE_LINE_CHARS).max(1)
    }
}

/// How many characters of `s` fit in `lines` rendered lines, whole lines first (a fence opened
/// before `s` when `fence`); a first line taller than that alone gets the characters that wrap
/// into `lines`.
fn chars_in_lines(s: &str, lines: usize, mut fence: bool) -> usize {
    let (mut used, mut chars) = (0, 0);
    for line in s.split_inclusive('\n') {
        let h = line_height(line.trim_end_matches('\n'), &mut fence);
        if used + h > lines {
            return if chars == 0 {
                lines * PHONE_LINE_CHARS
            } else {
                chars
            };
        }
        used += h;
        chars += line.chars().count();
    }
    chars
}

/// Splits `text` into chunks of at most `max` characters and `max_lines` rendered lines
/// ([`rendered_lines`]; `usize::MAX` for no line limit), preferring paragraph, then line, then
/// word boundaries. A chunk that ends inside a ``` fence closes it, and the next one reopens it
/// with the same info string, so each post renders on its own. Joining the chunks (minus the
/// added fence lines) gives back the whole text.
pub fn split_message(text: &str, max: usize, max_lines: usize) -> Vec<String> {
    // Room for a closing fence added at the end of a chunk and a reopening one at the start.
    let budget = max.saturating_sub(24).max(64);
    // The same in lines, and never less than a few lines of progress per chunk.
    let line_budget = max_lines.saturating_sub(2).max(3);
    let mut chunks = Vec::new();
    let mut rest = text;
    let mut reopen: Option<String> = None;
    while !rest.is_empty() {
        let in_fence = reopen.is_some();
        let prefix = reopen
            .take()
            .map(|info| format!("```{info}\n"))
            .unwrap_or_default();
        let room =
            (budget - prefix.chars().count()).min(chars_in_lines(rest, line_budget, in_fence));
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

/// How an answer is laid out in posts.
#[derive(Debug, PartialEq)]
pub enum Layout {
    /// One post with the whole answer and its footer.
    One,
    /// Several posts, the footer under the last. `tall` when the parts are taller than a screen
    /// (the answer is too long for phone-sized parts): each but the last then says more follows,
    /// at its top, where a folded post still shows it.
    Parts { parts: Vec<String>, tall: bool },
    /// Too long for `max_parts` posts: a phone-sized head in the post, the whole as a file.
    File { head: String },
}

/// Characters kept free in each part for its label (`part_label`).
const LABEL_ROOM: usize = 64;

/// Lays out `body` (with `footer` under its last post) phone first: one post when it fits on a
/// screen; else up to `max_parts` parts of a screen each; else one post when it fits in one (a
/// phone folds it behind "Show more" under its summary); else up to `max_parts` posts of the
/// largest size, each saying more follows; else a file.
pub fn layout_answer(body: &str, footer: &str, max_parts: usize) -> Layout {
    let fits_one = body.chars().count() + footer.chars().count() <= POST_MAX_RUNES;
    let max_chars = POST_MAX_RUNES - footer.chars().count() - LABEL_ROOM;
    let screen = PHONE_LINES.saturating_sub(1 + rendered_lines(footer));
    let phone = split_message(body, max_chars, screen);
    if fits_one
        && (phone.len() == 1 || rendered_lines(body) + rendered_lines(footer) <= PHONE_LINES)
    {
        return Layout::One;
    }
    if phone.len() <= max_parts {
        return Layout::Parts {
            parts: phone,
            tall: false,
        };
    }
    if fits_one {
        return Layout::One;
    }
    let parts = split_message(body, max_chars, usize::MAX);
    if parts.len() <= max_parts {
        return Layout::Parts { parts, tall: true };
    }
    Layout::File {
        head: phone.into_iter().next().unwrap_or_default(),
    }
}

/// The first line of part `i` (from 1) of `n`.
pub fn part_label(i: usize, n: usize, tall: bool) -> String {
    if tall && i < n {
        format!("*(part {i} of {n})* *More follows in the next post.*\n")
    } else {
        format!("*(part {i} of {n})*\n")
    }
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
        assert_eq!(
            split_message("hello", 100, usize::MAX),
            vec!["hello".to_string()]
        );
    }

    #[test]
    fn long_text_splits_on_paragraphs_and_loses_nothing() {
        let text: String = (0..400)
            .map(|i| format!("Paragraph {i}: some words here.\n\n"))
            .collect();
        let chunks = split_message(&text, 1000, usize::MAX);
        assert!(chunks.len() > 10);
        assert!(chunks.iter().all(|c| c.chars().count() <= 1000));
        assert_eq!(chunks.concat(), text);
        assert!(chunks[0].ends_with("\n\n"));
    }

    #[test]
    fn code_fences_are_closed_and_reopened() {
        let body: String = (0..200).map(|i| format!("let x{i} = {i};\n")).collect();
        let text = format!("Intro\n```rust\n{body}```\nOutro");
        let chunks = split_message(&text, 800, usize::MAX);
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
        let chunks = split_message(&text, 1000, usize::MAX);
        assert_eq!(chunks.concat(), text);
    }

    #[test]
    fn prose_wraps_and_code_does_not() {
        assert_eq!(rendered_lines("short\nlines"), 2);
        assert_eq!(rendered_lines(&"x".repeat(150)), 3);
        let code = format!("```\n{}\n```", "y".repeat(500));
        assert_eq!(
            rendered_lines(&code),
            3,
            "a fenced line scrolls instead of wrapping"
        );
    }

    #[test]
    fn phone_sized_chunks_stay_under_the_fold_and_lose_nothing() {
        let text: String = (0..120)
            .map(|i| format!("Line {i}: a sentence that is short enough.\n"))
            .collect();
        let chunks = split_message(&text, POST_MAX_RUNES, PHONE_LINES);
        assert!(chunks.len() >= 5, "{} chunks", chunks.len());
        for c in &chunks {
            assert!(
                rendered_lines(c) <= PHONE_LINES,
                "{} lines:\n{c}",
                rendered_lines(c)
            );
        }
        assert_eq!(chunks.concat(), text);
    }

    #[test]
    fn phone_sized_chunks_close_and_reopen_fences() {
        let body: String = (0..80).map(|i| format!("let x{i} = {i};\n")).collect();
        let text = format!("Summary first.\n```rust\n{body}```\nDone.");
        let chunks = split_message(&text, POST_MAX_RUNES, PHONE_LINES);
        assert!(chunks.len() >= 4, "{} chunks", chunks.len());
        for (i, c) in chunks.iter().enumerate() {
            assert!(
                rendered_lines(c) <= PHONE_LINES,
                "chunk {i} is {} lines",
                rendered_lines(c)
            );
            assert_eq!(c.matches("```").count() % 2, 0, "unbalanced fence in {c}");
            if i > 0 && i + 1 < chunks.len() {
                assert!(
                    c.starts_with("```rust\n"),
                    "chunk {i} does not reopen the fence"
                );
            }
        }
        let all = chunks.concat();
        for i in 0..80 {
            assert!(all.contains(&format!("let x{i} = {i};")));
        }
    }

    #[test]
    fn one_paragraph_taller_than_a_screen_is_cut_between_words() {
        let text = "word ".repeat(600);
        let chunks = split_message(&text, POST_MAX_RUNES, PHONE_LINES);
        assert!(chunks.len() > 1);
        for c in &chunks {
            assert!(
                rendered_lines(c) <= PHONE_LINES,
                "{} lines",
                rendered_lines(c)
            );
            assert!(
                c.ends_with(' '),
                "cut inside a word: {:?}",
                &c[c.len() - 10..]
            );
        }
        assert_eq!(chunks.concat(), text);
    }

    #[test]
    fn answers_are_laid_out_phone_first() {
        let footer = "\n\n---\n*api · 12 s · answered*";
        let lines = |n: usize| -> String { (0..n).map(|i| format!("Line {i}.\n")).collect() };
        assert_eq!(layout_answer(&lines(10), footer, 4), Layout::One);
        match layout_answer(&lines(60), footer, 4) {
            Layout::Parts { parts, tall } => {
                assert!(!tall);
                assert!((3..=4).contains(&parts.len()), "{} parts", parts.len());
                let n = parts.len();
                for (i, p) in parts.iter().enumerate() {
                    let post = format!(
                        "{}{p}{}",
                        part_label(i + 1, n, tall),
                        if i + 1 == n { footer } else { "" }
                    );
                    assert!(
                        rendered_lines(&post) <= PHONE_LINES,
                        "part {} is {} lines",
                        i + 1,
                        rendered_lines(&post)
                    );
                }
                assert_eq!(parts.concat(), lines(60));
            }
            other => panic!("{other:?}"),
        }
        // Too many screens but one post: one post, folded under its summary.
        assert_eq!(layout_answer(&lines(400), footer, 4), Layout::One);
        // Longer than a post: the largest parts, each but the last saying more follows.
        let long = "Paragraph of some length that goes on.\n\n".repeat(700);
        match layout_answer(&long, footer, 4) {
            Layout::Parts { parts, tall } => {
                assert!(tall && parts.len() == 2, "{} parts", parts.len());
                assert!(part_label(1, 2, tall).contains("More follows"));
                assert!(!part_label(2, 2, tall).contains("More follows"));
            }
            other => panic!("{other:?}"),
        }
        match layout_answer(&long.repeat(4), footer, 4) {
            Layout::File { head } => assert!(rendered_lines(&head) <= PHONE_LINES),
            other => panic!("{other:?}"),
        }
    }
}
