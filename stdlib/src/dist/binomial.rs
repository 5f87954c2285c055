//! The binomial distribution, by probability or by logits.

use dfdx::prelude::*;
use dfdx::shapes::Shape;
use ravi_backend::density::{elementwise, elementwise_with, ElementDensity, Moments, SitePass};
use ravi_backend::math::{ln, sigmoid, softplus};
use ravi_backend::program::Density;
use ravi_backend::{Backend, Tape};
use statrs::function::gamma::{digamma, ln_gamma};

use super::arg::{add, mul, sub, Arg, Value};
use super::special;
use super::{draw, Distribution, Parametrization};

/// Successes in `total_count` trials, each with probability `probs`, or sigmoid(logits)
/// with `Binomial(total_count = .., logits = ..)`; support {0, ..., total_count}.
/// `total_count` is a count: data or a number.
pub struct Binomial;

/// The binomial distribution in its logits, as the host engine and the predictive take it.
pub struct BinomialLogits;

impl Distribution for Binomial {
    const NAME: &'static str = "Binomial";
    const PARAMETRIZATIONS: &'static [Parametrization] = &[
        Parametrization {
            suffix: "",
            params: &["total_count", "probs"],
            host: Some(Density::Elementwise(&Binomial)),
            moments: Some(&Binomial),
        },
        Parametrization {
            suffix: "_logits",
            params: &["total_count", "logits"],
            host: Some(Density::Elementwise(&BinomialLogits)),
            moments: Some(&BinomialLogits),
        },
    ];
}

/// n − x and log C(n, x) = log Γ(n + 1) − log Γ(x + 1) − log Γ(n − x + 1), the latter −∞
/// where x > n (outside the support; n − x is then read as 0 so that nothing is NaN).
/// Differentiable in n through log Γ (n is a count, so that gradient is rarely read).
/// Takes `n` (its last use); the caller keeps `x`.
fn count_terms<S: Shape, D: Backend, T: Tape<D>>(
    x: &Value<S, D, T>,
    n: Arg<S, D, T>,
) -> (Value<S, D, T>, Value<S, D, T>) {
    let xs = x.as_vec();
    let ns = match &n {
        Arg::Scalar(c) => vec![*c; xs.len()],
        Arg::Tensor(t) => t.as_vec(),
    };
    let over: Vec<f32> = xs
        .iter()
        .zip(&ns)
        .map(|(&x, &n)| (x - n).max(0.0))
        .collect();
    let outside: Vec<f32> = xs
        .iter()
        .zip(&ns)
        .map(|(&x, &n)| if x > n { f32::NEG_INFINITY } else { 0.0 })
        .collect();
    let dev = x.device().clone();
    let over = dev.tensor_from_vec(over, *x.shape());
    let outside = dev.tensor_from_vec(outside, *x.shape());
    let rest = || add(x.retaped::<T>().negate(), n.again()) + over.clone();
    let (r1, r2) = (rest(), rest());
    let log_choose = add(
        special::ln_gamma(x.retaped::<T>() + 1.0).negate() + outside,
        n.add_scalar(1.0).lgamma(),
    ) - special::ln_gamma(r1 + 1.0);
    (r2, log_choose)
}

impl Binomial {
    /// log C(n, x) + x log p + (n − x) log(1 − p)
    pub fn log_prob<S: Shape, D: Backend, T: Tape<D>>(
        x: Value<S, D, T>,
        total_count: Arg<S, D, T>,
        probs: Arg<S, D, T>,
    ) -> Value<S, D, T> {
        let (rest, log_choose) = count_terms(&x, total_count);
        let miss = mul(rest, probs.again().negated().add_scalar(1.0).ln());
        log_choose + miss + mul(x, probs.ln())
    }

    /// log C(n, x) + x l − n softplus(l): the same density in the logits, without
    /// computing sigmoid(l).
    pub fn log_prob_logits<S: Shape, D: Backend, T: Tape<D>>(
        x: Value<S, D, T>,
        total_count: Arg<S, D, T>,
        logits: Arg<S, D, T>,
    ) -> Value<S, D, T> {
        let (_, log_choose) = count_terms(&x, total_count.again());
        let norm = total_count.times(logits.again().softplus());
        sub(log_choose + mul(x, logits), norm)
    }
}

/// log C(n, x) in f64, and, when wanted, its derivative in n, ψ(n + 1) − ψ(n − x + 1).
#[inline(always)]
fn log_choose(x: f32, n: f32, wanted: bool) -> (f64, f64) {
    let (x, n) = (f64::from(x), f64::from(n));
    let lc = ln_gamma(n + 1.0) - ln_gamma(x + 1.0) - ln_gamma(n - x + 1.0);
    let d = if wanted {
        digamma(n + 1.0) - digamma(n - x + 1.0)
    } else {
        0.0
    };
    (lc, d)
}

/// log p and [x, n, p, –] by probability; the partial in n only when `d_n`.
#[inline(always)]
fn element_probs(x: f32, n: f32, p: f32, d_n: bool) -> (f32, [f32; 4]) {
    if x > n {
        return (f32::NEG_INFINITY, [0.0; 4]);
    }
    let (lc, dc) = log_choose(x, n, d_n);
    let log_miss = ln(1.0 - p);
    let lp = lc as f32 + x * ln(p) + (n - x) * log_miss;
    let dn = if d_n { dc as f32 + log_miss } else { 0.0 };
    (lp, [0.0, dn, x / p - (n - x) / (1.0 - p), 0.0])
}

/// log p and [x, n, l, –] by logits; the partial in n only when `d_n`.
#[inline(always)]
fn element_logits(x: f32, n: f32, l: f32, d_n: bool) -> (f32, [f32; 4]) {
    if x > n {
        return (f32::NEG_INFINITY, [0.0; 4]);
    }
    let (lc, dc) = log_choose(x, n, d_n);
    let sp = softplus(l);
    let lp = lc as f32 + x * l - n * sp;
    let dn = if d_n { dc as f32 - sp } else { 0.0 };
    (lp, [0.0, dn, x - n * sigmoid(l), 0.0])
}

impl ElementDensity for Binomial {
    fn name(&self) -> &'static str {
        "Binomial"
    }

    /// The value is data: its partial is never read.
    fn element(&self, x: f32, a: [f32; 3]) -> (f32, [f32; 4]) {
        element_probs(x, a[0], a[1], true)
    }

    /// The total count is data or a number, so its partial is almost never wanted: no
    /// digamma per element then.
    fn pass(&self, site: SitePass<'_>) -> f64 {
        if site.partials[1].is_some() {
            return elementwise(self, site);
        }
        elementwise_with(site, |x, a| element_probs(x, a[0], a[1], false))
    }
}

impl ElementDensity for BinomialLogits {
    fn name(&self) -> &'static str {
        "Binomial_logits"
    }

    fn element(&self, x: f32, a: [f32; 3]) -> (f32, [f32; 4]) {
        element_logits(x, a[0], a[1], true)
    }

    fn pass(&self, site: SitePass<'_>) -> f64 {
        if site.partials[1].is_some() {
            return elementwise(self, site);
        }
        elementwise_with(site, |x, a| element_logits(x, a[0], a[1], false))
    }
}

/// n p and n p (1 − p).
impl Moments for Binomial {
    fn mean_variance(&self, a: [f64; 3]) -> (f64, f64) {
        let (n, p) = (a[0], a[1]);
        (n * p, n * p * (1.0 - p))
    }

    fn draw(&self, a: [f64; 3], rng: &mut dyn rand::RngCore) -> f64 {
        draw::binomial(a[0], a[1], rng)
    }
}

impl Moments for BinomialLogits {
    fn mean_variance(&self, a: [f64; 3]) -> (f64, f64) {
        let p = 1.0 / (1.0 + (-a[1]).exp());
        Binomial.mean_variance([a[0], p, 0.0])
    }

    fn draw(&self, a: [f64; 3], rng: &mut dyn rand::RngCore) -> f64 {
        draw::binomial(a[0], draw::sigmoid(a[1]), rng)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dist::check::{self, take, u, Reference};
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use statrs::distribution::{self as sd, Discrete};
    use statrs::statistics::Distribution as _;

    fn sigmoid64(l: f64) -> f64 {
        1.0 / (1.0 + (-l).exp())
    }

    /// log C(n, x) with n real, so that the harness can take finite differences in n (a
    /// count: statrs takes it as an integer); −∞ for x > n, which for counts is x ≥ n + 1
    /// (the half keeps n ± h at x = n inside).
    fn log_choose64(x: f64, n: f64) -> f64 {
        if x > n + 0.5 {
            return f64::NEG_INFINITY;
        }
        ln_gamma(n + 1.0) - ln_gamma(x + 1.0) - ln_gamma(n - x + 1.0)
    }

    fn draw_counts(r: &mut StdRng) -> (f64, f64) {
        let n = r.gen_range(0u32..60);
        (f64::from(r.gen_range(0..=n)), f64::from(n))
    }

    /// The binomial log pmf, continuous in n; equal to statrs' at counts
    /// ([`references_are_statrs_at_counts`]).
    const PROBS: Reference = Reference {
        draw: |r| {
            let (x, n) = draw_counts(r);
            (x, vec![n, u(r, 0.02, 0.98)])
        },
        log_density: |x, p| {
            let (n, q) = (p[0], p[1]);
            log_choose64(x, n) + x * q.ln() + (n - x) * (-q).ln_1p()
        },
        grad_x: false,
    };

    const LOGITS: Reference = Reference {
        draw: |r| {
            let (x, n) = draw_counts(r);
            (x, vec![n, u(r, -6.0, 6.0)])
        },
        log_density: |x, p| {
            let (n, l) = (p[0], p[1]);
            let softplus = l.max(0.0) + (-l.abs()).exp().ln_1p();
            log_choose64(x, n) + x * l - n * softplus
        },
        grad_x: false,
    };

    /// The references against statrs' `Binomial::ln_pmf` at 1000 counts x ≤ n each, and
    /// at x > n (−∞).
    #[test]
    fn references_are_statrs_at_counts() {
        let mut rng = StdRng::seed_from_u64(5);
        for _ in 0..1000 {
            let (x, n) = draw_counts(&mut rng);
            let (q, l) = (u(&mut rng, 0.02, 0.98), u(&mut rng, -6.0, 6.0));
            for (got, prob) in [
                ((PROBS.log_density)(x, &[n, q]), q),
                ((LOGITS.log_density)(x, &[n, l]), sigmoid64(l)),
            ] {
                let want = sd::Binomial::new(prob, n as u64).unwrap().ln_pmf(x as u64);
                assert!(
                    (got - want).abs() < 1e-9 * (1.0 + want.abs()),
                    "{x} of {n}: {got} vs {want}"
                );
            }
            let over = n + 1.0;
            assert_eq!((PROBS.log_density)(over, &[n, q]), f64::NEG_INFINITY);
            assert_eq!(
                sd::Binomial::new(q, n as u64).unwrap().ln_pmf(over as u64),
                f64::NEG_INFINITY
            );
        }
    }

    #[test]
    fn log_prob_matches_statrs() {
        check::graph_matches("Binomial", &PROBS, |x, a| {
            let (n, p, _, _) = take(a);
            Binomial::log_prob(x, n, p)
        });
        check::graph_matches("Binomial(logits)", &LOGITS, |x, a| {
            let (n, l, _, _) = take(a);
            Binomial::log_prob_logits(x, n, l)
        });
    }

    #[test]
    fn host_density_matches_statrs() {
        check::host_matches("Binomial", &PROBS, &Binomial);
        check::host_matches("Binomial(logits)", &LOGITS, &BinomialLogits);
    }

    /// The pass without the count's partial (the engine's case: n is data): the same
    /// values and partials in p as the elements, −∞ past n.
    #[test]
    fn pass_without_the_count_partial_matches_the_elements() {
        let x: Vec<f32> = (0..200).map(|i| (i % 23) as f32).collect();
        let n = [20.0f32];
        let probs: Vec<f32> = (0..200).map(|i| 0.01 + 0.0049 * i as f32).collect();
        let logits: Vec<f32> = (0..200).map(|i| -5.0 + 0.05 * i as f32).collect();
        for (density, a) in [
            (&Binomial as &dyn ElementDensity, &probs),
            (&BinomialLogits, &logits),
        ] {
            let mut d = vec![0.0f32; x.len()];
            let sum = density.pass(SitePass {
                x: &x,
                args: [&n, a, &[0.0]],
                partials: [None, None, Some(&mut d), None],
                weight: 0.5,
            });
            assert_eq!(
                sum,
                f64::NEG_INFINITY,
                "{}: x = 21, 22 are past n",
                density.name()
            );
            let inside: Vec<usize> = (0..x.len()).filter(|&i| x[i] <= 20.0).collect();
            let mut d_in = vec![0.0f32; inside.len()];
            let xs: Vec<f32> = inside.iter().map(|&i| x[i]).collect();
            let avs: Vec<f32> = inside.iter().map(|&i| a[i]).collect();
            let sum = density.pass(SitePass {
                x: &xs,
                args: [&n, &avs, &[0.0]],
                partials: [None, None, Some(&mut d_in), None],
                weight: 0.5,
            });
            let mut want = 0.0f64;
            for (k, &i) in inside.iter().enumerate() {
                let (lp, e) = density.element(x[i], [n[0], a[i], 0.0]);
                want += f64::from(lp);
                assert!((d_in[k] - 0.5 * e[2]).abs() <= 1e-5 * (1.0 + e[2].abs()));
                assert!((d[i] - 0.5 * e[2]).abs() <= 1e-5 * (1.0 + e[2].abs()));
            }
            assert!(
                (sum - want).abs() <= 1e-4 * (1.0 + want.abs()),
                "{sum} vs {want}"
            );
        }
    }

    #[test]
    fn moments_match_statrs() {
        check::moments_match("Binomial", &PROBS, &Binomial, |p| {
            let d = sd::Binomial::new(p[1], p[0] as u64).unwrap();
            (d.mean().unwrap(), d.variance().unwrap())
        });
        check::moments_match("Binomial(logits)", &LOGITS, &BinomialLogits, |p| {
            let d = sd::Binomial::new(sigmoid64(p[1]), p[0] as u64).unwrap();
            (d.mean().unwrap(), d.variance().unwrap())
        });
    }

    #[test]
    fn draws_match_the_moments() {
        check::draws_match_moments("Binomial", &Binomial, &[[12.0, 0.3, 0.0]]);
        check::draws_match_moments("Binomial(logits)", &BinomialLogits, &[[40.0, 1.5, 0.0]]);
    }
}
