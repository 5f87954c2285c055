//! The negative binomial distribution, by its mean and concentration (the gamma–Poisson
//! mixture: overdispersed counts).

use dfdx::shapes::Shape;
use ravi_backend::density::{elementwise, elementwise_with, ElementDensity, Moments, SitePass};
use ravi_backend::program::Density;
use ravi_backend::{Backend, Tape};
use statrs::function::gamma::{digamma, ln_gamma};

use super::arg::{add, mul, Arg, Value};
use super::special;
use super::{draw, Distribution, Parametrization};

/// Counts with mean μ = `mean` and variance μ + μ²/φ, φ = `concentration`:
/// p(x) = Γ(x + φ) / (Γ(φ) x!) (φ/(φ + μ))^φ (μ/(φ + μ))^x. As φ → ∞ it is Poisson(μ).
pub struct NegativeBinomial;

impl Distribution for NegativeBinomial {
    const NAME: &'static str = "NegativeBinomial";
    const PARAMETRIZATIONS: &'static [Parametrization] = &[Parametrization {
        suffix: "",
        params: &["mean", "concentration"],
        host: Some(Density::Elementwise(&NegativeBinomial)),
        moments: Some(&NegativeBinomial),
    }];
}

impl NegativeBinomial {
    /// log Γ(x + φ) − log Γ(φ) − log x! + φ log(φ/(φ + μ)) + x log(μ/(φ + μ))
    pub fn log_prob<S: Shape, D: Backend, T: Tape<D>>(
        x: Value<S, D, T>,
        mean: Arg<S, D, T>,
        concentration: Arg<S, D, T>,
    ) -> Value<S, D, T> {
        let phi = concentration;
        let log_total = mean.again().plus(phi.again()).ln();
        let log_p = phi.again().ln().minus(log_total.again());
        let log_q = mean.ln().minus(log_total);
        let counts = special::ln_gamma(add(x.retaped::<T>(), phi.again()))
            - special::ln_gamma(x.retaped::<T>() + 1.0);
        let norm = phi.again().times(log_p).minus(phi.lgamma());
        add(counts + mul(x, log_q), norm)
    }
}

/// log p without −log x! (the site's data term) and its partials [x, μ, φ, –], in f64;
/// `psi_phi` = Some(ψ(φ)) when the partial in φ is wanted, `lg_phi` = log Γ(φ).
#[inline(always)]
fn element_with(x: f32, mu: f32, phi: f32, lg_phi: f64, psi_phi: Option<f64>) -> (f32, [f32; 4]) {
    let (x, mu, phi) = (f64::from(x), f64::from(mu), f64::from(phi));
    let total = mu + phi;
    let log_total = total.ln();
    let log_p = phi.ln() - log_total;
    let lp = ln_gamma(x + phi) - lg_phi + phi * log_p + x * (mu.ln() - log_total);
    let d_mu = x / mu - (x + phi) / total;
    let d_phi = psi_phi.map_or(0.0, |psi| digamma(x + phi) - psi + log_p + (mu - x) / total);
    (lp as f32, [0.0, d_mu as f32, d_phi as f32, 0.0])
}

impl ElementDensity for NegativeBinomial {
    fn name(&self) -> &'static str {
        "NegativeBinomial"
    }

    /// The counts are data: their partial is never read, and −log x! is the data term.
    fn element(&self, x: f32, a: [f32; 3]) -> (f32, [f32; 4]) {
        let phi = f64::from(a[1]);
        element_with(x, a[0], a[1], ln_gamma(phi), Some(digamma(phi)))
    }

    fn data_term(&self, x: &[f32]) -> f64 {
        -x.iter().map(|&x| ln_gamma(f64::from(x) + 1.0)).sum::<f64>()
    }

    /// φ one number whose partial is not wanted (the usual case: a fixed dispersion): log
    /// Γ(φ) once, and no digamma per element.
    fn pass(&self, site: SitePass<'_>) -> f64 {
        let [_, phi, _] = site.args;
        if phi.len() != 1 || site.partials[2].is_some() {
            return elementwise(self, site);
        }
        let (phi, lg_phi) = (phi[0], ln_gamma(f64::from(phi[0])));
        elementwise_with(site, |x, a| element_with(x, a[0], phi, lg_phi, None))
    }
}

/// Mean μ, variance μ + μ²/φ.
impl Moments for NegativeBinomial {
    fn mean_variance(&self, a: [f64; 3]) -> (f64, f64) {
        let (mu, phi) = (a[0], a[1]);
        (mu, mu + mu * mu / phi)
    }

    fn draw(&self, a: [f64; 3], rng: &mut dyn rand::RngCore) -> f64 {
        // a Gamma(concentration, concentration / mean) rate, then Poisson counts
        let (mean, concentration) = (a[0], a[1]);
        draw::poisson(draw::gamma(concentration, rng) * mean / concentration, rng)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dist::check::{self, take, u, Reference};
    use rand::Rng;
    use statrs::distribution::{self as sd, Discrete};
    use statrs::statistics::DiscreteDistribution as _;

    /// statrs' NegativeBinomial(r, p) counts failures before the r-th success: r = φ,
    /// p = φ/(φ + μ).
    fn statrs_nb(p: &[f64]) -> sd::NegativeBinomial {
        sd::NegativeBinomial::new(p[1], p[1] / (p[1] + p[0])).unwrap()
    }

    const REFERENCE: Reference = Reference {
        draw: |r| {
            (
                f64::from(r.gen_range(0u32..40)),
                vec![u(r, 0.1, 30.0), u(r, 0.2, 30.0)],
            )
        },
        log_density: |x, p| statrs_nb(p).ln_pmf(x as u64),
        grad_x: false,
    };

    #[test]
    fn log_prob_matches_statrs() {
        check::graph_matches("NegativeBinomial", &REFERENCE, |x, a| {
            let (m, c, _, _) = take(a);
            NegativeBinomial::log_prob(x, m, c)
        });
    }

    #[test]
    fn host_density_matches_statrs() {
        check::host_matches("NegativeBinomial", &REFERENCE, &NegativeBinomial);
    }

    /// The pass with φ one number and its partial not wanted: the same values and μ
    /// partials as the elements.
    #[test]
    fn fixed_concentration_pass_matches_the_elements() {
        let x: Vec<f32> = (0..200).map(|i| (i % 37) as f32).collect();
        let mu: Vec<f32> = (0..200).map(|i| 0.1 + 0.15 * i as f32).collect();
        let phi = 2.5f32;
        let mut d_mu = vec![0.0f32; x.len()];
        let sum = NegativeBinomial.pass(SitePass {
            x: &x,
            args: [&mu, &[phi], &[0.0]],
            partials: [None, Some(&mut d_mu), None, None],
            weight: 0.5,
        });
        let mut want = 0.0f64;
        for i in 0..x.len() {
            let (lp, d) = NegativeBinomial.element(x[i], [mu[i], phi, 0.0]);
            want += f64::from(lp);
            assert!((d_mu[i] - 0.5 * d[1]).abs() <= 1e-5 * (1.0 + d[1].abs()));
        }
        assert!(
            (sum - want).abs() <= 1e-4 * (1.0 + want.abs()),
            "{sum} vs {want}"
        );
    }

    #[test]
    fn moments_match_statrs() {
        check::moments_match("NegativeBinomial", &REFERENCE, &NegativeBinomial, |p| {
            let d = statrs_nb(p);
            (d.mean().unwrap(), d.variance().unwrap())
        });
    }

    #[test]
    fn draws_match_the_moments() {
        check::draws_match_moments(
            "NegativeBinomial",
            &NegativeBinomial,
            &[[4.0, 2.0, 0.0], [0.5, 10.0, 0.0]],
        );
    }
}
