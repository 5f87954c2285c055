//! The contract `guide!` implements: [`Guide`], what its draws hand the model, and the checks
//! that data fits a guide holding per-row parameters.

use crate::data::{check_inputs, Batch};
use crate::device::{Backend, Tape};
use crate::error::FitError;
use crate::estimator::Estimator;
use crate::family::HostGaussian;
use crate::model::{GaussianWeights, Model, ModelData};
use crate::params::{ParamId, ParamStore};
use crate::particles::{Particles, PerParticle, Rows};

/// Draws from a guide: latent values (one tensor per latent site of the model, in the
/// model's order) and log q of each particle.
pub struct GuideSample<D: Backend, T: Tape<D>> {
    /// One `(particles, numel)` tensor per latent site, on ℝ (unconstrained), in the model's order.
    pub latents: Vec<Particles<D, T>>,
    /// log q of the global sites (everything but the local ones).
    pub log_q: PerParticle<D, T>,
    /// log q of the local sites per particle and row of the batch, unscaled; `None` when
    /// the model has no local sites.
    pub local_log_q: Option<Rows<D, T>>,
    /// Per latent site: its mean-field Gaussian when the guide asks the model to rewrite
    /// the net call it feeds (Flipout, local reparametrization); `None` otherwise.
    pub rewrites: Vec<Option<GaussianWeights<D, T>>>,
}

/// A compiled guide for model `Self::Model`.
pub trait Guide<D: Backend> {
    /// The model the guide is for.
    type Model: Model;
    /// The guide's parameters (and constants), by name.
    fn params(&self) -> &ParamStore<D>;
    /// The guide's parameters, to change (a fit, a start, a load).
    fn params_mut(&mut self) -> &mut ParamStore<D>;
    /// `particles` draws of every latent site, with the log q term of each under
    /// `estimator`; `weighted` applies the families' entropy weights (fitting only).
    /// Local sites are drawn for the rows of `batch` (amortized guides read its inputs).
    fn sample<T: Tape<D>>(
        &self,
        particles: usize,
        batch: &Batch<D>,
        estimator: Estimator,
        weighted: bool,
    ) -> GuideSample<D, T>;
    /// Starts every family and point mass of the guide where the fit's initialisation
    /// says ([`crate::init`]); a hand-written guide program keeps its own starting values.
    fn start(&mut self, _start: &crate::start::Start) {}
    /// Sizes per-row parameters (a non-amortized family over a local site) for data of
    /// `rows` rows; a fit calls it first. Nothing for other guides.
    fn prepare(&mut self, _rows: usize) {}
    /// The rows the guide's per-row parameters describe (0 before [`Guide::prepare`]), or
    /// `None` when it has none and reads any data.
    fn rows_held(&self) -> Option<usize> {
        None
    }
    /// Per latent site of the model (in its order), the factor on that site's prior term
    /// during fitting; see [`GuideFamily::prior_weight`](crate::family::GuideFamily::prior_weight).
    fn prior_weights(&self) -> Vec<f32>;
    /// Is log q of a draw (as [`crate::elbo_draws`] computes it) its exact log density?
    /// Not when a family's entropy is an approximation (the implicit family's).
    fn exact_log_q() -> bool {
        true
    }
    /// The model and guide as the host engine runs them ([`crate::fused`]), where `guide!`
    /// found them inside what it covers; else why not, in words (every step then takes the
    /// dfdx graph, and `FitReport::engine` says why).
    fn host_program() -> Result<&'static crate::program::Program, &'static str> {
        Err("the guide is written by hand, with no program for the host engine")
    }
    /// The model alone as the host engine runs it (a program with no entries), where the
    /// engine runs the model but not this guide's families (an implicit generator, a flow,
    /// a low-rank family): a fit on the CPU then draws on the dfdx graph and scores the
    /// draws on the engine. `None` where the engine does not run the model, or the guide
    /// is amortized.
    fn host_model_program() -> Option<&'static crate::program::Program> {
        None
    }
    /// The parameters of each Gaussian entry of [`Guide::host_program`], in its order;
    /// `None` where a family cannot say (the fit then stops with an error: the guide and its
    /// program disagree).
    fn host_gaussians(&self) -> Option<Vec<HostGaussian>> {
        None
    }
    /// The parameter holding each point of [`Guide::host_program`] (a model `param`), in
    /// [`crate::program::Program::points`]' order.
    fn host_points(&self) -> Vec<ParamId> {
        Vec::new()
    }
    /// The weights of each encoder of [`Guide::host_program`], in
    /// [`crate::program::Program::encoders`]' order.
    fn host_encoders(&self) -> Vec<ParamId> {
        Vec::new()
    }
}

/// `data` checked against the model's inputs and the rows the guide holds: its rows.
pub(crate) fn checked_rows<G: Guide<D>, D: Backend>(
    guide: &G,
    data: &<G::Model as Model>::Data,
) -> Result<usize, FitError> {
    if let Some(e) = guide.params().refusal() {
        return Err(FitError::Memory(e.clone()));
    }
    let rows = check_inputs(G::Model::NAME, G::Model::inputs(), &data.arrays())?;
    check_rows(guide, rows)?;
    Ok(rows)
}

/// All of `data`, checked, on the guide's device at the relaxation `temperature`.
pub(crate) fn upload_all<G: Guide<D>, D: Backend>(
    guide: &G,
    data: &<G::Model as Model>::Data,
    temperature: f32,
) -> Result<Batch<D>, FitError> {
    let rows = checked_rows(guide, data)?;
    let (specs, arrays) = (G::Model::inputs(), data.arrays());
    Ok(
        Batch::upload(guide.params().device(), specs, &arrays, None, rows)
            .with_temperature(temperature),
    )
}

/// A guide with per-row parameters can only be evaluated on the rows it holds.
pub(crate) fn check_rows<G: Guide<D>, D: Backend>(guide: &G, rows: usize) -> Result<(), FitError> {
    match guide.rows_held() {
        Some(held) if held != rows => Err(FitError::Unsupported(format!(
            "the guide holds per-row parameters (a non-amortized local site) for {held} rows, but the data has {rows}; {}",
            if held == 0 {
                "fit it on these rows first, or call `prepare(rows)`"
            } else {
                "such a guide describes only the rows it was fitted to (an `Amortized` guide reads new rows)"
            }
        ))),
        _ => Ok(()),
    }
}
