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
    Fixed(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    Exp,
    Log,
    Softplus,
    Sigmoid,
    Tanh,
    Sqrt,
    Abs,
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
    Const(f32),
    /// The latent site with this index, drawn by the guide.
    Sample(usize),
    Neg(usize),
    /// Elementwise, the operand of lower rank broadcast over the other's leading axes.
    Add(usize, usize),
    Sub(usize, usize),
    Mul(usize, usize),
    Div(usize, usize),
    /// Matrix or vector product per particle.
    MatMul(usize, usize),
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
    LogSoftmax(usize, usize),
    /// A matrix's axes swapped.
    Transpose(usize),
    /// Over every axis (`None`) or one axis.
    Sum(usize, Option<usize>),
    Mean(usize, Option<usize>),
    /// `Net(x; w)`: the net with this index in [`Program::nets`] on rows `x` (data or
    /// per particle; each row's features flattened) with weights `w` per particle.
    Net(usize, usize, usize),
    /// Vectors joined end to end, per particle.
    Concat(&'static [usize]),
}

/// A layer of a net: weights W (`inputs × outputs`, row-major) then b, consecutive in the
/// weight vector; or an activation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Layer {
    Linear { inputs: usize, outputs: usize },
    Activation(Func),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Node {
    pub op: Op,
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
}

impl Density {
    pub fn name(&self) -> &'static str {
        match self {
            Density::Elementwise(d) => d.name(),
            Density::Classes(d) => d.name(),
            Density::Factor => "factor",
            Density::Mixture(d) => d.name(),
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

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Site {
    pub name: &'static str,
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
}

/// A model and guide as the engine runs them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Program {
    /// In definition order: every operand precedes its node.
    pub nodes: &'static [Node],
    /// In the model's order (latent and observed sites; the ELBO sums their terms).
    pub sites: &'static [Site],
    pub entries: &'static [Entry],
    /// The nets `Op::Net` nodes call, by index: their layers.
    pub nets: &'static [&'static [Layer]],
}
