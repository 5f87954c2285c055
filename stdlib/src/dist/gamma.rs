//! The gamma distribution.

use dfdx::shapes::Shape;
use ravi_backend::density::{elementwise, elementwise_with, ElementDensity, Moments, SitePass};
use ravi_backend::math::ln;
use ravi_backend::program::Density;
use ravi_backend::{Backend, Tape};
use statrs::function::gamma::{digamma, ln_gamma};

use super::arg::{add, mul, Arg, Value};
use super::{draw, Distribution, Parametrization};

/// The gamma distribution (shape α = concentration, rate β); support (0, ∞).
pub struct Gamma;

impl Distribution for Gamma {
    const NAME: &'static str = "Gamma";
    const PARAMETRIZATIONS: &'static [Parametrization] = &[Parametrization {
        suffix: "",
        params: &["concentration", "rate"],
        host: Some(Density::Elementwise(&Gamma)),
        moments: Some(&Gamma),
    }];
}

impl Gamma {
    /// α log β + (α − 1) log x − β x − log Γ(α)
    pub fn log_prob<S: Shape, D: Backend, T: Tape<D>>(
        x: Value<S, D, T>,
        concentration: Arg<S, D, T>,
        rate: Arg<S, D, T>,
    ) -> Value<S, D, T> {
        let a = concentration;
        let power = mul(x.retaped::<T>().ln(), a.again().add_scalar(-1.0));
        let norm = a.again().times(rate.again().ln()).minus(a.lgamma());
        add(power - mul(x, rate), norm)
    }
}

/// log Γ(α) and ψ(α) in f64 (once per pass when α is one number).
pub(crate) fn concentration_terms(alpha: f32) -> (f32, f32) {
    let a = f64::from(alpha);
    (ln_gamma(a) as f32, digamma(a) as f32)
}

#[inline(always)]
fn element_with(x: f32, alpha: f32, beta: f32, (lg, psi): (f32, f32)) -> (f32, [f32; 4]) {
    let (lx, lb) = (ln(x), ln(beta));
    let lp = alpha * lb + (alpha - 1.0) * lx - beta * x - lg;
    (
        lp,
        [
            (alpha - 1.0) / x - beta,
            lb + lx - psi,
            alpha / beta - x,
            0.0,
        ],
    )
}

impl ElementDensity for Gamma {
    fn name(&self) -> &'static str {
        "Gamma"
    }

    fn element(&self, x: f32, a: [f32; 3]) -> (f32, [f32; 4]) {
        element_with(x, a[0], a[1], concentration_terms(a[0]))
    }

    /// α one number (the usual case): log Γ(α) and ψ(α) once.
    fn pass(&self, site: SitePass<'_>) -> f64 {
        let alpha = site.args[0];
        if alpha.len() != 1 {
            return elementwise(self, site);
        }
        let (alpha, terms) = (alpha[0], concentration_terms(alpha[0]));
        elementwise_with(site, |x, a| element_with(x, alpha, a[1], terms))
    }

    fn prior_pass(&self, z: &[f32], a: [f32; 3], weight: f32, g: &mut [f32]) -> f64 {
        let terms = concentration_terms(a[0]);
        let mut sum = 0.0f64;
        for (&z, g) in z.iter().zip(g) {
            let (lp, d) = element_with(z, a[0], a[1], terms);
            sum += f64::from(lp);
            *g += weight * d[0];
        }
        sum
    }
}

impl Moments for Gamma {
    fn mean_variance(&self, a: [f64; 3]) -> (f64, f64) {
        (a[0] / a[1], a[0] / (a[1] * a[1]))
    }

    fn draw(&self, a: [f64; 3], rng: &mut dyn rand::RngCore) -> f64 {
        draw::gamma(a[0], rng) / a[1]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dist::check::{self, take, u, Reference};
    use statrs::distribution::{self as sd, Continuous};
    use statrs::statistics::Distribution as _;

    const REFERENCE: Reference = Reference {
        draw: |r| (u(r, 0.05, 10.0), vec![u(r, 0.3, 10.0), u(r, 0.2, 5.0)]),
        log_density: |x, p| sd::Gamma::new(p[0], p[1]).unwrap().ln_pdf(x),
        grad_x: true,
    };

    #[test]
    fn log_prob_matches_statrs() {
        check::graph_matches("Gamma", &REFERENCE, |x, a| {
            let (c, rt, _, _) = take(a);
            Gamma::log_prob(x, c, rt)
        });
    }

    #[test]
    fn host_density_matches_statrs() {
        check::host_matches("Gamma", &REFERENCE, &Gamma);
    }

    #[test]
    fn moments_match_statrs() {
        check::moments_match("Gamma", &REFERENCE, &Gamma, |p| {
            let d = sd::Gamma::new(p[0], p[1]).unwrap();
            (d.mean().unwrap(), d.variance().unwrap())
        });
    }

    #[test]
    fn draws_match_the_moments() {
        check::draws_match_moments("Gamma", &Gamma, &[[0.5, 2.0, 0.0], [7.0, 0.5, 0.0]]);
    }
}
