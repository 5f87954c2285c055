use dfdx::prelude::*;
use ravi_backend::{Backend, GuideFamily, ParamId, ParamStore, Particles, PerParticle, Tape};

use super::{INIT_SCALE, SCALE_FLOOR};
use crate::dist::normal::HALF_LN_2PI;

/// A fully factorized Gaussian: z = μ + σ ⊙ ε, σ = softplus(ρ) + floor, ε ~ N(0, I).
///
/// log q(z) = Σ_j [−½ ε_j² − log σ_j] − d/2 log 2π, computed from ε itself: the value and
/// gradient are those of the Monte Carlo ELBO, and its entropy part is exact.
#[derive(Debug, Clone)]
pub struct MeanField {
    dim: usize,
    loc: ParamId,
    rho: ParamId,
}

impl MeanField {
    /// ρ with softplus(ρ) + floor = `scale`.
    fn rho_for(scale: f32) -> f32 {
        let s = scale - SCALE_FLOOR;
        s + (-(-s).exp_m1()).ln() // softplus⁻¹(s) = s + log(1 − e^{−s})
    }
    pub fn dim(&self) -> usize {
        self.dim
    }
    /// The current location μ and scale σ, on the host.
    pub fn loc_scale<D: Backend>(&self, params: &ParamStore<D>) -> (Vec<f32>, Vec<f32>) {
        let sigma = ravi_backend::ops::softplus(params.get(self.rho).clone()) + SCALE_FLOOR;
        (params.get(self.loc).as_vec(), sigma.as_vec())
    }
}

impl<D: Backend> GuideFamily<D> for MeanField {
    fn build(params: &mut ParamStore<D>, name: &str, dim: usize, _args: &[(&str, f64)]) -> Self {
        MeanField {
            dim,
            loc: params.add(format!("{name}.loc"), vec![0.0; dim]),
            rho: params.add(format!("{name}.rho"), vec![Self::rho_for(INIT_SCALE); dim]),
        }
    }

    fn sample<T: Tape<D>>(
        &self,
        params: &ParamStore<D>,
        particles: usize,
    ) -> (Particles<D, T>, PerParticle<D, T>) {
        let dev = params.device();
        let shape = (particles, self.dim);
        let eps: Tensor<(usize, usize), f32, D> = dev.sample_normal_like(&shape);
        let loc = ravi_backend::traced::<D, T>(params, self.loc);
        let sigma = ravi_backend::ops::softplus(ravi_backend::traced::<D, T>(params, self.rho))
            + SCALE_FLOOR;
        let log_det = sigma.retaped::<T>().ln().sum::<(), _>();
        let z = sigma.broadcast_like::<_, Axis<0>>(&shape) * eps.clone()
            + loc.broadcast_like::<_, Axis<0>>(&shape);
        let base = (eps.square().sum::<(usize,), Axis<1>>() * -0.5) - self.dim as f32 * HALF_LN_2PI;
        let log_q = log_det.broadcast_like::<_, Axis<0>>(&(particles,)).negate() + base;
        (z, log_q)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_scale_round_trips() {
        let dev = Cpu::seed_from_u64(0);
        let mut store = ParamStore::new(&dev);
        let mf: MeanField = GuideFamily::<Cpu>::build(&mut store, "w", 3, &[]);
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
        let mf: MeanField = GuideFamily::<Cpu>::build(&mut store, "w", 2, &[]);
        let (z, lq) = mf.sample::<NoneTape>(&store, 20_000);
        let (z, lq) = (z.as_vec(), lq.as_vec());
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
}
