//! An amortized guide's local site on the host (`z ~ Amortized(Encoder(x))` with a Normal
//! q(z | x)): the encoder net over the batch's rows gives each row's locations and ρ; the
//! draw is z = μ + σ ε per particle; log q under each estimator and the gradient in μ and
//! σ in closed form per row; then the encoder's backward pass carries them to its
//! weights. What `stdlib/src/guides/rows.rs` computes on the dfdx graph (the same terms,
//! the same draws), without a graph.
//!
//! Minibatches: the site's prior is scaled by total rows / batch rows like the likelihood
//! (the model's term has rows), and so is its log q here, as the graph's ELBO scales a
//! local log q.

use super::net;
use crate::estimator::Estimator;
use crate::program::{Encoder, Layer};
use crate::scale::softplus_and_slope;

const HALF_LN_2PI: f32 = 0.918_938_5;

/// One encoder of the guide, with its buffers (sized for the last batch).
pub(crate) struct EncoderEntry {
    /// The encoder's layers.
    layers: &'static [Layer],
    /// Its weights: a parameter's index in the store.
    weights: usize,
    /// The model input whose rows it reads.
    pub(crate) input: usize,
    /// The site's `Sample` node.
    pub(crate) node: usize,
    /// Values of the site per row.
    pub(crate) per_row: usize,
    prior: Option<(f32, f32)>,
    floor: f32,
    /// Each layer's output over the batch's rows (the last: μ then ρ per row).
    acts: Vec<Vec<f32>>,
    /// σ and dσ/dρ per row and value.
    sigma: Vec<f32>,
    slope: Vec<f32>,
    /// The gradient of −ELBO in the encoder's outputs (μ then ρ per row).
    g_out: Vec<f32>,
    scratch: (Vec<f32>, Vec<f32>),
    /// The batch's rows of the last draw.
    rows: usize,
}

impl EncoderEntry {
    /// The entry of `encoder`, whose site's `Sample` node is `node` with `per_row` values
    /// per row and whose weights are parameter `weights` (of `size` values); why not, where
    /// the sizes disagree with the net.
    pub(crate) fn new(
        encoder: &Encoder,
        layers: &'static [Layer],
        (node, per_row): (usize, usize),
        (weights, size): (usize, usize),
    ) -> Result<Self, String> {
        let expected: usize = layers.iter().map(layer_params).sum();
        if size != expected {
            return Err(format!(
                "the encoder of latent site {} has {size} weights, its net {expected}",
                encoder.site
            ));
        }
        let outputs = layers.iter().rev().find_map(|l| match l {
            Layer::Linear { outputs, .. } => Some(*outputs),
            Layer::Activation(_) => None,
        });
        if outputs != Some(2 * per_row) {
            return Err(format!(
                "the encoder of latent site {} gives {outputs:?} values per row, not 2 × {per_row}",
                encoder.site
            ));
        }
        Ok(EncoderEntry {
            layers,
            weights,
            input: encoder.input,
            node,
            per_row,
            prior: encoder.normal_prior,
            floor: encoder.floor,
            acts: Vec::new(),
            sigma: Vec::new(),
            slope: Vec::new(),
            g_out: Vec::new(),
            scratch: (Vec::new(), Vec::new()),
            rows: 0,
        })
    }

    /// The encoder over `rows` rows `x` (rows × features) and the draws z = μ + σ ε of
    /// every particle (`eps` and `z`: particles × rows × per_row).
    pub(crate) fn draw(
        &mut self,
        params: &[Vec<f32>],
        (x, rows): (&[f32], usize),
        eps: &[f32],
        z: &mut [f32],
    ) {
        let k = self.per_row;
        self.rows = rows;
        let features = x.len().checked_div(rows).unwrap_or(0);
        let widths = net::widths(self.layers, features);
        self.acts.resize(widths.len(), Vec::new());
        for (a, w) in self.acts.iter_mut().zip(&widths) {
            a.resize(rows * w, 0.0);
        }
        net::forward(self.layers, x, &params[self.weights], rows, &mut self.acts);
        let out = self.acts.last().expect("an encoder has layers");
        self.sigma.resize(rows * k, 0.0);
        self.slope.resize(rows * k, 0.0);
        for ((row, sigma), slope) in out
            .chunks_exact(2 * k)
            .zip(self.sigma.chunks_exact_mut(k))
            .zip(self.slope.chunks_exact_mut(k))
        {
            for ((&rho, s), sl) in row[k..].iter().zip(sigma).zip(slope) {
                let (sp, d) = softplus_and_slope(rho);
                *s = sp + self.floor;
                *sl = d;
            }
        }
        let n = rows * k;
        for (zs, es) in z.chunks_exact_mut(n).zip(eps.chunks_exact(n)) {
            for (((z, e), row), sigma) in zs
                .chunks_exact_mut(k)
                .zip(es.chunks_exact(k))
                .zip(out.chunks_exact(2 * k))
                .zip(self.sigma.chunks_exact(k))
            {
                for j in 0..k {
                    z[j] = row[j] + sigma[j] * e[j];
                }
            }
        }
    }

    /// Adds each particle's log q (summed over the rows, times `scale`) to `log_q`, and
    /// writes the gradient of −(mean ELBO) in the encoder's weights into `grads`, given
    /// `gz`: ∂ log p / ∂z per particle (the model's terms already weighted). At the
    /// parameters and rows of the last [`EncoderEntry::draw`]; `x` the same rows.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn log_q_and_gradient(
        &mut self,
        params: &[Vec<f32>],
        x: &[f32],
        (eps, z, gz): (&[f32], &[f32], &[f32]),
        estimator: Estimator,
        scale: f32,
        log_q: &mut [f64],
        grads: Option<&mut [Vec<f32>]>,
    ) {
        let (k, rows) = (self.per_row, self.rows);
        let n = rows * k;
        let particles = eps.len().checked_div(n).unwrap_or(0);
        let out = self.acts.last().expect("drawn before");
        let kl_prior = match estimator {
            Estimator::AnalyticKl => self.prior,
            _ => None,
        };
        // Per particle: log q, and ∂ELBO/∂z through the draw (t) summed into μ's and σ's
        // gradients.
        self.g_out.clear();
        self.g_out.resize(rows * 2 * k, 0.0);
        let inv_s = 1.0 / particles.max(1) as f32;
        for (s, lq_s) in log_q.iter_mut().enumerate().take(particles) {
            let at = s * n..(s + 1) * n;
            let (e, zs, g) = (&eps[at.clone()], &z[at.clone()], &gz[at]);
            let mut lq = 0.0f64;
            for r in 0..rows {
                let (mu, sigma) = (
                    &out[r * 2 * k..r * 2 * k + k],
                    &self.sigma[r * k..(r + 1) * k],
                );
                let go = &mut self.g_out[r * 2 * k..(r + 1) * 2 * k];
                let mut row = 0.0f32;
                for j in 0..k {
                    let i = r * k + j;
                    let (e, sg) = (e[i], sigma[j]);
                    let t = match (estimator, kl_prior) {
                        (_, Some((m, sp))) => {
                            let u = (zs[i] - m) / sp;
                            row += -0.5 * u * u - HALF_LN_2PI - sp.ln()
                                + (sp / sg).ln()
                                + (sg * sg + (mu[j] - m) * (mu[j] - m)) / (2.0 * sp * sp)
                                - 0.5;
                            g[i] + scale * u / sp
                        }
                        (Estimator::PathDerivative, None) => {
                            row += -0.5 * e * e - HALF_LN_2PI - sg.ln();
                            g[i] + scale * e / sg
                        }
                        (Estimator::Standard, None) => {
                            row += -0.5 * e * e - HALF_LN_2PI - sg.ln();
                            g[i]
                        }
                        (_, None) => {
                            row += -0.5 - HALF_LN_2PI - sg.ln();
                            g[i]
                        }
                    };
                    // ascent directions, averaged over the particles below
                    go[j] += t;
                    go[k + j] += t * e;
                }
                lq += f64::from(row);
            }
            *lq_s += lq * f64::from(scale);
        }
        let Some(grads) = grads else {
            return;
        };
        // The direct terms of −log q in μ and σ, and the loss's sign: g_μ = −dμ,
        // g_ρ = −dσ · dσ/dρ.
        for r in 0..rows {
            let (mu, sigma, slope) = (
                &out[r * 2 * k..r * 2 * k + k],
                &self.sigma[r * k..(r + 1) * k],
                &self.slope[r * k..(r + 1) * k],
            );
            let go = &mut self.g_out[r * 2 * k..(r + 1) * 2 * k];
            for j in 0..k {
                let (mut d_mu, mut d_sigma) = (go[j] * inv_s, go[k + j] * inv_s);
                match (estimator, kl_prior) {
                    // −KL: −(μ − m)/s² in μ, 1/σ − σ/s² in σ
                    (_, Some((m, sp))) => {
                        d_mu -= scale * (mu[j] - m) / (sp * sp);
                        d_sigma += scale * (1.0 / sigma[j] - sigma[j] / (sp * sp));
                    }
                    (Estimator::PathDerivative, None) => {}
                    // −log q's +log σ
                    (_, None) => d_sigma += scale / sigma[j],
                }
                go[j] = -d_mu;
                go[k + j] = -d_sigma * slope[j];
            }
        }
        let gw = &mut grads[self.weights];
        gw.fill(0.0);
        net::backward(
            self.layers,
            x,
            &params[self.weights],
            rows,
            &self.acts,
            &self.g_out,
            gw,
            None,
            &mut self.scratch,
        );
    }
}

/// The weights of a layer (W then b for a Linear layer).
fn layer_params(l: &Layer) -> usize {
    match *l {
        Layer::Linear { inputs, outputs } => inputs * outputs + outputs,
        Layer::Activation(_) => 0,
    }
}
