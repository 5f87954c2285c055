//! A conjugate prior for a layer's weights with known mean and unknown variance,
//! integrated out in closed form.
//! Generated code calls `log_prob_joint(x, params...)` with `x` of shape `(particles, n)` (the
//! site flattened) and numeric parameters; it returns one log density per particle.

use dfdx::prelude::*;
use ravi_backend::{Backend, Particles, PerParticle, Tape};

use super::consts::HALF_LN_2PI;
use super::special::ln_gamma_f32;
use super::{Distribution, Parametrization};

/// Weights N(mean, v) with v ~ InverseGamma(α₀, β₀), v integrated out:
/// p(x) = Γ(αₙ)/Γ(α₀) · β₀^α₀/βₙ^αₙ · (2π)^(−n/2), αₙ = α₀ + n/2, βₙ = β₀ + ½ Σ(xᵢ − mean)².
pub struct ConjugateKnownMean;

impl Distribution for ConjugateKnownMean {
    const NAME: &'static str = "ConjugateKnownMean";
    const PARAMETRIZATIONS: &'static [Parametrization] = &[Parametrization::graph_only(
        "",
        &["mean", "concentration", "scale"],
    )];
}

impl ConjugateKnownMean {
    /// log p(x) per particle, for `x` of shape `(particles, n)` (the site flattened): the n
    ///  weights N(mean, v) with v ~ InverseGamma(`concentration`, `scale`) integrated out.
    pub fn log_prob_joint<D: Backend, T: Tape<D>>(
        x: Particles<D, T>,
        mean: f32,
        concentration: f32,
        scale: f32,
    ) -> PerParticle<D, T> {
        let n = x.shape().1 as f32;
        let (a0, b0) = (concentration, scale);
        let an = a0 + 0.5 * n;
        let beta_n = (x - mean).square().sum::<(usize,), Axis<1>>() * 0.5 + b0;
        let constant = ln_gamma_f32(an) - ln_gamma_f32(a0) + a0 * b0.ln() - n * HALF_LN_2PI;
        beta_n.ln() * -an + constant
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dist::check::{integrate_log_v, joint_at, JOINT_POINT};
    use statrs::distribution::{Continuous, InverseGamma, Normal};

    #[test]
    fn known_mean_marginal_matches_numerical_integration() {
        let (m, a0, b0) = (0.2f64, 2.5f64, 1.5f64);
        let got =
            joint_at(|x| ConjugateKnownMean::log_prob_joint(x, m as f32, a0 as f32, b0 as f32));
        let prior = InverseGamma::new(a0, b0).unwrap();
        let want = integrate_log_v(|v| {
            let lik: f64 = JOINT_POINT
                .iter()
                .map(|&x| Normal::new(m, v.sqrt()).unwrap().pdf(f64::from(x)))
                .product();
            lik * prior.pdf(v)
        })
        .ln();
        assert!(
            (got - want).abs() < 1e-4 * (1.0 + want.abs()),
            "{got} vs {want}"
        );
    }
}
