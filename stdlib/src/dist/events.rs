//! Distributions over vectors: the density is of each event along the value's last axis.
//! Generated code flattens the value to `(particles, M, K)` (M events of K components) and
//! each vector parameter alike; the result is one log density per particle, summed over
//! the events. What those distributions share lives here.

use dfdx::prelude::*;
use ravi_backend::{Backend, PerParticle, Tape};

/// Events: `(particles, M, K)`.
pub type Events<D, T> = Tensor<(usize, usize, usize), f32, D, T>;

/// Σ over the events and components, per particle.
pub(crate) fn total<D: Backend, T: Tape<D>>(x: Events<D, T>) -> PerParticle<D, T> {
    x.sum::<(usize,), Axes2<1, 2>>()
}

/// Simplex values within f32 reach of a face would give log 0; the density there is
/// negligible, so they are kept off it.
pub(crate) fn off_the_faces<D: Backend, T: Tape<D>>(y: Events<D, T>) -> Events<D, T> {
    y.clamp(1e-30, 1.0)
}

#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use rand::Rng;

    pub(crate) fn events(dev: &Cpu, v: Vec<f32>, m: usize, k: usize) -> Events<Cpu, NoneTape> {
        dev.tensor_from_vec(v, (1usize, m, k))
    }

    /// Random points on the simplex (normalized exponentials).
    pub(crate) fn simplex_points(rng: &mut rand::rngs::StdRng, m: usize, k: usize) -> Vec<f32> {
        let mut out = Vec::new();
        for _ in 0..m {
            let e: Vec<f64> = (0..k).map(|_| -rng.gen_range(1e-3f64..1.0).ln()).collect();
            let z: f64 = e.iter().sum();
            out.extend(e.iter().map(|v| (v / z) as f32));
        }
        out
    }
}
