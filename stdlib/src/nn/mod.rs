//! Layers of a net call on particles, as generated code runs them: `h` is
//! `(particles, rows, inputs)`. With weights drawn per particle (`linear`), or from a
//! mean-field Gaussian over them by Flipout or the local reparametrization.

use dfdx::prelude::*;
use ravi_backend::host_op::is_cpu;
use ravi_backend::{Backend, Tape};

mod images_on_host;

/// `(particles, rows, features)`
pub type Rows<D, T> = Tensor<(usize, usize, usize), f32, D, T>;
/// A weight matrix `(inputs, outputs)` shared by every particle.
pub type Weights<D, T> = Tensor<(usize, usize), f32, D, T>;
/// A bias `(outputs,)` shared by every particle.
pub type Bias<D, T> = Tensor<(usize,), f32, D, T>;

fn rows_of<D: Backend, T: Tape<D>>(b: Bias<D, T>, s: usize, r: usize) -> Rows<D, T> {
    let o = b.shape().0;
    b.broadcast_like::<_, Axes2<0, 1>>(&(s, r, o))
}

/// `(particles, rows, channels, height, width)`
pub type Images<D, T> = Tensor<(usize, usize, usize, usize, usize), f32, D, T>;

/// The 0/1 matrix that gathers every `kernel × kernel` window of `(channels, h, w)` images
/// (flattened) into rows of patches: column (p, c, dy, dx) reads channel c at the window p's
/// offset (dy, dx); positions in the zero padding read nothing. dfdx 0.13 has convolutions
/// and pooling only on nightly Rust, so ravi gathers windows with one matmul instead.
fn window_matrix(
    channels: usize,
    h: usize,
    w: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
) -> (Vec<f32>, usize, usize) {
    let oh = (h + 2 * padding - kernel) / stride + 1;
    let ow = (w + 2 * padding - kernel) / stride + 1;
    let cols = oh * ow * channels * kernel * kernel;
    let mut g = vec![0.0f32; channels * h * w * cols];
    for py in 0..oh {
        for px in 0..ow {
            for c in 0..channels {
                for dy in 0..kernel {
                    for dx in 0..kernel {
                        let (y, x) = (
                            (py * stride + dy) as isize - padding as isize,
                            (px * stride + dx) as isize - padding as isize,
                        );
                        if y < 0 || x < 0 || y >= h as isize || x >= w as isize {
                            continue;
                        }
                        let row = (c * h + y as usize) * w + x as usize;
                        let col = (((py * ow + px) * channels + c) * kernel + dy) * kernel + dx;
                        g[row * cols + col] = 1.0;
                    }
                }
            }
        }
    }
    (g, oh, ow)
}

/// A 2-D convolution with each particle's own filters `(particles, O·C·K·K)` (row-major
/// O, C, K, K) and biases `(particles, O)`: on the CPU a host op (windows gathered by
/// index, one product per particle), elsewhere windows gathered by one product with a 0/1
/// matrix, then one batched matmul.
pub fn conv2d<D: Backend, T: Tape<D>>(
    h: Images<D, T>,
    filters: Tensor<(usize, usize), f32, D, T>,
    bias: Tensor<(usize, usize), f32, D, T>,
    kernel: usize,
    stride: usize,
    padding: usize,
) -> Images<D, T> {
    if !is_cpu::<D>() {
        return conv2d_on_graph(h, filters, bias, kernel, stride, padding);
    }
    let (_, _, channels, height, width) = *h.shape();
    let window = images_on_host::Window {
        channels,
        height,
        width,
        kernel,
        stride,
        padding,
    };
    images_on_host::conv2d(h, filters, bias, window)
}

/// [`conv2d`] as dfdx ops.
fn conv2d_on_graph<D: Backend, T: Tape<D>>(
    h: Images<D, T>,
    filters: Tensor<(usize, usize), f32, D, T>,
    bias: Tensor<(usize, usize), f32, D, T>,
    kernel: usize,
    stride: usize,
    padding: usize,
) -> Images<D, T> {
    let (s, r, c, hh, ww) = *h.shape();
    let o = bias.shape().1;
    let (g, oh, ow) = window_matrix(c, hh, ww, kernel, stride, padding);
    let g = h
        .device()
        .tensor_from_vec(g, (c * hh * ww, oh * ow * c * kernel * kernel));
    let patches = h
        .reshape_like(&(s * r, c * hh * ww))
        .matmul(g)
        .reshape_like(&(s, r * oh * ow, c * kernel * kernel));
    let f = filters
        .reshape_like(&(s, o, c * kernel * kernel))
        .permute::<_, Axes3<0, 2, 1>>();
    let b = bias.broadcast_like::<_, Axis<1>>(&(s, r * oh * ow, o));
    let out = patches.matmul(f) + b;
    out.reshape_like(&(s, r, oh, ow, o))
        .permute::<_, Axes5<0, 1, 4, 2, 3>>()
}

/// Pooling: the max (or mean) of every `kernel × kernel` window, stride `kernel`; on the
/// CPU a host op.
pub fn pool2d<D: Backend, T: Tape<D>>(h: Images<D, T>, max: bool, kernel: usize) -> Images<D, T> {
    match is_cpu::<D>() {
        true => images_on_host::pool2d(h, max, kernel),
        false => pool2d_on_graph(h, max, kernel),
    }
}

/// [`pool2d`] as dfdx ops.
fn pool2d_on_graph<D: Backend, T: Tape<D>>(
    h: Images<D, T>,
    max: bool,
    kernel: usize,
) -> Images<D, T> {
    let (s, r, c, hh, ww) = *h.shape();
    let (g, oh, ow) = window_matrix(c, hh, ww, kernel, kernel, 0);
    let g = h
        .device()
        .tensor_from_vec(g, (c * hh * ww, oh * ow * c * kernel * kernel));
    // (S, R, H'·W', C, K·K) windows
    let windows = h
        .reshape_like(&(s * r, c * hh * ww))
        .matmul(g)
        .reshape_like(&(s, r, oh * ow, c, kernel * kernel));
    let pooled = if max {
        windows.max::<(usize, usize, usize, usize), Axis<4>>()
    } else {
        windows.mean::<(usize, usize, usize, usize), Axis<4>>()
    };
    pooled
        .reshape_like(&(s, r, oh, ow, c))
        .permute::<_, Axes5<0, 1, 4, 2, 3>>()
}

/// Shared filters `(O·C·K·K,)` or biases `(O,)` as every particle's.
fn per_particle<D: Backend, T: Tape<D>>(
    v: Bias<D, T>,
    s: usize,
) -> Tensor<(usize, usize), f32, D, T> {
    let n = v.shape().0;
    v.broadcast_like::<_, Axis<0>>(&(s, n))
}

/// The local reparametrization for a convolution: each output drawn from
/// N(conv(h, μ_W) + μ_b, conv(h², σ_W²) + σ_b²), independently at every position. Positions
/// share the filters, so unlike the dense case this is an approximation: each output's
/// marginal is exact, but after a non-linearity and pooling over positions the objective
/// differs from the plain reparametrized one (Flipout keeps it).
#[allow(clippy::too_many_arguments)]
pub fn conv2d_lrt<D: Backend, T: Tape<D>>(
    h: Images<D, T>,
    w_loc: Bias<D, T>,
    w_scale: Bias<D, T>,
    b_loc: Bias<D, T>,
    b_scale: Bias<D, T>,
    kernel: usize,
    stride: usize,
    padding: usize,
) -> Images<D, T> {
    let s = h.shape().0;
    let mean = conv2d(
        h.retaped::<T>(),
        per_particle(w_loc, s),
        per_particle(b_loc, s),
        kernel,
        stride,
        padding,
    );
    let var = conv2d(
        h.square(),
        per_particle(w_scale.square(), s),
        per_particle(b_scale.square(), s),
        kernel,
        stride,
        padding,
    );
    let eps: Tensor<(usize, usize, usize, usize, usize), f32, D> =
        var.device().sample_normal_like(var.shape());
    mean + (var + 1e-12).sqrt() * eps
}

/// Flipout for a convolution: conv(h, μ_W) + μ_b + conv(h ⊙ r, σ_W ⊙ ε) ⊙ s + σ_b ⊙ ε_b,
/// one ε per particle, random signs r, s per row and channel.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_flipout<D: Backend, T: Tape<D>>(
    h: Images<D, T>,
    w_loc: Bias<D, T>,
    w_scale: Bias<D, T>,
    b_loc: Bias<D, T>,
    b_scale: Bias<D, T>,
    kernel: usize,
    stride: usize,
    padding: usize,
) -> Images<D, T> {
    let (s, r, c, hh, ww) = *h.shape();
    let (nf, o) = (w_loc.shape().0, b_loc.shape().0);
    let dev = h.device().clone();
    let mean = conv2d(
        h.retaped::<T>(),
        per_particle(w_loc, s),
        per_particle(b_loc, s),
        kernel,
        stride,
        padding,
    );
    let ew = ravi_backend::normals::standard_normals(&dev, (s, nf));
    let eb: Tensor<(usize, usize), f32, D> = dev.sample_normal_like(&(s, o));
    let dw = per_particle(w_scale, s) * ew;
    let db = per_particle(b_scale, s) * eb;
    let zero_bias = dev.zeros_like(&(s, o)).retaped::<T>();
    // Signs per row and channel, the same at every position (as TFP's Conv2DFlipout): each
    // row then sees one sign-flipped draw of the filters, so the estimate stays unbiased.
    let in_signs = ravi_backend::ops::random_signs(&dev, (s, r, c))
        .broadcast_like::<_, Axes2<3, 4>>(&(s, r, c, hh, ww));
    let pert = conv2d(h * in_signs, dw, zero_bias, kernel, stride, padding);
    let (_, _, _, oh, ow) = *pert.shape();
    let out_signs = ravi_backend::ops::random_signs(&dev, (s, r, o))
        .broadcast_like::<_, Axes2<3, 4>>(&(s, r, o, oh, ow));
    mean + pert * out_signs + db.broadcast_like::<_, Axes3<1, 3, 4>>(&(s, r, o, oh, ow))
}

/// The local reparametrization: each row's pre-activations drawn from
/// N(h μ_W + μ_b, h² σ_W² + σ_b²), independently per row and particle.
pub fn linear_lrt<D: Backend, T: Tape<D>>(
    h: Rows<D, T>,
    w_loc: Weights<D, T>,
    w_scale: Weights<D, T>,
    b_loc: Bias<D, T>,
    b_scale: Bias<D, T>,
) -> Rows<D, T> {
    let (s, r, _) = *h.shape();
    let o = w_loc.shape().1;
    let mean = h.retaped::<T>().matmul(w_loc) + rows_of(b_loc, s, r);
    let var = h.square().matmul(w_scale.square()) + rows_of(b_scale.square(), s, r);
    let eps: Tensor<(usize, usize, usize), f32, D> = var.device().sample_normal_like(&(s, r, o));
    mean + (var + 1e-12).sqrt() * eps
}

/// Flipout: one perturbation ΔW = σ_W ⊙ ε per particle, decorrelated across rows by random
/// signs: h μ_W + μ_b + ((h ⊙ r) ΔW) ⊙ s + σ_b ⊙ ε_b.
pub fn linear_flipout<D: Backend, T: Tape<D>>(
    h: Rows<D, T>,
    w_loc: Weights<D, T>,
    w_scale: Weights<D, T>,
    b_loc: Bias<D, T>,
    b_scale: Bias<D, T>,
) -> Rows<D, T> {
    let (s, r, i) = *h.shape();
    let o = w_loc.shape().1;
    let dev = h.device().clone();
    let mean = h.retaped::<T>().matmul(w_loc) + rows_of(b_loc, s, r);
    let ew = ravi_backend::normals::standard_normals(&dev, (s, i * o)).reshape_like(&(s, i, o));
    let dw = w_scale.broadcast_like::<_, Axis<0>>(&(s, i, o)) * ew;
    let eb: Tensor<(usize, usize), f32, D> = dev.sample_normal_like(&(s, o));
    let db = (b_scale.broadcast_like::<_, Axis<0>>(&(s, o)) * eb)
        .broadcast_like::<_, Axis<1>>(&(s, r, o));
    let in_signs = ravi_backend::ops::random_signs(&dev, (s, r, i));
    let out_signs = ravi_backend::ops::random_signs(&dev, (s, r, o));
    mean + (h * in_signs).matmul(dw) * out_signs + db
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A grouped convolution over particles equals each particle's own convolution,
    /// written out as sums, and pooling takes window maxima and means.
    /// The convolution rewrites against the plain reparametrized convolution: same mean
    /// and variance of every output on a fixed image.
    #[test]
    fn conv_rewrites_match_plain_reparametrization() {
        let dev = Cpu::seed_from_u64(12);
        let (n, c, o, k, hw) = (100_000usize, 1usize, 2usize, 2usize, 3usize);
        let img = [0.5f32, -1.0, 0.3, 1.2, 0.0, -0.4, 0.8, 0.6, -0.9];
        let h = dev.tensor_from_vec(img.repeat(n), (n, 1usize, c, hw, hw));
        let nf = o * c * k * k;
        let wl: Vec<f32> = (0..nf).map(|i| (i as f32 * 0.37).sin()).collect();
        let ws: Vec<f32> = (0..nf)
            .map(|i| 0.2 + 0.1 * (i as f32 * 0.9).cos().abs())
            .collect();
        let (bl, bs) = (vec![0.1f32, -0.2], vec![0.15f32, 0.05]);
        let v = |x: &[f32]| dev.tensor_from_vec(x.to_vec(), (x.len(),));
        let lrt = conv2d_lrt::<Cpu, NoneTape>(h.clone(), v(&wl), v(&ws), v(&bl), v(&bs), k, 1, 0)
            .as_vec();
        let flip =
            conv2d_flipout::<Cpu, NoneTape>(h.clone(), v(&wl), v(&ws), v(&bl), v(&bs), k, 1, 0)
                .as_vec();
        let ew: Tensor<(usize, usize), f32, Cpu> = dev.sample_normal_like(&(n, nf));
        let eb: Tensor<(usize, usize), f32, Cpu> = dev.sample_normal_like(&(n, o));
        let filters = per_particle(v(&ws), n) * ew + per_particle(v(&wl), n);
        let bias = per_particle(v(&bs), n) * eb + per_particle(v(&bl), n);
        let plain = conv2d(h, filters, bias, k, 1, 0).as_vec();
        let per_out = o * 2 * 2;
        let moments = |x: &[f32], j: usize| {
            let col: Vec<f64> = x.chunks(per_out).map(|r| f64::from(r[j])).collect();
            let m = col.iter().sum::<f64>() / n as f64;
            (
                m,
                col.iter().map(|a| (a - m).powi(2)).sum::<f64>() / (n - 1) as f64,
            )
        };
        for j in 0..per_out {
            let (pm, pv) = moments(&plain, j);
            for (name, x) in [("LRT", &lrt), ("Flipout", &flip)] {
                let (m, var) = moments(x, j);
                assert!(
                    (m - pm).abs() < 6.0 * (2.0 * pv / n as f64).sqrt(),
                    "{name} output {j}: mean {m} vs {pm}"
                );
                assert!(
                    (var / pv - 1.0).abs() < 0.03,
                    "{name} output {j}: variance {var} vs {pv}"
                );
            }
        }
    }

    #[test]
    fn conv2d_and_pooling_by_hand() {
        let dev = Cpu::seed_from_u64(1);
        let (s, r, c, o, k, hw) = (2usize, 3usize, 2usize, 3usize, 2usize, 4usize);
        let x: Tensor<(usize, usize, usize, usize, usize), f32, Cpu> =
            dev.sample_normal_like(&(s, r, c, hw, hw));
        let f: Tensor<(usize, usize), f32, Cpu> = dev.sample_normal_like(&(s, o * c * k * k));
        let b: Tensor<(usize, usize), f32, Cpu> = dev.sample_normal_like(&(s, o));
        let out = conv2d(x.clone(), f.clone(), b.clone(), k, 1, 0);
        assert_eq!(*out.shape(), (s, r, o, 3, 3));
        let (xv, fv, bv, ov) = (x.as_vec(), f.as_vec(), b.as_vec(), out.as_vec());
        let xi = |p: usize, n: usize, ch: usize, y: usize, z: usize| {
            xv[(((p * r + n) * c + ch) * hw + y) * hw + z]
        };
        for p in 0..s {
            for n in 0..r {
                for oc in 0..o {
                    for y in 0..3 {
                        for z in 0..3 {
                            let mut want = bv[p * o + oc];
                            for ch in 0..c {
                                for dy in 0..k {
                                    for dz in 0..k {
                                        want += fv
                                            [p * o * c * k * k + ((oc * c + ch) * k + dy) * k + dz]
                                            * xi(p, n, ch, y + dy, z + dz);
                                    }
                                }
                            }
                            let got = ov[(((p * r + n) * o + oc) * 3 + y) * 3 + z];
                            assert!((got - want).abs() < 1e-4, "{got} vs {want}");
                        }
                    }
                }
            }
        }
        let pooled = pool2d(x.clone(), true, 2).as_vec();
        let mean = pool2d(x, false, 2).as_vec();
        for p in 0..s {
            for n in 0..r {
                for ch in 0..c {
                    for y in 0..2 {
                        for z in 0..2 {
                            let win = [
                                xi(p, n, ch, 2 * y, 2 * z),
                                xi(p, n, ch, 2 * y, 2 * z + 1),
                                xi(p, n, ch, 2 * y + 1, 2 * z),
                                xi(p, n, ch, 2 * y + 1, 2 * z + 1),
                            ];
                            let at = (((p * r + n) * c + ch) * 2 + y) * 2 + z;
                            let mx = win.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
                            assert!((pooled[at] - mx).abs() < 1e-6);
                            assert!((mean[at] - win.iter().sum::<f32>() / 4.0).abs() < 1e-5);
                        }
                    }
                }
            }
        }
    }

    /// On a fixed input, the rewritten layers' outputs have the mean and variance of the
    /// plain reparametrized layer's, N(x μ + μ_b, x² σ² + σ_b²) per output.
    #[test]
    fn rewrites_match_plain_reparametrization_in_mean_and_variance() {
        let dev = Cpu::seed_from_u64(10);
        let (i, o, n) = (3usize, 2usize, 200_000usize);
        let x = [0.5f32, -1.2, 2.0];
        let (wl, ws) = (
            [0.3f32, -0.1, 0.8, 0.2, -0.5, 0.4],
            [0.2f32, 0.5, 0.1, 0.3, 0.4, 0.25],
        );
        let (bl, bs) = ([0.1f32, -0.3], [0.2f32, 0.1]);
        let t = |v: &[f32], shape: (usize, usize)| dev.tensor_from_vec(v.to_vec(), shape);
        let h = dev.tensor_from_vec(x.repeat(n), (n, 1usize, i));
        let want_mean: Vec<f64> = (0..o)
            .map(|k| {
                (0..i).map(|j| f64::from(x[j] * wl[j * o + k])).sum::<f64>() + f64::from(bl[k])
            })
            .collect();
        let want_var: Vec<f64> = (0..o)
            .map(|k| {
                (0..i)
                    .map(|j| f64::from(x[j] * x[j] * ws[j * o + k] * ws[j * o + k]))
                    .sum::<f64>()
                    + f64::from(bs[k] * bs[k])
            })
            .collect();
        let check = |name: &str, out: Vec<f32>| {
            for k in 0..o {
                let v: Vec<f64> = out.chunks(o).map(|c| f64::from(c[k])).collect();
                let m = v.iter().sum::<f64>() / n as f64;
                let var = v.iter().map(|a| (a - m).powi(2)).sum::<f64>() / (n - 1) as f64;
                assert!(
                    (m - want_mean[k]).abs() < 5.0 * (want_var[k] / n as f64).sqrt(),
                    "{name} mean[{k}] {m} vs {}",
                    want_mean[k]
                );
                assert!(
                    (var / want_var[k] - 1.0).abs() < 0.02,
                    "{name} var[{k}] {var} vs {}",
                    want_var[k]
                );
            }
        };
        let lrt = linear_lrt::<Cpu, NoneTape>(
            h.clone(),
            t(&wl, (i, o)),
            t(&ws, (i, o)),
            dev.tensor_from_vec(bl.to_vec(), (o,)),
            dev.tensor_from_vec(bs.to_vec(), (o,)),
        );
        check("LRT", lrt.as_vec());
        let flip = linear_flipout::<Cpu, NoneTape>(
            h.clone(),
            t(&wl, (i, o)),
            t(&ws, (i, o)),
            dev.tensor_from_vec(bl.to_vec(), (o,)),
            dev.tensor_from_vec(bs.to_vec(), (o,)),
        );
        check("Flipout", flip.as_vec());
        // Plain: W = μ + σ ε per particle, then x W + b.
        let ew: Tensor<(usize, usize, usize), f32, Cpu> = dev.sample_normal_like(&(n, i, o));
        let w = t(&ws, (i, o)).broadcast_like::<_, Axis<0>>(&(n, i, o)) * ew
            + t(&wl, (i, o)).broadcast_like::<_, Axis<0>>(&(n, i, o));
        let eb: Tensor<(usize, usize), f32, Cpu> = dev.sample_normal_like(&(n, o));
        let b = dev
            .tensor_from_vec(bs.to_vec(), (o,))
            .broadcast_like::<_, Axis<0>>(&(n, o))
            * eb
            + dev
                .tensor_from_vec(bl.to_vec(), (o,))
                .broadcast_like::<_, Axis<0>>(&(n, o));
        let plain = h.matmul(w).reshape_like(&(n, o)) + b;
        check("plain", plain.as_vec());
    }
}

/// A layer of a net as run-time data: what a guide's encoder (a net on data rows, with one
/// weight vector) is made of. The compiler writes the list from the `net` declaration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    /// x W + b: W `inputs × outputs` row-major, then b, consecutive in the weight vector.
    Linear {
        /// Features in.
        inputs: usize,
        /// Features out.
        outputs: usize,
    },
    /// max(x, 0)
    Relu,
    /// tanh(x)
    Tanh,
    /// 1 / (1 + e⁻ˣ)
    Sigmoid,
    /// log(1 + eˣ)
    Softplus,
}

impl Layer {
    /// The layer's weights in the weight vector.
    pub fn num_params(&self) -> usize {
        match *self {
            Layer::Linear { inputs, outputs } => inputs * outputs + outputs,
            _ => 0,
        }
    }
}

/// Glorot-uniform starting weights (biases 0) for a net of `layers`, from U(0, 1) draws.
pub fn glorot_init(layers: &[Layer], uniform: &mut dyn FnMut() -> f32) -> Vec<f32> {
    let mut out = Vec::new();
    for l in layers {
        if let Layer::Linear { inputs, outputs } = *l {
            let block = ravi_backend::InitBlock {
                fan_in: inputs,
                fan_out: outputs,
                weights: inputs * outputs,
                bias: outputs,
            };
            block.fill(&mut out, uniform);
        }
    }
    out
}

/// A net with one weight vector `w` on data rows `x` `(rows, features)`: `(rows, outputs)`.
pub fn forward_rows<D: Backend, T: Tape<D>>(
    layers: &[Layer],
    x: Tensor<(usize, usize), f32, D>,
    w: Tensor<(usize,), f32, D, T>,
) -> Tensor<(usize, usize), f32, D, T> {
    let rows = x.shape().0;
    // A private copy: dfdx 0.13's slice backward assigns the gradient of the sliced source
    // rather than adding to it, so slices must read a tensor nothing else reads.
    // The copy's tape rides on `h`, so it reaches the loss whatever the layers are.
    let (w, tape) = (w + 0.0).split_tape();
    let mut h = x.put_tape(tape);
    let mut off = 0;
    for l in layers {
        h = match *l {
            Layer::Linear { inputs, outputs } => {
                let wm = w
                    .retaped::<T>()
                    .slice((off..off + inputs * outputs,))
                    .reshape_like(&(inputs, outputs));
                let b = w
                    .retaped::<T>()
                    .slice((off + inputs * outputs..off + inputs * outputs + outputs,))
                    .broadcast_like::<(usize, usize), Axis<0>>(&(rows, outputs));
                off += inputs * outputs + outputs;
                h.matmul(wm) + b
            }
            Layer::Relu => h.relu(),
            Layer::Tanh => h.tanh(),
            Layer::Sigmoid => h.sigmoid(),
            Layer::Softplus => ravi_backend::ops::softplus(h),
        };
    }
    h
}
