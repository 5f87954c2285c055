//! A Bayesian neural network on a 1-D toy regression, and its posterior predictive drawn
//! with `ravi::plot`: y = sin(3x) + N(0, 0.1²) at 100 points x in [−1, 1] with no data in
//! the gap (0, 0.6); a 1-20-1 tanh net with N(0, 1) on every weight and a learned noise
//! scale (HalfNormal(1) prior), fitted with a full-rank guide (default) or a mean-field one
//! (about 4 s for the 20,000 steps in release).
//! The predictive at 200 inputs in [−1.5, 1.5] is drawn as its mean and two 90% bands: the
//! predictive's (noise included) and the function's (the net's output, a `track`ed value).
//! Both widen in the gap and beyond the data.
//!
//! The net reads 3x: a tanh unit whose weights are N(0, 1) turns over about one unit of its
//! input, so on x itself the prior's functions are smooth on the scale of the gap and the
//! fitted function's sd there is only about 1.5 times its sd on the data; on 3x it is about
//! 2.5 times (0.13 against 0.05). A mean-field guide's band hardly widens beyond the data.
//!
//! ```text
//! cargo run --release --example bnn_regression --features plot -- [--guide full-rank|mean-field]
//!     [--steps N] [--seed K] [--out DIR]
//! ```
//!
//! Writes `bnn_regression.png` (the data, the predictive mean and bands),
//! `bnn_regression_elbo.png` (the ELBO per step) and `bnn_regression_marginals.png` (the
//! noise scale and the first weights) into `--out` (default `target`).

use std::path::PathBuf;

use clap::{Parser, ValueEnum};
use rand::{Rng as _, SeedableRng as _};
use rand_distr::Distribution as _;
use ravi::plot::{self, Band};
use ravi::prelude::*;

model! {
    net Mlp(x: [B, 1]) -> [B, 1] { Linear(1, 20) -> tanh -> Linear(20, 1) }
    /// y = f(x) + noise, f a 1-20-1 tanh net of 3x whose 61 weights are one latent site.
    model Sine(x: [N, 1], y: [N]) {
        theta ~ Normal(0.0, 1.0) [params(Mlp)];
        sigma ~ HalfNormal(1.0);
        track f = sum(Mlp(3.0 * x; theta), 1);
        y ~ Normal(f, sigma);
    }
}

guide! {
    /// One Gaussian over all 61 weights and the noise scale: 62 dimensions.
    guide SineFullRank for Sine { (theta, sigma) ~ FullRank; }
    /// Independent Gaussians.
    guide SineMeanField for Sine { theta ~ MeanField; sigma ~ MeanField; }
}

/// `--guide`.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum GuideKind {
    /// One Gaussian over every weight and the noise scale.
    FullRank,
    /// Independent Gaussians (known to keep the band narrow between clusters of data).
    MeanField,
}

/// A 1-20-1 Bayesian MLP on y = sin(3x) + noise with a gap in the data; writes the
/// predictive bands, the ELBO trace and marginals as PNGs.
#[derive(Parser, Debug)]
#[command(name = "bnn_regression")]
struct Args {
    /// The guide family.
    #[arg(long, value_enum, default_value = "full-rank")]
    guide: GuideKind,
    /// Fit steps.
    #[arg(long, default_value_t = 20_000)]
    steps: usize,
    /// Seed of the fit's draws (the data are always the same).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Folder for the PNGs.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/target"))]
    out: PathBuf,
}

/// Rows of data.
const ROWS: usize = 100;
/// No data in (GAP.0, GAP.1).
const GAP: (f32, f32) = (0.0, 0.6);
/// Inputs of the predictive, evenly spaced on [−1.5, 1.5].
const GRID: usize = 200;
/// Draws of the predictive.
const DRAWS: usize = 2000;

/// 100 inputs uniform on [−1, 1] outside the gap, y = sin(3x) + N(0, 0.1²).
fn toy_data() -> (Vec<f32>, Vec<f32>) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut x = Vec::with_capacity(ROWS);
    while x.len() < ROWS {
        let v: f32 = rng.gen_range(-1.0..1.0);
        if !(GAP.0..=GAP.1).contains(&v) {
            x.push(v);
        }
    }
    let y = x
        .iter()
        .map(|&v| {
            let e: f64 = rand_distr::StandardNormal.sample(&mut rng);
            (3.0 * v).sin() + 0.1 * e as f32
        })
        .collect();
    (x, y)
}

/// Fits `guide`, writes the three figures and returns the function's band.
fn fit_and_plot<G: Guide<Cpu, Model = Sine>>(
    mut guide: G,
    args: &Args,
) -> Result<Band, Box<dyn std::error::Error>> {
    let (x, y) = toy_data();
    let data = SineData {
        x: Array::new(x.clone(), vec![ROWS, 1])?,
        y: Array::vector(y.clone()),
    };
    let opts = FitOptions {
        steps: args.steps,
        seed: args.seed,
        ..FitOptions::default()
    };
    let started = std::time::Instant::now();
    let report = ravi::fit(&mut guide, &data, &opts)?;
    println!(
        "fitted {} steps in {:.1} s, final ELBO {:.1}",
        report.steps,
        started.elapsed().as_secs_f64(),
        report.final_elbo
    );

    // New inputs: `y` is observed, so it is not read (zeros of its shape).
    let grid: Vec<f64> = (0..GRID)
        .map(|i| -1.5 + 3.0 * i as f64 / (GRID - 1) as f64)
        .collect();
    let new = SineData {
        x: Array::new(grid.iter().map(|&v| v as f32).collect(), vec![GRID, 1])?,
        y: Array::vector(vec![0.0; GRID]),
    };
    // the predictive of `y`: its mean and sd, the noise included
    let predictive = ravi::predictive(&guide, &new, DRAWS)?;
    let y_new = predictive
        .iter()
        .find(|p| p.site() == "y")
        .ok_or("no predictive for `y`")?;
    let mut noisy = Band::from_predictive(&grid, y_new, 0.9)?;
    noisy.label = "90% predictive interval of y".into();
    // the function without the noise: quantiles of the tracked `f`'s draws
    let at_grid = Posterior::with_data(&guide, &new, DRAWS)?;
    let mut function = Band::from_draws(&grid, &at_grid, "f", 0.9)?;
    function.label = "90% interval of the net's output f".into();

    let posterior = Posterior::from_guide(&guide, 4000);
    let sigma = posterior.site("sigma").ok_or("no site `sigma`")?;
    println!(
        "noise sd {:.3} (90% in [{:.3}, {:.3}]; the truth 0.1)",
        sigma.mean[0], sigma.q05[0], sigma.q95[0]
    );

    let to_f64 = |v: &[f32]| v.iter().map(|&a| f64::from(a)).collect::<Vec<f64>>();
    std::fs::create_dir_all(&args.out)?;
    let files = [
        args.out.join("bnn_regression.png"),
        args.out.join("bnn_regression_elbo.png"),
        args.out.join("bnn_regression_marginals.png"),
    ];
    plot::predictive_bands(
        &to_f64(&x),
        &to_f64(&y),
        &[noisy, function.clone()],
        &files[0],
    )?;
    plot::elbo_trace(&report, &files[1])?;
    plot::marginals(&posterior, &["sigma", "theta"], &files[2])?;
    for f in &files {
        println!("wrote {}", f.display());
    }
    Ok(function)
}

/// The band's mean width over the grid inputs in `range`.
fn width(band: &Band, range: std::ops::RangeInclusive<f64>) -> f64 {
    let widths: Vec<f64> = (0..band.x.len())
        .filter(|&i| range.contains(&band.x[i]))
        .map(|i| band.upper[i] - band.lower[i])
        .collect();
    widths.iter().sum::<f64>() / widths.len().max(1) as f64
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let dev = Cpu::seeded(args.seed);
    let function = match args.guide {
        GuideKind::FullRank => fit_and_plot(SineFullRank::new(&dev), &args)?,
        GuideKind::MeanField => fit_and_plot(SineMeanField::new(&dev), &args)?,
    };
    println!(
        "the function's 90% band is {:.3} wide on the data in [-1, -0.1], {:.3} in the gap \
         [0.1, 0.5], {:.3} beyond the data (|x| > 1.2)",
        width(&function, -1.0..=-0.1),
        width(&function, 0.1..=0.5),
        (width(&function, -1.5..=-1.2) + width(&function, 1.2..=1.5)) / 2.0
    );
    Ok(())
}
