//! The Laplace (double exponential) distribution.

use dfdx::shapes::Shape;
use ravi_backend::density::{ElementDensity, Moments};
use ravi_backend::math::ln;
use ravi_backend::program::Density;
use ravi_backend::{Backend, Tape};

use super::arg::{add, div, mul, sub, Arg, Value};
use super::consts::LN_2;
use super::{draw, noise, Distribution, Parametrization};

/// The Laplace (double exponential) distribution; support ℝ.
pub struct Laplace;

impl Distribution for Laplace {
    const NAME: &'static str = "Laplace";
    const PARAMETRIZATIONS: &'static [Parametrization] = &[Parametrization {
        suffix: "",
        params: &["loc", "scale"],
        host: Some(Density::Elementwise(&Laplace)),
        moments: Some(&Laplace),
    }];
}

impl Laplace {
    /// −log 2σ − |x − μ|/σ
    pub fn log_prob<S: Shape, D: Backend, T: Tape<D>>(
        x: Value<S, D, T>,
        loc: Arg<S, D, T>,
        scale: Arg<S, D, T>,
    ) -> Value<S, D, T> {
        let z = div(sub(x, loc), scale.again());
        sub(z.abs().negate() - LN_2, scale.ln())
    }

    /// loc − scale sign(v) log(1 − 2|v|), v = u − ½
    pub fn rsample<S: Shape, D: Backend, T: Tape<D>>(
        dev: &D,
        shape: S,
        loc: Arg<S, D, T>,
        scale: Arg<S, D, T>,
    ) -> Value<S, D, T> {
        let v = noise::uniform::<S, D, T>(dev, shape) - 0.5;
        let magnitude = v.retaped::<T>().abs();
        let sign = v / magnitude.retaped::<T>();
        let noise = sign * (magnitude * -2.0 + 1.0).ln().negate();
        add(mul(noise, scale), loc)
    }
}

impl ElementDensity for Laplace {
    fn name(&self) -> &'static str {
        "Laplace"
    }

    fn element(&self, x: f32, a: [f32; 3]) -> (f32, [f32; 4]) {
        let (m, s) = (a[0], a[1]);
        let z = (x - m) / s;
        let sign = if z > 0.0 {
            1.0
        } else if z < 0.0 {
            -1.0
        } else {
            0.0
        };
        let lp = -z.abs() - LN_2 - ln(s);
        (lp, [-sign / s, sign / s, (z.abs() - 1.0) / s, 0.0])
    }
}

impl Moments for Laplace {
    fn mean_variance(&self, a: [f64; 3]) -> (f64, f64) {
        (a[0], 2.0 * a[1] * a[1])
    }

    fn draw(&self, a: [f64; 3], rng: &mut dyn rand::RngCore) -> f64 {
        // the inverse CDF at u ∈ (−½, ½)
        let u = draw::uniform(rng) - 0.5;
        a[0] - a[1] * u.signum() * (1.0 - 2.0 * u.abs()).ln()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dist::check::{self, take, u, Reference};
    use dfdx::prelude::*;
    use statrs::distribution::{self as sd, Continuous};
    use statrs::statistics::Distribution as _;

    const REFERENCE: Reference = Reference {
        draw: |r| (u(r, -8.0, 8.0), vec![u(r, -3.0, 3.0), u(r, 0.2, 4.0)]),
        log_density: |x, p| sd::Laplace::new(p[0], p[1]).unwrap().ln_pdf(x),
        grad_x: true,
    };

    #[test]
    fn log_prob_matches_statrs() {
        check::graph_matches("Laplace", &REFERENCE, |x, a| {
            let (l, s, _, _) = take(a);
            Laplace::log_prob(x, l, s)
        });
    }

    #[test]
    fn host_density_matches_statrs() {
        check::host_matches("Laplace", &REFERENCE, &Laplace);
    }

    #[test]
    fn moments_match_statrs() {
        check::moments_match("Laplace", &REFERENCE, &Laplace, |p| {
            let d = sd::Laplace::new(p[0], p[1]).unwrap();
            (d.mean().unwrap(), d.variance().unwrap())
        });
    }

    #[test]
    fn draws_have_the_moments() {
        let dev = Cpu::seed_from_u64(3);
        let x = Laplace::rsample::<_, _, NoneTape>(
            &dev,
            (check::DRAWS,),
            Arg::Scalar(-1.0),
            Arg::Scalar(0.5),
        )
        .as_vec();
        check::sample_moments("Laplace", &x, Laplace.mean_variance([-1.0, 0.5, 0.0]), 6.0);
    }

    #[test]
    fn draws_match_the_moments() {
        check::draws_match_moments("Laplace", &Laplace, &[[0.5, 1.5, 0.0]]);
    }
}
