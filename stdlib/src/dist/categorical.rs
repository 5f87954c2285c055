//! The categorical distribution: one of K classes per value, from logits.

use ravi_backend::density::ClassDensity;
use ravi_backend::math::{exp, ln};
use ravi_backend::program::Density;
use ravi_backend::Backend;
use ravi_backend::Tape;

use super::{Distribution, Parametrization};

/// One of K categories, P(k) = softmax(logits)_k.
pub struct Categorical;

impl Distribution for Categorical {
    const NAME: &'static str = "Categorical";
    const PARAMETRIZATIONS: &'static [Parametrization] = &[Parametrization {
        suffix: "",
        params: &["logits"],
        host: Some(Density::Classes(&Categorical)),
        moments: None,
    }];
}

impl Categorical {
    /// Σ_m log softmax(logits_m)\[y_m\] per particle, for `y` of shape (M,) holding category
    /// indices (data) and `logits` of shape (particles, M, K).
    pub fn log_prob_events<D: Backend, T: Tape<D>>(
        y: dfdx::tensor::Tensor<(usize,), f32, D>,
        logits: dfdx::tensor::Tensor<(usize, usize, usize), f32, D, T>,
    ) -> dfdx::tensor::Tensor<(usize,), f32, D, T> {
        use dfdx::prelude::*;
        Self::log_prob_values(y, logits).sum::<(usize,), Axis<1>>()
    }

    /// log softmax(logits_m)\[y_m\] per particle and value, (particles, M): the terms of
    /// [`Categorical::log_prob_events`] before their sum (a model's terms per data row).
    pub fn log_prob_values<D: Backend, T: Tape<D>>(
        y: dfdx::tensor::Tensor<(usize,), f32, D>,
        logits: dfdx::tensor::Tensor<(usize, usize, usize), f32, D, T>,
    ) -> dfdx::tensor::Tensor<(usize, usize), f32, D, T> {
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
        (logits.log_softmax::<Axis<2>>() * one_hot).sum::<(usize, usize), Axis<2>>()
    }
}

impl ClassDensity for Categorical {
    fn name(&self) -> &'static str {
        "Categorical"
    }

    /// Σᵢ logitsᵢ\[yᵢ\] − log Σₖ exp logitsᵢ\[k\], and weight · (onehot(yᵢ) − softmax(logitsᵢ))
    /// into the logits' gradient.
    fn rows(
        &self,
        y: &[f32],
        logits: &[f32],
        k: usize,
        weight: f32,
        mut grad: Option<&mut [f32]>,
    ) -> f64 {
        let mut sum = 0.0f64;
        for (i, &yi) in y.iter().enumerate() {
            let row = &logits[i * k..(i + 1) * k];
            let top = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
            let total: f32 = row.iter().map(|&v| exp(v - top)).sum();
            let lse = top + ln(total);
            // (the data checks guarantee a class in 0..K)
            let class = yi as usize;
            sum += f64::from(row.get(class).map_or(f32::NEG_INFINITY, |v| v - lse));
            if let Some(grad) = grad.as_deref_mut() {
                let g = &mut grad[i * k..(i + 1) * k];
                for (c, (g, &v)) in g.iter_mut().zip(row).enumerate() {
                    let hit = if c == class { 1.0 } else { 0.0 };
                    *g += weight * (hit - exp(v - lse));
                }
            }
        }
        sum
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

    /// The host density's rows against statrs, and its gradient one-hot(y) − softmax.
    #[test]
    fn host_rows_match_statrs_and_the_gradient() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(6);
        let (m, k) = (500, 4);
        let logits: Vec<f32> = (0..m * k).map(|_| rng.gen_range(-4.0..4.0)).collect();
        let y: Vec<f32> = (0..m).map(|_| rng.gen_range(0..k) as f32).collect();
        let mut grad = vec![0.0f32; m * k];
        let got = Categorical.rows(&y, &logits, k, 0.5, Some(&mut grad));
        let mut want = 0.0f64;
        for i in 0..m {
            let row = &logits[i * k..(i + 1) * k];
            let probs: Vec<f64> = row.iter().map(|&l| f64::from(l).exp()).collect();
            want += Reference::new(&probs).unwrap().ln_pmf(y[i] as u64);
            let z: f32 = row.iter().map(|l| l.exp()).sum();
            for j in 0..k {
                let g = f32::from(u8::from(y[i] as usize == j)) - row[j].exp() / z;
                assert!((grad[i * k + j] - 0.5 * g).abs() < 1e-5);
            }
        }
        assert!((got - want).abs() < 1e-4 * want.abs(), "{got} vs {want}");
    }
}
