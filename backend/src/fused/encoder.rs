//! An amortized guide's local site on the host (`z ~ Amortized(Encoder(x))`): the encoder
//! net over the batch's rows gives each row's q(z | x); the draw per particle; log q under
//! each estimator and its gradient in the encoder's outputs in closed form per value; then
//! the encoder's backward pass carries them to its weights. What
//! `stdlib/src/guides/amortized.rs` and `rows.rs` compute on the dfdx graph (the same
//! terms, from the same draws), without a graph.
//!
//! - Gaussian: z = μ + σ ε with σ = softplus(ρ) + floor; under `AnalyticKl` with a Normal
//!   prior N(m, s) the row's log q is log p(z) + KL, which cancels the model's prior term
//!   and leaves −KL in closed form.
//! - Relaxed Bernoulli: the logit u = (l + L)/τ, L ~ Logistic(0, 1), is drawn and the
//!   site's value is σ(u); the site's prior and log q are both densities of u,
//!   log τ + l − τu − 2 softplus(l − τu), exact where σ(u) rounds to 0 or 1. The encoder
//!   scores the prior too (the site's density is `Density::Encoded`).
//! - Concrete: log y = log softmax((l + g)/τ) per event, g ~ Gumbel(0, 1); the site's value
//!   is y; prior and log q are densities of y's additive-log-ratio coordinates, read from
//!   log y (exact near a vertex), scored by the encoder as for the relaxed Bernoulli.
//!
//! Minibatches: the site's prior is scaled by total rows / batch rows like the likelihood,
//! and so is its log q, as the graph's ELBO scales a local log q.

use super::{math, net};
use crate::estimator::Estimator;
use crate::math::HALF_LN_2PI;
use crate::program::{Encoder, EncoderKind, Layer, PriorArg};
use crate::scale::softplus_and_slope;

/// The noise an encoder's draw takes, per particle, row and value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Noise {
    /// Standard normals.
    Normal,
    /// Uniforms on (0, 1).
    Uniform,
}

/// The per-particle sums an encoder adds to: log q, and (for a site it scores) the log
/// joint and the site's own term.
pub(crate) struct Terms<'a> {
    pub(crate) log_q: &'a mut [f64],
    pub(crate) log_p: &'a mut [f64],
    pub(crate) site: &'a mut [f64],
}

impl Terms<'_> {
    /// Particle `s`'s log q and the site's log p (each summed over its values), scaled
    /// like the site's terms.
    fn add(&mut self, s: usize, (log_q, log_p): (f64, f64), scale: f32) {
        let scale = f64::from(scale);
        self.log_q[s] += log_q * scale;
        self.log_p[s] += log_p * scale;
        self.site[s] += log_p * scale;
    }
}

/// A relaxed encoder's temperatures: q's, and its site's prior's arguments.
#[derive(Clone, Copy)]
struct Relaxation {
    /// q's temperature, or the step's when `None`.
    temperature: Option<f32>,
    /// The prior's temperature and logits.
    prior: (PriorArg, PriorArg),
}

impl Relaxation {
    /// (q's τ, the prior's τₚ and logits lₚ) at the step's `temperature`.
    fn at(self, temperature: f32) -> (f32, f32, f32) {
        let arg = |a: PriorArg| match a {
            PriorArg::Const(v) => v,
            PriorArg::Temperature => temperature,
        };
        let tau = self.temperature.unwrap_or(temperature);
        (tau, arg(self.prior.0), arg(self.prior.1))
    }
}

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
    kind: Kind,
    /// Each layer's output over the batch's rows (the last: the q's parameters per row).
    acts: Vec<Vec<f32>>,
    /// The gradient of −ELBO in the encoder's outputs.
    g_out: Vec<f32>,
    scratch: (Vec<f32>, Vec<f32>),
    /// The batch's rows of the last draw.
    rows: usize,
    /// The site's index in the program.
    pub(crate) site: usize,
}

/// What q(z | x) is, with its buffers.
enum Kind {
    Gaussian {
        prior: Option<(f32, f32)>,
        floor: f32,
        /// σ and dσ/dρ per row and value.
        sigma: Vec<f32>,
        slope: Vec<f32>,
    },
    Relaxed {
        relaxation: Relaxation,
        /// The draws' logits u, particle-major.
        u: Vec<f32>,
    },
    Concrete {
        relaxation: Relaxation,
        classes: usize,
        /// The draws' log y, particle-major.
        log_y: Vec<f32>,
    },
}

impl EncoderEntry {
    /// The entry of `encoder`, whose site (the program's `site`) has its `Sample` node
    /// `node` with `per_row` values per row and whose weights are parameter `weights` (of `size` values); why not, where
    /// the sizes disagree with the net.
    pub(crate) fn new(
        encoder: &Encoder,
        layers: &'static [Layer],
        (site, node, per_row): (usize, usize, usize),
        (weights, size): (usize, usize),
    ) -> Result<Self, String> {
        let expected: usize = layers.iter().map(layer_params).sum();
        if size != expected {
            return Err(format!(
                "the encoder of latent site {} has {size} weights, its net {expected}",
                encoder.site
            ));
        }
        let kind = match encoder.kind {
            EncoderKind::Gaussian {
                normal_prior,
                floor,
            } => Kind::Gaussian {
                prior: normal_prior,
                floor,
                sigma: Vec::new(),
                slope: Vec::new(),
            },
            EncoderKind::RelaxedBernoulli { temperature, prior } => Kind::Relaxed {
                relaxation: Relaxation { temperature, prior },
                u: Vec::new(),
            },
            EncoderKind::Concrete {
                temperature,
                classes,
                prior,
            } => {
                if classes < 2 || per_row % classes != 0 {
                    return Err(format!(
                        "the concrete latent site {} has {per_row} values per row, not events of {classes}",
                        encoder.site
                    ));
                }
                Kind::Concrete {
                    relaxation: Relaxation { temperature, prior },
                    classes,
                    log_y: Vec::new(),
                }
            }
        };
        let per_value = match kind {
            Kind::Gaussian { .. } => 2,
            Kind::Relaxed { .. } | Kind::Concrete { .. } => 1,
        };
        let outputs = layers.iter().rev().find_map(|l| match l {
            Layer::Linear { outputs, .. } => Some(*outputs),
            Layer::Activation(_) => None,
        });
        if outputs != Some(per_value * per_row) {
            return Err(format!(
                "the encoder of latent site {} gives {outputs:?} values per row, not {per_value} × {per_row}",
                encoder.site
            ));
        }
        Ok(EncoderEntry {
            layers,
            weights,
            input: encoder.input,
            node,
            per_row,
            kind,
            acts: Vec::new(),
            g_out: Vec::new(),
            scratch: (Vec::new(), Vec::new()),
            rows: 0,
            site,
        })
    }

    /// The noise its draws take.
    pub(crate) fn noise(&self) -> Noise {
        match self.kind {
            Kind::Gaussian { .. } => Noise::Normal,
            Kind::Relaxed { .. } | Kind::Concrete { .. } => Noise::Uniform,
        }
    }

    /// The encoder over `rows` rows `x` (rows × features) and the site's values of every
    /// particle into `z` (`noise` and `z`: particles × rows × per_row), at the step's
    /// `temperature`.
    pub(crate) fn draw(
        &mut self,
        params: &[Vec<f32>],
        (x, rows): (&[f32], usize),
        (noise, temperature): (&[f32], f32),
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
        let n = rows * k;
        match &mut self.kind {
            Kind::Gaussian {
                floor,
                sigma,
                slope,
                ..
            } => {
                sigma.resize(n, 0.0);
                slope.resize(n, 0.0);
                for ((row, sigma), slope) in out
                    .chunks_exact(2 * k)
                    .zip(sigma.chunks_exact_mut(k))
                    .zip(slope.chunks_exact_mut(k))
                {
                    for ((&rho, s), sl) in row[k..].iter().zip(sigma).zip(slope) {
                        let (sp, d) = softplus_and_slope(rho);
                        *s = sp + *floor;
                        *sl = d;
                    }
                }
                for (zs, es) in z.chunks_exact_mut(n).zip(noise.chunks_exact(n)) {
                    for (((z, e), row), sigma) in zs
                        .chunks_exact_mut(k)
                        .zip(es.chunks_exact(k))
                        .zip(out.chunks_exact(2 * k))
                        .zip(sigma.chunks_exact(k))
                    {
                        for j in 0..k {
                            z[j] = row[j] + sigma[j] * e[j];
                        }
                    }
                }
            }
            Kind::Relaxed { relaxation, u } => {
                let (tau, ..) = relaxation.at(temperature);
                u.resize(noise.len(), 0.0);
                for ((us, ys), ws) in u
                    .chunks_exact_mut(n)
                    .zip(z.chunks_exact_mut(n))
                    .zip(noise.chunks_exact(n))
                {
                    for (((u, y), &w), &l) in us.iter_mut().zip(ys).zip(ws).zip(out.iter()) {
                        // L = log w − log(1 − w) ~ Logistic(0, 1)
                        let w = w.clamp(1e-7, 1.0 - 1e-7);
                        let logistic = w.ln() - (1.0 - w).ln();
                        *u = (l + logistic) / tau;
                        *y = math::sigmoid(*u);
                    }
                }
            }
            Kind::Concrete {
                relaxation,
                classes,
                log_y,
            } => {
                let ((tau, ..), k) = (relaxation.at(temperature), *classes);
                log_y.resize(noise.len(), 0.0);
                for ((ls, ys), ws) in log_y
                    .chunks_exact_mut(n)
                    .zip(z.chunks_exact_mut(n))
                    .zip(noise.chunks_exact(n))
                {
                    for (((ly, y), w), l) in ls
                        .chunks_exact_mut(k)
                        .zip(ys.chunks_exact_mut(k))
                        .zip(ws.chunks_exact(k))
                        .zip(out.chunks_exact(k))
                    {
                        // a = (l + g)/τ with g = −log(−log w) ~ Gumbel(0, 1); log y = log softmax a
                        for c in 0..k {
                            let w = w[c].clamp(1e-20, 1.0 - 1e-7);
                            ly[c] = (l[c] - (-w.ln()).ln()) / tau;
                        }
                        let lse = log_sum_exp(ly);
                        for (ly, y) in ly.iter_mut().zip(y.iter_mut()) {
                            *ly -= lse;
                            *y = ly.exp();
                        }
                    }
                }
            }
        }
    }

    /// Adds each particle's log q (summed over the rows, times `scale`) to `terms` (and the
    /// site's prior, for a site the encoder scores), and writes the gradient of −(mean
    /// ELBO) in the encoder's weights into `grads`, given `gz`: ∂ log p / ∂(the site's
    /// value) per particle (the model's terms already weighted). At the parameters, rows
    /// and temperature of the last [`EncoderEntry::draw`]; `x` the same rows.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn terms(
        &mut self,
        params: &[Vec<f32>],
        x: &[f32],
        (noise, z, gz): (&[f32], &[f32], &[f32]),
        estimator: Estimator,
        (scale, temperature): (f32, f32),
        terms: Terms<'_>,
        grads: Option<&mut [Vec<f32>]>,
    ) {
        let n = self.rows * self.per_row;
        let particles = noise.len().checked_div(n).unwrap_or(0);
        let g_out = match &self.kind {
            Kind::Gaussian { .. } => 2 * n,
            Kind::Relaxed { .. } | Kind::Concrete { .. } => n,
        };
        self.g_out.clear();
        self.g_out.resize(g_out, 0.0);
        match &self.kind {
            Kind::Gaussian { .. } => {
                self.gaussian_terms((noise, z, gz), estimator, scale, terms.log_q, particles)
            }
            Kind::Relaxed { .. } => {
                self.relaxed_terms((z, gz), estimator, (scale, temperature), terms, particles)
            }
            Kind::Concrete { .. } => {
                self.concrete_terms((z, gz), estimator, (scale, temperature), terms, particles)
            }
        }
        let Some(grads) = grads else {
            return;
        };
        let gw = &mut grads[self.weights];
        gw.fill(0.0);
        net::backward(
            self.layers,
            x,
            &params[self.weights],
            self.rows,
            &self.acts,
            &self.g_out,
            gw,
            None,
            &mut self.scratch,
        );
    }

    /// The Gaussian's log q, and the gradient of −ELBO in μ and ρ into `g_out`.
    fn gaussian_terms(
        &mut self,
        (eps, z, gz): (&[f32], &[f32], &[f32]),
        estimator: Estimator,
        scale: f32,
        log_q: &mut [f64],
        particles: usize,
    ) {
        let Kind::Gaussian {
            prior,
            sigma,
            slope,
            ..
        } = &self.kind
        else {
            unreachable!("a Gaussian encoder")
        };
        let (k, rows) = (self.per_row, self.rows);
        let n = rows * k;
        let out = self.acts.last().expect("drawn before");
        let kl_prior = match estimator {
            Estimator::AnalyticKl => *prior,
            _ => None,
        };
        // Per particle: log q, and ∂ELBO/∂z through the draw (t) summed into μ's and σ's
        // gradients.
        let inv_s = 1.0 / particles.max(1) as f32;
        for (s, lq_s) in log_q.iter_mut().enumerate().take(particles) {
            let at = s * n..(s + 1) * n;
            let (e, zs, g) = (&eps[at.clone()], &z[at.clone()], &gz[at]);
            let mut lq = 0.0f64;
            for r in 0..rows {
                let (mu, sigma) = (&out[r * 2 * k..r * 2 * k + k], &sigma[r * k..(r + 1) * k]);
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
        // The direct terms of −log q in μ and σ, and the loss's sign: g_μ = −dμ,
        // g_ρ = −dσ · dσ/dρ.
        for r in 0..rows {
            let (mu, sigma, slope) = (
                &out[r * 2 * k..r * 2 * k + k],
                &sigma[r * k..(r + 1) * k],
                &slope[r * k..(r + 1) * k],
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
    }

    /// The relaxed Bernoulli's prior and log q (both densities of the logit u), and the
    /// gradient of −ELBO in the encoder's logits into `g_out`. `y` = σ(u) is the site's
    /// value and `gy` the model's gradient in it.
    ///
    /// With t = l − τu, log q = log τ + t − 2 softplus(t); along the draw (du/dl = 1/τ) its
    /// total derivative in l is 0, so the standard estimator's log q adds no gradient and
    /// the path derivative's (l held in log q) adds 1 − 2σ(t).
    fn relaxed_terms(
        &mut self,
        (y, gy): (&[f32], &[f32]),
        estimator: Estimator,
        (scale, temperature): (f32, f32),
        mut terms: Terms<'_>,
        particles: usize,
    ) {
        let Kind::Relaxed { relaxation, u } = &self.kind else {
            unreachable!("a relaxed encoder")
        };
        let (tau, tau_p, l_p) = relaxation.at(temperature);
        let (ln_tau, ln_tau_p) = (tau.ln(), tau_p.ln());
        let path = estimator == Estimator::PathDerivative;
        let n = self.rows * self.per_row;
        let out = self.acts.last().expect("drawn before");
        let inv_s = 1.0 / particles.max(1) as f32;
        for s in 0..particles {
            let at = s * n..(s + 1) * n;
            let (us, ys, gs) = (&u[at.clone()], &y[at.clone()], &gy[at]);
            let (mut lq, mut lp) = (0.0f64, 0.0f64);
            for i in 0..n {
                let (u, l) = (us[i], out[i]);
                // the prior's term and its derivative in u
                let tp = l_p - tau_p * u;
                lp += f64::from(ln_tau_p + tp - 2.0 * math::softplus(tp));
                let d_prior = -tau_p + 2.0 * tau_p * math::sigmoid(tp);
                let t = l - tau * u;
                lq += f64::from(ln_tau + t - 2.0 * math::softplus(t));
                // ∂(log p)/∂u: through y = σ(u), and the prior's
                let du = gs[i] * ys[i] * (1.0 - ys[i]) + scale * d_prior;
                let dl = du / tau
                    + if path {
                        scale * (1.0 - 2.0 * math::sigmoid(t))
                    } else {
                        0.0
                    };
                self.g_out[i] -= dl * inv_s;
            }
            terms.add(s, (lq, lp), scale);
        }
    }
}

impl EncoderEntry {
    /// The concrete events' prior and log q (both densities of y's additive-log-ratio
    /// coordinates, read from log y), and the gradient of −ELBO in the encoder's logits into
    /// `g_out`. `y` is the site's value and `gy` the model's gradient in it.
    ///
    /// Per event of K values, with s = l − λ log y: log p = log (K−1)! + (K−1) log λ +
    /// Σ s − K logsumexp s, whose derivative in log y_c is −λ + Kλ softmax(s)_c. Along
    /// the draw log y = log softmax((l + g)/τ) log q's total derivative in l is 0 (the
    /// standard estimator's adds none); the path derivative's (l held in log q) is
    /// carried back through log softmax. Then d/da = g − y Σ g and d/dl = (d/da)/τ.
    fn concrete_terms(
        &mut self,
        (y, gy): (&[f32], &[f32]),
        estimator: Estimator,
        (scale, temperature): (f32, f32),
        mut terms: Terms<'_>,
        particles: usize,
    ) {
        let Kind::Concrete {
            relaxation,
            classes,
            log_y,
        } = &self.kind
        else {
            unreachable!("a concrete encoder")
        };
        let k = *classes;
        let (tau, tau_p, l_p) = relaxation.at(temperature);
        let log_fact: f32 = (1..k).map(|i| (i as f32).ln()).sum();
        let path = estimator == Estimator::PathDerivative;
        let n = self.rows * self.per_row;
        let out = self.acts.last().expect("drawn before");
        let inv_s = 1.0 / particles.max(1) as f32;
        let mut g_log_y = vec![0.0f32; k];
        let (mut sp, mut sq) = (vec![0.0f32; k], vec![0.0f32; k]);
        for s in 0..particles {
            let at = s * n..(s + 1) * n;
            let (ls, ys, gs) = (&log_y[at.clone()], &y[at.clone()], &gy[at]);
            let (mut lq, mut lp) = (0.0f64, 0.0f64);
            for (e, ((ly, ye), ge)) in ls
                .chunks_exact(k)
                .zip(ys.chunks_exact(k))
                .zip(gs.chunks_exact(k))
                .enumerate()
            {
                let l = &out[e * k..(e + 1) * k];
                for c in 0..k {
                    sp[c] = l_p - tau_p * ly[c];
                    sq[c] = l[c] - tau * ly[c];
                }
                let (lse_p, lse_q) = (log_sum_exp(&sp), log_sum_exp(&sq));
                lp += f64::from(
                    sp.iter().sum::<f32>() + (k as f32 - 1.0) * tau_p.ln() + log_fact
                        - k as f32 * lse_p,
                );
                lq += f64::from(
                    sq.iter().sum::<f32>() + (k as f32 - 1.0) * tau.ln() + log_fact
                        - k as f32 * lse_q,
                );
                // ∂(log p)/∂ log y: through y = exp(log y), and the prior's; the path
                // derivative's −∂ log q/∂ log y with l held
                for c in 0..k {
                    let d_prior = -tau_p + k as f32 * tau_p * (sp[c] - lse_p).exp();
                    g_log_y[c] = ge[c] * ye[c] + scale * d_prior;
                    if path {
                        g_log_y[c] += scale * (tau - k as f32 * tau * (sq[c] - lse_q).exp());
                    }
                }
                // through log y = a − logsumexp a: d/da_c = g_c − y_c Σ g
                let total: f32 = g_log_y.iter().sum();
                let go = &mut self.g_out[e * k..(e + 1) * k];
                for c in 0..k {
                    go[c] -= (g_log_y[c] - ye[c] * total) / tau * inv_s;
                }
            }
            terms.add(s, (lq, lp), scale);
        }
    }
}

/// log Σ exp over a few values.
fn log_sum_exp(x: &[f32]) -> f32 {
    let max = x.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    if !max.is_finite() {
        return max;
    }
    max + x.iter().map(|&v| (v - max).exp()).sum::<f32>().ln()
}

/// The weights of a layer (W then b for a Linear layer).
fn layer_params(l: &Layer) -> usize {
    match *l {
        Layer::Linear { inputs, outputs } => inputs * outputs + outputs,
        Layer::Activation(_) => 0,
    }
}
