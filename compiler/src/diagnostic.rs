//! Errors the compiler reports: a message and the byte range of the offending DSL token.
//!
//! The compiler works on plain text; the proc macros map a byte range back to the span of
//! the token it came from, so every error lands on the token that is wrong.

use std::fmt;
use std::ops::Range;

/// A byte range into the source text.
pub type Span = Range<usize>;

/// One compile error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// What is wrong, in a sentence, with a hint where one helps.
    pub message: String,
    /// The byte range of the DSL text it points at.
    pub span: Span,
}

impl Diagnostic {
    /// An error with this message at `span`.
    pub fn new(span: Span, message: impl Into<String>) -> Self {
        Diagnostic {
            message: message.into(),
            span,
        }
    }

    /// `line:col: message`, then the source line with a caret under the span. Used by tests
    /// and by anyone calling [`crate::compile`] directly on text. Any span renders: one
    /// past the text or inside a character is taken to the character's start.
    pub fn render(&self, source: &str) -> String {
        Lines::new(source).render(self)
    }
}

/// How many diagnostics [`render_all`] renders; it counts the rest.
pub const MAX_RENDERED: usize = 100;

/// A line longer than this many bytes is shown as a window around the span.
const LONG_LINE: usize = 300;

/// Characters shown of a long line on each side of the span.
const WINDOW: usize = 100;

/// The source with the start of each line, found once for every diagnostic rendered.
struct Lines<'s> {
    source: &'s str,
    starts: Vec<usize>,
}

impl<'s> Lines<'s> {
    fn new(source: &'s str) -> Self {
        let starts = std::iter::once(0)
            .chain(source.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Lines { source, starts }
    }

    /// The nearest character boundary at or before `i` (the text's end past it).
    fn floor(&self, i: usize) -> usize {
        let mut i = i.min(self.source.len());
        while !self.source.is_char_boundary(i) {
            i -= 1;
        }
        i
    }

    fn render(&self, d: &Diagnostic) -> String {
        let source = self.source;
        let start = self.floor(d.span.start);
        // the line holding `start`: the last line start at or before it
        let line = self.starts.partition_point(|&s| s <= start) - 1;
        let line_start = self.starts[line];
        let line_end = source[start..]
            .find('\n')
            .map_or(source.len(), |i| start + i);
        let end = self.floor(d.span.end).clamp(start, line_end);
        let col = source[line_start..start].chars().count() + 1;
        let (shown, pad, width) = if line_end - line_start <= LONG_LINE {
            let width = source[start..end].chars().count().max(1);
            (source[line_start..line_end].to_string(), col - 1, width)
        } else {
            // a window around the span (and at most its first characters), so that no
            // error copies a long line
            let nth = |from: usize, to: usize, n: usize| {
                source[from..to]
                    .char_indices()
                    .nth(n)
                    .map_or(to, |(i, _)| from + i)
            };
            let before: Vec<(usize, char)> = source[line_start..start]
                .char_indices()
                .rev()
                .take(WINDOW)
                .collect();
            let from = before.last().map_or(start, |(i, _)| line_start + i);
            let end = nth(start, end, WINDOW);
            let to = nth(end, line_end, WINDOW);
            let lead = if from > line_start { "…" } else { "" };
            let tail = if to < line_end { "…" } else { "" };
            let width = source[start..end].chars().count().max(1);
            let pad = before.len() + lead.chars().count();
            (format!("{lead}{}{tail}", &source[from..to]), pad, width)
        };
        format!(
            "{}:{col}: error: {}\n  | {shown}\n  | {}{}",
            line + 1,
            d.message,
            " ".repeat(pad),
            "^".repeat(width)
        )
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Diagnostic {}

/// Renders every diagnostic of a failed compile, one block each: the first
/// [`MAX_RENDERED`], then how many more there are.
pub fn render_all(diagnostics: &[Diagnostic], source: &str) -> String {
    let lines = Lines::new(source);
    let mut blocks: Vec<String> = diagnostics
        .iter()
        .take(MAX_RENDERED)
        .map(|d| lines.render(d))
        .collect();
    if diagnostics.len() > MAX_RENDERED {
        blocks.push(format!(
            "... and {} more errors",
            diagnostics.len() - MAX_RENDERED
        ));
    }
    blocks.join("\n")
}
