//! Guide families. Each works on a vector `z` of some dimension: one site, or several sites
//! flattened and concatenated, which is how a family becomes joint over sites.
//!
//! | family | parameters | estimators (see [`ravi_backend::Estimator`]) |
//! |---|---|---|
//! | [`MeanField`] | μ, ρ (σ = softplus ρ + floor) | all three |
//! | [`FullRank`] | μ, L lower triangular with diagonal softplus ρ + floor | all three |
//! | [`LowRank`] | μ, W (d×k), diagonal sd softplus ρ + floor | path derivative, analytic (standard → analytic) |
//! | [`Implicit`] | a generator network from k-dim noise | its linearised entropy (all three) |
//! | [`Flow`] | a diagonal Gaussian base and the layers' networks | standard (the others fall back to it) |

mod amortized;
mod delta;
mod dense;
pub mod flow;
mod full_rank;
mod implicit;
mod local_mean_field;
mod low_rank;
mod mean_field;
pub mod program;
mod rewrite;
mod rows;

pub use amortized::{Amortized, LocalKind};
pub use delta::Delta;
pub use flow::Flow;
pub use full_rank::FullRank;
pub use implicit::{EntropyBound, Implicit};
pub use local_mean_field::LocalMeanField;
pub use low_rank::LowRank;
pub use mean_field::MeanField;
pub use rewrite::{Flipout, Lrt};
pub use rows::NormalPrior;

use dfdx::prelude::*;
use ravi_backend::{Backend, PerParticle, Tape};

use crate::dist::consts::HALF_LN_2PI;

/// Every family of the stdlib by name, as the compiler's catalogue names them.
pub const IMPLEMENTED: &[&str] = &[
    "MeanField",
    "FullRank",
    "LowRank",
    "Flow",
    "Implicit",
    "Flipout",
    "Lrt",
];

pub use ravi_backend::init::INIT_SCALE;
pub use ravi_backend::scale::{capped_scale_of, rho_for, scale_of, SCALE_CEILING, SCALE_FLOOR};

/// log N(ε; 0, I) per row of `(particles, dim)` standard-normal coordinates.
pub(crate) fn std_normal_log_density<D: Backend, T: Tape<D>>(
    eps: Tensor<(usize, usize), f32, D, T>,
) -> PerParticle<D, T> {
    let d = eps.shape().1;
    eps.square().sum::<(usize,), Axis<1>>() * -0.5 - d as f32 * HALF_LN_2PI
}

/// The entropy of N(·, Σ) less ½ log det Σ: d/2 (1 + log 2π).
pub(crate) fn gaussian_entropy_constant(dim: usize) -> f32 {
    dim as f32 * (0.5 + HALF_LN_2PI)
}

/// An untaped copy of `t` under a new tensor id: a value held fixed in a path-derivative
/// term. dfdx gives an untaped operand a gradient too, and a broadcast keeps the id, so a
/// mere untaped view of a parameter (or of a value computed from one) would hand the held
/// term's gradient back to it, undoing the hold.
pub(crate) fn held<S: Shape, D: Backend, T: Tape<D>>(
    t: &Tensor<S, f32, D, T>,
) -> Tensor<S, f32, D> {
    t.retaped::<dfdx::tensor::NoneTape>() + 0.0
}

/// A per-particle copy of a scalar.
pub(crate) fn per_particle<D: Backend, T: Tape<D>>(
    x: Tensor<(), f32, D, T>,
    particles: usize,
) -> PerParticle<D, T> {
    x.broadcast_like::<_, Axis<0>>(&(particles,))
}

/// `x` with the value `value` and the gradient `grad` with respect to the taped tensor `m`
/// (the linear surrogate of `ravi_backend::linalg`): ⟨grad, m⟩ − stop(⟨grad, m⟩) + value,
/// the stopped copy subtracted as a tensor of its own, so that the value is exact however
/// large ⟨grad, m⟩ is.
pub(crate) fn surrogate<S: Shape, D: Backend, T: Tape<D>>(
    m: Tensor<S, f32, D, T>,
    grad: Tensor<S, f32, D>,
    value: f32,
) -> Tensor<(), f32, D, T> {
    let dev = grad.device().clone();
    let dot = m.try_mul(grad).expect("same shapes").sum::<(), _>();
    let copy = dev.tensor(dot.array());
    dot - copy + value
}

/// Checks shared by every family's tests, against independent references: the dense
/// Gaussian (density, entropy by Cholesky) and finite differences.
#[cfg(test)]
pub(crate) mod tests {
    use dfdx::prelude::*;
    use dfdx::tensor::OwnedTape;
    use ravi_backend::linalg::Matrix;
    use ravi_backend::{Estimator, FamilyArgs, GuideFamily, ParamStore};

    /// A family built on a seeded CPU with every parameter moved to a random value, so
    /// nothing is checked at a special point like L = 0.1 I.
    pub fn randomized<F: GuideFamily<Cpu>>(args: &FamilyArgs, dim: usize) -> (F, ParamStore<Cpu>) {
        let dev = Cpu::seed_from_u64(7);
        let mut store = ParamStore::new(&dev);
        let f = F::build(&mut store, "z", dim, args);
        let ids: Vec<_> = store.ids().collect();
        for id in ids {
            let n = store.get(id).shape().0;
            let v: Tensor<(usize,), f32, Cpu> = dev.sample_normal_like(&(n,));
            let v: Vec<f32> = v.as_vec().iter().map(|x| 0.4 * x).collect();
            store.set(id, &v);
        }
        (f, store)
    }

    /// ½ log det (2πe Σ).
    fn gaussian_entropy(cov: &Matrix) -> f64 {
        let (_, logdet) = cov.spd_inverse_logdet().expect("SPD");
        0.5 * logdet + cov.n as f64 * 0.5 * (1.0 + (2.0 * std::f64::consts::PI).ln())
    }

    /// Draw moments against (μ, Σ) from `truth`, and log q (path-derivative value: the
    /// density of the draw) against the dense Gaussian density.
    pub fn check_moments<F: GuideFamily<Cpu>>(
        args: &FamilyArgs,
        dim: usize,
        truth: impl Fn(&F, &ParamStore<Cpu>) -> (Vec<f32>, Matrix),
    ) {
        let (f, store) = randomized::<F>(args, dim);
        let (loc, cov) = truth(&f, &store);
        let (prec, logdet) = cov.spd_inverse_logdet().unwrap();
        let n = 40_000;
        let draw = f.sample::<NoneTape>(&store, n, Estimator::PathDerivative);
        let (z, lq) = (draw.z.as_vec(), draw.log_q.as_vec());
        let rows: Vec<Vec<f64>> = z
            .chunks(dim)
            .map(|r| r.iter().map(|&v| f64::from(v)).collect())
            .collect();
        for (r, &l) in rows.iter().zip(&lq).take(500) {
            let x: Vec<f64> = r.iter().zip(&loc).map(|(a, b)| a - f64::from(*b)).collect();
            let quad: f64 = (0..dim)
                .map(|i| (0..dim).map(|j| x[i] * prec.get(i, j) * x[j]).sum::<f64>())
                .sum();
            let want =
                -0.5 * quad - 0.5 * logdet - dim as f64 * 0.5 * (2.0 * std::f64::consts::PI).ln();
            // f32 arithmetic on values of order 10: 1e-3 absolute.
            assert!(
                (f64::from(l) - want).abs() < 2e-3 * (1.0 + want.abs()),
                "{l} vs {want}"
            );
        }
        let sample_cov = ravi_backend::posterior::covariance(&rows);
        for i in 0..dim {
            let mean = rows.iter().map(|r| r[i]).sum::<f64>() / n as f64;
            let se = (cov.get(i, i) / n as f64).sqrt();
            assert!(
                (mean - f64::from(loc[i])).abs() < 5.0 * se,
                "mean[{i}] {mean} vs {}",
                loc[i]
            );
            for (j, &got) in sample_cov[i].iter().enumerate() {
                // se of a sample covariance: sqrt((Σii Σjj + Σij²) / n)
                let se =
                    ((cov.get(i, i) * cov.get(j, j) + cov.get(i, j).powi(2)) / n as f64).sqrt();
                assert!(
                    (got - cov.get(i, j)).abs() < 5.0 * se,
                    "cov[{i}][{j}] {} vs {}",
                    got,
                    cov.get(i, j)
                );
            }
        }
    }

    /// Mean log q term and its gradient over `n` draws.
    fn mean_and_grad<F: GuideFamily<Cpu>>(
        f: &F,
        store: &ParamStore<Cpu>,
        est: Estimator,
        n: usize,
    ) -> (f64, Vec<Vec<f32>>) {
        let draw = f.sample::<OwnedTape<f32, Cpu>>(store, n, est);
        // z enters with weight 0 so that every parameter has a gradient entry (μ does not
        // enter an analytic entropy).
        let m = draw.log_q.mean::<(), _>() + draw.z.sum::<(), _>() * 0.0;
        let value = f64::from(m.array());
        let grads = m.backward();
        let g = store
            .ids()
            .map(|id| grads.get(store.get(id)).as_vec())
            .collect();
        (value, g)
    }

    /// Every estimator's E[log q term] is −H and its expected gradient −∇H, with H the
    /// dense Gaussian entropy of `truth` and ∇H by central finite differences of it.
    pub fn check_estimators_agree<F: GuideFamily<Cpu>>(
        args: &FamilyArgs,
        dim: usize,
        truth: impl Fn(&F, &ParamStore<Cpu>) -> Matrix,
    ) {
        let (f, mut store) = randomized::<F>(args, dim);
        let h = gaussian_entropy(&truth(&f, &store));
        let ids: Vec<_> = store.ids().collect();
        let mut fd = Vec::new();
        for &id in &ids {
            let base = store.get(id).as_vec();
            let mut g = Vec::new();
            for i in 0..base.len() {
                let step = 1e-2f32;
                let mut v = base.clone();
                v[i] = base[i] + step;
                store.set(id, &v);
                let up = gaussian_entropy(&truth(&f, &store));
                v[i] = base[i] - step;
                store.set(id, &v);
                let down = gaussian_entropy(&truth(&f, &store));
                g.push(-(up - down) / (2.0 * f64::from(step)));
            }
            store.set(id, &base);
            fd.push(g);
        }
        let n = 50_000;
        for est in [
            Estimator::AnalyticEntropy,
            Estimator::Standard,
            Estimator::PathDerivative,
        ] {
            let (value, grads) = mean_and_grad(&f, &store, est, n);
            // log q has sd about sqrt(d/2) across draws.
            let se = (dim as f64 / 2.0 / n as f64).sqrt();
            assert!(
                (value + h).abs() < 5.0 * se + 1e-4,
                "{est:?}: E[log q] {value} vs −H {}",
                -h
            );
            for (p, (got, want)) in grads.iter().zip(&fd).enumerate() {
                for (i, (g, w)) in got.iter().zip(want).enumerate() {
                    // Finite differences of f64 entropy at step 1e-2: error O(1e-4);
                    // Monte Carlo gradients (path derivative): se ≈ |∂z/∂φ| / σ / sqrt(n).
                    assert!(
                        (f64::from(*g) - w).abs() < 0.03 + 0.03 * w.abs(),
                        "{est:?}: parameter {p} [{i}]: {g} vs finite differences {w}"
                    );
                }
            }
        }
    }
}
