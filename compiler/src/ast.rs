//! The syntax tree: what the user wrote, with spans, before any name or shape is checked.

use crate::diagnostic::Span;

#[derive(Debug, Clone, PartialEq)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    Model(ModelDef),
    Guide(GuideDef),
    Net(NetDef),
    Bnn(Box<BnnDef>),
}

/// `bnn Name(inputs) = site ~ Dist(.. Net(x) ..) with Prior, Family;`: a deterministic net
/// made Bayesian in one line. It stands for a model with one weight site per layer of the
/// net (each `~ Prior [params(Net, k)]`) and a guide `NameGuide` with `Family` on each.
#[derive(Debug, Clone, PartialEq)]
pub struct BnnDef {
    pub docs: Vec<String>,
    pub name: Ident,
    pub inputs: Vec<Input>,
    pub site: Ident,
    pub likelihood: Call,
    pub prior: Call,
    pub family: Call,
    pub span: Span,
}

/// `net Mlp(x: [B, 64]) -> [B, 10] { Linear(64, 100) -> tanh -> Linear(100, 10) }`
#[derive(Debug, Clone, PartialEq)]
pub struct NetDef {
    pub docs: Vec<String>,
    pub name: Ident,
    pub input: Input,
    pub output: ShapeAst,
    /// Each `Kind(args)` or a bare activation name.
    pub layers: Vec<Call>,
    pub span: Span,
}

/// `model Name<Sizes>(inputs) { statements }`
#[derive(Debug, Clone, PartialEq)]
pub struct ModelDef {
    pub docs: Vec<String>,
    pub name: Ident,
    /// `<D, K>`: size parameters, const generics of the generated items.
    pub sizes: Vec<Ident>,
    pub inputs: Vec<Input>,
    pub stmts: Vec<Stmt>,
    pub span: Span,
}

/// `x: [N, D]`
#[derive(Debug, Clone, PartialEq)]
pub struct Input {
    pub name: Ident,
    pub shape: ShapeAst,
    /// `in lo..hi`: integers from lo up to (not including) hi; `in lo..`: no upper bound.
    pub domain: Option<Domain>,
}

/// The integers an input holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Domain {
    pub low: i64,
    pub high: Option<i64>,
}

/// `[N, D, 3]`
#[derive(Debug, Clone, PartialEq)]
pub struct ShapeAst {
    pub dims: Vec<DimAst>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum DimAst {
    /// A literal size.
    Lit(usize, Span),
    /// `N` (the rows), a size parameter of the model, or a Rust `const` in scope.
    Named(Ident),
    /// `params(Net)`: the number of weights of a net; `params(Net, k)` of its k-th Linear layer.
    ParamsOf(Ident, Option<usize>, Span),
}

impl DimAst {
    pub fn span(&self) -> Span {
        match self {
            DimAst::Lit(_, s) => s.clone(),
            DimAst::Named(i) => i.span.clone(),
            DimAst::ParamsOf(_, _, s) => s.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Stmt {
    /// `name ~ Dist(args) [shape];` — latent if `name` is not an input, observed if it is.
    Sample {
        name: Ident,
        dist: Call,
        shape: Option<ShapeAst>,
        /// `.. [K] ordered`: increasing along the last axis.
        ordered: bool,
        span: Span,
    },
    /// `let name = expr;`
    Let {
        name: Ident,
        value: Expr,
        span: Span,
    },
    /// `param name [shape] = init;`: a point the optimiser learns, with no prior.
    Param(ParamDecl),
    /// `track name = expr;`: a `let` whose value each posterior draw keeps.
    Track {
        name: Ident,
        value: Expr,
        span: Span,
    },
    /// `factor(name, expr);`: `expr`, summed over its elements, added to the log joint.
    Factor {
        name: Ident,
        value: Expr,
        span: Span,
    },
}

/// `Name(arg, key = arg, ...)`: a distribution, a function or a guide family.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub name: Ident,
    pub args: Vec<Arg>,
    /// `Net(x; theta)` or `Net(x; w1, w2)`: the weights of a net call, after the
    /// semicolon: all of them, or one per Linear layer.
    pub weights: Vec<Expr>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Arg {
    pub name: Option<Ident>,
    pub value: Expr,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    MatMul,
}

impl BinOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::MatMul => "@",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    Num(f64),
    Name(Ident),
    Neg(Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    Call(Call),
    /// `[a, b]`: guide family arguments only.
    List(Vec<Expr>),
    /// `a[i]`: along `a`'s first axis.
    Index(Box<Expr>, Index),
}

/// What `a[..]` picks along `a`'s first axis.
#[derive(Debug, Clone, PartialEq)]
pub enum Index {
    /// `a[g]` with `g` an integer input (the rows `g` names), or `a[2]` (one row, the axis
    /// dropped).
    At(Box<Expr>),
    /// `a[1..3]`: rows 1 and 2, the axis kept.
    Range(usize, usize, Span),
}

/// A number written in the source (`2`, `-1.5`, `--3`), if the expression is one.
pub fn number(e: &Expr) -> Option<f64> {
    match &e.kind {
        ExprKind::Num(v) => Some(*v),
        ExprKind::Neg(inner) => number(inner).map(|v| -v),
        _ => None,
    }
}

/// `guide Name for Model { sites ~ Family; ... }`
#[derive(Debug, Clone, PartialEq)]
pub struct GuideDef {
    pub docs: Vec<String>,
    pub name: Ident,
    pub model: Ident,
    pub params: Vec<ParamDecl>,
    pub entries: Vec<GuideEntry>,
    pub span: Span,
}

/// `param s [D] positive = 0.1;`
#[derive(Debug, Clone, PartialEq)]
pub struct ParamDecl {
    pub name: Ident,
    pub shape: Option<ShapeAst>,
    pub positive: bool,
    pub init: Option<Expr>,
    pub span: Span,
}

/// `w ~ MeanField;`, `(w, b) ~ FullRank;`, or in a guide program `w ~ Normal(mu, s);`
#[derive(Debug, Clone, PartialEq)]
pub struct GuideEntry {
    pub sites: Vec<Ident>,
    pub family: Call,
    pub span: Span,
}
