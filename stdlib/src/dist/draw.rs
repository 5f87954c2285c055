//! The random variates the distributions' [`Moments::draw`](ravi_backend::density::Moments::draw)
//! are built from, over `rand_distr` (one `rand`, the one dfdx uses). Arguments outside a
//! variate's domain give NaN, as the predictive reports them.

use rand::RngCore;
use rand_distr::Distribution as _;

/// N(0, 1).
pub(crate) fn standard_normal(rng: &mut dyn RngCore) -> f64 {
    rand_distr::StandardNormal.sample(rng)
}

/// Uniform on [0, 1).
pub(crate) fn uniform(rng: &mut dyn RngCore) -> f64 {
    rand_distr::Standard.sample(rng)
}

/// Gamma(shape, 1).
pub(crate) fn gamma(shape: f64, rng: &mut dyn RngCore) -> f64 {
    rand_distr::Gamma::new(shape, 1.0).map_or(f64::NAN, |g| g.sample(rng))
}

/// Poisson(rate) (0 at rate 0).
pub(crate) fn poisson(rate: f64, rng: &mut dyn RngCore) -> f64 {
    if rate == 0.0 {
        return 0.0;
    }
    rand_distr::Poisson::new(rate).map_or(f64::NAN, |p| p.sample(rng))
}

/// Binomial(n, p) for a whole number n ≥ 0.
pub(crate) fn binomial(n: f64, p: f64, rng: &mut dyn RngCore) -> f64 {
    if n < 0.0 || n.fract() != 0.0 {
        return f64::NAN;
    }
    rand_distr::Binomial::new(n as u64, p).map_or(f64::NAN, |b| b.sample(rng) as f64)
}

/// Student's t with `df` degrees of freedom, location 0, scale 1.
pub(crate) fn student_t(df: f64, rng: &mut dyn RngCore) -> f64 {
    rand_distr::StudentT::new(df).map_or(f64::NAN, |t| t.sample(rng))
}

/// Beta(a, b).
pub(crate) fn beta(a: f64, b: f64, rng: &mut dyn RngCore) -> f64 {
    rand_distr::Beta::new(a, b).map_or(f64::NAN, |d| d.sample(rng))
}

/// Standard Cauchy.
pub(crate) fn standard_cauchy(rng: &mut dyn RngCore) -> f64 {
    (std::f64::consts::PI * (uniform(rng) - 0.5)).tan()
}

/// 1 with probability p, else 0.
pub(crate) fn bernoulli(p: f64, rng: &mut dyn RngCore) -> f64 {
    match (0.0..=1.0).contains(&p) {
        true => f64::from(u8::from(uniform(rng) < p)),
        false => f64::NAN,
    }
}

/// The logistic function.
pub(crate) fn sigmoid(l: f64) -> f64 {
    1.0 / (1.0 + (-l).exp())
}
