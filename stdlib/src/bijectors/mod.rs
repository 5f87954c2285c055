//! Bijectors: invertible maps with their log-Jacobian-determinants, on `(particles, d)`
//! tensors, taped so that gradients flow through them.
//!
//! The elementwise ones (`Exp`, `Softplus`, `Sigmoid`, `Tanh`, `Identity`), `Affine`,
//! `LowerCholeskyAffine`, `SoftmaxSimplex` and `StickBreaking` (ℝ^(K−1) → the simplex in
//! ℝ^K; latents on a simplex use `SoftmaxSimplex`) have fixed
//! parameters; the flow layers (`Planar`, `Radial`, RealNVP's `AffineCoupling`, `Iaf`, and
//! `Maf`, an IAF run backwards) keep theirs in a guide's `ParamStore`, which every call
//! takes. A latent on a constrained support is mapped by the compiler with the same maps
//! as `Exp` and `Sigmoid` here.

mod affine;
mod elementwise;
mod ordered;
mod softmax;
mod stick_breaking;

pub use affine::{Affine, LowerCholeskyAffine};
pub use elementwise::{Exp, Identity, Sigmoid, Softplus, Tanh};
pub use ordered::ordered;
pub use softmax::{log_ratio, log_softmax_simplex, SoftmaxSimplex};
pub use stick_breaking::{stick_breaking, StickBreaking};

pub use crate::guides::flow::{AffineCoupling, Iaf, Maf, Planar, Radial};

use dfdx::tensor::NoneTape;
use ravi_backend::{Backend, ParamStore, Particles, PerParticle, Tape};

/// An invertible map of `(particles, d)` values.
pub trait Bijector<D: Backend> {
    /// y = f(x) and log |det ∂f/∂x| per particle.
    fn forward<T: Tape<D>>(
        &self,
        params: &ParamStore<D>,
        x: Particles<D, T>,
    ) -> (Particles<D, T>, PerParticle<D, T>);
    /// x = f⁻¹(y), without gradient.
    fn inverse(&self, params: &ParamStore<D>, y: Particles<D, NoneTape>) -> Particles<D, NoneTape>;
}

#[cfg(test)]
mod tests;
