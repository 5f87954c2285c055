//! The eight schools (Rubin 1981; Gelman et al., Bayesian Data Analysis, §5.5): effects of
//! coaching programs in eight schools, with their published estimates and standard errors,
//! in the non-centered hierarchical form: θ_j = μ + τ η_j.
//!
//! ```text
//! cargo run --release --example eight_schools -- [--device cpu|cuda] [--guide full-rank|mean-field] [--steps N]
//!     [--seed K] [--draws M] [--json]
//! ```

use clap::{Parser, ValueEnum};
use ravi::prelude::*;

/// The estimated effects and their standard errors.
const EFFECTS: [f32; 8] = [28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0];
const STD_ERRORS: [f32; 8] = [15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0];

model! {
    /// Non-centered: the school effects are μ + τ η with η standard normal.
    model EightSchools(y: [8], sigma: [8]) {
        mu ~ Normal(0.0, 5.0);
        tau ~ HalfCauchy(5.0);
        eta ~ Normal(0.0, 1.0) [8];
        y ~ Normal(mu + tau * eta, sigma);
    }
}

guide! {
    guide FullRankSchools for EightSchools { (mu, tau, eta) ~ FullRank; }
    guide MeanFieldSchools for EightSchools { mu ~ MeanField; tau ~ MeanField; eta ~ MeanField; }
}

/// The eight schools, non-centered, fitted with a full-rank or mean-field guide.
#[derive(Parser, Debug)]
#[command(name = "eight_schools")]
struct Args {
    /// The device to fit on (cuda needs `--features cuda`).
    #[arg(long, default_value = "cpu", value_parser = ["cpu", "cuda"])]
    device: String,
    /// The guide family.
    #[arg(long, value_enum, default_value = "full-rank")]
    guide: GuideKind,
    /// Fit steps.
    #[arg(long, default_value_t = 10_000)]
    steps: usize,
    /// Seed of the fit's draws.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Draws from the fitted guide for the summaries.
    #[arg(long, default_value_t = 20_000)]
    draws: usize,
    /// Print the figures as one line of JSON.
    #[arg(long)]
    json: bool,
}

/// `--guide`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum GuideKind {
    /// One Gaussian over mu, tau and the eight eta.
    FullRank,
    /// Independent Gaussians.
    MeanField,
}

/// Mean, sd, 5% and 95% quantiles of a sample.
struct Summary {
    mean: f64,
    sd: f64,
    q05: f64,
    q95: f64,
}

fn summarize(mut v: Vec<f64>) -> Summary {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let sd = (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
    v.sort_by(f64::total_cmp);
    let q = |p: f64| {
        let h = (v.len() - 1) as f64 * p;
        let (lo, hi) = (h.floor() as usize, h.ceil() as usize);
        v[lo] + (h - lo as f64) * (v[hi] - v[lo])
    };
    Summary {
        mean,
        sd,
        q05: q(0.05),
        q95: q(0.95),
    }
}

impl Summary {
    fn json(&self) -> serde_json::Value {
        serde_json::json!({ "mean": self.mean, "sd": self.sd, "q05": self.q05, "q95": self.q95 })
    }
}

fn fitted<D: Backend, G: Guide<D, Model = EightSchools>>(
    mut g: G,
    data: &EightSchoolsData,
    opts: &FitOptions,
    draws: usize,
) -> Result<Posterior, ravi::FitError> {
    ravi::fit(&mut g, data, opts)?;
    Ok(Posterior::from_guide(&g, draws))
}

/// Fits the chosen guide on the device `dev`.
fn fit_kind<D: Backend>(
    mean_field: bool,
    dev: &D,
    data: &EightSchoolsData,
    opts: &FitOptions,
    draws: usize,
) -> Result<Posterior, ravi::FitError> {
    if mean_field {
        fitted(MeanFieldSchools::new(dev), data, opts, draws)
    } else {
        fitted(FullRankSchools::new(dev), data, opts, draws)
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let data = EightSchoolsData {
        y: Array::vector(EFFECTS.to_vec()),
        sigma: Array::vector(STD_ERRORS.to_vec()),
    };
    let opts = FitOptions {
        steps: args.steps,
        seed: args.seed,
        progress: !args.json,
        ..FitOptions::default()
    };
    let post = match args.device.as_str() {
        "cpu" => fit_kind(
            args.guide == GuideKind::MeanField,
            &Cpu::seeded(args.seed),
            &data,
            &opts,
            args.draws,
        )?,
        #[cfg(feature = "cuda")]
        "cuda" => fit_kind(
            args.guide == GuideKind::MeanField,
            &ravi::Cuda::seeded(args.seed),
            &data,
            &opts,
            args.draws,
        )?,
        other => {
            return Err(format!(
                "device {other} is not available in this build (cpu; cuda with --features cuda)"
            )
            .into())
        }
    };
    // Draws are in each site's own space (τ > 0); θ_j = μ + τ η_j per draw.
    let draws = post.joint_draws(); // mu, tau, eta[0..8]
    let mu = summarize(draws.iter().map(|d| d[0]).collect());
    let tau = summarize(draws.iter().map(|d| d[1]).collect());
    let theta: Vec<Summary> = (0..8)
        .map(|j| summarize(draws.iter().map(|d| d[0] + d[1] * d[2 + j]).collect()))
        .collect();

    if args.json {
        let list = |f: fn(&Summary) -> f64| theta.iter().map(f).collect::<Vec<f64>>();
        let out = serde_json::json!({
            "mu": mu.json(),
            "tau": tau.json(),
            "theta": { "mean": list(|s| s.mean), "sd": list(|s| s.sd), "q05": list(|s| s.q05), "q95": list(|s| s.q95) },
        });
        println!("{out}");
        return Ok(());
    }
    let guide = if args.guide == GuideKind::MeanField {
        "mean-field"
    } else {
        "full-rank"
    };
    println!(
        "Eight schools, non-centered, {guide} guide, {} steps\n",
        args.steps
    );
    println!(
        "{:<10} {:>8} {:>8} {:>8} {:>8}",
        "", "mean", "sd", "q05", "q95"
    );
    let row = |name: &str, s: &Summary| {
        println!(
            "{name:<10} {:>8.2} {:>8.2} {:>8.2} {:>8.2}",
            s.mean, s.sd, s.q05, s.q95
        )
    };
    row("mu", &mu);
    row("tau", &tau);
    for (j, s) in theta.iter().enumerate() {
        row(&format!("theta[{j}]"), s);
    }
    Ok(())
}
