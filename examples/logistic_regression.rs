//! Bayesian logistic regression on the breast-cancer data: 30 z-scored features, a
//! Normal(0, 1) prior on every coefficient, trained on the first 80% of the rows and
//! evaluated on the rest by the posterior predictive.
//!
//! ```text
//! cargo run --release --example logistic_regression -- [--device cpu|cuda] [--guide mean-field|full-rank]
//!     [--steps N] [--seed K] [--draws M] [--json]
//! ```

use clap::{Parser, ValueEnum};
use ravi::prelude::*;

const D: usize = 30;

model! {
    /// Logistic regression with a standard-normal prior.
    model Logistic(x: [N, D], y: [N] in 0..2) {
        w ~ Normal(0.0, 1.0) [D];
        b ~ Normal(0.0, 1.0);
        y ~ Bernoulli(logits = x @ w + b);
    }
}

guide! {
    guide MeanFieldLogistic for Logistic { w ~ MeanField; b ~ MeanField; }
    guide FullRankLogistic for Logistic { (w, b) ~ FullRank; }
}

/// Bayesian logistic regression on the breast-cancer data, scored on held-out rows.
#[derive(Parser, Debug)]
#[command(name = "logistic_regression")]
struct Args {
    /// The device to fit on (cuda needs `--features cuda`).
    #[arg(long, default_value = "cpu", value_parser = ["cpu", "cuda"])]
    device: String,
    /// The guide family.
    #[arg(long, value_enum, default_value = "mean-field")]
    guide: GuideKind,
    /// Fit steps.
    #[arg(long, default_value_t = 5000)]
    steps: usize,
    /// Seed of the fit's draws.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Draws of the posterior predictive.
    #[arg(long, default_value_t = 4000)]
    draws: usize,
    /// Print the figures as one line of JSON.
    #[arg(long)]
    json: bool,
}

/// `--guide`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum GuideKind {
    /// Independent Gaussians.
    MeanField,
    /// One Gaussian over every coefficient.
    FullRank,
}

/// Features as rows, and the labels.
type Dataset = (Vec<Vec<f64>>, Vec<f64>);

/// Features z-scored over the whole file (population sd), and the 0/1 labels.
fn load() -> Result<Dataset, Box<dyn std::error::Error>> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/data/breast_cancer.csv");
    let table = ravi::csv::Table::read(path)?;
    let mut x = table.columns_except(&["malignant0_benign1"]);
    let y = table
        .column("malignant0_benign1")
        .ok_or("breast_cancer.csv has no label column")?;
    ravi::csv::zscore_columns(&mut x);
    Ok((x, y))
}

fn fitted<D: Backend, G: Guide<D, Model = Logistic>>(
    mut g: G,
    data: &LogisticData,
    opts: &FitOptions,
    draws: usize,
) -> Result<Posterior, ravi::FitError> {
    ravi::fit(&mut g, data, opts)?;
    Ok(Posterior::from_guide(&g, draws))
}

/// Fits the chosen guide on the device `dev`.
fn fit_kind<D: Backend>(
    full_rank: bool,
    dev: &D,
    data: &LogisticData,
    opts: &FitOptions,
    draws: usize,
) -> Result<Posterior, ravi::FitError> {
    if full_rank {
        fitted(FullRankLogistic::new(dev), data, opts, draws)
    } else {
        fitted(MeanFieldLogistic::new(dev), data, opts, draws)
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let (x, y) = load()?;
    let n_train = (0.8 * x.len() as f64).floor() as usize;
    let data = LogisticData {
        x: Array::from_rows_f64(&x[..n_train])?,
        y: Array::vector(y[..n_train].iter().map(|&v| v as f32).collect()),
    };
    let opts = FitOptions {
        steps: args.steps,
        seed: args.seed,
        progress: !args.json,
        ..FitOptions::default()
    };
    let post = match args.device.as_str() {
        "cpu" => fit_kind(
            args.guide == GuideKind::FullRank,
            &Cpu::seeded(args.seed),
            &data,
            &opts,
            args.draws,
        )?,
        #[cfg(feature = "cuda")]
        "cuda" => fit_kind(
            args.guide == GuideKind::FullRank,
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

    // The posterior predictive: P(y = 1 | x) averaged over the draws.
    let draws = post.joint_draws(); // w[0..30] then b
    let (test_x, test_y) = (&x[n_train..], &y[n_train..]);
    let mut correct = 0;
    let mut nll = 0.0;
    for (row, &label) in test_x.iter().zip(test_y) {
        let p: f64 = draws
            .iter()
            .map(|d| {
                let logit: f64 = row.iter().zip(&d[..D]).map(|(a, b)| a * b).sum::<f64>() + d[D];
                1.0 / (1.0 + (-logit).exp())
            })
            .sum::<f64>()
            / draws.len() as f64;
        if (p > 0.5) == (label > 0.5) {
            correct += 1;
        }
        nll -= if label > 0.5 { p.ln() } else { (1.0 - p).ln() };
    }
    let test_acc = correct as f64 / test_y.len() as f64;
    let test_nll = nll / test_y.len() as f64;
    let (w, b) = (post.site("w").expect("w"), post.site("b").expect("b"));
    let mean: Vec<f64> = w
        .mean
        .iter()
        .chain(&b.mean)
        .map(|&v| f64::from(v))
        .collect();
    let sd: Vec<f64> = w.sd.iter().chain(&b.sd).map(|&v| f64::from(v)).collect();

    if args.json {
        let out = serde_json::json!({ "test_acc": test_acc, "test_nll": test_nll, "mean": mean, "sd": sd });
        println!("{out}");
        return Ok(());
    }
    let guide = if args.guide == GuideKind::FullRank {
        "full-rank"
    } else {
        "mean-field"
    };
    println!("Bayesian logistic regression, breast cancer ({n_train} train / {} test rows), {guide} guide", test_y.len());
    println!(
        "test accuracy {test_acc:.4}, test NLL {test_nll:.4} (posterior predictive, {} draws)\n",
        args.draws
    );
    let names = ravi::csv::Table::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/data/breast_cancer.csv"
    ))?
    .header;
    let mut order: Vec<usize> = (0..D).collect();
    order.sort_by(|&i, &j| mean[j].abs().total_cmp(&mean[i].abs()));
    println!("the 5 largest coefficients:");
    println!(
        "{:<24} {:>9} {:>9} {:>9} {:>9}",
        "", "mean", "sd", "q05", "q95"
    );
    for &i in &order[..5] {
        println!(
            "{:<24} {:>9.3} {:>9.3} {:>9.3} {:>9.3}",
            names[i], mean[i], sd[i], w.q05[i], w.q95[i]
        );
    }
    Ok(())
}
