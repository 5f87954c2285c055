//! Distributions: each one file with its log density (differentiable in the value and in
//! every parameter) and, where it has one, its reparametrized sampler.
//!
//! Generated code calls `ravi::dist::{Name}::log_prob(value, params...)` with the value and
//! every tensor parameter already broadcast to one shape and carrying one tape type;
//! parameters known at compile time arrive as [`Arg::Scalar`] and cost no tensor.

pub(crate) mod normal;

pub use normal::Normal;

use dfdx::shapes::Shape;
use dfdx::tensor::Tensor;
use ravi_backend::{Backend, Tape};

/// A distribution parameter: a compile-time number or a tensor of the value's shape.
pub enum Arg<S: Shape, D: Backend, T: Tape<D>> {
    Scalar(f32),
    Tensor(Tensor<S, f32, D, T>),
}

/// What the compiler's catalogue says of a distribution; a test checks the two agree.
pub trait Distribution {
    const NAME: &'static str;
    /// Parameter names in the order `log_prob` takes them.
    const PARAMS: &'static [&'static str];
}

/// Every distribution of the stdlib, as (name, parameters).
pub const IMPLEMENTED: &[(&str, &[&str])] = &[(Normal::NAME, Normal::PARAMS)];
