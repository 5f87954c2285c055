//! Parameter-free noise for reparametrized samplers x = g(θ, ε): it carries no gradient
//! itself, so gradients flow from x to θ.

use dfdx::prelude::*;
use dfdx::shapes::Shape;
use ravi_backend::{Backend, Tape};

use super::arg::Value;

/// Standard-normal noise of `shape`, on the tape `T`.
pub(crate) fn normal<S: Shape, D: Backend, T: Tape<D>>(dev: &D, shape: S) -> Value<S, D, T> {
    let e: Tensor<S, f32, D> = dev.sample_normal_like(&shape);
    e.retaped::<T>()
}

/// Uniform(0, 1) noise of `shape`, on the tape `T`, kept off the ends (where inverse-CDF
/// maps are infinite).
pub(crate) fn uniform<S: Shape, D: Backend, T: Tape<D>>(dev: &D, shape: S) -> Value<S, D, T> {
    let u: Tensor<S, f32, D> = dev.sample_uniform_like(&shape);
    u.clamp(1e-7, 1.0 - 1e-7).retaped::<T>()
}

/// tan(π(u − ½)): standard Cauchy noise.
pub(crate) fn cauchy<S: Shape, D: Backend, T: Tape<D>>(dev: &D, shape: S) -> Value<S, D, T> {
    let a = (uniform::<S, D, T>(dev, shape) - 0.5) * std::f32::consts::PI;
    a.retaped::<T>().sin() / a.cos()
}
