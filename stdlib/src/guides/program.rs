//! The pieces generated code uses for explicit guide programs (`param` declarations and
//! `site ~ Normal(mu, s);` lines): a guide written by hand, like Pyro's. A local site's
//! line may call nets on the rows of the data, `z ~ Normal(Loc(x; a), softplus(Scale(x; b)))`:
//! an amortized guide written out.

use dfdx::prelude::*;
use dfdx::tensor::NoneTape;
use ravi_backend::{
    traced, Backend, Batch, Estimator, FamilyDraw, ParamId, ParamStore, Particles, Rows, Tape,
};

use super::{
    gaussian_entropy_constant, per_particle, rho_for, scale_of, std_normal_log_density, SCALE_FLOOR,
};
use crate::nn::{forward_rows, Layer};

/// An argument of a distribution in a guide program.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ProgramArg {
    /// A number.
    Const(f32),
    /// A `param`; a positive one is stored as ρ with the value softplus(ρ) + floor.
    Param {
        /// The parameter.
        id: ParamId,
        /// Stored as ρ, used as softplus(ρ) + floor.
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
            // Held fixed (for the path derivative, called with NoneTape; a fresh copy, see
            // `held`) or traced.
            let raw = if held {
                super::held(params.get(id)).retaped::<T>()
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

/// An argument of a local site's distribution in a guide program: as [`ProgramArg`], or a
/// net of the rows of a model input, `Net(x; p)` (with `softplus` around it for a scale).
#[derive(Debug, Clone, Copy)]
pub enum RowArg {
    /// A number.
    Const(f32),
    /// A `param` of one value, or of one value per value of a row (the same for every row).
    Param {
        /// The parameter.
        id: ParamId,
        /// Stored as ρ, used as softplus(ρ) + floor.
        positive: bool,
    },
    /// `Net(x; p)`, or `softplus(Net(x; p))`: a net of each row of a model input.
    Net {
        /// The net's layers.
        layers: &'static [Layer],
        /// The guide parameter holding its weights.
        weights: ParamId,
        /// The model input the net reads, by index.
        input: usize,
        /// Wrapped in softplus (a scale).
        softplus: bool,
    },
}

/// An argument as `(rows, per_row)` on the tape.
fn row_value<D: Backend, T: Tape<D>>(
    params: &ParamStore<D>,
    batch: &Batch<D>,
    arg: RowArg,
    per_row: usize,
) -> Tensor<(usize, usize), f32, D, T> {
    let rows = batch.rows();
    let shape = (rows, per_row);
    match arg {
        RowArg::Const(c) => {
            let t: Tensor<(usize, usize), f32, D> = params.device().ones_like(&shape) * c;
            t.retaped::<T>()
        }
        RowArg::Param { id, positive } => {
            value::<D, T>(params, ProgramArg::Param { id, positive }, per_row, false)
                .broadcast_like::<_, Axis<0>>(&shape)
        }
        RowArg::Net {
            layers,
            weights,
            input,
            softplus,
        } => {
            let x = batch.input(input);
            let features = x.shape().0 / rows.max(1);
            let w = traced::<D, T>(params, weights);
            let out = forward_rows(layers, x.reshape_like(&(rows, features)), w);
            if softplus {
                scale_floor(ravi_backend::ops::softplus(out))
            } else {
                out
            }
        }
    }
}

fn scale_floor<D: Backend, T: Tape<D>>(
    s: Tensor<(usize, usize), f32, D, T>,
) -> Tensor<(usize, usize), f32, D, T> {
    s + SCALE_FLOOR
}

/// z ~ N(loc, scale) for a local site, `per_row` values for each row of `batch`: the draws
/// `(particles, rows · per_row)` and log q per particle and row, as the mean-field family
/// computes it under `estimator`.
pub fn sample_normal_rows<D: Backend, T: Tape<D>>(
    params: &ParamStore<D>,
    batch: &Batch<D>,
    loc: RowArg,
    scale: RowArg,
    particles: usize,
    per_row: usize,
    estimator: Estimator,
) -> (Particles<D, T>, Rows<D, T>) {
    let mu = row_value::<D, T>(params, batch, loc, per_row);
    let sigma = row_value::<D, T>(params, batch, scale, per_row);
    super::rows::gaussian_rows(mu, sigma, particles, estimator, None)
}

/// Registers a `param` of `numel` values started as `init` says (a net's weights:
/// Glorot-uniform draws from the store's device).
pub fn param_with_init<D: Backend>(
    params: &mut ParamStore<D>,
    name: &str,
    numel: usize,
    init: &ravi_backend::ParamInit,
) -> ParamId {
    let dev = params.device().clone();
    let u: Tensor<(usize,), f32, D> = dev.sample_uniform_like(&(numel,));
    let mut draws = u.as_vec().into_iter();
    let values = init.values(numel, &mut || draws.next().unwrap_or(0.5));
    params.add(name, values)
}
