//! The exponential distribution.

use dfdx::shapes::Shape;
use ravi_backend::density::{ElementDensity, Moments};
use ravi_backend::math::ln;
use ravi_backend::program::Density;
use ravi_backend::{Backend, Tape};

use super::arg::{add, mul, Arg, Value};
use super::{draw, noise, Distribution, Parametrization};

/// The exponential distribution with rate λ; support [0, ∞).
pub struct Exponential;

impl Distribution for Exponential {
    const NAME: &'static str = "Exponential";
    const PARAMETRIZATIONS: &'static [Parametrization] = &[Parametrization {
        suffix: "",
        params: &["rate"],
        host: Some(Density::Elementwise(&Exponential)),
        moments: Some(&Exponential),
    }];
}

impl Exponential {
    /// log λ − λ x
    pub fn log_prob<S: Shape, D: Backend, T: Tape<D>>(
        x: Value<S, D, T>,
        rate: Arg<S, D, T>,
    ) -> Value<S, D, T> {
        add(mul(x, rate.again()).negate(), rate.ln())
    }

    /// −log(u) / rate
    pub fn rsample<S: Shape, D: Backend, T: Tape<D>>(
        dev: &D,
        shape: S,
        rate: Arg<S, D, T>,
    ) -> Value<S, D, T> {
        mul(
            noise::uniform::<S, D, T>(dev, shape).ln().negate(),
            rate.recip(),
        )
    }
}

impl ElementDensity for Exponential {
    fn name(&self) -> &'static str {
        "Exponential"
    }

    fn element(&self, x: f32, a: [f32; 3]) -> (f32, [f32; 4]) {
        let r = a[0];
        (ln(r) - r * x, [-r, 1.0 / r - x, 0.0, 0.0])
    }
}

impl Moments for Exponential {
    fn mean_variance(&self, a: [f64; 3]) -> (f64, f64) {
        (1.0 / a[0], 1.0 / (a[0] * a[0]))
    }

    fn draw(&self, a: [f64; 3], rng: &mut dyn rand::RngCore) -> f64 {
        -(1.0 - draw::uniform(rng)).ln() / a[0]
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
        draw: |r| (u(r, 0.0, 10.0), vec![u(r, 0.1, 5.0)]),
        log_density: |x, p| sd::Exp::new(p[0]).unwrap().ln_pdf(x),
        grad_x: true,
    };

    #[test]
    fn log_prob_matches_statrs() {
        check::graph_matches("Exponential", &REFERENCE, |x, a| {
            let (l, _, _, _) = take(a);
            Exponential::log_prob(x, l)
        });
    }

    #[test]
    fn host_density_matches_statrs() {
        check::host_matches("Exponential", &REFERENCE, &Exponential);
    }

    #[test]
    fn moments_match_statrs() {
        check::moments_match("Exponential", &REFERENCE, &Exponential, |p| {
            let d = sd::Exp::new(p[0]).unwrap();
            (d.mean().unwrap(), d.variance().unwrap())
        });
    }

    #[test]
    fn draws_have_the_moments() {
        let dev = Cpu::seed_from_u64(3);
        let x = Exponential::rsample::<_, _, NoneTape>(&dev, (check::DRAWS,), Arg::Scalar(2.5))
            .as_vec();
        check::sample_moments(
            "Exponential",
            &x,
            Exponential.mean_variance([2.5, 0.0, 0.0]),
            9.0,
        );
    }

    /// The pathwise gradient d E[x]/d rate = −1/rate².
    #[test]
    fn gradients_flow_to_the_rate() {
        let n = check::DRAWS;
        let dev = Cpu::seed_from_u64(4);
        let rate = dev.tensor_from_vec(vec![2.5f32; n], (n,));
        let x = Exponential::rsample(&dev, (n,), Arg::Tensor(rate.retaped::<check::Taped>()));
        let g: f64 = x
            .mean::<(), _>()
            .backward()
            .get(&rate)
            .as_vec()
            .iter()
            .map(|&v| f64::from(v))
            .sum();
        assert!((g + 1.0 / 6.25).abs() < 0.005, "{g}");
    }

    #[test]
    fn draws_match_the_moments() {
        check::draws_match_moments(
            "Exponential",
            &Exponential,
            &[[0.5, 0.0, 0.0], [4.0, 0.0, 0.0]],
        );
    }
}
