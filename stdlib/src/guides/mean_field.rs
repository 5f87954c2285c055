use dfdx::prelude::*;
use ravi_backend::frame::Frame;
use ravi_backend::{
    traced, Backend, Estimator, FamilyArgs, FamilyDraw, FamilyStart, GuideFamily, HostGaussian,
    ParamId, ParamStore, Particles, PerParticle, Tape,
};

use super::{
    gaussian_entropy_constant, held, per_particle, rho_for, scale_of, std_normal_log_density,
    INIT_SCALE,
};

/// A vector on a tape.
type Vector<D, T> = Tensor<(usize,), f32, D, T>;

/// A fully factorized Gaussian: z = μ + σ ⊙ ε, σ = softplus(ρ) + floor, ε ~ N(0, I).
///
/// Estimators: standard, log q = log N(ε) − Σ log σ (its gradient equals the analytic
/// entropy's); analytic, −H = −Σ log σ − d/2 (1 + log 2π); path derivative, log q of z
/// with μ and σ held fixed.
///
/// Started by the Laplace approximation, it works in a diagonal frame z = m + s ⊙ u
/// ([`ravi_backend::frame`]) with s the mean-field optimum's sds of that Gaussian and u
/// starting at N(0, I): μ and σ above are then s ⊙ μ_u + m and s ⊙ σ_u.
#[derive(Debug, Clone)]
pub struct MeanField {
    dim: usize,
    loc: ParamId,
    rho: ParamId,
    frame: Option<Frame>,
}

impl MeanField {
    /// The number of coordinates the family covers.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The ids of μ and ρ in the store.
    pub fn param_ids(&self) -> (ParamId, ParamId) {
        (self.loc, self.rho)
    }

    /// The frame the family works in, if it was started in one.
    pub fn frame(&self) -> Option<&Frame> {
        self.frame.as_ref()
    }

    /// The current location μ and scale σ (of z, in the frame's image), on the host.
    pub fn loc_scale<D: Backend>(&self, params: &ParamStore<D>) -> (Vec<f32>, Vec<f32>) {
        let (loc, sigma) = self.gaussian::<D, NoneTape>(params);
        (loc.as_vec(), sigma.as_vec())
    }

    /// μ and σ of z on the parameters' tape: softplus(ρ) + floor and the location, taken
    /// through the frame's diagonal when there is one.
    pub fn gaussian<D: Backend, T: Tape<D>>(
        &self,
        params: &ParamStore<D>,
    ) -> (Vector<D, T>, Vector<D, T>) {
        let loc = traced::<D, T>(params, self.loc);
        let sigma = scale_of(traced::<D, T>(params, self.rho));
        match &self.frame {
            None => (loc, sigma),
            Some(f) => {
                let s = params.get(f.scale).clone();
                let m = params.get(f.shift).clone();
                (loc * s.clone() + m, sigma * s)
            }
        }
    }
}

impl MeanField {
    /// The log q term that turns this entry's part of the ELBO into −KL(q‖p) for a
    /// factorized Normal prior p (per coordinate `prior_loc`, `prior_scale`):
    /// log p(z) + KL(q‖p). The model adds log p(z) of the same draw, so the two cancel and
    /// the ELBO keeps −KL, whose gradient is exact:
    /// KL = Σ_j log(s_j/σ_j) + (σ_j² + (μ_j − m_j)²)/(2 s_j²) − ½.
    pub fn analytic_kl_term<D: Backend, T: Tape<D>>(
        &self,
        params: &ParamStore<D>,
        z: Particles<D, T>,
        prior_loc: &[f32],
        prior_scale: &[f32],
    ) -> PerParticle<D, T> {
        let dev = params.device();
        let d = self.dim;
        let (s, _) = *z.shape();
        let m = dev.tensor_from_vec(prior_loc.to_vec(), (d,));
        let inv_s = dev.tensor_from_vec(prior_scale.iter().map(|v| 1.0 / v).collect(), (d,));
        let log_s: f32 = prior_scale.iter().map(|v| v.ln()).sum();
        // log p(z) per particle
        let standardized = (z - m.clone().broadcast_like::<_, Axis<0>>(&(s, d)))
            * inv_s.clone().broadcast_like::<_, Axis<0>>(&(s, d));
        let log_p = std_normal_log_density(standardized) - log_s;
        // KL, one number on the parameters' tape
        let (loc, sigma) = self.gaussian::<D, T>(params);
        let log_sigma = sigma.retaped::<T>().ln().sum::<(), _>();
        let ratio = (sigma * inv_s.clone()).square();
        let shift = ((loc - m) * inv_s).square();
        let kl = (ratio + shift).sum::<(), _>() * 0.5 - log_sigma + (log_s - 0.5 * d as f32);
        log_p + per_particle(kl, s)
    }
}

impl<D: Backend> GuideFamily<D> for MeanField {
    fn build(params: &mut ParamStore<D>, name: &str, dim: usize, _args: &FamilyArgs) -> Self {
        let count = (dim as u64).checked_mul(2);
        let fits = params.reserve(
            "MeanField",
            name,
            dim,
            count,
            "a model with fewer coordinates",
        );
        let dim = if fits { dim } else { 0 };
        MeanField {
            dim,
            loc: params.add(format!("{name}.loc"), vec![0.0; dim]),
            rho: params.add(format!("{name}.rho"), vec![rho_for(INIT_SCALE); dim]),
            frame: None,
        }
    }

    fn start(&mut self, params: &mut ParamStore<D>, label: &str, start: &FamilyStart) {
        if start.has_gaussian() {
            self.frame = Some(Frame::set(
                params,
                label,
                &start.loc,
                &start.mean_field_frame(),
            ));
            params.set(self.loc, &vec![0.0; self.dim]);
        } else {
            self.frame = None;
            Frame::clear(params, label);
            params.set(self.loc, &start.loc_f32());
        }
        let rho: Vec<f32> = start.unit_scale().into_iter().map(rho_for).collect();
        params.set(self.rho, &rho);
    }

    fn host_gaussian(&self) -> Option<HostGaussian> {
        Some(HostGaussian {
            frame: self.frame,
            ..HostGaussian::mean_field(self.loc, self.rho)
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
        let sigma = scale_of(traced::<D, T>(params, self.rho));
        let log_det = sigma.retaped::<T>().ln().sum::<(), _>();
        let z = sigma.broadcast_like::<_, Axis<0>>(&shape) * eps.clone()
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
                // Fresh copies: dfdx hands a gradient to untaped operands too, by id, and a
                // clone keeps the parameter's id (see `held`).
                let loc = held(params.get(self.loc));
                let sigma = scale_of(held(params.get(self.rho)));
                let held_log_det = sigma.clone().ln().sum::<(), _>().array();
                let e = (z.retaped::<T>() - loc.broadcast_like::<_, Axis<0>>(&shape))
                    / sigma.broadcast_like::<_, Axis<0>>(&shape);
                std_normal_log_density(e) - held_log_det
            }
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

    /// The closed-form KL against a Monte Carlo average of log q − log p over 200,000 draws.
    #[test]
    fn analytic_kl_matches_monte_carlo() {
        let (f, store) = crate::guides::tests::randomized::<MeanField>(&FamilyArgs::default(), 3);
        let (prior_loc, prior_scale) = ([0.5f32, -1.0, 0.0], [2.0f32, 0.7, 1.3]);
        let n = 200_000;
        let draw = f.sample::<NoneTape>(&store, n, Estimator::Standard);
        let term =
            f.analytic_kl_term::<Cpu, NoneTape>(&store, draw.z.clone(), &prior_loc, &prior_scale);
        // term − log p(z) = KL exactly, for every draw
        let z = draw.z.as_vec();
        let log_p = |row: &[f32]| -> f64 {
            row.iter()
                .zip(prior_loc.iter().zip(&prior_scale))
                .map(|(&x, (&m, &s))| {
                    let (x, m, s) = (f64::from(x), f64::from(m), f64::from(s));
                    -0.5 * ((x - m) / s).powi(2) - s.ln() - 0.5 * (2.0 * std::f64::consts::PI).ln()
                })
                .sum()
        };
        let term = term.as_vec();
        let kl = f64::from(term[0]) - log_p(&z[..3]);
        let lq = draw.log_q.as_vec();
        let mc: f64 = z
            .chunks(3)
            .zip(&lq)
            .map(|(row, &l)| f64::from(l) - log_p(row))
            .sum::<f64>()
            / n as f64;
        // sd of log q − log p here is below 2, so the Monte Carlo se is below 0.005
        assert!(
            (kl - mc).abs() < 0.02,
            "closed form {kl} vs Monte Carlo {mc}"
        );
        for (row, &t) in z.chunks(3).zip(&term).take(100) {
            assert!((f64::from(t) - log_p(row) - kl).abs() < 1e-3);
        }
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
