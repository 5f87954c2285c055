//! Issue 15's compiler cases: each is an error at its token (never a panic, never code rustc
//! rejects, never a stack overflow), and compile time is linear in the model's size.

use std::time::{Duration, Instant};

use ravi_compiler::limits::MAX_DEPTH;
use ravi_compiler::{codegen, compile, fused, render_all, Diagnostic};

/// The errors of a program that must not compile, each checked to lie inside the text.
fn errors(src: &str) -> Vec<Diagnostic> {
    let e = compile(src).expect_err("the program is wrong");
    for d in &e {
        assert!(
            d.span.end <= src.len() && d.span.start <= d.span.end,
            "{d:?}"
        );
    }
    e
}

/// The one error of `src`, which must be at `token` (the text its span starts with) and
/// say `says`.
fn error_at(src: &str, token: &str, says: &str) {
    let e = errors(src);
    let hit = e
        .iter()
        .find(|d| src[d.span.start..].starts_with(token) && d.message.contains(says));
    assert!(
        hit.is_some(),
        "no error at `{token}` saying `{says}`:\n{}",
        render_all(&e, src)
    );
}

/// Compiles and generates every model's and guide's code, as the macros do.
fn generates(src: &str) {
    let p = compile(src).unwrap_or_else(|e| panic!("{}", render_all(&e, src)));
    let span_of = |_: &ravi_compiler::Span| proc_macro2::Span::call_site();
    for m in &p.models {
        let _ = codegen::model(m, &span_of);
    }
    for g in &p.guides {
        let m = p.model(&g.model).expect("its model");
        let _ = codegen::guide(g, m, &span_of);
        let _ = fused::program(m, g);
    }
}

#[test]
fn numbers_beyond_f32_are_errors_at_them() {
    error_at(
        "model M(y: [N]) { mu ~ Uniform(0.0, 0.0); y ~ Normal(mu, 1.0); }",
        "0.0, 0.0",
        "low < high",
    );
    error_at(
        "model M(y: [N]) { mu ~ Uniform(1.0, 0.0); y ~ Normal(mu, 1.0); }",
        "1.0, 0.0",
        "low < high",
    );
    error_at(
        "model M(y: [N]) { mu ~ Normal(3.5e38, 1.0); y ~ Normal(mu, 1.0); }",
        "3.5e38",
        "does not fit in f32",
    );
    error_at(
        "model M(y: [N]) { a ~ Normal(0.0, 1.0); y ~ Normal(a * 1e999, 1.0); }",
        "1e999",
        "does not fit in f32",
    );
    // each number fits, their product does not
    error_at(
        "model M(y: [N]) { mu ~ Normal(1e30 * 1e30, 1.0); y ~ Normal(mu, 1.0); }",
        "1e30 * 1e30",
        "does not fit in f32",
    );
    // a positive scale that is 0 in f32
    error_at(
        "model M(y: [N]) { mu ~ Normal(0.0, 1e-50); y ~ Normal(mu, 1.0); }",
        "1e-50",
        "in f32",
    );
    error_at(
        "model M(y: [N]) { u ~ Uniform(-3e38, 3e38); y ~ Normal(u, 1.0); }",
        "-3e38, 3e38",
        "does not fit in f32",
    );
    error_at(
        "model M(y: [N]) { param m = 1e30 * 1e30; y ~ Normal(m, 1.0); }",
        "1e30 * 1e30",
        "fits in f32",
    );
    error_at(
        "model M(y: [N]) { a ~ Normal(0.0, 1.0); y ~ Normal(a, 1.0); }\nguide G for M { a ~ Implicit(prior_weight = 1e999); }",
        "1e999",
        "does not fit in f32",
    );
    // the largest f32 is a number like any other
    generates(
        "model M(y: [N]) { mu ~ Normal(3.4e38, 1.0); u ~ Uniform(-1e38, 1e38); y ~ Normal(mu + u, 1.0); }\nguide G for M { (mu, u) ~ MeanField; }",
    );
}

#[test]
fn net_sizes_use_checked_arithmetic() {
    error_at("net M(x: []) -> [B, 2] { relu }", "[]", "a net takes rows");
    error_at(
        "net M(x: [B, 100000000, 1000000000000]) -> [B, 2] { Linear(2, 2) }",
        "1000000000000",
        "at most 2147483648",
    );
    error_at(
        "net M(x: [B, 100000000, 100000000]) -> [B, 2] { Linear(2, 2) }",
        "[B, 100000000, 100000000]",
        "more than 2147483648",
    );
    error_at(
        "net C(x: [B, 1, 4, 4]) -> [B, 2] { Conv2d(1, 2, 3, padding = 18446744073709551615) -> flatten -> Linear(32, 2) }",
        "Conv2d",
        "at most 2147483648",
    );
    error_at(
        "net L(x: [B, 4]) -> [B, 2] { Linear(4, 4294967296) -> Linear(4294967296, 2) }",
        "Linear(4, 4294967296)",
        "at most 2147483648",
    );
    // each size within the limit, the weights not
    error_at(
        "net L(x: [B, 65536]) -> [B, 65536] { Linear(65536, 65536) }",
        "Linear(65536, 65536)",
        "more than 2147483648 (2^31) weights",
    );
    error_at(
        "net L(x: [B, 40000]) -> [B, 2] { Linear(40000, 40000) -> Linear(40000, 40000) -> Linear(40000, 2) }",
        "L(",
        "weights, the most a net may have",
    );
    error_at(
        "net C(x: [B, 1, 2, 2]) -> [B, 2] { Conv2d(1, 2, 1, padding = 1000000000) -> flatten -> Linear(8, 2) }",
        "Conv2d",
        "values per row",
    );
    // the limit itself is within it: 32767 × 65536 + 65536 = 2^31 weights
    compile("net L(x: [B, 32767]) -> [B, 65536] { Linear(32767, 65536) }").expect("2^31 weights");
    error_at(
        "net L(x: [B, 32768]) -> [B, 65536] { Linear(32768, 65536) }",
        "Linear",
        "more than 2147483648 (2^31) weights",
    );
}

#[test]
fn sizes_past_the_limit_are_errors_at_the_shape() {
    error_at(
        "model M(x: [18446744073709551616], y: [N]) { y ~ Normal(0.0, 1.0); }",
        "18446744073709551616",
        "at most 2147483648",
    );
    error_at(
        "model M(x: [4294967296, 4294967296], y: [N]) { y ~ Normal(0.0, 1.0); }",
        "4294967296",
        "at most 2147483648",
    );
    error_at(
        "model M(x: [65536, 65537], y: [N]) { y ~ Normal(0.0, 1.0); }",
        "[65536, 65537]",
        "more than 2147483648",
    );
    error_at(
        "model M(y: [N]) { w ~ Normal(0.0, 1.0) [65536, 65536]; y ~ Normal(sum(w), 1.0); }",
        "[65536, 65536]",
        "more than 2147483648",
    );
    // a value whose shape is derived: an outer product past the limit, at the product
    error_at(
        "model M(a: [65536, 1], b: [1, 65536], y: [N]) { w ~ Normal(0.0, 1.0); y ~ Normal(sum(a @ b) * w, 1.0); }",
        "a @ b",
        "more than 2147483648",
    );
    error_at(
        "net L(x: [B, 40000]) -> [B, 40000] { Linear(40000, 40000) }\nmodel M(y: [N]) { w ~ Normal(0.0, 1.0) [params(L), 3]; y ~ Normal(sum(w), 1.0); }",
        "w ~",
        "more than 2147483648",
    );
    error_at(
        "model M(y: [N]) { w ~ Normal(0.0, 1.0) [4]; y ~ Normal(sum(w), 1.0); }\nguide G for M { param m [65536, 65536] = 0.0; w ~ Normal(m, 1.0); }",
        "[65536, 65536]",
        "more than 2147483648",
    );
    error_at(
        "model M(y: [N]) { w ~ Normal(0.0, 1.0) [d]; y ~ Normal(sum(w), 1.0); }",
        "d]",
        "a size is N, a number, an UPPER_CASE constant or a size parameter",
    );
    error_at(
        "model M(g: [N] in 5..2, y: [N]) { y ~ Normal(0.0, 1.0); }",
        "g:",
        "holds no integers",
    );
}

#[test]
fn nesting_past_the_limit_is_an_error_not_a_crash() {
    let cases = [
        format!(
            "model M(y: [N]) {{ a ~ Normal(0.0, 1.0); y ~ Normal({}a{}, 1.0); }}",
            "(".repeat(2500),
            ")".repeat(2500)
        ),
        format!(
            "model M(y: [N]) {{ a ~ Normal(0.0, 1.0); y ~ Normal({}, 1.0); }}",
            vec!["a"; 5000].join(" + ")
        ),
        format!(
            "model M(y: [N]) {{ a ~ Normal(0.0, 1.0); y ~ Normal({}a{}, 1.0); }}",
            "exp(".repeat(1500),
            ")".repeat(1500)
        ),
        format!(
            "model M(y: [N]) {{ a ~ Normal(0.0, 1.0); y ~ Normal({}a, 1.0); }}",
            "-".repeat(5000)
        ),
        format!(
            "model M(y: [N]) {{ a ~ Normal(0.0, 1.0) [2]; y ~ Normal(a{}, 1.0); }}",
            "[0]".repeat(5000)
        ),
        format!(
            "model M(y: [N]) {{ a ~ Normal(0.0, 1.0); y ~ Normal({}a{}, 1.0); }}",
            "[".repeat(100_000),
            "]".repeat(100_000)
        ),
    ];
    for src in &cases {
        // on a thread with a fourth of the stack rustc runs proc macros on
        let src2 = src.clone();
        let e = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || errors(&src2))
            .expect("a thread")
            .join()
            .expect("no panic, no overflow");
        assert!(
            e[0].message
                .contains(&format!("more than {MAX_DEPTH} nested")),
            "{}",
            e[0].message
        );
        assert_eq!(e[0].span.len(), 1);
    }
    // just within the limit: compiles, and its code is generated
    let depth = MAX_DEPTH - 4;
    generates(&format!(
        "model M(y: [N]) {{ a ~ Normal(0.0, 1.0); let b = {}a{}; y ~ Normal(b, 1.0); }}\nguide G for M {{ a ~ MeanField; }}",
        "exp(".repeat(depth),
        ")".repeat(depth)
    ));
}

/// The one timed test the issue asks for: 200 chained lets, each using the one before
/// twice, compile in well under a second (this took 2^200 steps before).
#[test]
fn chained_shared_lets_compile_in_linear_time() {
    let mut src = String::from("model M(y: [N]) { a0 ~ Normal(0.0, 1.0);");
    for i in 1..=200 {
        src.push_str(&format!(" let a{i} = a{} + a{};", i - 1, i - 1));
    }
    src.push_str(" y ~ Normal(a200, 1.0); }\nguide G for M { a0 ~ MeanField; }");
    let t0 = Instant::now();
    generates(&src);
    let elapsed = t0.elapsed();
    assert!(elapsed < Duration::from_secs(1), "{elapsed:?}");
}

#[test]
fn constant_chains_fold_in_linear_time() {
    // shared constants (const_value), and a long chain of statements
    let mut src = String::from("model M(y: [N]) { let c0 = 1.0;");
    for i in 1..=200 {
        src.push_str(&format!(" let c{i} = c{} * c{};", i - 1, i - 1));
    }
    for i in 201..=5000 {
        src.push_str(&format!(" let c{i} = c{} - 0.0;", i - 1));
    }
    src.push_str(" mu ~ Normal(c5000, 1.0); y ~ Normal(mu, 1.0); }");
    generates(&src);
}

#[test]
fn hints_are_bounded() {
    // a long unknown name gets no hint
    let long = "Normla".repeat(7000);
    let e = errors(&format!(
        "model M(y: [N]) {{ mu ~ {long}(0.0, 1.0); y ~ Normal(mu, 1.0); }}"
    ));
    assert!(!e[0].message.contains("did you mean"), "{}", e[0].message);
    // thousands of unknown names, each reported, the hints within a budget
    let mut src = String::from("model M(y: [N]) {");
    for i in 0..8192 {
        src.push_str(&format!(" let v{i} = w{i} + 1.0;"));
    }
    src.push_str(" y ~ Normal(0.0, 1.0); }");
    let e = errors(&src);
    assert_eq!(e.len(), 8192);
    // the first names get hints (a tie goes to the first name in order), the last none
    assert!(
        e[1].message.ends_with("did you mean `v0`?"),
        "{}",
        e[1].message
    );
    assert!(
        !e[8191].message.contains("did you mean"),
        "{}",
        e[8191].message
    );
}

#[test]
fn many_errors_render_once_per_line() {
    let src = format!(
        "model M(y: [N]) {{ {} y ~ Normal(0.0, 1.0); }}",
        (0..10_000)
            .map(|i| format!("let v{i} = w{i};"))
            .collect::<String>()
    );
    assert!(src.len() > 100_000 && !src.contains('\n'));
    let e = errors(&src);
    assert_eq!(e.len(), 10_000);
    let text = render_all(&e, &src);
    assert!(
        text.ends_with("... and 9900 more errors"),
        "{}",
        &text[text.len() - 100..]
    );
    assert!(text.len() < 100 * 600, "{} bytes", text.len());
    // a short line still renders whole
    let short = "model M(y: [N]) { y ~ Normal(x, 1.0); }";
    let e = errors(short);
    assert!(render_all(&e, short).contains(short));
}

#[test]
fn rust_keywords_are_no_names() {
    for kw in [
        "self", "Self", "type", "fn", "match", "in", "pub", "async", "yield", "try", "_", "struct",
        "crate",
    ] {
        let cases = [
            format!("model {kw}(y: [N]) {{ y ~ Normal(0.0, 1.0); }}"),
            format!("model M({kw}: [N]) {{ {kw} ~ Normal(0.0, 1.0); }}"),
            format!("model M(y: [N]) {{ {kw} ~ Normal(0.0, 1.0); y ~ Normal({kw}, 1.0); }}"),
            format!("model M(y: [N]) {{ let {kw} = 1.0; y ~ Normal(0.0, 1.0); }}"),
            format!("model M(y: [N]) {{ param {kw} = 1.0; y ~ Normal({kw}, 1.0); }}"),
            format!("model M(y: [N]) {{ a ~ Normal(0.0, 1.0); y ~ Normal(a, 1.0); }}\nguide {kw} for M {{ a ~ MeanField; }}"),
            format!("net {kw}(x: [B, 2]) -> [B, 2] {{ relu }}"),
        ];
        for src in &cases {
            let e = compile(src);
            // `for`, `let`, .. are DSL keywords the grammar refuses; the others are caught here
            let e = e.expect_err(src);
            assert!(
                e.iter().any(|d| &src[d.span.clone()] == kw),
                "{src}: {}",
                render_all(&e, src)
            );
        }
    }
    error_at(
        "model M(y: [N]) { let type = 1.0; y ~ Normal(type, 1.0); }",
        "type =",
        "is a Rust keyword",
    );
}

#[test]
fn counts_say_their_cap() {
    error_at(
        "model M(y: [N]) { a ~ Normal(0.0, 1.0) [3]; y ~ Normal(sum(a), 1.0); }\nguide G for M { a ~ LowRank(rank = 1000000000000); }",
        "1000000000000",
        "at most 1000000000",
    );
    error_at(
        "model M(y: [N]) { a ~ Normal(0.0, 1.0) [3]; y ~ Normal(sum(a), 1.0); }\nguide G for M { a ~ Implicit(hidden = [4, 1000000000000]); }",
        "[4, 1000000000000]",
        "at most 1000000000",
    );
}

#[test]
fn any_span_renders() {
    let src = "model é(y: [N]) {}";
    let d = Diagnostic::new(7..8, "inside a character");
    assert!(d.render(src).starts_with("1:7: error"));
    let past = Diagnostic::new(100..200, "past the end");
    assert!(past.render(src).contains("past the end"));
}
