//! The Bernoulli distribution, by probability or by logits.

use dfdx::shapes::Shape;
use ravi_backend::density::{elementwise, ElementDensity, Moments, SitePass};
use ravi_backend::math::{exp, ln, sigmoid, softplus};
use ravi_backend::program::Density;
use ravi_backend::{Backend, Tape};

use super::arg::{mul, sub, Arg, Value};
use super::{draw, Distribution, Parametrization};

/// A coin: P(x = 1) = probs, or sigmoid(logits) with `Bernoulli(logits = ..)`.
pub struct Bernoulli;

/// The Bernoulli distribution in its logits, as the host engine and the predictive take it.
pub struct BernoulliLogits;

impl Distribution for Bernoulli {
    const NAME: &'static str = "Bernoulli";
    const PARAMETRIZATIONS: &'static [Parametrization] = &[
        Parametrization {
            suffix: "",
            params: &["probs"],
            host: Some(Density::Elementwise(&Bernoulli)),
            moments: Some(&Bernoulli),
        },
        Parametrization {
            suffix: "_logits",
            params: &["logits"],
            host: Some(Density::Elementwise(&BernoulliLogits)),
            moments: Some(&BernoulliLogits),
        },
    ];
}

impl Bernoulli {
    /// x log p + (1 − x) log(1 − p)
    pub fn log_prob<S: Shape, D: Backend, T: Tape<D>>(
        x: Value<S, D, T>,
        probs: Arg<S, D, T>,
    ) -> Value<S, D, T> {
        let hit = mul(x.retaped::<T>(), probs.again().ln());
        let miss = mul(x.negate() + 1.0, probs.negated().add_scalar(1.0).ln());
        hit + miss
    }

    /// x l − softplus(l): the same density in the logits, without computing sigmoid(l).
    pub fn log_prob_logits<S: Shape, D: Backend, T: Tape<D>>(
        x: Value<S, D, T>,
        logits: Arg<S, D, T>,
    ) -> Value<S, D, T> {
        sub(mul(x, logits.again()), logits.softplus())
    }
}

impl ElementDensity for Bernoulli {
    fn name(&self) -> &'static str {
        "Bernoulli"
    }

    /// The value is data (0 or 1): its partial is never read.
    fn element(&self, x: f32, a: [f32; 3]) -> (f32, [f32; 4]) {
        let p = a[0];
        let lp = x * ln(p) + (1.0 - x) * ln(1.0 - p);
        (lp, [0.0, x / p - (1.0 - x) / (1.0 - p), 0.0, 0.0])
    }
}

impl ElementDensity for BernoulliLogits {
    fn name(&self) -> &'static str {
        "Bernoulli_logits"
    }

    fn element(&self, x: f32, a: [f32; 3]) -> (f32, [f32; 4]) {
        let l = a[0];
        (x * l - softplus(l), [0.0, x - sigmoid(l), 0.0, 0.0])
    }

    /// Observed values with one logit each, only the logits' partials wanted (a
    /// classifier's or a decoder's likelihood): one vectorized loop.
    fn pass(&self, site: SitePass<'_>) -> f64 {
        match site {
            SitePass {
                x,
                args: [logits, _, _],
                partials: [None, Some(d_logits), None, None],
                weight,
            } if logits.len() == x.len() => bernoulli_logits_rows(x, logits, weight, d_logits),
            site => elementwise(self, site),
        }
    }
}

ravi_backend::simd_dispatch!(bernoulli_logits_rows, bernoulli_logits_avx2, bernoulli_logits_body,
    (x: &[f32], l: &[f32], weight: f32, d: &mut [f32]) -> f64);

/// Σ_i x_i l_i − softplus(l_i), writing weight · (x_i − sigmoid(l_i)) to `d`: one e^{−|l|}
/// serves both (softplus l = max(l, 0) + ln(1 + e^{−|l|}); sigmoid l = 1/(1 + e^{−|l|}) for
/// l ≥ 0, e^{−|l|}/(1 + e^{−|l|}) below), eight running sums.
#[inline(always)]
fn bernoulli_logits_body(x: &[f32], l: &[f32], weight: f32, d: &mut [f32]) -> f64 {
    #[inline(always)]
    fn one(x: f32, l: f32, weight: f32) -> (f32, f32) {
        let e = exp(-l.abs());
        let sp = l.max(0.0) + ln(1.0 + e);
        let r = 1.0 / (1.0 + e);
        let sig = if l >= 0.0 { r } else { e * r };
        (x * l - sp, weight * (x - sig))
    }
    let mut acc = [0.0f32; 8];
    let (cx, cl, cd) = (x.chunks_exact(8), l.chunks_exact(8), d.chunks_exact_mut(8));
    let tail_start = x.len() - cx.remainder().len();
    let mut sum = 0.0f64;
    for (c, ((xc, lc), dc)) in cx.zip(cl).zip(cd).enumerate() {
        for i in 0..8 {
            let (lp, g) = one(xc[i], lc[i], weight);
            acc[i] += lp;
            dc[i] = g;
        }
        // f32 lanes over a block, the blocks' sums in f64 (a million terms keep their digits)
        if c % 512 == 511 {
            sum += acc.iter().map(|&a| f64::from(a)).sum::<f64>();
            acc = [0.0; 8];
        }
    }
    for i in tail_start..x.len() {
        let (lp, g) = one(x[i], l[i], weight);
        sum += f64::from(lp);
        d[i] = g;
    }
    sum + acc.iter().map(|&a| f64::from(a)).sum::<f64>()
}

impl Moments for Bernoulli {
    fn mean_variance(&self, a: [f64; 3]) -> (f64, f64) {
        (a[0], a[0] * (1.0 - a[0]))
    }

    fn draw(&self, a: [f64; 3], rng: &mut dyn rand::RngCore) -> f64 {
        draw::bernoulli(a[0], rng)
    }
}

impl Moments for BernoulliLogits {
    fn mean_variance(&self, a: [f64; 3]) -> (f64, f64) {
        let p = 1.0 / (1.0 + (-a[0]).exp());
        (p, p * (1.0 - p))
    }

    fn draw(&self, a: [f64; 3], rng: &mut dyn rand::RngCore) -> f64 {
        draw::bernoulli(draw::sigmoid(a[0]), rng)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dist::check::{self, take, u, Reference};
    use rand::Rng;
    use statrs::distribution::{self as sd, Discrete};
    use statrs::statistics::Distribution as _;

    const PROBS: Reference = Reference {
        draw: |r| (f64::from(u8::from(r.gen_bool(0.5))), vec![u(r, 0.02, 0.98)]),
        log_density: |x, p| sd::Bernoulli::new(p[0]).unwrap().ln_pmf(x as u64),
        grad_x: false,
    };

    const LOGITS: Reference = Reference {
        draw: |r| (f64::from(u8::from(r.gen_bool(0.5))), vec![u(r, -6.0, 6.0)]),
        log_density: |x, p| {
            let prob = 1.0 / (1.0 + (-p[0]).exp());
            sd::Bernoulli::new(prob).unwrap().ln_pmf(x as u64)
        },
        grad_x: false,
    };

    #[test]
    fn log_prob_matches_statrs() {
        check::graph_matches("Bernoulli", &PROBS, |x, a| {
            let (p, _, _, _) = take(a);
            Bernoulli::log_prob(x, p)
        });
        check::graph_matches("Bernoulli(logits)", &LOGITS, |x, a| {
            let (l, _, _, _) = take(a);
            Bernoulli::log_prob_logits(x, l)
        });
    }

    #[test]
    fn host_density_matches_statrs() {
        check::host_matches("Bernoulli", &PROBS, &Bernoulli);
        check::host_matches("Bernoulli(logits)", &LOGITS, &BernoulliLogits);
    }

    #[test]
    fn moments_match_statrs() {
        check::moments_match("Bernoulli", &PROBS, &Bernoulli, |p| {
            let d = sd::Bernoulli::new(p[0]).unwrap();
            (d.mean().unwrap(), d.variance().unwrap())
        });
        check::moments_match("Bernoulli(logits)", &LOGITS, &BernoulliLogits, |p| {
            let d = sd::Bernoulli::new(1.0 / (1.0 + (-p[0]).exp())).unwrap();
            (d.mean().unwrap(), d.variance().unwrap())
        });
    }

    #[test]
    fn draws_match_the_moments() {
        check::draws_match_moments("Bernoulli", &Bernoulli, &[[0.3, 0.0, 0.0]]);
        check::draws_match_moments("Bernoulli(logits)", &BernoulliLogits, &[[-1.2, 0.0, 0.0]]);
    }
}
