//! The contracts between generated code, the stdlib and the fit loop.
//!
//! `model!` implements [`Model`]; `guide!` implements [`Guide`] by composing stdlib
//! [`GuideFamily`](crate::family::GuideFamily)s. Latent values cross from guide to model as one tensor per latent site of
//! shape `(particles, numel)` in unconstrained space: the guide knows nothing of the model's
//! code, and any family can be joint over any sites.

use dfdx::tensor::Tensor;

use crate::data::{Array, Batch, InputSpec};
use crate::device::{Backend, Tape};
use crate::family::Estimator;
use crate::params::ParamStore;

/// Per-particle values: the leading axis is the particles.
pub type Particles<D, T> = Tensor<(usize, usize), f32, D, T>;
/// One number per particle.
pub type PerParticle<D, T> = Tensor<(usize,), f32, D, T>;
/// One number per particle and data row: `(particles, rows)`.
pub type Rows<D, T> = Tensor<(usize, usize), f32, D, T>;

/// Where a latent site's values live. The guide works on ℝ; the model maps its draws here
/// (and adds the log-determinant of that map to the site's log density).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Support {
    Real,
    /// (0, ∞), through exp.
    Positive,
    /// (0, 1), through the logistic function.
    UnitInterval,
    /// (low, high), through low + (high − low) · logistic.
    Interval {
        low: f32,
        high: f32,
    },
    /// The simplex along the last axis: K − 1 unconstrained values per event u, through
    /// y = softmax([u, 0]) (the additive log-ratio map).
    Simplex,
}

impl Support {
    /// The constrained value of an unconstrained one (elementwise supports; see
    /// [`LatentSpec::constrain`] for a whole draw).
    pub fn constrain(&self, u: f32) -> f32 {
        let logistic = |u: f32| 1.0 / (1.0 + (-u).exp());
        match *self {
            Support::Real => u,
            Support::Positive => u.exp(),
            Support::UnitInterval => logistic(u),
            Support::Interval { low, high } => low + (high - low) * logistic(u),
            Support::Simplex => {
                panic!("a simplex is constrained per event, by LatentSpec::constrain")
            }
        }
    }
}

/// A latent site as the model declares it.
#[derive(Debug, Clone, Copy)]
pub struct LatentSpec {
    pub name: &'static str,
    /// The site's shape; for a local site, the shape of one row's value.
    pub shape: &'static [usize],
    pub support: Support,
    /// A local site (`z ~ .. [N, k]`): one value per data row, drawn for the rows of each
    /// minibatch, its prior term scaled like the likelihood.
    pub local: bool,
    /// A `param` of the model: a point learned by the optimiser, with no prior and no
    /// guide family (the guide holds it as a point mass).
    pub param: Option<ParamInit>,
    /// The median of the site's prior in the guide's unconstrained coordinate, when the
    /// prior's arguments are numbers: where a search for the mode starts.
    pub prior_median: Option<f32>,
    /// The layers of the net call whose weights the site is: a fit starts such a site's
    /// locations Glorot-uniform, so that no two hidden units start alike.
    pub net: Option<&'static [InitBlock]>,
}

/// How a model `param` starts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ParamInit {
    /// Every value the same.
    Value(f32),
    /// The weights of a net: per layer, weights uniform in ±√(6 / (fan_in + fan_out))
    /// (Glorot & Bengio 2010), biases 0. A decoder started at zero would stay symmetric.
    Glorot(&'static [InitBlock]),
}

/// One layer's part of a net's weight vector, for [`ParamInit::Glorot`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InitBlock {
    pub fan_in: usize,
    pub fan_out: usize,
    pub weights: usize,
    pub bias: usize,
}

impl InitBlock {
    /// Appends the block's starting values: weights uniform in ±√(6 / (fan_in + fan_out)),
    /// then zero biases; `uniform` gives draws from U(0, 1).
    pub fn fill(&self, out: &mut Vec<f32>, uniform: &mut dyn FnMut() -> f32) {
        let a = (6.0 / (self.fan_in + self.fan_out).max(1) as f32).sqrt();
        out.extend((0..self.weights).map(|_| (2.0 * uniform() - 1.0) * a));
        out.extend(std::iter::repeat_n(0.0, self.bias));
    }
}

impl ParamInit {
    /// `numel` starting values; `uniform` gives draws from U(0, 1).
    pub fn values(&self, numel: usize, uniform: &mut dyn FnMut() -> f32) -> Vec<f32> {
        match *self {
            ParamInit::Value(v) => vec![v; numel],
            ParamInit::Glorot(blocks) => {
                let mut out = Vec::with_capacity(numel);
                for b in blocks {
                    b.fill(&mut out, uniform);
                }
                out.resize(numel, 0.0);
                out
            }
        }
    }
}

impl LatentSpec {
    /// Values of the site (per row, for a local site).
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// How many unconstrained values the guide draws for this site (fewer than `numel` on
    /// a simplex: K − 1 per event of K).
    pub fn unconstrained_numel(&self) -> usize {
        match (self.support, self.shape.last()) {
            (Support::Simplex, Some(&k)) => self.numel() / k.max(1) * k.saturating_sub(1),
            _ => self.numel(),
        }
    }

    /// One draw of the guide's unconstrained values mapped onto the site's support.
    pub fn constrain(&self, u: &[f32]) -> Vec<f32> {
        match (self.support, self.shape.last()) {
            (Support::Simplex, Some(&k)) => u
                .chunks(k - 1)
                .flat_map(|x| {
                    // y = softmax([x, 0]), the additive log-ratio map
                    let top = x.iter().fold(0.0f64, |m, &v| m.max(f64::from(v)));
                    let e: Vec<f64> = x
                        .iter()
                        .map(|&v| (f64::from(v) - top).exp())
                        .chain([(-top).exp()])
                        .collect();
                    let total: f64 = e.iter().sum();
                    e.into_iter().map(move |v| (v / total) as f32)
                })
                .collect(),
            _ => u.iter().map(|&v| self.support.constrain(v)).collect(),
        }
    }

    /// Values on the site's support in the guide's unconstrained coordinates (the inverse
    /// of [`LatentSpec::constrain`]); `None` when one is off the support or not a number (a
    /// simplex's events must be positive and sum to 1).
    pub fn unconstrain(&self, v: &[f32]) -> Option<Vec<f64>> {
        let logit = |p: f64| (p > 0.0 && p < 1.0).then(|| (p / (1.0 - p)).ln());
        match (self.support, self.shape.last()) {
            (Support::Simplex, Some(&k)) => {
                if k == 0 || !v.len().is_multiple_of(k) {
                    return None;
                }
                let mut out = Vec::with_capacity(v.len() / k * (k - 1));
                for event in v.chunks(k) {
                    let total: f64 = event.iter().map(|&x| f64::from(x)).sum();
                    let positive = event.iter().all(|&x| x > 0.0 && x.is_finite());
                    if !positive || !total.is_finite() || (total - 1.0).abs() > 1e-4 {
                        return None;
                    }
                    let last = f64::from(event[k - 1]);
                    out.extend(event[..k - 1].iter().map(|&x| (f64::from(x) / last).ln()));
                }
                Some(out)
            }
            (support, _) => v
                .iter()
                .map(|&x| {
                    let x = f64::from(x);
                    match support {
                        Support::Real => x.is_finite().then_some(x),
                        Support::Positive => (x > 0.0 && x.is_finite()).then(|| x.ln()),
                        Support::UnitInterval => logit(x),
                        Support::Interval { low, high } => {
                            logit((x - f64::from(low)) / (f64::from(high) - f64::from(low)))
                        }
                        Support::Simplex => None,
                    }
                })
                .collect(),
        }
    }
}

/// The data struct `model!` generates, one field per input.
pub trait ModelData {
    /// The inputs in declaration order.
    fn arrays(&self) -> Vec<&Array>;
}

/// A compiled model. `log_joint_terms` is the model's program: one term per site, each the
/// site's log density summed over its axes, per particle.
pub trait Model: 'static {
    const NAME: &'static str;
    type Data: ModelData;
    fn inputs() -> &'static [InputSpec];
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
    /// local latent sites and observed sites over the rows whose density is elementwise;
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
}

/// An observed site's distribution parameters, one `(particles, values)` tensor each (for a
/// categorical's logits, K values per element), as the posterior predictive reads them.
pub struct ObservedArgs<D: Backend, T: Tape<D>> {
    pub site: &'static str,
    /// The distribution and its parametrization, e.g. `Normal` or `Bernoulli_logits`.
    pub distribution: &'static str,
    /// Values per element in `args` (K for a categorical's logits, else 1).
    pub classes: usize,
    pub args: Vec<Particles<D, T>>,
}

/// Draws from a guide: latent values (one tensor per latent site of the model, in the
/// model's order) and log q of each particle.
pub struct GuideSample<D: Backend, T: Tape<D>> {
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

/// How a net call uses a mean-field Gaussian over its weights instead of one draw of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rewrite {
    /// Flipout (Wen et al. 2018): one perturbation per particle, decorrelated per row by
    /// random signs on inputs and outputs.
    Flipout,
    /// Local reparametrization (Kingma, Salimans & Welling 2015): each row's
    /// pre-activations drawn from their Gaussian, mean x μ and variance x² σ².
    Lrt,
}

/// A mean-field Gaussian over a weight site, handed from guide to model for a rewrite.
pub struct GaussianWeights<D: Backend, T: Tape<D>> {
    pub loc: Tensor<(usize,), f32, D, T>,
    pub scale: Tensor<(usize,), f32, D, T>,
    pub rewrite: Rewrite,
}

/// A compiled guide for model `Self::Model`.
pub trait Guide<D: Backend> {
    type Model: Model;
    fn params(&self) -> &ParamStore<D>;
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
    fn start(&mut self, _start: &crate::init::Start) {}
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
    /// found them inside what it covers; `None` keeps every step on the dfdx path.
    fn fused_program() -> Option<&'static crate::fused::Program> {
        None
    }
}

/// A parameter entering a taped computation: a clone of the stored tensor carrying a fresh
/// tape of type `T`, so its gradient is recorded under the stored tensor's id.
pub fn traced<D: Backend, T: Tape<D>>(
    params: &ParamStore<D>,
    id: crate::params::ParamId,
) -> Tensor<(usize,), f32, D, T> {
    params.get(id).retaped::<T>()
}
