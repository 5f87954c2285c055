//! The Poisson distribution.

use dfdx::shapes::Shape;
use ravi_backend::density::{ElementDensity, Moments};
use ravi_backend::math::ln;
use ravi_backend::program::Density;
use ravi_backend::{Backend, Tape};

use super::arg::{mul, sub, Arg, Value};
use super::special::ln_gamma;
use super::{draw, Distribution, Parametrization};

/// Counts with mean `rate`.
pub struct Poisson;

impl Distribution for Poisson {
    const NAME: &'static str = "Poisson";
    const PARAMETRIZATIONS: &'static [Parametrization] = &[Parametrization {
        suffix: "",
        params: &["rate"],
        host: Some(Density::Elementwise(&Poisson)),
        moments: Some(&Poisson),
    }];
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

impl ElementDensity for Poisson {
    fn name(&self) -> &'static str {
        "Poisson"
    }

    /// x log λ − λ; the counts are data, so −log x! is the site's data term.
    fn element(&self, x: f32, a: [f32; 3]) -> (f32, [f32; 4]) {
        let r = a[0];
        (x * ln(r) - r, [0.0, x / r - 1.0, 0.0, 0.0])
    }

    fn data_term(&self, x: &[f32]) -> f64 {
        -x.iter()
            .map(|&x| statrs::function::gamma::ln_gamma(f64::from(x) + 1.0))
            .sum::<f64>()
    }
}

impl Moments for Poisson {
    fn mean_variance(&self, a: [f64; 3]) -> (f64, f64) {
        (a[0], a[0])
    }

    fn draw(&self, a: [f64; 3], rng: &mut dyn rand::RngCore) -> f64 {
        draw::poisson(a[0], rng)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dist::check::{self, take, u, Reference};
    use rand::Rng;
    use statrs::distribution::{self as sd, Discrete};
    use statrs::statistics::Distribution as _;

    const REFERENCE: Reference = Reference {
        draw: |r| (f64::from(r.gen_range(0u32..40)), vec![u(r, 0.1, 30.0)]),
        log_density: |x, p| sd::Poisson::new(p[0]).unwrap().ln_pmf(x as u64),
        grad_x: false,
    };

    #[test]
    fn log_prob_matches_statrs() {
        check::graph_matches("Poisson", &REFERENCE, |x, a| {
            let (l, _, _, _) = take(a);
            Poisson::log_prob(x, l)
        });
    }

    #[test]
    fn host_density_matches_statrs() {
        check::host_matches("Poisson", &REFERENCE, &Poisson);
    }

    #[test]
    fn moments_match_statrs() {
        check::moments_match("Poisson", &REFERENCE, &Poisson, |p| {
            let d = sd::Poisson::new(p[0]).unwrap();
            (d.mean().unwrap(), d.variance().unwrap())
        });
    }

    #[test]
    fn draws_match_the_moments() {
        check::draws_match_moments("Poisson", &Poisson, &[[0.3, 0.0, 0.0], [25.0, 0.0, 0.0]]);
    }
}
