//! The zero-inflated Poisson distribution.

use dfdx::prelude::*;
use dfdx::shapes::Shape;
use ravi_backend::density::{ElementDensity, Moments};
use ravi_backend::math::{ln, sigmoid, softplus};
use ravi_backend::program::Density;
use ravi_backend::{Backend, Tape};

use super::arg::{add, mul, sub, Arg, Value};
use super::special::ln_gamma;
use super::{draw, Distribution, Parametrization};

/// Counts that are 0 with probability `gate` and else Poisson(`rate`):
/// p(0) = g + (1 − g) e^(−λ), p(k > 0) = (1 − g) λᵏ e^(−λ) / k!.
pub struct ZeroInflatedPoisson;

impl Distribution for ZeroInflatedPoisson {
    const NAME: &'static str = "ZeroInflatedPoisson";
    const PARAMETRIZATIONS: &'static [Parametrization] = &[Parametrization {
        suffix: "",
        params: &["gate", "rate"],
        host: Some(Density::Elementwise(&ZeroInflatedPoisson)),
        moments: Some(&ZeroInflatedPoisson),
    }];
}

impl ZeroInflatedPoisson {
    /// At 0: log(g + (1 − g) e^(−λ)) = log g + softplus(log(1 − g) − log g − λ), which
    /// neither underflows for large λ nor loses a small g; elsewhere
    /// log(1 − g) + x log λ − λ − log x!. The counts are data: which case each one is, is
    /// read on the host.
    pub fn log_prob<S: Shape, D: Backend, T: Tape<D>>(
        x: Value<S, D, T>,
        gate: Arg<S, D, T>,
        rate: Arg<S, D, T>,
    ) -> Value<S, D, T> {
        let zeros: Vec<f32> = x
            .as_vec()
            .into_iter()
            .map(|v| if v == 0.0 { 1.0 } else { 0.0 })
            .collect();
        let dev = x.device().clone();
        let zero: Tensor<S, f32, D> = dev.tensor_from_vec(zeros, *x.shape());
        let positive = zero.clone().negate() + 1.0;
        let log_gate = gate.again().ln();
        let log_miss = gate.negated().add_scalar(1.0).ln();
        let at_zero = log_gate.again().plus(
            log_miss
                .again()
                .minus(log_gate)
                .minus(rate.again())
                .softplus(),
        );
        let log_factorial = ln_gamma(x.retaped::<T>() + 1.0);
        let counts = add(
            sub(mul(x, rate.again().ln()) - log_factorial, rate),
            log_miss,
        );
        mul(zero.retaped::<T>(), at_zero) + counts * positive
    }
}

impl ElementDensity for ZeroInflatedPoisson {
    fn name(&self) -> &'static str {
        "ZeroInflatedPoisson"
    }

    /// The counts are data: their partial is never read, and −log x! is the data term.
    /// At 0, with t = log(1 − g) − log g − λ and w = sigmoid(t) (the chance that the zero
    /// is Poisson's): ∂/∂g = (1 − w)/g − w/(1 − g), ∂/∂λ = −w.
    fn element(&self, x: f32, a: [f32; 3]) -> (f32, [f32; 4]) {
        let (g, r) = (a[0], a[1]);
        let log_miss = ln(1.0 - g);
        if x == 0.0 {
            let log_gate = ln(g);
            let t = log_miss - log_gate - r;
            let (w, not_w) = (sigmoid(t), sigmoid(-t));
            (
                log_gate + softplus(t),
                [0.0, not_w / g - w / (1.0 - g), -w, 0.0],
            )
        } else {
            (
                log_miss + x * ln(r) - r,
                [0.0, -1.0 / (1.0 - g), x / r - 1.0, 0.0],
            )
        }
    }

    fn data_term(&self, x: &[f32]) -> f64 {
        -x.iter()
            .map(|&x| statrs::function::gamma::ln_gamma(f64::from(x) + 1.0))
            .sum::<f64>()
    }
}

/// Mean (1 − g) λ, variance (1 − g) λ (1 + g λ).
impl Moments for ZeroInflatedPoisson {
    fn mean_variance(&self, a: [f64; 3]) -> (f64, f64) {
        let (g, r) = (a[0], a[1]);
        ((1.0 - g) * r, (1.0 - g) * r * (1.0 + g * r))
    }

    fn draw(&self, a: [f64; 3], rng: &mut dyn rand::RngCore) -> f64 {
        match draw::uniform(rng) < a[0] {
            true => 0.0,
            false => draw::poisson(a[1], rng),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dist::check::{self, take, u, Reference};
    use rand::Rng;
    use statrs::distribution::{self as sd, Discrete};
    use statrs::statistics::Distribution as _;

    /// The mixture, from statrs' Poisson.
    fn reference(x: f64, p: &[f64]) -> f64 {
        let (g, poisson) = (p[0], sd::Poisson::new(p[1]).unwrap());
        if x == 0.0 {
            (g + (1.0 - g) * poisson.ln_pmf(0).exp()).ln()
        } else {
            (1.0 - g).ln() + poisson.ln_pmf(x as u64)
        }
    }

    const REFERENCE: Reference = Reference {
        draw: |r| {
            let x = if r.gen_bool(0.4) {
                0
            } else {
                r.gen_range(0u32..30)
            };
            (f64::from(x), vec![u(r, 0.02, 0.98), u(r, 0.1, 20.0)])
        },
        log_density: reference,
        grad_x: false,
    };

    #[test]
    fn log_prob_matches_statrs() {
        check::graph_matches("ZeroInflatedPoisson", &REFERENCE, |x, a| {
            let (g, l, _, _) = take(a);
            ZeroInflatedPoisson::log_prob(x, g, l)
        });
    }

    #[test]
    fn host_density_matches_statrs() {
        check::host_matches("ZeroInflatedPoisson", &REFERENCE, &ZeroInflatedPoisson);
    }

    /// A zero under a tiny gate and a large rate (where g + (1 − g) e^(−λ) underflows in
    /// f32) and under a gate near 1: finite, and the mixture's log in f64.
    #[test]
    fn the_zero_is_stable_at_the_extremes() {
        let dev = Cpu::default();
        for (g, r) in [
            (1e-30f64, 120.0f64),
            (1e-6, 90.0),
            (0.999_999, 5.0),
            (0.5, 1e-4),
        ] {
            let want = (g.ln()).max((1.0 - g).ln() - r)
                + (-(g.ln() - ((1.0 - g).ln() - r)).abs()).exp().ln_1p();
            let (lp, d) = ZeroInflatedPoisson.element(0.0, [g as f32, r as f32, 0.0]);
            assert!(
                (f64::from(lp) - want).abs() < 1e-4 * (1.0 + want.abs()),
                "host at ({g}, {r}): {lp} vs {want}"
            );
            assert!(d.iter().all(|d| d.is_finite()), "host partials {d:?}");
            let x = dev.tensor_from_vec(vec![0.0f32], (1usize,));
            let lp = ZeroInflatedPoisson::log_prob::<_, _, NoneTape>(
                x,
                Arg::Scalar(g as f32),
                Arg::Scalar(r as f32),
            )
            .as_vec()[0];
            assert!(
                (f64::from(lp) - want).abs() < 1e-4 * (1.0 + want.abs()),
                "graph at ({g}, {r}): {lp} vs {want}"
            );
        }
    }

    /// The mixture's moments from statrs' Poisson: E X = (1 − g) E Y, E X² = (1 − g) E Y².
    #[test]
    fn moments_match_statrs() {
        check::moments_match(
            "ZeroInflatedPoisson",
            &REFERENCE,
            &ZeroInflatedPoisson,
            |p| {
                let poisson = sd::Poisson::new(p[1]).unwrap();
                let (m, v) = (poisson.mean().unwrap(), poisson.variance().unwrap());
                let mean = (1.0 - p[0]) * m;
                (mean, (1.0 - p[0]) * (v + m * m) - mean * mean)
            },
        );
    }

    #[test]
    fn draws_match_the_moments() {
        check::draws_match_moments(
            "ZeroInflatedPoisson",
            &ZeroInflatedPoisson,
            &[[0.3, 4.0, 0.0]],
        );
    }
}
