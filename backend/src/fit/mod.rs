//! Stochastic variational inference: the one `fit` loop.
//!
//! `options` says what a fit is asked to do, `trainer` takes its steps (host engine or dfdx
//! graph) and watches the ELBO (`converge`), `evaluate` scores a guide outside a fit. A fit
//! starts the guide (`crate::init`), steps until the ELBO has converged or the steps run
//! out, and reports what happened: convergence, divergences stepped back from, and for
//! models whose latents are all global the fitted guide's diagnostics (`crate::diagnose`),
//! with a plain warning where something needs the user's eye.

mod converge;
mod options;
mod trainer;

use std::io::IsTerminal as _;

pub use crate::error::FitError;
pub use crate::evaluate::{elbo, elbo_at, elbo_draws, elbo_gradient};
pub use options::{Convergence, FitOptions, Objective, OnNonFinite, Schedule};
pub use trainer::{Step, Trainer};

use crate::device::Backend;
use crate::diagnose::Diagnostics;
use crate::fused::EngineChoice;
use crate::guide::Guide;
use crate::init::InitReport;
use crate::model::Model;

/// What a fit returns.
#[derive(Debug, Clone, PartialEq)]
pub struct FitReport {
    /// The ELBO estimate of every step (minibatch steps estimate the full-data ELBO).
    pub elbo: Vec<f32>,
    /// Steps skipped for a non-finite ELBO (with [`OnNonFinite::Skip`]).
    pub skipped: usize,
    /// Steps taken (fewer than asked when the fit converged and stopped early).
    pub steps: usize,
    /// Did the ELBO stop improving (see [`Convergence`])? `false` means it was still
    /// improving when the steps ran out: more steps would have helped.
    pub converged: bool,
    /// The step at which it converged.
    pub converged_at: Option<usize>,
    /// The mean ELBO of the best window of steps, and of the last one.
    pub best_elbo: f64,
    /// The mean ELBO of the last window of steps.
    pub final_elbo: f64,
    /// The sd of the ELBO estimates over the last window: their Monte Carlo noise.
    pub elbo_noise: f64,
    /// Steps per window.
    pub window: usize,
    /// Estimates far above all before them, at which the fit stepped back to its best
    /// parameters (and halved its learning rate).
    pub divergences: Vec<Divergence>,
    /// Where the guide started.
    pub init: InitReport,
    /// Which engine ran the steps: the host engine ([`crate::fused`]), or the dfdx graph
    /// and why.
    pub engine: EngineChoice,
    /// k̂ and the importance-weighted ELBO of the fitted guide ([`crate::diagnose()`]), for
    /// models whose latent sites are all global, when cheap enough (see
    /// [`FitOptions::diagnostic_draws`]).
    pub diagnostics: Option<Diagnostics>,
    /// What the user should look at, in words (also printed with `FitOptions::warnings`).
    pub warnings: Vec<String>,
}

/// A step whose ELBO estimate was far above every one before it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Divergence {
    /// The step (from 0) of the estimate.
    pub step: usize,
    /// The ELBO estimate there.
    pub value: f32,
    /// The step of the best parameters the fit stepped back to (a divergence is judged
    /// against the best window, so there always is one).
    pub back_to: usize,
}

/// Every parameter of the guide a fit returns is a number (a skipped step cannot leave a
/// NaN behind, but a diverging Adam state could).
fn finite_parameters<G: Guide<D>, D: Backend>(guide: &G) -> Result<(), FitError> {
    let store = guide.params();
    for (name, t) in store.iter() {
        if let Some((index, &value)) = t.as_vec().iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(FitError::NonFiniteParameter {
                parameter: name.to_string(),
                index,
                value,
            });
        }
    }
    Ok(())
}

/// Maximises the ELBO of `guide` for its model on `data` with Adam, from where
/// `opts.init` starts it until the ELBO converges or `opts.steps` run out.
///
/// # Example
///
/// ```
/// use ravi::prelude::*;
///
/// model! {
///     /// A line through noisy points: y = a x + b + N(0, 0.5²).
///     model Line(x: [N], y: [N]) {
///         a ~ Normal(0.0, 10.0);
///         b ~ Normal(0.0, 10.0);
///         y ~ Normal(a * x + b, 0.5);
///     }
/// }
/// guide! { guide LineGuide for Line { (a, b) ~ FullRank; } }
///
/// let data = LineData {
///     x: Array::vector(vec![0.0, 1.0, 2.0, 3.0]),
///     y: Array::vector(vec![0.9, 3.1, 4.8, 7.2]),
/// };
/// let mut guide = LineGuide::new(&Cpu::seeded(0));
/// let opts = FitOptions { steps: 300, progress: false, ..FitOptions::default() };
/// let report = ravi::fit(&mut guide, &data, &opts)?;
/// assert_eq!(report.elbo.len(), 300); // one estimate per step
/// println!("ELBO {:.2} on {:?}", report.final_elbo, report.engine);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn fit<G, D>(
    guide: &mut G,
    data: &<G::Model as Model>::Data,
    opts: &FitOptions,
) -> Result<FitReport, FitError>
where
    G: Guide<D>,
    D: Backend,
{
    let mut report = {
        let mut trainer = Trainer::new(guide, data, opts)?;
        let bar = progress_bar(opts);
        while !trainer.is_done() {
            let outcome = match trainer.step() {
                Ok(o) => o,
                Err(e) => {
                    if let Some(b) = &bar {
                        b.abandon();
                    }
                    return Err(e);
                }
            };
            let step = trainer.steps_taken();
            if let (Some(b), Step::Taken(value)) = (&bar, outcome) {
                if step % 50 == 1 {
                    b.set_position(step as u64);
                    b.set_message(format!("elbo {value:.3}"));
                }
            }
        }
        if let Some(b) = bar {
            b.set_position(trainer.steps_taken() as u64);
            b.finish();
            // indicatif leaves the cursor on the bar's line: what is printed next starts a new one
            eprintln!();
        }
        let mut report = trainer.report();
        if report.steps > 0 && report.skipped == report.steps {
            return Err(FitError::AllSkipped {
                steps: report.steps,
            });
        }
        report.diagnostics = diagnostics_of_fit(&mut trainer, opts, &report)?;
        report
    };
    finite_parameters(guide)?;
    report.warnings = warnings(&report, opts.convergence.patience);
    if opts.warnings {
        for w in &report.warnings {
            eprintln!("ravi: warning: {w}");
        }
    }
    Ok(report)
}

/// The fitted guide's diagnostics, where the model's latent sites are all global, the
/// guide's log q is a density, and they cost at most a tenth of the fit's own work (draws ×
/// rows against steps × particles × rows per step) with 1000 draws at least (fewer make
/// k̂ too noisy to act on).
fn diagnostics_of_fit<G, D>(
    trainer: &mut Trainer<'_, G, D>,
    opts: &FitOptions,
    report: &FitReport,
) -> Result<Option<Diagnostics>, FitError>
where
    G: Guide<D>,
    D: Backend,
{
    let global = G::Model::latents().iter().all(|l| !l.local);
    if opts.diagnostic_draws == 0 || !global || !G::exact_log_q() {
        return Ok(None);
    }
    let rows = trainer.rows().max(1);
    let batch_rows = opts.batch_size.map_or(rows, |b| b.clamp(1, rows));
    let fit_work = report.steps * opts.particles * batch_rows;
    let draws = opts.diagnostic_draws.min(fit_work / 10 / rows);
    if draws < 1000.min(opts.diagnostic_draws) {
        return Ok(None);
    }
    trainer.diagnose(draws).map(Some)
}

/// The report's plain warnings: an unconverged fit, a poor k̂, divergences stepped back
/// from, an initialisation that fell back.
fn warnings(report: &FitReport, patience: usize) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(note) = &report.init.note {
        out.push(note.clone());
    }
    let windows = report.steps / report.window.max(1);
    if !report.converged && report.steps > 0 && windows <= patience {
        out.push(format!(
            "the fit was too short to judge whether it converged: {} steps make {windows} windows of {}, and convergence takes {} without an improvement after the first; give it more `steps` (or a smaller `Convergence::window`)",
            report.steps, report.window, patience
        ));
    } else if !report.converged && report.steps > 0 {
        out.push(format!(
            "the ELBO was still improving when the {} steps ran out (last window {:.4}, best {:.4}, noise sd {:.3}): the fit has not converged; give it more `steps` (or a larger learning rate)",
            report.steps, report.final_elbo, report.best_elbo, report.elbo_noise
        ));
    }
    for d in &report.divergences {
        out.push(format!(
            "at step {} the ELBO estimate was {}, far above every earlier one: the fit stepped back to its parameters of step {} and halved its learning rate",
            d.step, d.value, d.back_to
        ));
    }
    if let Some(w) = report.diagnostics.and_then(|d| d.warning()) {
        out.push(w);
    }
    out
}

fn progress_bar(opts: &FitOptions) -> Option<indicatif::ProgressBar> {
    if !opts.progress || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(opts.steps as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} {msg} {per_sec} [{elapsed} < {eta}]",
        )
        .expect("static template"),
    );
    Some(bar)
}
