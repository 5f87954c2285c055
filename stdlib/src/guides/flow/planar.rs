//! Planar flow (Rezende & Mohamed 2015).

use super::{Scalar, Vector};
use dfdx::prelude::*;
use ravi_backend::{traced, Backend, ParamId, ParamStore, Particles, PerParticle, Tape};

/// f(z) = z + û tanh(wᵀz + b), with û = u + (m(wᵀu) − wᵀu) w / ‖w‖², m(a) = −1 + softplus(a),
/// which makes wᵀû ≥ −1 and f invertible. log |det| = log(1 + (1 − tanh²(wᵀz + b)) wᵀû).
/// Starts as the identity (u = 0).
#[derive(Debug, Clone)]
pub struct Planar {
    dim: usize,
    u: ParamId,
    w: ParamId,
    b: ParamId,
}

impl Planar {
    /// Registers u, w and b under `{name}.u`, `.w`, `.b`: u = 0 (the identity), w random.
    pub fn build<D: Backend>(params: &mut ParamStore<D>, name: &str, dim: usize) -> Self {
        let w: Tensor<(usize,), f32, D> = params.device().sample_normal_like(&(dim,));
        let w = w
            .as_vec()
            .into_iter()
            .map(|v| v / (dim as f32).sqrt())
            .collect();
        Planar {
            dim,
            u: params.add(format!("{name}.u"), vec![0.0; dim]),
            w: params.add(format!("{name}.w"), w),
            b: params.add(format!("{name}.b"), vec![0.0]),
        }
    }

    /// û and wᵀû on the tape.
    fn u_hat<D: Backend, T: Tape<D>>(
        &self,
        params: &ParamStore<D>,
    ) -> (Vector<D, T>, Scalar<D, T>) {
        let u = traced::<D, T>(params, self.u);
        let w = traced::<D, T>(params, self.w);
        let wu = (w.retaped::<T>() * u.retaped::<T>()).sum::<(), _>();
        let w_norm2 = w.retaped::<T>().square().sum::<(), _>();
        let m = ravi_backend::ops::softplus(wu.retaped::<T>()) - 1.0;
        let coef = (m - wu) / w_norm2;
        let u_hat = u + w * coef.broadcast_like::<_, Axis<0>>(&(self.dim,));
        let w_u_hat = (traced::<D, T>(params, self.w) * u_hat.retaped::<T>()).sum::<(), _>();
        (u_hat, w_u_hat)
    }

    /// f(z) and log |det ∂f/∂z| per particle.
    pub fn forward<D: Backend, T: Tape<D>>(
        &self,
        params: &ParamStore<D>,
        z: Particles<D, T>,
    ) -> (Particles<D, T>, PerParticle<D, T>) {
        let (s, d) = *z.shape();
        let (u_hat, w_u_hat) = self.u_hat::<D, T>(params);
        let w = traced::<D, T>(params, self.w).reshape_like(&(d, 1usize));
        let b = traced::<D, T>(params, self.b).broadcast_like::<_, Axis<0>>(&(s, 1usize));
        let h = (z.retaped::<T>().matmul(w) + b).tanh(); // (s, 1)
        let slope = (h.retaped::<T>().square().negate() + 1.0).reshape_like(&(s,)); // 1 − tanh²
        let log_det = (slope * w_u_hat.broadcast_like::<_, Axis<0>>(&(s,)) + 1.0).ln();
        let shift = h.matmul(u_hat.reshape_like(&(1usize, d)));
        (z + shift, log_det)
    }

    /// Solves wᵀy = α + wᵀû tanh(α + b) for α (monotone in α) by bisection, then
    /// z = y − û tanh(α + b).
    pub fn inverse<D: Backend>(
        &self,
        params: &ParamStore<D>,
        y: Particles<D, NoneTape>,
    ) -> Particles<D, NoneTape> {
        let (s, d) = *y.shape();
        let (u_hat, w_u_hat) = self.u_hat::<D, NoneTape>(params);
        let (u_hat, w_u_hat) = (u_hat.as_vec(), f64::from(w_u_hat.array()));
        let w = params.get(self.w).as_vec();
        let b = f64::from(params.get(self.b).as_vec()[0]);
        let ys = y.as_vec();
        let mut out = Vec::with_capacity(s * d);
        for row in ys.chunks(d) {
            let target: f64 = row
                .iter()
                .zip(&w)
                .map(|(a, b)| f64::from(*a) * f64::from(*b))
                .sum();
            let g = |a: f64| a + w_u_hat * (a + b).tanh() - target;
            // |wᵀû tanh| ≤ |wᵀû|, so α lies within that distance of the target.
            let (mut lo, mut hi) = (target - w_u_hat.abs() - 1.0, target + w_u_hat.abs() + 1.0);
            for _ in 0..100 {
                let mid = 0.5 * (lo + hi);
                if g(mid) > 0.0 {
                    hi = mid;
                } else {
                    lo = mid;
                }
            }
            let h = (0.5 * (lo + hi) + b).tanh();
            out.extend(
                row.iter()
                    .zip(&u_hat)
                    .map(|(v, u)| (f64::from(*v) - f64::from(*u) * h) as f32),
            );
        }
        params.device().tensor_from_vec(out, (s, d))
    }
}
