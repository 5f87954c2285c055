//! The host engine: a model and its Gaussian guide compiled into a flat program that a
//! fit step runs on the CPU with no graph library in between.
//!
//! Why: a dfdx step pays per operation (a tensor allocated, a tape entry boxed, the data
//! matrix's gradient computed although data needs none), which for a small model costs more
//! than the arithmetic. `guide!` knows the whole graph, so where the model and the guide
//! stay inside what this engine covers it emits a [`Program`](crate::program::Program) beside the
//! dfdx code, and
//! [`crate::Trainer`] runs each step here instead:
//!
//! - one forward pass over the model's nodes and one backward pass, into buffers sized
//!   once (reused every step), in place (`engine`);
//! - each site's log density and its gradient with respect to the value and every argument
//!   in a single pass over the site's elements (`density`);
//! - data-times-vector products row by row over the data, reading each row once for all
//!   particles and computing no gradient for the data (`rows`); net layers and other
//!   products through `matrixmultiply`'s sgemm (`net`, `gemm`);
//! - the guide's reparametrized draw, its log q under each estimator and the gradients of μ,
//!   ρ (and L) in closed form (`gaussian`), then Adam, on host vectors (`step`);
//! - large elementwise work and products split across threads; the kernels compiled for
//!   AVX2 as well as the baseline and picked at run time; exp, ln and tanh as branch-free
//!   polynomials so that their loops vectorize (`math`).
//!
//! The draws come from the device's generator in the order the dfdx path draws them (more
//! than 65,536 normals at once from xoshiro streams on threads, seeded by it), so both paths
//! take the same steps (to f32 rounding): `tests/fused.rs` checks it, model by model and
//! estimator by estimator. `FitOptions::fused = false` forces the dfdx path.
//!
//! Covered: global latent sites with Normal priors, or on the positive reals (drawn as
//! x = eᵘ) with LogNormal, HalfNormal, HalfCauchy, Exponential, Gamma or InverseGamma
//! priors, or real with Cauchy or Laplace ones (any arguments, latent ones too, but a Gamma's
//! concentration); observed sites of those and of Bernoulli (probs or logits), Poisson and
//! Categorical; `+ - * /`,
//! negation, `@` (vectors and matrices, data or latent on either side), `exp log softplus
//! sigmoid tanh`, sums and means; nets of Linear layers and activations; `MeanField` and
//! `FullRank` entries over any sites, and guide-program lines whose location and scale are
//! `param`s (a mean-field entry under the params' names); the model's `param`s, held as
//! points; local sites drawn by `Amortized` encoders, Gaussian, relaxed Bernoulli or
//! concrete (`encoder`: the encoder net over the batch's rows, the draw per row, log q and
//! the closed-form KL per row; a relaxed site drawn and scored in its unconstrained
//! coordinates); the relaxation
//! `temperature`;
//! the path-derivative, analytic-entropy, standard and
//! analytic-KL estimators; minibatches, clipping, weight decay, frozen parameters. Anything
//! else (convolutions, local sites with per-row parameters or guide programs, other
//! families, constrained latents, the IWAE objective, CUDA) takes the dfdx path, which
//! remains the reference.

pub(crate) use crate::threads::workers_for;

/// Parts for `work` whose partial results are combined (sums): a number fixed by the work
/// alone — one below about a million, else 8 — never by the machine, so that the same
/// seed gives the same bits on any number of cores. The parts are shared out among the
/// cores ([`run_parts`]) and combined in their order.
pub(crate) fn parts_for(work: usize) -> usize {
    if work < 1 << 20 {
        1
    } else {
        8
    }
}

/// Values per part for elementwise work over `n` of them: all of them (one part, no
/// spawning) below about a quarter million.
pub(crate) fn block_for(n: usize) -> usize {
    n.div_ceil(parts_for(n * 4)).max(1)
}

pub(crate) use crate::threads::run_parts;

/// `f(offset, chunk)` over blocks of `out` ([`block_for`]; inline when there is one), on
/// threads; the results in order.
pub(crate) fn par_chunks<R: Send>(
    out: &mut [f32],
    f: impl Fn(usize, &mut [f32]) -> R + Sync,
) -> Vec<R> {
    let block = block_for(out.len());
    if block >= out.len() {
        return vec![f(0, out)];
    }
    let parts: Vec<(usize, &mut [f32])> = out.chunks_mut(block).enumerate().collect();
    run_parts(parts, |(p, chunk)| f(p * block, chunk))
}

/// `f(range, a, b)` over blocks of two buffers of one length ([`block_for`]; inline when
/// there is one), each block's `range` and its parts of both, on threads as [`run_parts`]
/// shares them out; the results in order.
pub(crate) fn par_chunks_pair<R: Send>(
    a: &mut [f32],
    b: &mut [f32],
    f: impl Fn(std::ops::Range<usize>, &mut [f32], &mut [f32]) -> R + Sync,
) -> Vec<R> {
    let block = block_for(a.len());
    let parts: Vec<_> = a
        .chunks_mut(block)
        .zip(b.chunks_mut(block))
        .enumerate()
        .collect();
    run_parts(parts, |(p, (a, b))| f(p * block..p * block + a.len(), a, b))
}

/// `f(range)` over blocks of `0..n` (read-only elementwise work), on threads as
/// [`par_chunks`] splits; the results in order.
pub(crate) fn par_ranges<R: Send>(
    n: usize,
    f: impl Fn(std::ops::Range<usize>) -> R + Sync,
) -> Vec<R> {
    let block = block_for(n);
    if block >= n {
        return vec![f(0..n)];
    }
    let parts: Vec<std::ops::Range<usize>> = (0..n)
        .step_by(block)
        .map(|start| start..(start + block).min(n))
        .collect();
    run_parts(parts, f)
}

mod density;
mod encoder;
mod engine;
mod gaussian;
pub(crate) mod model_engine;
mod net;
mod rewrite;
mod rows;
pub(crate) mod step;

pub(crate) use crate::math;
pub(crate) use crate::simd_dispatch as dispatch;

use crate::data::check_inputs;
use crate::device::Cpu;
use crate::error::FitError;
use crate::estimator::Estimator;
use crate::guide::Guide;
use crate::model::{Model, ModelData};

/// Which engine ran a fit's steps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineChoice {
    /// The host engine: the guide's program on host buffers.
    Host,
    /// The guide's draws on the dfdx graph and the model's terms on the host engine (which
    /// runs the model but not the guide's families), and why the guide is not on the engine.
    HostModel(String),
    /// The dfdx graph, and why not the host engine (the model or guide has something the
    /// engine does not run, the device, the objective, or `FitOptions::fused`).
    Graph(String),
}

impl std::fmt::Display for EngineChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EngineChoice::Host => f.write_str("the host engine"),
            EngineChoice::HostModel(why) => write!(
                f,
                "the dfdx graph for the guide ({why}), the host engine for the model"
            ),
            EngineChoice::Graph(why) => write!(f, "the dfdx graph ({why})"),
        }
    }
}

/// An ELBO estimate and its gradient, one vector per guide parameter.
pub type Estimate = (f32, Vec<Vec<f32>>);

/// One estimate of the ELBO and its gradient with respect to every guide parameter (store
/// order) computed by the host engine, on the rows `batch` of `data` (all when `None`) with
/// the likelihood scaled to the whole data: what [`crate::elbo_gradient`] computes on the
/// dfdx graph, from the same draws of the guide's device. `None` when the guide has no
/// program for the engine. For tests and for studying the engine.
pub fn elbo_gradient<G: Guide<Cpu>>(
    guide: &G,
    data: &<G::Model as Model>::Data,
    batch: Option<&[usize]>,
    particles: usize,
    estimator: Estimator,
) -> Result<Option<Estimate>, FitError> {
    let arrays = data.arrays();
    let specs = G::Model::inputs();
    let rows = check_inputs(G::Model::NAME, specs, &arrays)?;
    let store = guide.params();
    let frozen = vec![false; store.len()];
    let Ok(mut fused) = step::Fused::for_guide(guide, Default::default(), &frozen)? else {
        return Ok(None);
    };
    let scale = rows as f32 / batch.map_or(rows, <[usize]>::len).max(1) as f32;
    let value = fused
        .evaluate(
            store.device(),
            (specs, &arrays),
            batch,
            particles,
            (scale, 1.0),
            estimator,
        )
        .map_err(|bad| FitError::NonFinite {
            step: 0,
            value: bad.value,
            culprit: bad.culprit,
        })?;
    let gradient = fused
        .loss_gradient()
        .iter()
        .map(|g| g.iter().map(|v| -v).collect())
        .collect();
    Ok(Some((value, gradient)))
}
