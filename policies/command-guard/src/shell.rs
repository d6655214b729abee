//! Reads the script of a shell wrapper (`bash -lc "<script>"`) the way the shell would split it:
//! into simple commands (separated by `;`, `&&`, `||`, `|`, `&`, newlines and parentheses), each
//! with its words (quotes removed, escapes applied) and its redirections.
//!
//! Conservative by design: what cannot be known without running the shell (command or process
//! substitution, here-documents, control flow) is reported as `Opaque`, and the caller asks a
//! human instead of guessing.

/// One simple command of a script.
#[derive(Debug, Default)]
pub struct Segment {
    pub words: Vec<String>,
    pub redirects: Vec<Redirect>,
}

/// A redirection to or from a file (`> out.txt`, `2>> log`, `< input`). Duplications between
/// descriptors (`2>&1`) are not files and are left out.
#[derive(Debug)]
pub struct Redirect {
    /// Writes the file (`>`, `>>`, `&>`), rather than reading it (`<`).
    pub output: bool,
    pub target: String,
}

/// Why a script could not be read: the words it runs are only known when it runs.
#[derive(Debug, PartialEq, Eq)]
pub struct Opaque(pub &'static str);

/// Words that start shell control flow: what runs depends on values only known at run time.
const CONTROL: [&str; 9] = [
    "if", "for", "while", "until", "case", "select", "function", "[[", "eval",
];

pub fn parse(script: &str) -> Result<Vec<Segment>, Opaque> {
    let mut parser = Parser::default();
    let chars: Vec<char> = script.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        match c {
            '\'' => {
                parser.in_word = true;
                let end = chars[i + 1..]
                    .iter()
                    .position(|&x| x == '\'')
                    .ok_or(Opaque("an unclosed quote"))?;
                parser.word.extend(&chars[i + 1..i + 1 + end]);
                i += end + 2;
                continue;
            }
            '"' => {
                parser.in_word = true;
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err(Opaque("an unclosed quote")),
                        Some('"') => break,
                        Some('\\') if matches!(chars.get(i + 1), Some('$' | '`' | '"' | '\\')) => {
                            parser.word.push(chars[i + 1]);
                            i += 1;
                        }
                        Some('`') => return Err(Opaque("command substitution")),
                        Some('$') if chars.get(i + 1) == Some(&'(') => {
                            return Err(Opaque("command substitution"))
                        }
                        Some(&x) => parser.word.push(x),
                    }
                    i += 1;
                }
            }
            '\\' => {
                parser.in_word = true;
                match next {
                    Some('\n') => {}
                    Some(x) => parser.word.push(x),
                    None => {}
                }
                i += 1;
            }
            '`' => return Err(Opaque("command substitution")),
            '$' if next == Some('(') => return Err(Opaque("command substitution")),
            ' ' | '\t' => parser.end_word(),
            '\n' | ';' | '|' | '(' | ')' => parser.end_segment()?,
            '&' if next == Some('>') => {
                parser.end_word();
                i += if chars.get(i + 2) == Some(&'>') { 2 } else { 1 };
                parser.pending = Some(true);
            }
            '&' => parser.end_segment()?,
            '<' | '>' => {
                if next == Some('(') {
                    return Err(Opaque("process substitution"));
                }
                if c == '<' && next == Some('<') {
                    return Err(Opaque("a here-document"));
                }
                // `2>`: the digits before the operator name a descriptor, not a word.
                if parser.in_word && parser.word.chars().all(|d| d.is_ascii_digit()) {
                    parser.word.clear();
                    parser.in_word = false;
                } else {
                    parser.end_word();
                }
                if matches!(next, Some('>' | '|')) {
                    i += 1;
                }
                if chars.get(i + 1) == Some(&'&') {
                    // `>&2`, `2>&1`, `<&-`: a descriptor, not a file.
                    i += 2;
                    while chars
                        .get(i)
                        .is_some_and(|d| d.is_ascii_digit() || *d == '-')
                    {
                        i += 1;
                    }
                    continue;
                }
                parser.pending = Some(c == '>');
            }
            '#' if !parser.in_word => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
                continue;
            }
            other => {
                parser.in_word = true;
                parser.word.push(other);
            }
        }
        i += 1;
    }
    parser.end_segment()?;
    Ok(parser.segments)
}

#[derive(Default)]
struct Parser {
    segments: Vec<Segment>,
    current: Segment,
    word: String,
    /// Whether a word has started (so that `""` is an empty word, not none).
    in_word: bool,
    /// The next word is the target of a redirection (`true`: an output one).
    pending: Option<bool>,
}

impl Parser {
    fn end_word(&mut self) {
        if !self.in_word {
            return;
        }
        let word = std::mem::take(&mut self.word);
        self.in_word = false;
        match self.pending.take() {
            Some(output) => self.current.redirects.push(Redirect {
                output,
                target: word,
            }),
            None => self.current.words.push(word),
        }
    }

    fn end_segment(&mut self) -> Result<(), Opaque> {
        self.end_word();
        if self.pending.is_some() {
            return Err(Opaque("a redirection without a file"));
        }
        let segment = std::mem::take(&mut self.current);
        if let Some(first) = segment.words.first() {
            if CONTROL.contains(&first.as_str()) {
                return Err(Opaque("shell control flow"));
            }
        }
        if !segment.words.is_empty() || !segment.redirects.is_empty() {
            self.segments.push(segment);
        }
        Ok(())
    }
}
