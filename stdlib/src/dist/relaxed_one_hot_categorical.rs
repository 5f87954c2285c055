//! The concrete (Gumbel-softmax) distribution on the simplex.

use dfdx::prelude::*;
use ravi_backend::{Backend, PerParticle, Tape};

use super::events::{off_the_faces, Events};
use super::{Distribution, Parametrization};

/// The concrete / Gumbel-softmax distribution of Maddison et al. and Jang et al. (2017) on
/// the simplex: y = softmax((logits + g)/λ), g Gumbel; as λ falls it approaches a one-hot
/// Categorical(logits).
pub struct RelaxedOneHotCategorical;

impl Distribution for RelaxedOneHotCategorical {
    const NAME: &'static str = "RelaxedOneHotCategorical";
    const PARAMETRIZATIONS: &'static [Parametrization] =
        &[Parametrization::graph_only("", &["temperature", "logits"])];
}

impl RelaxedOneHotCategorical {
    /// log (K−1)! + (K−1) log λ + Σ_k (l_k − (λ+1) log y_k) − K logsumexp_k(l_k − λ log y_k):
    /// the log-ratio density ([`Self::log_prob_alr_events`]) less its Jacobian Σ_k log y_k.
    pub fn log_prob_events<D: Backend, T: Tape<D>>(
        y: Events<D, T>,
        temperature: Events<D, T>,
        logits: Events<D, T>,
    ) -> PerParticle<D, T> {
        let log_y = off_the_faces(y).ln();
        let jacobian = log_y.retaped::<T>().sum::<(usize, usize), Axis<2>>();
        (Self::log_prob_alr_events(log_y, temperature, logits) - jacobian)
            .sum::<(usize,), Axis<1>>()
    }
}

impl RelaxedOneHotCategorical {
    /// The density of a concrete value's additive-log-ratio coordinates u (u_k = log y_k −
    /// log y_K, the unconstrained space of simplex latents), from log y, per event
    /// `(particles, events)`: the simplex density with its log-Jacobian Σ_k log y_k added,
    /// log (K−1)! + (K−1) log λ + Σ_k l_k − λ Σ_k log y_k − K logsumexp_k(l_k − λ log y_k).
    /// Read from log y, it stays exact near a vertex, where y's small components underflow.
    pub fn log_prob_alr_events<D: Backend, T: Tape<D>>(
        log_y: Events<D, T>,
        temperature: Events<D, T>,
        logits: Events<D, T>,
    ) -> Tensor<(usize, usize), f32, D, T> {
        let (_, _, k) = *log_y.shape();
        let lam = temperature
            .slice((.., .., 0..1))
            .sum::<(usize, usize), Axis<2>>();
        let lam_full = lam
            .retaped::<T>()
            .broadcast_like::<_, Axis<2>>(log_y.shape());
        let scaled = logits.retaped::<T>() - log_y.retaped::<T>() * lam_full.retaped::<T>();
        let lse = scaled.logsumexp::<(usize, usize), Axis<2>>();
        let per_component = (logits - log_y * lam_full).sum::<(usize, usize), Axis<2>>();
        let log_fact: f32 = (1..k).map(|i| (i as f32).ln()).sum();
        per_component + lam.ln() * (k as f32 - 1.0) + log_fact - lse * k as f32
    }
}

impl RelaxedOneHotCategorical {
    /// softmax((logits + g)/λ) with Gumbel noise g = −log(−log u), per event along the last
    /// axis; `temperature` is one number.
    pub fn rsample<D: Backend, T: Tape<D>>(temperature: f32, logits: Events<D, T>) -> Events<D, T> {
        let shape = *logits.shape();
        let u: Tensor<(usize, usize, usize), f32, D> = logits.device().sample_uniform_like(&shape);
        let gumbel = u.clamp(1e-20, 1.0 - 1e-7).ln().negate().ln().negate();
        ((logits + gumbel) / temperature).softmax::<Axis<2>>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dist::events::testing::{events, simplex_points};
    use rand::{Rng, SeedableRng};

    /// The concrete density against its published form,
    /// (K−1)! λ^(K−1) Π_k α_k y_k^(−λ−1) / (Σ_k α_k y_k^(−λ))^K, α = e^logits.
    #[test]
    fn relaxed_one_hot_matches_the_published_density() {
        let dev = Cpu::default();
        let mut rng = rand::rngs::StdRng::seed_from_u64(2);
        let (m, k) = (1000, 3);
        let y = simplex_points(&mut rng, m, k);
        let logits: Vec<f32> = (0..m * k).map(|_| rng.gen_range(-2.0f32..2.0)).collect();
        let lams: Vec<f32> = (0..m).map(|_| rng.gen_range(0.3f32..2.0)).collect();
        let temps: Vec<f32> = lams
            .iter()
            .flat_map(|&l| std::iter::repeat_n(l, k))
            .collect();
        let lp = RelaxedOneHotCategorical::log_prob_events(
            dev.tensor_from_vec(y.clone(), (m, 1usize, k)),
            dev.tensor_from_vec(temps, (m, 1usize, k)),
            dev.tensor_from_vec(logits.clone(), (m, 1usize, k)),
        )
        .as_vec();
        for i in 0..m {
            let lam = f64::from(lams[i]);
            let (yy, ll) = (&y[i * k..(i + 1) * k], &logits[i * k..(i + 1) * k]);
            let fact: f64 = (1..k).map(|j| j as f64).product();
            let num: f64 = yy
                .iter()
                .zip(ll)
                .map(|(&y, &l)| f64::from(l).exp() * f64::from(y).powf(-lam - 1.0))
                .product();
            let den: f64 = yy
                .iter()
                .zip(ll)
                .map(|(&y, &l)| f64::from(l).exp() * f64::from(y).powf(-lam))
                .sum();
            let want = (fact * lam.powi(k as i32 - 1) * num / den.powi(k as i32)).ln();
            assert!(
                (f64::from(lp[i]) - want).abs() < 2e-4 * (1.0 + want.abs()),
                "{} vs {want}",
                lp[i]
            );
        }
    }

    /// The log-ratio density is the published simplex density (in f64) plus the map's
    /// log-Jacobian Σ log y, and it stays finite where y's components underflow f32.
    #[test]
    fn relaxed_one_hot_in_log_ratio_space() {
        let dev = Cpu::default();
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let (m, k) = (500, 4);
        let y = simplex_points(&mut rng, m, k);
        let logits: Vec<f32> = (0..m * k).map(|_| rng.gen_range(-2.0f32..2.0)).collect();
        let lams: Vec<f32> = (0..m).map(|_| rng.gen_range(0.3f32..2.0)).collect();
        let temps: Vec<f32> = lams
            .iter()
            .flat_map(|&l| std::iter::repeat_n(l, k))
            .collect();
        let t = |v: &[f32]| dev.tensor_from_vec(v.to_vec(), (m, 1usize, k));
        let log_y: Vec<f32> = y.iter().map(|v| v.ln()).collect();
        let alr = RelaxedOneHotCategorical::log_prob_alr_events(t(&log_y), t(&temps), t(&logits))
            .as_vec();
        for i in 0..m {
            let lam = f64::from(lams[i]);
            let (yy, ll) = (&y[i * k..(i + 1) * k], &logits[i * k..(i + 1) * k]);
            let fact: f64 = (1..k).map(|j| j as f64).product();
            let num: f64 = yy
                .iter()
                .zip(ll)
                .map(|(&y, &l)| f64::from(l).exp() * f64::from(y).powf(-lam - 1.0))
                .product();
            let den: f64 = yy
                .iter()
                .zip(ll)
                .map(|(&y, &l)| f64::from(l).exp() * f64::from(y).powf(-lam))
                .sum();
            let jac: f64 = yy.iter().map(|&y| f64::from(y).ln()).sum();
            let want = (fact * lam.powi(k as i32 - 1) * num / den.powi(k as i32)).ln() + jac;
            assert!(
                (f64::from(alr[i]) - want).abs() < 1e-3 * (1.0 + want.abs()),
                "{} vs {want}",
                alr[i]
            );
        }
        // Near a vertex: log y = (0, −120, −150, −200) has y's small components at 0 in f32.
        let lp = RelaxedOneHotCategorical::log_prob_alr_events(
            events(&dev, vec![0.0, -120.0, -150.0, -200.0], 1, 4),
            events(&dev, vec![0.5; 4], 1, 4),
            events(&dev, vec![0.0; 4], 1, 4),
        )
        .as_vec();
        assert!(lp[0].is_finite(), "{lp:?}");
    }

    /// As the temperature falls, concrete draws approach one-hot vectors: the mean largest
    /// component rises towards 1, and at λ = 0.005 nearly every draw is within 0.01 of a
    /// vertex (it is not when the two largest perturbed logits are within ≈ 4.6 λ).
    #[test]
    fn relaxed_one_hot_draws_approach_one_hot() {
        let dev = Cpu::seed_from_u64(4);
        let (m, k) = (4000, 5);
        let logits: Vec<f32> = (0..m * k).map(|i| (i % k) as f32 * 0.3).collect();
        let mut previous = 0.0;
        for lam in [2.0f32, 1.0, 0.5, 0.2, 0.05, 0.005] {
            let y = RelaxedOneHotCategorical::rsample::<Cpu, NoneTape>(
                lam,
                dev.tensor_from_vec(logits.clone(), (1usize, m, k)),
            )
            .as_vec();
            let largest: Vec<f32> = y
                .chunks(k)
                .map(|e| e.iter().cloned().fold(0.0, f32::max))
                .collect();
            let mean = largest.iter().sum::<f32>() / m as f32;
            assert!(
                mean > previous,
                "λ = {lam}: mean largest {mean} after {previous}"
            );
            previous = mean;
            if lam == 0.005 {
                let near = largest.iter().filter(|&&v| v > 0.99).count() as f32 / m as f32;
                assert!(near > 0.95, "λ = {lam}: {near} of draws near a vertex");
            }
        }
    }

    /// Draws are on the simplex and their argmax is Categorical(softmax(logits)) at any
    /// temperature (the Gumbel-max trick).
    #[test]
    fn the_argmax_of_draws_is_categorical() {
        let dev = Cpu::seed_from_u64(9);
        let n = 200_000;
        let logits = [0.5f32, -0.3, 1.2];
        let lg = dev
            .tensor_from_vec(logits.to_vec(), (3,))
            .broadcast_like::<_, Axis<0>>(&(n, 3usize))
            .reshape_like(&(n, 1usize, 3usize));
        let y = RelaxedOneHotCategorical::rsample::<Cpu, NoneTape>(0.7, lg).as_vec();
        let z: f64 = logits.iter().map(|&l| f64::from(l).exp()).sum();
        let mut counts = [0usize; 3];
        for e in y.chunks(3) {
            assert!((e.iter().sum::<f32>() - 1.0).abs() < 1e-4);
            let best = (0..3).max_by(|&a, &b| e[a].total_cmp(&e[b])).unwrap();
            counts[best] += 1;
        }
        for k in 0..3 {
            let p = f64::from(logits[k]).exp() / z;
            let got = counts[k] as f64 / n as f64;
            assert!(
                (got - p).abs() < 5.0 * (p * (1.0 - p) / n as f64).sqrt(),
                "category {k}: {got} vs {p}"
            );
        }
    }
}
