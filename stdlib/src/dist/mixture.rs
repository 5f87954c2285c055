//! A mixture of one family's components: `y ~ Mixture(logits, Normal(locs, scales))`. The
//! component's own density (any elementwise distribution) is evaluated at each value for
//! every component, along a last axis of K components; the mixture marginalises them.

use dfdx::prelude::*;
use ravi_backend::density::{ElementDensity, MixtureDensity};
use ravi_backend::{Backend, Tape};

/// log Σ_k softmax(logits)_k p_k per value: `component_log_prob` and `logits` are
/// (particles, values, K); the result is (particles, values).
pub fn mixture_log_prob<D: Backend, T: Tape<D>>(
    component_log_prob: Tensor<(usize, usize, usize), f32, D, T>,
    logits: Tensor<(usize, usize, usize), f32, D, T>,
) -> Tensor<(usize, usize), f32, D, T> {
    let log_weights = logits.log_softmax::<Axis<2>>();
    (component_log_prob + log_weights).logsumexp::<(usize, usize), Axis<2>>()
}

/// The host engine's mixture of a component density.
pub const fn mixture_of(component: &'static dyn ElementDensity) -> MixtureDensity {
    MixtureDensity { component }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dist::{Arg, Normal, Poisson};
    use ravi_backend::Cpu;
    use statrs::distribution::{Continuous, Discrete, Normal as SNormal, Poisson as SPoisson};

    fn log_mix(x: f64, w: &[f64], p: impl Fn(usize, f64) -> f64) -> f64 {
        let total: f64 = w.iter().map(|v| v.exp()).sum();
        w.iter()
            .enumerate()
            .map(|(k, l)| l.exp() / total * p(k, x).exp())
            .sum::<f64>()
            .ln()
    }

    /// Against Σ_k w_k p_k(x) from statrs, for Normal components at 1000 points.
    #[test]
    fn normal_mixture_matches_statrs() {
        let dev = Cpu::default();
        let (n, k) = (1000usize, 3usize);
        let xs: Vec<f32> = (0..n).map(|i| -6.0 + 12.0 * i as f32 / n as f32).collect();
        let logits = [0.3f32, -1.0, 0.8];
        let locs = [-2.0f32, 0.5, 3.0];
        let scales = [0.7f32, 1.5, 0.4];
        let spread = |v: &[f32]| -> Vec<f32> { (0..n).flat_map(|_| v.iter().copied()).collect() };
        let shape = (1usize, n, k);
        let x = dev.tensor_from_vec(xs.iter().flat_map(|&x| [x; 3]).collect(), shape);
        let lp = Normal::log_prob(
            x,
            Arg::Tensor(dev.tensor_from_vec(spread(&locs), shape)),
            Arg::Tensor(dev.tensor_from_vec(spread(&scales), shape)),
        );
        let got = mixture_log_prob(lp, dev.tensor_from_vec(spread(&logits), shape)).as_vec();
        let w: Vec<f64> = logits.iter().map(|&v| f64::from(v)).collect();
        for (i, &x) in xs.iter().enumerate() {
            let want = log_mix(f64::from(x), &w, |k, x| {
                SNormal::new(f64::from(locs[k]), f64::from(scales[k]))
                    .unwrap()
                    .ln_pdf(x)
            });
            assert!(
                (f64::from(got[i]) - want).abs() < 1e-4 * want.abs().max(1.0),
                "x = {x}: {} vs {want}",
                got[i]
            );
        }
    }

    /// The host density and its partials (by finite differences of the reference) for a
    /// Poisson mixture: counts, two components.
    #[test]
    fn host_poisson_mixture_matches_statrs() {
        let density = mixture_of(&Poisson);
        let reference = |x: f64, a: &[f64; 4]| {
            log_mix(x, &[a[0], a[1]], |k, x| {
                SPoisson::new(a[2 + k]).unwrap().ln_pmf(x as u64)
            })
        };
        for i in 0..1000u32 {
            let x = f64::from(i % 25);
            let a = [
                0.2 + f64::from(i % 7) * 0.1,
                -0.5,
                1.5 + f64::from(i % 5),
                9.0 + f64::from(i % 3),
            ];
            let logits = [a[0] as f32, a[1] as f32];
            let rates = [[a[2] as f32, 0.0, 0.0], [a[3] as f32, 0.0, 0.0]];
            let (lp, d_logits, d_args) = density.value(x as f32, &logits, &rates);
            let lp = lp + density.data_term(&[x as f32]) as f32;
            let want = reference(x, &a);
            assert!(
                (f64::from(lp) - want).abs() < 1e-4 * want.abs().max(1.0),
                "{x}: {lp} vs {want}"
            );
            let h = 1e-5;
            for j in 0..4 {
                let (mut up, mut down) = (a, a);
                up[j] += h;
                down[j] -= h;
                let fd = (reference(x, &up) - reference(x, &down)) / (2.0 * h);
                let got = if j < 2 { d_logits[j] } else { d_args[j - 2][0] };
                assert!(
                    (f64::from(got) - fd).abs() < 1e-3 * fd.abs().max(1.0),
                    "{x}, arg {j}: {got} vs {fd}"
                );
            }
        }
    }
}
