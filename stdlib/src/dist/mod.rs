//! Distributions, one file each: its parameters and parametrizations ([`Distribution`]),
//! its dfdx log density (differentiable in the value and every parameter), its
//! reparametrized sampler where one exists in closed form, its host-engine density with
//! the partial derivatives ([`ravi_backend::density::ElementDensity`]) where the engine
//! covers it, its mean and variance ([`ravi_backend::density::Moments`]) where it is
//! elementwise, and its tests against statrs or a formula built from it.
//!
//! Generated code calls `ravi::dist::{Name}::log_prob(value, params...)` (or the
//! `log_prob_{variant}` of another parametrization, like `Bernoulli::log_prob_logits`) with
//! the value and every tensor parameter already broadcast to one shape and carrying one
//! tape type; parameters known at compile time arrive as [`Arg::Scalar`] and cost no tensor.
//! For the host engine it takes [`Parametrization::host`], for the predictive
//! [`Parametrization::moments`]. Adding a distribution: ARCHITECTURE.md, "Adding a
//! distribution".

mod arg;
pub(crate) mod consts;
mod draw;
mod noise;
pub mod special;

mod bernoulli;
mod beta;
mod binomial;
mod categorical;
mod cauchy;
mod continuous_bernoulli;
mod conjugate_known_mean;
mod dirichlet;
mod events;
mod exponential;
mod flat;
mod gamma;
mod half_cauchy;
mod half_normal;
mod half_student_t;
mod inverse_gamma;
mod laplace;
mod layer_gaussian;
mod log_normal;
mod mixture;
mod multivariate_normal;
mod negative_binomial;
mod normal;
mod normal_inverse_gamma;
mod poisson;
mod relaxed_bernoulli;
mod relaxed_one_hot_categorical;
mod scale_mixture_normal;
mod student_t;
mod uniform;
mod zero_inflated_poisson;

#[cfg(test)]
mod check;

use ravi_backend::density::Moments;
use ravi_backend::program::Density;

pub use arg::{Arg, Value};
pub use bernoulli::{Bernoulli, BernoulliLogits};
pub use beta::Beta;
pub use binomial::{Binomial, BinomialLogits};
pub use categorical::Categorical;
pub use cauchy::Cauchy;
pub use conjugate_known_mean::ConjugateKnownMean;
pub use continuous_bernoulli::{ContinuousBernoulli, ContinuousBernoulliLogits};
pub use dirichlet::Dirichlet;
pub use events::Events;
pub use exponential::Exponential;
pub use flat::{Flat, FlatPositive};
pub use gamma::Gamma;
pub use half_cauchy::HalfCauchy;
pub use half_normal::HalfNormal;
pub use half_student_t::HalfStudentT;
pub use inverse_gamma::InverseGamma;
pub use laplace::Laplace;
pub use layer_gaussian::LayerGaussian;
pub use log_normal::LogNormal;
pub use mixture::{mixture_log_prob, mixture_of};
pub use multivariate_normal::MultivariateNormal;
pub use negative_binomial::NegativeBinomial;
pub use normal::Normal;
pub use normal_inverse_gamma::NormalInverseGamma;
pub use poisson::Poisson;
pub use relaxed_bernoulli::RelaxedBernoulli;
pub use relaxed_one_hot_categorical::RelaxedOneHotCategorical;
pub use scale_mixture_normal::ScaleMixtureNormal;
pub use student_t::StudentT;
pub use uniform::Uniform;
pub use zero_inflated_poisson::ZeroInflatedPoisson;

/// What a distribution is, as the compiler's catalogue and the runtime see it; a test of
/// the `ravi` crate checks that the two agree (names, parameters, and which
/// parametrizations the host engine covers).
pub trait Distribution {
    /// The name the DSL writes (`"Normal"`).
    const NAME: &'static str;
    /// Each way to parametrize it; the first is the one positional arguments take.
    const PARAMETRIZATIONS: &'static [Parametrization];
}

/// One way to parametrize a distribution.
#[derive(Clone, Copy)]
pub struct Parametrization {
    /// The suffix of its `log_prob` function ("" for the first).
    pub suffix: &'static str,
    /// Its parameter names, in the order that function takes them.
    pub params: &'static [&'static str],
    /// How the host engine scores it; `None` where the engine does not cover it (the
    /// catalogue says the same, and codegen takes this).
    pub host: Option<Density>,
    /// Its mean and variance given its arguments, for the posterior predictive; `None` for
    /// a density of vectors or of a whole site, or one without moments in closed form.
    pub moments: Option<&'static dyn Moments>,
}

impl Parametrization {
    /// A parametrization neither the engine nor the predictive reads (a density of a
    /// whole site or of vectors).
    pub const fn graph_only(suffix: &'static str, params: &'static [&'static str]) -> Self {
        Parametrization {
            suffix,
            params,
            host: None,
            moments: None,
        }
    }
}

/// Every distribution of the stdlib, as (name, parametrizations).
pub const IMPLEMENTED: &[(&str, &[Parametrization])] = &[
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
    (
        ContinuousBernoulli::NAME,
        ContinuousBernoulli::PARAMETRIZATIONS,
    ),
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
    (HalfStudentT::NAME, HalfStudentT::PARAMETRIZATIONS),
    (NegativeBinomial::NAME, NegativeBinomial::PARAMETRIZATIONS),
    (Binomial::NAME, Binomial::PARAMETRIZATIONS),
    (
        ZeroInflatedPoisson::NAME,
        ZeroInflatedPoisson::PARAMETRIZATIONS,
    ),
    (Flat::NAME, Flat::PARAMETRIZATIONS),
    (FlatPositive::NAME, FlatPositive::PARAMETRIZATIONS),
];
