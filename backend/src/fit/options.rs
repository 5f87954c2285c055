//! What a fit is asked to do.

use crate::diagnose::MIN_DIAGNOSTIC_DRAWS;
use crate::error::FitError;
use crate::estimator::Estimator;
use crate::init::Init;
use crate::optim::AdamConfig;

/// What to do when a step's ELBO is NaN or infinite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnNonFinite {
    /// Stop with [`FitError::NonFinite`], naming the step, the value and the site at fault.
    Stop,
    /// Skip the step (no update), count it in [`FitReport::skipped`](crate::FitReport::skipped);
    /// stop after `max` skips.
    Skip {
        /// The most steps skipped before the fit stops with [`FitError::NonFinite`].
        max: usize,
    },
}

/// The learning rate over the steps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Schedule {
    /// The same value at every step.
    Constant(f32),
    /// Geometric decay from `start` at the first step to `end` at the last: large steps to
    /// find the optimum, small ones to settle the Monte Carlo noise around it.
    Exponential {
        /// The value at the first step.
        start: f32,
        /// The value at the last step.
        end: f32,
    },
}

impl Schedule {
    /// The schedule's values, for checking.
    fn ends(&self) -> [f32; 2] {
        match *self {
            Schedule::Constant(v) => [v, v],
            Schedule::Exponential { start, end } => [start, end],
        }
    }

    /// The value at `step` (from 0) of a fit of `steps` steps.
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
    /// [`crate::iwae()`]): tighter than the ELBO, for models whose latent sites are all
    /// local. Its guide's log q enters with the standard estimator.
    Iwae,
}

/// What a fit is asked to do. Start from [`FitOptions::default`] and set the fields that
///  differ: `FitOptions { steps: 2000, progress: false, ..FitOptions::default() }`.
///
///  Every field is checked before the first step; a value the fit cannot take is a
///  [`FitError::Options`] naming the field.
#[derive(Debug, Clone)]
pub struct FitOptions {
    /// The number of optimisation steps (5000 by default; fewer if `convergence` stops early).
    pub steps: usize,
    /// Monte Carlo particles per step (the leading tensor axis).
    pub particles: usize,
    /// The learning rate over the steps (default: exponential decay from 0.02 to 0.0002).
    pub schedule: Schedule,
    /// Adam's constants (β, ε, weight decay).
    pub adam: AdamConfig,
    /// Rows per minibatch; `None` uses all rows every step. Observed sites are scaled by
    /// total rows / batch rows, so every step estimates the full-data ELBO.
    pub batch_size: Option<usize>,
    /// Seeds the minibatch order (the device's seed fixes the Monte Carlo noise).
    pub seed: u64,
    /// Clip the global gradient norm to this value.
    pub clip_norm: Option<f32>,
    /// What to do when a step's ELBO is NaN or infinite (default: stop with an error).
    pub on_non_finite: OnNonFinite,
    /// How each guide family's log q enters the ELBO gradient; see [`Estimator`].
    pub estimator: Estimator,
    /// The fraction of the steps, at the start, that use the analytic entropy instead of
    /// `estimator`. Far from the optimum the analytic entropy's gradient is the quieter one;
    /// near it the path derivative's noise vanishes (default 0.5: half and half).
    pub analytic_warmup: f32,
    /// Show a progress bar (only ever on a terminal).
    pub progress: bool,
    /// What the fit maximises: the ELBO (default) or the importance-weighted bound.
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
    /// When the ELBO counts as converged, and whether the fit then stops early (see
    /// [`Convergence`]).
    pub convergence: Convergence,
    /// Draws for the fitted guide's diagnostics ([`crate::diagnose()`]: Pareto k̂ and the
    /// importance-weighted ELBO), computed at the end of a fit whose latent sites are all
    /// global when they cost at most a tenth of the fit's own work (fewer draws where that
    /// budget allows at least 1000); 0 never. 4000 by default: with 1000, k̂ of a
    /// mean-field guide on a posterior with correlation 0.999 (true k near 1) read 0.64 to
    /// 0.77 from seed to seed, with 4000 to 40,000 it reads 0.8 to 0.9.
    pub diagnostic_draws: usize,
    /// Print plain warnings (an unconverged fit, a poor k̂, a divergence stepped back from)
    /// on standard error; they are in [`FitReport::warnings`](crate::FitReport::warnings) either
    /// way.
    pub warnings: bool,
}

/// When a fit's ELBO has stopped improving.
///
/// The steps are cut into windows of `window` steps; a window improves on the best so far
/// when its mean ELBO exceeds the best window's mean by more than both
/// `tolerance` × |ELBO| and twice the standard error of the difference (from the two
/// windows' spreads). After `patience` windows without an improvement the ELBO has
/// converged ([`super::FitReport::converged`]). The first time, a fit in its
/// analytic-entropy warm-up switches to its estimator. With `stop_early` a fit that has
/// converged then settles — the learning rate annealed to the schedule's end over
/// max(2 windows, a fifth of the steps) while its iterates are averaged — and stops.
///
/// Early stopping is off by default: a flat ELBO does not mean settled parameters (an sd
/// 5% off its optimum costs about 0.001 nats, far below the ELBO's noise), and on the
/// diabetes regression a mean-field guide stopped early lands 3–5% off its optimal sds where
/// the full schedule lands within 1–2%. Every fit averages its iterates over its last
/// window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Convergence {
    /// Steps per window; 0 chooses steps / 25, at least 50.
    pub window: usize,
    /// The smallest relative change that counts as an improvement.
    pub tolerance: f64,
    /// Windows without an improvement before the ELBO counts as converged.
    pub patience: usize,
    /// Stop once converged (after the cool-down); `false` runs every step.
    pub stop_early: bool,
}

impl Default for Convergence {
    fn default() -> Self {
        Convergence {
            window: 0,
            tolerance: 1e-7,
            patience: 3,
            stop_early: false,
        }
    }
}

impl Convergence {
    /// The window for a fit of `steps` steps.
    pub fn window_for(&self, steps: usize) -> usize {
        if self.window > 0 {
            self.window
        } else {
            (steps / 25).max(50)
        }
    }
}

impl FitOptions {
    /// Is every option one a fit can run with? The first that is not, named, as
    /// [`FitError::Options`].
    pub fn check(&self) -> Result<(), FitError> {
        let bad = |m: String| Err(FitError::Options(m));
        let positive = |v: f32| v.is_finite() && v > 0.0;
        if self.particles == 0 {
            return bad("particles must be at least 1".into());
        }
        if self.batch_size == Some(0) {
            return bad("batch_size must be at least 1 (or None for all rows)".into());
        }
        for (name, schedule) in [
            ("schedule", &self.schedule),
            ("temperature", &self.temperature),
        ] {
            if !schedule.ends().into_iter().all(positive) {
                return bad(format!(
                    "{name} {schedule:?}: its values must be finite and positive"
                ));
            }
        }
        let [b1, b2] = self.adam.betas;
        if !(0.0..1.0).contains(&b1) || !(0.0..1.0).contains(&b2) {
            return bad(format!(
                "adam.betas {:?}: each must be in [0, 1)",
                self.adam.betas
            ));
        }
        if !positive(self.adam.eps) {
            return bad(format!(
                "adam.eps {}: must be finite and positive",
                self.adam.eps
            ));
        }
        if !(self.adam.weight_decay.is_finite() && self.adam.weight_decay >= 0.0) {
            return bad(format!(
                "adam.weight_decay {}: must be finite and at least 0",
                self.adam.weight_decay
            ));
        }
        if let Some(c) = self.clip_norm.filter(|&c| !positive(c)) {
            return bad(format!("clip_norm {c}: must be finite and positive"));
        }
        if !(0.0..=1.0).contains(&self.analytic_warmup) {
            return bad(format!(
                "analytic_warmup {}: a fraction of the steps, in [0, 1]",
                self.analytic_warmup
            ));
        }
        if let OnNonFinite::Skip { max: 0 } = self.on_non_finite {
            return bad(
                "on_non_finite Skip { max: 0 } skips nothing: use OnNonFinite::Stop".into(),
            );
        }
        let c = &self.convergence;
        if !(c.tolerance.is_finite() && c.tolerance >= 0.0) {
            return bad(format!(
                "convergence.tolerance {}: must be finite and at least 0",
                c.tolerance
            ));
        }
        if c.patience == 0 {
            return bad("convergence.patience must be at least 1 window".into());
        }
        if (1..MIN_DIAGNOSTIC_DRAWS).contains(&self.diagnostic_draws) {
            return bad(format!(
                "diagnostic_draws {}: k̂ needs at least {MIN_DIAGNOSTIC_DRAWS} draws (a few thousand to trust it); 0 turns the diagnostics off",
                self.diagnostic_draws
            ));
        }
        if !self.frozen.is_empty() && !matches!(self.init, Init::Auto | Init::Current) {
            return bad(format!(
                "frozen {:?} with init {:?}: a start would move the frozen parameters; a fit with frozen parameters starts where the guide is (Init::Auto or Init::Current)",
                self.frozen, self.init
            ));
        }
        Ok(())
    }

    /// The start a fit takes: a fit with frozen parameters keeps the guide where it is.
    pub(crate) fn start(&self) -> Init {
        match self.init {
            Init::Auto if !self.frozen.is_empty() => Init::Current,
            ref init => init.clone(),
        }
    }
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
            convergence: Convergence::default(),
            diagnostic_draws: 4000,
            warnings: true,
        }
    }
}
