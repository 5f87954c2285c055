//! The tensors that cross between guide, model and estimators: values per particle.

use dfdx::tensor::Tensor;

use crate::device::{Backend, Tape};
use crate::params::{ParamId, ParamStore};

/// Per-particle values: the leading axis is the particles.
pub type Particles<D, T> = Tensor<(usize, usize), f32, D, T>;
/// One number per particle.
pub type PerParticle<D, T> = Tensor<(usize,), f32, D, T>;
/// One number per particle and data row: `(particles, rows)`.
pub type Rows<D, T> = Tensor<(usize, usize), f32, D, T>;

/// A parameter entering a taped computation: a clone of the stored tensor carrying a fresh
/// tape of type `T`, so its gradient is recorded under the stored tensor's id.
pub fn traced<D: Backend, T: Tape<D>>(
    params: &ParamStore<D>,
    id: ParamId,
) -> Tensor<(usize,), f32, D, T> {
    params.get(id).retaped::<T>()
}
