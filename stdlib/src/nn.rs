//! Layers of a net call on particles, as generated code runs them: `h` is
//! `(particles, rows, inputs)`. With weights drawn per particle (`linear`), or from a
//! mean-field Gaussian over them by Flipout or the local reparametrization.

use dfdx::prelude::*;
use ravi_backend::{Backend, Tape};

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
    let ew: Tensor<(usize, usize, usize), f32, D> = dev.sample_normal_like(&(s, i, o));
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
