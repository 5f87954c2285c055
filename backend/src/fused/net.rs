//! `Net(x; w)` calls of Linear layers and activations, one particle at a time: the
//! products through sgemm, each layer's output kept for the backward pass.

use super::engine::{apply, chain};
use super::gemm::par_gemm;
use crate::program::Layer;

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
                let (wl, bl) = (
                    &w[off..off + inputs * outputs],
                    &w[off + inputs * outputs..][..outputs],
                );
                off += inputs * outputs + outputs;
                par_gemm(
                    (rows, inputs, outputs),
                    h,
                    (inputs, 1),
                    wl,
                    (outputs, 1),
                    0.0,
                    out,
                );
                for row in out.chunks_exact_mut(outputs) {
                    for (o, b) in row.iter_mut().zip(bl) {
                        *o += b;
                    }
                }
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
                let off = starts[l];
                let wl = &w[off..off + inputs * outputs];
                // dW += hᵀ gh, db += Σ_rows gh
                par_gemm(
                    (inputs, rows, outputs),
                    h,
                    (1, inputs),
                    gh,
                    (outputs, 1),
                    1.0,
                    &mut gw[off..off + inputs * outputs],
                );
                let gb = &mut gw[off + inputs * outputs..][..outputs];
                for row in gh.chunks_exact(outputs) {
                    for (b, &v) in gb.iter_mut().zip(row) {
                        *b += v;
                    }
                }
                if l > 0 || wants_x {
                    // gh Wᵀ: the gradient in this layer's input
                    next.resize(rows * inputs, 0.0);
                    par_gemm(
                        (rows, outputs, inputs),
                        gh,
                        (outputs, 1),
                        wl,
                        (1, outputs),
                        0.0,
                        next,
                    );
                    std::mem::swap(gh, next);
                }
            }
            Layer::Activation(f) => {
                std::mem::swap(gh, next);
                gh.resize(next.len(), 0.0);
                chain(f, h, &acts[l], next, gh, false);
            }
        }
    }
    if let Some(gx) = gx {
        for (a, &b) in gx.iter_mut().zip(gh.iter()) {
            *a += b;
        }
    }
}
