//! The contracts between generated code, the stdlib and the fit loop.
//!
//! `model!` implements [`Model`]; `guide!` implements [`Guide`](crate::Guide) by composing stdlib
//! [`GuideFamily`](crate::family::GuideFamily)s. Latent values cross from guide to model as one tensor per latent site of
//! shape `(particles, numel)` in unconstrained space: the guide knows nothing of the model's
//! code, and any family can be joint over any sites.

use dfdx::tensor::Tensor;

use crate::data::{Array, Batch, DimSpec, InputSpec, ObservedSpec};
use crate::density::Moments;
use crate::device::{Backend, Tape};
use crate::latent::LatentSpec;
use crate::particles::{Particles, PerParticle, Rows};

/// The data struct `model!` generates, one field per input.
pub trait ModelData {
    /// The inputs in declaration order.
    fn arrays(&self) -> Vec<&Array>;
}

/// A compiled model. `log_joint_terms` is the model's program: one term per site, each the
/// site's log density summed over its axes, per particle.
pub trait Model: 'static {
    /// The model's name as messages and saved guides write it; with size parameters, their values
    /// too (`Reg<3>`).
    const NAME: &'static str;
    /// The data struct `model!` generates (`{Name}Data`), one [`Array`] per input.
    type Data: ModelData;
    /// The inputs with their declared shapes, in declaration order.
    fn inputs() -> &'static [InputSpec];
    /// The latent sites (and model `param`s) with their shapes and supports, in declaration order.
    fn latents() -> &'static [LatentSpec];
    /// `latents`: one `(particles, numel)` tensor per latent site in declaration order.
    /// `scale` multiplies the observed sites' terms (total rows / rows in the batch).
    fn log_joint_terms<D: Backend, T: Tape<D>>(
        latents: Vec<Particles<D, T>>,
        batch: &Batch<D>,
        scale: f32,
    ) -> Vec<(&'static str, PerParticle<D, T>)> {
        let none = (0..latents.len()).map(|_| None).collect();
        Self::log_joint_terms_rewritten(latents, none, batch, scale)
    }
    /// [`Model::log_joint_terms`] where some net calls use their weights' Gaussian
    /// (`rewrites`, per latent site) instead of the draw: the draw still gives the prior.
    fn log_joint_terms_rewritten<D: Backend, T: Tape<D>>(
        latents: Vec<Particles<D, T>>,
        rewrites: Vec<Option<GaussianWeights<D, T>>>,
        batch: &Batch<D>,
        scale: f32,
    ) -> Vec<(&'static str, PerParticle<D, T>)>;
    /// Per site, its log density split by data row, `(particles, rows)`, unscaled: for
    /// local latent sites and observed sites over the rows whose density is elementwise or
    /// a categorical's;
    /// `None` for a site that cannot be split (a global latent, a density of a whole site
    /// or of vectors). `param`s have no term. The importance-weighted bound needs it.
    fn log_joint_rows<D: Backend, T: Tape<D>>(
        latents: Vec<Particles<D, T>>,
        batch: &Batch<D>,
    ) -> Vec<(&'static str, Option<Rows<D, T>>)>;
    /// Every observed site's distribution parameters at the given latents (the
    /// observed values themselves are not read).
    fn observed_args<D: Backend, T: Tape<D>>(
        latents: Vec<Particles<D, T>>,
        batch: &Batch<D>,
    ) -> Vec<ObservedArgs<D, T>>;
    /// Every latent site's prior parameters at the given latents (in the model's order; a
    /// `param`'s is [`Predicts::Nothing`]): a site's are right once the sites before it
    /// hold their draws, which is how the prior predictive draws them in turn.
    fn latent_args<D: Backend, T: Tape<D>>(
        _latents: Vec<Particles<D, T>>,
        _batch: &Batch<D>,
    ) -> Vec<ObservedArgs<D, T>> {
        Vec::new()
    }
    /// The observed sites whose data the support restricts (checked once per fit).
    fn observed() -> &'static [ObservedSpec] {
        &[]
    }
    /// The model's `track`ed values, in order (none unless it has some).
    fn tracked_specs() -> &'static [TrackedSpec] {
        &[]
    }
    /// Every tracked value at the given latents on `batch`, `(particles, numel)` each, in
    /// the order of [`Model::tracked_specs`].
    fn tracked<D: Backend, T: Tape<D>>(
        _latents: Vec<Particles<D, T>>,
        _batch: &Batch<D>,
    ) -> Vec<Particles<D, T>> {
        Vec::new()
    }
    /// The tracked values that read no data (`reads_data` false), in order: what a
    /// posterior drawn from the guide alone shows.
    fn tracked_globals<D: Backend, T: Tape<D>>(
        _latents: Vec<Particles<D, T>>,
        _batch: &Batch<D>,
    ) -> Vec<Particles<D, T>> {
        Vec::new()
    }
}

/// A `track name = e;` of a model: a value each posterior draw keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrackedSpec {
    /// The value's name.
    pub name: &'static str,
    /// Its shape per draw (the rows `N` where it has one value per data row).
    pub dims: &'static [DimSpec],
    /// It reads the model's inputs, so only a posterior given the data has it.
    pub reads_data: bool,
}

/// An observed site's distribution parameters, one `(particles, values)` tensor each (for a
/// categorical's logits, K values per element), and what the posterior predictive makes of
/// them.
pub struct ObservedArgs<D: Backend, T: Tape<D>> {
    /// The observed site's name (its input's).
    pub site: &'static str,
    /// What the posterior predictive summarizes of it.
    pub predicts: Predicts,
    /// The parameters in the distribution's order.
    pub args: Vec<Particles<D, T>>,
}

/// What the posterior predictive summarizes of an observed site, per value.
#[derive(Clone, Copy)]
pub enum Predicts {
    /// One of K classes (a categorical, from its logits): the class probabilities.
    Classes(usize),
    /// 0 or 1 (a Bernoulli): P(y = 1), the distribution's mean.
    Binary(&'static dyn Moments),
    /// The predictive mean and sd, from the distribution's mean and variance given its
    /// arguments.
    Moments(&'static dyn Moments),
    /// A mixture of K components (its logits, then each component argument, K values per
    /// value): the mean and variance of the mixture, Σ w_k μ_k and Σ w_k (σ_k² + μ_k²) − μ².
    Mixture(&'static dyn Moments, usize),
    /// Nothing per value (a density of vectors or of a whole site, or moments with no
    /// closed form).
    Nothing,
}

pub use crate::program::Rewrite;

/// A mean-field Gaussian over a weight site, handed from guide to model for a rewrite.
pub struct GaussianWeights<D: Backend, T: Tape<D>> {
    /// The weights' means, one per weight.
    pub loc: Tensor<(usize,), f32, D, T>,
    /// The weights' standard deviations, one per weight.
    pub scale: Tensor<(usize,), f32, D, T>,
    /// How the net call uses them.
    pub rewrite: Rewrite,
}
