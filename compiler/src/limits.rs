//! What the compiler refuses before its checks run, and the limits it holds everywhere.
//!
//! The compiler runs inside rustc (the proc macros call it), so a panic is rustc's
//! "proc macro panicked" over the whole block, and a stack overflow is rustc's crash. Every
//! input therefore either compiles or gets an error at its token; these limits keep every
//! pass finite, within the stack and linear in the text:
//!
//! - [`MAX_DEPTH`]: how deep an expression may nest, checked on the text before the parser
//!   runs ([`check_nesting`]), so no recursive pass (the parser, the checks) goes deeper.
//! - [`MAX_SIZE`]: the most elements of a shape and the most weights of a net or layer;
//!   every size is computed with checked arithmetic against it.
//! - numbers are `f32` in the generated code: a number written beyond `f32`'s range is an
//!   error at it ([`fits_f32`]);
//! - a name becomes a Rust identifier, so a Rust keyword is no name ([`RUST_KEYWORDS`]).
//!
//! [`check_items`] applies the last three to the syntax tree: names, numbers and written
//! shapes, each error at its token.

use crate::ast::*;
use crate::diagnostic::{Diagnostic, Span};

/// The deepest an expression may nest: brackets, calls, indexing, operators and signs,
/// counted from the outside in, with the operators of one chain counted one each
/// (`a + b + c` is 2 deep, `-exp((a + b) * c)` is 4: the sign, `exp(`, the parentheses
/// and the `+` inside them). Arguments separated by commas are counted apart; the item's
/// own brackets (`model M(..) {`) count too. Deeper text is an error at the token that goes
/// past the limit; name parts of it with `let`. At this depth every pass fits in about
/// 1 MiB of stack in a debug build (rustc gives proc macros 8 MiB).
pub const MAX_DEPTH: usize = 128;

/// The most elements a shape may have (the product of its sizes that are numbers), and the
/// most weights of a net or of one of its layers: 2³¹. A size beyond it, or a product that
/// overflows, is an error at the shape (or the layer).
pub const MAX_SIZE: usize = 1 << 31;

/// The largest `f32`: every number of a model is an `f32` in the generated code.
pub const MAX_F32: f64 = f32::MAX as f64;

/// Every Rust 2021 keyword, strict and reserved, and `_`: none can name a model, a guide, a
/// net, an input, a site, a `let`, a `param` or a size, since the generated code makes
/// those names Rust identifiers.
pub const RUST_KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum", "extern",
    "false", "fn", "for", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub",
    "ref", "return", "self", "Self", "static", "struct", "super", "trait", "true", "type",
    "unsafe", "use", "where", "while", "abstract", "become", "box", "do", "final", "macro",
    "override", "priv", "typeof", "unsized", "virtual", "yield", "try", "_",
];

/// [`MAX_F32`] as the messages write it.
pub const MAX_F32_TEXT: &str = "3.4028235e38";

/// A number as the messages write it: in full, or with an exponent when long.
pub fn show_number(v: f64) -> String {
    if v != 0.0 && !(1e-6..1e16).contains(&v.abs()) {
        format!("{v:e}")
    } else {
        format!("{v}")
    }
}

/// Does `v` fit in an `f32` (finite and at most [`MAX_F32`] in magnitude)?
pub fn fits_f32(v: f64) -> bool {
    v.is_finite() && v.abs() <= MAX_F32
}

/// `N`, `D`, `N_FEATURES`, `K2`: how a size that is not a number is written (the rows, a
/// Rust constant or a size parameter).
pub fn is_size_name(name: &str) -> bool {
    name.chars().any(|c| c.is_ascii_uppercase())
        && name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// The product of `sizes`, if it is at most [`MAX_SIZE`].
pub fn product(sizes: impl IntoIterator<Item = usize>) -> Option<usize> {
    sizes
        .into_iter()
        .try_fold(1usize, |acc, n| acc.checked_mul(n))
        .filter(|&n| n <= MAX_SIZE)
}

/// The expression depth of the text, by its tokens, before the parser sees it (see
/// [`MAX_DEPTH`]); an error at the first token past the limit. Comments and strings are
/// skipped as the grammar skips them. Linear in the text and never recursive.
pub fn check_nesting(source: &str) -> Result<(), Diagnostic> {
    let bytes = source.as_bytes();
    // Per open bracket, the operators and bracket groups since the last separator inside it.
    let mut levels: Vec<usize> = vec![0];
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let next = bytes.get(i + 1).copied();
        let mut counted = false;
        match c {
            b'/' if next == Some(b'/') => {
                i = memchr(bytes, i, b'\n');
                continue;
            }
            b'/' if next == Some(b'*') => {
                i = match source[i + 2..].find("*/") {
                    Some(k) => i + 2 + k + 2,
                    None => bytes.len(),
                };
                continue;
            }
            b'"' => {
                i = string_end(bytes, i + 1);
                continue;
            }
            b'r' if (i == 0 || !is_ident_byte(bytes[i - 1])) && raw_string_start(bytes, i) => {
                i = raw_string_end(bytes, i);
                continue;
            }
            b'(' | b'[' | b'{' => {
                counted = true;
                let top = levels.last_mut().expect("the outermost level stays");
                *top += 1;
                depth += 1;
                levels.push(0);
            }
            b')' | b']' | b'}' => {
                if levels.len() > 1 {
                    depth -= levels.pop().expect("more than one level");
                }
                // a brace ends an item or a block, never part of an expression
                if c == b'}' {
                    reset(&mut levels, &mut depth);
                }
            }
            b'-' if next == Some(b'>') => {
                reset(&mut levels, &mut depth);
                i += 2;
                continue;
            }
            b'+' | b'-' | b'*' | b'/' | b'@' => {
                counted = true;
                *levels.last_mut().expect("the outermost level stays") += 1;
                depth += 1;
            }
            b',' | b';' | b'=' | b'~' | b':' => reset(&mut levels, &mut depth),
            _ => {}
        }
        if counted && depth > MAX_DEPTH {
            return Err(Diagnostic::new(
                i..i + 1,
                format!(
                    "expression too deep: more than {MAX_DEPTH} nested brackets, calls and operators (a chain like `a + b + ..` counts one per operator); split it with `let`"
                ),
            ));
        }
        i += 1;
    }
    Ok(())
}

/// Forgets the operators of the innermost level (a separator starts a new expression).
fn reset(levels: &mut [usize], depth: &mut usize) {
    let top = levels.last_mut().expect("the outermost level stays");
    *depth -= *top;
    *top = 0;
}

fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// The index of the next `byte` at or after `from`, or the end.
fn memchr(bytes: &[u8], from: usize, byte: u8) -> usize {
    bytes[from..]
        .iter()
        .position(|&b| b == byte)
        .map_or(bytes.len(), |k| from + k)
}

/// Past the closing quote of a plain string whose body starts at `from` (`\` escapes the
/// next character, as the grammar reads it).
fn string_end(bytes: &[u8], mut from: usize) -> usize {
    while from < bytes.len() {
        match bytes[from] {
            b'\\' => from += 2,
            b'"' => return from + 1,
            _ => from += 1,
        }
    }
    bytes.len()
}

/// `r"`, `r#"`, `r##"`, ...
fn raw_string_start(bytes: &[u8], at: usize) -> bool {
    let hashes = bytes[at + 1..].iter().take_while(|&&b| b == b'#').count();
    bytes.get(at + 1 + hashes) == Some(&b'"')
}

/// Past the end of the raw string that starts at `at` (the closing quote and as many `#`).
fn raw_string_end(bytes: &[u8], at: usize) -> usize {
    let hashes = bytes[at + 1..].iter().take_while(|&&b| b == b'#').count();
    let mut k = at + 1 + hashes + 1;
    while k < bytes.len() {
        if bytes[k] == b'"'
            && bytes.len() - (k + 1) >= hashes
            && bytes[k + 1..k + 1 + hashes].iter().all(|&b| b == b'#')
        {
            return k + 1 + hashes;
        }
        k += 1;
    }
    bytes.len()
}

/// Names, numbers and written shapes of the whole text (see the module's docs); every error.
pub fn check_items(source: &str, items: &[Item]) -> Vec<Diagnostic> {
    let mut c = ItemChecks {
        source,
        sizes: Vec::new(),
        errors: Vec::new(),
    };
    for item in items {
        match item {
            Item::Model(m) => c.model(m),
            Item::Guide(g) => c.guide(g),
            Item::Net(n) => c.net(n),
            Item::Bnn(b) => c.bnn(b),
        }
    }
    c.errors
}

struct ItemChecks<'s> {
    source: &'s str,
    /// The size parameters of the model being checked (a lower-case one is reported by the
    /// model's checks, once, where it is declared).
    sizes: Vec<String>,
    errors: Vec<Diagnostic>,
}

impl ItemChecks<'_> {
    fn err(&mut self, span: Span, msg: String) {
        self.errors.push(Diagnostic::new(span, msg));
    }

    fn text(&self, span: &Span) -> &str {
        self.source.get(span.clone()).unwrap_or("?").trim()
    }

    /// A name the generated code makes a Rust identifier (`what` it names, for the message).
    fn name(&mut self, id: &Ident, what: &str) {
        if RUST_KEYWORDS.contains(&id.name.as_str()) {
            self.err(
                id.span.clone(),
                format!(
                    "`{}` is a Rust keyword and cannot name {what}: the generated code makes it a Rust identifier; choose another name",
                    id.name
                ),
            );
        }
    }

    fn inputs(&mut self, inputs: &[Input]) {
        for i in inputs {
            self.name(&i.name, "an input");
            self.shape(&i.shape);
            if let Some(Domain {
                low,
                high: Some(high),
            }) = i.domain
            {
                if high <= low {
                    self.err(
                        i.name.span.clone(),
                        format!(
                            "`{}` is declared `in {low}..{high}`, which holds no integers; the upper bound is excluded, so write it above the lower",
                            i.name.name
                        ),
                    );
                }
            }
        }
    }

    fn model(&mut self, m: &ModelDef) {
        self.name(&m.name, "a model");
        for s in &m.sizes {
            self.name(s, "a size parameter");
        }
        self.sizes = m.sizes.iter().map(|s| s.name.clone()).collect();
        self.inputs(&m.inputs);
        for stmt in &m.stmts {
            match stmt {
                Stmt::Sample {
                    name, dist, shape, ..
                } => {
                    self.name(name, "a site");
                    self.call(dist);
                    if let Some(s) = shape {
                        self.shape(s);
                    }
                }
                Stmt::Let { name, value, .. } | Stmt::Track { name, value, .. } => {
                    self.name(name, "a value");
                    self.expr(value);
                }
                Stmt::Factor { name, value, .. } => {
                    self.name(name, "a factor");
                    self.expr(value);
                }
                Stmt::Param(p) => self.param(p),
            }
        }
    }

    fn param(&mut self, p: &ParamDecl) {
        self.name(&p.name, "a `param`");
        if let Some(s) = &p.shape {
            self.shape(s);
        }
        if let Some(e) = &p.init {
            self.expr(e);
        }
    }

    fn guide(&mut self, g: &GuideDef) {
        self.sizes.clear();
        self.name(&g.name, "a guide");
        for p in &g.params {
            self.param(p);
        }
        for e in &g.entries {
            self.call(&e.family);
        }
    }

    fn net(&mut self, n: &NetDef) {
        self.sizes.clear();
        self.name(&n.name, "a net");
        self.name(&n.input.name, "a net's input");
        self.shape(&n.input.shape);
        self.shape(&n.output);
        for l in &n.layers {
            self.call(l);
        }
    }

    fn bnn(&mut self, b: &BnnDef) {
        self.sizes.clear();
        self.name(&b.name, "a `bnn`");
        self.inputs(&b.inputs);
        self.name(&b.site, "a site");
        for c in [&b.likelihood, &b.prior, &b.family] {
            self.call(c);
        }
    }

    /// A written shape: each number a size (at most [`MAX_SIZE`]), each name a size's name,
    /// and their product at most [`MAX_SIZE`].
    fn shape(&mut self, s: &ShapeAst) {
        let mut ok = true;
        for d in &s.dims {
            match d {
                DimAst::Lit(n, sp) if *n > MAX_SIZE => {
                    ok = false;
                    let text = self.text(sp).to_string();
                    self.err(
                        sp.clone(),
                        format!("size {text} is too large: a size is at most {MAX_SIZE} (2^31)"),
                    );
                }
                DimAst::Named(id) if !is_size_name(&id.name) && !self.sizes.contains(&id.name) => {
                    ok = false;
                    self.err(
                        id.span.clone(),
                        format!(
                            "`{}` is not a size: a size is N, a number, an UPPER_CASE constant or a size parameter",
                            id.name
                        ),
                    );
                }
                _ => {}
            }
        }
        let lits = s.dims.iter().filter_map(|d| match d {
            DimAst::Lit(n, _) => Some(*n),
            _ => None,
        });
        if ok && product(lits).is_none() {
            // (each size as written, so that a shape from tokens reads as one typed)
            let dims: Vec<&str> = s.dims.iter().map(|d| self.text(&d.span())).collect();
            let text = format!("[{}]", dims.join(", "));
            self.err(
                s.span.clone(),
                format!(
                    "shape {text} has more than {MAX_SIZE} (2^31) elements, the most a value may have"
                ),
            );
        }
    }

    fn call(&mut self, c: &Call) {
        for a in &c.args {
            self.expr(&a.value);
        }
        for w in &c.weights {
            self.expr(w);
        }
    }

    /// Every number of an expression fits in `f32`. (Iterative: the nesting check bounds
    /// the depth, but this walk needs no stack either way.)
    fn expr(&mut self, e: &Expr) {
        let mut stack = vec![e];
        while let Some(e) = stack.pop() {
            match &e.kind {
                ExprKind::Num(v) => {
                    if !fits_f32(*v) {
                        let text = self.text(&e.span).to_string();
                        self.err(
                            e.span.clone(),
                            format!(
                                "`{text}` does not fit in f32, the type of every number in a model: at most {MAX_F32_TEXT} in magnitude"
                            ),
                        );
                    }
                }
                ExprKind::Name(_) => {}
                ExprKind::Neg(a) => stack.push(a),
                ExprKind::Binary(_, a, b) => {
                    stack.push(b);
                    stack.push(a);
                }
                ExprKind::Call(c) => {
                    stack.extend(c.weights.iter().rev());
                    stack.extend(c.args.iter().rev().map(|a| &a.value));
                }
                ExprKind::List(items) => stack.extend(items.iter().rev()),
                ExprKind::Index(a, index) => {
                    if let Index::At(i) = index {
                        stack.push(i);
                    }
                    stack.push(a);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn depth_error(src: &str) -> Option<usize> {
        check_nesting(src).err().map(|d| d.span.start)
    }

    #[test]
    fn nesting_counts_brackets_operators_and_signs() {
        let ok = format!(
            "model M(y: [N]) {{ let a = {}1.0{}; }}",
            "(".repeat(100),
            ")".repeat(100)
        );
        assert_eq!(depth_error(&ok), None);
        let deep = format!(
            "model M(y: [N]) {{ let a = {}1.0{}; }}",
            "(".repeat(150),
            ")".repeat(150)
        );
        // the outer braces and parentheses count too
        let at = depth_error(&deep).expect("too deep");
        assert_eq!(&deep[at..at + 1], "(");
        let sum = format!("model M(y: [N]) {{ let a = 1.0{}; }}", " + a".repeat(5000));
        assert!(depth_error(&sum).is_some());
        let signs = format!("model M(y: [N]) {{ let a = {}1.0; }}", "-".repeat(150));
        assert!(depth_error(&signs).is_some());
        // separators start over: many short arguments and statements are fine
        let wide = format!(
            "model M(y: [N]) {{ {} }}",
            "let a = f(1 + 2, 3 * 4);".repeat(2000)
        );
        assert_eq!(depth_error(&wide), None);
        // brackets in comments and strings are not code
        let commented = format!(
            "// {}\n/* {} */ #[doc = \"{}\"] model M() {{}}",
            "(".repeat(999),
            "[".repeat(999),
            "{".repeat(999)
        );
        assert_eq!(depth_error(&commented), None);
    }

    #[test]
    fn sizes_and_products() {
        assert_eq!(product([2, 3]), Some(6));
        assert_eq!(product([1 << 31]), Some(1 << 31));
        assert_eq!(product([1 << 16, 1 << 16]), None);
        assert_eq!(product([usize::MAX, 2]), None);
        assert!(is_size_name("N_FEATURES") && is_size_name("D2") && !is_size_name("d"));
        assert!(fits_f32(3.4e38) && !fits_f32(3.5e38) && !fits_f32(f64::NAN));
    }
}
