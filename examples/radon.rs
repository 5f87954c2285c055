//! Household radon in Minnesota (Gelman and Hill, 2006): log radon of 919 homes in 85
//! counties, with a varying intercept per county and the floor of the measurement
//! (0 basement, 1 first floor) as predictor. Non-centered: a_j = μ_a + σ_a η_j, η_j ~ N(0, 1);
//! `a[county]` picks each home's county intercept.
//!
//! ```text
//! cargo run --release --example radon -- [--steps N] [--seed K] [--draws M] [--json]
//! ```

use clap::Parser;
use ravi::prelude::*;

model! {
    /// Varying intercepts by county, one slope for the floor.
    model Radon(floor: [N], county: [N] in 0..85, log_radon: [N]) {
        mu_a ~ Normal(0.0, 10.0);
        sigma_a ~ HalfNormal(1.0);
        eta ~ Normal(0.0, 1.0) [85];
        b ~ Normal(0.0, 10.0);
        sigma ~ HalfNormal(1.0);
        let a = mu_a + sigma_a * eta;
        log_radon ~ Normal(a[county] + b * floor, sigma);
    }
}

guide! {
    guide RadonGuide for Radon { (mu_a, sigma_a, eta, b, sigma) ~ FullRank; }
}

const COUNTIES: usize = 85;

/// Varying intercepts for household radon in Minnesota, fitted with a full-rank guide.
#[derive(Parser, Debug)]
#[command(name = "radon")]
struct Args {
    /// Fit steps.
    #[arg(long, default_value_t = 10_000)]
    steps: usize,
    /// Seed of the fit's draws.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Draws from the fitted guide for the summaries.
    #[arg(long, default_value_t = 10_000)]
    draws: usize,
    /// Print the figures as one line of JSON.
    #[arg(long)]
    json: bool,
}

/// Mean, 5% and 95% quantiles of a sample.
fn summary(mut v: Vec<f64>) -> (f64, f64, f64) {
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    v.sort_by(f64::total_cmp);
    let q = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
    (mean, q(0.05), q(0.95))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let table = ravi::csv::Table::read("data/radon_mn.csv")?;
    let column = |name: &str| -> Result<Vec<f32>, String> {
        let c = table.column(name).ok_or(format!("no column {name}"))?;
        Ok(c.iter().map(|&v| v as f32).collect())
    };
    let county = column("county")?;
    let data = RadonData {
        floor: Array::vector(column("floor")?),
        county: Array::vector(county.clone()),
        log_radon: Array::vector(column("log_radon")?),
    };
    let mut guide = RadonGuide::new(&Cpu::seeded(args.seed));
    let opts = FitOptions {
        steps: args.steps,
        seed: args.seed,
        progress: !args.json,
        ..FitOptions::default()
    };
    let report = ravi::fit(&mut guide, &data, &opts)?;
    let post = Posterior::from_guide(&guide, args.draws);
    // Each draw in the model's site order: mu_a, sigma_a, eta[0..85], b, sigma.
    let draws = post.joint_draws();
    let pick = |f: &dyn Fn(&[f64]) -> f64| summary(draws.iter().map(|d| f(d)).collect());
    let homes = |j: usize| county.iter().filter(|&&c| c as usize == j).count();
    // A few counties: the one with the most homes, some with one or two.
    let mut shown: Vec<usize> = (0..COUNTIES).collect();
    shown.sort_by_key(|&j| std::cmp::Reverse(homes(j)));
    let shown: Vec<usize> = [shown[0], shown[1], shown[40], shown[83], shown[84]].to_vec();
    let hyper = [
        ("mu_a", pick(&|d| d[0])),
        ("sigma_a", pick(&|d| d[1])),
        ("b", pick(&|d| d[COUNTIES + 2])),
        ("sigma", pick(&|d| d[COUNTIES + 3])),
    ];
    let intercepts: Vec<(usize, (f64, f64, f64))> = shown
        .iter()
        .map(|&j| (j, pick(&|d| d[0] + d[1] * d[2 + j])))
        .collect();
    if args.json {
        let row =
            |(m, lo, hi): (f64, f64, f64)| serde_json::json!({"mean": m, "q05": lo, "q95": hi});
        let out = serde_json::json!({
            "hyperparameters": hyper.iter().map(|(n, s)| (n.to_string(), row(*s))).collect::<serde_json::Map<_, _>>(),
            "intercepts": intercepts.iter().map(|(j, s)| serde_json::json!({"county": j, "homes": homes(*j), "a": row(*s)})).collect::<Vec<_>>(),
            "elbo": report.elbo.last(),
        });
        println!("{out}");
        return Ok(());
    }
    println!(
        "Minnesota radon, varying intercepts (non-centered), full-rank guide, {} steps\n",
        args.steps
    );
    println!("{:<18} {:>8} {:>8} {:>8}", "", "mean", "5%", "95%");
    for (name, (m, lo, hi)) in hyper {
        println!("{name:<18} {m:>8.3} {lo:>8.3} {hi:>8.3}");
    }
    for (j, (m, lo, hi)) in intercepts {
        let label = format!("a[{j}] (n = {})", homes(j));
        println!("{label:<18} {m:>8.3} {lo:>8.3} {hi:>8.3}");
    }
    Ok(())
}
