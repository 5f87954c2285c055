//! Tape operations whose forward and backward passes are host code: where a chain of dfdx
//! ops over a large tensor (each allocating its output and its gradient, each a pass of
//! its own) is one loop or one matrix product on the host, an op can compute its output
//! there and register its own backward pass on the tape. Only the CPU device holds its
//! tensors on the host, so such an op runs where [`is_cpu`] holds and the dfdx ops
//! elsewhere; the op's tests hold the two to the same values and gradients.
//!
//! A gradient buffer is laid out as its tensor's data, which for a permuted or broadcast
//! tensor is not the logical order: a host op takes its inputs `contiguous()` first (no
//! copy where they already are), so that it reads and writes both in order.

use std::any::Any;

use dfdx::prelude::*;

use crate::device::{Backend, Cpu};

/// Whether `D` is the CPU device, whose tensors and gradients are host memory.
pub fn is_cpu<D: Backend>() -> bool {
    std::any::TypeId::of::<D>() == std::any::TypeId::of::<Cpu>()
}

/// The gradient of `t` in `grads` as a host slice (allocated at zero if `t` has none yet),
/// for a backward op that only runs on the CPU.
///
/// # Panics
/// Where `D` is not the CPU: an op takes its host path only where [`is_cpu`] holds.
pub fn cpu_gradient<'g, S: Shape, D: Backend>(
    grads: &'g mut Gradients<f32, D>,
    t: &Tensor<S, f32, D>,
) -> Result<&'g mut [f32], D::Err> {
    grads.try_alloc_for(t)?;
    let grads = (grads as &mut dyn Any)
        .downcast_mut::<Gradients<f32, Cpu>>()
        .expect("a host op runs on the CPU");
    let t = (t as &dyn Any)
        .downcast_ref::<Tensor<S, f32, Cpu>>()
        .expect("a host op runs on the CPU");
    let g = grads
        .get_or_alloc_mut(t)
        .expect("allocated above, so no allocation fails here");
    Ok(g.as_mut_slice())
}

/// The values of a tensor laid out in order (as `contiguous()` leaves it, and as a stored
/// parameter is), by one copy of its buffer: dfdx's `as_vec` walks a tensor one index at a
/// time, which over a million entries costs more than the work done on them. A broadcast's
/// shorter buffer fails the copy's length check: a panic, not wrong values.
pub fn laid_out<S: Shape, D: Backend, T>(x: &Tensor<S, f32, D, T>) -> Vec<f32> {
    let mut out = vec![0.0f32; x.shape().num_elements()];
    x.copy_into(&mut out);
    out
}

/// Adds `values` to the gradient of `t` ([`cpu_gradient`]).
pub fn add_cpu_gradient<S: Shape, D: Backend>(
    grads: &mut Gradients<f32, D>,
    t: &Tensor<S, f32, D>,
    values: &[f32],
) -> Result<(), D::Err> {
    let g = cpu_gradient(grads, t)?;
    assert_eq!(g.len(), values.len(), "a gradient the size of its tensor");
    for (g, v) in g.iter_mut().zip(values) {
        *g += v;
    }
    Ok(())
}

/// Σ_i z_ri c_ri per row r of `z` (rows × width), with `c` a constant (row-major, the
/// same size): the surrogate that carries a gradient computed elsewhere (the host engine's
/// ∂ log p/∂z) into `z`'s graph. On the CPU it is one host op whose backward pass adds
/// c times each row's incoming gradient to z's (no product tensor, no gradient for the
/// constant); elsewhere the dfdx ops.
///
/// `values` are z's values, which a caller that hands z's draws to host code has read.
pub fn row_dots<D: Backend, T: crate::device::Tape<D>>(
    z: Tensor<(usize, usize), f32, D, T>,
    values: &[f32],
    c: Vec<f32>,
) -> Tensor<(usize,), f32, D, T> {
    let (rows, width) = *z.shape();
    assert_eq!(c.len(), rows * width, "a constant the size of z");
    assert_eq!(values.len(), rows * width, "z's values");
    if !is_cpu::<D>() {
        let c = z.device().tensor_from_vec(c, (rows, width));
        return (z * c).sum::<(usize,), dfdx::shapes::Axis<1>>();
    }
    // (laid out in order, as the gradient is written)
    let (z, mut tape) = z.contiguous().split_tape();
    let dots: Vec<f32> = match width {
        0 => vec![0.0; rows],
        _ => values
            .chunks(width)
            .zip(c.chunks(width))
            .map(|(z, c)| z.iter().zip(c).map(|(z, c)| z * c).sum())
            .collect(),
    };
    let out = z.device().tensor_from_vec(dots, (rows,));
    let out_id = out.clone();
    tape.add_backward_op(move |grads| {
        let g_out = cpu_gradient(grads, &out_id)?.to_vec();
        let g = cpu_gradient(grads, &z)?;
        if width > 0 {
            for ((g, c), go) in g.chunks_mut(width).zip(c.chunks(width)).zip(&g_out) {
                g.iter_mut().zip(c).for_each(|(g, c)| *g += go * c);
            }
        }
        Ok(())
    });
    out.put_tape(tape)
}

/// x W for x (rows × k) and W (k × n) stored row-major as a vector (a layer's weights);
/// on the CPU a host op through a layer's products ([`crate::gemm::times_weights`]) forward and back (dfdx's
/// products run on the `gemm` crate's rayon threads, which contend with the engine's own
/// pool for a machine's few cores).
pub fn times_matrix<D: Backend, T: crate::device::Tape<D>>(
    x: Tensor<(usize, usize), f32, D, T>,
    w: Tensor<(usize,), f32, D, T>,
    (k, n): (usize, usize),
) -> Tensor<(usize, usize), f32, D, T> {
    let rows = x.shape().0;
    assert_eq!(x.shape().1, k, "x's columns are W's rows");
    assert_eq!(w.shape().0, k * n, "W is k × n");
    if !is_cpu::<D>() {
        return x.matmul(w.reshape_like(&(k, n)));
    }
    // (laid out in order, as the gradients are written)
    let (x, tape) = x.contiguous().split_tape();
    let (w, tape_w) = w.contiguous().split_tape();
    let mut tape = tape.merge(tape_w);
    let (xs, ws) = (laid_out(&x), laid_out(&w));
    let mut product = vec![0.0f32; rows * n];
    crate::gemm::times_weights(&xs, &ws, (rows, k, n), &mut product);
    let out = x.device().tensor_from_vec(product, (rows, n));
    if T::OWNS_TAPE {
        let out_id = out.clone();
        tape.add_backward_op(move |grads| {
            let g = cpu_gradient(grads, &out_id)?.to_vec();
            // ∂x = G Wᵀ, ∂W = xᵀ G
            let gx = cpu_gradient(grads, &x)?;
            crate::gemm::times_weights_t(&g, &ws, (rows, k, n), 1.0, gx);
            let gw = cpu_gradient(grads, &w)?;
            crate::gemm::rows_t_times(&xs, &g, (rows, k, n), 1.0, gw);
            Ok(())
        });
    }
    out.put_tape(tape)
}

/// The sum of `x`'s first `len` entries; on the CPU a host op (dfdx's generic reduction and
/// its broadcast back are each a slow pass over a long vector).
pub fn leading_sum<D: Backend, T: crate::device::Tape<D>>(
    x: Tensor<(usize,), f32, D, T>,
    len: usize,
) -> Tensor<(), f32, D, T> {
    let n = x.shape().0;
    assert!(len <= n, "a sum over the vector's entries");
    if !is_cpu::<D>() {
        // (dfdx cannot slice a vector to nothing: the empty sum is 0, on x's tape)
        return match len {
            0 => x.sum::<(), _>() * 0.0,
            _ if len == n => x.sum::<(), _>(),
            _ => x.slice((0..len,)).sum::<(), _>(),
        };
    }
    let (x, mut tape) = x.contiguous().split_tape();
    let values = laid_out(&x);
    let total = values[..len].iter().map(|&v| f64::from(v)).sum::<f64>() as f32;
    let out = x.device().tensor_from_vec(vec![total], ());
    let out_id = out.clone();
    tape.add_backward_op(move |grads| {
        let g_out = cpu_gradient(grads, &out_id)?[0];
        let g = cpu_gradient(grads, &x)?;
        g[..len].iter_mut().for_each(|g| *g += g_out);
        Ok(())
    });
    out.put_tape(tape)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The host op's value and gradient against the dfdx ops, over all entries and the
    /// first few.
    #[test]
    fn leading_sums_match_the_graph() {
        let dev = Cpu::seed_from_u64(6);
        let x: Tensor<(usize,), f32, Cpu> = dev.sample_normal_like(&(7,));
        // (dfdx cannot slice a vector to nothing: the empty sum is checked below)
        for len in [7, 4] {
            let host = leading_sum(x.clone().leaky_traced(), len);
            let graph = x.clone().leaky_traced().slice((0..len,)).sum::<(), _>();
            assert!((host.array() - graph.array()).abs() < 1e-6);
            let hg = (host * 1.5).backward().get(&x).as_vec();
            let gg = (graph * 1.5).backward().get(&x).as_vec();
            assert_eq!(hg, gg);
        }
        let empty = leading_sum(x.clone().leaky_traced(), 0);
        assert_eq!(empty.array(), 0.0);
        assert!(empty.backward().get(&x).as_vec().iter().all(|&g| g == 0.0));
    }

    /// The host op's product and its gradients in x and W against dfdx's matmul, with x a
    /// transposed view (its gradient laid out as its data, not in x's order).
    #[test]
    fn times_matrix_matches_the_graph() {
        let dev = Cpu::seed_from_u64(4);
        let (rows, k, n) = (5, 3, 4);
        let x: Tensor<(usize, usize), f32, Cpu> = dev.sample_normal_like(&(k, rows));
        let w: Tensor<(usize,), f32, Cpu> = dev.sample_normal_like(&(k * n,));
        let c: Tensor<(usize, usize), f32, Cpu> = dev.sample_normal_like(&(rows, n));
        let view = || {
            x.clone()
                .leaky_traced()
                .permute::<_, dfdx::shapes::Axes2<1, 0>>()
        };
        let host = times_matrix(view(), w.clone().leaky_traced(), (k, n));
        let graph = view().matmul(w.clone().leaky_traced().reshape_like(&(k, n)));
        let close = |a: Vec<f32>, b: Vec<f32>| {
            for (a, b) in a.iter().zip(&b) {
                assert!((a - b).abs() < 1e-5, "{a} against {b}");
            }
        };
        close(host.as_vec(), graph.as_vec());
        let hg = (host * c.clone()).sum::<(), _>().backward();
        let gg = (graph * c).sum::<(), _>().backward();
        close(hg.get(&x).as_vec(), gg.get(&x).as_vec());
        close(hg.get(&w).as_vec(), gg.get(&w).as_vec());
    }

    /// The host op's value and z's gradient against the dfdx ops.
    #[test]
    fn row_dots_match_the_graph() {
        let dev = Cpu::seed_from_u64(5);
        let z: Tensor<(usize, usize), f32, Cpu> = dev.sample_normal_like(&(3, 4));
        let c: Tensor<(usize, usize), f32, Cpu> = dev.sample_normal_like(&(3, 4));
        let w: Tensor<(usize,), f32, Cpu> = dev.sample_normal_like(&(3,));
        let host = row_dots(z.clone().leaky_traced(), &z.as_vec(), c.as_vec());
        let graph = (z.clone().leaky_traced() * c.clone()).sum::<(usize,), dfdx::shapes::Axis<1>>();
        let (hv, gv) = (host.as_vec(), graph.as_vec());
        let hg = (host * w.clone())
            .sum::<(), _>()
            .backward()
            .get(&z)
            .as_vec();
        let gg = (graph * w).sum::<(), _>().backward().get(&z).as_vec();
        for (a, b) in hv.iter().zip(&gv).chain(hg.iter().zip(&gg)) {
            assert!((a - b).abs() < 1e-5, "{hv:?} {gv:?} / {hg:?} {gg:?}");
        }
    }
}
