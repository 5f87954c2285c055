use dfdx::prelude::*;
use ravi_backend::{
    traced, Backend, Estimator, FamilyArgs, FamilyDraw, GuideFamily, ParamId, ParamStore, Tape,
};

use super::{
    gaussian_entropy_constant, per_particle, rho_for, scale_of, std_normal_log_density, INIT_SCALE,
};

/// A fully factorized Gaussian: z = μ + σ ⊙ ε, σ = softplus(ρ) + floor, ε ~ N(0, I).
///
/// Estimators: standard, log q = log N(ε) − Σ log σ (its gradient equals the analytic
/// entropy's); analytic, −H = −Σ log σ − d/2 (1 + log 2π); path derivative, log q of z
/// with μ and σ held fixed.
#[derive(Debug, Clone)]
pub struct MeanField {
    dim: usize,
    loc: ParamId,
    rho: ParamId,
}

impl MeanField {
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The current location μ and scale σ, on the host.
    pub fn loc_scale<D: Backend>(&self, params: &ParamStore<D>) -> (Vec<f32>, Vec<f32>) {
        let sigma = scale_of(params.get(self.rho).clone());
        (params.get(self.loc).as_vec(), sigma.as_vec())
    }
}

impl<D: Backend> GuideFamily<D> for MeanField {
    fn build(params: &mut ParamStore<D>, name: &str, dim: usize, _args: &FamilyArgs) -> Self {
        MeanField {
            dim,
            loc: params.add(format!("{name}.loc"), vec![0.0; dim]),
            rho: params.add(format!("{name}.rho"), vec![rho_for(INIT_SCALE); dim]),
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
        let sigma = scale_of(traced::<D, T>(params, self.rho));
        let log_det = sigma.retaped::<T>().ln().sum::<(), _>();
        let z = sigma.broadcast_like::<_, Axis<0>>(&shape) * eps.clone()
            + loc.broadcast_like::<_, Axis<0>>(&shape);
        let log_q = match estimator {
            Estimator::Standard => {
                per_particle(log_det, particles).negate() + std_normal_log_density(eps)
            }
            Estimator::AnalyticEntropy => per_particle(
                log_det.negate() - gaussian_entropy_constant(self.dim),
                particles,
            ),
            Estimator::PathDerivative => {
                let loc = params.get(self.loc).clone();
                let sigma = scale_of(params.get(self.rho).clone());
                let held_log_det = sigma.clone().ln().sum::<(), _>().array();
                let e = (z.retaped::<T>() - loc.broadcast_like::<_, Axis<0>>(&shape))
                    / sigma.broadcast_like::<_, Axis<0>>(&shape);
                std_normal_log_density(e) - held_log_det
            }
        };
        FamilyDraw { z, log_q }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guides::tests::{check_estimators_agree, check_moments};
    use ravi_backend::linalg::Matrix;

    fn truth(f: &MeanField, store: &ParamStore<Cpu>) -> (Vec<f32>, Matrix) {
        let (loc, scale) = f.loc_scale(store);
        let mut cov = Matrix::zeros(f.dim());
        for (i, s) in scale.iter().enumerate() {
            cov.set(i, i, f64::from(*s).powi(2));
        }
        (loc, cov)
    }

    #[test]
    fn init_scale_round_trips() {
        let dev = Cpu::seed_from_u64(0);
        let mut store = ParamStore::new(&dev);
        let mf: MeanField = GuideFamily::<Cpu>::build(&mut store, "w", 3, &FamilyArgs::default());
        let (loc, scale) = mf.loc_scale(&store);
        assert_eq!(loc, vec![0.0; 3]);
        for s in scale {
            assert!((s - INIT_SCALE).abs() < 1e-6, "{s}");
        }
    }

    /// log q against the Gaussian density of the drawn z, and the draws' moments.
    #[test]
    fn log_q_is_the_density_of_the_draws() {
        let dev = Cpu::seed_from_u64(1);
        let mut store = ParamStore::new(&dev);
        let mf: MeanField = GuideFamily::<Cpu>::build(&mut store, "w", 2, &FamilyArgs::default());
        let draw = mf.sample::<NoneTape>(&store, 20_000, Estimator::Standard);
        let (z, lq) = (draw.z.as_vec(), draw.log_q.as_vec());
        let s = INIT_SCALE as f64;
        let mut m2 = 0.0;
        for (i, pair) in z.chunks(2).enumerate() {
            let want: f64 = pair
                .iter()
                .map(|&v| {
                    -0.5 * (v as f64 / s).powi(2) - s.ln() - 0.5 * (2.0 * std::f64::consts::PI).ln()
                })
                .sum();
            assert!((lq[i] as f64 - want).abs() < 1e-3, "{} vs {want}", lq[i]);
            m2 += (pair[0] as f64).powi(2);
        }
        let var = m2 / 20_000.0;
        // sd of the variance estimate: s² sqrt(2/n) ≈ 1e-4; allow 4 of them
        assert!((var - s * s).abs() < 4e-4, "{var}");
    }

    #[test]
    fn estimators_agree_in_value_and_expected_gradient() {
        check_estimators_agree::<MeanField>(&FamilyArgs::default(), 3, |f, s| truth(f, s).1);
    }

    #[test]
    fn draws_have_the_moments_and_log_q_their_density() {
        check_moments::<MeanField>(&FamilyArgs::default(), 3, truth);
    }
}
