//! Each row's largest log σ of the matrix-multiplication head (m rows of n): the entropy
//! bound's D̃. A max over all m·n entries, and its backward pass another, as dfdx ops; one
//! loop each way as a host op on the CPU.

use dfdx::prelude::*;
use ravi_backend::host_op::{cpu_gradient, is_cpu, laid_out};
use ravi_backend::{Backend, Tape};

/// The maximum of each row of `x` (m × n, row-major); as dfdx's `max`, the gradient goes
/// to every entry equal to its row's maximum.
pub(super) fn row_maxima<D: Backend, T: Tape<D>>(
    x: Tensor<(usize,), f32, D, T>,
    (m, n): (usize, usize),
) -> Tensor<(usize,), f32, D, T> {
    if !is_cpu::<D>() {
        return on_graph(x, (m, n));
    }
    // (laid out in order, as the gradient is written)
    let (x, mut tape) = x.contiguous().split_tape();
    let values = laid_out(&x);
    let maxima: Vec<f32> = (0..m)
        .map(|r| {
            values[r * n..(r + 1) * n]
                .iter()
                .fold(f32::NEG_INFINITY, |a, &b| a.max(b))
        })
        .collect();
    let out = x.device().tensor_from_vec(maxima.clone(), (m,));
    let out_id = out.clone();
    tape.add_backward_op(move |grads| {
        let g_out = cpu_gradient(grads, &out_id)?.to_vec();
        let g = cpu_gradient(grads, &x)?;
        for (r, (&max, go)) in maxima.iter().zip(&g_out).enumerate() {
            let row = r * n..(r + 1) * n;
            for (g, &v) in g[row.clone()].iter_mut().zip(&values[row]) {
                if v == max {
                    *g += go;
                }
            }
        }
        Ok(())
    });
    out.put_tape(tape)
}

/// [`row_maxima`] as dfdx ops.
fn on_graph<D: Backend, T: Tape<D>>(
    x: Tensor<(usize,), f32, D, T>,
    (m, n): (usize, usize),
) -> Tensor<(usize,), f32, D, T> {
    x.reshape_like(&(m, n)).max::<(usize,), Axis<1>>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ravi_backend::Cpu;

    /// The host op's values and gradient against dfdx's `max`.
    #[test]
    fn row_maxima_match_the_graph() {
        let dev = Cpu::seed_from_u64(8);
        let x: Tensor<(usize,), f32, Cpu> = dev.sample_normal_like(&(12,));
        let w: Tensor<(usize,), f32, Cpu> = dev.sample_normal_like(&(3,));
        let host = row_maxima(x.clone().leaky_traced(), (3, 4));
        let graph = on_graph(x.clone().leaky_traced(), (3, 4));
        let (hv, gv) = (host.as_vec(), graph.as_vec());
        let hg = (host * w.clone())
            .sum::<(), _>()
            .backward()
            .get(&x)
            .as_vec();
        let gg = (graph * w).sum::<(), _>().backward().get(&x).as_vec();
        assert_eq!(hv, gv);
        assert_eq!(hg, gg);
        assert_eq!(hg.iter().filter(|&&g| g != 0.0).count(), 3, "{hg:?}");
    }
}
