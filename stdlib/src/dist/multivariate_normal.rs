//! The multivariate normal distribution over vectors.

use dfdx::prelude::*;
use ravi_backend::linalg::Matrix;
use ravi_backend::{Backend, PerParticle, Tape};

use super::consts::HALF_LN_2PI;
use super::events::{total, Events};
use super::{Distribution, Parametrization};

/// A Gaussian over vectors, N(loc, L Lᵀ), L = `scale_tril` lower triangular (data or
/// numbers: it may not depend on latent sites).
pub struct MultivariateNormal;

impl Distribution for MultivariateNormal {
    const NAME: &'static str = "MultivariateNormal";
    const PARAMETRIZATIONS: &'static [Parametrization] =
        &[Parametrization::graph_only("", &["loc", "scale_tril"])];
}

impl MultivariateNormal {
    /// −½ ‖L⁻¹(x − μ)‖² − Σ log |L_ii| − d/2 log 2π; L⁻¹ is formed on the host (L holds no
    /// gradient).
    pub fn log_prob_events<D: Backend, T: Tape<D>>(
        x: Events<D, T>,
        loc: Events<D, T>,
        scale_tril: Tensor<(usize, usize), f32, D>,
    ) -> PerParticle<D, T> {
        let (s, m, d) = *x.shape();
        let mut l = Matrix::from_f32(d, &scale_tril.as_vec());
        for i in 0..d {
            for j in i + 1..d {
                l.set(i, j, 0.0);
            }
        }
        let log_diag: f64 = (0..d).map(|i| l.get(i, i).abs().ln()).sum();
        let inv_t = x
            .device()
            .tensor_from_vec(l.lower_inverse().transpose().to_f32(), (d, d));
        // rows (x − μ) L⁻ᵀ
        let centred = (x - loc).reshape_like(&(s * m, d));
        let white = centred.matmul(inv_t).reshape_like(&(s, m, d));
        let per_particle = total(white.square()) * -0.5;
        per_particle - (m as f32) * (log_diag as f32 + d as f32 * HALF_LN_2PI)
    }
}

impl MultivariateNormal {
    /// loc + L ε per event, ε standard normal.
    pub fn rsample<D: Backend, T: Tape<D>>(
        loc: Events<D, T>,
        scale_tril: Tensor<(usize, usize), f32, D>,
    ) -> Events<D, T> {
        let (s, m, d) = *loc.shape();
        let eps: Tensor<(usize, usize), f32, D> = loc.device().sample_normal_like(&(s * m, d));
        let mut l = scale_tril.as_vec();
        for i in 0..d {
            for j in i + 1..d {
                l[i * d + j] = 0.0;
            }
        }
        let lt = loc
            .device()
            .tensor_from_vec(l, (d, d))
            .permute::<_, Axes2<1, 0>>();
        loc + eps.matmul(lt).reshape_like(&(s, m, d)).retaped::<T>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dist::events::testing::events;
    use rand::{Rng, SeedableRng};
    use statrs::distribution::{Continuous, MultivariateNormal as RefMvn};

    #[test]
    fn multivariate_normal_matches_statrs() {
        let dev = Cpu::default();
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let d = 3;
        let l = [1.2f32, 0.0, 0.0, 0.4, 0.7, 0.0, -0.3, 0.5, 1.5];
        let mut cov = vec![0.0f64; d * d];
        for i in 0..d {
            for j in 0..d {
                cov[i * d + j] = (0..d)
                    .map(|r| f64::from(l[i * d + r]) * f64::from(l[j * d + r]))
                    .sum();
            }
        }
        let loc = [0.5f32, -1.0, 2.0];
        let reference = RefMvn::new(loc.iter().map(|&v| f64::from(v)).collect(), cov).unwrap();
        let m = 1000;
        let x: Vec<f32> = (0..m * d).map(|_| rng.gen_range(-4.0f32..4.0)).collect();
        let locs: Vec<f32> = (0..m).flat_map(|_| loc).collect();
        let lp = MultivariateNormal::log_prob_events(
            events(&dev, x.clone(), m, d).reshape_like(&(m, 1usize, d)),
            events(&dev, locs, m, d).reshape_like(&(m, 1usize, d)),
            dev.tensor_from_vec(l.to_vec(), (d, d)),
        )
        .as_vec();
        for i in 0..m {
            let xi = nalgebra::DVector::from_iterator(
                d,
                x[i * d..(i + 1) * d].iter().map(|&v| f64::from(v)),
            );
            let want = reference.ln_pdf(&xi);
            assert!(
                (f64::from(lp[i]) - want).abs() < 2e-4 * (1.0 + want.abs()),
                "{} vs {want}",
                lp[i]
            );
        }
    }

    /// Draws have mean loc and covariance L Lᵀ.
    #[test]
    fn draws_have_the_moments() {
        let dev = Cpu::seed_from_u64(9);
        let n = 200_000;
        let l = [1.0f32, 0.0, 0.5, 0.8];
        let loc = dev
            .tensor_from_vec(vec![1.0f32, -2.0], (2,))
            .broadcast_like::<_, Axis<0>>(&(n, 2usize))
            .reshape_like(&(n, 1usize, 2usize));
        let x = MultivariateNormal::rsample::<Cpu, NoneTape>(
            loc,
            dev.tensor_from_vec(l.to_vec(), (2usize, 2usize)),
        )
        .as_vec();
        let rows: Vec<Vec<f64>> = x
            .chunks(2)
            .map(|r| r.iter().map(|&v| f64::from(v)).collect())
            .collect();
        let cov = ravi_backend::posterior::covariance(&rows);
        let want = [[1.0, 0.5], [0.5, 0.89]];
        for i in 0..2 {
            let mean = rows.iter().map(|r| r[i]).sum::<f64>() / n as f64;
            assert!((mean - [1.0, -2.0][i]).abs() < 0.01);
            for j in 0..2 {
                assert!(
                    (cov[i][j] - want[i][j]).abs() < 0.015,
                    "cov {i}{j} {}",
                    cov[i][j]
                );
            }
        }
    }
}
