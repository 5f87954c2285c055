//! Distributions on integers. Values are data (or relaxed samples); the densities are
//! differentiable in the parameters.

use dfdx::shapes::Shape;
use ravi_backend::{Backend, Tape};

use super::arg::{mul, sub, Arg, Value};
use super::special::ln_gamma;
use super::Distribution;

/// A coin: P(x = 1) = probs, or sigmoid(logits) with `Bernoulli(logits = ..)`.
pub struct Bernoulli;

impl Distribution for Bernoulli {
    const NAME: &'static str = "Bernoulli";
    const PARAMETRIZATIONS: &'static [(&'static str, &'static [&'static str])] =
        &[("", &["probs"]), ("_logits", &["logits"])];
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

/// Counts with mean `rate`.
pub struct Poisson;

impl Distribution for Poisson {
    const NAME: &'static str = "Poisson";
    const PARAMETRIZATIONS: &'static [(&'static str, &'static [&'static str])] = &[("", &["rate"])];
}

impl Poisson {
    /// x log λ − λ − log x!
    pub fn log_prob<S: Shape, D: Backend, T: Tape<D>>(
        x: Value<S, D, T>,
        rate: Arg<S, D, T>,
    ) -> Value<S, D, T> {
        let log_factorial = ln_gamma(x.retaped::<T>() + 1.0);
        sub(mul(x, rate.again().ln()) - log_factorial, rate)
    }
}

/// One of K categories, P(k) = softmax(logits)_k.
pub struct Categorical;

impl Distribution for Categorical {
    const NAME: &'static str = "Categorical";
    const PARAMETRIZATIONS: &'static [(&'static str, &'static [&'static str])] =
        &[("", &["logits"])];
}

impl Categorical {
    /// Σ_m log softmax(logits_m)[y_m] per particle, for `y` of shape (M,) holding category
    /// indices (data) and `logits` of shape (particles, M, K).
    pub fn log_prob_events<D: Backend, T: Tape<D>>(
        y: dfdx::tensor::Tensor<(usize,), f32, D>,
        logits: dfdx::tensor::Tensor<(usize, usize, usize), f32, D, T>,
    ) -> dfdx::tensor::Tensor<(usize,), f32, D, T> {
        use dfdx::prelude::*;
        let (s, m, k) = *logits.shape();
        let mut one_hot = vec![0.0f32; m * k];
        for (i, c) in y.as_vec().into_iter().enumerate() {
            // The data checks guarantee an integer in 0..K.
            one_hot[i * k + c as usize] = 1.0;
        }
        let one_hot = y
            .device()
            .tensor_from_vec(one_hot, (m, k))
            .broadcast_like::<_, Axis<0>>(&(s, m, k));
        (logits.log_softmax::<Axis<2>>() * one_hot).sum::<(usize,), Axes2<1, 2>>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dfdx::prelude::*;
    use rand::{Rng, SeedableRng};
    use statrs::distribution::{Categorical as Reference, Discrete};

    /// Against statrs at 1000 rows of 5 categories; the gradient in the logits is
    /// one-hot(y) − softmax(logits).
    #[test]
    fn log_prob_events_matches_statrs_and_its_gradient_is_onehot_minus_softmax() {
        let dev = Cpu::default();
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let (m, k) = (1000, 5);
        let logits: Vec<f32> = (0..m * k).map(|_| rng.gen_range(-4.0..4.0)).collect();
        let y: Vec<f32> = (0..m).map(|_| rng.gen_range(0..k) as f32).collect();
        let lt = dev.tensor_from_vec(logits.clone(), (1usize, m, k));
        let yt = dev.tensor_from_vec(y.clone(), (m,));
        // one particle per row, to read each row's log density separately
        let per_row = dev.tensor_from_vec(logits.clone(), (m, 1usize, k));
        for (i, lp) in (0..m).zip(
            Categorical::log_prob_events(dev.tensor_from_vec(vec![0.0f32], (1,)), per_row.clone())
                .as_vec(),
        ) {
            // with y = 0 for every row
            let probs: Vec<f64> = logits[i * k..(i + 1) * k]
                .iter()
                .map(|&l| f64::from(l).exp())
                .collect();
            let want = Reference::new(&probs).unwrap().ln_pmf(0);
            assert!(
                (f64::from(lp) - want).abs() < 1e-5 * (1.0 + want.abs()),
                "{lp} vs {want}"
            );
        }
        let total = Categorical::log_prob_events(yt, lt.retaped::<OwnedTape<f32, Cpu>>());
        let want: f64 = (0..m)
            .map(|i| {
                let probs: Vec<f64> = logits[i * k..(i + 1) * k]
                    .iter()
                    .map(|&l| f64::from(l).exp())
                    .collect();
                Reference::new(&probs).unwrap().ln_pmf(y[i] as u64)
            })
            .sum();
        let got = f64::from(total.as_vec()[0]);
        assert!((got - want).abs() < 1e-4 * want.abs(), "{got} vs {want}");
        let g = total.sum::<(), _>().backward().get(&lt).as_vec();
        for i in 0..m {
            let row = &logits[i * k..(i + 1) * k];
            let z: f32 = row.iter().map(|l| l.exp()).sum();
            for j in 0..k {
                let want = f32::from(u8::from(y[i] as usize == j)) - row[j].exp() / z;
                assert!((g[i * k + j] - want).abs() < 1e-5);
            }
        }
    }
}
