//! A model and its guide as the host engine runs them: the data `guide!` emits beside the
//! dfdx code when both stay inside what the engine covers (see [`crate::fused`]). Plain
//! data, so the [`crate::Guide`] contract can hand it over without naming the engine.

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

/// The densities the engine scores, with their arguments in the catalogue's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Density {
    /// loc, scale
    Normal,
    /// probs
    Bernoulli,
    /// logits
    BernoulliLogits,
    /// rate
    Poisson,
    /// logits, with a last axis of K categories beyond the site's shape; values in 0..K
    Categorical,
    /// loc, scale (of log x)
    LogNormal,
    /// scale
    HalfNormal,
    /// scale
    HalfCauchy,
    /// rate
    Exponential,
    /// loc, scale
    Cauchy,
    /// loc, scale
    Laplace,
    /// concentration (not a latent), rate
    Gamma,
    /// concentration (not a latent), scale
    InverseGamma,
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

/// A `MeanField` or `FullRank` entry of the guide: its sites (latent indices, concatenated
/// in this order) and the store names of its μ, ρ and (full rank) strictly lower L.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Entry {
    pub sites: &'static [usize],
    pub loc: &'static str,
    pub rho: &'static str,
    pub lower: Option<&'static str>,
    /// Per site, the (loc, scale) of its Normal prior when every site of a `MeanField`
    /// entry has one with numbers for arguments: the `AnalyticKl` estimator's closed form.
    pub normal_priors: Option<&'static [(f32, f32)]>,
    /// σ = softplus(ρ) + floor (the family's floor).
    pub floor: f32,
    /// The family's label, under which the store holds its frame when it was started in
    /// one ([`crate::frame`]); `None` for a guide-program line.
    pub label: Option<&'static str>,
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
