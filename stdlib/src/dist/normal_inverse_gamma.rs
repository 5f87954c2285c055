//! A conjugate prior for a layer's weights with unknown mean and variance, integrated out
//! in closed form (not by Monte Carlo).
//! Generated code calls `log_prob_joint(x, params...)` with `x` of shape `(particles, n)` (the
//! site flattened) and numeric parameters; it returns one log density per particle.

use dfdx::prelude::*;
use ravi_backend::{Backend, Particles, PerParticle, Tape};

use super::consts::HALF_LN_2PI;
use super::special::ln_gamma_f32;
use super::{Distribution, Parametrization};

/// Weights N(m, v) with unknown m, v under a Normal-Inverse-Gamma(μ₀, κ₀, α₀, β₀) prior,
/// integrated out: p(x) = Γ(αₙ)/Γ(α₀) · β₀^α₀/βₙ^αₙ · √(κ₀/κₙ) · (2π)^(−n/2), with
/// κₙ = κ₀ + n, αₙ = α₀ + n/2, βₙ = β₀ + ½ Σ(xᵢ − x̄)² + κ₀ n (x̄ − μ₀)² / (2κₙ).
pub struct NormalInverseGamma;

impl Distribution for NormalInverseGamma {
    const NAME: &'static str = "NormalInverseGamma";
    const PARAMETRIZATIONS: &'static [Parametrization] = &[Parametrization::graph_only(
        "",
        &["loc", "precision", "concentration", "scale"],
    )];
}

/// Σᵢ (xᵢ − c)² per particle for a constant c, and Σᵢ (xᵢ − x̄)² with x̄ the particle's mean.
fn centred_squares<D: Backend, T: Tape<D>>(
    x: Particles<D, T>,
) -> (PerParticle<D, T>, PerParticle<D, T>) {
    let (s, n) = *x.shape();
    let mean = x.retaped::<T>().mean::<(usize,), Axis<1>>();
    let centred = x - mean.retaped::<T>().broadcast_like::<_, Axis<1>>(&(s, n));
    (centred.square().sum::<(usize,), Axis<1>>(), mean)
}

impl NormalInverseGamma {
    /// log p(x) per particle, for `x` of shape `(particles, n)` (the site flattened): the n
    ///  weights N(m, v) with (m, v) ~ Normal-Inverse-Gamma(`loc`, `precision`, `concentration`,
    ///  `scale`) integrated out.
    pub fn log_prob_joint<D: Backend, T: Tape<D>>(
        x: Particles<D, T>,
        loc: f32,
        precision: f32,
        concentration: f32,
        scale: f32,
    ) -> PerParticle<D, T> {
        let n = x.shape().1 as f32;
        let (k0, a0, b0) = (precision, concentration, scale);
        let (kn, an) = (k0 + n, a0 + 0.5 * n);
        let (spread, mean) = centred_squares(x);
        let beta_n = spread * 0.5 + ((mean - loc).square() * (k0 * n / (2.0 * kn)) + b0);
        let constant =
            ln_gamma_f32(an) - ln_gamma_f32(a0) + a0 * b0.ln() + 0.5 * (k0.ln() - kn.ln())
                - n * HALF_LN_2PI;
        beta_n.ln() * -an + constant
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dist::check::{integrate_log_v, joint_at, JOINT_POINT};
    use statrs::distribution::{Continuous, InverseGamma, Normal};

    #[test]
    fn normal_inverse_gamma_marginal_matches_numerical_integration() {
        let (mu0, k0, a0, b0) = (0.3f64, 2.0f64, 3.0f64, 2.0f64);
        let got = joint_at(|x| {
            NormalInverseGamma::log_prob_joint(x, mu0 as f32, k0 as f32, a0 as f32, b0 as f32)
        });
        let prior_v = InverseGamma::new(a0, b0).unwrap();
        // For each v, ∫ dm Π N(xᵢ; m, v) N(m; μ₀, v/κ₀) on a grid in m.
        let want = integrate_log_v(|v| {
            let sd_m = (v / k0).sqrt();
            let (lo, hi, n) = (mu0 - 12.0 * sd_m, mu0 + 12.0 * sd_m, 800);
            let dm = (hi - lo) / n as f64;
            let inner: f64 = (0..=n)
                .map(|i| {
                    let m = lo + dm * i as f64;
                    let w = if i == 0 || i == n { 0.5 } else { 1.0 };
                    let lik: f64 = JOINT_POINT
                        .iter()
                        .map(|&x| Normal::new(m, v.sqrt()).unwrap().pdf(f64::from(x)))
                        .product();
                    w * lik * Normal::new(mu0, sd_m).unwrap().pdf(m) * dm
                })
                .sum();
            inner * prior_v.pdf(v)
        })
        .ln();
        assert!(
            (got - want).abs() < 1e-4 * (1.0 + want.abs()),
            "{got} vs {want}"
        );
    }
}
