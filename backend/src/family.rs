//! The contract between a guide and the stdlib's variational families, and the choice of
//! how each family's log q enters the ELBO.

use crate::device::{Backend, Tape};
use crate::init::FamilyStart;
use crate::model::{Particles, PerParticle};
use crate::params::ParamStore;

/// How a guide family's log q enters the Monte Carlo ELBO. Every choice estimates the same
/// ELBO; they differ in the variance of its gradient.
///
/// - [`Estimator::PathDerivative`] (the default; "sticking the landing", Roeder, Wu &
///   Duvenaud 2017): log q(z) is evaluated with the family's parameters held fixed, so the
///   gradient flows only through the draw z. Its variance vanishes where q equals the
///   posterior, so a family that contains the posterior converges to it exactly (a
///   full-rank guide on a linear-Gaussian model). Use it by default.
/// - [`Estimator::AnalyticEntropy`]: −log q is replaced by the family's entropy in closed
///   form. No noise from the entropy term at all, but the model's term still carries the
///   noise that the path derivative would cancel; good far from the optimum and when the
///   family is far from the posterior (mean-field on strongly correlated posteriors).
/// - [`Estimator::Standard`]: log q of the draws with its full reparametrized gradient
///   (the plain `Trace_ELBO`), the reference the others are checked against.
///
/// A family that cannot do what is asked falls back to `Standard` (flows and implicit
/// generators have no closed-form entropy; the non-invertible flows cannot evaluate log q
/// at a given point). Each family's docs say what it supports.
/// - [`Estimator::AnalyticKl`]: for a site whose prior is Normal (or LogNormal, a Normal
///   of the unconstrained value) with numeric parameters and whose guide is mean-field,
///   E_q[log p(z)] − E_q[log q(z)] is replaced by −KL(q‖p) in closed form (Pyro's
///   `TraceMeanField_ELBO`); every other site uses the analytic entropy where its family
///   has one, else the standard estimator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Estimator {
    #[default]
    PathDerivative,
    AnalyticEntropy,
    Standard,
    AnalyticKl,
}

/// One value of a family argument, as the compiler checked it (defaults filled in).
#[derive(Debug, Clone, PartialEq)]
pub enum FamilyArg {
    Number(f64),
    List(Vec<f64>),
    /// One of the names the compiler's catalogue lists for the argument.
    Name(&'static str),
    /// Left for the family to choose from the dimension (e.g. LowRank's rank).
    Auto,
    /// The stacked layers of a flow, in the order they apply to the base draw.
    Layers(Vec<FlowLayer>),
}

/// One block of a flow, e.g. `RealNVP(layers = 4, hidden = 32)`.
#[derive(Debug, Clone, PartialEq)]
pub struct FlowLayer {
    pub kind: &'static str,
    pub args: FamilyArgs,
}

/// The arguments of a family (or of a flow layer) by name.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FamilyArgs(pub Vec<(&'static str, FamilyArg)>);

impl FamilyArgs {
    pub fn get(&self, name: &str) -> Option<&FamilyArg> {
        self.0.iter().find(|(k, _)| *k == name).map(|(_, v)| v)
    }

    /// A numeric argument; `None` when absent or `Auto`.
    pub fn number(&self, name: &str) -> Option<f64> {
        match self.get(name) {
            Some(FamilyArg::Number(v)) => Some(*v),
            _ => None,
        }
    }

    /// A count argument (the compiler has checked it is a positive integer).
    pub fn count(&self, name: &str) -> Option<usize> {
        self.number(name).map(|v| v as usize)
    }

    pub fn list(&self, name: &str) -> Option<&[f64]> {
        match self.get(name) {
            Some(FamilyArg::List(v)) => Some(v),
            _ => None,
        }
    }

    pub fn name(&self, name: &str) -> Option<&'static str> {
        match self.get(name) {
            Some(FamilyArg::Name(v)) => Some(v),
            _ => None,
        }
    }

    pub fn layers(&self, name: &str) -> &[FlowLayer] {
        match self.get(name) {
            Some(FamilyArg::Layers(v)) => v,
            _ => &[],
        }
    }
}

/// Draws from a family: `(particles, dim)` values and the per-particle term that stands
/// for log q in the ELBO (see [`Estimator`]).
pub struct FamilyDraw<D: Backend, T: Tape<D>> {
    pub z: Particles<D, T>,
    pub log_q: PerParticle<D, T>,
}

/// A variational family over some vector `z` of dimension `dim` (one or several sites
/// flattened and concatenated, which is how a family becomes joint over sites).
/// Implemented in the stdlib (`MeanField`, `FullRank`, ...).
pub trait GuideFamily<D: Backend>: Sized {
    /// Is log p(x, z) − log q(z) of a particle an importance ratio of q (log q the draw's
    /// exact log density, and log p evaluated at that same draw)? Not for a family whose
    /// entropy is an approximation, nor for one whose model call rewrites the draw.
    const EXACT_LOG_Q: bool = true;
    /// Registers the family's parameters under `name` and returns the family.
    fn build(params: &mut ParamStore<D>, name: &str, dim: usize, args: &FamilyArgs) -> Self;
    /// Starts the family where the fit's initialisation says (see [`FamilyStart`]): in the
    /// frame of the Laplace Gaussian over the coordinates it covers ([`crate::frame`]), at
    /// the given locations elsewhere. `label` is the name the family was built under.
    fn start(&mut self, params: &mut ParamStore<D>, label: &str, start: &FamilyStart);
    /// `particles` reparametrized draws and their log q term under `estimator`.
    fn sample<T: Tape<D>>(
        &self,
        params: &ParamStore<D>,
        particles: usize,
        estimator: Estimator,
    ) -> FamilyDraw<D, T>;
    /// The factor on the prior terms of the sites this family covers during fitting
    /// (1 except where a family asks otherwise, like the implicit generator's option).
    fn prior_weight(&self) -> f32 {
        1.0
    }
    /// The factor on this family's log q term during fitting (1 except where a family asks
    /// otherwise).
    fn entropy_weight(&self) -> f32 {
        1.0
    }
}
