//! Priors for the weights of a network layer (the families PyVarInf offers), each the
//! density of a whole site at once rather than of each element: a site is a layer.
//! The conjugate ones are computed exactly, by integrating the unknown mean and variance
//! out in closed form, not by Monte Carlo.
//!
//! Generated code calls `log_prob_joint(x, params...)` with `x` of shape
//! `(particles, n)` (the site flattened) and numeric parameters; it returns one log density
//! per particle.

use dfdx::prelude::*;
use ravi_backend::{Backend, Particles, PerParticle, Tape};

use super::continuous::HALF_LN_2PI;
use super::special::ln_gamma_f32;
use super::Distribution;

/// N(0, 1/n) on each of the site's n weights: the variance that keeps a layer's outputs at
/// the scale of its inputs.
pub struct LayerGaussian;

/// Weights N(m, v) with unknown m, v under a Normal-Inverse-Gamma(μ₀, κ₀, α₀, β₀) prior,
/// integrated out: p(x) = Γ(αₙ)/Γ(α₀) · β₀^α₀/βₙ^αₙ · √(κ₀/κₙ) · (2π)^(−n/2), with
/// κₙ = κ₀ + n, αₙ = α₀ + n/2, βₙ = β₀ + ½ Σ(xᵢ − x̄)² + κ₀ n (x̄ − μ₀)² / (2κₙ).
pub struct NormalInverseGamma;

/// Weights N(mean, v) with v ~ InverseGamma(α₀, β₀), v integrated out:
/// p(x) = Γ(αₙ)/Γ(α₀) · β₀^α₀/βₙ^αₙ · (2π)^(−n/2), αₙ = α₀ + n/2, βₙ = β₀ + ½ Σ(xᵢ − mean)².
pub struct ConjugateKnownMean;

impl Distribution for LayerGaussian {
    const NAME: &'static str = "LayerGaussian";
    const PARAMETRIZATIONS: &'static [(&'static str, &'static [&'static str])] = &[("", &[])];
}

impl Distribution for NormalInverseGamma {
    const NAME: &'static str = "NormalInverseGamma";
    const PARAMETRIZATIONS: &'static [(&'static str, &'static [&'static str])] =
        &[("", &["loc", "precision", "concentration", "scale"])];
}

impl Distribution for ConjugateKnownMean {
    const NAME: &'static str = "ConjugateKnownMean";
    const PARAMETRIZATIONS: &'static [(&'static str, &'static [&'static str])] =
        &[("", &["mean", "concentration", "scale"])];
}

impl LayerGaussian {
    /// Σᵢ log N(xᵢ; 0, 1/n) = −n/2 Σ xᵢ² + n/2 log n − n/2 log 2π
    pub fn log_prob_joint<D: Backend, T: Tape<D>>(x: Particles<D, T>) -> PerParticle<D, T> {
        let n = x.shape().1 as f32;
        x.square().sum::<(usize,), Axis<1>>() * (-0.5 * n) + n * (0.5 * n.ln() - HALF_LN_2PI)
    }
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

impl ConjugateKnownMean {
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
    use statrs::distribution::{Continuous, InverseGamma, Normal};

    const X: [f32; 3] = [0.4, -1.1, 0.9];

    fn eval(f: impl Fn(Particles<Cpu, NoneTape>) -> PerParticle<Cpu, NoneTape>) -> f64 {
        let dev = Cpu::default();
        f64::from(f(dev.tensor_from_vec(X.to_vec(), (1usize, 3usize))).as_vec()[0])
    }

    /// ∫ g(v) dv on a log grid: v = eᵗ, dv = v dt.
    fn integrate_log_v(g: impl Fn(f64) -> f64) -> f64 {
        let (lo, hi, n) = (-12.0f64, 8.0f64, 4000);
        let dt = (hi - lo) / n as f64;
        (0..=n)
            .map(|i| {
                let v = (lo + dt * i as f64).exp();
                let w = if i == 0 || i == n { 0.5 } else { 1.0 };
                w * g(v) * v * dt
            })
            .sum()
    }

    #[test]
    fn known_mean_marginal_matches_numerical_integration() {
        let (m, a0, b0) = (0.2f64, 2.5f64, 1.5f64);
        let got = eval(|x| ConjugateKnownMean::log_prob_joint(x, m as f32, a0 as f32, b0 as f32));
        let prior = InverseGamma::new(a0, b0).unwrap();
        let want = integrate_log_v(|v| {
            let lik: f64 = X
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

    #[test]
    fn normal_inverse_gamma_marginal_matches_numerical_integration() {
        let (mu0, k0, a0, b0) = (0.3f64, 2.0f64, 3.0f64, 2.0f64);
        let got = eval(|x| {
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
                    let lik: f64 = X
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

    #[test]
    fn layer_gaussian_is_the_product_of_normals_with_variance_one_over_n() {
        let got = eval(LayerGaussian::log_prob_joint);
        let sd = (1.0f64 / 3.0).sqrt();
        let want: f64 = X
            .iter()
            .map(|&x| Normal::new(0.0, sd).unwrap().ln_pdf(f64::from(x)))
            .sum();
        assert!((got - want).abs() < 1e-5, "{got} vs {want}");
    }
}
