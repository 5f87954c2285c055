use dfdx::prelude::*;
use ravi_backend::frame::Frame;
use ravi_backend::{
    traced, Backend, Estimator, FamilyArgs, FamilyDraw, FamilyStart, GuideFamily, HostGaussian,
    ParamId, ParamStore, Particles, PerParticle, Tape,
};

use super::{
    capped_scale_of, gaussian_entropy_constant, per_particle, rho_for, std_normal_log_density,
    INIT_SCALE,
};

/// A d×d constant on the device.
type SquareMatrix<D> = Tensor<(usize, usize), f32, D>;

/// A Gaussian with a full covariance: z = μ + L ε, L lower triangular with a positive
/// diagonal and a free strictly-lower part. Without an initialisation it starts as
/// MeanField does (μ = 0, L = 0.1 I); the Laplace initialisation starts it in the frame
/// z = m + S u with S = chol(H⁻¹) ([`ravi_backend::frame`]), at u ~ N(0, I).
///
/// The diagonal is L_ii = floor + c·softplus(ρ_i)/(c + softplus(ρ_i)) with floor 10⁻⁵ and
/// ceiling c = 10⁶ (in the frame's units): softplus(ρ) below 10³ or so, never 0 and never
/// beyond 10⁶, so log det L and the draws stay finite whatever steps Adam takes. A fit's
/// start also scales L's rows by each coordinate's starting sd (L = diag(s) L_u, L_u = I
/// at the start): Adam then moves L_u's entries relative to that scale, where an absolute
/// step of 0.02 on a row whose diagonal is 0.03 (a net's weight) would soon make L a
/// triangular matrix with an exponentially large inverse.
///
/// Entropy Σ log L_ii + d/2 (1 + log 2π). Estimators: standard, log N(ε) − Σ log L_ii;
/// analytic, −H; path derivative, log q(z) with μ and L held fixed, whose value is
/// log N(ε) − Σ log L_ii at the ε actually drawn and whose gradient in z is −L⁻ᵀ ε, found
/// by one triangular solve per particle in f64 on the host (never by recomputing
/// ε = L⁻¹ (z − μ) in f32, which loses every digit once L is ill-conditioned).
#[derive(Debug, Clone)]
pub struct FullRank {
    dim: usize,
    loc: ParamId,
    rho: ParamId,
    /// d×d row-major; only the strictly lower part is used (a mask zeroes the rest).
    lower: ParamId,
    frame: Option<Frame>,
    /// A constant scale per row of L (the coordinate's starting sd): L = diag(unit) L_u,
    /// so that Adam's steps on L_u's entries are relative to each coordinate's scale.
    unit: Option<ParamId>,
}

impl FullRank {
    /// The number of coordinates the family covers.
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
        let off = match self.unit {
            Some(u) => off * params.get(u).clone().broadcast_like::<_, Axis<1>>(&(d, d)),
            None => off,
        };
        let on = diag.broadcast_like::<_, Axis<0>>(&(d, d)) * eye;
        off + on
    }

    /// L's diagonal from ρ: capped softplus, times the row scales.
    fn diagonal<D: Backend, T: Tape<D>>(
        &self,
        params: &ParamStore<D>,
        rho: Tensor<(usize,), f32, D, T>,
    ) -> Tensor<(usize,), f32, D, T> {
        let diag = capped_scale_of(rho);
        match self.unit {
            Some(u) => diag * params.get(u).clone(),
            None => diag,
        }
    }

    /// μ_u and L_u (row-major) on the host: the Gaussian in the family's own coordinates
    /// (those of z when it has no frame).
    fn own_loc_scale_tril<D: Backend>(&self, params: &ParamStore<D>) -> (Vec<f32>, Vec<f32>) {
        let l = self.scale_tril::<D, NoneTape>(
            params,
            params.get(self.lower).clone(),
            self.diagonal(params, params.get(self.rho).clone()),
        );
        (params.get(self.loc).as_vec(), l.as_vec())
    }

    /// μ and L (row-major) of z on the host, through the frame when there is one
    /// (μ = m + S μ_u, L = S L_u).
    pub fn loc_scale_tril<D: Backend>(&self, params: &ParamStore<D>) -> (Vec<f32>, Vec<f32>) {
        let (loc, l) = self.own_loc_scale_tril(params);
        match &self.frame {
            None => (loc, l),
            Some(f) => {
                let host = f.host(params);
                let mut z = vec![0.0; self.dim];
                host.apply(&loc, &mut z);
                (z, host.scale_matrix(&l))
            }
        }
    }

    /// The frame the family works in, if it was started in one.
    pub fn frame(&self) -> Option<&Frame> {
        self.frame.as_ref()
    }

    /// The path derivative's log q(z) for draws z = μ + L ε: the value log N(ε) − Σ log L_ii
    /// and, through z alone, the gradient −L⁻ᵀ ε, entered as ⟨stop(−L⁻ᵀ ε), z⟩ minus a copy
    /// of its own value (so that the value is exact however large the product) plus the
    /// value, per particle. `None` where L is so ill-conditioned that L⁻ᵀ ε exceeds
    /// [`ravi_backend::linalg::PATH_DERIVATIVE_LIMIT`] times what its diagonal alone gives (max |ε| / min L_ii):
    /// such a gradient is all noise, and the step takes the standard estimator instead.
    fn path_derivative_log_q<D: Backend, T: Tape<D>>(
        &self,
        params: &ParamStore<D>,
        z: Particles<D, T>,
        eps: &[f32],
    ) -> Option<PerParticle<D, T>> {
        let d = self.dim;
        let (_, l) = self.own_loc_scale_tril(params);
        let mut terms = ravi_backend::linalg::PathDerivativeTerms::default();
        if !terms.compute(&l, d, eps) {
            return None;
        }
        let (slope, value) = (terms.slope, terms.value);
        let dev = params.device();
        let particles = value.len();
        let slope = dev.tensor_from_vec(slope, (particles, d));
        let product = (z.retaped::<T>() * slope).sum::<(usize,), Axis<1>>();
        let copy = dev.tensor_from_vec(product.retaped::<NoneTape>().as_vec(), (particles,));
        let value = dev.tensor_from_vec(value, (particles,));
        Some(product - copy + value)
    }
}

impl<D: Backend> GuideFamily<D> for FullRank {
    fn build(params: &mut ParamStore<D>, name: &str, dim: usize, _args: &FamilyArgs) -> Self {
        // d² + 2d parameters: refused (nothing allocated, the fit reports it) beyond memory
        let count = (dim as u64)
            .checked_mul(dim as u64)
            .and_then(|d2| d2.checked_add(2 * dim as u64));
        let fits = params.reserve(
            "FullRank",
            name,
            dim,
            count,
            "LowRank(rank = 10) or MeanField",
        );
        let dim = if fits { dim } else { 0 };
        FullRank {
            dim,
            loc: params.add(format!("{name}.loc"), vec![0.0; dim]),
            rho: params.add(format!("{name}.rho"), vec![rho_for(INIT_SCALE); dim]),
            lower: params.add(format!("{name}.lower"), vec![0.0; dim * dim]),
            frame: None,
            unit: None,
        }
    }

    fn start(&mut self, params: &mut ParamStore<D>, label: &str, start: &FamilyStart) {
        if start.has_gaussian() {
            self.frame = Some(Frame::set(params, label, &start.loc, &start.full_frame()));
            params.set(self.loc, &vec![0.0; self.dim]);
        } else {
            self.frame = None;
            Frame::clear(params, label);
            params.set(self.loc, &start.loc_f32());
        }
        // L_u starts at I, its rows scaled by each coordinate's starting sd
        let unit: Vec<f32> = start.unit_scale();
        self.unit = Some(params.set_constant(&format!("{label}.unit"), unit));
        params.set(self.rho, &vec![rho_for(1.0); self.dim]);
        params.set(self.lower, &vec![0.0; self.dim * self.dim]);
    }

    fn host_gaussian(&self) -> Option<HostGaussian> {
        Some(HostGaussian {
            loc: self.loc,
            rho: self.rho,
            lower: Some(self.lower),
            unit: self.unit,
            frame: self.frame,
        })
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
        let diag = self.diagonal(params, traced::<D, T>(params, self.rho));
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
            // L too ill-conditioned for the path derivative: the standard estimator, whose
            // value is still the draw's exact log q and whose gradient is the analytic
            // entropy's (ε carries none)
            Estimator::PathDerivative => self
                .path_derivative_log_q(params, z.retaped::<T>(), &eps.as_vec())
                .unwrap_or_else(|| {
                    per_particle(log_det, particles).negate() + std_normal_log_density(eps)
                }),
        };
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
    use ravi_backend::linalg::Matrix;

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
