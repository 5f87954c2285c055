//! The fit loop one step at a time.

use dfdx::prelude::*;
use dfdx::tensor::{NoneTape, OwnedTape};
use rand::seq::SliceRandom as _;
use rand::SeedableRng as _;

use super::converge::{Monitor, Verdict};
use super::options::{FitOptions, Objective, OnNonFinite};
use super::{Divergence, FitReport};
use crate::data::{check_inputs, check_observed, Array, Batch};
use crate::device::Backend;
use crate::elbo::{elbo_terms, first_non_finite, sum_terms, untaped_views, GUIDE_TERM};
use crate::error::FitError;
use crate::error::MAX_DIVERGENCES;
use crate::estimator::Estimator;
use crate::fused::model_engine::{ModelEngine, SiteRewrite};
use crate::fused::EngineChoice;
use crate::guide::check_rows;
use crate::guide::Guide;
use crate::init::{initialize, InitReport};
use crate::iwae::iwae_rows;
use crate::model::Rewrite;
use crate::model::{Model, ModelData};
use crate::optim::{Adam, OptimizerState};
use crate::params::ParamStore;
use crate::particles::PerParticle;

/// What one [`Trainer::step`] did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Step {
    /// An Adam step, with the ELBO estimate it followed.
    Taken(f32),
    /// A non-finite ELBO skipped under [`OnNonFinite::Skip`].
    Skipped(f32),
    /// An estimate far above every earlier one (a broken estimator, not progress): the
    /// guide was stepped back to its best parameters and the learning rate halved.
    SteppedBack(f32),
}

/// Where the fit is in its course.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    /// The analytic entropy stands in for the estimator (until the ELBO first converges,
    /// or `analytic_warmup` of the steps have run).
    Warmup,
    Main,
    /// Converged: the learning rate anneals from `from` to the schedule's end over
    /// `steps` steps starting at `start` while the iterates are averaged, then the fit
    /// stops with the average.
    Settle {
        start: usize,
        steps: usize,
        from: f32,
    },
    Done,
}

/// The running mean of the guide's parameters over the last steps of a fit (Polyak–
/// Ruppert averaging): near the optimum Adam's steps jitter the parameters by about the
/// learning rate times the gradient's noise, and the mean of many such steps is closer to
/// the optimum than any one of them (Dhaka et al., "Robust, Accurate Stochastic
/// Optimization for Variational Inference", 2020).
enum Average<D: Backend> {
    Host(Vec<Vec<f64>>, usize),
    Graph(Vec<dfdx::tensor::Tensor<(usize,), f32, D>>, usize),
}

/// The guide's parameters and Adam's state at the best window so far, to step back to.
enum Snapshot<D: Backend> {
    Graph(ParamStore<D>, Box<Adam<D>>),
    Host(crate::fused::step::State),
}

/// The fit loop one step at a time: data checked and uploaded once, minibatches drawn,
/// Adam's state kept, the ELBO watched for convergence and divergence. [`super::fit`]
/// runs it until [`Trainer::is_done`]; benchmarks time [`Trainer::step`].
///
/// # Example
///
/// ```
/// // `Line`, `LineGuide` and `data` as in the example of `ravi::fit`
/// # use ravi::prelude::*;
/// # model! {
/// #     model Line(x: [N], y: [N]) {
/// #         a ~ Normal(0.0, 10.0);
/// #         b ~ Normal(0.0, 10.0);
/// #         y ~ Normal(a * x + b, 0.5);
/// #     }
/// # }
/// # guide! { guide LineGuide for Line { (a, b) ~ FullRank; } }
/// # let data = LineData {
/// #     x: Array::vector(vec![0.0, 1.0, 2.0, 3.0]),
/// #     y: Array::vector(vec![0.9, 3.1, 4.8, 7.2]),
/// # };
/// let mut guide = LineGuide::new(&Cpu::seeded(0));
/// let opts = FitOptions { steps: 100, progress: false, ..FitOptions::default() };
/// let mut trainer = ravi::Trainer::new(&mut guide, &data, &opts)?;
/// while !trainer.is_done() {
///     match trainer.step()? {
///         ravi::Step::Taken(elbo) => assert!(elbo.is_finite()),
///         other => println!("{other:?}"),
///     }
/// }
/// assert_eq!(trainer.steps_taken(), 100);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Trainer<'a, G: Guide<D>, D: Backend> {
    guide: &'a mut G,
    data: &'a <G::Model as Model>::Data,
    arrays: Vec<&'a Array>,
    opts: FitOptions,
    rows: usize,
    batch_rows: usize,
    /// All rows on the device, for graph steps without minibatches; the host engine and
    /// minibatches read the user's arrays, so no copy of the data is made for them.
    full: Option<Batch<D>>,
    order: Vec<usize>,
    rng: rand::rngs::StdRng,
    cursor: usize,
    adam: Adam<D>,
    /// The host engine, when it runs this fit's steps.
    fused: Option<crate::fused::step::Fused>,
    /// The model on the host engine, when it scores the guide's graph draws.
    model_engine: Option<ModelEngine>,
    engine: EngineChoice,
    step: usize,
    skipped: usize,
    init: InitReport,
    phase: Phase,
    monitor: Monitor,
    /// The ELBO estimate of every step.
    trace: Vec<f32>,
    best: Option<(usize, Snapshot<D>)>,
    /// Halved at each divergence stepped back from.
    lr_factor: f32,
    divergences: Vec<Divergence>,
    converged_at: Option<usize>,
    /// `converged_at` is the warm-up's (the analytic entropy's ELBO had converged).
    converged_in_warmup: bool,
    average: Option<Average<D>>,
}

impl<'a, G: Guide<D>, D: Backend> Trainer<'a, G, D> {
    /// Checks `opts` and `data`, starts the guide as `opts.init` says, uploads the data and
    ///  chooses the engine: everything [`super::fit`] does before its first step. Fails with a
    ///  [`FitError`] when the options, the data, the guide's memory or the start cannot be used.
    pub fn new(
        guide: &'a mut G,
        data: &'a <G::Model as Model>::Data,
        opts: &FitOptions,
    ) -> Result<Self, FitError> {
        // Everything about the options is checked before the start moves the guide.
        opts.check()?;
        if let Some(e) = guide.params().refusal() {
            return Err(FitError::Memory(e.clone()));
        }
        frozen_parameters(guide.params(), &opts.frozen)?;
        let specs = G::Model::inputs();
        let arrays = data.arrays();
        let rows = check_inputs(G::Model::NAME, specs, &arrays)?;
        check_observed(G::Model::NAME, specs, G::Model::observed(), &arrays)?;
        if opts.objective == Objective::Iwae {
            crate::iwae::check_supported::<G::Model>()?;
        }
        // Per-row guide parameters (a mean-field local site) are sized by the data.
        guide.prepare(rows);
        check_rows(&*guide, rows)?;
        let init = initialize(guide, data, &opts.start(), opts.fused)?;
        // (the start may add constants to the store: a frame)
        let frozen = frozen_parameters(guide.params(), &opts.frozen)?;
        let dev = guide.params().device().clone();
        let batch_rows = opts.batch_size.map_or(rows, |b| b.clamp(1, rows));
        let mut adam = Adam::new(guide.params(), opts.adam);
        for (index, _) in frozen.iter().enumerate().filter(|(_, &f)| f) {
            adam.freeze(index);
        }
        let (fused, model_engine, engine) = match (opts.fused, opts.objective) {
            (false, _) => (
                None,
                None,
                EngineChoice::Graph("`FitOptions::fused` is false".into()),
            ),
            (_, Objective::Iwae) => (
                None,
                None,
                EngineChoice::Graph("the IWAE objective runs on the graph".into()),
            ),
            (true, Objective::Elbo) => {
                match crate::fused::step::Fused::for_guide(&*guide, opts.adam, &frozen)? {
                    Ok(fused) => (Some(fused), None, EngineChoice::Host),
                    Err(why) => match ModelEngine::for_guide::<G, D>() {
                        Some(m) => (None, Some(m), EngineChoice::HostModel(why)),
                        None => (None, None, EngineChoice::Graph(why)),
                    },
                }
            }
        };
        let full = (fused.is_none() && model_engine.is_none() && batch_rows == rows)
            .then(|| Batch::upload(&dev, specs, &arrays, None, rows));
        // the warm-up's estimator is the analytic entropy: nothing to warm up from when the
        // fit's own estimator is analytic already
        let warmup = opts.analytic_warmup > 0.0
            && !matches!(
                opts.estimator,
                Estimator::AnalyticKl | Estimator::AnalyticEntropy
            );
        Ok(Trainer {
            guide,
            data,
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
            model_engine,
            engine,
            step: 0,
            skipped: 0,
            init,
            phase: if warmup { Phase::Warmup } else { Phase::Main },
            monitor: Monitor::new(opts.convergence, opts.steps),
            trace: Vec::with_capacity(opts.steps.min(1 << 20)),
            best: None,
            lr_factor: 1.0,
            divergences: Vec::new(),
            converged_at: None,
            converged_in_warmup: false,
            average: None,
        })
    }

    /// Adam's step count and moments as they stand.
    pub fn optimizer_state(&self) -> OptimizerState {
        match &self.fused {
            Some(f) => f.optimizer_state(),
            None => self.adam.state(),
        }
    }

    /// Continues a fit that stopped after `steps_taken` steps with Adam in `state` (both
    /// from [`Trainer::optimizer_state`] and [`Trainer::steps_taken`] of that fit, as
    /// [`crate::save::save_fit`] keeps them): the learning-rate schedule and the step
    /// count go on from there. The minibatch order and the device's noise are drawn
    /// afresh, so the steps are not those an uninterrupted fit would have taken. An error
    /// names the parameter whose moments do not fit.
    pub fn resume(&mut self, steps_taken: usize, state: &OptimizerState) -> Result<(), FitError> {
        let store = self.guide.params();
        if state.m.len() != store.len() || state.v.len() != store.len() {
            return Err(FitError::Options(format!(
                "the optimiser state holds moments of {} parameters, the guide has {}",
                state.m.len(),
                store.len()
            )));
        }
        for (id, (m, v)) in store.ids().zip(state.m.iter().zip(&state.v)) {
            let n = store.get(id).shape().0;
            if m.len() != n || v.len() != n {
                return Err(FitError::Options(format!(
                    "the optimiser state's moments of `{}` have {} values, the parameter {n}",
                    store.name(id),
                    m.len()
                )));
            }
        }
        match &mut self.fused {
            Some(f) => f.set_optimizer_state(state),
            None => self.adam.set_state(state),
        }
        self.step = steps_taken;
        Ok(())
    }

    /// Do this fit's steps run on the host engine ([`crate::fused`])?
    pub fn is_fused(&self) -> bool {
        self.fused.is_some()
    }

    /// Where the guide started.
    pub fn init_report(&self) -> &InitReport {
        &self.init
    }

    /// Has the fit run its steps, or converged and cooled down?
    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done || self.step >= self.opts.steps
    }

    /// The steps taken so far.
    pub fn steps_taken(&self) -> usize {
        self.step
    }

    /// The data's rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// [`crate::diagnose()`] of the guide as it stands, from `draws` draws: on the host
    /// engine when the steps run there (the same importance ratios, without the graph).
    pub fn diagnose(&mut self, draws: usize) -> Result<crate::diagnose::Diagnostics, FitError> {
        let Some(fused) = &mut self.fused else {
            return crate::diagnose::diagnose(&*self.guide, self.data, draws);
        };
        crate::diagnose::check_draws(draws)?;
        // particles × rows × the values per row: a few million at a time
        let per_draw = self.rows.max(1) * fused.values_per_row();
        let chunk = (4_000_000 / per_draw).clamp(1, 500);
        let mut ratios = Vec::with_capacity(draws.min(1 << 20));
        while ratios.len() < draws {
            let n = chunk.min(draws - ratios.len());
            let data = (G::Model::inputs(), self.arrays.as_slice());
            let dev = self.guide.params().device();
            // at temperature 1, as `diagnose` takes its batch
            ratios.extend_from_slice(fused.log_ratios(dev, data, n, 1.0));
        }
        Ok(crate::diagnose::from_log_ratios(&ratios))
    }

    /// The guide being fitted, as it stands after the steps taken so far.
    pub fn guide(&mut self) -> &G {
        if let Some(fused) = &self.fused {
            fused.write_back(self.guide.params_mut());
        }
        self.guide
    }

    /// The estimator and the learning rate of step `step`.
    fn controls(&self, step: usize) -> (Estimator, f32) {
        let opts = &self.opts;
        let estimator = match self.phase {
            Phase::Warmup => Estimator::AnalyticEntropy,
            _ => opts.estimator,
        };
        let lr = match self.phase {
            Phase::Settle { start, steps, from } => {
                let end = opts.schedule.at(opts.steps.max(1) - 1, opts.steps);
                let frac = (step - start) as f32 / steps.max(1) as f32;
                from * (end / from).powf(frac.min(1.0))
            }
            _ => opts.schedule.at(step, opts.steps),
        };
        (estimator, lr * self.lr_factor)
    }

    /// One step: a minibatch (or all rows), the ELBO estimate, its gradient, Adam; then the
    /// estimate is watched (see [`super::Convergence`]) and, in the fit's last steps, the
    /// iterates averaged.
    pub fn step(&mut self) -> Result<Step, FitError> {
        let step = self.step;
        self.step += 1;
        let (estimator, lr) = self.controls(step);
        let outcome = match self.take_step(step, estimator, lr)? {
            Step::Taken(value) => {
                self.trace.push(value);
                match self.far_above_best(value) {
                    Some(best) => self.step_back(step, value, best)?,
                    None => {
                        self.watch(step, value, lr);
                        Step::Taken(value)
                    }
                }
            }
            other @ (Step::Skipped(v) | Step::SteppedBack(v)) => {
                self.trace.push(v);
                other
            }
        };
        self.average_tail(step);
        if self.is_done() {
            self.apply_average();
        }
        Ok(outcome)
    }

    /// A taken step's estimate: the monitor's verdict at the end of a window, the phase's
    /// course.
    fn watch(&mut self, step: usize, value: f32, lr: f32) {
        if let Some(verdict) = self.monitor.push(f64::from(value)) {
            self.after_window(step, verdict, lr);
        }
        match self.phase {
            Phase::Warmup
                if step as f32 + 1.0 >= self.opts.analytic_warmup * self.opts.steps as f32 =>
            {
                self.phase = Phase::Main;
                self.monitor.restart_patience();
            }
            Phase::Settle { start, steps, .. } if step + 1 >= start + steps => {
                self.phase = Phase::Done;
            }
            _ => {}
        }
    }

    /// The iterates of the fit's last steps are averaged: those of the settling phase once
    /// converged, else the last window's (a fifth of the steps at most) of a fit that runs
    /// all its steps.
    fn average_tail(&mut self, step: usize) {
        let tail = self.monitor.window().min(self.opts.steps / 5).max(1);
        let settling = matches!(self.phase, Phase::Settle { .. });
        if self.average.is_none() && (settling || step + tail >= self.opts.steps) {
            self.start_average();
        }
        self.accumulate_average();
    }

    fn start_average(&mut self) {
        self.average = Some(match &self.fused {
            Some(f) => Average::Host(f.params().iter().map(|p| vec![0.0; p.len()]).collect(), 0),
            None => Average::Graph(
                self.guide.params().iter().map(|(_, t)| t.clone()).collect(),
                0,
            ),
        });
    }

    /// Adds the current parameters to the running mean.
    fn accumulate_average(&mut self) {
        match (&mut self.average, &self.fused) {
            (Some(Average::Host(sum, n)), Some(f)) => {
                for (s, p) in sum.iter_mut().zip(f.params()) {
                    for (s, &p) in s.iter_mut().zip(p) {
                        *s += f64::from(p);
                    }
                }
                *n += 1;
            }
            (Some(Average::Graph(mean, n)), None) => {
                *n += 1;
                let k = 1.0 / *n as f32;
                for (m, (_, p)) in mean.iter_mut().zip(self.guide.params().iter()) {
                    *m = m.clone() + (p.clone() - m.clone()) * k;
                }
            }
            _ => {}
        }
    }

    /// The guide takes the averaged parameters.
    fn apply_average(&mut self) {
        match (self.average.take(), &mut self.fused) {
            (Some(Average::Host(sum, n)), Some(f)) if n > 0 => {
                let mean: Vec<Vec<f32>> = sum
                    .iter()
                    .map(|s| s.iter().map(|&v| (v / n as f64) as f32).collect())
                    .collect();
                f.set_params(&mean);
            }
            (Some(Average::Graph(mean, n)), None) if n > 0 => {
                let ids: Vec<_> = self.guide.params().ids().collect();
                for (id, m) in ids.into_iter().zip(mean) {
                    if !self.guide.params().is_constant(id) {
                        self.guide.params_mut().set(id, &m.as_vec());
                    }
                }
            }
            _ => {}
        }
    }

    /// At the end of a window: keep the best parameters, move on when converged.
    fn after_window(&mut self, step: usize, verdict: Verdict, lr: f32) {
        match verdict {
            Verdict::Improved => {
                let snapshot = self.snapshot();
                self.best = Some((step, snapshot));
                // improving again after the warm-up's estimator had converged: the fit's
                // own estimator has not yet
                if self.phase == Phase::Main && self.converged_in_warmup {
                    self.converged_at = None;
                    self.converged_in_warmup = false;
                }
            }
            Verdict::Waiting => {}
            Verdict::Converged => match self.phase {
                Phase::Warmup => {
                    self.converged_at.get_or_insert(step + 1);
                    self.converged_in_warmup = true;
                    self.phase = Phase::Main;
                    self.monitor.restart_patience();
                }
                Phase::Main => {
                    if self.converged_in_warmup {
                        self.converged_at = Some(step + 1);
                        self.converged_in_warmup = false;
                    }
                    self.converged_at.get_or_insert(step + 1);
                    let left = self.opts.steps.saturating_sub(step + 1);
                    let settle = (2 * self.monitor.window()).max(self.opts.steps / 5);
                    if self.opts.convergence.stop_early && settle < left {
                        self.phase = Phase::Settle {
                            start: step + 1,
                            steps: settle,
                            from: lr / self.lr_factor,
                        };
                        self.start_average();
                    }
                }
                Phase::Settle { .. } | Phase::Done => {}
            },
        }
    }

    /// The step of the best window's parameters, when `value` is far above that window
    /// (see [`Monitor::is_far_above`]).
    fn far_above_best(&self, value: f32) -> Option<usize> {
        let (best, _) = self.best.as_ref()?;
        self.monitor.is_far_above(f64::from(value)).then_some(*best)
    }

    /// An estimate far above every window so far: back to the best parameters (of step
    /// `back_to`), with half the learning rate from here on; after [`MAX_DIVERGENCES`] of
    /// them, an error.
    fn step_back(&mut self, step: usize, value: f32, back_to: usize) -> Result<Step, FitError> {
        self.divergences.push(Divergence {
            step,
            value,
            back_to,
        });
        self.restore_best();
        if self.divergences.len() > MAX_DIVERGENCES {
            return Err(FitError::Diverged {
                step,
                value,
                back_to,
            });
        }
        self.lr_factor *= 0.5;
        Ok(Step::SteppedBack(value))
    }

    fn snapshot(&self) -> Snapshot<D> {
        match &self.fused {
            Some(f) => Snapshot::Host(f.state()),
            None => Snapshot::Graph(self.guide.params().clone(), Box::new(self.adam.clone())),
        }
    }

    /// Puts the best parameters seen back (nothing when no window has closed). A running
    /// average holds iterates of the path stepped back from: it starts again.
    fn restore_best(&mut self) {
        self.average = None;
        let Some((_, snapshot)) = &self.best else {
            return;
        };
        match snapshot {
            Snapshot::Host(state) => {
                if let Some(f) = &mut self.fused {
                    f.restore(state);
                }
            }
            Snapshot::Graph(params, adam) => {
                *self.guide.params_mut() = params.clone();
                self.adam = (**adam).clone();
            }
        }
    }

    /// The step itself, on the host engine or the dfdx graph.
    fn take_step(&mut self, step: usize, estimator: Estimator, lr: f32) -> Result<Step, FitError> {
        let opts = &self.opts;
        let picked = (self.batch_rows < self.rows).then(|| {
            if self.cursor + self.batch_rows > self.rows {
                self.order.shuffle(&mut self.rng);
                self.cursor = 0;
            }
            self.cursor += self.batch_rows;
            self.cursor - self.batch_rows..self.cursor
        });
        if self.model_engine.is_some() {
            return self.model_on_host_step(step, picked, estimator, lr);
        }
        let idx = picked.map(|range| &self.order[range]);
        let scale = self.rows as f32 / self.batch_rows as f32;
        if let Some(fused) = &mut self.fused {
            let data = (G::Model::inputs(), self.arrays.as_slice());
            let outcome = fused.step(
                self.guide.params().device(),
                data,
                idx,
                opts.particles,
                (scale, opts.temperature.at(step, opts.steps)),
                estimator,
                (lr, opts.clip_norm),
            );
            return match outcome {
                Ok(value) => Ok(Step::Taken(value)),
                Err(bad) => self.non_finite(step, bad.value, bad.culprit),
            };
        }
        let batch = match idx {
            Some(idx) => {
                let dev = self.guide.params().device().clone();
                Batch::upload(&dev, G::Model::inputs(), &self.arrays, Some(idx), self.rows)
            }
            None => match &self.full {
                Some(full) => full.clone(),
                None => {
                    let dev = self.guide.params().device().clone();
                    Batch::upload(&dev, G::Model::inputs(), &self.arrays, None, self.rows)
                }
            },
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
            let culprit = culprit(self.guide, &views);
            return self.non_finite(step, value, culprit);
        }
        let mut grads = loss.backward();
        let clip = opts.clip_norm;
        self.adam
            .step(self.guide.params_mut(), &mut grads, lr, clip);
        Ok(Step::Taken(value))
    }

    /// A step whose guide draws on the dfdx graph and whose model is scored on the host
    /// engine: the engine's ∂ log p/∂z enters the graph as the surrogate Σ z · ∂ log p/∂z
    /// (its gradient in the guide's parameters is the model term's), beside the guide's own
    /// −log q on the tape.
    fn model_on_host_step(
        &mut self,
        step: usize,
        picked: Option<std::ops::Range<usize>>,
        estimator: Estimator,
        lr: f32,
    ) -> Result<Step, FitError> {
        let opts = &self.opts;
        let idx = picked.map(|range| &self.order[range]);
        let dev = self.guide.params().device().clone();
        // global latents only: the guide reads no data
        let carrier = Batch::empty(&dev, G::Model::inputs().len());
        let draw =
            self.guide
                .sample::<OwnedTape<f32, D>>(opts.particles, &carrier, estimator, true);
        let host: Vec<Vec<f32>> = draw.latents.iter().map(|z| z.as_vec()).collect();
        let views: Vec<&[f32]> = host.iter().map(Vec::as_slice).collect();
        // a weight site whose net call the guide rewrites: its Gaussian, on the host
        let gaussians: Vec<(usize, Rewrite, Vec<f32>, Vec<f32>)> = draw
            .rewrites
            .iter()
            .enumerate()
            .filter_map(|(k, r)| {
                r.as_ref()
                    .map(|g| (k, g.rewrite, g.loc.as_vec(), g.scale.as_vec()))
            })
            .collect();
        let rewrites: Vec<SiteRewrite> = gaussians
            .iter()
            .map(|(k, kind, loc, scale)| SiteRewrite {
                latent: *k,
                kind: *kind,
                loc,
                scale,
            })
            .collect();
        // (drawn only when used: the device's stream stays the graph path's otherwise)
        let seed = match rewrites.is_empty() {
            true => 0,
            false => crate::normals::seed_from(&dev),
        };
        let scale = self.rows as f32 / self.batch_rows as f32;
        let weights = self.guide.prior_weights();
        let engine = self.model_engine.as_mut().expect("checked by the caller");
        let data = (G::Model::inputs(), self.arrays.as_slice());
        let scored = engine.score(
            data,
            idx,
            &views,
            opts.particles,
            (scale, &weights, opts.temperature.at(step, opts.steps)),
            (&rewrites, seed),
        );
        let scored = match scored {
            Ok(scored) => scored,
            Err(bad) => {
                let culprit = broken_parameter(self.guide).or(Some(bad.culprit));
                return self.non_finite(step, bad.value as f32, culprit);
            }
        };
        let log_q_values = draw.log_q.as_vec();
        let mut surrogate = draw.log_q.negate();
        for ((z, values), g) in draw.latents.into_iter().zip(&host).zip(scored.gradient) {
            surrogate = surrogate + crate::host_op::row_dots(z, values, g);
        }
        // a rewritten site's means and sds: the engine's gradients summed over the
        // particles, so over the particle count in the mean
        let per_particle = 1.0 / opts.particles as f32;
        let mut rewritten: Option<Tensor<(), f32, D, OwnedTape<f32, D>>> = None;
        for (g, site) in draw.rewrites.into_iter().flatten().zip(scored.rewritten) {
            let (gl, gs) = (
                dev.tensor_from_vec(site.loc, *g.loc.shape()),
                dev.tensor_from_vec(site.scale, *g.scale.shape()),
            );
            let term = ((g.loc * gl).sum::<(), _>() + (g.scale * gs).sum::<(), _>()) * per_particle;
            rewritten = Some(match rewritten {
                Some(acc) => acc + term,
                None => term,
            });
        }
        let particles = opts.particles as f64;
        let value = (scored
            .log_joint
            .iter()
            .zip(&log_q_values)
            .map(|(p, q)| p - f64::from(*q))
            .sum::<f64>()
            / particles) as f32;
        if !value.is_finite() {
            let culprit = broken_parameter(self.guide).or_else(|| {
                log_q_values
                    .iter()
                    .find(|v| !v.is_finite())
                    .map(|v| format!("the guide's log density is {v}"))
            });
            return self.non_finite(step, value, culprit);
        }
        let objective = match rewritten {
            Some(r) => surrogate.mean::<(), _>() + r,
            None => surrogate.mean::<(), _>(),
        };
        let mut grads = objective.negate().backward();
        self.adam
            .step(self.guide.params_mut(), &mut grads, lr, self.opts.clip_norm);
        Ok(Step::Taken(value))
    }

    /// A non-finite ELBO: skipped when asked and possible, else an error with the guide
    /// stepped back to its best parameters.
    fn non_finite(
        &mut self,
        step: usize,
        value: f32,
        culprit: Option<String>,
    ) -> Result<Step, FitError> {
        let parameters_broken = culprit
            .as_deref()
            .is_some_and(|c| c.starts_with("guide parameter"));
        match self.opts.on_non_finite {
            // a non-finite parameter stays so: skipping cannot help
            OnNonFinite::Skip { max } if self.skipped < max && !parameters_broken => {
                self.skipped += 1;
                Ok(Step::Skipped(value))
            }
            _ => {
                self.restore_best();
                Err(FitError::NonFinite {
                    step,
                    value,
                    culprit,
                })
            }
        }
    }

    /// The report of the steps so far.
    pub fn report(&self) -> FitReport {
        let last = self.monitor.last();
        let best = self.monitor.best();
        FitReport {
            elbo: self.trace.clone(),
            skipped: self.skipped,
            steps: self.step,
            converged: self.converged_at.is_some(),
            converged_at: self.converged_at,
            best_elbo: best.or(last).map_or(f64::NAN, |w| w.mean),
            final_elbo: last.map_or(f64::NAN, |w| w.mean),
            elbo_noise: last.map_or(f64::NAN, |w| w.sd),
            window: self.monitor.window(),
            divergences: self.divergences.clone(),
            init: self.init.clone(),
            engine: self.engine.clone(),
            diagnostics: None,
            warnings: Vec::new(),
        }
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

/// Which of the store's parameters (in its order) the names in `frozen` are.
fn frozen_parameters<D: Backend>(
    params: &ParamStore<D>,
    frozen: &[String],
) -> Result<Vec<bool>, FitError> {
    let names: Vec<&str> = params.iter().map(|(n, _)| n).collect();
    let mut out = vec![false; names.len()];
    for name in frozen {
        let index = names.iter().position(|n| n == name).ok_or_else(|| {
            FitError::Options(format!(
                "frozen: the guide has no parameter `{name}` (it has {})",
                names.join(", ")
            ))
        })?;
        out[index] = true;
    }
    Ok(out)
}

/// After a non-finite ELBO: a parameter that went non-finite, or else the first term of the
/// failing pass (the guide's, then the model's sites in order) that holds a NaN or infinity.
fn culprit<G: Guide<D>, D: Backend>(
    guide: &G,
    terms: &[(&'static str, PerParticle<D, NoneTape>)],
) -> Option<String> {
    if let Some(broken) = broken_parameter(guide) {
        return Some(broken);
    }
    first_non_finite(terms).map(|(site, v)| {
        if site == GUIDE_TERM {
            format!("the guide's log density is {}", -v)
        } else {
            format!("the log density of site `{site}` is {v}")
        }
    })
}

/// A guide parameter gone non-finite, worded as every non-finite step names it first (a
/// step cannot be skipped past one: `non_finite` reads the wording).
fn broken_parameter<G: Guide<D>, D: Backend>(guide: &G) -> Option<String> {
    guide
        .params()
        .first_non_finite()
        .map(|(name, v)| format!("guide parameter `{name}` holds {v}"))
}
