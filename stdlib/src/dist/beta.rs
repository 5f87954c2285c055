//! The beta distribution.

use dfdx::shapes::Shape;
use ravi_backend::density::{elementwise, elementwise_with, ElementDensity, Moments, SitePass};
use ravi_backend::math::ln;
use ravi_backend::program::Density;
use ravi_backend::{Backend, Tape};
use statrs::function::gamma::{digamma, ln_gamma};

use super::arg::{mul, sub, Arg, Value};
use super::{draw, Distribution, Parametrization};

/// The beta distribution, Beta(a, b); support (0, 1).
pub struct Beta;

impl Distribution for Beta {
    const NAME: &'static str = "Beta";
    const PARAMETRIZATIONS: &'static [Parametrization] = &[Parametrization {
        suffix: "",
        params: &["concentration1", "concentration0"],
        host: Some(Density::Elementwise(&Beta)),
        moments: Some(&Beta),
    }];
}

impl Beta {
    /// (a − 1) log x + (b − 1) log(1 − x) − log B(a, b)
    pub fn log_prob<S: Shape, D: Backend, T: Tape<D>>(
        x: Value<S, D, T>,
        concentration1: Arg<S, D, T>,
        concentration0: Arg<S, D, T>,
    ) -> Value<S, D, T> {
        let (a, b) = (concentration1, concentration0);
        let left = mul(x.retaped::<T>().ln(), a.again().add_scalar(-1.0));
        let right = mul((x.negate() + 1.0).ln(), b.again().add_scalar(-1.0));
        let log_beta = a
            .again()
            .lgamma()
            .plus(b.again().lgamma())
            .minus(a.plus(b).lgamma());
        sub(left + right, log_beta)
    }
}

/// What depends on (a, b) alone: log B(a, b), ψ(a + b) − ψ(a) and ψ(a + b) − ψ(b).
fn terms(a: f32, b: f32) -> [f32; 3] {
    let (a, b) = (f64::from(a), f64::from(b));
    let psi_ab = digamma(a + b);
    [
        (ln_gamma(a) + ln_gamma(b) - ln_gamma(a + b)) as f32,
        (psi_ab - digamma(a)) as f32,
        (psi_ab - digamma(b)) as f32,
    ]
}

#[inline(always)]
fn element_with(x: f32, a: f32, b: f32, [log_beta, da, db]: [f32; 3]) -> (f32, [f32; 4]) {
    let (lx, l1x) = (ln(x), ln(1.0 - x));
    let lp = (a - 1.0) * lx + (b - 1.0) * l1x - log_beta;
    (
        lp,
        [
            (a - 1.0) / x - (b - 1.0) / (1.0 - x),
            lx + da,
            l1x + db,
            0.0,
        ],
    )
}

impl ElementDensity for Beta {
    fn name(&self) -> &'static str {
        "Beta"
    }

    fn element(&self, x: f32, a: [f32; 3]) -> (f32, [f32; 4]) {
        element_with(x, a[0], a[1], terms(a[0], a[1]))
    }

    /// Both concentrations numbers (the usual prior): the normalizer and digammas once.
    fn pass(&self, site: SitePass<'_>) -> f64 {
        let [a, b, _] = site.args;
        if a.len() != 1 || b.len() != 1 {
            return elementwise(self, site);
        }
        let (a, b) = (a[0], b[0]);
        let t = terms(a, b);
        elementwise_with(site, |x, _| element_with(x, a, b, t))
    }

    fn prior_pass(&self, z: &[f32], a: [f32; 3], weight: f32, g: &mut [f32]) -> f64 {
        let t = terms(a[0], a[1]);
        let mut sum = 0.0f64;
        for (&z, g) in z.iter().zip(g) {
            let (lp, d) = element_with(z, a[0], a[1], t);
            sum += f64::from(lp);
            *g += weight * d[0];
        }
        sum
    }
}

impl Moments for Beta {
    fn mean_variance(&self, a: [f64; 3]) -> (f64, f64) {
        let (a, b) = (a[0], a[1]);
        let s = a + b;
        (a / s, a * b / (s * s * (s + 1.0)))
    }

    fn draw(&self, a: [f64; 3], rng: &mut dyn rand::RngCore) -> f64 {
        draw::beta(a[0], a[1], rng)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dist::check::{self, take, u, Reference};
    use statrs::distribution::{self as sd, Continuous};
    use statrs::statistics::Distribution as _;

    const REFERENCE: Reference = Reference {
        draw: |r| (u(r, 0.02, 0.98), vec![u(r, 0.3, 10.0), u(r, 0.3, 10.0)]),
        log_density: |x, p| sd::Beta::new(p[0], p[1]).unwrap().ln_pdf(x),
        grad_x: true,
    };

    #[test]
    fn log_prob_matches_statrs() {
        check::graph_matches("Beta", &REFERENCE, |x, a| {
            let (c1, c0, _, _) = take(a);
            Beta::log_prob(x, c1, c0)
        });
    }

    #[test]
    fn host_density_matches_statrs() {
        check::host_matches("Beta", &REFERENCE, &Beta);
    }

    #[test]
    fn moments_match_statrs() {
        check::moments_match("Beta", &REFERENCE, &Beta, |p| {
            let d = sd::Beta::new(p[0], p[1]).unwrap();
            (d.mean().unwrap(), d.variance().unwrap())
        });
    }

    #[test]
    fn draws_match_the_moments() {
        check::draws_match_moments("Beta", &Beta, &[[0.5, 0.5, 0.0], [3.0, 7.0, 0.0]]);
    }
}
