//! The syntax tree: what the user wrote, with spans, before any name or shape is checked.

use crate::diagnostic::Span;

/// A name as written, with where it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Ident {
    /// The name's text.
    pub name: String,
    /// Its byte range in the DSL text.
    pub span: Span,
}

/// One top-level definition of a `model!` or `guide!` block.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// `model Name(..) { .. }`.
    Model(ModelDef),
    /// `guide Name for Model { .. }`.
    Guide(GuideDef),
    /// `net Name(x: [..]) -> [..] { layers }`.
    Net(NetDef),
    /// `bnn Name(..) = site ~ .. with Prior, Family;`.
    Bnn(Box<BnnDef>),
}

/// `bnn Name(inputs) = site ~ Dist(.. Net(x) ..) with Prior, Family;`: a deterministic net
/// made Bayesian in one line. It stands for a model with one weight site per layer of the
/// net (each `~ Prior [params(Net, k)]`) and a guide `NameGuide` with `Family` on each.
#[derive(Debug, Clone, PartialEq)]
pub struct BnnDef {
    /// The `///` lines before the definition, one string per line.
    pub docs: Vec<String>,
    /// The model's name (its guide is this name followed by `Guide`).
    pub name: Ident,
    /// The model's inputs, as in a `model`.
    pub inputs: Vec<Input>,
    /// The observed site, left of `~`: an input.
    pub site: Ident,
    /// The likelihood right of `~`, which calls the net with no weights.
    pub likelihood: Call,
    /// The prior of each layer's weight site (after `with`).
    pub prior: Call,
    /// The guide family of each layer's weight site.
    pub family: Call,
    /// The whole definition's byte range.
    pub span: Span,
}

/// `net Mlp(x: [B, 64]) -> [B, 10] { Linear(64, 100) -> tanh -> Linear(100, 10) }`
#[derive(Debug, Clone, PartialEq)]
pub struct NetDef {
    /// The `///` lines before the definition, one string per line.
    pub docs: Vec<String>,
    /// The net's name, called as `Name(x; weights)`.
    pub name: Ident,
    /// The net's input with its shape (`[B, F]` rows of features or `[B, C, H, W]` images).
    pub input: Input,
    /// The shape after `->`: what the last layer gives.
    pub output: ShapeAst,
    /// Each `Kind(args)` or a bare activation name.
    pub layers: Vec<Call>,
    /// The whole definition's byte range.
    pub span: Span,
}

/// `model Name<Sizes>(inputs) { statements }`
#[derive(Debug, Clone, PartialEq)]
pub struct ModelDef {
    /// The `///` lines before the definition, one string per line.
    pub docs: Vec<String>,
    /// The model's name: the generated type's, and `{name}Data`'s stem.
    pub name: Ident,
    /// `<D, K>`: size parameters, const generics of the generated items.
    pub sizes: Vec<Ident>,
    /// The inputs in parentheses: the fields of the data struct.
    pub inputs: Vec<Input>,
    /// The statements of the body, in order.
    pub stmts: Vec<Stmt>,
    /// The whole definition's byte range.
    pub span: Span,
}

/// `x: [N, D]`
#[derive(Debug, Clone, PartialEq)]
pub struct Input {
    /// The input's name.
    pub name: Ident,
    /// The input's declared shape.
    pub shape: ShapeAst,
    /// `in lo..hi`: integers from lo up to (not including) hi; `in lo..`: no upper bound.
    pub domain: Option<Domain>,
}

/// The integers an input holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Domain {
    /// The smallest value allowed.
    pub low: i64,
    /// One past the largest value allowed; `None` for no upper bound.
    pub high: Option<i64>,
}

/// `[N, D, 3]`
#[derive(Debug, Clone, PartialEq)]
pub struct ShapeAst {
    /// The sizes, first axis first.
    pub dims: Vec<DimAst>,
    /// The byte range of the brackets and what is inside.
    pub span: Span,
}

/// One size in a written shape.
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
    /// The byte range the size was written at.
    pub fn span(&self) -> Span {
        match self {
            DimAst::Lit(_, s) => s.clone(),
            DimAst::Named(i) => i.span.clone(),
            DimAst::ParamsOf(_, _, s) => s.clone(),
        }
    }
}

/// One statement of a model's body.
#[derive(Debug, Clone, PartialEq)]
pub enum Stmt {
    /// `name ~ Dist(args) [shape];` — latent if `name` is not an input, observed if it is.
    Sample {
        /// The site's name.
        name: Ident,
        /// The distribution right of `~`.
        dist: Call,
        /// The shape in brackets after the distribution, if written.
        shape: Option<ShapeAst>,
        /// `.. [K] ordered`: increasing along the last axis.
        ordered: bool,
        /// The whole statement's byte range.
        span: Span,
    },
    /// `let name = expr;`
    Let {
        /// The bound name.
        name: Ident,
        /// The bound expression.
        value: Expr,
        /// The whole statement's byte range.
        span: Span,
    },
    /// `param name [shape] = init;`: a point the optimiser learns, with no prior.
    Param(ParamDecl),
    /// `track name = expr;`: a `let` whose value each posterior draw keeps.
    Track {
        /// The tracked name.
        name: Ident,
        /// The tracked expression.
        value: Expr,
        /// The whole statement's byte range.
        span: Span,
    },
    /// `factor(name, expr);`: `expr`, summed over its elements, added to the log joint.
    Factor {
        /// The term's name (how diagnostics and summaries refer to it).
        name: Ident,
        /// The expression whose sum is added to the log joint.
        value: Expr,
        /// The whole statement's byte range.
        span: Span,
    },
}

/// `Name(arg, key = arg, ...)`: a distribution, a function or a guide family.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// What is called.
    pub name: Ident,
    /// The arguments before any `;`, positional or named, in order.
    pub args: Vec<Arg>,
    /// `Net(x; theta)` or `Net(x; w1, w2)`: the weights of a net call, after the
    /// semicolon: all of them, or one per Linear layer.
    pub weights: Vec<Expr>,
    /// The whole call's byte range.
    pub span: Span,
}

/// One argument of a call: `value` or `name = value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Arg {
    /// The name before `=`, for a named argument.
    pub name: Option<Ident>,
    /// The argument's value.
    pub value: Expr,
}

/// An expression with the byte range it was written at.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    /// What the expression is.
    pub kind: ExprKind,
    /// Its byte range in the DSL text.
    pub span: Span,
}

/// A binary operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    /// `+`, broadcasting.
    Add,
    /// `-`, broadcasting.
    Sub,
    /// `*`, elementwise and broadcasting.
    Mul,
    /// `/`, elementwise and broadcasting.
    Div,
    /// `@`: vector or matrix product.
    MatMul,
}

impl BinOp {
    /// The operator as written in the DSL (`"@"` for [`BinOp::MatMul`]).
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

/// The kinds of expression.
#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    /// A number literal (integers are read as reals).
    Num(f64),
    /// A name: an input, a latent, a `let`, a `param`, a size or a Rust constant.
    Name(Ident),
    /// Unary minus.
    Neg(Box<Expr>),
    /// `lhs op rhs`.
    Binary(BinOp, Box<Expr>, Box<Expr>),
    /// A call: a function, a net, or (as an argument) a distribution.
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
    /// The `///` lines before the definition, one string per line.
    pub docs: Vec<String>,
    /// The guide's name: the generated type's.
    pub name: Ident,
    /// The model after `for`, by name or by the path's last segment.
    pub model: Ident,
    /// The guide program's `param` declarations.
    pub params: Vec<ParamDecl>,
    /// The `sites ~ Family;` lines, in order.
    pub entries: Vec<GuideEntry>,
    /// The whole definition's byte range.
    pub span: Span,
}

/// `param s [D] positive = 0.1;`
#[derive(Debug, Clone, PartialEq)]
pub struct ParamDecl {
    /// The parameter's name.
    pub name: Ident,
    /// Its shape; `None` for a scalar.
    pub shape: Option<ShapeAst>,
    /// `positive`: stored as ρ and used as softplus(ρ).
    pub positive: bool,
    /// The starting value after `=` (on the positive scale if `positive`).
    pub init: Option<Expr>,
    /// The whole declaration's byte range.
    pub span: Span,
}

/// `w ~ MeanField;`, `(w, b) ~ FullRank;`, or in a guide program `w ~ Normal(mu, s);`
#[derive(Debug, Clone, PartialEq)]
pub struct GuideEntry {
    /// The sites left of `~`: one, or a tuple covered jointly.
    pub sites: Vec<Ident>,
    /// The family (or, in a guide program, the distribution) right of `~`.
    pub family: Call,
    /// The whole line's byte range.
    pub span: Span,
}
