//! Gaussians with one location and scale per data row: what every guide of a local site
//! that is Normal per row (an encoder, a guide program's nets, per-row mean-field
//! parameters) draws from, with its log q per particle and row.

use dfdx::prelude::*;
use ravi_backend::{Backend, Estimator, Particles, Rows, Tape};

use super::held;
use crate::dist::consts::HALF_LN_2PI;

/// A local site's prior when it is Normal(loc, scale) in the guide's coordinate with
/// numbers for arguments: what the closed-form KL of [`Estimator::AnalyticKl`] needs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NormalPrior {
    /// The prior's location.
    pub loc: f32,
    /// The prior's scale.
    pub scale: f32,
}

/// z = μ + σ ε per particle for `(rows, per_row)` locations and scales: the draws
/// `(particles, rows · per_row)` (row-major) and log q per particle and row under
/// `estimator` (standard: log N(ε) − Σ log σ; analytic: −entropy; path derivative: log q of
/// z with μ and σ held; analytic KL with a Normal `prior`: log p(z) + KL(q‖p) per row,
/// see [`kl_term_rows`]).
pub(crate) fn gaussian_rows<D: Backend, T: Tape<D>>(
    loc: Tensor<(usize, usize), f32, D, T>,
    sigma: Tensor<(usize, usize), f32, D, T>,
    particles: usize,
    estimator: Estimator,
    prior: Option<NormalPrior>,
) -> (Particles<D, T>, Rows<D, T>) {
    if let (Estimator::AnalyticKl, Some(prior)) = (estimator, prior) {
        let (rows, k) = *loc.shape();
        let full = (particles, rows, k);
        let eps: Tensor<(usize, usize, usize), f32, D> = loc.device().sample_normal_like(&full);
        let z = sigma.retaped::<T>().broadcast_like::<_, Axis<0>>(&full) * eps
            + loc.retaped::<T>().broadcast_like::<_, Axis<0>>(&full);
        let log_q = kl_term_rows(loc, sigma, z.retaped::<T>(), prior);
        return (z.reshape_like(&(particles, rows * k)), log_q);
    }
    standard_rows(loc, sigma, particles, estimator)
}

/// The log q term per particle and row that turns a local site's part of the ELBO into
/// −KL(q‖p) per row for a Normal prior p = N(m, s): log p(z) + KL. The model adds log p(z)
/// of the same draw (scaled like this term), so the two cancel and the row keeps −KL,
/// whose gradient is exact: KL = Σ_j log(s/σ_j) + (σ_j² + (μ_j − m)²)/(2s²) − ½.
fn kl_term_rows<D: Backend, T: Tape<D>>(
    loc: Tensor<(usize, usize), f32, D, T>,
    sigma: Tensor<(usize, usize), f32, D, T>,
    z: Tensor<(usize, usize, usize), f32, D, T>,
    prior: NormalPrior,
) -> Rows<D, T> {
    let (particles, rows, k) = *z.shape();
    let (m, inv_s, log_s) = (prior.loc, 1.0 / prior.scale, prior.scale.ln());
    let log_p = ((z - m) * inv_s).square().sum::<(usize, usize), Axis<2>>() * -0.5
        - k as f32 * (HALF_LN_2PI + log_s);
    let log_sigma = sigma.retaped::<T>().ln().sum::<(usize,), Axis<1>>();
    let spread = (sigma * inv_s).square().sum::<(usize,), Axis<1>>();
    let shift = ((loc - m) * inv_s).square().sum::<(usize,), Axis<1>>();
    let kl = (spread + shift) * 0.5 - log_sigma + k as f32 * (log_s - 0.5);
    log_p + kl.broadcast_like::<_, Axis<0>>(&(particles, rows))
}

fn standard_rows<D: Backend, T: Tape<D>>(
    loc: Tensor<(usize, usize), f32, D, T>,
    sigma: Tensor<(usize, usize), f32, D, T>,
    particles: usize,
    estimator: Estimator,
) -> (Particles<D, T>, Rows<D, T>) {
    let (rows, k) = *loc.shape();
    let (s, full) = (particles, (particles, rows, k));
    let log_sigma = sigma.retaped::<T>().ln().sum::<(usize,), Axis<1>>();
    let (held_loc, held_sigma) = (held(&loc), held(&sigma));
    let eps: Tensor<(usize, usize, usize), f32, D> = loc.device().sample_normal_like(&full);
    let z = sigma.broadcast_like::<_, Axis<0>>(&full) * eps.clone()
        + loc.broadcast_like::<_, Axis<0>>(&full);
    let constant = k as f32 * HALF_LN_2PI;
    let log_q = match estimator {
        Estimator::Standard => {
            let ln = eps.square().sum::<(usize, usize), Axis<2>>() * -0.5 - constant;
            log_sigma.broadcast_like::<_, Axis<0>>(&(s, rows)).negate() + ln.retaped::<T>()
        }
        Estimator::AnalyticEntropy | Estimator::AnalyticKl => {
            (log_sigma.negate() - k as f32 * 0.5 - constant)
                .broadcast_like::<_, Axis<0>>(&(s, rows))
        }
        Estimator::PathDerivative => {
            let held_log_sigma = held_sigma.clone().ln().sum::<(usize,), Axis<1>>();
            let e = (z.retaped::<T>() - held_loc.broadcast_like::<_, Axis<0>>(&full))
                / held_sigma.broadcast_like::<_, Axis<0>>(&full);
            e.square().sum::<(usize, usize), Axis<2>>() * -0.5
                - constant
                - held_log_sigma.broadcast_like::<_, Axis<0>>(&(s, rows))
        }
    };
    (z.reshape_like(&(s, rows * k)), log_q)
}
