//! The guide's Gaussian entries on the host: `MeanField` (z = μ + σ ⊙ ε) and `FullRank`
//! (z = μ + L ε), their draws, log q under each estimator, and the gradients of the mean
//! ELBO in their parameters given the model's gradient in z.

use super::math;
use crate::estimator::Estimator;
use crate::math::HALF_LN_2PI;
use crate::scale::{capped_scale_and_slope, softplus_and_slope};

/// One entry: store indices of its parameters, its dimension, and the scale its last
/// [`Gaussian::draw`] used.
pub(crate) struct Gaussian {
    pub loc: usize,
    pub rho: usize,
    /// `FullRank`'s d × d matrix whose strictly lower part is L's.
    pub lower: Option<usize>,
    pub dim: usize,
    pub floor: f32,
    /// L (d × d, row-major) of a full-rank entry, or σ (d) of a mean-field one.
    scale: Vec<f32>,
    /// dσ/dρ = sigmoid(ρ) per coordinate.
    slope: Vec<f32>,
    /// Per coordinate, the Normal prior's (loc, scale), for the analytic KL.
    kl_prior: Option<Vec<(f32, f32)>>,
    /// Σ log s over the analytic KL's prior scales (a constant of the entry).
    kl_log_scales: f64,
    /// A full-rank entry's constant row scales (L = diag(unit) L_u), when it has them.
    unit: Option<Vec<f32>>,
    /// A mean-field entry's diagonal frame (shift, scale), folded into the Gaussian:
    /// z = shift + s ⊙ (μ + σ ⊙ ε) is the mean-field Gaussian of location shift + s ⊙ μ
    /// and scale s ⊙ σ, so draws, log q and the analytic KL run in z as they would with no
    /// frame, and only μ's gradient takes the factor s.
    diag_frame: Option<(Vec<f32>, Vec<f32>)>,
    /// shift + s ⊙ μ, with a diagonal frame.
    mu_eff: Vec<f32>,
    /// A full-rank entry's path-derivative terms (buffers kept between steps).
    path: crate::linalg::PathDerivativeTerms,
}

impl Gaussian {
    pub(crate) fn new(
        loc: usize,
        rho: usize,
        lower: Option<usize>,
        dim: usize,
        floor: f32,
    ) -> Self {
        Gaussian {
            loc,
            rho,
            lower,
            dim,
            floor,
            scale: Vec::new(),
            slope: Vec::new(),
            kl_prior: None,
            kl_log_scales: 0.0,
            unit: None,
            diag_frame: None,
            mu_eff: Vec::new(),
            path: Default::default(),
        }
    }

    /// A mean-field entry's diagonal frame (shift, scale).
    pub(crate) fn with_diag_frame(mut self, frame: Option<(Vec<f32>, Vec<f32>)>) -> Self {
        self.diag_frame = frame;
        self
    }

    /// The location of z: μ, or shift + s ⊙ μ in a diagonal frame.
    fn mu<'a>(&'a self, params: &'a [Vec<f32>]) -> &'a [f32] {
        match self.diag_frame {
            Some(_) => &self.mu_eff,
            None => &params[self.loc],
        }
    }

    /// Does `AnalyticKl` give this entry's KL in closed form (a Normal prior on every
    /// coordinate)?
    pub(crate) fn has_closed_form_kl(&self) -> bool {
        self.kl_prior.is_some()
    }

    /// The mean and sd of a mean-field entry's z at the parameters of the last
    /// [`Gaussian::draw`]: what a rewritten net call runs on.
    pub(crate) fn loc_and_scale<'a>(&'a self, params: &'a [Vec<f32>]) -> (&'a [f32], &'a [f32]) {
        (self.mu(params), &self.scale)
    }

    /// Adds to `grads` (the gradient of −(mean ELBO), as [`Gaussian::log_q_and_gradient`]
    /// left it) a rewritten net call's gradients of the summed log joint in z's mean and
    /// sd over `particles` particles: to μ through the frame, to ρ through σ's slope.
    pub(crate) fn add_rewrite_gradient(
        &self,
        grads: &mut [Vec<f32>],
        (g_loc, g_scale): (&[f32], &[f32]),
        particles: usize,
    ) {
        let inv_s = 1.0 / particles as f32;
        let mut g_mu: Vec<f32> = g_loc.iter().map(|g| -g * inv_s).collect();
        self.frame_mu_gradient(&mut g_mu);
        for (a, b) in grads[self.loc].iter_mut().zip(&g_mu) {
            *a += b;
        }
        for ((a, g), slope) in grads[self.rho].iter_mut().zip(g_scale).zip(&self.slope) {
            *a -= g * inv_s * slope;
        }
    }

    /// μ's gradient, from z's location to μ: times s in a diagonal frame.
    fn frame_mu_gradient(&self, g_mu: &mut [f32]) {
        if let Some((_, s)) = &self.diag_frame {
            for (g, &s) in g_mu.iter_mut().zip(s) {
                *g *= s;
            }
        }
    }

    /// A full-rank entry's row scales (see `FullRank` in the stdlib).
    pub(crate) fn with_unit(mut self, unit: Option<Vec<f32>>) -> Self {
        self.unit = unit;
        self
    }

    /// The entry's coordinates' Normal priors (loc, scale), for `Estimator::AnalyticKl`.
    pub(crate) fn with_kl_prior(mut self, prior: Option<Vec<(f32, f32)>>) -> Self {
        self.kl_log_scales = prior
            .as_ref()
            .map_or(0.0, |p| p.iter().map(|&(_, s)| f64::from(s).ln()).sum());
        self.kl_prior = prior;
        self
    }

    /// The scale at the current parameters, and its slope in ρ.
    fn update_scale(&mut self, params: &[Vec<f32>]) {
        let d = self.dim;
        let rho = &params[self.rho];
        self.slope.resize(d, 0.0);
        self.scale
            .resize(if self.lower.is_some() { d * d } else { d }, 0.0);
        if let Some(lower) = self.lower {
            for i in 0..d {
                let row = &mut self.scale[i * d..i * d + i];
                row.copy_from_slice(&params[lower][i * d..i * d + i]);
                if let Some(unit) = &self.unit {
                    row.iter_mut().for_each(|v| *v *= unit[i]);
                }
                self.scale[i * d + i + 1..(i + 1) * d].fill(0.0);
            }
        }
        let step = if self.lower.is_some() { d + 1 } else { 1 };
        if step == 1 {
            let floor = self.floor;
            super::par_chunks_pair(&mut self.scale, &mut self.slope, |r, sc, sl| {
                scales(&rho[r], floor, sc, sl)
            });
            if let Some((shift, s)) = &self.diag_frame {
                self.mu_eff.resize(d, 0.0);
                let mu = &params[self.loc];
                for i in 0..d {
                    self.scale[i] *= s[i];
                    self.slope[i] *= s[i];
                    self.mu_eff[i] = shift[i] + s[i] * mu[i];
                }
            }
        } else {
            // A full-rank diagonal is capped as the dfdx path caps it (`capped_scale_of`):
            // floor + c·softplus(ρ)/(c + softplus(ρ)).
            for (i, &r) in rho.iter().enumerate() {
                let (scale, slope) = capped_scale_and_slope(r, self.floor);
                let unit = self.unit.as_ref().map_or(1.0, |u| u[i]);
                self.scale[i * step] = scale * unit;
                self.slope[i] = slope * unit;
            }
        }
    }

    /// z = μ + σ ⊙ ε or μ + L ε for each particle's ε (rows of `eps`), into `z`.
    pub(crate) fn draw(&mut self, params: &[Vec<f32>], eps: &[f32], z: &mut [f32]) {
        self.update_scale(params);
        let (d, mu, scale) = (self.dim, self.mu(params), &self.scale);
        if self.lower.is_none() {
            for (e, z) in eps.chunks_exact(d).zip(z.chunks_exact_mut(d)) {
                super::par_chunks(z, |at, z| {
                    let n = z.len();
                    let (e, s, m) = (&e[at..at + n], &scale[at..at + n], &mu[at..at + n]);
                    for (((z, &e), &s), &m) in z.iter_mut().zip(e).zip(s).zip(m) {
                        *z = s * e + m;
                    }
                });
            }
            return;
        }
        for (e, z) in eps.chunks_exact(d).zip(z.chunks_exact_mut(d)) {
            for i in 0..d {
                z[i] = match self.lower {
                    None => scale[i] * e[i] + mu[i],
                    Some(_) => {
                        let row = &scale[i * d..i * d + i + 1];
                        row.iter().zip(e).map(|(l, e)| l * e).sum::<f32>() + mu[i]
                    }
                };
            }
        }
    }

    /// Adds log q of each particle's draw to `log_q`, and writes the gradient of −(mean
    /// ELBO) in μ, ρ (and L) into `grads`, given `gz`: ∂ log p / ∂z per particle. At the
    /// parameters of the last [`Gaussian::draw`].
    pub(crate) fn log_q_and_gradient(
        &mut self,
        params: &[Vec<f32>],
        (eps, z, gz): (&[f32], &[f32], &[f32]),
        estimator: Estimator,
        log_q: &mut [f64],
        grads: &mut [Vec<f32>],
    ) {
        if self.lower.is_none() {
            return self.mean_field(params, (eps, z, gz), estimator, log_q, grads);
        }
        let d = self.dim;
        let particles = eps.len() / d;
        let scale = &self.scale;
        let diag: Vec<f32> = (0..d).map(|i| scale[i * d + i]).collect();
        let log_det: f32 = diag.iter().map(|s| s.ln()).sum();
        // The path derivative's −L⁻ᵀ ε and log N(ε) − log det L, as the dfdx path forms them
        // (`None`: L too ill-conditioned; the step takes the standard estimator, the draw's
        // exact log q with the analytic entropy's gradient).
        let path = (estimator == Estimator::PathDerivative && self.path.compute(scale, d, eps))
            .then_some((&self.path.slope, &self.path.value));
        let estimator = match (estimator, &path) {
            (Estimator::PathDerivative, None) => Estimator::Standard,
            (e, _) => e,
        };
        // ∂(log p − log q)/∂z per particle: the model's, plus the path derivative's +L⁻ᵀ ε.
        let mut total = gz.to_vec();
        for s in 0..particles {
            let e = &eps[s * d..(s + 1) * d];
            let t = &mut total[s * d..(s + 1) * d];
            let mut lq = -log_det;
            match (&path, estimator) {
                (Some((slope, value)), _) => {
                    lq = value[s];
                    for (t, &v) in t.iter_mut().zip(&slope[s * d..(s + 1) * d]) {
                        *t -= v;
                    }
                }
                (None, Estimator::Standard) => {
                    lq += e.iter().map(|e| -0.5 * e * e - HALF_LN_2PI).sum::<f32>();
                }
                (None, _) => {
                    lq -= d as f32 * (0.5 + HALF_LN_2PI);
                }
            }
            log_q[s] += f64::from(lq);
        }
        // The gradients of the mean: μ takes Σ_s t_s; the scale Σ_s t_s ε_sᵀ (lower part);
        // −log q's +Σ log L_ii counts except under the path derivative.
        let inv_s = 1.0 / particles as f32;
        let entropy = estimator != Estimator::PathDerivative;
        let mut d_mu = vec![0.0f32; d];
        let mut d_scale = vec![0.0f32; if self.lower.is_some() { d * d } else { d }];
        for s in 0..particles {
            let (e, t) = (&eps[s * d..(s + 1) * d], &total[s * d..(s + 1) * d]);
            for i in 0..d {
                d_mu[i] += t[i];
                match self.lower {
                    None => d_scale[i] += t[i] * e[i],
                    Some(_) => {
                        for j in 0..=i {
                            d_scale[i * d + j] += t[i] * e[j];
                        }
                    }
                }
            }
        }
        // the loss is −ELBO
        for i in 0..d {
            grads[self.loc][i] = -d_mu[i] * inv_s;
            let at = if self.lower.is_some() { i * d + i } else { i };
            let ds = d_scale[at] * inv_s + if entropy { 1.0 / diag[i] } else { 0.0 };
            grads[self.rho][i] = -ds * self.slope[i];
        }
        if let Some(lower) = self.lower {
            let g = &mut grads[lower];
            g.fill(0.0);
            for i in 0..d {
                let unit = self.unit.as_ref().map_or(1.0, |u| u[i]);
                for j in 0..i {
                    g[i * d + j] = -d_scale[i * d + j] * inv_s * unit;
                }
            }
        }
    }
}

impl Gaussian {
    /// [`Gaussian::log_q_and_gradient`] of a mean-field entry: one pass per particle over
    /// the coordinates, the gradients summed straight into `grads`.
    fn mean_field(
        &self,
        params: &[Vec<f32>],
        (eps, z, gz): (&[f32], &[f32], &[f32]),
        estimator: Estimator,
        log_q: &mut [f64],
        grads: &mut [Vec<f32>],
    ) {
        if let (Estimator::AnalyticKl, Some(prior)) = (estimator, &self.kl_prior) {
            return self.mean_field_kl(params, prior, (eps, z, gz), log_q, grads);
        }
        let d = self.dim;
        let particles = eps.len() / d;
        let (mu, sigma) = (self.mu(params), &self.scale);
        let (g_mu, g_rho) = two_mut(grads, self.loc, self.rho);
        g_mu.fill(0.0);
        g_rho.fill(0.0);
        let log_det: f64 = super::par_ranges(d, |r| log_sum(&sigma[r]))
            .into_iter()
            .sum();
        let path = estimator == Estimator::PathDerivative;
        for (s, log_q) in log_q.iter_mut().enumerate().take(particles) {
            let at = s * d..(s + 1) * d;
            let (e, zs, g) = (&eps[at.clone()], &z[at.clone()], &gz[at]);
            // Σ −½ h² (the path derivative's e held), or Σ −½ ε² (standard)
            let sq: f64 = super::par_chunks_pair(g_mu, g_rho, |r, gm, gr| {
                let (e, zs, g) = (&e[r.clone()], &zs[r.clone()], &g[r.clone()]);
                mean_field_particle(path, e, zs, g, &mu[r.clone()], &sigma[r], gm, gr)
            })
            .into_iter()
            .sum();
            let lq = match estimator {
                Estimator::PathDerivative | Estimator::Standard => {
                    -0.5 * sq - f64::from(HALF_LN_2PI) * d as f64
                }
                Estimator::AnalyticEntropy | Estimator::AnalyticKl => {
                    -(d as f64) * (0.5 + f64::from(HALF_LN_2PI))
                }
            };
            *log_q += lq - log_det;
        }
        // −log q's +Σ log σ has a gradient except under the path derivative; the loss is
        // −ELBO.
        let inv_s = 1.0 / particles as f32;
        for (((gm, gr), &sg), &slope) in g_mu
            .iter_mut()
            .zip(g_rho.iter_mut())
            .zip(sigma)
            .zip(&self.slope)
        {
            *gm *= -inv_s;
            let entropy = if path { 0.0 } else { 1.0 / sg };
            *gr = -(*gr * inv_s + entropy) * slope;
        }
        self.frame_mu_gradient(g_mu);
    }
}

impl Gaussian {
    /// A mean-field entry under `AnalyticKl` whose coordinates all have Normal priors
    /// N(m, s): its log q term is log p(z) + KL(q‖p), which cancels the model's prior term
    /// and leaves −KL in closed form, KL = Σ log(s/σ) + (σ² + (μ − m)²)/(2s²) − ½. The
    /// model's gradient in z then loses the prior's part, −(z − m)/s², and μ and σ take
    /// −KL's exact gradient instead.
    fn mean_field_kl(
        &self,
        params: &[Vec<f32>],
        prior: &[(f32, f32)],
        (eps, z, gz): (&[f32], &[f32], &[f32]),
        log_q: &mut [f64],
        grads: &mut [Vec<f32>],
    ) {
        let d = self.dim;
        let particles = eps.len() / d;
        let (mu, sigma) = (self.mu(params), &self.scale);
        let (g_mu, g_rho) = two_mut(grads, self.loc, self.rho);
        g_mu.fill(0.0);
        g_rho.fill(0.0);
        // Σ log s and the KL, in blocks on threads (each block's sums in eight f32 lanes,
        // the blocks' in f64)
        let log_scales = self.kl_log_scales;
        let kl = log_scales
            + super::par_ranges(d, |r| {
                kl_block(&mu[r.clone()], &sigma[r.clone()], &prior[r])
            })
            .into_iter()
            .sum::<f64>();
        for (s, log_q) in log_q.iter_mut().enumerate().take(particles) {
            let at = s * d..(s + 1) * d;
            let (e, zs, g) = (&eps[at.clone()], &z[at.clone()], &gz[at]);
            let sq: f64 = super::par_chunks_pair(g_mu, g_rho, |r, gm, gr| {
                let (e, zs, g) = (&e[r.clone()], &zs[r.clone()], &g[r.clone()]);
                kl_particle(e, zs, g, &prior[r], gm, gr)
            })
            .into_iter()
            .sum();
            let log_p = -0.5 * sq - log_scales - f64::from(HALF_LN_2PI) * d as f64;
            *log_q += log_p + kl;
        }
        // the loss is −ELBO; −KL's gradient: −(μ − m)/s² in μ, 1/σ − σ/s² in σ
        let inv_s = 1.0 / particles as f32;
        let slope = &self.slope;
        super::par_chunks_pair(g_mu, g_rho, |r, gm, gr| {
            let (m, sg, sl) = (&mu[r.clone()], &sigma[r.clone()], &slope[r.clone()]);
            kl_gradient(inv_s, m, sg, sl, &prior[r], gm, gr)
        });
        self.frame_mu_gradient(g_mu);
    }
}

super::dispatch!(kl_block, kl_block_avx2, kl_block_body,
    (mu: &[f32], sigma: &[f32], prior: &[(f32, f32)]) -> f64);

/// Over a block of coordinates, the KL less its constant Σ log s:
/// Σ −log σ + (σ² + (μ − m)²)/(2s²) − ½, in eight running f32 sums (lanes of 8 so that
/// the loop vectorizes).
#[inline(always)]
fn kl_block_body(mu: &[f32], sigma: &[f32], prior: &[(f32, f32)]) -> f64 {
    let mut acc = [0.0f32; 8];
    let term = |i: usize| {
        let ((m, s), (m_q, sg)) = (prior[i], (mu[i], sigma[i]));
        let v = (sg * sg + (m_q - m) * (m_q - m)) / (2.0 * s * s);
        v - math::ln(sg) - 0.5
    };
    let whole = mu.len() / 8 * 8;
    for c in (0..whole).step_by(8) {
        for (l, a) in acc.iter_mut().enumerate() {
            *a += term(c + l);
        }
    }
    let tail: f64 = (whole..mu.len()).map(|i| f64::from(term(i))).sum();
    acc.iter().map(|&v| f64::from(v)).sum::<f64>() + tail
}

super::dispatch!(kl_particle, kl_particle_avx2, kl_particle_body,
    (e: &[f32], z: &[f32], g: &[f32], prior: &[(f32, f32)], g_mu: &mut [f32], g_rho: &mut [f32]) -> f64);

/// One particle under the closed-form KL over a block: adds the likelihood's gradient t
/// (the model's, the prior's −u/s taken back out) to `g_mu` and t ε to `g_rho`, and
/// returns Σ u², u = (z − m)/s (for the draw's log p, which log q cancels).
#[inline(always)]
fn kl_particle_body(
    e: &[f32],
    z: &[f32],
    g: &[f32],
    prior: &[(f32, f32)],
    g_mu: &mut [f32],
    g_rho: &mut [f32],
) -> f64 {
    let mut acc = [0.0f32; 8];
    for i in 0..e.len() {
        let (m, sd) = prior[i];
        let u = (z[i] - m) / sd;
        acc[i % 8] += u * u;
        let t = g[i] + u / sd;
        g_mu[i] += t;
        g_rho[i] += t * e[i];
    }
    acc.iter().map(|&v| f64::from(v)).sum()
}

super::dispatch!(kl_gradient, kl_gradient_avx2, kl_gradient_body,
    (inv_s: f32, mu: &[f32], sigma: &[f32], slope: &[f32], prior: &[(f32, f32)], g_mu: &mut [f32], g_rho: &mut [f32]) -> ());

/// −(mean ELBO)'s gradient over a block under the closed-form KL: the particles' mean
/// likelihood gradient (in `g_mu`, `g_rho`) plus −KL's −(μ − m)/s² and 1/σ − σ/s², ρ's
/// through σ's slope.
#[inline(always)]
fn kl_gradient_body(
    inv_s: f32,
    mu: &[f32],
    sigma: &[f32],
    slope: &[f32],
    prior: &[(f32, f32)],
    g_mu: &mut [f32],
    g_rho: &mut [f32],
) {
    for j in 0..mu.len() {
        let (m, sd) = prior[j];
        let inv_var = 1.0 / (sd * sd);
        let d_mu = g_mu[j] * inv_s - (mu[j] - m) * inv_var;
        let d_sigma = g_rho[j] * inv_s + 1.0 / sigma[j] - sigma[j] * inv_var;
        g_mu[j] = -d_mu;
        g_rho[j] = -d_sigma * slope[j];
    }
}

super::dispatch!(mean_field_particle, mean_field_particle_avx2, mean_field_particle_body,
    (path: bool, e: &[f32], z: &[f32], g: &[f32], mu: &[f32], sigma: &[f32], g_mu: &mut [f32], g_rho: &mut [f32]) -> f64);

/// One particle of a mean-field entry: adds t = ∂(log p − log q)/∂z to `g_mu` and t ε to
/// `g_rho` (ρ's chain rule comes after), and returns Σ h² with h the path derivative's
/// held standardization (z − μ)/σ, or Σ ε².
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn mean_field_particle_body(
    path: bool,
    e: &[f32],
    z: &[f32],
    g: &[f32],
    mu: &[f32],
    sigma: &[f32],
    g_mu: &mut [f32],
    g_rho: &mut [f32],
) -> f64 {
    let mut acc = [0.0f32; 8];
    let n = e.len();
    for i in 0..n {
        let (t, sq) = if path {
            let h = (z[i] - mu[i]) / sigma[i];
            (g[i] + h / sigma[i], h * h)
        } else {
            (g[i], e[i] * e[i])
        };
        acc[i % 8] += sq;
        g_mu[i] += t;
        g_rho[i] += t * e[i];
    }
    acc.iter().map(|&v| f64::from(v)).sum()
}

/// Two distinct elements of a slice, mutably.
fn two_mut<T>(v: &mut [T], a: usize, b: usize) -> (&mut T, &mut T) {
    assert_ne!(a, b, "two distinct parameters");
    if a < b {
        let (x, y) = v.split_at_mut(b);
        (&mut x[a], &mut y[0])
    } else {
        let (x, y) = v.split_at_mut(a);
        (&mut y[0], &mut x[b])
    }
}

super::dispatch!(log_sum, log_sum_avx2, log_sum_rows, (x: &[f32]) -> f64);

/// Σ log x_i, in eight running sums.
#[inline(always)]
fn log_sum_rows(x: &[f32]) -> f64 {
    let mut acc = [0.0f32; 8];
    let c = x.chunks_exact(8);
    let tail: f32 = c.remainder().iter().map(|&v| math::ln(v)).sum();
    for c in c {
        for l in 0..8 {
            acc[l] += math::ln(c[l]);
        }
    }
    acc.iter().map(|&v| f64::from(v)).sum::<f64>() + f64::from(tail)
}

super::dispatch!(scales, scales_avx2, scales_rows,
    (rho: &[f32], floor: f32, scale: &mut [f32], slope: &mut [f32]) -> ());

/// σ = softplus(ρ) + floor and dσ/dρ, elementwise.
#[inline(always)]
fn scales_rows(rho: &[f32], floor: f32, scale: &mut [f32], slope: &mut [f32]) {
    for ((&r, s), d) in rho.iter().zip(scale.iter_mut()).zip(slope.iter_mut()) {
        let (sp, sl) = softplus_and_slope(r);
        *s = sp + floor;
        *d = sl;
    }
}
