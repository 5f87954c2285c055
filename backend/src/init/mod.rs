//! Where a fit starts the guide ([`Init`], `FitOptions::init`).
//!
//! By default ([`Init::Auto`]) a guide no fit has touched starts at the Laplace
//! approximation of the posterior wherever every latent site is global: the mode of the
//! log joint in the guide's unconstrained coordinates and the Hessian there. Each family
//! then starts at that Gaussian, in a frame that makes its coordinates posterior-sized
//! ([`crate::frame`]), which is what lets one learning rate serve an intercept of 6·10⁴
//! and a coefficient whose sd is 10⁻³. Sites that are a net's weights start at random
//! (Glorot-uniform) locations instead, so that no two hidden units start alike, and the
//! approximation covers the other sites given those weights.

mod laplace;
mod lbfgs;
mod log_joint;

pub use crate::start::{FamilyStart, Start, INIT_SCALE};
pub use laplace::MAX_LAPLACE_DIM;

use crate::data::Array;
use crate::device::Backend;
use crate::error::{FitError, InitError};
use crate::guide::checked_rows;
use crate::guide::Guide;
use crate::latent::{LatentSpec, ParamInit};
use crate::model::{Model, ModelData};
use log_joint::{Layout, LogJoint};

/// How a fit starts its guide.
///
/// A start sets each family's location and scale (and frame, see [`crate::frame`]) and a
/// `param`'s point; what a family learns beyond a Gaussian — a `LowRank` factor W, a flow's
/// layers, an implicit generator's hidden weights — is left as it is (as built, or as the
/// last fit left it), so that restarting a fitted guide moves only its Gaussian part.
/// A net's weights (sites drawn for a `net` call) start Glorot-uniform with sds of a
/// hundredth of each layer's Glorot bound under `Auto`, `Laplace`, `Map` and `Prior`;
/// under an explicit `Zero` or `Values` they start at 0 with the usual 0.1.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Init {
    /// On a guide no fit has started yet: [`Init::Laplace`] where every latent site is
    /// global and none is a net's weights; [`Init::Map`] where some are (a Laplace frame
    /// fitted to a random net would hold a noise sd near the random net's residuals);
    /// [`Init::Zero`] where a site is local. Where the Laplace approximation fails it falls
    /// back, and says so in the report: to the mode alone where the mode is flat along
    /// some site, else (no mode) to [`Init::Prior`]. A guide that has been fitted, or a fit
    /// with frozen parameters, continues where it is ([`Init::Current`]).
    #[default]
    Auto,
    /// The Laplace approximation N(m, H⁻¹) at the mode m of the log joint in the guide's
    /// unconstrained coordinates (H the Hessian of −log p there): `MeanField` in the
    /// diagonal frame of its mean-field optimum's sds 1/√H_jj; `FullRank`, `LowRank` and a
    /// flow's base in the frame S = chol(H⁻¹), starting at N(0, I) in it (so L = S); the
    /// implicit generator's output at the mode in that frame; a model `param` at the mode. A
    /// mode that cannot be found is a [`FitError::Init`] naming the site. Covers at most
    /// [`MAX_LAPLACE_DIM`] coordinates (beyond, the families start at the mode alone).
    Laplace,
    /// The families' locations at the mode, their scales the usual 0.1.
    Map,
    /// The locations at each prior's median (0 where the prior's arguments are not
    /// numbers), the scales 0.1.
    Prior,
    /// Every location 0 and every scale 0.1 (ravi's start before there was a choice).
    Zero,
    /// Given values, per latent site by name and on its support (a positive site's values
    /// are positive); every other site starts as with [`Init::Zero`].
    Values(Vec<(String, Vec<f32>)>),
    /// The guide's parameters as they are.
    Current,
}

/// What the initialisation did.
#[derive(Debug, Clone, PartialEq)]
pub struct InitReport {
    /// The start the guide took (never `Auto`).
    pub method: Init,
    /// The log joint at the mode, where a mode was found.
    pub log_joint_at_mode: Option<f64>,
    /// How many coordinates the Laplace approximation covered.
    pub laplace_dim: usize,
    /// Why the start is not what was asked (an `Auto` start that fell back), if it is not.
    pub note: Option<String>,
    /// Wall-clock seconds the start took.
    pub seconds: f64,
}

/// Starts `guide` for a fit on `data` as `init` says; `engine`: the search for the mode may
/// run on the host engine ([`crate::fused`], as `FitOptions::fused` allows).
pub fn initialize<G: Guide<D>, D: Backend>(
    guide: &mut G,
    data: &<G::Model as Model>::Data,
    init: &Init,
    engine: bool,
) -> Result<InitReport, FitError> {
    let clock = std::time::Instant::now();
    let latents = G::Model::latents();
    let all_global = latents.iter().all(|l| !l.local);
    let auto = *init == Init::Auto;
    // With a net's weights at random, a Gaussian fitted to the other sites given them would
    // be the wrong frame: as the weights learn, a noise sd has to travel from the random
    // net's residuals to the data's noise, dozens of its conditional sds.
    let nets = latents.iter().any(|l| l.net.is_some());
    let method = match init {
        Init::Auto if guide.params().is_started() => Init::Current,
        Init::Auto if all_global && nets => Init::Map,
        Init::Auto if all_global => Init::Laplace,
        Init::Auto => Init::Zero,
        other => other.clone(),
    };
    if matches!(method, Init::Laplace | Init::Map) && !all_global {
        let local = latents.iter().find(|l| l.local).map_or("?", |l| l.name);
        return Err(FitError::Unsupported(format!(
            "`Init::{method:?}` searches for the mode over global latent sites; `{local}` is local (one value per data row): start with `Init::Zero` or `Init::Prior`"
        )));
    }
    let mut report = InitReport {
        method: method.clone(),
        log_joint_at_mode: None,
        laplace_dim: 0,
        note: None,
        seconds: 0.0,
    };
    let glorot = auto || !matches!(method, Init::Zero | Init::Values(_));
    let start = match &method {
        Init::Current | Init::Auto => None,
        Init::Zero => Some(Start::values(base_point(guide, latents, false, glorot))),
        Init::Prior => Some(Start::values(base_point(guide, latents, true, glorot))),
        Init::Values(values) => Some(Start::values(given(
            base_point(guide, latents, false, glorot),
            latents,
            values,
        )?)),
        Init::Map | Init::Laplace => {
            let search = Search::new(guide, data, latents, glorot, engine)?;
            let laplace = method == Init::Laplace;
            match search.run(laplace) {
                Ok((start, log_joint, dim)) => {
                    report.log_joint_at_mode = Some(log_joint);
                    report.laplace_dim = dim;
                    if laplace && dim == 0 && search.covered.len() > MAX_LAPLACE_DIM {
                        report.note = Some(format!(
                            "{} coordinates are more than the Laplace approximation covers ({MAX_LAPLACE_DIM}): the families start at the mode",
                            search.covered.len()
                        ));
                    }
                    Some(start)
                }
                Err(e) if auto => {
                    // the default falls back rather than fail: to the mode alone where
                    // there is one (a flat direction), else to the prior's medians
                    let mode_alone = match &e {
                        InitError::NotPositiveDefinite { .. } if laplace => search.run(false).ok(),
                        _ => None,
                    };
                    let fallback = match mode_alone {
                        Some((start, log_joint, _)) => {
                            report.method = Init::Map;
                            report.log_joint_at_mode = Some(log_joint);
                            start
                        }
                        None => {
                            report.method = Init::Prior;
                            Start::values(base_point(guide, latents, true, glorot))
                        }
                    };
                    report.note = Some(format!(
                        "no `Init::{method:?}` start ({e}); started as `Init::{:?}`",
                        report.method
                    ));
                    Some(fallback)
                }
                Err(e) => return Err(FitError::Init(e)),
            }
        }
    };
    if let Some(start) = start {
        let spreads: Vec<Option<Vec<f64>>> = latents
            .iter()
            .map(|l| l.net.filter(|_| glorot).map(net_spread))
            .collect();
        guide.start(&start.with_spread(&spreads));
    }
    guide.params_mut().mark_started();
    report.seconds = clock.elapsed().as_secs_f64();
    Ok(report)
}

/// Per site, its start before any search: a `param` where it is; a net's weights
/// Glorot-uniform (when `glorot`); every other site at its prior's median (`median`) or 0.
fn base_point<G: Guide<D>, D: Backend>(
    guide: &G,
    latents: &[LatentSpec],
    median: bool,
    glorot: bool,
) -> Vec<Option<Vec<f64>>> {
    let store = guide.params();
    latents
        .iter()
        .map(|l| {
            let n = l.unconstrained_numel();
            if l.param.is_some() {
                // a point mass sits under the site's name
                return None;
            }
            if let (Some(blocks), true) = (l.net, glorot) {
                let init = ParamInit::Glorot(blocks);
                let u: dfdx::tensor::Tensor<(usize,), f32, D> =
                    dfdx::tensor::SampleTensor::sample_uniform_like(store.device(), &(n,));
                let mut draws = u.as_vec().into_iter();
                let values = init.values(n, &mut || draws.next().unwrap_or(0.5));
                return Some(values.into_iter().map(f64::from).collect());
            }
            let centre = if median {
                l.prior_median.map_or(0.0, f64::from)
            } else {
                0.0
            };
            Some(vec![centre; n])
        })
        .collect()
}

/// The sd a net's weights start at: a hundredth of each layer's Glorot bound
/// √(6 / (fan_in + fan_out)) (biases as their layer's weights), so that the locations learn
/// the function before the noise of the draws swamps it. On a 1-50-1 tanh net fitted to
/// sin(3x) plus noise of sd 0.1 (200 rows, 5000 steps), started at the usual 0.1 a
/// mean-field guide stays at the prior (noise sd 0.81); at a tenth, a hundredth and 1/300
/// of the bound the mean-field noise sd is 0.16 each time and the full-rank one 0.19,
/// 0.115 and 0.108 (the full-rank scale's rows are in units of these sds, see the stdlib's
/// `FullRank`).
fn net_spread(blocks: &[crate::latent::InitBlock]) -> Vec<f64> {
    blocks
        .iter()
        .flat_map(|b| {
            let bound = (6.0 / (b.fan_in + b.fan_out).max(1) as f64).sqrt();
            std::iter::repeat_n(0.01 * bound, b.weights + b.bias)
        })
        .collect()
}

/// `base` with the named sites at the given values, mapped to the guide's coordinates.
fn given(
    mut base: Vec<Option<Vec<f64>>>,
    latents: &[LatentSpec],
    values: &[(String, Vec<f32>)],
) -> Result<Vec<Option<Vec<f64>>>, FitError> {
    for (name, v) in values {
        let Some(i) = latents.iter().position(|l| l.name == name) else {
            let names: Vec<&str> = latents.iter().map(|l| l.name).collect();
            return Err(FitError::Options(format!(
                "init: the model has no latent site `{name}` (it has {})",
                names.join(", ")
            )));
        };
        let l = &latents[i];
        if l.local {
            return Err(FitError::Options(format!(
                "init: `{name}` is a local site (one value per data row); its start cannot be given"
            )));
        }
        if v.len() != l.numel() {
            return Err(FitError::Options(format!(
                "init: site `{name}` has {} values, {} given",
                l.numel(),
                v.len()
            )));
        }
        base[i] = Some(l.unconstrain(v).ok_or_else(|| {
            FitError::Options(format!(
                "init: the values given for site `{name}` are not all on its support ({:?})",
                l.support
            ))
        })?);
    }
    Ok(base)
}

/// A search for the mode: the data on the guide's device, the coordinates.
struct Search<'a> {
    log_joint: Box<dyn LogJoint + 'a>,
    layout: Layout,
    latents: &'static [LatentSpec],
    start: Vec<f64>,
    /// Per coordinate: moved by the search (not a net's weights, not a net's `param`).
    free: Vec<bool>,
    /// The coordinates the approximation covers (free latent coordinates, not `param`s).
    covered: Vec<usize>,
    base: Vec<Option<Vec<f64>>>,
}

impl<'a> Search<'a> {
    /// `engine`: evaluate on the host engine where the guide has a program for it and the
    /// device is the CPU (else the dfdx graph).
    fn new<G: Guide<D, Model = M>, M: Model, D: Backend>(
        guide: &G,
        data: &'a M::Data,
        latents: &'static [LatentSpec],
        glorot: bool,
        engine: bool,
    ) -> Result<Self, FitError> {
        let rows = checked_rows(guide, data)?;
        let arrays: Vec<&Array> = data.arrays();
        let layout = Layout::of(latents);
        let host = match engine {
            true => crate::fused::model_engine::ModelEngine::for_guide::<G, D>(),
            false => None,
        };
        let log_joint: Box<dyn LogJoint + 'a> = match host {
            Some(fused) => Box::new(log_joint::Host {
                engine: std::cell::RefCell::new(fused),
                specs: M::inputs(),
                arrays: arrays.clone(),
                sizes: layout.sizes.clone(),
            }),
            None => Box::new(log_joint::Graph::<M, D> {
                dev: guide.params().device().clone(),
                arrays: arrays.clone(),
                rows,
                layout: layout.clone(),
                model: std::marker::PhantomData,
                splits_by_rows: std::cell::OnceCell::new(),
            }),
        };
        let base = base_point(guide, latents, true, glorot);
        let store = guide.params();
        let mut start = Vec::with_capacity(layout.len());
        let mut free = Vec::with_capacity(layout.len());
        let mut covered = Vec::new();
        for (l, b) in latents.iter().zip(&base) {
            let values: Vec<f64> = match b {
                Some(v) => v.clone(),
                None => store
                    .find(l.name)
                    .map(|id| store.get(id).as_vec().into_iter().map(f64::from).collect())
                    .unwrap_or_else(|| vec![0.0; l.unconstrained_numel()]),
            };
            let moves = l.net.is_none() && !matches!(l.param, Some(ParamInit::Glorot(_)));
            for _ in 0..values.len() {
                if moves && l.param.is_none() {
                    covered.push(start.len());
                }
                free.push(moves);
                start.push(0.0);
            }
            let at = start.len() - values.len();
            start[at..].copy_from_slice(&values);
        }
        Ok(Search {
            log_joint,
            layout,
            latents,
            start,
            free,
            covered,
            base,
        })
    }

    /// The mode (and with `laplace` the approximation): the start, the log joint at the
    /// mode, and how many coordinates the approximation covers.
    fn run(&self, laplace: bool) -> Result<(Start, f64, usize), InitError> {
        let all: Vec<usize> = Vec::new();
        let cover = laplace && !self.covered.is_empty() && self.covered.len() <= MAX_LAPLACE_DIM;
        let problem = laplace::Problem {
            log_joint: self.log_joint.as_ref(),
            layout: &self.layout,
            latents: self.latents,
            free: &self.free,
            covered: if cover { &self.covered } else { &all },
            conditional_sd: std::cell::RefCell::new(vec![None; self.start.len()]),
            origin: &self.start,
        };
        let (mut point, mut log_joint) = problem.mode(self.start.clone())?;
        let mut start = None;
        if cover {
            let approx = problem.laplace(point)?;
            point = approx.point;
            log_joint = approx.log_joint;
            start = Some((approx.cov, approx.precision_diag));
        }
        // per site: its values at the mode; the covered coordinates flagged
        let mut sites = Vec::with_capacity(self.latents.len());
        let mut flags = Vec::with_capacity(self.latents.len());
        for (i, (&off, &n)) in self
            .layout
            .offsets
            .iter()
            .zip(&self.layout.sizes)
            .enumerate()
        {
            let values = point[off..off + n].to_vec();
            sites.push(match (&self.base[i], self.latents[i].param) {
                // a `param` moved by the search takes the mode; a net's stays
                (None, Some(ParamInit::Value(_))) => Some(values),
                (None, _) => None,
                (Some(_), _) => Some(values),
            });
            flags.push(
                (off..off + n)
                    .map(|k| cover && self.covered.binary_search(&k).is_ok())
                    .collect(),
            );
        }
        let dim = if cover { self.covered.len() } else { 0 };
        Ok(match start {
            Some((cov, precision_diag)) => {
                let mut start = Start::values(sites);
                start.covered = flags;
                start.cov = cov;
                start.precision_diag = precision_diag;
                (start, log_joint, dim)
            }
            None => (Start::values(sites), log_joint, dim),
        })
    }
}
