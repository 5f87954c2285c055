use dfdx::prelude::*;
use ravi_backend::linalg::Matrix;
use ravi_backend::{
    traced, Backend, Estimator, FamilyArgs, FamilyDraw, GuideFamily, ParamId, ParamStore, Tape,
};

use super::{
    gaussian_entropy_constant, per_particle, rho_for, scale_of, std_normal_log_density, INIT_SCALE,
};

/// A d×d constant on the device.
type SquareMatrix<D> = Tensor<(usize, usize), f32, D>;

/// A Gaussian with a full covariance: z = μ + L ε, L lower triangular with a positive
/// diagonal softplus(ρ) + floor and a free strictly-lower part. Starts as MeanField does
/// (μ = 0, L = 0.1 I).
///
/// Entropy Σ log L_ii + d/2 (1 + log 2π). Estimators: standard, log N(ε) − Σ log L_ii;
/// analytic, −H; path derivative, log q(z) with μ and L held fixed (L⁻¹ is formed on the
/// host each step: d² memory and d³ time, fine for the few hundred dimensions a full-rank
/// guide is for).
#[derive(Debug, Clone)]
pub struct FullRank {
    dim: usize,
    loc: ParamId,
    rho: ParamId,
    /// d×d row-major; only the strictly lower part is used (a mask zeroes the rest).
    lower: ParamId,
}

impl FullRank {
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The strictly-lower mask and the identity, as d×d constants.
    fn masks<D: Backend>(&self, dev: &D) -> (SquareMatrix<D>, SquareMatrix<D>) {
        let d = self.dim;
        let mut lower = vec![0.0f32; d * d];
        let mut eye = vec![0.0f32; d * d];
        for i in 0..d {
            eye[i * d + i] = 1.0;
            for j in 0..i {
                lower[i * d + j] = 1.0;
            }
        }
        (
            dev.tensor_from_vec(lower, (d, d)),
            dev.tensor_from_vec(eye, (d, d)),
        )
    }

    /// L as a d×d tensor on the parameters' tape.
    fn scale_tril<D: Backend, T: Tape<D>>(
        &self,
        params: &ParamStore<D>,
        lower: Tensor<(usize,), f32, D, T>,
        diag: Tensor<(usize,), f32, D, T>,
    ) -> Tensor<(usize, usize), f32, D, T> {
        let d = self.dim;
        let (mask, eye) = self.masks(params.device());
        let off = lower.reshape_like(&(d, d)) * mask;
        let on = diag.broadcast_like::<_, Axis<0>>(&(d, d)) * eye;
        off + on
    }

    /// μ and L (row-major) on the host.
    pub fn loc_scale_tril<D: Backend>(&self, params: &ParamStore<D>) -> (Vec<f32>, Vec<f32>) {
        let l = self.scale_tril::<D, NoneTape>(
            params,
            params.get(self.lower).clone(),
            scale_of(params.get(self.rho).clone()),
        );
        (params.get(self.loc).as_vec(), l.as_vec())
    }
}

impl<D: Backend> GuideFamily<D> for FullRank {
    fn build(params: &mut ParamStore<D>, name: &str, dim: usize, _args: &FamilyArgs) -> Self {
        FullRank {
            dim,
            loc: params.add(format!("{name}.loc"), vec![0.0; dim]),
            rho: params.add(format!("{name}.rho"), vec![rho_for(INIT_SCALE); dim]),
            lower: params.add(format!("{name}.lower"), vec![0.0; dim * dim]),
        }
    }

    fn sample<T: Tape<D>>(
        &self,
        params: &ParamStore<D>,
        particles: usize,
        estimator: Estimator,
    ) -> FamilyDraw<D, T> {
        let dev = params.device();
        let shape = (particles, self.dim);
        let eps: Tensor<(usize, usize), f32, D> = dev.sample_normal_like(&shape);
        let loc = traced::<D, T>(params, self.loc);
        let diag = scale_of(traced::<D, T>(params, self.rho));
        let log_det = diag.retaped::<T>().ln().sum::<(), _>();
        let l = self.scale_tril(params, traced::<D, T>(params, self.lower), diag);
        // (L εᵀ)ᵀ keeps the taped operand on the left of the product.
        let z = l
            .matmul(eps.clone().permute::<_, Axes2<1, 0>>())
            .permute::<_, Axes2<1, 0>>()
            + loc.broadcast_like::<_, Axis<0>>(&shape);
        let log_q = match estimator {
            Estimator::Standard => {
                per_particle(log_det, particles).negate() + std_normal_log_density(eps)
            }
            Estimator::AnalyticEntropy | Estimator::AnalyticKl => per_particle(
                log_det.negate() - gaussian_entropy_constant(self.dim),
                particles,
            ),
            Estimator::PathDerivative => {
                let (loc, l) = self.loc_scale_tril(params);
                let l = Matrix::from_f32(self.dim, &l);
                let held_log_det: f64 = (0..self.dim).map(|i| l.get(i, i).ln()).sum();
                // ε = L⁻¹ (z − μ), i.e. rows (z − μ) L⁻ᵀ, with L and μ constants.
                let inv_t = dev
                    .tensor_from_vec(l.lower_inverse().transpose().to_f32(), (self.dim, self.dim));
                let loc = dev.tensor_from_vec(loc, (self.dim,));
                let e = (z.retaped::<T>() - loc.broadcast_like::<_, Axis<0>>(&shape)).matmul(inv_t);
                std_normal_log_density(e) - held_log_det as f32
            }
        };
        FamilyDraw { z, log_q }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guides::tests::{check_estimators_agree, check_moments};

    #[test]
    fn estimators_agree_in_value_and_expected_gradient() {
        check_estimators_agree::<FullRank>(&FamilyArgs::default(), 3, |f, s| truth(f, s).1);
    }

    #[test]
    fn draws_have_the_covariance_l_lt_and_log_q_their_density() {
        check_moments::<FullRank>(&FamilyArgs::default(), 3, truth);
    }

    /// log q of each draw against statrs' multivariate normal with covariance L Lᵀ.
    #[test]
    fn log_q_matches_statrs_multivariate_normal() {
        use statrs::distribution::{Continuous, MultivariateNormal};
        let (f, store) = crate::guides::tests::randomized::<FullRank>(&FamilyArgs::default(), 4);
        let (loc, cov) = truth(&f, &store);
        let reference = MultivariateNormal::new(
            loc.iter().map(|&v| f64::from(v)).collect(),
            cov.data.clone(),
        )
        .expect("a valid covariance");
        let draw = f.sample::<NoneTape>(&store, 2000, Estimator::Standard);
        let (z, lq) = (draw.z.as_vec(), draw.log_q.as_vec());
        for (row, l) in z.chunks(4).zip(&lq) {
            let x = nalgebra::DVector::from_iterator(4, row.iter().map(|&v| f64::from(v)));
            let want = reference.ln_pdf(&x);
            // f32 arithmetic on values of order 10: 1e-3 relative.
            assert!(
                (f64::from(*l) - want).abs() < 1e-3 * (1.0 + want.abs()),
                "{l} vs statrs {want}"
            );
        }
    }

    fn truth(f: &FullRank, store: &ParamStore<Cpu>) -> (Vec<f32>, Matrix) {
        let (loc, l) = f.loc_scale_tril(store);
        let l = Matrix::from_f32(f.dim(), &l);
        (loc, l.matmul(&l.transpose()))
    }
}
