//! Standard normal draws for large tensors: the device's generator for a few, parallel
//! xoshiro streams it seeds for many (the device's generator is one sequential stream,
//! which for millions of weights costs more than a step's products).

use dfdx::prelude::*;

use crate::device::Backend;

/// `shape` standard normals on `dev`, drawn as the host engine draws its own: the device's
/// generator's own for up to 65,536 (as `sample_normal_like` draws them), parallel streams
/// it seeds beyond.
pub fn standard_normals<D: Backend>(
    dev: &D,
    shape: (usize, usize),
) -> Tensor<(usize, usize), f32, D> {
    if shape.0 * shape.1 <= NORMALS_PER_STREAM {
        return dev.sample_normal_like(&shape);
    }
    dev.tensor_from_vec(standard_normals_vec(dev, shape), shape)
}

/// [`standard_normals`]'s draws in host memory, for host code.
pub fn standard_normals_vec<D: Backend>(dev: &D, shape: (usize, usize)) -> Vec<f32> {
    let mut out = vec![0.0f32; shape.0 * shape.1];
    draw_normals(dev, &mut out, shape);
    out
}

/// Standard normal draws into `out` (`particles × dim`). Up to 65,536 of them come from the
/// device's generator exactly as the dfdx path draws them (so the two paths take the same
/// steps); more are drawn in fixed chunks of [`NORMALS_PER_STREAM`], chunk `p` from a
/// xoshiro generator seeded by one draw of the device's and `p` (the same distribution,
/// other numbers: the device's generator is one sequential stream, which for millions of
/// weights costs more than the step's products). The chunks, not the threads, fix the
/// streams: the same seed gives the same bits on any number of cores.
pub(crate) fn draw_normals<D: Backend>(dev: &D, out: &mut [f32], shape: (usize, usize)) {
    draw_normals_on(dev, out, shape, crate::threads::workers_for(out.len() * 64));
}

/// [`draw_normals`] on `workers` threads.
pub(crate) fn draw_normals_on<D: Backend>(
    dev: &D,
    out: &mut [f32],
    shape: (usize, usize),
    workers: usize,
) {
    if out.len() <= NORMALS_PER_STREAM {
        let e: Tensor<(usize, usize), f32, D> = dev.sample_normal_like(&shape);
        e.copy_into(out);
        return;
    }
    fill_streams(out, seed_from(dev), 0, workers);
}

/// `out` in fixed chunks of [`NORMALS_PER_STREAM`], chunk `p` from the xoshiro stream
/// `first + p` of `seed`, on `workers` threads (the chunks, not the threads, fix the
/// numbers).
pub(crate) fn fill_streams(out: &mut [f32], seed: u64, first: u64, workers: usize) {
    let streams = out.len().div_ceil(NORMALS_PER_STREAM);
    let per_worker = streams.div_ceil(workers.max(1)) * NORMALS_PER_STREAM;
    if per_worker >= out.len() {
        for (i, chunk) in out.chunks_mut(NORMALS_PER_STREAM).enumerate() {
            fill_normals(chunk, seed, first + i as u64);
        }
        return;
    }
    crate::threads::scope(|scope| {
        for (w, part) in out.chunks_mut(per_worker).enumerate() {
            let at = first + (w * per_worker / NORMALS_PER_STREAM) as u64;
            scope.spawn(move || {
                for (i, chunk) in part.chunks_mut(NORMALS_PER_STREAM).enumerate() {
                    fill_normals(chunk, seed, at + i as u64);
                }
            });
        }
    });
}

/// Uniform draws on [0, 1) into `out` (`particles × dim`) from the device's generator, as
/// `sample_uniform_like` draws them on the dfdx path.
pub(crate) fn draw_uniforms<D: Backend>(dev: &D, out: &mut [f32], shape: (usize, usize)) {
    let u: Tensor<(usize, usize), f32, D> = dev.sample_uniform_like(&shape);
    u.copy_into(out);
}

/// A seed for streams of its own, from two draws of the device's generator.
pub(crate) fn seed_from<D: Backend>(dev: &D) -> u64 {
    let seed: Tensor<(usize,), f32, D> = dev.sample_uniform_like(&(2,));
    let bits = seed.as_vec();
    (u64::from(bits[0].to_bits()) << 32) | u64::from(bits[1].to_bits())
}

/// Normals per generator stream beyond the device's: a fixed split, whatever the cores.
const NORMALS_PER_STREAM: usize = 1 << 16;

/// `out` from the xoshiro stream `stream` of `seed`.
pub(crate) fn fill_normals(out: &mut [f32], seed: u64, stream: u64) {
    use rand::SeedableRng as _;
    use rand_distr::Distribution as _;
    let mut rng =
        rand::rngs::SmallRng::seed_from_u64(seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    for v in out {
        *v = rand_distr::StandardNormal.sample(&mut rng);
    }
}

#[cfg(test)]
mod normals_tests {
    use super::*;

    /// The same seed gives the same bits on 1, 2, 3 or 16 threads: the streams are fixed
    /// chunks, the threads only share them out.
    #[test]
    fn draws_do_not_depend_on_the_thread_count() {
        let (rows, cols) = (5, NORMALS_PER_STREAM + 77);
        let draw = |workers: usize| {
            let mut out = vec![0.0f32; rows * cols];
            draw_normals_on(&crate::Cpu::seeded(9), &mut out, (rows, cols), workers);
            out
        };
        let one = draw(1);
        let mean = one.iter().map(|&v| f64::from(v)).sum::<f64>() / one.len() as f64;
        assert!(mean.abs() < 0.01, "mean {mean}");
        for workers in [2, 3, 16] {
            let many = draw(workers);
            assert!(
                one.iter()
                    .zip(&many)
                    .all(|(a, b)| a.to_bits() == b.to_bits()),
                "{workers} threads"
            );
        }
    }
}
