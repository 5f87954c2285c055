//! The half-normal distribution |N(0, scale²)|.

use dfdx::shapes::Shape;
use ravi_backend::density::{ElementDensity, Moments};
use ravi_backend::math::ln;
use ravi_backend::program::Density;
use ravi_backend::{Backend, Tape};

use super::arg::{div, mul, sub, Arg, Value};
use super::consts::{HALF_LN_2PI, LN_2};
use super::{draw, noise, Distribution, Parametrization};

/// |N(0, scale²)|; support [0, ∞).
pub struct HalfNormal;

impl Distribution for HalfNormal {
    const NAME: &'static str = "HalfNormal";
    const PARAMETRIZATIONS: &'static [Parametrization] = &[Parametrization {
        suffix: "",
        params: &["scale"],
        host: Some(Density::Elementwise(&HalfNormal)),
        moments: Some(&HalfNormal),
    }];
}

impl HalfNormal {
    /// log 2 − log σ − ½ log 2π − ½ (x/σ)²
    pub fn log_prob<S: Shape, D: Backend, T: Tape<D>>(
        x: Value<S, D, T>,
        scale: Arg<S, D, T>,
    ) -> Value<S, D, T> {
        let z = div(x, scale.again());
        sub(z.square() * -0.5 + (LN_2 - HALF_LN_2PI), scale.ln())
    }

    /// scale |ε|
    pub fn rsample<S: Shape, D: Backend, T: Tape<D>>(
        dev: &D,
        shape: S,
        scale: Arg<S, D, T>,
    ) -> Value<S, D, T> {
        mul(noise::normal::<S, D, T>(dev, shape).abs(), scale)
    }
}

impl ElementDensity for HalfNormal {
    fn name(&self) -> &'static str {
        "HalfNormal"
    }

    fn element(&self, x: f32, a: [f32; 3]) -> (f32, [f32; 4]) {
        let s = a[0];
        let z = x / s;
        let lp = -0.5 * z * z + (LN_2 - HALF_LN_2PI) - ln(s);
        (lp, [-z / s, (z * z - 1.0) / s, 0.0, 0.0])
    }
}

impl Moments for HalfNormal {
    fn mean_variance(&self, a: [f64; 3]) -> (f64, f64) {
        let s = a[0];
        let two_over_pi = 2.0 / std::f64::consts::PI;
        (s * two_over_pi.sqrt(), s * s * (1.0 - two_over_pi))
    }

    fn draw(&self, a: [f64; 3], rng: &mut dyn rand::RngCore) -> f64 {
        (a[0] * draw::standard_normal(rng)).abs()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dist::check::{self, take, u, Reference};
    use dfdx::prelude::*;
    use statrs::distribution::{self as sd, Continuous};

    const REFERENCE: Reference = Reference {
        draw: |r| (u(r, 0.0, 6.0), vec![u(r, 0.2, 4.0)]),
        log_density: |x, p| 2f64.ln() + sd::Normal::new(0.0, p[0]).unwrap().ln_pdf(x),
        grad_x: true,
    };

    #[test]
    fn log_prob_matches_statrs() {
        check::graph_matches("HalfNormal", &REFERENCE, |x, a| {
            let (s, _, _, _) = take(a);
            HalfNormal::log_prob(x, s)
        });
    }

    #[test]
    fn host_density_matches_statrs() {
        check::host_matches("HalfNormal", &REFERENCE, &HalfNormal);
    }

    /// E|X| = σ√(2/π) and E X² = σ² for X ~ N(0, σ²), by quadrature of the reference.
    #[test]
    fn moments_match_quadrature() {
        check::moments_match("HalfNormal", &REFERENCE, &HalfNormal, |p| {
            check::quadrature_moments(REFERENCE.log_density, p, 0.0, 40.0 * p[0])
        });
    }

    #[test]
    fn draws_have_the_moments() {
        let dev = Cpu::seed_from_u64(3);
        let x =
            HalfNormal::rsample::<_, _, NoneTape>(&dev, (check::DRAWS,), Arg::Scalar(2.0)).as_vec();
        check::sample_moments(
            "HalfNormal",
            &x,
            HalfNormal.mean_variance([2.0, 0.0, 0.0]),
            4.0,
        );
    }

    #[test]
    fn draws_match_the_moments() {
        check::draws_match_moments("HalfNormal", &HalfNormal, &[[1.5, 0.0, 0.0]]);
    }
}
