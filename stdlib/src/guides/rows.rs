//! Gaussians with one location and scale per data row: what every guide of a local site
//! that is Normal per row (an encoder, a guide program's nets, per-row mean-field
//! parameters) draws from, with its log q per particle and row.

use dfdx::prelude::*;
use ravi_backend::{Backend, Estimator, Particles, Rows, Tape};

use super::held;
use crate::dist::consts::HALF_LN_2PI;

/// z = μ + σ ε per particle for `(rows, per_row)` locations and scales: the draws
/// `(particles, rows · per_row)` (row-major) and log q per particle and row under
/// `estimator` (standard: log N(ε) − Σ log σ; analytic: −entropy; path derivative: log q of
/// z with μ and σ held).
pub(crate) fn gaussian_rows<D: Backend, T: Tape<D>>(
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
