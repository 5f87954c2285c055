//! The relaxed Bernoulli (binary concrete) distribution.

use dfdx::shapes::Shape;
use ravi_backend::{Backend, Tape};

use super::arg::{add, div, mul, Arg, Value};
use super::{noise, Distribution, Parametrization};

/// The binary concrete (relaxed Bernoulli) distribution of Maddison et al. (2017) on (0, 1):
/// y = σ((logits + log u − log(1 − u))/temperature), u ~ Uniform(0, 1); as the temperature
/// falls it approaches Bernoulli(σ(logits)). Its moments have no closed form.
pub struct RelaxedBernoulli;

impl Distribution for RelaxedBernoulli {
    const NAME: &'static str = "RelaxedBernoulli";
    const PARAMETRIZATIONS: &'static [Parametrization] =
        &[Parametrization::graph_only("", &["temperature", "logits"])];
}

impl RelaxedBernoulli {
    /// log λ + l − (λ + 1)(log y + log(1 − y)) − 2 log(e^l y^−λ + (1 − y)^−λ), written with
    /// t = l − λ (log y − log(1 − y)) as log λ + t − log y − log(1 − y) − 2 softplus(t).
    pub fn log_prob<S: Shape, D: Backend, T: Tape<D>>(
        y: Value<S, D, T>,
        temperature: Arg<S, D, T>,
        logits: Arg<S, D, T>,
    ) -> Value<S, D, T> {
        // y within f32 reach of 0 or 1 (a latent mapped from |u| ≳ 17) would make the
        // terms below ∞ − ∞; the density there is negligible, so y is kept off the ends.
        let y = y.clamp(1e-7, 1.0 - 1e-7);
        let log_y = y.retaped::<T>().ln();
        let log_1my = (y.negate() + 1.0).ln();
        let logit_y = log_y.retaped::<T>() - log_1my.retaped::<T>();
        let t = add(mul(logit_y, temperature.again()).negate(), logits);
        let soft = ravi_backend::ops::softplus(t.retaped::<T>()) * 2.0;
        add(t - soft - log_y - log_1my, temperature.ln())
    }

    /// The density of the logit u = log y − log(1 − y) of a relaxed Bernoulli value:
    /// log λ + l − λu − 2 softplus(l − λu). It is the density of y with the log-Jacobian of
    /// y = σ(u) added, written so that it stays exact where y rounds to 0 or 1 in f32; a
    /// relaxed Bernoulli latent is scored this way (the guide draws u).
    pub fn log_prob_logit_space<S: Shape, D: Backend, T: Tape<D>>(
        u: Value<S, D, T>,
        temperature: Arg<S, D, T>,
        logits: Arg<S, D, T>,
    ) -> Value<S, D, T> {
        let t = add(mul(u, temperature.again()).negate(), logits);
        let soft = ravi_backend::ops::softplus(t.retaped::<T>()) * 2.0;
        add(t - soft, temperature.ln())
    }

    /// σ((logits + log u − log(1 − u)) / temperature)
    pub fn rsample<S: Shape, D: Backend, T: Tape<D>>(
        dev: &D,
        shape: S,
        temperature: Arg<S, D, T>,
        logits: Arg<S, D, T>,
    ) -> Value<S, D, T> {
        let u = noise::uniform::<S, D, T>(dev, shape);
        let logistic = u.retaped::<T>().ln() - (u.negate() + 1.0).ln();
        div(add(logistic, logits), temperature).sigmoid()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dist::check::{self, take, u, Reference};
    use dfdx::prelude::*;

    const REFERENCE: Reference = Reference {
        draw: |r| (u(r, 0.01, 0.99), vec![u(r, 0.2, 3.0), u(r, -3.0, 3.0)]),
        // Maddison et al. (2017), eq. for the binary concrete density, written directly:
        // λ α y^(−λ−1) (1−y)^(−λ−1) / (α y^(−λ) + (1−y)^(−λ))², α = e^logits.
        log_density: |y, p| {
            let (lam, a) = (p[0], p[1].exp());
            let num = lam * a * y.powf(-lam - 1.0) * (1.0 - y).powf(-lam - 1.0);
            let den = (a * y.powf(-lam) + (1.0 - y).powf(-lam)).powi(2);
            (num / den).ln()
        },
        grad_x: true,
    };

    #[test]
    fn log_prob_matches_the_published_density() {
        check::graph_matches("RelaxedBernoulli", &REFERENCE, |x, a| {
            let (t, l, _, _) = take(a);
            RelaxedBernoulli::log_prob(x, t, l)
        });
    }

    /// P(y > ½) = σ(logits) at every temperature; at a low temperature the draws crowd
    /// the ends.
    #[test]
    fn draws_are_above_a_half_as_often_as_a_coin() {
        let dev = Cpu::seed_from_u64(3);
        let n = check::DRAWS;
        let x = RelaxedBernoulli::rsample::<_, _, NoneTape>(
            &dev,
            (n,),
            Arg::Scalar(0.5),
            Arg::Scalar(0.8),
        )
        .as_vec();
        let above = x.iter().filter(|&&v| v > 0.5).count() as f64 / n as f64;
        let p = 1.0 / (1.0 + (-0.8f64).exp());
        assert!(
            (above - p).abs() < 5.0 * (p * (1.0 - p) / n as f64).sqrt(),
            "{above} vs {p}"
        );
        let cold = RelaxedBernoulli::rsample::<_, _, NoneTape>(
            &dev,
            (n,),
            Arg::Scalar(0.05),
            Arg::Scalar(0.8),
        )
        .as_vec();
        let near_ends = cold
            .iter()
            .filter(|&&v| !(0.01..=0.99).contains(&v))
            .count() as f64
            / n as f64;
        assert!(near_ends > 0.9, "{near_ends}");
    }

    /// Draws approach {0, 1} as the temperature falls, and the logit-space density is the
    /// density of y = σ(u) plus log σ'(u).
    #[test]
    fn approaches_binary_and_its_logit_density() {
        let dev = Cpu::seed_from_u64(5);
        let n = 4000;
        let mut previous = 1.0f32;
        for lam in [2.0f32, 1.0, 0.5, 0.2, 0.05] {
            let x = RelaxedBernoulli::rsample::<_, _, NoneTape>(
                &dev,
                (n,),
                Arg::Scalar(lam),
                Arg::Scalar(0.7),
            )
            .as_vec();
            let dist = x.iter().map(|&v| v.min(1.0 - v)).sum::<f32>() / n as f32;
            assert!(
                dist < previous,
                "λ = {lam}: mean distance to {{0, 1}} {dist} after {previous}"
            );
            previous = dist;
        }
        assert!(previous < 0.02, "{previous}");
        let u: Vec<f32> = (0..200).map(|i| -6.0 + 0.06 * i as f32).collect();
        let t = || dev.tensor_from_vec(u.clone(), (u.len(),));
        let logit = RelaxedBernoulli::log_prob_logit_space::<_, Cpu, NoneTape>(
            t(),
            Arg::Scalar(0.6),
            Arg::Scalar(-0.4),
        )
        .as_vec();
        let y = t().sigmoid();
        let on_y =
            RelaxedBernoulli::log_prob::<_, Cpu, NoneTape>(y, Arg::Scalar(0.6), Arg::Scalar(-0.4))
                .as_vec();
        for (i, &v) in u.iter().enumerate() {
            let s = 1.0 / (1.0 + (-f64::from(v)).exp());
            let want = f64::from(on_y[i]) + (s * (1.0 - s)).ln();
            assert!(
                (f64::from(logit[i]) - want).abs() < 1e-3,
                "u = {v}: {} vs {want}",
                logit[i]
            );
        }
        // Far out, where y rounds to 1 in f32, the logit density stays finite.
        let far = RelaxedBernoulli::log_prob_logit_space::<_, Cpu, NoneTape>(
            dev.tensor_from_vec(vec![60.0f32], (1,)),
            Arg::Scalar(0.5),
            Arg::Scalar(0.0),
        )
        .as_vec();
        assert!(far[0].is_finite() && far[0] < -20.0, "{far:?}");
    }
}
