//! The contract between a guide and the stdlib's variational families, and the choice of
//! how each family's log q enters the ELBO.

use crate::device::{Backend, Tape};
pub use crate::estimator::Estimator;
use crate::frame::Frame;
use crate::params::{ParamId, ParamStore};
use crate::particles::{Particles, PerParticle};
use crate::start::FamilyStart;

/// One value of a family argument, as the compiler checked it (defaults filled in).
#[derive(Debug, Clone, PartialEq)]
pub enum FamilyArg {
    /// A number.
    Number(f64),
    /// A list of numbers (`hidden = [64, 64]`).
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
    /// The layer's name in the catalogue (`"RealNVP"`, `"Planar"`, ...).
    pub kind: &'static str,
    /// Its arguments, defaults filled in.
    pub args: FamilyArgs,
}

/// The arguments of a family (or of a flow layer) by name.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FamilyArgs(pub Vec<(&'static str, FamilyArg)>);

impl FamilyArgs {
    /// The argument called `name`, if the family has one.
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

    /// A list argument; `None` when absent or not a list.
    pub fn list(&self, name: &str) -> Option<&[f64]> {
        match self.get(name) {
            Some(FamilyArg::List(v)) => Some(v),
            _ => None,
        }
    }

    /// A name argument (`bound = Exact`); `None` when absent or not a name.
    pub fn name(&self, name: &str) -> Option<&'static str> {
        match self.get(name) {
            Some(FamilyArg::Name(v)) => Some(v),
            _ => None,
        }
    }

    /// The flow layers of a `Layers` argument; empty when absent.
    pub fn layers(&self, name: &str) -> &[FlowLayer] {
        match self.get(name) {
            Some(FamilyArg::Layers(v)) => v,
            _ => &[],
        }
    }
}

/// A Gaussian family's parameters as the host engine reads them, by id: z = shift + S u
/// with u ~ N(μ, L Lᵀ), μ = `loc`, L's diagonal softplus(`rho`) + the family's floor (times
/// `unit`, when given, row by row), L's strictly lower part `lower` (full rank only), and
/// the frame (shift, S) when the family was started in one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HostGaussian {
    /// μ, `dim` values.
    pub loc: ParamId,
    /// ρ, `dim` values: L's diagonal is softplus(ρ) + floor.
    pub rho: ParamId,
    /// L's strictly lower part, `dim × dim` row-major (full rank only; the rest is ignored).
    pub lower: Option<ParamId>,
    /// A constant scale per row of L (each coordinate's starting sd), if the family has one.
    pub unit: Option<ParamId>,
    /// The frame (shift, S) the family works in, if it was started in one.
    pub frame: Option<Frame>,
}

impl HostGaussian {
    /// A mean-field Gaussian with no frame (a guide-program line's `param`s).
    pub fn mean_field(loc: ParamId, rho: ParamId) -> Self {
        HostGaussian {
            loc,
            rho,
            lower: None,
            unit: None,
            frame: None,
        }
    }
}

/// Draws from a family: `(particles, dim)` values and the per-particle term that stands
/// for log q in the ELBO (see [`Estimator`]).
pub struct FamilyDraw<D: Backend, T: Tape<D>> {
    /// The draws, `(particles, dim)`, on ℝ (before any site's map onto its support).
    pub z: Particles<D, T>,
    /// Per particle, the term that stands for log q of the draw in the ELBO.
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
    /// The family's parameters for the host engine, when it is a Gaussian the engine runs
    /// (`MeanField`, `FullRank`).
    fn host_gaussian(&self) -> Option<HostGaussian> {
        None
    }
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
