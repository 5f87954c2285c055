//! The Cauchy distribution.

use dfdx::shapes::Shape;
use ravi_backend::density::{ElementDensity, Moments};
use ravi_backend::math::ln;
use ravi_backend::program::Density;
use ravi_backend::{Backend, Tape};

use super::arg::{add, div, mul, sub, Arg, Value};
use super::consts::LN_PI;
use super::{draw, noise, Distribution, Parametrization};

/// The Cauchy distribution; support ℝ. No mean, no variance.
pub struct Cauchy;

impl Distribution for Cauchy {
    const NAME: &'static str = "Cauchy";
    const PARAMETRIZATIONS: &'static [Parametrization] = &[Parametrization {
        suffix: "",
        params: &["loc", "scale"],
        host: Some(Density::Elementwise(&Cauchy)),
        moments: Some(&Cauchy),
    }];
}

impl Cauchy {
    /// −log π − log σ − log(1 + ((x − μ)/σ)²)
    pub fn log_prob<S: Shape, D: Backend, T: Tape<D>>(
        x: Value<S, D, T>,
        loc: Arg<S, D, T>,
        scale: Arg<S, D, T>,
    ) -> Value<S, D, T> {
        let z = div(sub(x, loc), scale.again());
        sub((z.square() + 1.0).ln().negate() - LN_PI, scale.ln())
    }

    /// loc + scale tan(π(u − ½))
    pub fn rsample<S: Shape, D: Backend, T: Tape<D>>(
        dev: &D,
        shape: S,
        loc: Arg<S, D, T>,
        scale: Arg<S, D, T>,
    ) -> Value<S, D, T> {
        add(mul(noise::cauchy(dev, shape), scale), loc)
    }
}

impl ElementDensity for Cauchy {
    fn name(&self) -> &'static str {
        "Cauchy"
    }

    fn element(&self, x: f32, a: [f32; 3]) -> (f32, [f32; 4]) {
        let (m, s) = (a[0], a[1]);
        let z = (x - m) / s;
        let q = 1.0 + z * z;
        let lp = -ln(q) - LN_PI - ln(s);
        let dz = -2.0 * z / q; // d lp / dz
        (lp, [dz / s, -dz / s, -(dz * z + 1.0) / s, 0.0])
    }
}

/// Neither moment exists (the predictive reports NaN).
impl Moments for Cauchy {
    fn mean_variance(&self, _: [f64; 3]) -> (f64, f64) {
        (f64::NAN, f64::NAN)
    }

    fn draw(&self, a: [f64; 3], rng: &mut dyn rand::RngCore) -> f64 {
        a[0] + a[1] * draw::standard_cauchy(rng)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dist::check::{self, take, u, Reference};
    use dfdx::prelude::*;
    use statrs::distribution::{self as sd, Continuous};

    const REFERENCE: Reference = Reference {
        draw: |r| (u(r, -20.0, 20.0), vec![u(r, -3.0, 3.0), u(r, 0.2, 6.0)]),
        log_density: |x, p| sd::Cauchy::new(p[0], p[1]).unwrap().ln_pdf(x),
        grad_x: true,
    };

    #[test]
    fn log_prob_matches_statrs() {
        check::graph_matches("Cauchy", &REFERENCE, |x, a| {
            let (l, s, _, _) = take(a);
            Cauchy::log_prob(x, l, s)
        });
    }

    #[test]
    fn host_density_matches_statrs() {
        check::host_matches("Cauchy", &REFERENCE, &Cauchy);
    }

    /// No moments: the quartiles of Cauchy(loc, scale) are loc ± scale.
    #[test]
    fn draws_have_the_quartiles() {
        let dev = Cpu::seed_from_u64(3);
        let x = Cauchy::rsample::<_, _, NoneTape>(
            &dev,
            (check::DRAWS,),
            Arg::Scalar(0.5),
            Arg::Scalar(2.0),
        )
        .as_vec();
        for (q, want) in [(0.25, -1.5), (0.5, 0.5), (0.75, 2.5)] {
            let got = check::quantile(&x, q);
            assert!((got - want).abs() < 0.03, "q{q}: {got}");
        }
        assert!(Cauchy.mean_variance([0.5, 2.0, 0.0]).0.is_nan());
    }

    #[test]
    fn draws_match_the_moments() {
        let a = [1.0, 2.0, 0.0];
        use statrs::distribution::ContinuousCDF;
        let c = sd::Cauchy::new(a[0], a[1]).unwrap();
        check::draws_match_quartiles("Cauchy", &Cauchy, a, |q| c.inverse_cdf(q), |x| c.cdf(x));
    }
}
