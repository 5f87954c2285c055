//! The guide's Gaussian entries on the host: `MeanField` (z = μ + σ ⊙ ε) and `FullRank`
//! (z = μ + L ε), their draws, log q under each estimator, and the gradients of the mean
//! ELBO in their parameters given the model's gradient in z.

use crate::family::Estimator;
use crate::linalg::Matrix;
use crate::ops::{sigmoid_f32 as sigmoid, softplus_f32 as softplus};

const HALF_LN_2PI: f32 = 0.918_938_5;

/// One entry: store indices of its parameters, its dimension.
pub(crate) struct Gaussian {
    pub loc: usize,
    pub rho: usize,
    /// `FullRank`'s d × d matrix whose strictly lower part is L's.
    pub lower: Option<usize>,
    pub dim: usize,
    pub floor: f32,
}

impl Gaussian {
    /// L (d × d, row-major) of a full-rank entry, or σ (d) of a mean-field one.
    fn scale(&self, params: &[Vec<f32>]) -> Vec<f32> {
        let d = self.dim;
        let diag = params[self.rho].iter().map(|&r| softplus(r) + self.floor);
        match self.lower {
            None => diag.collect(),
            Some(lower) => {
                let mut l = vec![0.0f32; d * d];
                for i in 0..d {
                    l[i * d..i * d + i].copy_from_slice(&params[lower][i * d..i * d + i]);
                }
                for (i, s) in diag.enumerate() {
                    l[i * d + i] = s;
                }
                l
            }
        }
    }

    /// z = μ + σ ⊙ ε or μ + L ε for each particle's ε (rows of `eps`), into `z`.
    pub(crate) fn draw(&self, params: &[Vec<f32>], eps: &[f32], z: &mut [f32]) {
        let (d, mu) = (self.dim, &params[self.loc]);
        let scale = self.scale(params);
        for (e, z) in eps.chunks_exact(d).zip(z.chunks_exact_mut(d)) {
            for i in 0..d {
                z[i] = match self.lower {
                    None => scale[i] * e[i] + mu[i],
                    Some(_) => {
                        let row = &scale[i * d..i * d + i + 1];
                        row.iter().zip(e).map(|(l, e)| l * e).sum::<f32>() + mu[i]
                    }
                };
            }
        }
    }

    /// Adds log q of each particle's draw to `log_q`, and writes the gradient of −(mean
    /// ELBO) in μ, ρ (and L) into `grads`, given `gz`: ∂ log p / ∂z per particle.
    pub(crate) fn log_q_and_gradient(
        &self,
        params: &[Vec<f32>],
        (eps, z, gz): (&[f32], &[f32], &[f32]),
        estimator: Estimator,
        log_q: &mut [f64],
        grads: &mut [Vec<f32>],
    ) {
        let (d, mu) = (self.dim, &params[self.loc]);
        let particles = eps.len() / d;
        let scale = self.scale(params);
        let diag: Vec<f32> = match self.lower {
            None => scale.clone(),
            Some(_) => (0..d).map(|i| scale[i * d + i]).collect(),
        };
        let log_det: f32 = diag.iter().map(|s| s.ln()).sum();
        // (L⁻¹)ᵀ for the path derivative of a full-rank entry, formed as the dfdx path
        // forms it (in f64 on the host).
        let inv_t = match (self.lower, estimator) {
            (Some(_), Estimator::PathDerivative) => Matrix::from_f32(d, &scale)
                .lower_inverse()
                .transpose()
                .to_f32(),
            _ => Vec::new(),
        };
        // ∂(log p − log q)/∂z per particle: the model's, plus the path derivative's +L⁻ᵀ e.
        let mut total = gz.to_vec();
        for s in 0..particles {
            let (e, zs) = (&eps[s * d..(s + 1) * d], &z[s * d..(s + 1) * d]);
            let t = &mut total[s * d..(s + 1) * d];
            let mut lq = -log_det;
            match estimator {
                Estimator::PathDerivative => {
                    // log q of z with μ and the scale held: e = L⁻¹ (z − μ).
                    let centred: Vec<f32> = zs.iter().zip(mu).map(|(z, m)| z - m).collect();
                    let held: Vec<f32> = match self.lower {
                        None => centred.iter().zip(&diag).map(|(c, s)| c / s).collect(),
                        Some(_) => (0..d)
                            .map(|j| (0..d).map(|i| centred[i] * inv_t[i * d + j]).sum())
                            .collect(),
                    };
                    for (i, h) in held.iter().enumerate() {
                        lq += -0.5 * h * h - HALF_LN_2PI;
                        // −∂ log q/∂z_i = (L⁻ᵀ e)_i = Σ_j inv_t[i, j] e_j
                        t[i] += match self.lower {
                            None => h / diag[i],
                            Some(_) => (0..d).map(|j| inv_t[i * d + j] * held[j]).sum(),
                        };
                    }
                }
                Estimator::Standard => {
                    lq += e.iter().map(|e| -0.5 * e * e - HALF_LN_2PI).sum::<f32>();
                }
                Estimator::AnalyticEntropy | Estimator::AnalyticKl => {
                    lq -= d as f32 * (0.5 + HALF_LN_2PI);
                }
            }
            log_q[s] += f64::from(lq);
        }
        // The gradients of the mean: μ takes Σ_s t_s; the scale Σ_s t_s ε_sᵀ (lower part);
        // −log q's +Σ log L_ii counts except under the path derivative.
        let inv_s = 1.0 / particles as f32;
        let entropy = estimator != Estimator::PathDerivative;
        let mut d_mu = vec![0.0f32; d];
        let mut d_scale = vec![0.0f32; if self.lower.is_some() { d * d } else { d }];
        for s in 0..particles {
            let (e, t) = (&eps[s * d..(s + 1) * d], &total[s * d..(s + 1) * d]);
            for i in 0..d {
                d_mu[i] += t[i];
                match self.lower {
                    None => d_scale[i] += t[i] * e[i],
                    Some(_) => {
                        for j in 0..=i {
                            d_scale[i * d + j] += t[i] * e[j];
                        }
                    }
                }
            }
        }
        let rho = &params[self.rho];
        // the loss is −ELBO
        for i in 0..d {
            grads[self.loc][i] = -d_mu[i] * inv_s;
            let at = if self.lower.is_some() { i * d + i } else { i };
            let ds = d_scale[at] * inv_s + if entropy { 1.0 / diag[i] } else { 0.0 };
            grads[self.rho][i] = -ds * sigmoid(rho[i]);
        }
        if let Some(lower) = self.lower {
            let g = &mut grads[lower];
            g.fill(0.0);
            for i in 0..d {
                for j in 0..i {
                    g[i * d + j] = -d_scale[i * d + j] * inv_s;
                }
            }
        }
    }
}
