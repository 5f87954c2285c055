//! The uniform distribution on (low, high).

use dfdx::prelude::*;
use dfdx::shapes::Shape;
use ravi_backend::density::{ElementDensity, Moments};
use ravi_backend::math::ln;
use ravi_backend::program::Density;
use ravi_backend::{Backend, Tape};

use super::arg::{add, mul, sub, Arg, Value};
use super::{draw, noise, Distribution, Parametrization};

/// The uniform distribution on (low, high).
pub struct Uniform;

impl Distribution for Uniform {
    const NAME: &'static str = "Uniform";
    const PARAMETRIZATIONS: &'static [Parametrization] = &[Parametrization {
        suffix: "",
        params: &["low", "high"],
        host: Some(Density::Elementwise(&Uniform)),
        moments: Some(&Uniform),
    }];
}

impl Uniform {
    /// −log(high − low) inside (low, high), −∞ outside. The indicator is flat inside, so
    /// it carries no gradient; it is read on the host.
    pub fn log_prob<S: Shape, D: Backend, T: Tape<D>>(
        x: Value<S, D, T>,
        low: Arg<S, D, T>,
        high: Arg<S, D, T>,
    ) -> Value<S, D, T> {
        let values = |a: &Arg<S, D, T>, n: usize| match a {
            Arg::Scalar(c) => vec![*c; n],
            Arg::Tensor(t) => t.as_vec(),
        };
        let xs = x.as_vec();
        let (lo, hi) = (values(&low, xs.len()), values(&high, xs.len()));
        let outside: Vec<f32> = (0..xs.len())
            .map(|i| {
                if xs[i] > lo[i] && xs[i] < hi[i] {
                    0.0
                } else {
                    f32::NEG_INFINITY
                }
            })
            .collect();
        let outside = x.device().tensor_from_vec(outside, *x.shape());
        let flat = x * 0.0 + outside;
        sub(flat, high.minus(low).ln())
    }

    /// low + (high − low) u
    pub fn rsample<S: Shape, D: Backend, T: Tape<D>>(
        dev: &D,
        shape: S,
        low: Arg<S, D, T>,
        high: Arg<S, D, T>,
    ) -> Value<S, D, T> {
        let width = high.minus(low.again());
        add(mul(noise::uniform(dev, shape), width), low)
    }
}

impl ElementDensity for Uniform {
    fn name(&self) -> &'static str {
        "Uniform"
    }

    fn element(&self, x: f32, a: [f32; 3]) -> (f32, [f32; 4]) {
        let (lo, hi) = (a[0], a[1]);
        if x > lo && x < hi {
            let inv = 1.0 / (hi - lo);
            (-ln(hi - lo), [0.0, inv, -inv, 0.0])
        } else {
            (f32::NEG_INFINITY, [0.0; 4])
        }
    }
}

impl Moments for Uniform {
    fn mean_variance(&self, a: [f64; 3]) -> (f64, f64) {
        let (lo, hi) = (a[0], a[1]);
        (0.5 * (lo + hi), (hi - lo).powi(2) / 12.0)
    }

    fn draw(&self, a: [f64; 3], rng: &mut dyn rand::RngCore) -> f64 {
        a[0] + (a[1] - a[0]) * draw::uniform(rng)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dist::check::{self, take, u, Reference};
    use statrs::distribution::{self as sd, Continuous};
    use statrs::statistics::Distribution as _;

    const REFERENCE: Reference = Reference {
        draw: |r| {
            let lo = u(r, -3.0, 1.0);
            let hi = lo + u(r, 0.5, 4.0);
            (u(r, lo + 1e-3, hi - 1e-3), vec![lo, hi])
        },
        log_density: |x, p| sd::Uniform::new(p[0], p[1]).unwrap().ln_pdf(x),
        grad_x: true,
    };

    #[test]
    fn log_prob_matches_statrs() {
        check::graph_matches("Uniform", &REFERENCE, |x, a| {
            let (lo, hi, _, _) = take(a);
            Uniform::log_prob(x, lo, hi)
        });
    }

    #[test]
    fn host_density_matches_statrs() {
        check::host_matches("Uniform", &REFERENCE, &Uniform);
        assert_eq!(Uniform.element(5.0, [0.0, 1.0, 0.0]).0, f32::NEG_INFINITY);
    }

    #[test]
    fn moments_match_statrs() {
        check::moments_match("Uniform", &REFERENCE, &Uniform, |p| {
            let d = sd::Uniform::new(p[0], p[1]).unwrap();
            (d.mean().unwrap(), d.variance().unwrap())
        });
    }

    #[test]
    fn draws_have_the_moments() {
        let dev = Cpu::seed_from_u64(3);
        let x = Uniform::rsample::<_, _, NoneTape>(
            &dev,
            (check::DRAWS,),
            Arg::Scalar(-1.0),
            Arg::Scalar(3.0),
        )
        .as_vec();
        check::sample_moments("Uniform", &x, Uniform.mean_variance([-1.0, 3.0, 0.0]), 1.8);
    }

    #[test]
    fn draws_match_the_moments() {
        check::draws_match_moments("Uniform", &Uniform, &[[-1.0, 3.0, 0.0]]);
    }
}
