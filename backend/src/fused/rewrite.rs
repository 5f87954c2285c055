//! A net call rewritten by its weights' mean-field Gaussian, as `ravi::nn::linear_flipout`
//! and `linear_lrt` compute it on the graph: Flipout (one perturbation ΔW = σ ⊙ ε per
//! particle, decorrelated across rows by random signs) or the local reparametrization (each
//! row's pre-activations drawn from N(h μ_W + μ_b, h² σ_W² + σ_b²)). The forward pass keeps
//! what the backward pass needs; the backward pass adds the gradients in μ and σ (summed over
//! the particles) and in the rows.

use super::engine::apply;
use super::net::{
    activation_backward, add_row_sums, linear_backward, linear_forward, rows_t_times,
    times_weights, times_weights_t,
};
use crate::model::Rewrite;
use crate::program::Layer;

/// The weights' Gaussian for one rewritten net call, the noise of the current pass and the
/// gradients in μ and σ.
pub(crate) struct RewrittenNet {
    pub kind: Rewrite,
    /// μ and σ, in the net's weight layout (each Linear layer's W row-major, then b).
    pub loc: Vec<f32>,
    pub scale: Vec<f32>,
    /// ∂/∂μ and ∂/∂σ of the summed log joint, summed over the particles.
    pub g_loc: Vec<f32>,
    pub g_scale: Vec<f32>,
    /// The seed of this pass's noise (each particle and layer its own stream).
    pub seed: u64,
    /// Per particle, per Linear layer: the noise, and the local reparametrization's sds.
    noise: Vec<Vec<LayerNoise>>,
}

/// One Linear layer's noise for one particle.
#[derive(Default)]
struct LayerNoise {
    /// Flipout: ε of the weights and biases (the layer's slice of the weight layout);
    /// the local reparametrization: ε of each row's pre-activations (rows × outputs).
    eps: Vec<f32>,
    /// Flipout: the signs on the inputs (rows × inputs) and outputs (rows × outputs).
    signs_in: Vec<f32>,
    signs_out: Vec<f32>,
    /// The local reparametrization: each pre-activation's sd (rows × outputs).
    sd: Vec<f32>,
}

impl RewrittenNet {
    /// The rewrite `kind` of net call `node` with weights' means `loc` and sds `scale`, its
    /// noise drawn from the pass's `seed` (each call its own streams).
    pub(crate) fn for_call(
        kind: Rewrite,
        loc: &[f32],
        scale: &[f32],
        seed: u64,
        node: usize,
    ) -> Self {
        let seed = seed ^ (node as u64 + 1).wrapping_mul(0xD1B5_4A32_D192_ED03);
        Self::new(kind, loc, scale, seed)
    }

    /// The rewrite `kind` of a net call with weights' means `loc` and sds `scale`, its noise
    /// drawn from `seed`.
    pub(crate) fn new(kind: Rewrite, loc: &[f32], scale: &[f32], seed: u64) -> Self {
        RewrittenNet {
            kind,
            loc: loc.to_vec(),
            scale: scale.to_vec(),
            g_loc: vec![0.0; loc.len()],
            g_scale: vec![0.0; scale.len()],
            seed,
            noise: Vec::new(),
        }
    }

    /// Every layer's output for particle `s`'s rows `x` (rows × features), into `acts` (as
    /// [`super::net::forward`]), drawing the particle's noise.
    pub(crate) fn forward(
        &mut self,
        layers: &[Layer],
        s: usize,
        x: &[f32],
        rows: usize,
        acts: &mut [Vec<f32>],
        scratch: &mut (Vec<f32>, Vec<f32>),
    ) {
        if self.noise.len() <= s {
            self.noise.resize_with(s + 1, Vec::new);
        }
        let linear = layers
            .iter()
            .filter(|l| matches!(l, Layer::Linear { .. }))
            .count();
        self.noise[s].resize_with(linear, LayerNoise::default);
        let (mut off, mut lin) = (0, 0);
        for (l, layer) in layers.iter().enumerate() {
            let (done, rest) = acts.split_at_mut(l);
            let h: &[f32] = if l == 0 { x } else { &done[l - 1] };
            let out = &mut rest[0];
            let Layer::Linear { inputs, outputs } = *layer else {
                let Layer::Activation(f) = *layer else {
                    unreachable!("a layer is Linear or an activation")
                };
                apply(f, h, out);
                continue;
            };
            let size = inputs * outputs + outputs;
            let (mu, sigma) = (&self.loc[off..off + size], &self.scale[off..off + size]);
            let stream = (s as u64) << 16 | lin as u64;
            let noise = &mut self.noise[s][lin];
            linear_forward(h, mu, (rows, inputs, outputs), out);
            match self.kind {
                Rewrite::Flipout => {
                    noise.eps.resize(size, 0.0);
                    let workers = crate::threads::workers_for(size * 64);
                    crate::normals::fill_streams(&mut noise.eps, self.seed, stream << 20, workers);
                    noise.signs_in.resize(rows * inputs, 0.0);
                    noise.signs_out.resize(rows * outputs, 0.0);
                    fill_signs(&mut noise.signs_in, &mut noise.signs_out, self.seed, stream);
                    // ((h ⊙ r_in) ΔW) ⊙ r_out + σ_b ⊙ ε_b, ΔW = σ_W ⊙ ε_W
                    let (hs, dw) = (&mut scratch.0, &mut scratch.1);
                    signed(h, &noise.signs_in, hs);
                    dw.clear();
                    dw.extend(sigma.iter().zip(&noise.eps).map(|(s, e)| s * e));
                    let t = &mut Vec::new();
                    t.resize(rows * outputs, 0.0);
                    times_weights(hs, dw, (rows, inputs, outputs), t);
                    let db = &dw[inputs * outputs..];
                    for ((o, t), r) in out
                        .chunks_exact_mut(outputs)
                        .zip(t.chunks_exact(outputs))
                        .zip(noise.signs_out.chunks_exact(outputs))
                    {
                        for j in 0..outputs {
                            o[j] += t[j] * r[j] + db[j];
                        }
                    }
                }
                Rewrite::Lrt => {
                    // sd = √(h² σ_W² + σ_b² + 10⁻¹²), out += sd ⊙ ε
                    let (h2, s2) = (&mut scratch.0, &mut scratch.1);
                    h2.clear();
                    h2.extend(h.iter().map(|v| v * v));
                    s2.clear();
                    s2.extend(sigma.iter().map(|v| v * v));
                    noise.sd.resize(rows * outputs, 0.0);
                    times_weights(h2, s2, (rows, inputs, outputs), &mut noise.sd);
                    noise.eps.resize(rows * outputs, 0.0);
                    let workers = crate::threads::workers_for(rows * outputs * 64);
                    crate::normals::fill_streams(&mut noise.eps, self.seed, stream << 20, workers);
                    let b2 = &s2[inputs * outputs..];
                    for ((o, sd), e) in out
                        .chunks_exact_mut(outputs)
                        .zip(noise.sd.chunks_exact_mut(outputs))
                        .zip(noise.eps.chunks_exact(outputs))
                    {
                        for j in 0..outputs {
                            sd[j] = (sd[j] + b2[j] + 1e-12).sqrt();
                            o[j] += sd[j] * e[j];
                        }
                    }
                }
            }
            off += size;
            lin += 1;
        }
    }

    /// Adds the gradients of ⟨g, output⟩ in μ and σ, and in particle `s`'s rows `x` to
    /// `gx` when given; `acts` and the noise as [`RewrittenNet::forward`] left them.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn backward(
        &mut self,
        layers: &[Layer],
        s: usize,
        x: &[f32],
        rows: usize,
        acts: &[Vec<f32>],
        g: &[f32],
        gx: Option<&mut [f32]>,
        scratch: &mut (Vec<f32>, Vec<f32>),
    ) {
        let starts = super::net::weight_offsets(layers);
        let mut lin = self.noise[s].len();
        let (gh, next) = (&mut scratch.0, &mut scratch.1);
        gh.clear();
        gh.extend_from_slice(g);
        let wants_x = gx.is_some();
        for l in (0..layers.len()).rev() {
            let h: &[f32] = if l == 0 { x } else { &acts[l - 1] };
            let Layer::Linear { inputs, outputs } = layers[l] else {
                if l == 0 && !wants_x {
                    break;
                }
                let Layer::Activation(f) = layers[l] else {
                    unreachable!("a layer is Linear or an activation")
                };
                activation_backward(f, h, &acts[l], gh, next);
                continue;
            };
            lin -= 1;
            let (off, nw) = (starts[l], inputs * outputs);
            let noise = &self.noise[s][lin];
            let sigma = &self.scale[off..off + nw + outputs];
            let mut below = vec![0.0f32; if l > 0 || wants_x { rows * inputs } else { 0 }];
            match self.kind {
                Rewrite::Flipout => {
                    // go = gh ⊙ r_out; ∂ΔW = (h ⊙ r_in)ᵀ go, ∂σ_W += ∂ΔW ⊙ ε_W;
                    // ∂σ_b += (Σ_rows gh) ⊙ ε_b; ∂h += (go ΔWᵀ) ⊙ r_in
                    let go: Vec<f32> = gh
                        .iter()
                        .zip(&noise.signs_out)
                        .map(|(g, r)| g * r)
                        .collect();
                    let mut hs = Vec::new();
                    signed(h, &noise.signs_in, &mut hs);
                    let mut g_dw = vec![0.0f32; nw];
                    rows_t_times(&hs, &go, (rows, inputs, outputs), 0.0, &mut g_dw);
                    for ((gs, gd), e) in self.g_scale[off..off + nw]
                        .iter_mut()
                        .zip(&g_dw)
                        .zip(&noise.eps[..nw])
                    {
                        *gs += gd * e;
                    }
                    let mut sums = vec![0.0f32; outputs];
                    add_row_sums(gh, outputs, &mut sums);
                    for ((gs, v), e) in self.g_scale[off + nw..off + nw + outputs]
                        .iter_mut()
                        .zip(&sums)
                        .zip(&noise.eps[nw..])
                    {
                        *gs += v * e;
                    }
                    if !below.is_empty() {
                        let dw: Vec<f32> = sigma[..nw]
                            .iter()
                            .zip(&noise.eps[..nw])
                            .map(|(s, e)| s * e)
                            .collect();
                        times_weights_t(&go, &dw, (rows, inputs, outputs), 0.0, &mut below);
                        for (b, r) in below.iter_mut().zip(&noise.signs_in) {
                            *b *= r;
                        }
                    }
                }
                Rewrite::Lrt => {
                    // gv = gh ⊙ ε / (2 sd); ∂σ_W += 2 σ_W ⊙ (h²)ᵀ gv; ∂σ_b += 2 σ_b Σ_rows gv;
                    // ∂h += 2 h ⊙ (gv (σ_W²)ᵀ)
                    let gv: Vec<f32> = gh
                        .iter()
                        .zip(&noise.eps)
                        .zip(&noise.sd)
                        .map(|((g, e), sd)| g * e / (2.0 * sd))
                        .collect();
                    let h2: Vec<f32> = h.iter().map(|v| v * v).collect();
                    let mut g_s2 = vec![0.0f32; nw];
                    rows_t_times(&h2, &gv, (rows, inputs, outputs), 0.0, &mut g_s2);
                    for ((gs, g2), s) in self.g_scale[off..off + nw]
                        .iter_mut()
                        .zip(&g_s2)
                        .zip(&sigma[..nw])
                    {
                        *gs += 2.0 * s * g2;
                    }
                    let mut sums = vec![0.0f32; outputs];
                    add_row_sums(&gv, outputs, &mut sums);
                    for ((gs, v), s) in self.g_scale[off + nw..off + nw + outputs]
                        .iter_mut()
                        .zip(&sums)
                        .zip(&sigma[nw..])
                    {
                        *gs += 2.0 * s * v;
                    }
                    if !below.is_empty() {
                        let s2: Vec<f32> = sigma[..nw].iter().map(|s| s * s).collect();
                        times_weights_t(&gv, &s2, (rows, inputs, outputs), 0.0, &mut below);
                        for (b, h) in below.iter_mut().zip(h) {
                            *b *= 2.0 * h;
                        }
                    }
                }
            }
            // the mean path's ∂μ_W += hᵀ gh, ∂μ_b += Σ_rows gh, and its gh μ_Wᵀ added to the
            // perturbation's gradient in the rows
            let (mu, g_mu) = (&self.loc[off..], &mut self.g_loc[off..off + nw + outputs]);
            let shape = (rows, inputs, outputs);
            if below.is_empty() {
                linear_backward(h, mu, shape, gh, g_mu, None);
                continue;
            }
            linear_backward(h, mu, shape, gh, g_mu, Some((&mut below, true)));
            *gh = below;
        }
        if let Some(gx) = gx {
            for (a, &b) in gx.iter_mut().zip(gh.iter()) {
                *a += b;
            }
        }
    }
}

/// out = h ⊙ signs.
fn signed(h: &[f32], signs: &[f32], out: &mut Vec<f32>) {
    out.clear();
    out.extend(h.iter().zip(signs).map(|(h, r)| h * r));
}

/// ±1 with probability ½ each into both buffers, from a xoshiro stream of `seed` of
/// their own (the normals take the streams `stream`·2²⁰ onwards, one per 65,536).
fn fill_signs(a: &mut [f32], b: &mut [f32], seed: u64, stream: u64) {
    use rand::{RngCore as _, SeedableRng as _};
    // the last stream of the block the normals take theirs from (they use its first few)
    let own = (stream << 20) | 0xF_FFFF;
    let mut rng =
        rand::rngs::SmallRng::seed_from_u64(seed ^ own.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let (mut bits, mut left) = (0u64, 0);
    for v in a.iter_mut().chain(b.iter_mut()) {
        if left == 0 {
            (bits, left) = (rng.next_u64(), 64);
        }
        *v = if bits & 1 == 1 { 1.0 } else { -1.0 };
        (bits, left) = (bits >> 1, left - 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::program::Func;

    const LAYERS: &[Layer] = &[
        Layer::Linear {
            inputs: 3,
            outputs: 4,
        },
        Layer::Activation(Func::Tanh),
        Layer::Linear {
            inputs: 4,
            outputs: 2,
        },
    ];

    fn values(n: usize, phase: f32, scale: f32) -> Vec<f32> {
        (0..n)
            .map(|i| scale * ((i as f32 + phase) * 1.7).sin())
            .collect()
    }

    /// ⟨c, output⟩ summed over two particles, with each pass's noise fixed by the seed.
    fn objective(kind: Rewrite, loc: &[f32], scale: &[f32], x: &[f32], rows: usize) -> f64 {
        let mut net = RewrittenNet::new(kind, loc, scale, 7);
        let c = values(rows * 2, 0.3, 1.0);
        let mut total = 0.0;
        for s in 0..2 {
            let mut acts: Vec<Vec<f32>> = [4, 4, 2].iter().map(|w| vec![0.0; rows * w]).collect();
            net.forward(LAYERS, s, x, rows, &mut acts, &mut (Vec::new(), Vec::new()));
            total += acts[2]
                .iter()
                .zip(&c)
                .map(|(a, c)| f64::from(a * c))
                .sum::<f64>();
        }
        total
    }

    /// The gradients in μ, σ and the rows against central differences of the same pass
    /// (the noise is a function of the seed, particle and layer only).
    #[test]
    fn rewritten_gradients_match_finite_differences() {
        let rows = 5;
        let n = 3 * 4 + 4 + 4 * 2 + 2;
        let (loc, scale, x) = (
            values(n, 0.0, 0.6),
            values(n, 1.0, 0.3)
                .iter()
                .map(|v| v.abs() + 0.1)
                .collect::<Vec<_>>(),
            values(rows * 3, 2.0, 1.0),
        );
        for kind in [Rewrite::Flipout, Rewrite::Lrt] {
            let mut net = RewrittenNet::new(kind, &loc, &scale, 7);
            let c = values(rows * 2, 0.3, 1.0);
            let mut gx = vec![0.0f32; rows * 3];
            for s in 0..2 {
                let mut acts: Vec<Vec<f32>> =
                    [4, 4, 2].iter().map(|w| vec![0.0; rows * w]).collect();
                let mut scratch = (Vec::new(), Vec::new());
                net.forward(LAYERS, s, &x, rows, &mut acts, &mut scratch);
                net.backward(LAYERS, s, &x, rows, &acts, &c, Some(&mut gx), &mut scratch);
            }
            let h = 1e-3f32;
            let check = |what: &str, analytic: &[f32], at: &dyn Fn(usize, f32) -> f64| {
                for (i, &a) in analytic.iter().enumerate() {
                    let fd = (at(i, h) - at(i, -h)) / (2.0 * f64::from(h));
                    assert!(
                        (f64::from(a) - fd).abs() < 2e-2 * (1.0 + fd.abs()),
                        "{kind:?} ∂/∂{what}[{i}]: {a} vs {fd}"
                    );
                }
            };
            check("μ", &net.g_loc, &|i, d| {
                let mut l = loc.clone();
                l[i] += d;
                objective(kind, &l, &scale, &x, rows)
            });
            check("σ", &net.g_scale, &|i, d| {
                let mut s = scale.clone();
                s[i] += d;
                objective(kind, &loc, &s, &x, rows)
            });
            // the rows' gradient, summed over both particles (x is shared)
            check("x", &gx, &|i, d| {
                let mut xs = x.clone();
                xs[i] += d;
                objective(kind, &loc, &scale, &xs, rows)
            });
        }
    }
}
