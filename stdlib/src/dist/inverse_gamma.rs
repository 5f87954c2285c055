//! The inverse-gamma distribution.

use dfdx::shapes::Shape;
use ravi_backend::density::{elementwise, elementwise_with, ElementDensity, Moments, SitePass};
use ravi_backend::math::ln;
use ravi_backend::program::Density;
use ravi_backend::{Backend, Tape};

use super::arg::{add, mul, Arg, Value};
use super::gamma::concentration_terms;
use super::{draw, Distribution, Parametrization};

/// 1/Gamma(α, β): density ∝ x^(−α−1) e^(−β/x); support (0, ∞).
pub struct InverseGamma;

impl Distribution for InverseGamma {
    const NAME: &'static str = "InverseGamma";
    const PARAMETRIZATIONS: &'static [Parametrization] = &[Parametrization {
        suffix: "",
        params: &["concentration", "scale"],
        host: Some(Density::Elementwise(&InverseGamma)),
        moments: Some(&InverseGamma),
    }];
}

impl InverseGamma {
    /// α log β − (α + 1) log x − β/x − log Γ(α)
    pub fn log_prob<S: Shape, D: Backend, T: Tape<D>>(
        x: Value<S, D, T>,
        concentration: Arg<S, D, T>,
        scale: Arg<S, D, T>,
    ) -> Value<S, D, T> {
        let a = concentration;
        let power = mul(x.retaped::<T>().ln(), a.again().add_scalar(1.0));
        let norm = a.again().times(scale.again().ln()).minus(a.lgamma());
        add(power.negate() - mul(x.recip(), scale), norm)
    }
}

#[inline(always)]
fn element_with(x: f32, alpha: f32, beta: f32, (lg, psi): (f32, f32)) -> (f32, [f32; 4]) {
    let (lx, lb) = (ln(x), ln(beta));
    let lp = alpha * lb - (alpha + 1.0) * lx - beta / x - lg;
    (
        lp,
        [
            -(alpha + 1.0) / x + beta / (x * x),
            lb - lx - psi,
            alpha / beta - 1.0 / x,
            0.0,
        ],
    )
}

impl ElementDensity for InverseGamma {
    fn name(&self) -> &'static str {
        "InverseGamma"
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

/// Mean β/(α − 1) for α > 1, variance β²/((α − 1)²(α − 2)) for α > 2; infinite below.
impl Moments for InverseGamma {
    fn mean_variance(&self, a: [f64; 3]) -> (f64, f64) {
        let (alpha, beta) = (a[0], a[1]);
        let mean = if alpha > 1.0 {
            beta / (alpha - 1.0)
        } else {
            f64::INFINITY
        };
        let var = if alpha > 2.0 {
            beta * beta / ((alpha - 1.0).powi(2) * (alpha - 2.0))
        } else {
            f64::INFINITY
        };
        (mean, var)
    }

    fn draw(&self, a: [f64; 3], rng: &mut dyn rand::RngCore) -> f64 {
        a[1] / draw::gamma(a[0], rng)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dist::check::{self, take, u, Reference};
    use statrs::distribution::{self as sd, Continuous};
    use statrs::statistics::Distribution as _;

    const REFERENCE: Reference = Reference {
        draw: |r| (u(r, 0.1, 10.0), vec![u(r, 0.3, 10.0), u(r, 0.2, 5.0)]),
        log_density: |x, p| sd::InverseGamma::new(p[0], p[1]).unwrap().ln_pdf(x),
        grad_x: true,
    };

    #[test]
    fn log_prob_matches_statrs() {
        check::graph_matches("InverseGamma", &REFERENCE, |x, a| {
            let (c, s, _, _) = take(a);
            InverseGamma::log_prob(x, c, s)
        });
    }

    #[test]
    fn host_density_matches_statrs() {
        check::host_matches("InverseGamma", &REFERENCE, &InverseGamma);
    }

    /// statrs has the mean for α > 1 and the variance for α > 2.
    #[test]
    fn moments_match_statrs() {
        check::moments_match("InverseGamma", &REFERENCE, &InverseGamma, |p| {
            let d = sd::InverseGamma::new(p[0], p[1]).unwrap();
            let mean = if p[0] > 1.0 {
                d.mean().unwrap()
            } else {
                f64::INFINITY
            };
            let var = if p[0] > 2.0 {
                d.variance().unwrap()
            } else {
                f64::INFINITY
            };
            (mean, var)
        });
    }

    #[test]
    fn draws_match_the_moments() {
        check::draws_match_moments(
            "InverseGamma",
            &InverseGamma,
            &[[9.0, 2.0, 0.0], [12.0, 5.0, 0.0]],
        );
    }
}
