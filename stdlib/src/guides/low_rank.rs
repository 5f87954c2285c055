use dfdx::prelude::*;
use ravi_backend::frame::Frame;
use ravi_backend::linalg::Matrix;
use ravi_backend::{
    traced, Backend, Estimator, FamilyArgs, FamilyDraw, FamilyStart, GuideFamily, ParamId,
    ParamStore, Tape,
};

use super::{gaussian_entropy_constant, per_particle, rho_for, scale_of, surrogate, INIT_SCALE};
use crate::dist::normal::HALF_LN_2PI;

/// A Gaussian with covariance Σ = diag(s²) + W Wᵀ, W d×k: z = μ + W ε₁ + s ⊙ ε₂. Memory and
/// time linear in d for a fixed rank k (`LowRank(rank = k)`; by default ⌈√d⌉, as Pyro's
/// AutoLowRankMultivariateNormal).
///
/// log det Σ = 2 Σ log s + log det C and Σ⁻¹ = S⁻² − S⁻² W C⁻¹ Wᵀ S⁻² with the k×k
/// capacitance C = I + Wᵀ S⁻² W (matrix determinant lemma, Woodbury); C is factored on
/// the host. Estimators: analytic (−H, its log det C gradient by the linear surrogate) and
/// path derivative (log q(z) with μ, W, s held fixed); standard falls back to analytic.
///
/// The Laplace initialisation starts it in a diagonal frame of that Gaussian's marginal sds
/// ([`ravi_backend::frame`]), with W from the leading eigenvectors of its correlation
/// matrix R (probabilistic PCA: W = V_k (Λ_k − τ)^½, τ the mean of the other eigenvalues)
/// and s² = diag(R − W Wᵀ), so it starts at the best rank-k fit to the Laplace Gaussian.
#[derive(Debug, Clone)]
pub struct LowRank {
    dim: usize,
    rank: usize,
    loc: ParamId,
    rho: ParamId,
    /// d×k row-major.
    factor: ParamId,
    frame: Option<Frame>,
}

impl LowRank {
    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn rank(&self) -> usize {
        self.rank
    }

    /// μ, W (d×k row-major) and s of z on the host (through the frame's diagonal when
    /// there is one).
    pub fn parts<D: Backend>(&self, params: &ParamStore<D>) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let (mut loc, mut w, mut s) = self.own_parts(params);
        if let Some(f) = &self.frame {
            let host = f.host(params);
            let k = self.rank;
            for i in 0..self.dim {
                let sd = host.scale[i];
                loc[i] = host.shift[i] + sd * loc[i];
                s[i] *= sd;
                w[i * k..(i + 1) * k].iter_mut().for_each(|v| *v *= sd);
            }
        }
        (loc, w, s)
    }

    /// μ, W and s in the family's own coordinates.
    fn own_parts<D: Backend>(&self, params: &ParamStore<D>) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        (
            params.get(self.loc).as_vec(),
            params.get(self.factor).as_vec(),
            scale_of(params.get(self.rho).clone()).as_vec(),
        )
    }

    /// The frame the family works in, if it was started in one.
    pub fn frame(&self) -> Option<&Frame> {
        self.frame.as_ref()
    }

    /// The dense covariance (for tests and small problems).
    pub fn covariance<D: Backend>(&self, params: &ParamStore<D>) -> Matrix {
        let (_, w, s) = self.parts(params);
        let (d, k) = (self.dim, self.rank);
        let mut cov = Matrix::zeros(d);
        for i in 0..d {
            for j in 0..d {
                let mut v: f64 = (0..k)
                    .map(|r| f64::from(w[i * k + r]) * f64::from(w[j * k + r]))
                    .sum();
                if i == j {
                    v += f64::from(s[i]).powi(2);
                }
                cov.set(i, j, v);
            }
        }
        cov
    }

    /// C = I + Wᵀ S⁻² W on the host, with its inverse and log det.
    fn capacitance(&self, w: &[f32], s: &[f32]) -> (Matrix, f64) {
        let (d, k) = (self.dim, self.rank);
        let mut c = Matrix::identity(k);
        for a in 0..k {
            for b in 0..k {
                let v: f64 = (0..d)
                    .map(|i| {
                        f64::from(w[i * k + a]) * f64::from(w[i * k + b]) / f64::from(s[i]).powi(2)
                    })
                    .sum();
                c.set(a, b, c.get(a, b) + v);
            }
        }
        c.spd_inverse_logdet()
            .expect("I + Wᵀ S⁻² W is positive definite")
    }
}

impl<D: Backend> GuideFamily<D> for LowRank {
    fn build(params: &mut ParamStore<D>, name: &str, dim: usize, args: &FamilyArgs) -> Self {
        let rank = args
            .count("rank")
            .unwrap_or_else(|| (dim as f64).sqrt().ceil() as usize)
            .clamp(1, dim.max(1));
        // A small random factor breaks the symmetry between its columns.
        let init: Vec<f32> = params
            .device()
            .sample_normal_like(&(dim * rank,))
            .as_vec()
            .into_iter()
            .map(|v| v * 0.01)
            .collect();
        LowRank {
            dim,
            rank,
            loc: params.add(format!("{name}.loc"), vec![0.0; dim]),
            rho: params.add(format!("{name}.rho"), vec![rho_for(INIT_SCALE); dim]),
            factor: params.add(format!("{name}.factor"), init),
            frame: None,
        }
    }

    fn start(&mut self, params: &mut ParamStore<D>, label: &str, start: &FamilyStart) {
        let (d, k) = (self.dim, self.rank);
        if !start.has_gaussian() {
            self.frame = None;
            params.set(self.loc, &start.loc_f32());
            let rho: Vec<f32> = start.unit_scale().into_iter().map(rho_for).collect();
            params.set(self.rho, &rho);
            return;
        }
        self.frame = Some(Frame::set(
            params,
            label,
            &start.loc,
            &start.marginal_frame(),
        ));
        let index = start.covered_indices();
        let n = index.len();
        let mut corr = Matrix::zeros(n);
        for a in 0..n {
            for b in 0..n {
                let v = start.cov.get(a, b) / (start.cov.get(a, a) * start.cov.get(b, b)).sqrt();
                corr.set(a, b, v);
            }
        }
        let (values, vectors) = corr.symmetric_eigen();
        let kept = k.min(n);
        let rest = &values[kept..];
        let tau = if rest.is_empty() {
            0.01
        } else {
            (rest.iter().sum::<f64>() / rest.len() as f64).max(1e-3)
        };
        let mut w = params.get(self.factor).as_vec();
        let mut s = start.unit_scale();
        for (a, &i) in index.iter().enumerate() {
            let mut explained = 0.0;
            for r in 0..k {
                let v = if r < kept {
                    vectors.get(a, r) * (values[r] - tau).max(0.0).sqrt()
                } else {
                    0.0
                };
                explained += v * v;
                w[i * k + r] = v as f32;
            }
            s[i] = (1.0 - explained).max(0.1 * tau).sqrt() as f32;
        }
        params.set(self.factor, &w);
        params.set(self.loc, &vec![0.0; d]);
        params.set(self.rho, &s.into_iter().map(rho_for).collect::<Vec<_>>());
    }

    fn sample<T: Tape<D>>(
        &self,
        params: &ParamStore<D>,
        particles: usize,
        estimator: Estimator,
    ) -> FamilyDraw<D, T> {
        let dev = params.device();
        let (d, k) = (self.dim, self.rank);
        let shape = (particles, d);
        let e1: Tensor<(usize, usize), f32, D> = dev.sample_normal_like(&(particles, k));
        let e2: Tensor<(usize, usize), f32, D> = dev.sample_normal_like(&shape);
        let loc = traced::<D, T>(params, self.loc);
        let s = scale_of(traced::<D, T>(params, self.rho));
        let w = traced::<D, T>(params, self.factor).reshape_like(&(d, k));
        let (_, w_host, s_host) = self.own_parts(params);
        let (c_inv, log_det_c) = self.capacitance(&w_host, &s_host);
        let log_q = match estimator {
            Estimator::PathDerivative => None,
            Estimator::AnalyticEntropy | Estimator::AnalyticKl | Estimator::Standard => {
                // −H = −Σ log s − ½ log det C − d/2 (1 + log 2π)
                let s2 = s
                    .retaped::<T>()
                    .square()
                    .broadcast_like::<_, Axis<1>>(&(d, k));
                let scaled = w.retaped::<T>() / s2;
                let c = w.retaped::<T>().permute::<_, Axes2<1, 0>>().matmul(scaled);
                let c_inv_t = dev.tensor_from_vec(c_inv.to_f32(), (k, k));
                let half_log_det_c = surrogate(c, c_inv_t, log_det_c as f32) * 0.5;
                let log_s = s.retaped::<T>().ln().sum::<(), _>();
                Some(per_particle(
                    (log_s + half_log_det_c).negate() - gaussian_entropy_constant(d),
                    particles,
                ))
            }
        };
        let z = w
            .matmul(e1.permute::<_, Axes2<1, 0>>())
            .permute::<_, Axes2<1, 0>>()
            + s.broadcast_like::<_, Axis<0>>(&shape) * e2
            + loc.broadcast_like::<_, Axis<0>>(&shape);
        let log_q = log_q.unwrap_or_else(|| {
            // log q(z) = −½ xᵀ Σ⁻¹ x − ½ log det Σ − d/2 log 2π, x = z − μ, all but z held.
            let loc = dev.tensor_from_vec(params.get(self.loc).as_vec(), (d,));
            let inv_s2: Vec<f32> = s_host.iter().map(|v| 1.0 / (v * v)).collect();
            let inv_s2 = dev.tensor_from_vec(inv_s2, (d,));
            let w_const = dev.tensor_from_vec(w_host.clone(), (d, k));
            let c_inv = dev.tensor_from_vec(c_inv.to_f32(), (k, k));
            let x = z.retaped::<T>() - loc.broadcast_like::<_, Axis<0>>(&shape);
            let y = x.retaped::<T>() * inv_s2.broadcast_like::<_, Axis<0>>(&shape);
            let u = y.retaped::<T>().matmul(w_const);
            let v = u.retaped::<T>().matmul(c_inv);
            let quad = (x * y).sum::<(usize,), Axis<1>>() - (u * v).sum::<(usize,), Axis<1>>();
            let log_s: f64 = s_host.iter().map(|v| f64::from(*v).ln()).sum();
            let half_log_det = log_s + 0.5 * log_det_c;
            quad * -0.5 - (half_log_det as f32 + d as f32 * HALF_LN_2PI)
        });
        match &self.frame {
            None => FamilyDraw { z, log_q },
            Some(f) => FamilyDraw {
                z: f.apply(params, z),
                log_q: log_q - f.log_det(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guides::tests::{check_estimators_agree, check_moments};
    use ravi_backend::FamilyArg;

    fn rank(k: f64) -> FamilyArgs {
        FamilyArgs(vec![("rank", FamilyArg::Number(k))])
    }

    #[test]
    fn estimators_agree_in_value_and_expected_gradient() {
        check_estimators_agree::<LowRank>(&rank(2.0), 4, |f, s| f.covariance(s));
    }

    #[test]
    fn draws_have_the_covariance_and_log_q_their_density() {
        check_moments::<LowRank>(&rank(2.0), 4, |f, store| {
            (store.get(f.loc).as_vec(), f.covariance(store))
        });
    }

    #[test]
    fn rank_defaults_to_the_root_of_the_dimension() {
        let dev = Cpu::seed_from_u64(0);
        let mut store = ParamStore::new(&dev);
        let f: LowRank = GuideFamily::<Cpu>::build(&mut store, "z", 10, &FamilyArgs::default());
        assert_eq!(f.rank(), 4);
    }
}
