//! `Net(x; w)` calls of Linear layers and activations, one particle at a time: the
//! products through sgemm, each layer's output kept for the backward pass.

use super::engine::{apply, chain};
pub(crate) use crate::gemm::{rows_t_times, times_weights, times_weights_t};
use crate::program::{Func, Layer};

/// Where each layer's weights start in the net's weight vector (each Linear layer's W
/// row-major, then b; an activation takes none).
pub(crate) fn weight_offsets(layers: &[Layer]) -> Vec<usize> {
    layers
        .iter()
        .scan(0, |off, l| {
            let at = *off;
            if let Layer::Linear { inputs, outputs } = l {
                *off += inputs * outputs + outputs;
            }
            Some(at)
        })
        .collect()
}

/// out = h W + b for a Linear layer over `rows` rows, `w` its weights from W (row-major)
/// on, then b.
pub(crate) fn linear_forward(
    h: &[f32],
    w: &[f32],
    (rows, inputs, outputs): (usize, usize, usize),
    out: &mut [f32],
) {
    times_weights(h, w, (rows, inputs, outputs), out);
    let b = &w[inputs * outputs..][..outputs];
    for row in out.chunks_exact_mut(outputs) {
        for (o, b) in row.iter_mut().zip(b) {
            *o += b;
        }
    }
}

/// A Linear layer's backward pass for ⟨gh, h W + b⟩ over `rows` rows: adds hᵀ gh to W's
/// gradient and Σ_rows gh to b's (`gw`: the layer's W, then b), and writes gh Wᵀ, the
/// gradient in the layer's input, into `below` when given (added to what it holds when
/// its flag says so).
pub(crate) fn linear_backward(
    h: &[f32],
    w: &[f32],
    (rows, inputs, outputs): (usize, usize, usize),
    gh: &[f32],
    gw: &mut [f32],
    below: Option<(&mut [f32], bool)>,
) {
    let nw = inputs * outputs;
    let shape = (rows, inputs, outputs);
    rows_t_times(h, gh, shape, 1.0, &mut gw[..nw]);
    add_row_sums(gh, outputs, &mut gw[nw..nw + outputs]);
    if let Some((below, add)) = below {
        let beta = if add { 1.0 } else { 0.0 };
        times_weights_t(gh, w, shape, beta, below);
    }
}

/// An activation's backward pass: `gh`, the gradient in its output `act`, becomes the
/// gradient in its input `h` (`next` a buffer to work in).
pub(crate) fn activation_backward(
    f: Func,
    h: &[f32],
    act: &[f32],
    gh: &mut Vec<f32>,
    next: &mut Vec<f32>,
) {
    std::mem::swap(gh, next);
    gh.resize(next.len(), 0.0);
    chain(f, h, act, next, gh, false);
}

/// sums[j] += Σ_rows m[row, j] for a row-major m of `width` columns.
pub(crate) fn add_row_sums(m: &[f32], width: usize, sums: &mut [f32]) {
    for row in m.chunks_exact(width) {
        for (s, v) in sums.iter_mut().zip(row) {
            *s += v;
        }
    }
}

/// The width of each layer's output, given the rows' features.
pub(crate) fn widths(layers: &[Layer], features: usize) -> Vec<usize> {
    let mut w = features;
    layers
        .iter()
        .map(|l| {
            if let Layer::Linear { outputs, .. } = l {
                w = *outputs;
            }
            w
        })
        .collect()
}

/// Every layer's output for `rows` rows `x` (rows × features) and weights `w`, into `acts`
/// (one buffer per layer, sized by [`widths`]).
pub(crate) fn forward(layers: &[Layer], x: &[f32], w: &[f32], rows: usize, acts: &mut [Vec<f32>]) {
    let mut off = 0;
    for (l, layer) in layers.iter().enumerate() {
        let (done, rest) = acts.split_at_mut(l);
        let h: &[f32] = if l == 0 { x } else { &done[l - 1] };
        let out = &mut rest[0];
        match *layer {
            Layer::Linear { inputs, outputs } => {
                linear_forward(h, &w[off..], (rows, inputs, outputs), out);
                off += inputs * outputs + outputs;
            }
            Layer::Activation(f) => apply(f, h, out),
        }
    }
}

/// Adds to `gw` the gradient in the weights, and to `gx` (when given) the gradient in the
/// rows, of ⟨g, output⟩; `acts` as [`forward`] left them. `scratch` holds two buffers.
#[allow(clippy::too_many_arguments)]
pub(crate) fn backward(
    layers: &[Layer],
    x: &[f32],
    w: &[f32],
    rows: usize,
    acts: &[Vec<f32>],
    g: &[f32],
    gw: &mut [f32],
    gx: Option<&mut [f32]>,
    scratch: &mut (Vec<f32>, Vec<f32>),
) {
    let starts = weight_offsets(layers);
    let (gh, next) = (&mut scratch.0, &mut scratch.1);
    gh.clear();
    gh.extend_from_slice(g);
    let wants_x = gx.is_some();
    for l in (0..layers.len()).rev() {
        let h: &[f32] = if l == 0 { x } else { &acts[l - 1] };
        if l == 0 && !wants_x && matches!(layers[0], Layer::Activation(_)) {
            break;
        }
        match layers[l] {
            Layer::Linear { inputs, outputs } => {
                let (off, shape) = (starts[l], (rows, inputs, outputs));
                let gw = &mut gw[off..off + inputs * outputs + outputs];
                if l > 0 || wants_x {
                    next.resize(rows * inputs, 0.0);
                    linear_backward(h, &w[off..], shape, gh, gw, Some((next, false)));
                    std::mem::swap(gh, next);
                } else {
                    linear_backward(h, &w[off..], shape, gh, gw, None);
                }
            }
            Layer::Activation(f) => activation_backward(f, h, &acts[l], gh, next),
        }
    }
    if let Some(gx) = gx {
        for (a, &b) in gx.iter_mut().zip(gh.iter()) {
            *a += b;
        }
    }
}
