//! Distributions: each with its log density, differentiable in the value and in every
//! parameter, and `rsample` where a reparametrized sampler exists in closed form (see
//! `rsample.rs`; a latent site's value comes from the guide, so models only evaluate
//! densities).
//!
//! Generated code calls `ravi::dist::{Name}::log_prob(value, params...)` (or the
//! `log_prob_{variant}` of another parametrization, like `Bernoulli::log_prob_logits`) with
//! the value and every tensor parameter already broadcast to one shape and carrying one
//! tape type; parameters known at compile time arrive as [`Arg::Scalar`] and cost no tensor.

mod arg;
mod continuous;
mod discrete;
mod events;
pub(crate) mod normal;
mod priors;
mod rsample;
pub mod special;

pub use arg::{Arg, Value};
pub use continuous::{
    Beta, Cauchy, Exponential, Gamma, HalfCauchy, HalfNormal, InverseGamma, Laplace, LogNormal,
    RelaxedBernoulli, ScaleMixtureNormal, StudentT, Uniform,
};
pub use discrete::{Bernoulli, Categorical, Poisson};
pub use events::{Dirichlet, Events, MultivariateNormal, RelaxedOneHotCategorical};
pub use normal::Normal;
pub use priors::{ConjugateKnownMean, LayerGaussian, NormalInverseGamma};

/// What the compiler's catalogue says of a distribution; a test checks the two agree.
pub trait Distribution {
    const NAME: &'static str;
    /// Each way to parametrize it: the suffix of its `log_prob` function ("" for the
    /// first) and its parameter names in the order that function takes them.
    const PARAMETRIZATIONS: &'static [(&'static str, &'static [&'static str])];
}

/// A distribution's parametrizations: (`log_prob` suffix, parameter names).
pub type Parametrizations = &'static [(&'static str, &'static [&'static str])];

/// Every distribution of the stdlib, as (name, parametrizations).
pub const IMPLEMENTED: &[(&str, Parametrizations)] = &[
    (Normal::NAME, Normal::PARAMETRIZATIONS),
    (LogNormal::NAME, LogNormal::PARAMETRIZATIONS),
    (HalfNormal::NAME, HalfNormal::PARAMETRIZATIONS),
    (HalfCauchy::NAME, HalfCauchy::PARAMETRIZATIONS),
    (Cauchy::NAME, Cauchy::PARAMETRIZATIONS),
    (Laplace::NAME, Laplace::PARAMETRIZATIONS),
    (StudentT::NAME, StudentT::PARAMETRIZATIONS),
    (Exponential::NAME, Exponential::PARAMETRIZATIONS),
    (Gamma::NAME, Gamma::PARAMETRIZATIONS),
    (InverseGamma::NAME, InverseGamma::PARAMETRIZATIONS),
    (Beta::NAME, Beta::PARAMETRIZATIONS),
    (Uniform::NAME, Uniform::PARAMETRIZATIONS),
    (RelaxedBernoulli::NAME, RelaxedBernoulli::PARAMETRIZATIONS),
    (
        ScaleMixtureNormal::NAME,
        ScaleMixtureNormal::PARAMETRIZATIONS,
    ),
    (Bernoulli::NAME, Bernoulli::PARAMETRIZATIONS),
    (Poisson::NAME, Poisson::PARAMETRIZATIONS),
    (Categorical::NAME, Categorical::PARAMETRIZATIONS),
    (Dirichlet::NAME, Dirichlet::PARAMETRIZATIONS),
    (
        RelaxedOneHotCategorical::NAME,
        RelaxedOneHotCategorical::PARAMETRIZATIONS,
    ),
    (
        MultivariateNormal::NAME,
        MultivariateNormal::PARAMETRIZATIONS,
    ),
    (LayerGaussian::NAME, LayerGaussian::PARAMETRIZATIONS),
    (
        NormalInverseGamma::NAME,
        NormalInverseGamma::PARAMETRIZATIONS,
    ),
    (
        ConjugateKnownMean::NAME,
        ConjugateKnownMean::PARAMETRIZATIONS,
    ),
];

#[cfg(test)]
mod tests;
