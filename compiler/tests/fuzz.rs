//! A seeded, grammar-aware fuzzer over the compiler's public functions.
//!
//! Every input goes through what the proc macros do with a block: [`compile`], then for a
//! program that compiles its IR text, the Rust code of every model and guide
//! ([`codegen::model`], [`codegen::guide`], [`codegen::guide_at`]), the host engine's
//! program ([`fused::program`]) and the starts ([`start`]); for one that does not, every
//! diagnostic rendered ([`render_all`], [`ravi_compiler::Diagnostic::render`]). It asserts
//! that nothing panics (each input under `catch_unwind`, on a thread with a smaller stack
//! than rustc's, so a deep recursion shows as a crash here first), that every error's span
//! lies inside the input on character boundaries, that compiling is deterministic, and that
//! no input takes longer than [`SLOWEST`].
//!
//! The inputs, each a pure function of the seed and its index (so any one can be replayed
//! with `RAVI_FUZZ_ONLY=index`):
//! - every program of the corpus as it is: `fuzz_corpus.txt` (every `model!` / `guide!`
//!   block of the examples, tests and docs, extracted by `scripts/fuzz_corpus.py`) and the
//!   sources of the insta snapshots in `snapshots.rs`;
//! - mutations of them: tokens deleted, duplicated, swapped, replaced or inserted from the
//!   grammar's vocabulary (keywords, punctuation, the catalogue's names, Rust keywords),
//!   numbers replaced by huge, tiny, negative, non-finite or overflowing ones, expressions
//!   nested or chained near and past the depth limit, statements repeated, names renamed,
//!   two programs spliced;
//! - programs generated from the grammar (nets, models of every distribution with random
//!   expressions, guides of every family with random arguments), mutated or not;
//! - random strings of the vocabulary's tokens, and random bytes;
//! - stress shapes: chained shared lets, thousands of unknown names, long lines of errors.
//!
//! `cargo test` runs 20,000 inputs; `scripts/fuzz.sh N [SEED]` runs N in release
//! (`RAVI_FUZZ_INPUTS`, `RAVI_FUZZ_SEED`).

use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ravi_compiler::{catalogue, codegen, compile, fused, render_all, start, Diagnostic};

/// Inputs of one `cargo test` run.
const DEFAULT_INPUTS: usize = 20_000;
const DEFAULT_SEED: u64 = 0x005e_ed0f_7a1f;
/// The stack of each fuzzing thread: a quarter of the 8 MiB rustc runs proc macros on.
const STACK: usize = 2 << 20;
/// No input may take longer (the debug build of `cargo test` included).
const SLOWEST: Duration = Duration::from_secs(1);
/// Longest text a mutation may grow to.
const MAX_LEN: usize = 64 << 10;

const CORPUS: &str = include_str!("fuzz_corpus.txt");
const SNAPSHOTS: &str = include_str!("snapshots.rs");

// ---- randomness -------------------------------------------------------------------------

/// splitmix64: small, seedable, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn new(seed: u64, index: u64) -> Self {
        let mut r = Rng(seed ^ index.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        r.next();
        r
    }
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (`n` > 0).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }
    /// True with probability `percent` / 100.
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
}

// ---- the vocabulary -----------------------------------------------------------------------

const PUNCT: &[&str] = &[
    "(", ")", "{", "}", "[", "]", "<", ">", ",", ":", ";", "~", "=", "->", "..", "+", "-", "*",
    "/", "@", "#", "!", "\"", "'", ".", "&", "|", "?", "$", "%", "^", "\\", "`",
];
const KEYWORDS: &[&str] = &[
    "model",
    "guide",
    "for",
    "let",
    "param",
    "net",
    "bnn",
    "with",
    "pub",
    "track",
    "factor",
    "ordered",
    "in",
    "positive",
    "params",
    "temperature",
];
const RUST_KEYWORDS: &[&str] = &[
    "self", "Self", "type", "fn", "match", "struct", "impl", "crate", "super", "mod", "use",
    "where", "async", "await", "dyn", "loop", "return", "true", "false", "move", "ref", "mut",
    "static", "const", "trait", "enum", "unsafe", "extern", "as", "if", "else", "while", "break",
    "continue", "abstract", "become", "box", "do", "final", "macro", "override", "priv", "typeof",
    "unsized", "virtual", "yield", "try", "_",
];
const NAMES: &[&str] = &[
    "N",
    "D",
    "K",
    "B",
    "P",
    "x",
    "y",
    "z",
    "w",
    "b",
    "g",
    "mu",
    "sigma",
    "theta",
    "a",
    "s",
    "d",
    "k",
    "Mlp",
    "Enc",
    "Dec",
    "M",
    "G",
    "Reg",
    "LinReg",
    "Net",
    "loc",
    "scale",
    "rate",
    "logits",
    "probs",
    "low",
    "high",
    "rank",
    "hidden",
    "layers",
    "noise",
    "stride",
    "padding",
    "bound",
    "generator",
    "Exact",
    "Dense",
    "MatMul",
    "B_1",
    "N_FEATURES",
    "__v0",
    "__s",
    "NaN",
    "inf",
    "e",
];
const LAYERS: &[&str] = &[
    "Linear", "Conv2d", "MaxPool", "AvgPool", "flatten", "relu", "tanh", "sigmoid", "softplus",
];
/// Numbers at and past every edge: f32's range, usize's, the size limit (2^31), zero.
const NUMBERS: &[&str] = &[
    "0",
    "1",
    "2",
    "3",
    "4",
    "10",
    "0.0",
    "1.0",
    "-1.0",
    "0.5",
    "2.5",
    "1e-3",
    "100",
    "1.",
    "00",
    "0.000",
    "1e999",
    "1e308",
    "1e39",
    "3.5e38",
    "3.4e38",
    "3.4028235e38",
    "1e38",
    "1e-45",
    "1e-50",
    "1e-400",
    "1e-999",
    "18446744073709551615",
    "18446744073709551616",
    "99999999999999999999999999",
    "4294967296",
    "4294967295",
    "2147483648",
    "2147483647",
    "2147483649",
    "65536",
    "100000000",
    "1000000000000",
    "1000000001",
    "1000000000",
    "9e18",
    "1e9",
    "1e10",
    "7",
    "0.9999999999999",
    "1.0000000001",
];
const ODD: &[&str] = &[
    "é",
    "中",
    "🦀",
    "\u{0}",
    "\u{feff}",
    "\t",
    "\n",
    "\r\n",
    "//",
    "///",
    "/*",
    "*/",
    "#[doc = \"x\"]",
    "#[doc = r#\"x\"#]",
    "r#\"",
    "\"\"",
    "'a",
    "::",
    "&&",
    "||",
    "=>",
    "<=",
    "_x",
    "x1",
    "X_",
    "a.b",
];

fn vocabulary() -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    v.extend(PUNCT.iter().map(|s| s.to_string()));
    v.extend(KEYWORDS.iter().map(|s| s.to_string()));
    v.extend(RUST_KEYWORDS.iter().map(|s| s.to_string()));
    v.extend(NAMES.iter().map(|s| s.to_string()));
    v.extend(LAYERS.iter().map(|s| s.to_string()));
    v.extend(NUMBERS.iter().map(|s| s.to_string()));
    v.extend(ODD.iter().map(|s| s.to_string()));
    v.extend(catalogue::DISTRIBUTIONS.iter().map(|d| d.name.to_string()));
    v.extend(catalogue::FAMILIES.iter().map(|f| f.name.to_string()));
    v.extend(catalogue::FLOW_LAYERS.iter().map(|f| f.name.to_string()));
    for fs in [
        catalogue::ELEMENTWISE,
        catalogue::REDUCTIONS,
        catalogue::ALONG_AXIS,
        catalogue::SHAPE_FUNCTIONS,
    ] {
        v.extend(fs.iter().map(|s| s.to_string()));
    }
    v.push("Amortized".into());
    v.push("Mixture".into());
    v.push("pow".into());
    v
}

// ---- the corpus --------------------------------------------------------------------------

fn corpus() -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for block in CORPUS.split("==== ").filter(|b| !b.trim().is_empty()) {
        // the first line names the file the block came from
        let body = block.split_once('\n').map_or("", |(_, b)| b);
        out.push(body.to_string());
    }
    out.extend(snapshot_sources());
    assert!(out.len() > 100, "the corpus is read");
    out
}

/// The string literals of `snapshots.rs` that hold a program (raw `r#"..."#` and plain
/// `"..."`, escapes resolved).
fn snapshot_sources() -> Vec<String> {
    let mut out = Vec::new();
    let b = SNAPSHOTS;
    let mut i = 0;
    while i < b.len() {
        let rest = &b[i..];
        if let Some(body) = rest.strip_prefix("r#\"") {
            let end = body.find("\"#").unwrap_or(body.len());
            out.push(body[..end].to_string());
            i += 3 + end + 2;
        } else if let Some(body) = rest.strip_prefix('"') {
            let mut s = String::new();
            let mut chars = body.char_indices();
            let mut end = body.len();
            while let Some((k, c)) = chars.next() {
                match c {
                    '"' => {
                        end = k + 1;
                        break;
                    }
                    '\\' => match chars.next() {
                        Some((_, 'n')) => s.push('\n'),
                        Some((_, 't')) => s.push('\t'),
                        Some((_, c)) => s.push(c),
                        None => {}
                    },
                    c => s.push(c),
                }
            }
            out.push(s);
            i += 1 + end;
        } else {
            i += rest.chars().next().map_or(1, char::len_utf8);
        }
    }
    out.retain(|s| {
        ["model ", "guide ", "net ", "bnn "]
            .iter()
            .any(|k| s.contains(k))
    });
    // `format!` sources: their doubled braces as the program has them
    out.into_iter()
        .map(|s| s.replace("{{", "{").replace("}}", "}"))
        .collect()
}

// ---- mutation ----------------------------------------------------------------------------

/// The text as tokens (whitespace kept, so that joining them gives the text back).
fn lex(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = s.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let mut end = i + c.len_utf8();
        let mut take_while = |f: &dyn Fn(char) -> bool, end: &mut usize| {
            while let Some(&(j, d)) = chars.peek() {
                if !f(d) {
                    break;
                }
                *end = j + d.len_utf8();
                chars.next();
            }
        };
        if c.is_whitespace() {
            take_while(&|d| d.is_whitespace(), &mut end);
        } else if c.is_ascii_alphabetic() || c == '_' {
            take_while(&|d| d.is_ascii_alphanumeric() || d == '_', &mut end);
        } else if c.is_ascii_digit() {
            take_while(&|d| d.is_ascii_alphanumeric() || d == '.', &mut end);
        } else if (c == '-' && s[end..].starts_with('>')) || (c == '.' && s[end..].starts_with('.'))
        {
            chars.next();
            end += 1;
        }
        out.push(s[i..end].to_string());
    }
    out
}

struct Fuzzer {
    corpus: Vec<String>,
    vocab: Vec<String>,
}

impl Fuzzer {
    fn token(&self, r: &mut Rng) -> String {
        match r.below(10) {
            0..=1 => r.pick(NUMBERS).to_string(),
            2 => r.pick(RUST_KEYWORDS).to_string(),
            _ => r.pick(&self.vocab).clone(),
        }
    }

    /// Indices of the tokens that are not whitespace.
    fn solid(toks: &[String]) -> Vec<usize> {
        (0..toks.len())
            .filter(|&k| !toks[k].trim().is_empty())
            .collect()
    }

    fn mutate(&self, r: &mut Rng, text: &str, rounds: usize) -> String {
        let mut toks = lex(text);
        for _ in 0..rounds {
            let solid = Self::solid(&toks);
            if solid.is_empty() {
                toks.push(self.token(r));
                continue;
            }
            let k = *r.pick(&solid);
            match r.below(15) {
                0 => {
                    toks.remove(k);
                }
                1 => {
                    let t = toks[k].clone();
                    toks.insert(k, t);
                }
                2 => {
                    let j = *r.pick(&solid);
                    toks.swap(k, j);
                }
                3 | 4 => toks[k] = self.token(r),
                5 => {
                    let t = self.token(r);
                    let sep = if r.chance(70) { " " } else { "" };
                    toks.insert(k, format!("{t}{sep}"));
                }
                6 | 7 => {
                    // a number edited: replaced, signed, or its digits grown
                    let numbers: Vec<usize> = solid
                        .iter()
                        .copied()
                        .filter(|&j| toks[j].starts_with(|c: char| c.is_ascii_digit()))
                        .collect();
                    let j = if numbers.is_empty() {
                        k
                    } else {
                        *r.pick(&numbers)
                    };
                    toks[j] = match r.below(4) {
                        0 => format!("-{}", toks[j]),
                        1 => format!("{}{}", toks[j], "9".repeat(r.range(1, 30))),
                        2 => format!(
                            "{}e{}",
                            toks[j],
                            r.pick(&["39", "999", "-999", "308", "-50"])
                        ),
                        _ => r.pick(NUMBERS).to_string(),
                    };
                }
                8 => {
                    // nesting, often near the depth limit
                    let n = *r.pick(&[
                        1, 2, 5, 50, 120, 127, 128, 129, 200, 255, 256, 257, 300, 1500, 2500,
                    ]);
                    let (open, close) = *r.pick(&[
                        ("(", ")"),
                        ("exp(", ")"),
                        ("-", ""),
                        ("[", "]"),
                        ("sum(", ")"),
                        ("- -", ""),
                        ("a[", "]"),
                    ]);
                    toks[k] = format!("{}{}{}", open.repeat(n), toks[k], close.repeat(n));
                }
                9 => {
                    // a long chain
                    let n = *r.pick(&[10, 100, 120, 126, 127, 130, 300, 1000, 5000]);
                    let op = r.pick(&[" + ", " * ", " - ", " / ", " @ "]);
                    let term = toks[k].clone();
                    toks[k] = vec![term; n].join(op);
                }
                10 => {
                    // a statement repeated
                    let ends: Vec<usize> =
                        solid.iter().copied().filter(|&j| toks[j] == ";").collect();
                    if let Some(&end) = (!ends.is_empty()).then(|| r.pick(&ends)) {
                        let start = (0..end)
                            .rev()
                            .find(|&j| toks[j] == ";" || toks[j] == "{")
                            .map_or(0, |j| j + 1);
                        let stmt: String = toks[start..=end].concat();
                        let times = *r.pick(&[2, 3, 10, 100]);
                        toks.insert(end + 1, stmt.repeat(times));
                    }
                }
                11 => {
                    // a name renamed everywhere
                    if toks[k].starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
                        let old = toks[k].clone();
                        let new = match r.below(4) {
                            0 => r.pick(RUST_KEYWORDS).to_string(),
                            1 => "n".repeat(r.range(60, 70)),
                            2 => old.to_lowercase(),
                            _ => self.token(r),
                        };
                        for t in toks.iter_mut().filter(|t| **t == old) {
                            *t = new.clone();
                        }
                    }
                }
                12 => {
                    // a piece of another program spliced in
                    let other = lex(&self.corpus[r.below(self.corpus.len())]);
                    if !other.is_empty() {
                        let a = r.below(other.len());
                        let b = (a + r.range(1, 40)).min(other.len());
                        let piece = other[a..b].concat();
                        toks.insert(k, piece);
                    }
                }
                13 => {
                    // the text cut short
                    toks.truncate(k);
                }
                _ => {
                    // a few random characters
                    let s: String = (0..r.range(1, 4))
                        .map(|_| char::from_u32(r.below(0x2fff) as u32).unwrap_or('?'))
                        .collect();
                    toks.insert(k, s);
                }
            }
            if toks.iter().map(String::len).sum::<usize>() > MAX_LEN {
                break;
            }
        }
        let mut s = toks.concat();
        if s.len() > MAX_LEN {
            let mut cut = MAX_LEN;
            while !s.is_char_boundary(cut) {
                cut -= 1;
            }
            s.truncate(cut);
        }
        s
    }

    /// The `index`-th input of a run with `seed`, and what kind it is.
    fn input(&self, seed: u64, index: usize) -> (String, &'static str) {
        if index < self.corpus.len() {
            return (self.corpus[index].clone(), "corpus");
        }
        let r = &mut Rng::new(seed, index as u64);
        let rounds = if r.chance(5) {
            r.range(10, 60)
        } else {
            r.range(1, 8)
        };
        match r.below(100) {
            0..=39 => {
                let base = r.pick(&self.corpus).clone();
                (self.mutate(r, &base, rounds), "mutation")
            }
            40..=49 => {
                // numbers only: the program mostly still compiles, so codegen sees them
                let base = if r.chance(50) {
                    valid(r)
                } else {
                    r.pick(&self.corpus).clone()
                };
                let rounds = r.range(1, 2);
                (renumber(r, &base, rounds), "numbers")
            }
            50..=59 => {
                let (a, b) = (r.pick(&self.corpus).clone(), r.pick(&self.corpus).clone());
                let (ta, tb) = (lex(&a), lex(&b));
                let (ka, kb) = (r.below(ta.len() + 1), r.below(tb.len() + 1));
                let spliced = format!("{}{}", ta[..ka].concat(), tb[kb..].concat());
                (self.mutate(r, &spliced, rounds / 2), "splice")
            }
            60..=79 => {
                let program = if r.chance(60) { valid(r) } else { generate(r) };
                if r.chance(50) {
                    (self.mutate(r, &program, rounds), "generated+mutation")
                } else {
                    (program, "generated")
                }
            }
            80..=89 => {
                let n = r.range(1, 80);
                let s: Vec<String> = (0..n).map(|_| self.token(r)).collect();
                let sep = if r.chance(80) { " " } else { "" };
                (s.join(sep), "tokens")
            }
            90..=96 => {
                let bytes: Vec<u8> = (0..r.below(300)).map(|_| r.next() as u8).collect();
                (String::from_utf8_lossy(&bytes).into_owned(), "bytes")
            }
            _ => (stress(r), "stress"),
        }
    }
}

/// `text` with some of its numbers replaced by others at f32's, usize's and the limits' edges.
fn renumber(r: &mut Rng, text: &str, rounds: usize) -> String {
    let mut toks = lex(text);
    let numbers: Vec<usize> = (0..toks.len())
        .filter(|&k| toks[k].starts_with(|c: char| c.is_ascii_digit()))
        .collect();
    if numbers.is_empty() {
        return text.to_string();
    }
    for _ in 0..rounds {
        let k = *r.pick(&numbers);
        toks[k] = r.pick(NUMBERS).to_string();
    }
    toks.concat()
}

// ---- programs from the grammar -------------------------------------------------------------

fn number(r: &mut Rng) -> String {
    if r.chance(8) {
        return r.pick(NUMBERS).to_string();
    }
    r.pick(&[
        "0.0", "1.0", "2.0", "0.5", "3", "1", "2", "5.0", "0.1", "10.0", "-1.0",
    ])
    .to_string()
}

fn expr(r: &mut Rng, names: &[String], depth: usize) -> String {
    let leaf = depth == 0 || r.chance(35);
    if leaf {
        return match r.below(5) {
            0 | 1 => number(r),
            2 if r.chance(10) => "temperature".into(),
            _ if !names.is_empty() => r.pick(names).clone(),
            _ => number(r),
        };
    }
    let e = |r: &mut Rng| expr(r, names, depth - 1);
    match r.below(10) {
        0 => format!("-{}", e(r)),
        1..=3 => {
            let op = r.pick(&["+", "-", "*", "/", "@"]);
            format!("{} {op} {}", e(r), e(r))
        }
        4 | 5 => {
            let f = r.pick(catalogue::ELEMENTWISE);
            format!("{f}({})", e(r))
        }
        6 => {
            let f = r.pick(&["sum", "mean", "logsumexp", "softmax", "log_softmax"]);
            if r.chance(50) {
                format!("{f}({})", e(r))
            } else {
                format!("{f}({}, {})", e(r), r.pick(&["0", "1", "-1", "2"]))
            }
        }
        7 => match r.below(4) {
            0 => format!("{}[{}]", e(r), r.pick(&["0", "1", "g", "3"])),
            1 => format!("{}[{}..{}]", e(r), r.below(3), r.range(1, 4)),
            2 => format!("transpose({})", e(r)),
            _ => format!("concat({}, {})", e(r), e(r)),
        },
        8 => format!("pow({}, {})", e(r), number(r)),
        _ => {
            if r.chance(50) {
                format!("({})", e(r))
            } else {
                format!("Mlp({}; {})", e(r), e(r))
            }
        }
    }
}

fn shape(r: &mut Rng) -> String {
    let n = r.below(4);
    let dims: Vec<String> = (0..n)
        .map(|k| match r.below(8) {
            0 if k == 0 => "N".into(),
            1 => "D".into(),
            2 => "params(Mlp)".into(),
            3 => format!("params(Mlp, {})", r.below(3)),
            4 if r.chance(20) => r.pick(NUMBERS).to_string(),
            _ => r.range(1, 5).to_string(),
        })
        .collect();
    format!("[{}]", dims.join(", "))
}

fn call_args(r: &mut Rng, spec: &catalogue::DistSpec, names: &[String]) -> String {
    let p = r.pick(spec.parametrizations);
    let named = r.chance(30);
    let mut n = p.params.len();
    if r.chance(5) {
        n = r.below(4);
    }
    let args: Vec<String> = (0..n)
        .map(|k| {
            let depth = r.below(4);
            let value = expr(r, names, depth);
            match (named, p.params.get(k)) {
                (true, Some(ps)) => format!("{} = {value}", ps.name),
                _ => value,
            }
        })
        .collect();
    args.join(", ")
}

fn family(r: &mut Rng, spec: &catalogue::FamilySpec, depth: usize) -> String {
    use catalogue::ArgKind;
    if spec.args.is_empty() || r.chance(30) {
        return spec.name.to_string();
    }
    let mut args: Vec<String> = Vec::new();
    for a in spec.args {
        if r.chance(40) {
            continue;
        }
        let v = match a.kind {
            ArgKind::Count => r
                .pick(&[
                    "1",
                    "2",
                    "3",
                    "8",
                    "0",
                    "0.5",
                    "1000000000000",
                    "4294967296",
                ])
                .to_string(),
            ArgKind::Positive => number(r),
            ArgKind::Counts => format!(
                "[{}]",
                (0..r.below(3))
                    .map(|_| r.range(1, 64).to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            ArgKind::Choice(names) => r.pick(names).to_string(),
            ArgKind::Layers => {
                if depth > 0 {
                    continue;
                }
                for _ in 0..r.range(1, 3) {
                    let l = r.pick(catalogue::FLOW_LAYERS);
                    args.push(family(r, l, depth + 1));
                }
                continue;
            }
        };
        args.push(format!("{} = {v}", a.name));
    }
    format!("{}({})", spec.name, args.join(", "))
}

/// A program from the grammar: a net, a model of random sites, lets and params over random
/// expressions, and a guide of random families.
fn generate(r: &mut Rng) -> String {
    let mut out = String::new();
    let (f, h, o) = (r.range(1, 6), r.range(1, 8), r.range(1, 3));
    if r.chance(30) {
        let act = r.pick(&["relu", "tanh", "sigmoid", "softplus"]);
        out.push_str(&format!(
            "net Mlp(x: [B, {f}]) -> [B, {o}] {{ Linear({f}, {h}) -> {act} -> Linear({h}, {o}) }}\n"
        ));
    } else if r.chance(10) {
        out.push_str("net Mlp(x: [B, 1, 6, 6]) -> [B, 2] { Conv2d(1, 2, 3, padding = 1) -> MaxPool(2) -> flatten -> Linear(18, 2) }\n");
    } else if r.chance(30) {
        out.push_str(&net(r));
    }
    let sizes = if r.chance(20) { "<D>" } else { "" };
    let d = if sizes.is_empty() {
        r.range(1, 4).to_string()
    } else {
        "D".into()
    };
    let k = r.range(2, 4);
    let mut inputs = vec![format!("x: [N, {d}]"), format!("g: [N] in 0..{k}")];
    let observed = match r.below(3) {
        0 => "y: [N]".to_string(),
        1 => format!("y: [N] in 0..{}", r.range(2, 5)),
        _ => format!("y: [N, {o}]"),
    };
    inputs.push(observed);
    if r.chance(30) {
        inputs.push(format!("m: [{d}, {d}]"));
    }
    let mut names: Vec<String> = vec!["x".into(), "g".into()];
    let mut latents: Vec<String> = Vec::new();
    let mut stmts = Vec::new();
    for i in 0..r.range(1, 7) {
        let name = format!("s{i}");
        match r.below(10) {
            0..=5 => {
                let spec = r.pick(catalogue::DISTRIBUTIONS);
                let args = call_args(r, spec, &names);
                let shape = if r.chance(50) {
                    format!(" {}", shape(r))
                } else {
                    String::new()
                };
                let ordered = if r.chance(5) { " ordered" } else { "" };
                stmts.push(format!("{name} ~ {}({args}){shape}{ordered};", spec.name));
                latents.push(name.clone());
            }
            6 | 7 => stmts.push(format!("let {name} = {};", expr(r, &names, 3))),
            8 => {
                let kw = r.pick(&["track", "let"]);
                stmts.push(format!("{kw} {name} = {};", expr(r, &names, 2)));
            }
            _ => {
                if r.chance(50) {
                    stmts.push(format!("param {name} {} = {};", shape(r), number(r)));
                } else {
                    stmts.push(format!("factor({name}, {});", expr(r, &names, 2)));
                }
            }
        }
        names.push(name);
    }
    let spec = r.pick(catalogue::DISTRIBUTIONS);
    let args = call_args(r, spec, &names);
    stmts.push(format!("y ~ {}({args});", spec.name));
    out.push_str(&format!(
        "model M{sizes}({}) {{\n    {}\n}}\n",
        inputs.join(", "),
        stmts.join("\n    ")
    ));
    if r.chance(85) && !latents.is_empty() {
        let mut lines = Vec::new();
        if r.chance(15) {
            lines.push(format!("param p0 [{}] = 0.5;", r.range(1, 3)));
            lines.push("param p1 positive = 0.2;".to_string());
        }
        let mut rest = latents.clone();
        while !rest.is_empty() {
            let take = r.range(1, rest.len());
            let sites: Vec<String> = rest.drain(..take).collect();
            let sites = if sites.len() == 1 && r.chance(70) {
                sites[0].clone()
            } else {
                format!("({})", sites.join(", "))
            };
            let fam = match r.below(10) {
                0 => format!(
                    "Normal({}, {})",
                    r.pick(&["0.0", "p0", "p1"]),
                    r.pick(&["1.0", "p1"])
                ),
                1 => "Amortized(Mlp(x))".to_string(),
                _ => {
                    let spec = r.pick(catalogue::FAMILIES);
                    family(r, spec, 0)
                }
            };
            lines.push(format!("{sites} ~ {fam};"));
        }
        out.push_str(&format!("guide G for M {{ {} }}\n", lines.join(" ")));
    }
    out
}

/// A number for a parameter of this constraint: most of them fit, some sit at f32's edges.
fn valid_number(r: &mut Rng, c: catalogue::Constraint) -> String {
    use catalogue::Constraint::*;
    let edge = r.chance(4);
    match c {
        Positive if edge => r
            .pick(&["1e-45", "1e-38", "3.4e38", "1e-50", "1e38"])
            .to_string(),
        Positive => r
            .pick(&["0.5", "1.0", "2.0", "3", "0.1", "10.0"])
            .to_string(),
        UnitInterval if edge => r.pick(&["1e-45", "0.99999999", "1e-50"]).to_string(),
        UnitInterval => r.pick(&["0.5", "0.2", "0.9"]).to_string(),
        Count | Boolean => r.pick(&["1", "2", "5"]).to_string(),
        _ if edge => r
            .pick(&["-3.4e38", "3.4e38", "1e-45", "-1e38", "0.0"])
            .to_string(),
        _ => r.pick(&["0.0", "1.0", "-1.0", "2.5", "0.3"]).to_string(),
    }
}

/// A scalar expression whose values lie in `c` (real, positive, in (0, 1)), over the
/// model's scalar latents: `reals` any real, `positives` positive.
fn valid_expr(
    r: &mut Rng,
    c: catalogue::Constraint,
    reals: &[String],
    positives: &[String],
    depth: usize,
) -> String {
    use catalogue::Constraint::*;
    let real = |r: &mut Rng| valid_expr(r, Real, reals, positives, depth.saturating_sub(1));
    let pos = |r: &mut Rng| valid_expr(r, Positive, reals, positives, depth.saturating_sub(1));
    if depth == 0 || r.chance(30) {
        return match c {
            Positive if !positives.is_empty() && r.chance(60) => r.pick(positives).clone(),
            Real if !reals.is_empty() && r.chance(60) => r.pick(reals).clone(),
            _ => valid_number(r, c),
        };
    }
    match c {
        Positive => match r.below(6) {
            0 => format!("exp({})", real(r)),
            1 => format!("softplus({})", real(r)),
            2 => format!("{} + {}", pos(r), pos(r)),
            3 => format!("{} * {}", pos(r), pos(r)),
            4 => format!("pow({}, {})", pos(r), r.pick(&["0.5", "2.0", "1.5"])),
            _ => format!("sqrt({})", pos(r)),
        },
        UnitInterval => format!("sigmoid({})", real(r)),
        _ => match r.below(8) {
            0 => format!("-{}", real(r)),
            1 => format!("{} + {}", real(r), real(r)),
            2 => format!("{} - {}", real(r), real(r)),
            3 => format!("{} * {}", real(r), real(r)),
            4 => format!("{} / {}", real(r), pos(r)),
            5 => format!("log({})", pos(r)),
            6 => format!(
                "{}({})",
                r.pick(&["tanh", "abs", "square", "expm1"]),
                real(r)
            ),
            _ => format!("({})", real(r)),
        },
    }
}

/// A program that mostly compiles (so that codegen and the engine's program see it): scalar
/// latents of the catalogue's real, positive and unit-interval distributions with arguments
/// of the right kind, a regression on data, and a guide of every family over them.
fn valid(r: &mut Rng) -> String {
    use catalogue::Constraint::*;
    let simple: Vec<&catalogue::DistSpec> = catalogue::DISTRIBUTIONS
        .iter()
        .filter(|d| {
            matches!(d.support, Real | Positive | UnitInterval)
                && !d.event
                && !d.vector_event
                && !d.joint
                && d.params()
                    .iter()
                    .all(|p| matches!(p.constraint, Real | Positive | UnitInterval))
        })
        .collect();
    let d = r.range(1, 4);
    let (mut reals, mut positives, mut latents) = (Vec::new(), Vec::new(), Vec::new());
    let mut stmts = Vec::new();
    for i in 0..r.range(1, 6) {
        let name = format!("z{i}");
        let spec = *r.pick(&simple);
        let args: Vec<String> = spec
            .params()
            .iter()
            .map(|p| {
                let depth = r.below(3);
                valid_expr(r, p.constraint, &reals, &positives, depth)
            })
            .collect();
        stmts.push(format!("{name} ~ {}({});", spec.name, args.join(", ")));
        match spec.support {
            Positive | UnitInterval => positives.push(name.clone()),
            _ => reals.push(name.clone()),
        }
        latents.push(name.clone());
        if r.chance(30) {
            let l = format!("l{i}");
            stmts.push(format!(
                "let {l} = {};",
                valid_expr(r, Real, &reals, &positives, 2)
            ));
            reals.push(l);
        }
    }
    if r.chance(30) {
        stmts.push(format!(
            "u ~ Uniform({}, {});",
            r.pick(&["0.0", "-1.0", "-3.4e38", "1.0"]),
            r.pick(&["1.0", "2.0", "3.4e38", "1.0"])
        ));
        reals.push("u".into());
        latents.push("u".into());
    }
    stmts.push(format!("w ~ Normal(0.0, 1.0) [{d}];"));
    latents.push("w".into());
    if r.chance(20) {
        stmts.push(format!(
            "track t = {};",
            valid_expr(r, Real, &reals, &positives, 2)
        ));
    }
    if r.chance(20) {
        stmts.push(format!(
            "factor(f, -0.5 * square({}));",
            valid_expr(r, Real, &reals, &positives, 1)
        ));
    }
    let loc = valid_expr(r, Real, &reals, &positives, 2);
    let scale = valid_expr(r, Positive, &reals, &positives, 2);
    stmts.push(format!("y ~ Normal(x @ w + {loc}, {scale});"));
    let mut out = format!(
        "model M(x: [N, {d}], y: [N]) {{\n    {}\n}}\n",
        stmts.join("\n    ")
    );
    let mut lines = Vec::new();
    let mut rest = latents;
    while !rest.is_empty() {
        let take = r.range(1, rest.len());
        let sites: Vec<String> = rest.drain(..take).collect();
        let sites = if sites.len() == 1 {
            sites[0].clone()
        } else {
            format!("({})", sites.join(", "))
        };
        let spec = r.pick(catalogue::FAMILIES);
        let fam = if spec.rewrite.is_some() {
            "MeanField".to_string()
        } else {
            family(r, spec, 0)
        };
        lines.push(format!("{sites} ~ {fam};"));
    }
    out.push_str(&format!("guide G for M {{ {} }}\n", lines.join(" ")));
    out
}

/// A net of random layers and sizes, some of them past every limit.
fn net(r: &mut Rng) -> String {
    let size = |r: &mut Rng| {
        if r.chance(15) {
            r.pick(NUMBERS).to_string()
        } else {
            r.range(1, 8).to_string()
        }
    };
    let input: Vec<String> = (0..r.range(0, 4)).map(|_| size(r)).collect();
    let input = if input.is_empty() && r.chance(50) {
        String::new()
    } else {
        format!("B, {}", input.join(", "))
    };
    let layers: Vec<String> = (0..r.range(1, 5))
        .map(|_| match r.below(8) {
            0 | 1 => format!("Linear({}, {})", size(r), size(r)),
            2 => {
                let mut args = vec![size(r), size(r), size(r)];
                if r.chance(50) {
                    args.push(format!("stride = {}", size(r)));
                }
                if r.chance(50) {
                    args.push(format!("padding = {}", size(r)));
                }
                format!("Conv2d({})", args.join(", "))
            }
            3 => format!("{}({})", r.pick(&["MaxPool", "AvgPool"]), size(r)),
            4 => "flatten".to_string(),
            5 => r.pick(LAYERS).to_string(),
            _ => r.pick(&["relu", "tanh", "sigmoid", "softplus"]).to_string(),
        })
        .collect();
    format!(
        "net Mlp(x: [{input}]) -> [B, {}] {{ {} }}\n",
        size(r),
        layers.join(" -> ")
    )
}

/// Inputs at the scale of the issue's slow cases: shared chains, many unknown names, long
/// lines of errors, depth at the limit, sizes past it.
fn stress(r: &mut Rng) -> String {
    match r.below(7) {
        0 => {
            let n = r.range(20, 400);
            let mut s = String::from("model M(y: [N]) { a0 ~ Normal(0.0, 1.0);");
            for i in 1..=n {
                s.push_str(&format!(" let a{i} = a{} + a{};", i - 1, i - 1));
            }
            s.push_str(&format!(" y ~ Normal(a{n}, 1.0); }}"));
            s
        }
        1 => {
            let n = r.range(100, 1500);
            let mut s = String::from("model M(y: [N]) {");
            for i in 0..n {
                s.push_str(&format!(" let q{i} = unknown_{i} + other{i};"));
            }
            s.push_str(" y ~ Normal(0.0, 1.0); }");
            s
        }
        2 => {
            let n = r.range(100, 1500);
            let names: String = (0..n)
                .map(|i| format!(" let z{i} = Nrml{i}(1.0);"))
                .collect();
            format!("model M(y: [N]) {{{names} y ~ Normal(0.0, 1.0); }}")
        }
        3 => {
            let d = r.range(115, 135);
            format!(
                "model M(y: [N]) {{ a ~ Normal(0.0, 1.0); let b = {}a{}; y ~ Normal(b, 1.0); }}",
                "exp(".repeat(d),
                ")".repeat(d)
            )
        }
        4 => {
            let dims = r.pick(&[
                "[4294967296, 4294967296]",
                "[18446744073709551616]",
                "[2147483648]",
                "[65536, 32768]",
                "[65536, 32769]",
                "[B, 100000000, 1000000000000]",
                "[]",
                "[d]",
            ]);
            format!("net M(x: {dims}) -> [B, 2] {{ Linear(2, 2) }}\nmodel Q(x: [N, 2], y: {dims}) {{ w ~ Normal(0.0, 1.0) {dims}; y ~ Normal(0.0, 1.0); }}")
        }
        5 => {
            let long = "a".repeat(r.range(60, 20_000));
            let n = r.range(2, 300);
            format!(
                "model M(y: [N]) {{ let b = {}; {long} ~ {long}(0.0, 1.0); y ~ Normal({long}, 1.0); }}",
                vec!["a"; n].join(" + ")
            )
        }
        _ => {
            let n = r.range(50, 300);
            let layers: Vec<String> = (0..n)
                .map(|_| "Linear(64, 64) -> tanh".to_string())
                .collect();
            format!(
                "net Deep(x: [B, 64]) -> [B, 64] {{ {} }}",
                layers.join(" -> ")
            )
        }
    }
}

// ---- one input ---------------------------------------------------------------------------

/// Everything the proc macros do with a text: whether it compiled, or what broke.
fn exercise(src: &str, twice: bool) -> Result<bool, String> {
    let result = compile(src);
    if twice && compile(src) != result {
        return Err("compile is not deterministic".into());
    }
    match result {
        Ok(program) => {
            let span_of = |_: &ravi_compiler::Span| proc_macro2::Span::call_site();
            let _ = program.to_text();
            for m in &program.models {
                let _ = codegen::model(m, &span_of);
                for site in m.sites.iter() {
                    let _ = start::prior_median(m, site);
                }
                let _ = start::net_weights(m);
            }
            let path: proc_macro2::TokenStream = "crate::models::M".parse().expect("a path");
            for g in program.guides.iter().chain(&program.generated_guides) {
                let model = program
                    .model(&g.model)
                    .ok_or("a guide's model is missing")?;
                let _ = codegen::guide(g, model, &span_of);
                let _ = codegen::guide_at(g, model, &path, &span_of);
                let _ = fused::program(model, g);
            }
            Ok(true)
        }
        Err(diagnostics) => {
            if diagnostics.is_empty() {
                return Err("an error without diagnostics".into());
            }
            for d in &diagnostics {
                span_inside(src, d)?;
            }
            let _ = render_all(&diagnostics, src);
            let _ = diagnostics[0].render(src);
            Ok(false)
        }
    }
}

fn span_inside(src: &str, d: &Diagnostic) -> Result<(), String> {
    let s = &d.span;
    if s.start > s.end || s.end > src.len() {
        return Err(format!(
            "span {s:?} outside the input of {} bytes: {}",
            src.len(),
            d.message
        ));
    }
    if !src.is_char_boundary(s.start) || !src.is_char_boundary(s.end) {
        return Err(format!("span {s:?} inside a character: {}", d.message));
    }
    if d.message.is_empty() {
        return Err(format!("an empty message at {s:?}"));
    }
    Ok(())
}

thread_local! {
    static LAST_PANIC: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// What one input did: how long it took, and what broke.
struct Outcome {
    time: Duration,
    compiled: bool,
    failure: Option<String>,
}

fn run_input(src: &str, twice: bool) -> Outcome {
    let t0 = Instant::now();
    let r = panic::catch_unwind(AssertUnwindSafe(|| exercise(src, twice)));
    let time = t0.elapsed();
    let compiled = matches!(r, Ok(Ok(true)));
    let failure = match r {
        Ok(Ok(_)) => None,
        Ok(Err(e)) => Some(e),
        Err(_) => Some(format!(
            "panic: {}",
            LAST_PANIC.with(|p| p.borrow().clone())
        )),
    };
    Outcome {
        time,
        compiled,
        failure,
    }
}

// ---- the run -----------------------------------------------------------------------------

#[derive(Default)]
struct Stats {
    inputs: usize,
    /// Per kind of input: how many, how many compiled (and so reached codegen), and their
    /// time.
    kinds: std::collections::BTreeMap<&'static str, (usize, usize, Duration)>,
    failures: Vec<(usize, &'static str, String, String)>,
    slowest: Vec<(Duration, usize, &'static str, usize)>,
}

fn env<T: std::str::FromStr>(name: &str) -> Option<T> {
    std::env::var(name).ok().and_then(|v| {
        let v = v.trim().replace('_', "");
        match v.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16)
                .ok()
                .and_then(|x| x.to_string().parse().ok()),
            None => v.parse().ok(),
        }
    })
}

#[test]
fn fuzz_the_compiler() {
    let inputs: usize = env("RAVI_FUZZ_INPUTS").unwrap_or(DEFAULT_INPUTS);
    let seed: u64 = env("RAVI_FUZZ_SEED").unwrap_or(DEFAULT_SEED);
    let only: Option<usize> = env("RAVI_FUZZ_ONLY");
    let fuzzer = Arc::new(Fuzzer {
        corpus: corpus(),
        vocab: vocabulary(),
    });
    // Panics are caught and reported per input; the hook only keeps the message.
    let default_hook = panic::take_hook();
    panic::set_hook(Box::new(|info| {
        let msg = format!("{info}");
        LAST_PANIC.with(|p| *p.borrow_mut() = msg);
    }));
    if let Some(i) = only {
        let (src, kind) = fuzzer.input(seed, i);
        let out = run_input(&src, true);
        panic::set_hook(default_hook);
        println!(
            "input #{i} ({kind}, {} bytes, {:?}):\n{src}",
            src.len(),
            out.time
        );
        assert!(out.failure.is_none(), "{}", out.failure.unwrap_or_default());
        return;
    }
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let stats = Arc::new(Mutex::new(Stats::default()));
    let t0 = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let (fuzzer, stats) = (Arc::clone(&fuzzer), Arc::clone(&stats));
            std::thread::Builder::new()
                .name(format!("fuzz-{t}"))
                .stack_size(STACK)
                .spawn(move || {
                    let mut local = Stats::default();
                    for i in (t..inputs).step_by(threads) {
                        let (src, kind) = fuzzer.input(seed, i);
                        let out = run_input(&src, i % 50 == 0);
                        local.inputs += 1;
                        let k = local.kinds.entry(kind).or_default();
                        k.0 += 1;
                        k.1 += usize::from(out.compiled);
                        k.2 += out.time;
                        local.slowest.push((out.time, i, kind, src.len()));
                        if local.slowest.len() > 64 {
                            local.slowest.sort_by_key(|s| std::cmp::Reverse(s.0));
                            local.slowest.truncate(5);
                        }
                        if let Some(f) = out.failure {
                            local.failures.push((i, kind, f, src));
                        }
                    }
                    let mut s = stats.lock().unwrap_or_else(|e| e.into_inner());
                    s.inputs += local.inputs;
                    for (kind, (n, ok, t)) in local.kinds {
                        let k = s.kinds.entry(kind).or_default();
                        k.0 += n;
                        k.1 += ok;
                        k.2 += t;
                    }
                    s.failures.extend(local.failures);
                    s.slowest.extend(local.slowest);
                })
                .expect("a fuzzing thread starts")
        })
        .collect();
    for w in workers {
        w.join().expect("a fuzzing thread finishes");
    }
    panic::set_hook(default_hook);
    let elapsed = t0.elapsed();
    let mut stats = Arc::try_unwrap(stats)
        .ok()
        .expect("the threads are done")
        .into_inner()
        .unwrap_or_else(|e| e.into_inner());
    stats.slowest.sort_by_key(|s| std::cmp::Reverse(s.0));
    stats.slowest.truncate(5);
    stats.failures.sort_by_key(|f| f.0);
    let panics = stats
        .failures
        .iter()
        .filter(|f| f.2.starts_with("panic"))
        .count();
    println!(
        "fuzz: {} inputs ({} corpus programs) in {:.1} s ({:.0} inputs/s, {threads} threads), seed {seed:#x}; panics: {panics}, other failures: {}; slowest: {:.1} ms",
        stats.inputs,
        fuzzer.corpus.len(),
        elapsed.as_secs_f64(),
        stats.inputs as f64 / elapsed.as_secs_f64(),
        stats.failures.len() - panics,
        stats.slowest.first().map_or(0.0, |s| s.0.as_secs_f64() * 1e3)
    );
    for (kind, (n, ok, t)) in &stats.kinds {
        println!(
            "  {kind}: {n} inputs, {ok} compiled, {:.2} ms each",
            t.as_secs_f64() * 1e3 / *n as f64
        );
    }
    for (time, i, kind, len) in &stats.slowest {
        println!(
            "  slow: input #{i} ({kind}, {len} bytes): {:.1} ms",
            time.as_secs_f64() * 1e3
        );
    }
    if !stats.failures.is_empty() {
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("fuzz-failures");
        let _ = std::fs::create_dir_all(&dir);
        for (i, kind, why, src) in stats.failures.iter().take(20) {
            let file = dir.join(format!("{seed:x}-{i}.txt"));
            let _ = std::fs::write(&file, src);
            println!(
                "FAIL input #{i} ({kind}, {} bytes, in {}): {why}",
                src.len(),
                file.display()
            );
        }
    }
    assert!(
        stats.failures.is_empty(),
        "{} of {} inputs failed (replay one with RAVI_FUZZ_SEED={seed:#x} RAVI_FUZZ_ONLY=index)",
        stats.failures.len(),
        stats.inputs
    );
    let (slowest, i, kind, _) = stats.slowest.first().copied().unwrap_or_default();
    assert!(
        slowest < SLOWEST,
        "input #{i} ({kind}) took {slowest:?}, over {SLOWEST:?}"
    );
}
