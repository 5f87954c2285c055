//! Radial flow (Rezende & Mohamed 2015).

use super::Scalar;
use dfdx::prelude::*;
use ravi_backend::{traced, Backend, ParamId, ParamStore, Particles, PerParticle, Tape};

use crate::guides::per_particle;

/// f(z) = z + β h(r) (z − z₀), r = ‖z − z₀‖, h = 1/(α + r), α = softplus(α′) and
/// β = −α + softplus(β′) (so that f is invertible).
/// log |det| = (d − 1) log(1 + β h) + log(1 + β h − β r / (α + r)²).
/// Starts close to the identity (β′ with softplus(β′) = α: β = 0).
#[derive(Debug, Clone)]
pub struct Radial {
    dim: usize,
    centre: ParamId,
    alpha: ParamId,
    beta: ParamId,
}

/// Keeps r differentiable at z = z₀.
const R_EPS: f32 = 1e-12;

impl Radial {
    /// Registers z₀, α′ and β′ under `{name}.centre`, `.alpha`, `.beta`; z₀ near 0.
    pub fn build<D: Backend>(params: &mut ParamStore<D>, name: &str, dim: usize) -> Self {
        let c: Tensor<(usize,), f32, D> = params.device().sample_normal_like(&(dim,));
        let c = c.as_vec().into_iter().map(|v| 0.1 * v).collect();
        Radial {
            dim,
            centre: params.add(format!("{name}.centre"), c),
            alpha: params.add(format!("{name}.alpha"), vec![0.0]),
            beta: params.add(format!("{name}.beta"), vec![0.0]),
        }
    }

    /// α and β as scalars on the tape.
    fn alpha_beta<D: Backend, T: Tape<D>>(
        &self,
        params: &ParamStore<D>,
    ) -> (Scalar<D, T>, Scalar<D, T>) {
        let alpha = ravi_backend::ops::softplus(traced::<D, T>(params, self.alpha)).sum::<(), _>();
        let beta = ravi_backend::ops::softplus(traced::<D, T>(params, self.beta)).sum::<(), _>()
            - alpha.retaped::<T>();
        (alpha, beta)
    }

    /// f(z) and log |det ∂f/∂z| per particle.
    pub fn forward<D: Backend, T: Tape<D>>(
        &self,
        params: &ParamStore<D>,
        z: Particles<D, T>,
    ) -> (Particles<D, T>, PerParticle<D, T>) {
        let (s, d) = *z.shape();
        let (alpha, beta) = self.alpha_beta::<D, T>(params);
        let centre = traced::<D, T>(params, self.centre).broadcast_like::<_, Axis<0>>(&(s, d));
        let diff = z - centre; // (s, d)
        let r = (diff.retaped::<T>().square().sum::<(usize,), Axis<1>>() + R_EPS).sqrt(); // (s,)
        let alpha_s = per_particle(alpha, s);
        let beta_s = per_particle(beta, s);
        let denom = alpha_s + r.retaped::<T>(); // α + r
        let h = denom.retaped::<T>().recip();
        let bh = beta_s.retaped::<T>() * h; // β h
        let one_plus_bh = bh + 1.0;
        let tail = (beta_s * r) / denom.square(); // β r / (α + r)²
        let log_det = one_plus_bh.retaped::<T>().ln() * (self.dim as f32 - 1.0)
            + (one_plus_bh.retaped::<T>() - tail).ln();
        // z + β h (z − z₀) = z₀ + (1 + β h)(z − z₀)
        let centre = traced::<D, T>(params, self.centre).broadcast_like::<_, Axis<0>>(&(s, d));
        let y = diff * one_plus_bh.broadcast_like::<_, Axis<1>>(&(s, d)) + centre;
        (y, log_det)
    }

    /// ‖y − z₀‖ = r (1 + β/(α + r)) is a quadratic in r with one positive root; then
    /// z = z₀ + (y − z₀) / (1 + β/(α + r)).
    pub fn inverse<D: Backend>(
        &self,
        params: &ParamStore<D>,
        y: Particles<D, NoneTape>,
    ) -> Particles<D, NoneTape> {
        let (s, d) = *y.shape();
        let (alpha, beta) = self.alpha_beta::<D, NoneTape>(params);
        let (a, b) = (f64::from(alpha.array()), f64::from(beta.array()));
        let c = params.get(self.centre).as_vec();
        let ys = y.as_vec();
        let mut out = Vec::with_capacity(s * d);
        for row in ys.chunks(d) {
            let ry = row
                .iter()
                .zip(&c)
                .map(|(v, c)| (f64::from(*v) - f64::from(*c)).powi(2))
                .sum::<f64>()
                .sqrt();
            // r² + (α + β − r_y) r − r_y α = 0
            let p = a + b - ry;
            let r = 0.5 * (-p + (p * p + 4.0 * ry * a).sqrt());
            let factor = 1.0 + b / (a + r);
            out.extend(
                row.iter().zip(&c).map(|(v, c)| {
                    (f64::from(*c) + (f64::from(*v) - f64::from(*c)) / factor) as f32
                }),
            );
        }
        params.device().tensor_from_vec(out, (s, d))
    }
}
