//! Small numeric building blocks shared by generated code and the stdlib.

use dfdx::prelude::*;
use dfdx::shapes::{Axis, Shape};
use dfdx::tensor::Tensor;
use dfdx::tensor_ops::{BroadcastTo, TryAdd};

use crate::device::{Backend, Tape};
use crate::particles::{Particles, PerParticle};
use dfdx::tensor::NoneTape;

/// softplus(x) = log(1 + e^x), in the form that neither overflows for large x nor loses
/// precision for very negative x: max(x, 0) + log1p(e^{-|x|}). dfdx has no softplus op.
pub fn softplus<S: Shape, D: Backend, T: Tape<D>>(x: Tensor<S, f32, D, T>) -> Tensor<S, f32, D, T> {
    let pos = x.retaped::<T>().relu();
    let tail = (x.abs().negate().exp() + 1.0).ln();
    pos.try_add(tail).expect("same shape")
}

/// softplus on a compile-time scalar.
pub fn softplus_f32(x: f32) -> f32 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

/// The logistic function on a compile-time scalar.
pub fn sigmoid_f32(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// Splits `(particles, sum(sizes))` into consecutive column blocks `(particles, size)`.
/// Every block but the last reads a re-taped view (same id, so gradients still meet); the
/// last takes `z`'s own tape, which carries the ops that produced `z`.
pub fn split_columns<D: Backend, T: Tape<D>>(
    z: Particles<D, T>,
    sizes: &[usize],
) -> Vec<Particles<D, T>> {
    if sizes.len() == 1 {
        return vec![z];
    }
    // dfdx 0.13's slice backward assigns into the input's gradient instead of adding to
    // it: slicing a copy (`+ 0`) that only these slices read keeps z's other gradients.
    let z = z + 0.0;
    let mut out = Vec::with_capacity(sizes.len());
    let mut start = 0;
    let (init, last) = sizes.split_at(sizes.len() - 1);
    for &n in init {
        out.push(z.retaped::<T>().slice((.., start..start + n)));
        start += n;
    }
    out.push(z.slice((.., start..start + last[0])));
    out
}

/// Broadcasts a per-particle value `(S,)` along a new trailing axis of length `n`.
pub fn per_particle_to_columns<D: Backend, T: Tape<D>>(
    x: Tensor<(usize,), f32, D, T>,
    n: usize,
) -> Particles<D, T> {
    let s = x.shape().0;
    x.broadcast_like::<_, Axis<1>>(&(s, n))
}

/// A tensor of `like`'s shape filled with `c`, on the same tape type (holding no gradient).
pub fn filled_like<S: Shape, D: Backend, T: Tape<D>>(
    like: &Tensor<S, f32, D, T>,
    c: f32,
) -> Tensor<S, f32, D, T> {
    let t: Tensor<S, f32, D> = like.device().ones_like(like.shape()) * c;
    t.retaped::<T>()
}

/// `(particles, n)` copies of a compile-time number on the device of `like`.
pub fn constant_particles<S: Shape, D: Backend, T: Tape<D>>(
    like: &Tensor<S, f32, D>,
    particles: usize,
    n: usize,
    c: f32,
) -> Particles<D, T> {
    let t: Tensor<(usize, usize), f32, D> = like.device().ones_like(&(particles, n)) * c;
    t.retaped::<T>()
}

/// Independent random signs ±1 of `shape`, drawn on the device's generator.
pub fn random_signs<S: Shape, D: Backend>(dev: &D, shape: S) -> Tensor<S, f32, D> {
    let u: Tensor<S, f32, D> = dev.sample_uniform_like(&shape);
    let signs: Vec<f32> = u
        .as_vec()
        .into_iter()
        .map(|v| if v < 0.5 { -1.0 } else { 1.0 })
        .collect();
    dev.tensor_from_vec(signs, shape)
}

/// Zero for each of `particles`, on tape type `T` (the log q of a guide with no global
/// family: its draws are all local or points).
pub fn zero_per_particle<D: Backend, T: Tape<D>>(dev: &D, particles: usize) -> PerParticle<D, T> {
    let zero: PerParticle<D, NoneTape> = dev.zeros_like(&(particles,));
    zero.retaped::<T>()
}

/// The values of an integer data input (`g: [N] in 0..J`, held as f32) as dfdx indices:
/// what `a[g]` gathers with when `a` is data. The range was checked when the data arrived.
pub fn index<Z: dfdx::shapes::Dim, D: Backend>(g: &Tensor<(Z,), f32, D>) -> Tensor<(Z,), usize, D> {
    let values: Vec<usize> = g.as_vec().iter().map(|&v| v as usize).collect();
    g.device().tensor_from_vec(values, *g.shape())
}

/// The same indices repeated for each of `particles` particles, `(S, N)`: what `a[g]`
/// gathers with when `a` has a particle axis (dfdx gathers axis 1 of `(S, J, ..)` by an
/// index shaped like the leading axes).
pub fn index_per_particle<Z: dfdx::shapes::Dim, D: Backend>(
    g: &Tensor<(Z,), f32, D>,
    particles: usize,
) -> Tensor<(usize, Z), usize, D> {
    let row: Vec<usize> = g.as_vec().iter().map(|&v| v as usize).collect();
    let values: Vec<usize> = (0..particles).flat_map(|_| row.iter().copied()).collect();
    g.device().tensor_from_vec(values, (particles, g.shape().0))
}

/// `start, start + 1, ..` as dfdx indices of length `len`: `a[1..3]` and `a[k]` gather
/// with them (a gather's backward adds into the source's gradient; dfdx 0.13's slice
/// backward overwrites it).
pub fn range_index<Z: dfdx::shapes::Dim, D: Backend>(
    dev: &D,
    start: usize,
    len: Z,
) -> Tensor<(Z,), usize, D> {
    dev.tensor_from_vec((start..start + len.size()).collect(), (len,))
}

/// [`range_index`] repeated for each of `particles` particles, `(S, len)`.
pub fn range_index_per_particle<Z: dfdx::shapes::Dim, D: Backend>(
    dev: &D,
    start: usize,
    len: Z,
    particles: usize,
) -> Tensor<(usize, Z), usize, D> {
    let values = (0..particles)
        .flat_map(|_| start..start + len.size())
        .collect();
    dev.tensor_from_vec(values, (particles, len))
}
