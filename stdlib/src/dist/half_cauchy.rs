//! The half-Cauchy distribution |Cauchy(0, scale)|.

use dfdx::shapes::Shape;
use ravi_backend::density::{ElementDensity, Moments};
use ravi_backend::math::ln;
use ravi_backend::program::Density;
use ravi_backend::{Backend, Tape};

use super::arg::{div, mul, sub, Arg, Value};
use super::consts::{LN_2, LN_PI};
use super::{draw, noise, Distribution, Parametrization};

/// |Cauchy(0, scale)|; support [0, ∞). A common prior for a scale: no mean.
pub struct HalfCauchy;

impl Distribution for HalfCauchy {
    const NAME: &'static str = "HalfCauchy";
    const PARAMETRIZATIONS: &'static [Parametrization] = &[Parametrization {
        suffix: "",
        params: &["scale"],
        host: Some(Density::Elementwise(&HalfCauchy)),
        moments: Some(&HalfCauchy),
    }];
}

impl HalfCauchy {
    /// log 2 − log π − log σ − log(1 + (x/σ)²)
    pub fn log_prob<S: Shape, D: Backend, T: Tape<D>>(
        x: Value<S, D, T>,
        scale: Arg<S, D, T>,
    ) -> Value<S, D, T> {
        let z = div(x, scale.again());
        sub(
            (z.square() + 1.0).ln().negate() + (LN_2 - LN_PI),
            scale.ln(),
        )
    }

    /// scale |tan(π(u − ½))|
    pub fn rsample<S: Shape, D: Backend, T: Tape<D>>(
        dev: &D,
        shape: S,
        scale: Arg<S, D, T>,
    ) -> Value<S, D, T> {
        mul(noise::cauchy::<S, D, T>(dev, shape).abs(), scale)
    }
}

impl ElementDensity for HalfCauchy {
    fn name(&self) -> &'static str {
        "HalfCauchy"
    }

    fn element(&self, x: f32, a: [f32; 3]) -> (f32, [f32; 4]) {
        let s = a[0];
        let z = x / s;
        let q = 1.0 + z * z;
        let lp = -ln(q) + (LN_2 - LN_PI) - ln(s);
        let dz = -2.0 * z / q; // d lp / dz
        (lp, [dz / s, -(dz * z + 1.0) / s, 0.0, 0.0])
    }
}

/// Its mean and variance are infinite.
impl Moments for HalfCauchy {
    fn mean_variance(&self, _: [f64; 3]) -> (f64, f64) {
        (f64::INFINITY, f64::INFINITY)
    }

    fn draw(&self, a: [f64; 3], rng: &mut dyn rand::RngCore) -> f64 {
        (a[0] * draw::standard_cauchy(rng)).abs()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dist::check::{self, take, u, Reference};
    use dfdx::prelude::*;
    use statrs::distribution::{self as sd, Continuous};

    const REFERENCE: Reference = Reference {
        draw: |r| (u(r, 0.0, 20.0), vec![u(r, 0.2, 6.0)]),
        log_density: |x, p| 2f64.ln() + sd::Cauchy::new(0.0, p[0]).unwrap().ln_pdf(x),
        grad_x: true,
    };

    #[test]
    fn log_prob_matches_statrs() {
        check::graph_matches("HalfCauchy", &REFERENCE, |x, a| {
            let (s, _, _, _) = take(a);
            HalfCauchy::log_prob(x, s)
        });
    }

    #[test]
    fn host_density_matches_statrs() {
        check::host_matches("HalfCauchy", &REFERENCE, &HalfCauchy);
    }

    /// No moments; the median of the draws is the scale.
    #[test]
    fn draws_have_the_median() {
        let dev = Cpu::seed_from_u64(3);
        let x =
            HalfCauchy::rsample::<_, _, NoneTape>(&dev, (check::DRAWS,), Arg::Scalar(1.5)).as_vec();
        let median = check::quantile(&x, 0.5);
        assert!((median - 1.5).abs() < 0.02, "{median}");
        assert_eq!(HalfCauchy.mean_variance([1.5, 0.0, 0.0]).0, f64::INFINITY);
    }

    #[test]
    fn draws_match_the_moments() {
        use statrs::distribution::ContinuousCDF;
        let c = sd::Cauchy::new(0.0, 2.0).unwrap();
        // |X| for X ~ Cauchy(0, s): P(|X| ≤ x) = 2F(x) − 1
        check::draws_match_quartiles(
            "HalfCauchy",
            &HalfCauchy,
            [2.0, 0.0, 0.0],
            |q| c.inverse_cdf((q + 1.0) / 2.0),
            |x| 2.0 * c.cdf(x) - 1.0,
        );
    }
}
