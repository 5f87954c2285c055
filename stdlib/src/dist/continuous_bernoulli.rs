//! The continuous Bernoulli distribution (Loaiza-Ganem & Cunningham 2019): a proper density
//! on [0, 1] for data such as grey pixels, where the Bernoulli "likelihood" of a value
//! between 0 and 1 (binary cross-entropy) is not normalised.
//!
//! p(x | λ) = C(λ) λˣ (1 − λ)¹⁻ˣ on [0, 1]. In the logits η = log λ − log(1 − λ) this is
//! the exponential family p(x | η) = exp(η x − A(η)) with A(η) = log((e^η − 1)/η), so
//! E[x] = A′(η) and Var[x] = A″(η). Every evaluation goes through η.

use dfdx::shapes::Shape;
use ravi_backend::density::{ElementDensity, Moments};
use ravi_backend::program::Density;
use ravi_backend::{Backend, Tape};

use super::arg::{mul, sub, Arg, Value};
use super::{draw, Distribution, Parametrization};

/// Values in [0, 1] with shape parameter `probs` = λ ∈ (0, 1) (not the mean: the mean is
/// pulled towards ½), or its logits with `ContinuousBernoulli(logits = ..)`.
pub struct ContinuousBernoulli;

/// The continuous Bernoulli in its logits, as the host engine and the predictive take it.
pub struct ContinuousBernoulliLogits;

impl Distribution for ContinuousBernoulli {
    const NAME: &'static str = "ContinuousBernoulli";
    const PARAMETRIZATIONS: &'static [Parametrization] = &[
        Parametrization {
            suffix: "",
            params: &["probs"],
            host: Some(Density::Elementwise(&ContinuousBernoulli)),
            moments: Some(&ContinuousBernoulli),
        },
        Parametrization {
            suffix: "_logits",
            params: &["logits"],
            host: Some(Density::Elementwise(&ContinuousBernoulliLogits)),
            moments: Some(&ContinuousBernoulliLogits),
        },
    ];
}

/// Below this |η|, A(η) − max(η, 0) = log((1 − e^{−|η|})/|η|) is taken from its series
/// −a/2 + a²/24 − a⁴/2880 (next term a⁶/181440 < 6e-12 here): the closed form divides two
/// vanishing numbers there and loses every digit in f32 at λ = ½.
const SERIES_BELOW: f32 = 0.1;

fn series(a: f64) -> f64 {
    -a / 2.0 + a * a / 24.0 - a.powi(4) / 2880.0
}

/// A(η) = log((e^η − 1)/η), in f64.
fn log_normalizer(eta: f64) -> f64 {
    let a = eta.abs();
    let rest = if a < f64::from(SERIES_BELOW) {
        series(a)
    } else {
        (-(-a).exp_m1()).ln() - a.ln()
    };
    eta.max(0.0) + rest
}

/// E[x] = A′(η) = 1/(1 − e^{−η}) − 1/η, and Var[x] = A″(η) = 1/η² − 1/(4 sinh²(η/2)).
fn mean_variance_at(eta: f64) -> (f64, f64) {
    if eta.abs() < f64::from(SERIES_BELOW) {
        let e2 = eta * eta;
        return (
            0.5 + eta / 12.0 - eta * e2 / 720.0,
            1.0 / 12.0 - e2 / 240.0 + e2 * e2 / 6048.0,
        );
    }
    let sinh = (eta / 2.0).sinh();
    (
        -1.0 / (-eta).exp_m1() - 1.0 / eta,
        1.0 / (eta * eta) - 1.0 / (4.0 * sinh * sinh),
    )
}

/// One draw by the inverse CDF, x = log(1 + u (e^η − 1))/η, taken at −|η| (no overflow)
/// and reflected for η > 0 (X at η is 1 − X at −η).
fn continuous_bernoulli_draw(eta: f64, rng: &mut dyn rand::RngCore) -> f64 {
    let u = draw::uniform(rng);
    if eta.is_nan() {
        return f64::NAN;
    }
    let e = -eta.abs();
    let x = match e > -1e-8 {
        true => u,
        false => (u * e.exp_m1()).ln_1p() / e,
    };
    match eta > 0.0 {
        true => 1.0 - x,
        false => x,
    }
}

/// A(η) on the graph, without a branch: with m = max(|η|, c) and s = min(|η|, c), the
/// closed form at m plus the series at s minus the series at c is the closed form above c
/// and the series below it, and each piece's gradient flows only where it is the one used.
fn log_normalizer_tensor<S: Shape, D: Backend, T: Tape<D>>(eta: Value<S, D, T>) -> Value<S, D, T> {
    let c = SERIES_BELOW;
    let a = eta.retaped::<T>().abs();
    let above = (a.retaped::<T>() - c).relu();
    let big = above.retaped::<T>() + c;
    let small = a - above;
    let closed = (big.retaped::<T>().negate().exp().negate() + 1.0).ln() - big.ln();
    let series_small = small.retaped::<T>() * -0.5 + small.retaped::<T>().square() * (1.0 / 24.0)
        - small.square().square() * (1.0 / 2880.0);
    eta.relu() + closed + series_small - series(f64::from(c)) as f32
}

fn log_normalizer_arg<S: Shape, D: Backend, T: Tape<D>>(eta: Arg<S, D, T>) -> Arg<S, D, T> {
    match eta {
        Arg::Scalar(e) => Arg::Scalar(log_normalizer(f64::from(e)) as f32),
        Arg::Tensor(t) => Arg::Tensor(log_normalizer_tensor(t)),
    }
}

impl ContinuousBernoulli {
    /// η x − A(η) with η = log λ − log(1 − λ).
    pub fn log_prob<S: Shape, D: Backend, T: Tape<D>>(
        x: Value<S, D, T>,
        probs: Arg<S, D, T>,
    ) -> Value<S, D, T> {
        let logits = probs
            .again()
            .ln()
            .minus(probs.negated().add_scalar(1.0).ln());
        Self::log_prob_logits(x, logits)
    }

    /// η x − A(η), with A(η) = log((e^η − 1)/η) (log 1 at η = 0).
    pub fn log_prob_logits<S: Shape, D: Backend, T: Tape<D>>(
        x: Value<S, D, T>,
        logits: Arg<S, D, T>,
    ) -> Value<S, D, T> {
        sub(mul(x, logits.again()), log_normalizer_arg(logits))
    }
}

/// log p and its partials in x and η at one element.
fn element_logits(x: f32, eta: f32) -> (f32, [f32; 4], f64) {
    let e = f64::from(eta);
    let (mean, _) = mean_variance_at(e);
    let lp = f64::from(x) * e - log_normalizer(e);
    (
        lp as f32,
        [eta, (f64::from(x) - mean) as f32, 0.0, 0.0],
        mean,
    )
}

impl ElementDensity for ContinuousBernoulli {
    fn name(&self) -> &'static str {
        "ContinuousBernoulli"
    }

    /// ∂/∂λ = (x − E\[x\]) ∂η/∂λ, ∂η/∂λ = 1/(λ(1 − λ)).
    fn element(&self, x: f32, a: [f32; 3]) -> (f32, [f32; 4]) {
        let p = f64::from(a[0]);
        let eta = (p.ln() - (-p).ln_1p()) as f32;
        let (lp, [dx, deta, _, _], _) = element_logits(x, eta);
        let dp = f64::from(deta) / (p * (1.0 - p));
        (lp, [dx, dp as f32, 0.0, 0.0])
    }
}

impl ElementDensity for ContinuousBernoulliLogits {
    fn name(&self) -> &'static str {
        "ContinuousBernoulli_logits"
    }

    fn element(&self, x: f32, a: [f32; 3]) -> (f32, [f32; 4]) {
        let (lp, partials, _) = element_logits(x, a[0]);
        (lp, partials)
    }
}

impl Moments for ContinuousBernoulli {
    fn mean_variance(&self, a: [f64; 3]) -> (f64, f64) {
        mean_variance_at(a[0].ln() - (-a[0]).ln_1p())
    }

    fn draw(&self, a: [f64; 3], rng: &mut dyn rand::RngCore) -> f64 {
        continuous_bernoulli_draw(a[0].ln() - (-a[0]).ln_1p(), rng)
    }
}

impl Moments for ContinuousBernoulliLogits {
    fn mean_variance(&self, a: [f64; 3]) -> (f64, f64) {
        mean_variance_at(a[0])
    }

    fn draw(&self, a: [f64; 3], rng: &mut dyn rand::RngCore) -> f64 {
        continuous_bernoulli_draw(a[0], rng)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dist::check::{self, take, u, Reference};

    /// log of ∫₀¹ λᵗ (1 − λ)¹⁻ᵗ dt by Simpson's rule: the normaliser found without the
    /// closed form the implementation uses.
    fn log_normalizer_by_quadrature(p: f64) -> f64 {
        let n = 2000;
        let h = 1.0 / n as f64;
        let total: f64 = (0..=n)
            .map(|i| {
                let t = i as f64 * h;
                let w = match i {
                    0 => 1.0,
                    i if i == n => 1.0,
                    i if i % 2 == 1 => 4.0,
                    _ => 2.0,
                };
                w * (t * p.ln() + (1.0 - t) * (-p).ln_1p()).exp()
            })
            .sum();
        (total * h / 3.0).ln()
    }

    fn by_probs(x: f64, p: f64) -> f64 {
        x * p.ln() + (1.0 - x) * (-p).ln_1p() - log_normalizer_by_quadrature(p)
    }

    fn sigmoid(l: f64) -> f64 {
        1.0 / (1.0 + (-l).exp())
    }

    const PROBS: Reference = Reference {
        draw: |r| (u(r, 0.0, 1.0), vec![u(r, 0.02, 0.98)]),
        log_density: |x, p| by_probs(x, p[0]),
        grad_x: true,
    };

    /// λ close to ½, where the series takes over from the closed form.
    const NEAR_HALF: Reference = Reference {
        draw: |r| (u(r, 0.0, 1.0), vec![u(r, 0.48, 0.52)]),
        log_density: |x, p| by_probs(x, p[0]),
        grad_x: true,
    };

    const LOGITS: Reference = Reference {
        draw: |r| (u(r, 0.0, 1.0), vec![u(r, -9.0, 9.0)]),
        log_density: |x, p| by_probs(x, sigmoid(p[0])),
        grad_x: true,
    };

    const SMALL_LOGITS: Reference = Reference {
        draw: |r| (u(r, 0.0, 1.0), vec![u(r, -0.3, 0.3)]),
        log_density: |x, p| by_probs(x, sigmoid(p[0])),
        grad_x: true,
    };

    #[test]
    fn log_prob_matches_quadrature() {
        for (name, r) in [("probs", &PROBS), ("probs near ½", &NEAR_HALF)] {
            check::graph_matches(name, r, |x, a| {
                let (p, _, _, _) = take(a);
                ContinuousBernoulli::log_prob(x, p)
            });
        }
        for (name, r) in [("logits", &LOGITS), ("small logits", &SMALL_LOGITS)] {
            check::graph_matches(name, r, |x, a| {
                let (l, _, _, _) = take(a);
                ContinuousBernoulli::log_prob_logits(x, l)
            });
        }
    }

    #[test]
    fn host_density_matches_quadrature() {
        check::host_matches("ContinuousBernoulli", &PROBS, &ContinuousBernoulli);
        check::host_matches(
            "ContinuousBernoulli near ½",
            &NEAR_HALF,
            &ContinuousBernoulli,
        );
        check::host_matches(
            "ContinuousBernoulli(logits)",
            &LOGITS,
            &ContinuousBernoulliLogits,
        );
        check::host_matches(
            "ContinuousBernoulli(small logits)",
            &SMALL_LOGITS,
            &ContinuousBernoulliLogits,
        );
    }

    /// log λˣ (1 − λ)¹⁻ˣ: the moments by quadrature normalise it themselves.
    fn unnormalized(x: f64, p: f64) -> f64 {
        x * p.ln() + (1.0 - x) * (-p).ln_1p()
    }

    #[test]
    fn moments_match_quadrature() {
        for r in [&PROBS, &NEAR_HALF] {
            check::moments_match("ContinuousBernoulli", r, &ContinuousBernoulli, |p| {
                check::quadrature_moments(|x, p| unnormalized(x, p[0]), p, 0.0, 1.0)
            });
        }
        for r in [&LOGITS, &SMALL_LOGITS] {
            check::moments_match(
                "ContinuousBernoulli(logits)",
                r,
                &ContinuousBernoulliLogits,
                |p| check::quadrature_moments(|x, p| unnormalized(x, sigmoid(p[0])), p, 0.0, 1.0),
            );
        }
    }

    /// At λ = ½ the density is uniform: log p = 0, mean ½, variance 1/12.
    #[test]
    fn at_one_half_it_is_uniform() {
        assert!(log_normalizer(0.0).abs() < 1e-15);
        let (m, v) = mean_variance_at(0.0);
        assert!((m - 0.5).abs() < 1e-15 && (v - 1.0 / 12.0).abs() < 1e-15);
    }

    #[test]
    fn draws_match_the_moments() {
        check::draws_match_moments(
            "ContinuousBernoulli",
            &ContinuousBernoulli,
            &[[0.2, 0.0, 0.0], [0.5, 0.0, 0.0], [0.97, 0.0, 0.0]],
        );
        check::draws_match_moments(
            "ContinuousBernoulli(logits)",
            &ContinuousBernoulliLogits,
            &[[-6.0, 0.0, 0.0], [0.05, 0.0, 0.0], [40.0, 0.0, 0.0]],
        );
    }
}
