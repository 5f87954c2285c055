//! ℝ^(K−1) → the simplex in ℝ^K by the additive log-ratio map: y = softmax([u, 0]), so
//! u_k = log y_k − log y_K. Its log |det ∂y/∂u| is Σ_k log y_k over all K components.
//!
//! Simplex-valued latents use this map rather than stick breaking: it is computed from
//! log y (a log-softmax), so a value near a vertex — what a concrete latent at a low
//! temperature is — keeps its tiny components' logs exact in f32, where stick breaking
//! would form 1 − y₁ ≈ 0 by cancellation.

use dfdx::prelude::*;
use ravi_backend::{Backend, ParamStore, Particles, PerParticle, Tape};

use super::Bijector;

/// The additive log-ratio map onto the simplex (see the module docs).
#[derive(Debug, Clone, Copy, Default)]
pub struct SoftmaxSimplex;

/// `(rows, K − 1)` unconstrained values to `(rows, K)` log simplex values log y.
pub fn log_softmax_simplex<D: Backend, T: Tape<D>>(u: Particles<D, T>) -> Particles<D, T> {
    let (rows, k1) = *u.shape();
    let zeros: Particles<D, T> = u.device().zeros_like(&(rows, 1usize)).retaped::<T>();
    (u, zeros)
        .concat_along(Axis::<1>)
        .reshape_like(&(rows, k1 + 1))
        .log_softmax::<Axis<1>>()
}

/// log y of `(rows, K)` simplex values back to the `(rows, K − 1)` unconstrained ones.
pub fn log_ratio<D: Backend, T: Tape<D>>(log_y: Particles<D, T>) -> Particles<D, T> {
    let (rows, k) = *log_y.shape();
    // A private copy: dfdx 0.13's slice backward assigns the sliced source's gradient.
    let log_y = log_y + 0.0;
    let last = log_y
        .retaped::<T>()
        .slice((.., k - 1..k))
        .reshape_like(&(rows,))
        .broadcast_like::<_, Axis<1>>(&(rows, k - 1));
    log_y.slice((.., 0..k - 1)).reshape_like(&(rows, k - 1)) - last
}

impl<D: Backend> Bijector<D> for SoftmaxSimplex {
    fn forward<T: Tape<D>>(
        &self,
        _params: &ParamStore<D>,
        x: Particles<D, T>,
    ) -> (Particles<D, T>, PerParticle<D, T>) {
        let log_y = log_softmax_simplex(x);
        let log_det = log_y.retaped::<T>().sum::<(usize,), Axis<1>>();
        (log_y.exp(), log_det)
    }

    fn inverse(
        &self,
        _params: &ParamStore<D>,
        y: Particles<D, dfdx::tensor::NoneTape>,
    ) -> Particles<D, dfdx::tensor::NoneTape> {
        log_ratio(y.ln())
    }
}
