//! Stochastic variational inference: the one `fit` loop.

use dfdx::prelude::*;
use std::fmt;
use std::io::IsTerminal as _;

use dfdx::tensor::{NoneTape, OwnedTape};
use rand::seq::SliceRandom as _;
use rand::SeedableRng as _;

use crate::data::{check_inputs, Array, Batch, DataError};
use crate::device::Backend;
use crate::elbo::{
    elbo_particles, elbo_terms, first_non_finite, sum_terms, untaped_views, GUIDE_TERM,
};
use crate::family::Estimator;
use crate::init::{initialize, Init, InitReport};
use crate::iwae::iwae_rows;
use crate::model::{Guide, Model, ModelData, PerParticle};
use crate::optim::{Adam, AdamConfig};

/// What to do when a step's ELBO is NaN or infinite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnNonFinite {
    /// Stop with [`FitError::NonFinite`], naming the step, the value and the site at fault.
    Stop,
    /// Skip the step (no update), count it in [`FitReport::skipped`]; stop after `max` skips.
    Skip { max: usize },
}

/// The learning rate over the steps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Schedule {
    Constant(f32),
    /// Geometric decay from `start` at the first step to `end` at the last: large steps to
    /// find the optimum, small ones to settle the Monte Carlo noise around it.
    Exponential {
        start: f32,
        end: f32,
    },
}

impl Schedule {
    pub fn at(&self, step: usize, steps: usize) -> f32 {
        match *self {
            Schedule::Constant(lr) => lr,
            Schedule::Exponential { start, end } => {
                let frac = step as f32 / (steps.max(2) - 1) as f32;
                start * (end / start).powf(frac)
            }
        }
    }
}

/// What a fit maximises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Objective {
    /// The evidence lower bound, its `particles` draws averaged.
    #[default]
    Elbo,
    /// The importance-weighted bound with K = `particles` draws per data row (see
    /// [`crate::iwae`]): tighter than the ELBO, for models whose latent sites are all
    /// local. Its guide's log q enters with the standard estimator.
    Iwae,
}

#[derive(Debug, Clone)]
pub struct FitOptions {
    pub steps: usize,
    /// Monte Carlo particles per step (the leading tensor axis).
    pub particles: usize,
    pub schedule: Schedule,
    pub adam: AdamConfig,
    /// Rows per minibatch; `None` uses all rows every step. Observed sites are scaled by
    /// total rows / batch rows, so every step estimates the full-data ELBO.
    pub batch_size: Option<usize>,
    /// Seeds the minibatch order (the device's seed fixes the Monte Carlo noise).
    pub seed: u64,
    /// Clip the global gradient norm to this value.
    pub clip_norm: Option<f32>,
    pub on_non_finite: OnNonFinite,
    /// How each guide family's log q enters the ELBO gradient; see [`Estimator`].
    pub estimator: Estimator,
    /// The fraction of the steps, at the start, that use the analytic entropy instead of
    /// `estimator`. Far from the optimum the analytic entropy's gradient is the quieter one;
    /// near it the path derivative's noise vanishes (default 0.5: half and half).
    pub analytic_warmup: f32,
    /// Show a progress bar (only ever on a terminal).
    pub progress: bool,
    pub objective: Objective,
    /// The relaxation temperature over the steps, read as `temperature` by the model and
    /// by amortized guides of relaxed sites: `Constant(t)`, or annealed geometrically
    /// with `Exponential { start, end }` (a hot start keeps relaxed gradients quiet; a
    /// cold end brings the relaxation close to the discrete variable).
    pub temperature: Schedule,
    /// Guide parameters (by store name, e.g. a model `param` `dec`, or `w.loc`) that the
    /// fit leaves as they are: a decoder kept fixed while a new guide is fitted to new
    /// rows, say. An unknown name is a [`FitError::Options`].
    pub frozen: Vec<String>,
    /// Run steps on the host engine ([`crate::fused`]) when the guide has a program for it,
    /// the device is the CPU and the objective the ELBO (default true). `false` keeps every step on the dfdx graph, the reference.
    pub fused: bool,
    /// Where the guide starts (see [`Init`]): by default the Laplace approximation wherever
    /// every latent site is global, on a guide no fit has started.
    pub init: Init,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions {
            steps: 5000,
            particles: 8,
            schedule: Schedule::Exponential {
                start: 0.02,
                end: 0.0002,
            },
            adam: AdamConfig::default(),
            batch_size: None,
            seed: 0,
            clip_norm: None,
            on_non_finite: OnNonFinite::Stop,
            estimator: Estimator::default(),
            analytic_warmup: 0.5,
            progress: true,
            objective: Objective::Elbo,
            temperature: Schedule::Constant(1.0),
            frozen: Vec::new(),
            fused: true,
            init: Init::Auto,
        }
    }
}

/// What a fit returns.
#[derive(Debug, Clone, PartialEq)]
pub struct FitReport {
    /// The ELBO estimate of every step (minibatch steps estimate the full-data ELBO).
    pub elbo: Vec<f32>,
    /// Steps skipped for a non-finite ELBO (with [`OnNonFinite::Skip`]).
    pub skipped: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub enum FitError {
    Data(DataError),
    /// The ELBO was NaN or infinite at `step`; `culprit` names the site or parameter at fault
    /// when a diagnostic pass finds one.
    NonFinite {
        step: usize,
        value: f32,
        culprit: Option<String>,
    },
    Options(String),
    /// What was asked cannot be done for this model, guide or data (a bound the model has
    /// no form for; a guide with per-row parameters for other rows); the message says why.
    Unsupported(String),
    /// The initialisation found no mode to start from (see [`crate::init`]).
    Init(crate::init::InitError),
}

impl fmt::Display for FitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FitError::Data(e) => write!(f, "{e}"),
            FitError::NonFinite {
                step,
                value,
                culprit,
            } => {
                write!(f, "the ELBO is {value} at step {step}")?;
                match culprit {
                    Some(c) => write!(f, "; {c}"),
                    None => Ok(()),
                }
            }
            FitError::Options(m) => write!(f, "invalid fit options: {m}"),
            FitError::Unsupported(m) => f.write_str(m),
            FitError::Init(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for FitError {}

impl From<DataError> for FitError {
    fn from(e: DataError) -> Self {
        FitError::Data(e)
    }
}

/// Maximises the ELBO of `guide` for its model on `data` with Adam.
pub fn fit<G, D>(
    guide: &mut G,
    data: &<G::Model as Model>::Data,
    opts: &FitOptions,
) -> Result<FitReport, FitError>
where
    G: Guide<D>,
    D: Backend,
{
    let mut trainer = Trainer::new(guide, data, opts)?;
    let bar = progress_bar(opts);
    let mut report = FitReport {
        elbo: Vec::with_capacity(opts.steps),
        skipped: 0,
    };
    for step in 0..opts.steps {
        let outcome = match trainer.step() {
            Ok(o) => o,
            Err(e) => {
                if let Some(b) = &bar {
                    b.abandon();
                }
                return Err(e);
            }
        };
        let value = match outcome {
            Step::Taken(v) => v,
            Step::Skipped(v) => {
                report.skipped += 1;
                v
            }
        };
        report.elbo.push(value);
        if let Some(b) = &bar {
            if step % 50 == 0 || step + 1 == opts.steps {
                b.set_position(step as u64 + 1);
                b.set_message(format!("elbo {value:.3}"));
            }
        }
    }
    if let Some(b) = bar {
        b.finish();
    }
    Ok(report)
}

/// What one [`Trainer::step`] did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Step {
    /// An Adam step, with the ELBO estimate it followed.
    Taken(f32),
    /// A non-finite ELBO skipped under [`OnNonFinite::Skip`].
    Skipped(f32),
}

/// The fit loop one step at a time: data checked and uploaded once, minibatches drawn,
/// Adam's state kept. [`fit`] runs it `steps` times; benchmarks time [`Trainer::step`].
pub struct Trainer<'a, G: Guide<D>, D: Backend> {
    guide: &'a mut G,
    arrays: Vec<&'a Array>,
    opts: FitOptions,
    rows: usize,
    batch_rows: usize,
    full: Batch<D>,
    order: Vec<usize>,
    rng: rand::rngs::StdRng,
    cursor: usize,
    adam: Adam<D>,
    /// The host engine, when it runs this fit's steps.
    fused: Option<crate::fused::step::Fused>,
    step: usize,
    skipped: usize,
    init: InitReport,
}

impl<'a, G: Guide<D>, D: Backend> Trainer<'a, G, D> {
    pub fn new(
        guide: &'a mut G,
        data: &'a <G::Model as Model>::Data,
        opts: &FitOptions,
    ) -> Result<Self, FitError> {
        if opts.particles == 0 {
            return Err(FitError::Options("particles must be at least 1".into()));
        }
        let specs = G::Model::inputs();
        let arrays = data.arrays();
        let rows = check_inputs(G::Model::NAME, specs, &arrays)?;
        if opts.objective == Objective::Iwae {
            crate::iwae::check_supported::<G::Model>()?;
        }
        // Per-row guide parameters (a mean-field local site) are sized by the data.
        guide.prepare(rows);
        check_rows(&*guide, rows)?;
        let init = if opts.frozen.is_empty() || opts.init != Init::Auto {
            initialize(guide, data, &opts.init)?
        } else {
            // frozen parameters are someone's fitted state: an automatic start keeps them
            initialize(guide, data, &Init::Current)?
        };
        let dev = guide.params().device().clone();
        let batch_rows = opts.batch_size.map_or(rows, |b| b.clamp(1, rows));
        let full = Batch::upload(&dev, specs, &arrays, None, rows);
        let mut adam = Adam::new(guide.params(), opts.adam);
        let names: Vec<&str> = guide.params().iter().map(|(n, _)| n).collect();
        let mut frozen = vec![false; names.len()];
        for name in &opts.frozen {
            let index = names.iter().position(|n| n == name).ok_or_else(|| {
                FitError::Options(format!(
                    "frozen: the guide has no parameter `{name}` (it has {})",
                    names.join(", ")
                ))
            })?;
            adam.freeze(index);
            frozen[index] = true;
        }
        let on_host = std::any::TypeId::of::<D>() == std::any::TypeId::of::<crate::Cpu>();
        let fused = match G::fused_program() {
            Some(program) if opts.fused && on_host && opts.objective == Objective::Elbo => {
                crate::fused::step::Fused::new(program, guide.params(), opts.adam, &frozen)
            }
            _ => None,
        };
        Ok(Trainer {
            guide,
            arrays,
            opts: opts.clone(),
            rows,
            batch_rows,
            full,
            order: (0..rows).collect(),
            rng: rand::rngs::StdRng::seed_from_u64(opts.seed),
            cursor: rows, // forces a shuffle before the first minibatch
            adam,
            fused,
            step: 0,
            skipped: 0,
            init,
        })
    }

    /// Where the guide started.
    pub fn init_report(&self) -> &InitReport {
        &self.init
    }

    /// Do this fit's steps run on the host engine ([`crate::fused`])?
    pub fn is_fused(&self) -> bool {
        self.fused.is_some()
    }

    /// The guide being fitted, as it stands after the steps taken so far.
    pub fn guide(&mut self) -> &G {
        if let Some(fused) = &self.fused {
            fused.write_back(self.guide.params_mut());
        }
        self.guide
    }

    /// One step: a minibatch (or all rows), the ELBO estimate, its gradient, Adam.
    pub fn step(&mut self) -> Result<Step, FitError> {
        let (opts, step) = (&self.opts, self.step);
        self.step += 1;
        let idx = (self.batch_rows < self.rows).then(|| {
            if self.cursor + self.batch_rows > self.rows {
                self.order.shuffle(&mut self.rng);
                self.cursor = 0;
            }
            self.cursor += self.batch_rows;
            &self.order[self.cursor - self.batch_rows..self.cursor]
        });
        let scale = self.rows as f32 / self.batch_rows as f32;
        let estimator = if (step as f32) < opts.analytic_warmup * opts.steps as f32
            && opts.estimator != Estimator::AnalyticKl
        {
            Estimator::AnalyticEntropy
        } else {
            opts.estimator
        };
        let lr = opts.schedule.at(step, opts.steps);
        if let Some(fused) = &mut self.fused {
            let data = (G::Model::inputs(), self.arrays.as_slice());
            let outcome = fused.step(
                self.guide.params().device(),
                data,
                idx,
                opts.particles,
                scale,
                estimator,
                (lr, opts.clip_norm),
            );
            return match outcome {
                Ok(value) => Ok(Step::Taken(value)),
                Err(bad) => match opts.on_non_finite {
                    OnNonFinite::Skip { max } if self.skipped < max => {
                        self.skipped += 1;
                        Ok(Step::Skipped(bad.value))
                    }
                    _ => Err(FitError::NonFinite {
                        step,
                        value: bad.value,
                        culprit: bad.culprit,
                    }),
                },
            };
        }
        let batch = match idx {
            Some(idx) => {
                let dev = self.guide.params().device().clone();
                Batch::upload(&dev, G::Model::inputs(), &self.arrays, Some(idx), self.rows)
            }
            None => self.full.clone(),
        }
        .with_temperature(opts.temperature.at(step, opts.steps));
        let (loss, views) = match opts.objective {
            Objective::Elbo => {
                let terms = elbo_terms::<G, D, OwnedTape<f32, D>>(
                    self.guide,
                    &batch,
                    opts.particles,
                    scale,
                    estimator,
                    true,
                );
                let views = untaped_views(&terms);
                (sum_terms(terms).mean::<(), _>().negate(), views)
            }
            Objective::Iwae => {
                let rows =
                    iwae_rows::<G, D, OwnedTape<f32, D>>(self.guide, &batch, opts.particles)?;
                ((rows.sum::<(), _>() * scale).negate(), Vec::new())
            }
        };
        let value = -loss.array();
        if !value.is_finite() {
            return match opts.on_non_finite {
                OnNonFinite::Skip { max } if self.skipped < max => {
                    self.skipped += 1;
                    Ok(Step::Skipped(value))
                }
                _ => Err(FitError::NonFinite {
                    step,
                    value,
                    culprit: culprit(self.guide, &views),
                }),
            };
        }
        let grads = loss.backward();
        let clip = opts.clip_norm;
        self.adam.step(self.guide.params_mut(), &grads, lr, clip);
        Ok(Step::Taken(value))
    }
}

/// A fit on the host engine keeps the parameters on the host between steps: the guide's
/// store gets them when the trainer is done (or asked for its guide).
impl<G: Guide<D>, D: Backend> Drop for Trainer<'_, G, D> {
    fn drop(&mut self) {
        if let Some(fused) = &self.fused {
            fused.write_back(self.guide.params_mut());
        }
    }
}

fn progress_bar(opts: &FitOptions) -> Option<indicatif::ProgressBar> {
    if !opts.progress || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(opts.steps as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} {msg} [{elapsed} < {eta}]")
            .expect("static template"),
    );
    Some(bar)
}

/// After a non-finite ELBO: a parameter that went non-finite, or else the first term of the
/// failing pass (the guide's, then the model's sites in order) that holds a NaN or infinity.
fn culprit<G: Guide<D>, D: Backend>(
    guide: &G,
    terms: &[(&'static str, PerParticle<D, NoneTape>)],
) -> Option<String> {
    if let Some((name, v)) = guide.params().first_non_finite() {
        return Some(format!("guide parameter `{name}` holds {v}"));
    }
    first_non_finite(terms).map(|(site, v)| {
        if site == GUIDE_TERM {
            format!("the guide's log density is {}", -v)
        } else {
            format!("the log density of site `{site}` is {v}")
        }
    })
}

/// `data` checked against the model's inputs and the rows the guide holds: its rows.
pub(crate) fn checked_rows<G: Guide<D>, D: Backend>(
    guide: &G,
    data: &<G::Model as Model>::Data,
) -> Result<usize, FitError> {
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

/// The ELBO of `guide` on all of `data`, averaged over `particles` draws (in chunks, so a
/// large count stays within memory). Returned in f64 for comparison with exact values.
pub fn elbo<G, D>(
    guide: &G,
    data: &<G::Model as Model>::Data,
    particles: usize,
) -> Result<f64, FitError>
where
    G: Guide<D>,
    D: Backend,
{
    elbo_at(guide, data, particles, 1.0)
}

/// [`elbo`] at the relaxation `temperature` (for a model fitted with an annealed one).
pub fn elbo_at<G, D>(
    guide: &G,
    data: &<G::Model as Model>::Data,
    particles: usize,
    temperature: f32,
) -> Result<f64, FitError>
where
    G: Guide<D>,
    D: Backend,
{
    let draws = draws_at(guide, data, particles, temperature)?;
    Ok(draws.iter().sum::<f64>() / draws.len().max(1) as f64)
}

/// One ELBO estimate per draw, log p(x, z) − log q(z) with z ~ q: their mean is
/// [`elbo`], their spread gives its Monte Carlo standard error.
pub fn elbo_draws<G, D>(
    guide: &G,
    data: &<G::Model as Model>::Data,
    particles: usize,
) -> Result<Vec<f64>, FitError>
where
    G: Guide<D>,
    D: Backend,
{
    draws_at(guide, data, particles, 1.0)
}

fn draws_at<G, D>(
    guide: &G,
    data: &<G::Model as Model>::Data,
    particles: usize,
    temperature: f32,
) -> Result<Vec<f64>, FitError>
where
    G: Guide<D>,
    D: Backend,
{
    let batch = upload_all(guide, data, temperature)?;
    const CHUNK: usize = 250;
    let mut out = Vec::with_capacity(particles);
    while out.len() < particles {
        let s = CHUNK.min(particles - out.len());
        // The path-derivative value of log q is the exact density of the draw wherever a
        // family can evaluate one.
        let v = elbo_particles::<G, D, NoneTape>(guide, &batch, s, 1.0, Estimator::PathDerivative);
        out.extend(v.as_vec().into_iter().map(f64::from));
    }
    Ok(out)
}

/// One Monte Carlo estimate of the ELBO's gradient with respect to every guide parameter
/// (in the store's order), on the rows `batch` of `data` (all rows when `None`) with the
/// likelihood scaled to the whole data, as a fit step computes it. For studying estimators:
/// call it repeatedly at one guide state to measure the gradient's variance.
pub fn elbo_gradient<G, D>(
    guide: &G,
    data: &<G::Model as Model>::Data,
    batch: Option<&[usize]>,
    particles: usize,
    estimator: Estimator,
) -> Result<Vec<Vec<f32>>, FitError>
where
    G: Guide<D>,
    D: Backend,
{
    let rows = checked_rows(guide, data)?;
    let batch_rows = batch.map_or(rows, <[usize]>::len);
    let (specs, arrays) = (G::Model::inputs(), data.arrays());
    let uploaded = Batch::upload(guide.params().device(), specs, &arrays, batch, rows);
    let scale = rows as f32 / batch_rows.max(1) as f32;
    let terms =
        elbo_terms::<G, D, OwnedTape<f32, D>>(guide, &uploaded, particles, scale, estimator, true);
    let grads = sum_terms(terms).mean::<(), _>().backward();
    Ok(guide
        .params()
        .iter()
        .map(|(_, t)| grads.get(t).as_vec())
        .collect())
}
