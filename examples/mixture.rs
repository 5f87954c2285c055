//! A two-component Gaussian mixture on data with a known truth: 600 draws from
//! 0.3 N(−2, 0.8²) + 0.7 N(3, 1.2²). The locations are `ordered` (the first below the
//! second), which removes the labels' symmetry; the component is marginalised by
//! `Mixture(logits, Normal(locs, scales))`.
//!
//! ```text
//! cargo run --release --example mixture -- [--steps N] [--seed K] [--json]
//! ```

use clap::Parser;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal as RNormal};
use ravi::prelude::*;

model! {
    /// Two Normal components with ordered locations.
    model TwoComponents(y: [N]) {
        locs ~ Normal(0.0, 10.0) [2] ordered;
        scales ~ HalfNormal(2.0) [2];
        logits ~ Normal(0.0, 1.0) [2];
        track weights = softmax(logits);
        y ~ Mixture(logits, Normal(locs, scales));
    }
}

guide! {
    guide TwoComponentsGuide for TwoComponents { (locs, scales, logits) ~ FullRank; }
}

/// A two-component Gaussian mixture fitted to 600 draws from a known truth.
#[derive(Parser, Debug)]
#[command(name = "mixture")]
struct Args {
    /// Fit steps.
    #[arg(long, default_value_t = 3000)]
    steps: usize,
    /// Seed of the fit's draws.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Print the figures as one line of JSON.
    #[arg(long)]
    json: bool,
}

const TRUTH: [(f64, f64, f64); 2] = [(0.3, -2.0, 0.8), (0.7, 3.0, 1.2)];

fn draws(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let (_, loc, scale) = if rng.gen::<f64>() < TRUTH[0].0 {
                TRUTH[0]
            } else {
                TRUTH[1]
            };
            RNormal::new(loc, scale).unwrap().sample(&mut rng) as f32
        })
        .collect()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let Args { steps, seed, json } = Args::parse();
    let data = TwoComponentsData {
        y: Array::vector(draws(600, 7)),
    };
    let mut guide = TwoComponentsGuide::new(&Cpu::seeded(seed));
    let opts = FitOptions {
        steps,
        seed,
        progress: !json,
        ..FitOptions::default()
    };
    ravi::fit(&mut guide, &data, &opts)?;
    let post = Posterior::from_guide(&guide, 10_000);
    let site = |name: &str| post.site(name).ok_or(format!("no site {name}"));
    let (locs, scales, weights) = (site("locs")?, site("scales")?, site("weights")?);
    if json {
        let row =
            |s: &ravi::SiteSummary| serde_json::json!({"mean": s.mean, "q05": s.q05, "q95": s.q95});
        println!(
            "{}",
            serde_json::json!({"locs": row(locs), "scales": row(scales), "weights": row(weights)})
        );
        return Ok(());
    }
    println!("Two-component Gaussian mixture, 600 draws, {steps} steps\n");
    println!(
        "{:<12} {:>8} {:>8} {:>8} {:>8}",
        "", "truth", "mean", "5%", "95%"
    );
    for (k, &(w, loc, scale)) in TRUTH.iter().enumerate() {
        for (name, truth, s) in [
            ("weight", w, weights),
            ("loc", loc, locs),
            ("scale", scale, scales),
        ] {
            println!(
                "{:<12} {truth:>8.3} {:>8.3} {:>8.3} {:>8.3}",
                format!("{name}[{k}]"),
                s.mean[k],
                s.q05[k],
                s.q95[k]
            );
        }
    }
    Ok(())
}
