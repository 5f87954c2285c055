//! The log-normal distribution: exp of N(loc, scale²).

use dfdx::shapes::Shape;
use ravi_backend::density::{ElementDensity, Moments};
use ravi_backend::math::ln;
use ravi_backend::program::Density;
use ravi_backend::{Backend, Tape};

use super::arg::{div, sub, Arg, Value};
use super::consts::HALF_LN_2PI;
use super::{draw, Distribution, Normal, Parametrization};

/// exp of N(loc, scale²); support (0, ∞).
pub struct LogNormal;

impl Distribution for LogNormal {
    const NAME: &'static str = "LogNormal";
    const PARAMETRIZATIONS: &'static [Parametrization] = &[Parametrization {
        suffix: "",
        params: &["loc", "scale"],
        host: Some(Density::Elementwise(&LogNormal)),
        moments: Some(&LogNormal),
    }];
}

impl LogNormal {
    /// −log x − log σ − ½ log 2π − ½ ((log x − μ)/σ)²
    pub fn log_prob<S: Shape, D: Backend, T: Tape<D>>(
        x: Value<S, D, T>,
        loc: Arg<S, D, T>,
        scale: Arg<S, D, T>,
    ) -> Value<S, D, T> {
        let log_x = x.ln();
        let z = div(sub(log_x.retaped::<T>(), loc), scale.again());
        sub(z.square() * -0.5 - log_x - HALF_LN_2PI, scale.ln())
    }

    /// exp(loc + scale ε)
    pub fn rsample<S: Shape, D: Backend, T: Tape<D>>(
        dev: &D,
        shape: S,
        loc: Arg<S, D, T>,
        scale: Arg<S, D, T>,
    ) -> Value<S, D, T> {
        Normal::rsample(dev, shape, loc, scale).exp()
    }
}

impl ElementDensity for LogNormal {
    fn name(&self) -> &'static str {
        "LogNormal"
    }

    fn element(&self, x: f32, a: [f32; 3]) -> (f32, [f32; 4]) {
        let (m, s) = (a[0], a[1]);
        let lx = ln(x);
        let z = (lx - m) / s;
        let lp = -0.5 * z * z - lx - HALF_LN_2PI - ln(s);
        (lp, [(-z / s - 1.0) / x, z / s, (z * z - 1.0) / s, 0.0])
    }
}

impl Moments for LogNormal {
    fn mean_variance(&self, a: [f64; 3]) -> (f64, f64) {
        let (m, s2) = (a[0], a[1] * a[1]);
        ((m + 0.5 * s2).exp(), s2.exp_m1() * (2.0 * m + s2).exp())
    }

    fn draw(&self, a: [f64; 3], rng: &mut dyn rand::RngCore) -> f64 {
        (a[0] + a[1] * draw::standard_normal(rng)).exp()
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
        draw: |r| (u(r, 0.05, 8.0), vec![u(r, -1.0, 1.0), u(r, 0.2, 2.0)]),
        log_density: |x, p| sd::LogNormal::new(p[0], p[1]).unwrap().ln_pdf(x),
        grad_x: true,
    };

    #[test]
    fn log_prob_matches_statrs() {
        check::graph_matches("LogNormal", &REFERENCE, |x, a| {
            let (l, s, _, _) = take(a);
            LogNormal::log_prob(x, l, s)
        });
    }

    #[test]
    fn host_density_matches_statrs() {
        check::host_matches("LogNormal", &REFERENCE, &LogNormal);
    }

    #[test]
    fn moments_match_statrs() {
        check::moments_match("LogNormal", &REFERENCE, &LogNormal, |p| {
            let d = sd::LogNormal::new(p[0], p[1]).unwrap();
            (d.mean().unwrap(), d.variance().unwrap())
        });
    }

    #[test]
    fn draws_have_the_moments() {
        let dev = Cpu::seed_from_u64(3);
        let x = LogNormal::rsample::<_, _, NoneTape>(
            &dev,
            (check::DRAWS,),
            Arg::Scalar(0.2),
            Arg::Scalar(0.3),
        )
        .as_vec();
        // kurtosis of a log-normal: e^(4σ²) + 2e^(3σ²) + 3e^(2σ²) − 3
        let k =
            (4.0f64 * 0.09).exp() + 2.0 * (3.0f64 * 0.09).exp() + 3.0 * (2.0f64 * 0.09).exp() - 3.0;
        check::sample_moments("LogNormal", &x, LogNormal.mean_variance([0.2, 0.3, 0.0]), k);
    }

    #[test]
    fn draws_match_the_moments() {
        check::draws_match_moments(
            "LogNormal",
            &LogNormal,
            &[[0.2, 0.5, 0.0], [-1.0, 0.2, 0.0]],
        );
    }
}
