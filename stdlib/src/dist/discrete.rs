//! Distributions on integers. Values are data (or relaxed samples); the densities are
//! differentiable in the parameters.

use dfdx::shapes::Shape;
use ravi_backend::{Backend, Tape};

use super::arg::{mul, sub, Arg, Value};
use super::special::ln_gamma;
use super::Distribution;

/// A coin: P(x = 1) = probs, or sigmoid(logits) with `Bernoulli(logits = ..)`.
pub struct Bernoulli;

impl Distribution for Bernoulli {
    const NAME: &'static str = "Bernoulli";
    const PARAMETRIZATIONS: &'static [(&'static str, &'static [&'static str])] =
        &[("", &["probs"]), ("_logits", &["logits"])];
}

impl Bernoulli {
    /// x log p + (1 − x) log(1 − p)
    pub fn log_prob<S: Shape, D: Backend, T: Tape<D>>(
        x: Value<S, D, T>,
        probs: Arg<S, D, T>,
    ) -> Value<S, D, T> {
        let hit = mul(x.retaped::<T>(), probs.again().ln());
        let miss = mul(x.negate() + 1.0, probs.negated().add_scalar(1.0).ln());
        hit + miss
    }

    /// x l − softplus(l): the same density in the logits, without computing sigmoid(l).
    pub fn log_prob_logits<S: Shape, D: Backend, T: Tape<D>>(
        x: Value<S, D, T>,
        logits: Arg<S, D, T>,
    ) -> Value<S, D, T> {
        sub(mul(x, logits.again()), logits.softplus())
    }
}

/// Counts with mean `rate`.
pub struct Poisson;

impl Distribution for Poisson {
    const NAME: &'static str = "Poisson";
    const PARAMETRIZATIONS: &'static [(&'static str, &'static [&'static str])] = &[("", &["rate"])];
}

impl Poisson {
    /// x log λ − λ − log x!
    pub fn log_prob<S: Shape, D: Backend, T: Tape<D>>(
        x: Value<S, D, T>,
        rate: Arg<S, D, T>,
    ) -> Value<S, D, T> {
        let log_factorial = ln_gamma(x.retaped::<T>() + 1.0);
        sub(mul(x, rate.again().ln()) - log_factorial, rate)
    }
}
