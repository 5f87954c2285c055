//! The pieces generated code uses for explicit guide programs (`param` declarations and
//! `site ~ Normal(mu, s);` lines): a guide written by hand, like Pyro's.

use dfdx::prelude::*;
use ravi_backend::{traced, Backend, Estimator, FamilyDraw, ParamId, ParamStore, Tape};

use super::{gaussian_entropy_constant, per_particle, rho_for, scale_of, std_normal_log_density};

/// An argument of a distribution in a guide program.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ProgramArg {
    Const(f32),
    /// A `param`; a positive one is stored as ρ with the value softplus(ρ) + floor.
    Param {
        id: ParamId,
        positive: bool,
    },
}

/// The stored value that makes a parameter start at `value` (ρ for a positive one).
pub fn stored_init(value: f32, positive: bool) -> f32 {
    if positive {
        rho_for(value)
    } else {
        value
    }
}

/// An argument as `(numel,)` on the tape (a one-value parameter or a number broadcasts).
fn value<D: Backend, T: Tape<D>>(
    params: &ParamStore<D>,
    arg: ProgramArg,
    numel: usize,
    held: bool,
) -> Tensor<(usize,), f32, D, T> {
    match arg {
        ProgramArg::Const(c) => {
            let t: Tensor<(usize,), f32, D> = params.device().ones_like(&(numel,)) * c;
            t.retaped::<T>()
        }
        ProgramArg::Param { id, positive } => {
            // Held fixed (for the path derivative, called with NoneTape) or traced.
            let raw = if held {
                params.get(id).clone().retaped::<T>()
            } else {
                traced::<D, T>(params, id)
            };
            let v = if positive { scale_of(raw) } else { raw };
            if v.shape().0 == numel {
                v
            } else {
                v.sum::<(), _>().broadcast_like::<_, Axis<0>>(&(numel,))
            }
        }
    }
}

/// z ~ N(loc, scale) on `numel` coordinates (also a LogNormal site's unconstrained value),
/// with the log q term of `estimator` as the mean-field family computes it.
pub fn sample_normal<D: Backend, T: Tape<D>>(
    params: &ParamStore<D>,
    loc: ProgramArg,
    scale: ProgramArg,
    particles: usize,
    numel: usize,
    estimator: Estimator,
) -> FamilyDraw<D, T> {
    let shape = (particles, numel);
    let eps: Tensor<(usize, usize), f32, D> = params.device().sample_normal_like(&shape);
    let mu = value::<D, T>(params, loc, numel, false);
    let sigma = value::<D, T>(params, scale, numel, false);
    let log_det = sigma.retaped::<T>().ln().sum::<(), _>();
    let z = sigma.broadcast_like::<_, Axis<0>>(&shape) * eps.clone()
        + mu.broadcast_like::<_, Axis<0>>(&shape);
    let log_q = match estimator {
        Estimator::Standard => {
            per_particle(log_det, particles).negate() + std_normal_log_density(eps)
        }
        Estimator::AnalyticEntropy | Estimator::AnalyticKl => per_particle(
            log_det.negate() - gaussian_entropy_constant(numel),
            particles,
        ),
        Estimator::PathDerivative => {
            // μ and σ held fixed: evaluated untaped.
            let mu = value::<D, NoneTape>(params, loc, numel, true);
            let sigma = value::<D, NoneTape>(params, scale, numel, true);
            let held_log_det = sigma.clone().ln().sum::<(), _>().array();
            let e = (z.retaped::<T>() - mu.broadcast_like::<_, Axis<0>>(&shape))
                / sigma.broadcast_like::<_, Axis<0>>(&shape);
            std_normal_log_density(e) - held_log_det
        }
    };
    FamilyDraw { z, log_q }
}
