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
    pub message: String,
    pub span: Span,
}

impl Diagnostic {
    pub fn new(span: Span, message: impl Into<String>) -> Self {
        Diagnostic {
            message: message.into(),
            span,
        }
    }

    /// `line:col: message`, then the source line with a caret under the span. Used by tests
    /// and by anyone calling [`crate::compile`] directly on text.
    pub fn render(&self, source: &str) -> String {
        let start = self.span.start.min(source.len());
        let line_start = source[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = source[start..]
            .find('\n')
            .map_or(source.len(), |i| start + i);
        let line_no = source[..start].matches('\n').count() + 1;
        let col = source[line_start..start].chars().count() + 1;
        let width = source[start..self.span.end.clamp(start, line_end)]
            .chars()
            .count()
            .max(1);
        format!(
            "{line_no}:{col}: error: {}\n  | {}\n  | {}{}",
            self.message,
            &source[line_start..line_end],
            " ".repeat(col - 1),
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

/// Renders every diagnostic of a failed compile, one block each.
pub fn render_all(diagnostics: &[Diagnostic], source: &str) -> String {
    diagnostics
        .iter()
        .map(|d| d.render(source))
        .collect::<Vec<_>>()
        .join("\n")
}
