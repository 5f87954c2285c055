//! Bayesian linear regression on the diabetes data, fitted with a guide of your choice and
//! checked against the exact posterior.
//!
//! ```text
//! cargo run --release --example linear_regression -- [--raw] [--device cpu|cuda] [--guide mean-field|full-rank|low-rank|flow|implicit]
//!     [--estimator path-derivative|analytic|analytic-kl|standard] [--warmup F] [--steps N] [--particles S] [--samples M] [--seed K] [--lr X] [--json] [--quiet]
//! ```
//!
//! `--raw` fits the data in its own units (ages in years, blood serum in mg/dL, the target
//! from 25 to 346) with a wide prior and every fit option at ravi's defaults: what a new
//! user's first fit looks like.

use clap::builder::{PossibleValuesParser, TypedValueParser as _};
use clap::parser::ValueSource;
use clap::{CommandFactory as _, FromArgMatches as _, Parser, ValueEnum};
use ravi::prelude::*;

const D: usize = 10;
/// The known noise standard deviation of the model (targets are z-scored).
const NOISE_SD: f64 = 0.5;
/// In raw units: the noise sd taken as known (about the least-squares residual sd) and the
/// prior sd of every coefficient (wide: the data decide).
const RAW_NOISE_SD: f64 = 54.0;
const RAW_PRIOR_SD: f64 = 1000.0;

model! {
    /// Bayesian linear regression with known noise.
    model LinReg(x: [N, D], y: [N]) {
        w ~ Normal(0.0, 1.0) [D];
        b ~ Normal(0.0, 1.0);
        y ~ Normal(x @ w + b, 0.5);
    }
}

model! {
    /// The same regression on the raw data: ages in years, the target in its own units.
    model RawLinReg(x: [N, D], y: [N]) {
        w ~ Normal(0.0, 1000.0) [D];
        b ~ Normal(0.0, 1000.0);
        y ~ Normal(x @ w + b, 54.0);
    }
}

guide! {
    guide MeanFieldRaw for RawLinReg { w ~ MeanField; b ~ MeanField; }
    guide FullRankRaw for RawLinReg { (w, b) ~ FullRank; }
    guide LowRankRaw for RawLinReg { (w, b) ~ LowRank(rank = 3); }
    guide FlowRaw for RawLinReg { (w, b) ~ Flow(RealNVP(layers = 4, hidden = 32)); }
    guide ImplicitRaw for RawLinReg { (w, b) ~ Implicit(hidden = [32]); }
}

guide! {
    /// One independent Gaussian per coefficient.
    guide MeanFieldLinReg for LinReg { w ~ MeanField; b ~ MeanField; }
    /// One Gaussian over all 11 coefficients jointly.
    guide FullRankLinReg for LinReg { (w, b) ~ FullRank; }
    /// Jointly Gaussian with covariance diag + a rank-3 factor.
    guide LowRankLinReg for LinReg { (w, b) ~ LowRank(rank = 3); }
    /// A RealNVP flow over all coefficients.
    guide FlowLinReg for LinReg { (w, b) ~ Flow(RealNVP(layers = 4, hidden = 32)); }
    /// A generator network (one tanh layer of 32 plus a linear path) from 11-dim noise.
    guide ImplicitLinReg for LinReg { (w, b) ~ Implicit(hidden = [32]); }
}

/// `--guide`.
#[derive(Clone, Copy, Debug, PartialEq, ValueEnum)]
enum GuideKind {
    /// One independent Gaussian per coefficient.
    MeanField,
    /// One Gaussian over all 11 coefficients jointly.
    FullRank,
    /// Jointly Gaussian with covariance diag + a rank-3 factor.
    LowRank,
    /// A RealNVP flow (4 layers of 32).
    Flow,
    /// A generator network (hidden layer of 32) from 11-dim noise.
    Implicit,
}

impl GuideKind {
    fn name(self) -> &'static str {
        match self {
            GuideKind::MeanField => "mean-field",
            GuideKind::FullRank => "full-rank",
            GuideKind::LowRank => "low-rank",
            GuideKind::Flow => "flow",
            GuideKind::Implicit => "implicit",
        }
    }
}

/// Bayesian linear regression on the diabetes data against the exact posterior.
#[derive(Parser, Debug)]
#[command(name = "linear_regression")]
struct Args {
    /// The data in their own units, with a wide prior and every fit option at ravi's
    /// defaults but for the flags given.
    #[arg(long)]
    raw: bool,
    /// The device to fit on (cuda needs `--features cuda`).
    #[arg(long, default_value = "cpu", value_parser = ["cpu", "cuda"])]
    device: String,
    /// The guide family.
    #[arg(long, value_enum, default_value = "mean-field")]
    guide: GuideKind,
    /// The estimator of the entropy term's gradient (analytic: the analytic entropy)
    /// [default: ravi's, path-derivative].
    #[arg(long, value_parser = PossibleValuesParser::new(["path-derivative", "analytic", "analytic-kl", "standard"]).map(|e| estimator(&e)))]
    estimator: Option<Estimator>,
    /// Fraction of the steps that take the analytic entropy first.
    #[arg(long, default_value_t = FitOptions::default().analytic_warmup)]
    warmup: f32,
    /// Fit steps.
    #[arg(long, default_value_t = 6000)]
    steps: usize,
    /// Draws per step.
    #[arg(long, default_value_t = 16)]
    particles: usize,
    /// Draws from the fitted guide for the moments and the ELBO.
    #[arg(long, default_value_t = 10_000)]
    samples: usize,
    /// Seed of the fit's draws.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Adam's learning rate at the first step (decaying to lr/100).
    #[arg(long, default_value_t = 0.02)]
    lr: f32,
    /// Print the figures as one line of JSON.
    #[arg(long)]
    json: bool,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

/// `--estimator`'s value.
fn estimator(name: &str) -> Estimator {
    match name {
        "analytic" => Estimator::AnalyticEntropy,
        "standard" => Estimator::Standard,
        "analytic-kl" => Estimator::AnalyticKl,
        _ => Estimator::PathDerivative,
    }
}

/// Features as rows, and the target.
type Dataset = (Vec<Vec<f64>>, Vec<f64>);

/// The diabetes features and target, z-scored with the population sd (ddof = 0) unless
/// `raw`.
fn load(raw: bool) -> Result<Dataset, Box<dyn std::error::Error>> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/data/diabetes.csv");
    let table = ravi::csv::Table::read(path)?;
    let mut x = table.columns_except(&["target"]);
    let mut y = table
        .column("target")
        .ok_or("diabetes.csv has no `target` column")?;
    if !raw {
        ravi::csv::zscore_columns(&mut x);
        ravi::csv::zscore(&mut y);
    }
    Ok((x, y))
}

/// What a fitted guide says, next to what it should say.
struct Outcome {
    posterior: Posterior,
    elbo: f64,
    fit_seconds: f64,
    report: ravi::FitReport,
}

fn fit_guide<D: Backend, G: Guide<D>>(
    mut guide: G,
    data: &<G::Model as Model>::Data,
    opts: &FitOptions,
    samples: usize,
) -> Result<Outcome, ravi::FitError> {
    let started = std::time::Instant::now();
    let report = ravi::fit(&mut guide, data, opts)?;
    let fit_seconds = started.elapsed().as_secs_f64();
    Ok(Outcome {
        elbo: ravi::elbo(&guide, data, samples)?,
        posterior: Posterior::from_guide(&guide, samples),
        fit_seconds,
        report,
    })
}

/// The data as one model or the other takes it.
enum Data {
    Scaled(LinRegData),
    Raw(RawLinRegData),
}

/// Fits the chosen guide on the device `dev`.
fn fit_kind<D: Backend>(
    kind: GuideKind,
    dev: &D,
    data: &Data,
    opts: &FitOptions,
    samples: usize,
) -> Result<Outcome, ravi::FitError> {
    match data {
        Data::Scaled(data) => match kind {
            GuideKind::MeanField => fit_guide(MeanFieldLinReg::new(dev), data, opts, samples),
            GuideKind::FullRank => fit_guide(FullRankLinReg::new(dev), data, opts, samples),
            GuideKind::LowRank => fit_guide(LowRankLinReg::new(dev), data, opts, samples),
            GuideKind::Flow => fit_guide(FlowLinReg::new(dev), data, opts, samples),
            GuideKind::Implicit => fit_guide(ImplicitLinReg::new(dev), data, opts, samples),
        },
        Data::Raw(data) => match kind {
            GuideKind::MeanField => fit_guide(MeanFieldRaw::new(dev), data, opts, samples),
            GuideKind::FullRank => fit_guide(FullRankRaw::new(dev), data, opts, samples),
            GuideKind::LowRank => fit_guide(LowRankRaw::new(dev), data, opts, samples),
            GuideKind::Flow => fit_guide(FlowRaw::new(dev), data, opts, samples),
            GuideKind::Implicit => fit_guide(ImplicitRaw::new(dev), data, opts, samples),
        },
    }
}

/// The options for `--raw`: ravi's defaults, but where a flag was `given`.
fn raw_options(flags: &FitOptions, given: impl Fn(&str) -> bool) -> FitOptions {
    let defaults = FitOptions::default();
    FitOptions {
        steps: if given("steps") {
            flags.steps
        } else {
            defaults.steps
        },
        particles: if given("particles") {
            flags.particles
        } else {
            defaults.particles
        },
        schedule: if given("lr") {
            flags.schedule
        } else {
            defaults.schedule
        },
        analytic_warmup: if given("warmup") {
            flags.analytic_warmup
        } else {
            defaults.analytic_warmup
        },
        ..flags.clone()
    }
}

/// ‖A − B‖_F / ‖B‖_F
fn relative_frobenius(a: &[Vec<f64>], b: &[Vec<f64>]) -> f64 {
    let diff: f64 = a
        .iter()
        .zip(b)
        .flat_map(|(r, s)| r.iter().zip(s).map(|(x, y)| (x - y).powi(2)))
        .sum();
    let norm: f64 = b.iter().flatten().map(|y| y * y).sum();
    (diff / norm).sqrt()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let matches = Args::command().get_matches();
    let args = Args::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let given = |id: &str| matches.value_source(id) == Some(ValueSource::CommandLine);
    let (x, y) = load(args.raw)?;
    // the reference from the data as fitted: rounded to f32
    let xf: Vec<Vec<f64>> = x
        .iter()
        .map(|r| r.iter().map(|&v| f64::from(v as f32)).collect())
        .collect();
    let yf: Vec<f64> = y.iter().map(|&v| f64::from(v as f32)).collect();
    let (prior_sd, noise_sd) = if args.raw {
        (RAW_PRIOR_SD, RAW_NOISE_SD)
    } else {
        (1.0, NOISE_SD)
    };
    let exact = ravi::exact::linear_regression(&xf, &yf, prior_sd, noise_sd, true);
    let (xa, ya) = (
        Array::from_rows_f64(&x)?,
        Array::vector(y.iter().map(|&v| v as f32).collect()),
    );
    let data = if args.raw {
        Data::Raw(RawLinRegData { x: xa, y: ya })
    } else {
        Data::Scaled(LinRegData { x: xa, y: ya })
    };
    let flags = FitOptions {
        steps: args.steps,
        particles: args.particles,
        schedule: Schedule::Exponential {
            start: args.lr,
            end: args.lr / 100.0,
        },
        seed: args.seed,
        estimator: args.estimator.unwrap_or_default(),
        analytic_warmup: args.warmup,
        ..FitOptions::default()
    };
    let opts = FitOptions {
        progress: !args.quiet && !args.json,
        warnings: !args.json,
        // a new user's first fit: ravi's defaults, but for flags given on the command line
        ..if args.raw {
            raw_options(&flags, given)
        } else {
            flags
        }
    };
    let out = match args.device.as_str() {
        "cpu" => fit_kind(
            args.guide,
            &Cpu::seeded(args.seed),
            &data,
            &opts,
            args.samples,
        )?,
        #[cfg(feature = "cuda")]
        "cuda" => fit_kind(
            args.guide,
            &ravi::Cuda::seeded(args.seed),
            &data,
            &opts,
            args.samples,
        )?,
        other => {
            return Err(format!(
                "device {other} is not available in this build (cpu; cuda with --features cuda)"
            )
            .into())
        }
    };
    let post = &out.posterior;
    let (w, b) = (
        post.site("w").expect("site w"),
        post.site("b").expect("site b"),
    );
    let mean: Vec<f64> = w
        .mean
        .iter()
        .chain(&b.mean)
        .map(|&v| f64::from(v))
        .collect();
    let sd: Vec<f64> = w.sd.iter().chain(&b.sd).map(|&v| f64::from(v)).collect();
    let exact_sd: Vec<f64> = (0..=D).map(|i| exact.cov[i][i].sqrt()).collect();
    let cov = post.covariance();
    let cov_error = relative_frobenius(&cov, &exact.cov);
    let (elbo, fit_secs) = (out.elbo, out.fit_seconds);
    let report = &out.report;
    let worst_mean = mean
        .iter()
        .zip(&exact.mean)
        .zip(&exact_sd)
        .map(|((m, e), s)| ((m - e) / s).abs())
        .fold(0.0f64, f64::max);
    // a mean-field guide is held to its own optimum, the others to the exact posterior
    let target_sd = if args.guide == GuideKind::MeanField {
        &exact.mean_field_sd
    } else {
        &exact_sd
    };
    let worst_sd = sd
        .iter()
        .zip(target_sd)
        .map(|(s, t)| (s / t - 1.0).abs())
        .fold(0.0f64, f64::max);

    if args.json {
        let out = serde_json::json!({
            "guide": args.guide.name(),
            "mean": mean,
            "sd": sd,
            "cov": cov,
            "elbo": elbo,
            "exact_mean": exact.mean,
            "exact_sd": exact_sd,
            "exact_cov": exact.cov,
            "mf_optimal_sd": exact.mean_field_sd,
            "log_evidence": exact.log_evidence,
            "mf_optimal_elbo": exact.mean_field_elbo,
            "cov_relative_error": cov_error,
            "fit_seconds": fit_secs,
            "raw": args.raw,
            "steps": report.steps,
            "converged": report.converged,
            "init": format!("{:?}", report.init.method),
            "k_hat": report.diagnostics.map(|d| d.k_hat),
            "worst_mean_error_sds": worst_mean,
            "worst_sd_error": worst_sd,
        });
        println!("{out}");
        return Ok(());
    }
    println!(
        "Bayesian linear regression, diabetes{} (N = {}, D = {D}), {} guide",
        if args.raw { " in raw units" } else { "" },
        y.len(),
        args.guide.name()
    );
    println!(
        "started at {:?} ({:.3} s), {} steps ({}), {} particles, {:.2} s in all",
        report.init.method,
        report.init.seconds,
        report.steps,
        if report.converged {
            "converged"
        } else {
            "not converged"
        },
        opts.particles,
        fit_secs
    );
    if let Some(d) = report.diagnostics {
        println!("diagnostics: {d}");
    }
    println!(
        "worst mean error {worst_mean:.4} exact sds, worst sd error {:.2}% (of the {})\n",
        100.0 * worst_sd,
        if args.guide == GuideKind::MeanField {
            "mean-field optimum"
        } else {
            "exact sd"
        }
    );
    println!(
        "{:<6} {:>10} {:>10} {:>10} {:>10} {:>10}",
        "", "mean", "exact", "sd", "mf-opt sd", "exact sd"
    );
    for i in 0..=D {
        let name = if i < D {
            format!("w[{i}]")
        } else {
            "b".to_string()
        };
        println!(
            "{name:<6} {:>10.4} {:>10.4} {:>10.4} {:>10.4} {:>10.4}",
            mean[i], exact.mean[i], sd[i], exact.mean_field_sd[i], exact_sd[i]
        );
    }
    println!(
        "\ncovariance vs exact (relative Frobenius error, {} draws): {cov_error:.4}",
        args.samples
    );
    println!("ELBO ({} particles)      {elbo:>12.3}", args.samples);
    println!("mean-field optimum ELBO   {:>12.3}", exact.mean_field_elbo);
    println!("exact log evidence        {:>12.3}", exact.log_evidence);
    Ok(())
}
