//! A model and its guide as the host engine runs them: the data `guide!` emits beside the
//! dfdx code when both stay inside what the engine covers (see [`crate::fused`]). Plain
//! data, so the [`crate::Guide`] contract can hand it over without naming the engine.

use std::fmt;

use crate::density::{ClassDensity, ElementDensity, MixtureDensity};

/// One axis of a node's shape per particle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dim {
    /// The rows of the batch.
    Rows,
    /// A size known when the program was compiled.
    Fixed(usize),
}

/// An elementwise function of a node, as the engine computes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    /// eˣ
    Exp,
    /// ln x
    Log,
    /// ln(1 + eˣ)
    Softplus,
    /// 1 / (1 + e⁻ˣ)
    Sigmoid,
    /// tanh x
    Tanh,
    /// √x
    Sqrt,
    /// |x|
    Abs,
    /// x²
    Square,
    /// ln(1 + x)
    Log1p,
    /// eˣ − 1
    Expm1,
    /// Net activations only.
    Relu,
}

/// A node's operation; operands are earlier nodes' indices.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Op {
    /// The model input with this index (its rows gathered for a minibatch).
    Input(usize),
    /// A number.
    Const(f32),
    /// The latent site with this index, drawn by the guide.
    Sample(usize),
    /// −x, elementwise.
    Neg(usize),
    /// Elementwise, the operand of lower rank broadcast over the other's leading axes.
    Add(usize, usize),
    /// Elementwise difference, broadcast as for `Add`.
    Sub(usize, usize),
    /// Elementwise product, broadcast as for `Add`.
    Mul(usize, usize),
    /// Elementwise quotient, broadcast as for `Add`.
    Div(usize, usize),
    /// Matrix or vector product per particle.
    MatMul(usize, usize),
    /// An elementwise function.
    Func(Func, usize),
    /// `pow(x, p)` with a number p, elementwise.
    Pow(usize, f32),
    /// `a[g]`: rows of `a` (its first axis, per particle) picked by the integer data
    /// node `g` (values checked against the declared range before the fit).
    Gather(usize, usize),
    /// `a[start..start + len]` along the first axis (`a[k]`: len 1, the axis dropped).
    Slice(usize, usize, usize),
    /// log Σ exp along an axis (dropped).
    LogSumExp(usize, usize),
    /// Along an axis.
    Softmax(usize, usize),
    /// log softmax along an axis (kept).
    LogSoftmax(usize, usize),
    /// A matrix's axes swapped.
    Transpose(usize),
    /// Over every axis (`None`) or one axis.
    Sum(usize, Option<usize>),
    /// The arithmetic mean over every axis (`None`) or one axis.
    Mean(usize, Option<usize>),
    /// `Net(x; w)`: the net with this index in [`Program::nets`] on rows `x` (data or
    /// per particle; each row's features flattened) with weights `w` per particle.
    Net(usize, usize, usize),
    /// Vectors joined end to end, per particle.
    Concat(&'static [usize]),
    /// The relaxation temperature of the step (`temperature`; a fit may anneal it).
    Temperature,
}

/// A layer of a net: weights W (`inputs × outputs`, row-major) then b, consecutive in the
/// weight vector; or an activation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Layer {
    /// x W + b.
    Linear {
        /// Features in.
        inputs: usize,
        /// Features out.
        outputs: usize,
    },
    /// An elementwise activation.
    Activation(Func),
}

/// One node of the model's graph: an operation and its shape.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Node {
    /// What the node computes.
    pub op: Op,
    /// Its shape per particle.
    pub dims: &'static [Dim],
    /// Depends on a latent site: one value per particle, and a gradient.
    pub particles: bool,
}

/// How the engine scores a site: the distribution's own host density (its stdlib file
/// implements it beside the dfdx one), with the arguments in the catalogue's order.
#[derive(Clone, Copy)]
pub enum Density {
    /// Elementwise, each argument broadcast to the site's shape.
    Elementwise(&'static dyn ElementDensity),
    /// One class per value, from logits with a last axis of K classes beyond the site's
    /// shape; values in 0..K.
    Classes(&'static dyn ClassDensity),
    /// A `factor`: the value itself, summed, is the term (no arguments).
    Factor,
    /// A mixture: the logits, then the component's arguments, each with a last axis of K
    /// components beyond the site's shape (broadcast over leading axes).
    Mixture(MixtureDensity),
    /// A local site scored by the encoder that draws it, in the coordinate it draws (a
    /// relaxed Bernoulli's logit; see [`EncoderKind::RelaxedBernoulli`]); the model's pass
    /// adds nothing for it.
    Encoded,
}

impl Density {
    /// The distribution's (and parametrization's) name, `"factor"` for a factor.
    pub fn name(&self) -> &'static str {
        match self {
            Density::Elementwise(d) => d.name(),
            Density::Classes(d) => d.name(),
            Density::Factor => "factor",
            Density::Mixture(d) => d.name(),
            Density::Encoded => "scored by its encoder",
        }
    }
}

impl fmt::Debug for Density {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Two densities are the same when they are the same distribution and parametrization.
impl PartialEq for Density {
    fn eq(&self, other: &Self) -> bool {
        self.name() == other.name()
    }
}

/// A site of the model as the engine scores it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Site {
    /// The site's name (the latent's, or the observed input's, or the factor's).
    pub name: &'static str,
    /// How its term is computed.
    pub density: Density,
    /// Argument nodes, broadcast to the site's shape.
    pub args: &'static [usize],
    /// The value's node (a `Sample` or an `Input`).
    pub value: usize,
    /// An observed site's term is scaled by total rows / batch rows.
    pub observed: bool,
    /// A latent site on the positive reals: the guide draws u, the value is x = eᵘ, and
    /// the term gains log |dx/du| = u.
    pub positive: bool,
}

/// A Gaussian entry of the guide (a `MeanField` or `FullRank` family, or a guide-program
/// line `site ~ Normal(param, positive param)`): its sites. Its parameters are the guide's
/// to say ([`crate::Guide::host_gaussians`], in the same order), by id.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Entry {
    /// Latent indices, concatenated in this order.
    pub sites: &'static [usize],
    /// Per site, the (loc, scale) of its Normal prior when every site of a `MeanField`
    /// entry has one with numbers for arguments: the `AnalyticKl` estimator's closed form.
    pub normal_priors: Option<&'static [(f32, f32)]>,
    /// σ = softplus(ρ) + floor (the family's floor).
    pub floor: f32,
    /// A `Flipout` or `Lrt` entry over one net's weights: the net call runs on the
    /// Gaussian's mean and sd, not on the entry's draw (which only the prior term reads).
    pub rewrite: Option<Rewrite>,
}

/// How a net call uses a mean-field Gaussian over its weights instead of one draw of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rewrite {
    /// Flipout (Wen et al. 2018): one perturbation per particle, decorrelated per row by
    /// random signs on inputs and outputs.
    Flipout,
    /// Local reparametrization (Kingma, Salimans & Welling 2015): each row's
    /// pre-activations drawn from their Gaussian, mean x μ and variance x² σ².
    Lrt,
}

/// An amortized guide of a local site (`z ~ Amortized(Encoder(x))`): the encoder net reads
/// each row of a model input and gives the parameters of the row's q(z | x). Its weights are
/// the guide's to say ([`crate::Guide::host_encoders`], in the same order), by id.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Encoder {
    /// The latent site (one value per row and per particle).
    pub site: usize,
    /// The net, an index into [`Program::nets`].
    pub net: usize,
    /// The model input whose rows the encoder reads.
    pub input: usize,
    /// What q(z | x) is.
    pub kind: EncoderKind,
}

/// What an encoder's outputs parametrize.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum EncoderKind {
    /// A Normal per value of a real site: locations, then ρ (scale softplus ρ + floor).
    Gaussian {
        /// The site's prior when it is Normal(loc, scale) with numbers: the `AnalyticKl`
        /// estimator's closed form per row.
        normal_prior: Option<(f32, f32)>,
        /// σ = softplus(ρ) + floor.
        floor: f32,
    },
    /// A relaxed Bernoulli per value from the encoder's logits l, drawn as its logit
    /// u = (l + L)/τ, L ~ Logistic(0, 1); the site's value is σ(u), and both the site's prior
    /// RelaxedBernoulli(τₚ, lₚ) and log q are densities of u (the site's density is
    /// [`Density::Encoded`]).
    RelaxedBernoulli {
        /// q's temperature, or the step's when `None`.
        temperature: Option<f32>,
        /// The prior's temperature and logits.
        prior: (PriorArg, PriorArg),
    },
    /// Concrete (Gumbel-softmax) events of `classes` values from the encoder's logits l:
    /// log y = log softmax((l + g)/τ), g ~ Gumbel(0, 1); the site's value is y, and both
    /// the prior RelaxedOneHotCategorical(τₚ, lₚ) and log q are densities of y's
    /// additive-log-ratio coordinates, read from log y (the site's density is
    /// [`Density::Encoded`]).
    Concrete {
        /// q's temperature, or the step's when `None`.
        temperature: Option<f32>,
        /// K, the values of each event.
        classes: usize,
        /// The prior's temperature and logits (one number for every class).
        prior: (PriorArg, PriorArg),
    },
}

/// An argument of an encoded site's prior: a number or the step's temperature.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PriorArg {
    /// A number.
    Const(f32),
    /// The step's relaxation temperature.
    Temperature,
}

/// A model and guide as the engine runs them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Program {
    /// In definition order: every operand precedes its node.
    pub nodes: &'static [Node],
    /// In the model's order (latent and observed sites; the ELBO sums their terms).
    pub sites: &'static [Site],
    /// The guide's Gaussian entries, in the order [`crate::Guide::host_gaussians`] gives their
    /// parameters.
    pub entries: &'static [Entry],
    /// The nets `Op::Net` nodes call, by index: their layers.
    pub nets: &'static [&'static [Layer]],
    /// The model's `param`s (latent indices), which the guide holds as points: the value is
    /// the parameter itself, log q is 0. Their parameters are the guide's to say
    /// ([`crate::Guide::host_points`], in the same order), by id.
    pub points: &'static [usize],
    /// The guide's encoders of local sites, in the order it draws them (after its entries).
    pub encoders: &'static [Encoder],
}

impl Op {
    /// The nodes this operation reads.
    pub fn operands(&self) -> Vec<usize> {
        match *self {
            Op::Input(_) | Op::Const(_) | Op::Sample(_) | Op::Temperature => Vec::new(),
            Op::Neg(a)
            | Op::Func(_, a)
            | Op::Pow(a, _)
            | Op::Slice(a, ..)
            | Op::LogSumExp(a, _)
            | Op::Softmax(a, _)
            | Op::LogSoftmax(a, _)
            | Op::Transpose(a)
            | Op::Sum(a, _)
            | Op::Mean(a, _) => vec![a],
            Op::Add(a, b)
            | Op::Sub(a, b)
            | Op::Mul(a, b)
            | Op::Div(a, b)
            | Op::MatMul(a, b)
            | Op::Gather(a, b) => vec![a, b],
            Op::Net(_, x, w) => vec![x, w],
            Op::Concat(parts) => parts.to_vec(),
        }
    }
}

impl Program {
    /// Does each data row's terms depend on that row alone (no operation mixes rows or
    /// reduces over them, so the log joint over all rows is the sum of its terms over any
    /// split of the rows)? Then the rows can be taken in passes.
    pub fn splits_by_rows(&self) -> bool {
        let has_rows = |n: usize| self.nodes[n].dims.contains(&Dim::Rows);
        self.nodes.iter().all(|node| {
            let reads_rows = node.op.operands().into_iter().any(has_rows);
            if !reads_rows {
                return true;
            }
            let rows_first = node.dims.first() == Some(&Dim::Rows)
                && node.dims.iter().filter(|d| **d == Dim::Rows).count() == 1;
            let mixes_rows = match node.op {
                Op::LogSumExp(_, axis) | Op::Softmax(_, axis) | Op::LogSoftmax(_, axis) => {
                    axis == 0
                }
                Op::Sum(_, axis) | Op::Mean(_, axis) => axis.is_none_or(|a| a == 0),
                Op::Slice(..) | Op::Transpose(_) | Op::Concat(_) => true,
                _ => false,
            };
            rows_first && !mixes_rows
        })
    }

    /// The `Net` calls whose weights are node `weights` (a weight site's `Sample`).
    pub fn net_calls_on(&self, weights: usize) -> Vec<usize> {
        self.nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| matches!(n.op, Op::Net(_, _, w) if w == weights))
            .map(|(id, _)| id)
            .collect()
    }

    /// Does the term of site `s` have one part per data row?
    pub fn site_has_rows(&self, s: &Site) -> bool {
        self.nodes[s.value].dims.contains(&Dim::Rows)
    }
}
