//! Text → AST, through the pest grammar in `grammar.pest`.
//!
//! A syntax error becomes a [`Diagnostic`] whose message says in words what was expected
//! ("expected `;` or a shape like `[D]`"), at the token where parsing stopped.

use pest::iterators::Pair;
use pest::pratt_parser::{Assoc, Op, PrattParser};
use pest::Parser as _;

use crate::ast::*;
use crate::diagnostic::{Diagnostic, Span};

#[derive(pest_derive::Parser)]
#[grammar = "grammar.pest"]
struct Grammar;

/// Parses a whole DSL text (any number of `model` and `guide` items).
/// Text nested deeper than [`crate::limits::MAX_DEPTH`] is refused before pest sees it
/// (pest and the passes after it recurse on nesting).
pub fn parse(source: &str) -> Result<Vec<Item>, Diagnostic> {
    crate::limits::check_nesting(source)?;
    let mut pairs = Grammar::parse(Rule::file, source).map_err(|e| syntax_error(source, e))?;
    let file = pairs.next().expect("the file rule always yields one pair");
    let mut items = Vec::new();
    for pair in file.into_inner() {
        match pair.as_rule() {
            Rule::model_def => items.push(Item::Model(model_def(pair))),
            Rule::guide_def => items.push(Item::Guide(guide_def(pair))),
            Rule::net_def => items.push(Item::Net(net_def(pair))),
            Rule::bnn_def => items.push(Item::Bnn(Box::new(bnn_def(pair)))),
            Rule::EOI => {}
            r => unreachable!("grammar: unexpected item {r:?}"),
        }
    }
    Ok(items)
}

fn span(pair: &Pair<Rule>) -> Span {
    let s = pair.as_span();
    s.start()..s.end()
}

fn ident(pair: Pair<Rule>) -> Ident {
    debug_assert_eq!(pair.as_rule(), Rule::ident);
    Ident {
        name: pair.as_str().to_string(),
        span: span(&pair),
    }
}

/// Is this pair punctuation or a keyword (which the AST does not keep)?
fn is_token(rule: Rule) -> bool {
    matches!(
        rule,
        Rule::lparen
            | Rule::rparen
            | Rule::lbrace
            | Rule::rbrace
            | Rule::lbrack
            | Rule::rbrack
            | Rule::langle
            | Rule::rangle
            | Rule::comma
            | Rule::colon
            | Rule::semi
            | Rule::tilde
            | Rule::assign
            | Rule::kw_pub
            | Rule::kw_model
            | Rule::kw_guide
            | Rule::kw_for
            | Rule::kw_let
    )
}

fn meaningful(pair: Pair<Rule>) -> impl Iterator<Item = Pair<Rule>> {
    pair.into_inner().filter(|p| !is_token(p.as_rule()))
}

fn doc_text(pair: Pair<Rule>) -> String {
    let inner = pair.into_inner().next().expect("doc has one child");
    match inner.as_rule() {
        Rule::doc_line => inner.as_str()[3..].trim().to_string(),
        Rule::doc_attr => {
            let lit = inner.into_inner().find(|p| p.as_rule() == Rule::string);
            lit.map(|l| unquote(l.as_str()).trim().to_string())
                .unwrap_or_default()
        }
        r => unreachable!("grammar: unexpected doc {r:?}"),
    }
}

/// The text of a Rust string literal (plain or raw), escapes resolved for the common cases.
fn unquote(lit: &str) -> String {
    if let Some(raw) = lit.strip_prefix('r') {
        let hashes = raw.len() - raw.trim_start_matches('#').len();
        return raw[hashes + 1..raw.len() - hashes - 1].to_string();
    }
    let body = &lit[1..lit.len() - 1];
    let mut out = String::with_capacity(body.len());
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

fn model_def(pair: Pair<Rule>) -> ModelDef {
    let sp = span(&pair);
    let mut docs = Vec::new();
    let mut name = None;
    let mut sizes = Vec::new();
    let mut inputs = Vec::new();
    let mut stmts = Vec::new();
    for p in meaningful(pair) {
        match p.as_rule() {
            Rule::doc => docs.push(doc_text(p)),
            Rule::ident => name = Some(ident(p)),
            Rule::sizes => sizes.extend(meaningful(p).map(ident)),
            Rule::inputs => {
                for i in meaningful(p) {
                    let mut it = meaningful(i);
                    let name = ident(it.next().expect("input name"));
                    let shape = shape(it.next().expect("input shape"));
                    let domain = it.next().map(|d| {
                        let mut ints = d.into_inner().filter(|p| p.as_rule() == Rule::int);
                        let mut int = || {
                            ints.next()
                                .map(|p| p.as_str().parse::<i64>().unwrap_or(i64::MAX))
                        };
                        Domain {
                            low: int().expect("grammar: a low bound"),
                            high: int(),
                        }
                    });
                    inputs.push(Input {
                        name,
                        shape,
                        domain,
                    });
                }
            }
            Rule::let_stmt | Rule::sample_stmt | Rule::track_stmt | Rule::factor_stmt => {
                stmts.push(stmt(p))
            }
            Rule::param_stmt => stmts.push(Stmt::Param(param_decl(p))),
            r => unreachable!("grammar: unexpected {r:?} in model"),
        }
    }
    ModelDef {
        docs,
        name: name.expect("model name"),
        sizes,
        inputs,
        stmts,
        span: sp,
    }
}

fn shape(pair: Pair<Rule>) -> ShapeAst {
    let sp = span(&pair);
    let dims = meaningful(pair)
        .map(|d| {
            let inner = d.into_inner().next().expect("dim child");
            match inner.as_rule() {
                Rule::int => {
                    let s = span(&inner);
                    // The grammar admits only digits; a size too large for usize saturates and
                    // is reported by the shape checks as an absurd size.
                    DimAst::Lit(inner.as_str().parse().unwrap_or(usize::MAX), s)
                }
                Rule::ident => DimAst::Named(ident(inner)),
                Rule::params_of => {
                    let s = span(&inner);
                    let mut it = meaningful(inner);
                    let net = ident(it.next().expect("grammar: a net name"));
                    let layer = it.next().map(|k| k.as_str().parse().unwrap_or(usize::MAX));
                    DimAst::ParamsOf(net, layer, s)
                }
                r => unreachable!("grammar: unexpected {r:?} in dim"),
            }
        })
        .collect();
    ShapeAst { dims, span: sp }
}

fn stmt(pair: Pair<Rule>) -> Stmt {
    let sp = span(&pair);
    match pair.as_rule() {
        Rule::let_stmt => {
            let mut it = meaningful(pair);
            let name = ident(it.next().expect("let name"));
            let value = expr(it.next().expect("let value"));
            Stmt::Let {
                name,
                value,
                span: sp,
            }
        }
        Rule::sample_stmt => {
            let parts: Vec<Pair<Rule>> = meaningful(pair).collect();
            let ordered = parts.iter().any(|p| p.as_rule() == Rule::kw_ordered);
            let mut it = parts
                .into_iter()
                .filter(|p| p.as_rule() != Rule::kw_ordered);
            let name = ident(it.next().expect("site name"));
            let dist = call(it.next().expect("distribution"));
            let shape = it.next().map(shape);
            Stmt::Sample {
                name,
                dist,
                shape,
                ordered,
                span: sp,
            }
        }
        Rule::track_stmt | Rule::factor_stmt => {
            let rule = pair.as_rule();
            let mut it =
                meaningful(pair).filter(|p| matches!(p.as_rule(), Rule::ident | Rule::expr));
            let name = ident(it.next().expect("a name"));
            let value = expr(it.next().expect("a value"));
            if rule == Rule::track_stmt {
                Stmt::Track {
                    name,
                    value,
                    span: sp,
                }
            } else {
                Stmt::Factor {
                    name,
                    value,
                    span: sp,
                }
            }
        }
        r => unreachable!("grammar: unexpected statement {r:?}"),
    }
}

fn call(pair: Pair<Rule>) -> Call {
    let sp = span(&pair);
    let mut it = meaningful(pair);
    let name = ident(it.next().expect("callee"));
    let mut args_out = Vec::new();
    let mut weights = Vec::new();
    for p in it {
        match p.as_rule() {
            Rule::args => args_out = args(p),
            Rule::expr => weights.push(expr(p)),
            _ => {}
        }
    }
    Call {
        name,
        args: args_out,
        weights,
        span: sp,
    }
}

fn bnn_def(pair: Pair<Rule>) -> BnnDef {
    let sp = span(&pair);
    let mut docs = Vec::new();
    let mut idents = Vec::new();
    let mut inputs = Vec::new();
    let mut likelihood = None;
    let mut calls = Vec::new();
    for p in meaningful(pair) {
        match p.as_rule() {
            Rule::doc => docs.push(doc_text(p)),
            Rule::ident => idents.push(ident(p)),
            Rule::inputs => {
                for i in meaningful(p) {
                    let mut it = meaningful(i);
                    let name = ident(it.next().expect("input name"));
                    let shape = shape(it.next().expect("input shape"));
                    let domain = it.next().map(|d| {
                        let mut ints = d.into_inner().filter(|p| p.as_rule() == Rule::int);
                        let mut int = || {
                            ints.next()
                                .map(|p| p.as_str().parse::<i64>().unwrap_or(i64::MAX))
                        };
                        Domain {
                            low: int().expect("grammar: a low bound"),
                            high: int(),
                        }
                    });
                    inputs.push(Input {
                        name,
                        shape,
                        domain,
                    });
                }
            }
            Rule::dist_call => likelihood = Some(call(p)),
            Rule::layer | Rule::family => {
                let csp = span(&p);
                let mut it = meaningful(p);
                let name = ident(it.next().expect("a name"));
                let args = it.next().map(args).unwrap_or_default();
                calls.push(Call {
                    name,
                    args,
                    weights: Vec::new(),
                    span: csp,
                });
            }
            _ => {}
        }
    }
    let mut idents = idents.into_iter();
    let mut calls = calls.into_iter();
    BnnDef {
        docs,
        name: idents.next().expect("grammar: a name"),
        inputs,
        site: idents.next().expect("grammar: a site"),
        likelihood: likelihood.expect("grammar: a likelihood"),
        prior: calls.next().expect("grammar: a prior"),
        family: calls.next().expect("grammar: a family"),
        span: sp,
    }
}

fn net_def(pair: Pair<Rule>) -> NetDef {
    let sp = span(&pair);
    let mut docs = Vec::new();
    let mut name = None;
    let mut input = None;
    let mut output = None;
    let mut layers = Vec::new();
    for p in meaningful(pair) {
        match p.as_rule() {
            Rule::doc => docs.push(doc_text(p)),
            Rule::ident => name = Some(ident(p)),
            Rule::input => {
                let mut it = meaningful(p);
                let name = ident(it.next().expect("input name"));
                let shape = shape(it.next().expect("input shape"));
                input = Some(Input {
                    name,
                    shape,
                    domain: None,
                });
            }
            Rule::shape => output = Some(shape(p)),
            Rule::layer => {
                let lsp = span(&p);
                let mut it = meaningful(p);
                let name = ident(it.next().expect("layer name"));
                let args = it.next().map(args).unwrap_or_default();
                layers.push(Call {
                    name,
                    args,
                    weights: Vec::new(),
                    span: lsp,
                });
            }
            _ => {}
        }
    }
    NetDef {
        docs,
        name: name.expect("grammar: a net name"),
        input: input.expect("grammar: a net input"),
        output: output.expect("grammar: a net output"),
        layers,
        span: sp,
    }
}

fn args(pair: Pair<Rule>) -> Vec<Arg> {
    meaningful(pair)
        .map(|a| {
            let mut name = None;
            let mut value = None;
            for p in meaningful(a) {
                match p.as_rule() {
                    Rule::arg_name => {
                        name = Some(ident(p.into_inner().next().expect("arg name ident")))
                    }
                    Rule::expr => value = Some(expr(p)),
                    r => unreachable!("grammar: unexpected {r:?} in argument"),
                }
            }
            Arg {
                name,
                value: value.expect("argument value"),
            }
        })
        .collect()
}

fn pratt() -> PrattParser<Rule> {
    PrattParser::new()
        .op(Op::infix(Rule::add, Assoc::Left) | Op::infix(Rule::sub, Assoc::Left))
        .op(Op::infix(Rule::mul, Assoc::Left)
            | Op::infix(Rule::div, Assoc::Left)
            | Op::infix(Rule::matmul, Assoc::Left))
        .op(Op::prefix(Rule::neg))
        .op(Op::postfix(Rule::index))
}

fn expr(pair: Pair<Rule>) -> Expr {
    thread_local! {
        static PRATT: PrattParser<Rule> = pratt();
    }
    PRATT.with(|p| {
        p.map_primary(primary)
            .map_prefix(|op, rhs| Expr {
                span: span(&op).start..rhs.span.end,
                kind: ExprKind::Neg(Box::new(rhs)),
            })
            .map_postfix(|lhs, op| Expr {
                span: lhs.span.start..span(&op).end,
                kind: ExprKind::Index(Box::new(lhs), index(op)),
            })
            .map_infix(|lhs, op, rhs| {
                let bin = match op.as_rule() {
                    Rule::add => BinOp::Add,
                    Rule::sub => BinOp::Sub,
                    Rule::mul => BinOp::Mul,
                    Rule::div => BinOp::Div,
                    Rule::matmul => BinOp::MatMul,
                    r => unreachable!("grammar: unexpected operator {r:?}"),
                };
                Expr {
                    span: lhs.span.start..rhs.span.end,
                    kind: ExprKind::Binary(bin, Box::new(lhs), Box::new(rhs)),
                }
            })
            .parse(meaningful(pair))
    })
}

/// `[g]`, `[2]` or `[1..3]`.
fn index(pair: Pair<Rule>) -> Index {
    let inner = meaningful(pair)
        .find(|p| matches!(p.as_rule(), Rule::expr | Rule::index_range))
        .expect("grammar: an index holds an expression or a range");
    match inner.as_rule() {
        Rule::index_range => {
            let sp = span(&inner);
            let mut ints = inner
                .into_inner()
                .filter(|p| p.as_rule() == Rule::int)
                .map(|p| p.as_str().parse::<usize>().unwrap_or(usize::MAX));
            let (lo, hi) = (ints.next(), ints.next());
            Index::Range(lo.unwrap_or(0), hi.unwrap_or(0), sp)
        }
        _ => Index::At(Box::new(expr(inner))),
    }
}

fn primary(pair: Pair<Rule>) -> Expr {
    let sp = span(&pair);
    match pair.as_rule() {
        Rule::number => Expr {
            kind: ExprKind::Num(pair.as_str().parse().unwrap_or(f64::NAN)),
            span: sp,
        },
        Rule::name => Expr {
            kind: ExprKind::Name(ident(pair.into_inner().next().expect("name ident"))),
            span: sp,
        },
        Rule::call => Expr {
            kind: ExprKind::Call(call(pair)),
            span: sp,
        },
        Rule::list => Expr {
            kind: ExprKind::List(
                pair.into_inner()
                    .filter(|p| p.as_rule() == Rule::expr)
                    .map(expr)
                    .collect(),
            ),
            span: sp,
        },
        // A parenthesised expression: keep the inner expression, with the span of the parens.
        Rule::expr => {
            let mut e = expr(pair);
            e.span = sp;
            e
        }
        r => unreachable!("grammar: unexpected primary {r:?}"),
    }
}

fn guide_def(pair: Pair<Rule>) -> GuideDef {
    let sp = span(&pair);
    let mut docs = Vec::new();
    let mut idents = Vec::new();
    let mut entries = Vec::new();
    let mut params = Vec::new();
    for p in meaningful(pair) {
        match p.as_rule() {
            Rule::doc => docs.push(doc_text(p)),
            Rule::ident => idents.push(ident(p)),
            Rule::guide_stmt => entries.push(guide_entry(p)),
            Rule::param_stmt => params.push(param_decl(p)),
            r => unreachable!("grammar: unexpected {r:?} in guide"),
        }
    }
    let mut idents = idents.into_iter();
    GuideDef {
        docs,
        name: idents.next().expect("guide name"),
        model: idents.next().expect("guide's model"),
        params,
        entries,
        span: sp,
    }
}

fn param_decl(pair: Pair<Rule>) -> ParamDecl {
    let sp = span(&pair);
    let mut decl = ParamDecl {
        name: Ident {
            name: String::new(),
            span: sp.clone(),
        },
        shape: None,
        positive: false,
        init: None,
        span: sp,
    };
    for p in pair.into_inner() {
        match p.as_rule() {
            Rule::ident => decl.name = ident(p),
            Rule::shape => decl.shape = Some(shape(p)),
            Rule::kw_positive => decl.positive = true,
            Rule::expr => decl.init = Some(expr(p)),
            _ => {}
        }
    }
    decl
}

fn guide_entry(pair: Pair<Rule>) -> GuideEntry {
    let sp = span(&pair);
    let mut it = meaningful(pair);
    let sites = meaningful(it.next().expect("guide sites"))
        .map(ident)
        .collect();
    let fam = it.next().expect("guide family");
    let fam_span = span(&fam);
    let mut fit = meaningful(fam);
    let name = ident(fit.next().expect("family name"));
    let args = fit.next().map(args).unwrap_or_default();
    GuideEntry {
        sites,
        family: Call {
            name,
            args,
            weights: Vec::new(),
            span: fam_span,
        },
        span: sp,
    }
}

/// What a grammar rule is, in words, for "expected ..." messages.
fn describe(rule: Rule) -> Option<&'static str> {
    Some(match rule {
        Rule::EOI => "the end of the input",
        Rule::model_def | Rule::kw_model => "`model`",
        Rule::guide_def | Rule::kw_guide => "`guide`",
        Rule::kw_for => "`for`",
        Rule::net_def | Rule::kw_net => "`net`",
        Rule::bnn_def | Rule::kw_bnn => "`bnn`",
        Rule::kw_with => "`with`",
        Rule::arrow => "`->`",
        Rule::layer => "a layer like `Linear(64, 100)` or `tanh`",
        Rule::params_of => "`params(Net)`",
        Rule::param_stmt | Rule::kw_param => "`param`",
        Rule::kw_positive => "`positive`",
        Rule::kw_let | Rule::let_stmt => "`let`",
        Rule::kw_track | Rule::track_stmt => "`track`",
        Rule::kw_factor | Rule::factor_stmt => "`factor`",
        // `pub` is optional before every item: naming it would only lengthen the list.
        // optional words after a complete item or statement: not what a user is missing
        Rule::doc | Rule::doc_line | Rule::doc_attr | Rule::kw_pub | Rule::kw_ordered => {
            return None
        }
        Rule::ident | Rule::name => "a name",
        Rule::sample_stmt => "a statement (`name ~ Dist(...);` or `let name = ...;`)",
        Rule::guide_stmt | Rule::sites => "a guide entry (`site ~ Family;`)",
        Rule::number => "a number",
        Rule::int | Rule::dim => "a size (a number or a constant's name)",
        Rule::expr | Rule::primary | Rule::call => "an expression",
        Rule::list => "a list like `[64, 64]`",
        Rule::index | Rule::index_range => "an index like `[g]` or `[1..3]`",
        Rule::neg => "`-`",
        Rule::add | Rule::sub | Rule::mul | Rule::div | Rule::matmul => {
            "an operator (`+`, `-`, `*`, `/`, `@`)"
        }
        Rule::arg | Rule::args | Rule::arg_name => "an argument",
        Rule::shape => "a shape like `[D]`",
        Rule::inputs | Rule::input => "an input like `x: [N, D]`",
        Rule::domain | Rule::kw_in => "`in 0..10`",
        Rule::range => "`..`",
        Rule::dist_call => "a distribution like `Normal(0.0, 1.0)`",
        Rule::family => "a guide family like `MeanField`",
        Rule::lparen => "`(`",
        Rule::rparen => "`)`",
        Rule::lbrace => "`{`",
        Rule::rbrace => "`}`",
        Rule::sizes | Rule::langle => "size parameters like `<D>`",
        Rule::rangle => "`>`",
        Rule::lbrack => "`[`",
        Rule::rbrack => "`]`",
        Rule::comma => "`,`",
        Rule::colon => "`:`",
        Rule::semi => "`;`",
        Rule::tilde => "`~`",
        Rule::assign => "`=`",
        _ => return None,
    })
}

fn syntax_error(source: &str, err: pest::error::Error<Rule>) -> Diagnostic {
    use pest::error::{ErrorVariant, InputLocation};
    let pos = match err.location {
        InputLocation::Pos(p) => p,
        InputLocation::Span((s, _)) => s,
    };
    let expected = match &err.variant {
        ErrorVariant::ParsingError { positives, .. } => {
            let mut words: Vec<&str> = positives.iter().filter_map(|r| describe(*r)).collect();
            // Operators all read alike; keep one mention of them.
            words.dedup();
            let mut seen = Vec::new();
            words.retain(|w| {
                let new = !seen.contains(w);
                seen.push(w);
                new
            });
            words
        }
        ErrorVariant::CustomError { .. } => Vec::new(),
    };
    let found = token_at(source, pos);
    // pest's guards: its native stack nearly spent, or its call budget (the nesting check
    // keeps texts well within both; this says so if one is reached all the same)
    if let ErrorVariant::CustomError { message } = &err.variant {
        if message.contains("limit reached") {
            let len = found.map_or(0, str::len);
            return Diagnostic::new(
                pos..pos + len,
                format!("this text nests too deeply for the parser ({message}); split the expression with `let`"),
            );
        }
    }
    let message = match (expected.as_slice(), found) {
        ([], None) => "syntax error: unexpected end of input".to_string(),
        ([], Some(t)) => format!("syntax error: unexpected `{t}`"),
        (words, found) => {
            let list = match words {
                [one] => one.to_string(),
                [init @ .., last] => format!("{} or {}", init.join(", "), last),
                [] => unreachable!(),
            };
            match found {
                Some(t) => format!("syntax error: expected {list}, found `{t}`"),
                None => format!("syntax error: expected {list}, found the end of the input"),
            }
        }
    };
    let len = found.map_or(0, str::len);
    Diagnostic::new(pos..pos + len, message)
}

/// The token that starts at `pos` (a word, a number or one punctuation character).
fn token_at(source: &str, pos: usize) -> Option<&str> {
    let rest = source.get(pos..)?;
    let first = rest.chars().next()?;
    let end = if first.is_alphanumeric() || first == '_' || first == '.' {
        rest.find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.'))
            .unwrap_or(rest.len())
    } else {
        first.len_utf8()
    };
    Some(&rest[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_linreg() {
        let src = "/// doc\nmodel LinReg(x: [N, D], y: [N]) {\n  w ~ Normal(0.0, 1.0) [D];\n  b ~ Normal(0.0, 1.0);\n  y ~ Normal(x @ w + b, 0.5);\n}";
        let items = parse(src).unwrap();
        let Item::Model(m) = &items[0] else { panic!() };
        assert_eq!(m.name.name, "LinReg");
        assert_eq!(m.docs, vec!["doc".to_string()]);
        assert_eq!(m.inputs.len(), 2);
        assert_eq!(m.stmts.len(), 3);
        let Stmt::Sample { dist, .. } = &m.stmts[2] else {
            panic!()
        };
        // `x @ w + b` is `(x @ w) + b`
        let ExprKind::Binary(BinOp::Add, lhs, _) = &dist.args[0].value.kind else {
            panic!("{:?}", dist.args[0].value)
        };
        assert!(matches!(lhs.kind, ExprKind::Binary(BinOp::MatMul, _, _)));
    }

    #[test]
    fn precedence_and_unary_minus() {
        let src = "model M(x: [3]) { let a = -x * 2 - 1 / x; }";
        let items = parse(src).unwrap();
        let Item::Model(m) = &items[0] else { panic!() };
        let Stmt::Let { value, .. } = &m.stmts[0] else {
            panic!()
        };
        // (-x * 2) - (1 / x), and the unary minus binds tighter than `*`
        let ExprKind::Binary(BinOp::Sub, l, r) = &value.kind else {
            panic!()
        };
        assert!(matches!(r.kind, ExprKind::Binary(BinOp::Div, _, _)));
        let ExprKind::Binary(BinOp::Mul, ll, _) = &l.kind else {
            panic!()
        };
        assert!(matches!(ll.kind, ExprKind::Neg(_)));
    }

    #[test]
    fn named_args_and_doc_attrs() {
        let src = r##"#[doc = r" From a token stream."] model M(y: [N]) { y ~ Normal(loc = 0.0, scale = 1); }"##;
        let items = parse(src).unwrap();
        let Item::Model(m) = &items[0] else { panic!() };
        assert_eq!(m.docs, vec!["From a token stream.".to_string()]);
        let Stmt::Sample { dist, .. } = &m.stmts[0] else {
            panic!()
        };
        assert_eq!(dist.args[0].name.as_ref().unwrap().name, "loc");
        assert_eq!(dist.args[1].name.as_ref().unwrap().name, "scale");
    }

    #[test]
    fn parses_guides() {
        let src = "guide G for M { w ~ MeanField; (a, b) ~ MeanField(); }";
        let items = parse(src).unwrap();
        let Item::Guide(g) = &items[0] else { panic!() };
        assert_eq!(g.model.name, "M");
        assert_eq!(g.entries[1].sites.len(), 2);
    }

    #[test]
    fn missing_semicolon_is_said_in_words() {
        let src = "model M(y: [N]) { w ~ Normal(0.0, 1.0) b ~ Normal(0.0, 1.0); }";
        let err = parse(src).unwrap_err();
        assert_eq!(&src[err.span.clone()], "b");
        assert!(err.message.contains("expected"), "{}", err.message);
        assert!(err.message.contains("`;`"), "{}", err.message);
        assert!(err.message.contains("found `b`"), "{}", err.message);
    }

    #[test]
    fn keywords_are_not_names() {
        let err = parse("model let(y: [N]) {}").unwrap_err();
        assert!(err.message.contains("a name"), "{}", err.message);
    }
}
