//! The intermediate representation: a checked model as a list of typed nodes in
//! definition order, and a checked guide as a list of family entries over site indices.
//!
//! Its text form ([`ModelIr::to_text`]) is stable and human-readable; the compiled graph of
//! every example is an insta snapshot of it.

use std::fmt::{self, Write as _};

use crate::ast::BinOp;
use crate::diagnostic::Span;

/// One axis of a shape.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dim {
    /// `N`: the rows of the data, known only at run time; minibatches are slices of it.
    Rows,
    /// A literal size.
    Lit(usize),
    /// A Rust `const` in scope (`D`), checked by static assertions in the generated code, or
    /// a size parameter of the model (`model Reg<D>`, [`ModelIr::sizes`]): a const generic
    /// of the generated items, any size, unified with no other.
    Const(String),
}

impl fmt::Display for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dim::Rows => f.write_str("N"),
            Dim::Lit(n) => write!(f, "{n}"),
            Dim::Const(c) => f.write_str(c),
        }
    }
}

/// A shape per particle: the particle axis is not part of it (see [`Node::particles`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Shape(pub Vec<Dim>);

impl Shape {
    /// The shape of a scalar: no axes.
    pub fn scalar() -> Self {
        Shape(Vec::new())
    }
    /// The number of axes.
    pub fn rank(&self) -> usize {
        self.0.len()
    }
    /// Does the shape have the row axis `N`?
    pub fn has_rows(&self) -> bool {
        self.0.contains(&Dim::Rows)
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_char('[')?;
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{d}")?;
        }
        f.write_char(']')
    }
}

/// The index of a node in [`ModelIr::nodes`].
pub type NodeId = usize;

/// An elementwise function of the DSL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    /// `exp`
    Exp,
    /// `log`, the natural logarithm.
    Log,
    /// `softplus`: log(1 + eˣ).
    Softplus,
    /// `sigmoid`: 1 / (1 + e⁻ˣ).
    Sigmoid,
    /// `tanh`
    Tanh,
    /// `sqrt`
    Sqrt,
    /// `abs`
    Abs,
    /// `square`: x².
    Square,
    /// `log1p`: log(1 + x).
    Log1p,
    /// `expm1`: eˣ − 1.
    Expm1,
}

impl Func {
    /// The function the DSL calls `name`, if there is one.
    pub fn from_name(name: &str) -> Option<Func> {
        Some(match name {
            "exp" => Func::Exp,
            "log" => Func::Log,
            "softplus" => Func::Softplus,
            "sigmoid" => Func::Sigmoid,
            "tanh" => Func::Tanh,
            "sqrt" => Func::Sqrt,
            "abs" => Func::Abs,
            "square" => Func::Square,
            "log1p" => Func::Log1p,
            "expm1" => Func::Expm1,
            _ => return None,
        })
    }
    /// The function's name in the DSL.
    pub fn name(self) -> &'static str {
        match self {
            Func::Exp => "exp",
            Func::Log => "log",
            Func::Softplus => "softplus",
            Func::Sigmoid => "sigmoid",
            Func::Tanh => "tanh",
            Func::Sqrt => "sqrt",
            Func::Abs => "abs",
            Func::Square => "square",
            Func::Log1p => "log1p",
            Func::Expm1 => "expm1",
        }
    }

    /// The function on one number (compile-time constants, and `const_value`).
    pub fn apply(self, x: f64) -> f64 {
        match self {
            Func::Exp => x.exp(),
            Func::Log => x.ln(),
            Func::Softplus => x.max(0.0) + (-x.abs()).exp().ln_1p(),
            Func::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            Func::Tanh => x.tanh(),
            Func::Sqrt => x.sqrt(),
            Func::Abs => x.abs(),
            Func::Square => x * x,
            Func::Log1p => x.ln_1p(),
            Func::Expm1 => x.exp_m1(),
        }
    }
}

/// A function along one axis of its argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AxisFunc {
    /// log Σ exp, the axis dropped.
    LogSumExp,
    /// exp(x) / Σ exp(x) along the axis, which is kept.
    Softmax,
    /// The log of the softmax, computed stably; the axis is kept.
    LogSoftmax,
}

impl AxisFunc {
    /// The function the DSL calls `name`, if there is one.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "logsumexp" => AxisFunc::LogSumExp,
            "softmax" => AxisFunc::Softmax,
            "log_softmax" => AxisFunc::LogSoftmax,
            _ => return None,
        })
    }
    /// The function's name in the DSL.
    pub fn name(self) -> &'static str {
        match self {
            AxisFunc::LogSumExp => "logsumexp",
            AxisFunc::Softmax => "softmax",
            AxisFunc::LogSoftmax => "log_softmax",
        }
    }
}

/// A reduction over every axis or one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reduce {
    /// `sum(e)`: the sum.
    Sum,
    /// `mean(e)`: the arithmetic mean.
    Mean,
}

impl Reduce {
    /// The reduction's name in the DSL.
    pub fn name(self) -> &'static str {
        match self {
            Reduce::Sum => "sum",
            Reduce::Mean => "mean",
        }
    }
}

/// What a node of the model's graph computes.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// The model input with this index.
    Input(usize),
    /// A numeric literal.
    Const(f64),
    /// A scalar Rust `const` in scope or a size parameter of the model, used as a real number.
    RustConst(String),
    /// The value of the latent site with this index (drawn from the guide).
    Sample(usize),
    /// Unary minus.
    Neg(NodeId),
    /// Elementwise `+ - * /` with broadcasting.
    Binary(BinOp, NodeId, NodeId),
    /// `a @ b`: vector or matrix product (batched over the particle axis).
    MatMul(NodeId, NodeId),
    /// An elementwise function.
    Func(Func, NodeId),
    /// `pow(x, p)` with a number p.
    Pow(NodeId, f64),
    /// `a[g]`: the rows of `a` (its first axis) that the integer input `g` names, in `g`'s
    /// order; the output's first axis is `g`'s.
    Gather(NodeId, NodeId),
    /// `a[k]` (`len` 1, the axis dropped: `keep` false) or `a[lo..hi]` (the axis kept).
    Slice {
        /// The node sliced.
        src: NodeId,
        /// The first row taken.
        start: usize,
        /// The number of rows taken.
        len: usize,
        /// Keep the axis (a range) or drop it (a single index).
        keep: bool,
    },
    /// Over every axis (`None`) or one axis of the per-particle shape.
    Reduce(Reduce, NodeId, Option<usize>),
    /// `logsumexp(e, axis)`, `softmax(e, axis)`, `log_softmax(e, axis)`.
    Along(AxisFunc, NodeId, usize),
    /// A matrix's rows and columns swapped.
    Transpose(NodeId),
    /// `Net(x; theta)`: the net with this index on input `x` with weights `theta`.
    Net(usize, NodeId, NodeId),
    /// Vectors (per particle) joined end to end: per-layer weights made one weight vector.
    Concat(Vec<NodeId>),
    /// The relaxation temperature of the step (`temperature`; a fit may anneal it).
    Temperature,
}

impl Op {
    /// The nodes this one reads, in order: every pass that walks the graph reads them from
    /// here rather than listing each op's operands by hand.
    pub fn operands(&self) -> Vec<NodeId> {
        match self {
            Op::Input(_) | Op::Const(_) | Op::RustConst(_) | Op::Sample(_) | Op::Temperature => {
                vec![]
            }
            Op::Neg(a)
            | Op::Func(_, a)
            | Op::Pow(a, _)
            | Op::Reduce(_, a, _)
            | Op::Along(_, a, _)
            | Op::Transpose(a) => vec![*a],
            Op::Slice { src, .. } => vec![*src],
            Op::Binary(_, a, b) | Op::MatMul(a, b) | Op::Net(_, a, b) | Op::Gather(a, b) => {
                vec![*a, *b]
            }
            Op::Concat(parts) => parts.clone(),
        }
    }
}

/// An activation layer of a net.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// max(x, 0)
    Relu,
    /// tanh(x)
    Tanh,
    /// 1 / (1 + e⁻ˣ)
    Sigmoid,
    /// log(1 + eˣ)
    Softplus,
}

impl Activation {
    /// The activation the DSL calls `name`, if there is one.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "relu" => Activation::Relu,
            "tanh" => Activation::Tanh,
            "sigmoid" => Activation::Sigmoid,
            "softplus" => Activation::Softplus,
            _ => return None,
        })
    }

    /// The activation's name in the DSL.
    pub fn name(self) -> &'static str {
        match self {
            Activation::Relu => "relu",
            Activation::Tanh => "tanh",
            Activation::Sigmoid => "sigmoid",
            Activation::Softplus => "softplus",
        }
    }
}

/// One layer of a net.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetLayer {
    /// x W + b, W `inputs × outputs` then b, consecutive in the weight vector.
    Linear {
        /// Features in.
        inputs: usize,
        /// Features out.
        outputs: usize,
    },
    /// A 2-D convolution: filters `outputs × inputs × kernel × kernel` then a bias per output
    /// channel, consecutive in the weight vector.
    Conv2d {
        /// Channels in.
        inputs: usize,
        /// Channels out.
        outputs: usize,
        /// The side of the square filter, in pixels.
        kernel: usize,
        /// The step between windows, in pixels.
        stride: usize,
        /// Zeros added on each side of the image, in pixels.
        padding: usize,
    },
    /// Max (or average) pooling over `kernel × kernel` windows, stride `kernel`.
    Pool {
        /// Max pooling if true, average pooling if false.
        max: bool,
        /// The side of the square window (and the stride), in pixels.
        kernel: usize,
    },
    /// Channels × height × width into one feature axis.
    Flatten,
    /// An elementwise activation.
    Activation(Activation),
}

impl NetLayer {
    /// The layer's weights in the weight vector. (The net's checks hold it to
    /// [`crate::limits::MAX_SIZE`]; the arithmetic saturates rather than wrap.)
    pub fn num_params(&self) -> usize {
        match *self {
            NetLayer::Linear { inputs, outputs } => {
                inputs.saturating_mul(outputs).saturating_add(outputs)
            }
            NetLayer::Conv2d {
                inputs,
                outputs,
                kernel,
                ..
            } => outputs
                .saturating_mul(inputs)
                .saturating_mul(kernel)
                .saturating_mul(kernel)
                .saturating_add(outputs),
            _ => 0,
        }
    }
}

/// What a net takes per row: features, or images (channels, height, width).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetInput {
    /// Rows of this many features.
    Features(usize),
    /// Rows of images.
    Images {
        /// Channels per image.
        channels: usize,
        /// Height in pixels.
        height: usize,
        /// Width in pixels.
        width: usize,
    },
}

/// A checked `net`: rows of `features` in, rows of `outputs` out.
#[derive(Debug, Clone, PartialEq)]
pub struct NetIr {
    /// The net's name, as calls name it.
    pub name: String,
    /// What it takes per row.
    pub input: NetInput,
    /// The per-row shape as declared: `[F]`, `[G, K]` (read flattened, as G·K features) or
    /// `[C, H, W]`.
    pub row_dims: Vec<usize>,
    /// Outputs per row of the last layer.
    pub outputs: usize,
    /// The layers, first applied first.
    pub layers: Vec<NetLayer>,
}

impl NetIr {
    /// The weights of each layer that has some (Linear, Conv2d), in order.
    pub fn layer_params(&self) -> Vec<usize> {
        self.layers
            .iter()
            .map(NetLayer::num_params)
            .filter(|&n| n > 0)
            .collect()
    }

    /// The length of the weight vector.
    pub fn num_params(&self) -> usize {
        self.layers
            .iter()
            .map(NetLayer::num_params)
            .fold(0, usize::saturating_add)
    }

    /// The stable text form of the net, one line (part of the IR text).
    pub fn to_text(&self) -> String {
        let layers: Vec<String> = self
            .layers
            .iter()
            .map(|l| match l {
                NetLayer::Linear { inputs, outputs } => format!("Linear({inputs}, {outputs})"),
                NetLayer::Conv2d { inputs, outputs, kernel, stride, padding } => {
                    format!("Conv2d({inputs}, {outputs}, {kernel}, stride = {stride}, padding = {padding})")
                }
                NetLayer::Pool { max, kernel } => format!("{}({kernel})", if *max { "MaxPool" } else { "AvgPool" }),
                NetLayer::Flatten => "flatten".to_string(),
                NetLayer::Activation(a) => a.name().to_string(),
            })
            .collect();
        let input = match self.input {
            NetInput::Features(_) => self
                .row_dims
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            NetInput::Images {
                channels,
                height,
                width,
            } => format!("{channels}, {height}, {width}"),
        };
        format!(
            "net {}: [B, {input}] -> [B, {}], {} params: {}\n",
            self.name,
            self.outputs,
            self.num_params(),
            layers.join(" -> ")
        )
    }
}

/// The value of a node built only from numeric literals (Rust constants are unknown to the
/// compiler). Iterative, each node once: a chain of shared lets (`let b = a + a; let c = b +
/// b; ..`) is linear, and no chain is too long for the stack.
pub fn const_value(nodes: &[Node], id: NodeId) -> Option<f64> {
    use std::collections::HashMap;
    let operands = |op: &Op| -> Option<Vec<NodeId>> {
        match op {
            Op::Const(_) => Some(vec![]),
            Op::Neg(a) | Op::Func(_, a) | Op::Pow(a, _) => Some(vec![*a]),
            Op::Binary(op, a, b) if *op != BinOp::MatMul => Some(vec![*a, *b]),
            _ => None,
        }
    };
    let mut known: HashMap<NodeId, Option<f64>> = HashMap::new();
    let mut stack = vec![id];
    while let Some(&n) = stack.last() {
        if known.contains_key(&n) {
            stack.pop();
            continue;
        }
        let Some(ops) = operands(&nodes[n].op) else {
            known.insert(n, None);
            stack.pop();
            continue;
        };
        let pending: Vec<NodeId> = ops.into_iter().filter(|o| !known.contains_key(o)).collect();
        if !pending.is_empty() {
            stack.extend(pending);
            continue;
        }
        let v = |a: &NodeId| known[a];
        let value = match &nodes[n].op {
            Op::Const(v) => Some(*v),
            Op::Neg(a) => v(a).map(|x| -x),
            Op::Binary(op, a, b) => v(a).zip(v(b)).map(|(a, b)| match op {
                BinOp::Add => a + b,
                BinOp::Sub => a - b,
                BinOp::Mul => a * b,
                BinOp::Div => a / b,
                BinOp::MatMul => unreachable!("not a constant op"),
            }),
            Op::Func(f, a) => v(a).map(|x| f.apply(x)),
            Op::Pow(a, p) => v(a).map(|x| x.powf(*p)),
            _ => unreachable!("not a constant op"),
        };
        known.insert(n, value);
        stack.pop();
    }
    known[&id]
}

/// One node of a model's graph: an operation and the shape of its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// What the node computes.
    pub op: Op,
    /// The shape of its value per particle.
    pub shape: Shape,
    /// Depends on a latent site, so it carries the leading particle axis and a gradient tape.
    pub particles: bool,
    /// Built only from literals and Rust constants: a compile-time scalar.
    pub constant: bool,
    /// The byte range of the expression it came from.
    pub span: Span,
}

/// A `~` statement of a model, checked: a latent or an observed site, or a model `param`.
#[derive(Debug, Clone, PartialEq)]
pub struct Site {
    /// The site's name (a latent's, or the observed input's).
    pub name: String,
    /// The input this site observes, or `None` for a latent site.
    pub observed: Option<usize>,
    /// Its distribution (for a mixture, the components').
    pub dist: &'static crate::catalogue::DistSpec,
    /// The parametrization the arguments chose (the first unless they named another's).
    pub parametrization: &'static crate::catalogue::Parametrization,
    /// One node per parameter of the parametrization, in the catalogue's order.
    pub args: Vec<NodeId>,
    /// The shape of the site's value.
    pub shape: Shape,
    /// The node holding the site's value (a `Sample` node, or the observed input).
    pub value: NodeId,
    /// A `param` of the model: a point with no prior (its `dist` is the catalogue's
    /// [`crate::catalogue::FLAT`]), started as this says.
    pub param: Option<ParamInitIr>,
    /// `Mixture(logits, Dist(..))`: `dist` is the components' distribution, `args` the
    /// logits then its arguments, each with a last axis of components beyond `shape`.
    pub mixture: bool,
    /// `[K] ordered`: a latent increasing along its last axis (drawn through
    /// x₀ = u₀, x_k = x_{k−1} + e^{u_k}).
    pub ordered: bool,
    /// The statement's byte range.
    pub span: Span,
}

impl Site {
    /// A latent site with one value per data row (its shape starts with `N`).
    pub fn is_local(&self) -> bool {
        self.observed.is_none() && self.shape.0.first() == Some(&Dim::Rows)
    }
}

/// How a model `param` starts.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamInitIr {
    /// Every element at this value.
    Value(f64),
    /// Glorot-uniform weights of this net (all layers, or the one Linear layer given).
    Net(usize, Option<usize>),
}

/// An equality of sizes the macro cannot decide (it involves a Rust `const`); the generated
/// code checks it with a static assertion carrying `message`, at `span`.
#[derive(Debug, Clone, PartialEq)]
pub struct DimAssert {
    /// The size on the left of the equality.
    pub lhs: Dim,
    /// The size on the right.
    pub rhs: Dim,
    /// The compile error the assertion reports when the sizes differ.
    pub message: String,
    /// The token the error points at.
    pub span: Span,
}

/// A checked input of a model: a field of its data struct.
#[derive(Debug, Clone, PartialEq)]
pub struct Input {
    /// The input's name.
    pub name: String,
    /// Its declared shape.
    pub shape: Shape,
    /// `in low..high`: integers from low up to (not including) high; no high: unbounded.
    pub integers: Option<(i64, Option<i64>)>,
    /// The declaration's byte range.
    pub span: Span,
}

/// A checked model: its inputs, its graph of nodes, its sites.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelIr {
    /// The model's name, the generated type's.
    pub name: String,
    /// `model Reg<D, K>`: the size parameters, in order (const generics of the model's and
    /// its guides' items).
    pub sizes: Vec<String>,
    /// Every net of the source (a call names one by index).
    pub nets: Vec<NetIr>,
    /// The `///` lines before the model, carried to the generated type.
    pub docs: Vec<String>,
    /// The inputs, in declaration order.
    pub inputs: Vec<Input>,
    /// The graph, each node after the nodes it reads.
    pub nodes: Vec<Node>,
    /// The `~` statements and `param`s, in order: latents and observed sites interleaved.
    pub sites: Vec<Site>,
    /// `factor(name, e)`: terms added to the log joint, in order.
    pub factors: Vec<NamedValue>,
    /// `track name = e`: values each posterior draw keeps, in order.
    pub tracked: Vec<NamedValue>,
    /// Equalities of sizes left to static assertions in the generated code.
    pub asserts: Vec<DimAssert>,
    /// The definition's byte range.
    pub span: Span,
}

/// A named node of the model that is neither a site nor a plain `let`: a `factor` or a
/// tracked value.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedValue {
    /// The name written.
    pub name: String,
    /// The node holding the value.
    pub value: NodeId,
    /// The value's shape per particle.
    pub shape: Shape,
    /// The statement's byte range.
    pub span: Span,
}

impl ModelIr {
    /// The latent sites (observed ones skipped) with their latent indices, in order.
    pub fn latents(&self) -> impl Iterator<Item = (usize, &Site)> {
        self.sites
            .iter()
            .filter(|s| s.observed.is_none())
            .enumerate()
    }

    /// The value of a node built from literals only, folded; `None` if it is not one.
    pub fn const_value(&self, id: NodeId) -> Option<f64> {
        const_value(&self.nodes, id)
    }

    /// Is `name` a size parameter of the model (rather than a Rust `const` in scope)?
    pub fn is_size(&self, name: &str) -> bool {
        self.sizes.iter().any(|s| s == name)
    }

    /// The model's name with its size parameters, as its type is written: `Reg<D, K>`.
    pub fn generic_name(&self) -> String {
        if self.sizes.is_empty() {
            self.name.clone()
        } else {
            format!("{}<{}>", self.name, self.sizes.join(", "))
        }
    }

    /// The latent index of the latent site `name`, if there is one.
    pub fn latent_index(&self, name: &str) -> Option<usize> {
        self.latents().find(|(_, s)| s.name == name).map(|(i, _)| i)
    }

    /// The Normal that a latent site's prior is in the guide's unconstrained space, when its
    /// parameters are numbers: Normal(m, s) itself, or LogNormal(m, s) (whose log is N(m, s)).
    /// The closed-form KL of a mean-field entry needs it.
    pub fn normal_prior(&self, site: &Site) -> Option<(f32, f32)> {
        if !site.dist.normal_when_unconstrained
            || site.ordered
            || !site.parametrization.suffix.is_empty()
        {
            return None;
        }
        let m = self.const_value(site.args[0])?;
        let s = self.const_value(site.args[1])?;
        Some((m as f32, s as f32))
    }

    /// The stable text form of the graph.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        // The nets this model calls.
        for (i, n) in self.nets.iter().enumerate() {
            if self
                .nodes
                .iter()
                .any(|node| matches!(node.op, Op::Net(k, _, _) if k == i))
            {
                out.push_str(&n.to_text());
            }
        }
        let _ = writeln!(out, "model {}", self.generic_name());
        for (i, input) in self.inputs.iter().enumerate() {
            let domain = match input.integers {
                Some((lo, Some(hi))) => format!(" in {lo}..{hi}"),
                Some((lo, None)) => format!(" in {lo}.."),
                None => String::new(),
            };
            let _ = writeln!(out, "  input #{i} {}: {}{domain}", input.name, input.shape);
        }
        for a in &self.asserts {
            let _ = writeln!(out, "  assert {} == {}", a.lhs, a.rhs);
        }
        for (id, node) in self.nodes.iter().enumerate() {
            let op = match &node.op {
                Op::Input(i) => format!("input {}", self.inputs[*i].name),
                Op::Const(v) => format!("const {v:?}"),
                Op::RustConst(c) if self.is_size(c) => format!("size {c}"),
                Op::RustConst(c) => format!("rust_const {c}"),
                Op::Sample(s) => {
                    let site = self
                        .latents()
                        .nth(*s)
                        .map(|(_, s)| s)
                        .expect("sample node names a latent site");
                    format!("sample {}", site.name)
                }
                Op::Neg(a) => format!("neg %{a}"),
                Op::Binary(op, a, b) => format!("{} %{a}, %{b}", binop_name(*op)),
                Op::MatMul(a, b) => format!("matmul %{a}, %{b}"),
                Op::Func(f, a) => format!("{} %{a}", f.name()),
                Op::Pow(a, p) => format!("pow %{a}, {p:?}"),
                Op::Gather(a, g) => format!("gather %{a}, %{g}"),
                Op::Slice {
                    src,
                    start,
                    len,
                    keep: true,
                } => {
                    format!("slice %{src}, {start}..{}", start + len)
                }
                Op::Slice { src, start, .. } => format!("pick %{src}, {start}"),
                Op::Reduce(r, a, None) => format!("{} %{a}", r.name()),
                Op::Reduce(r, a, Some(ax)) => format!("{} %{a}, axis {ax}", r.name()),
                Op::Along(f, a, ax) => format!("{} %{a}, axis {ax}", f.name()),
                Op::Transpose(a) => format!("transpose %{a}"),
                Op::Net(n, x, w) => format!("net {}(%{x}; %{w})", self.nets[*n].name),
                Op::Temperature => "temperature".to_string(),
                Op::Concat(parts) => format!(
                    "concat {}",
                    parts
                        .iter()
                        .map(|p| format!("%{p}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
            let kind = if node.constant {
                "const"
            } else if node.particles {
                "S ×"
            } else {
                "data"
            };
            let _ = writeln!(out, "  %{id} = {op} : {kind} {}", node.shape);
        }
        for site in &self.sites {
            let (logits, component_args) = match site.mixture {
                true => (Some(site.args[0]), &site.args[1..]),
                false => (None, &site.args[..]),
            };
            let args = component_args
                .iter()
                .zip(site.parametrization.params)
                .map(|(a, p)| format!("{} = %{a}", p.name))
                .collect::<Vec<_>>()
                .join(", ");
            let dist = match logits {
                Some(l) => format!("Mixture(logits = %{l}, {}", site.dist.name),
                None => site.dist.name.to_string(),
            };
            let close = if logits.is_some() { ")" } else { "" };
            let role = if site.observed.is_some() {
                "observe"
            } else {
                "latent "
            };
            // A latent off ℝ: the guide's draws are mapped onto its support.
            let support = match (site.observed, site.dist.support) {
                (None, _) if site.ordered => ", mapped to ordered".to_string(),
                (None, crate::catalogue::Constraint::Real) | (Some(_), _) => String::new(),
                (None, c) => format!(", mapped to {}", c.describe()),
            };
            match &site.param {
                Some(init) => {
                    let init = match init {
                        ParamInitIr::Value(v) => format!("{v:?}"),
                        ParamInitIr::Net(n, None) => format!("glorot {}", self.nets[*n].name),
                        ParamInitIr::Net(n, Some(k)) => {
                            format!("glorot {} layer {k}", self.nets[*n].name)
                        }
                    };
                    let _ = writeln!(
                        out,
                        "  param   {} = %{} : {} = {init}",
                        site.name, site.value, site.shape
                    );
                }
                None => {
                    let local = if site.is_local() { ", local" } else { "" };
                    let _ = writeln!(
                        out,
                        "  {role} {} = %{} ~ {dist}({args}){close} : {}{support}{local}",
                        site.name, site.value, site.shape
                    );
                }
            }
        }
        for f in &self.factors {
            let _ = writeln!(out, "  factor  {} = sum %{} : {}", f.name, f.value, f.shape);
        }
        for t in &self.tracked {
            let _ = writeln!(out, "  track   {} = %{} : {}", t.name, t.value, t.shape);
        }
        out
    }
}

fn binop_name(op: BinOp) -> &'static str {
    match op {
        BinOp::Add => "add",
        BinOp::Sub => "sub",
        BinOp::Mul => "mul",
        BinOp::Div => "div",
        BinOp::MatMul => "matmul",
    }
}

/// The value of a guide family's argument.
#[derive(Debug, Clone, PartialEq)]
pub enum FamilyValue {
    /// A number.
    Number(f64),
    /// A list of numbers (`hidden = [64, 64]`).
    List(Vec<f64>),
    /// One of the names the catalogue lists for the argument.
    Name(&'static str),
    /// Chosen by the family at run time from its dimension.
    Auto,
    /// The layers of a flow, in the order written.
    Layers(Vec<FlowLayerIr>),
}

/// One block of a flow: `kind(args)`.
#[derive(Debug, Clone, PartialEq)]
pub struct FlowLayerIr {
    /// The layer's catalogue name (`"RealNVP"`, `"Planar"`, ...).
    pub kind: &'static str,
    /// Its arguments, defaults filled in, in the catalogue's order.
    pub args: Vec<(String, FamilyValue)>,
}

/// `k = v, ...`
pub(crate) fn write_args(args: &[(String, FamilyValue)]) -> String {
    args.iter()
        .map(|(k, v)| format!("{k} = {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl fmt::Display for FamilyValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FamilyValue::Number(v) => write!(f, "{v:?}"),
            FamilyValue::List(v) => {
                let items: Vec<String> = v.iter().map(|x| format!("{x:?}")).collect();
                write!(f, "[{}]", items.join(", "))
            }
            FamilyValue::Name(n) => f.write_str(n),
            FamilyValue::Auto => f.write_str("auto"),
            FamilyValue::Layers(layers) => {
                let items: Vec<String> = layers
                    .iter()
                    .map(|l| format!("{}({})", l.kind, write_args(&l.args)))
                    .collect();
                write!(f, "[{}]", items.join(", "))
            }
        }
    }
}

/// One `sites ~ Family(args)` line of a guide, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct GuideEntryIr {
    /// The family's catalogue entry.
    pub family: &'static crate::catalogue::FamilySpec,
    /// Every argument of the family, defaults filled in, in the catalogue's order.
    pub args: Vec<(String, FamilyValue)>,
    /// Indices into the model's latent sites, in the order written.
    pub sites: Vec<usize>,
    /// The line's byte range.
    pub span: Span,
}

impl GuideEntryIr {
    /// The entry's name in the guide's parameter store: its sites' names joined by commas
    /// (its parameters are `{label}.loc`, `{label}.rho`, ...).
    pub fn label(&self, model: &ModelIr) -> String {
        let names: Vec<&str> = model.latents().map(|(_, s)| s.name.as_str()).collect();
        self.sites
            .iter()
            .map(|&i| names[i])
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// `param name [shape] (positive) = init;` of a guide program.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamIr {
    /// The parameter's name.
    pub name: String,
    /// Its shape.
    pub shape: Shape,
    /// Stored as ρ with the value softplus(ρ) + floor.
    pub positive: bool,
    /// The starting value (of softplus(ρ) + floor if `positive`).
    pub init: f64,
    /// `[params(Net)]` (or `[params(Net, k)]`): a net's weights, started Glorot-uniform
    /// instead of at `init`.
    pub net_init: Option<(usize, Option<usize>)>,
    /// The declaration's byte range.
    pub span: Span,
}

/// An argument of a guide program's distribution.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ProgramArg {
    /// A number.
    Const(f64),
    /// The guide's parameter with this index.
    Param(usize),
    /// `Net(x; p)`, or `softplus(Net(x; p))`: a net (by index) on the rows of a model input
    /// (by index) with the guide's parameter `param` as its weights; local sites only.
    Net {
        /// The net, an index into the model's nets.
        net: usize,
        /// The model input whose rows the net reads.
        input: usize,
        /// The guide parameter holding the net's weights.
        param: usize,
        /// Wrapped in `softplus` (a scale).
        softplus: bool,
    },
}

/// `site ~ Normal(mu, s);` in a guide program.
#[derive(Debug, Clone, PartialEq)]
pub struct ProgramSiteIr {
    /// The model's latent index.
    pub site: usize,
    /// The distribution (`Normal` or `LogNormal`).
    pub dist: &'static crate::catalogue::DistSpec,
    /// One per parameter of the distribution, in its order.
    pub args: Vec<ProgramArg>,
    /// The line's byte range.
    pub span: Span,
}

/// What an amortized guide's q(z | x) is, from the site's prior.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AmortizedKind {
    /// A Normal per value: the encoder gives locations, then ρ (scale softplus ρ + floor).
    Gaussian,
    /// A relaxed Bernoulli per value from the encoder's logits, at this temperature, or at
    /// the step's `temperature` when `None`.
    RelaxedBernoulli(Option<f64>),
    /// Concrete events of this many classes from the encoder's logits, at the temperature
    /// as for `RelaxedBernoulli`.
    Concrete(Option<f64>, usize),
}

/// `z ~ Amortized(Encoder(x));`: a local site drawn from an encoder of each row of input x.
#[derive(Debug, Clone, PartialEq)]
pub struct AmortizedIr {
    /// The model's latent index.
    pub site: usize,
    /// The net (an index into the model's nets) and the input it reads.
    pub net: usize,
    /// The model input the encoder reads.
    pub input: usize,
    /// The distribution q(z | x) the encoder's outputs parametrize.
    pub kind: AmortizedKind,
    /// The line's byte range.
    pub span: Span,
}

/// A checked guide of a model.
#[derive(Debug, Clone, PartialEq)]
pub struct GuideIr {
    /// The guide's name, the generated type's.
    pub name: String,
    /// The `///` lines before the guide, carried to the generated type.
    pub docs: Vec<String>,
    /// The name of its model.
    pub model: String,
    /// The guide program's `param`s.
    pub params: Vec<ParamIr>,
    /// The `sites ~ Family;` lines.
    pub entries: Vec<GuideEntryIr>,
    /// The guide program's `site ~ Normal(..);` lines.
    pub programs: Vec<ProgramSiteIr>,
    /// The `site ~ Amortized(Encoder(x));` lines.
    pub amortized: Vec<AmortizedIr>,
    /// Local sites (latent indices) with mean-field parameters per data row.
    pub local_mean_field: Vec<usize>,
    /// The definition's byte range.
    pub span: Span,
}

impl GuideIr {
    /// The stable text form of the guide, its sites named from `model`.
    pub fn to_text(&self, model: &ModelIr) -> String {
        let mut out = format!("guide {} for {}\n", self.name, self.model);
        let names: Vec<&str> = model.latents().map(|(_, s)| s.name.as_str()).collect();
        for p in &self.params {
            let positive = if p.positive { " positive" } else { "" };
            let init = match p.net_init {
                Some((n, None)) => format!("glorot {}", model.nets[n].name),
                Some((n, Some(k))) => format!("glorot {} layer {k}", model.nets[n].name),
                None => format!("{:?}", p.init),
            };
            let _ = writeln!(out, "  param {}: {}{positive} = {init}", p.name, p.shape);
        }
        for e in &self.entries {
            let sites: Vec<&str> = e.sites.iter().map(|&i| names[i]).collect();
            let args = write_args(&e.args);
            let _ = writeln!(
                out,
                "  ({}) ~ {}({})",
                sites.join(", "),
                e.family.name,
                args
            );
            // The net call the model runs differently under this guide.
            if let Some(rewrite) = e.family.rewrite {
                let value = model.latents().nth(e.sites[0]).map(|(_, s)| s.value);
                for (id, node) in model.nodes.iter().enumerate() {
                    if let Op::Net(n, x, w) = &node.op {
                        if Some(*w) == value {
                            let net = &model.nets[*n];
                            let linear = net
                                .layers
                                .iter()
                                .filter(|l| matches!(l, NetLayer::Linear { .. }))
                                .count();
                            let how = rewrite.describe();
                            let _ = writeln!(
                                out,
                                "    rewrites %{id} = net {}(%{x}; %{w}): its {linear} Linear and Conv2d layers by {how}",
                                net.name
                            );
                        }
                    }
                }
            }
        }
        for a in &self.amortized {
            let kind = match a.kind {
                AmortizedKind::Gaussian => "Normal".to_string(),
                AmortizedKind::RelaxedBernoulli(Some(t)) => {
                    format!("RelaxedBernoulli(temperature = {t:?})")
                }
                AmortizedKind::RelaxedBernoulli(None) => {
                    "RelaxedBernoulli(temperature)".to_string()
                }
                AmortizedKind::Concrete(Some(t), k) => {
                    format!("RelaxedOneHotCategorical(temperature = {t:?}) over {k}")
                }
                AmortizedKind::Concrete(None, k) => {
                    format!("RelaxedOneHotCategorical(temperature) over {k}")
                }
            };
            let _ = writeln!(
                out,
                "  {} ~ Amortized({}({})): {kind} per value",
                names[a.site], model.nets[a.net].name, model.inputs[a.input].name
            );
        }
        for &i in &self.local_mean_field {
            let _ = writeln!(out, "  {} ~ MeanField per row", names[i]);
        }
        // The model's params, held as points.
        for (i, s) in model.latents() {
            if s.param.is_some() {
                let _ = writeln!(out, "  {} ~ Delta (param)", names[i]);
            }
        }
        for p in &self.programs {
            let args: Vec<String> = p
                .dist
                .params()
                .iter()
                .zip(&p.args)
                .map(|(q, a)| match a {
                    ProgramArg::Const(v) => format!("{} = {v:?}", q.name),
                    ProgramArg::Param(i) => format!("{} = param {}", q.name, self.params[*i].name),
                    ProgramArg::Net {
                        net,
                        input,
                        param,
                        softplus,
                    } => {
                        let call = format!(
                            "net {}({}; param {})",
                            model.nets[*net].name,
                            model.inputs[*input].name,
                            self.params[*param].name
                        );
                        if *softplus {
                            format!("{} = softplus({call})", q.name)
                        } else {
                            format!("{} = {call}", q.name)
                        }
                    }
                })
                .collect();
            let _ = writeln!(
                out,
                "  {} ~ {}({})",
                names[p.site],
                p.dist.name,
                args.join(", ")
            );
        }
        out
    }
}
