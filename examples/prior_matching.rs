//! Prior matching: fit each guide family to a known target p by maximising the ELBO, which
//! here is log Z − KL(q‖p), and print the KL reached beside the family's optimum.
//!
//! Targets: a 20-dim Gaussian with a seeded random full covariance (written as the
//! posterior of a linear-Gaussian model, so log Z is known in closed form), a 20-dim
//! factorized Normal, and a 2-D banana, u ~ N(0, 1), v ~ N(u² − 1, 0.3²), where a flow
//! should beat mean-field.
//!
//! ```text
//! cargo run --release --example prior_matching -- [--device cpu|cuda] [--steps N] [--seed K] [--draws M] [--json]
//! ```

use clap::Parser;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use ravi::linalg::Matrix;
use ravi::prelude::*;

const D: usize = 20;

model! {
    /// z ~ N(0, I), y = A z + noise observed at 0: the posterior is N(0, (I + AᵀA)⁻¹).
    model GaussianTarget(a: [N, D], y: [N]) {
        z ~ Normal(0.0, 1.0) [D];
        y ~ Normal(a @ z, 1.0);
    }
    /// A factorized Normal with given locations and scales; log Z = 0.
    model FactorizedTarget(loc: [D], scale: [D]) {
        z ~ Normal(loc, scale);
    }
    /// A banana: v's location bends with u²; log Z = 0.
    model Banana() {
        u ~ Normal(0.0, 1.0);
        v ~ Normal(u * u - 1.0, 0.3);
    }
}

guide! {
    guide GaussMf for GaussianTarget { z ~ MeanField; }
    guide GaussFr for GaussianTarget { z ~ FullRank; }
    guide GaussFlow for GaussianTarget { z ~ Flow(RealNVP(layers = 6, hidden = 32)); }
    guide GaussImplicit for GaussianTarget { z ~ Implicit(hidden = [32]); }
    guide FactMf for FactorizedTarget { z ~ MeanField; }
    guide FactFr for FactorizedTarget { z ~ FullRank; }
    guide FactFlow for FactorizedTarget { z ~ Flow(RealNVP(layers = 6, hidden = 32)); }
    guide FactImplicit for FactorizedTarget { z ~ Implicit(hidden = [32]); }
    guide BananaMf for Banana { u ~ MeanField; v ~ MeanField; }
    guide BananaFr for Banana { (u, v) ~ FullRank; }
    guide BananaFlow for Banana { (u, v) ~ Flow(RealNVP(layers = 6, hidden = 32)); }
    guide BananaImplicit for Banana { (u, v) ~ Implicit(hidden = [32]); }
}

/// Fits each guide family to three known targets and prints the KL reached.
#[derive(Parser, Debug)]
#[command(name = "prior_matching")]
struct Args {
    /// The device to fit on (cuda needs `--features cuda`).
    #[arg(long, default_value = "cpu", value_parser = ["cpu", "cuda"])]
    device: String,
    /// Fit steps of each (target, family).
    #[arg(long, default_value_t = 8000)]
    steps: usize,
    /// Seed of the fits' draws.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Draws of the Monte Carlo KL (families without a closed form).
    #[arg(long, default_value_t = 20_000)]
    draws: usize,
    /// Print one line of JSON per (target, family).
    #[arg(long)]
    json: bool,
}

/// One line of the report.
struct Row {
    target: &'static str,
    family: &'static str,
    kl: f64,
    kl_se: f64,
    optimum: Option<f64>,
}

/// A Gaussian: mean and covariance.
struct Gaussian {
    mean: Vec<f64>,
    cov: Matrix,
}

/// KL(q‖p) between Gaussians, with p given by its mean and precision.
fn gaussian_kl(q: &Gaussian, p_mean: &[f64], p_precision: &Matrix) -> f64 {
    let d = q.mean.len();
    let trace: f64 = (0..d)
        .map(|i| {
            (0..d)
                .map(|j| p_precision.get(i, j) * q.cov.get(j, i))
                .sum::<f64>()
        })
        .sum();
    let diff: Vec<f64> = q.mean.iter().zip(p_mean).map(|(a, b)| a - b).collect();
    let quad: f64 = (0..d)
        .map(|i| {
            (0..d)
                .map(|j| diff[i] * p_precision.get(i, j) * diff[j])
                .sum::<f64>()
        })
        .sum();
    0.5 * (trace + quad - d as f64 - q.cov.log_abs_det() - p_precision.log_abs_det())
}

fn mean_field_gaussian<D: Backend>(
    f: &ravi::guides::MeanField,
    params: &ravi::ParamStore<D>,
) -> Gaussian {
    let (loc, scale) = f.loc_scale(params);
    let mut cov = Matrix::zeros(loc.len());
    for (i, s) in scale.iter().enumerate() {
        cov.set(i, i, f64::from(*s).powi(2));
    }
    Gaussian {
        mean: loc.iter().map(|&v| f64::from(v)).collect(),
        cov,
    }
}

fn full_rank_gaussian<D: Backend>(
    f: &ravi::guides::FullRank,
    params: &ravi::ParamStore<D>,
) -> Gaussian {
    let (loc, l) = f.loc_scale_tril(params);
    let l = Matrix::from_f32(loc.len(), &l);
    Gaussian {
        mean: loc.iter().map(|&v| f64::from(v)).collect(),
        cov: l.matmul(&l.transpose()),
    }
}

/// KL = log Z − ELBO by Monte Carlo, with its standard error.
fn monte_carlo_kl<D: Backend, G: Guide<D>>(
    guide: &G,
    data: &<G::Model as Model>::Data,
    log_z: f64,
    draws: usize,
) -> Result<(f64, f64), ravi::FitError> {
    let e = ravi::elbo_draws(guide, data, draws)?;
    let n = e.len() as f64;
    let mean = e.iter().sum::<f64>() / n;
    let var = e.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    Ok((log_z - mean, (var / n).sqrt()))
}

fn fitted<D: Backend, G: Guide<D>>(
    mut guide: G,
    data: &<G::Model as Model>::Data,
    opts: &FitOptions,
) -> Result<G, ravi::FitError> {
    ravi::fit(&mut guide, data, opts)?;
    Ok(guide)
}

/// Fits every family to every target, each on a fresh device of type `D` seeded with
/// `--seed`.
fn prior_match<D: Backend>(args: &Args) -> Result<Vec<Row>, Box<dyn std::error::Error>> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(args.seed);
    let mut normal = || -> f64 { StandardNormal.sample(&mut rng) };
    let dev = || D::seeded(args.seed);
    let opts = FitOptions {
        steps: args.steps,
        seed: args.seed,
        progress: false,
        ..FitOptions::default()
    };
    let mut rows = Vec::new();

    // Gaussian target: precision P = I + AᵀA, A 20×20 with N(0, 1) entries.
    let a: Vec<Vec<f64>> = (0..D).map(|_| (0..D).map(|_| normal()).collect()).collect();
    let mut precision = Matrix::identity(D);
    let mut marginal = Matrix::identity(D); // I + A Aᵀ, the covariance of y
    for i in 0..D {
        for j in 0..D {
            let ata: f64 = (0..D).map(|r| a[r][i] * a[r][j]).sum();
            let aat: f64 = (0..D).map(|c| a[i][c] * a[j][c]).sum();
            precision.set(i, j, precision.get(i, j) + ata);
            marginal.set(i, j, marginal.get(i, j) + aat);
        }
    }
    let log_z = -0.5 * (D as f64 * (2.0 * std::f64::consts::PI).ln() + marginal.log_abs_det());
    let mf_optimum =
        0.5 * ((0..D).map(|i| precision.get(i, i).ln()).sum::<f64>() - precision.log_abs_det());
    let data = GaussianTargetData {
        a: Array::from_rows_f64(&a)?,
        y: Array::vector(vec![0.0; D]),
    };
    let zero = vec![0.0; D];
    let g = fitted(GaussMf::new(&dev()), &data, &opts)?;
    let kl = gaussian_kl(
        &mean_field_gaussian(&g.entry0, g.params()),
        &zero,
        &precision,
    );
    rows.push(Row {
        target: "gaussian_full_rank",
        family: "mean_field",
        kl,
        kl_se: 0.0,
        optimum: Some(mf_optimum),
    });
    let g = fitted(GaussFr::new(&dev()), &data, &opts)?;
    let kl = gaussian_kl(
        &full_rank_gaussian(&g.entry0, g.params()),
        &zero,
        &precision,
    );
    rows.push(Row {
        target: "gaussian_full_rank",
        family: "full_rank",
        kl,
        kl_se: 0.0,
        optimum: Some(0.0),
    });
    let g = fitted(GaussFlow::new(&dev()), &data, &opts)?;
    let (kl, kl_se) = monte_carlo_kl(&g, &data, log_z, args.draws)?;
    rows.push(Row {
        target: "gaussian_full_rank",
        family: "flow",
        kl,
        kl_se,
        optimum: Some(0.0),
    });
    let g = fitted(GaussImplicit::new(&dev()), &data, &opts)?;
    let (kl, kl_se) = monte_carlo_kl(&g, &data, log_z, args.draws)?;
    rows.push(Row {
        target: "gaussian_full_rank",
        family: "implicit",
        kl,
        kl_se,
        optimum: None,
    });

    // Factorized target: locations N(0, 1), scales in [0.2, 2].
    let loc: Vec<f64> = (0..D).map(|_| normal()).collect();
    let scale: Vec<f64> = (0..D)
        .map(|_| 0.2 + 1.8 * (0.5 + 0.5 * normal().tanh()))
        .collect();
    let mut fact_precision = Matrix::zeros(D);
    for (i, s) in scale.iter().enumerate() {
        fact_precision.set(i, i, 1.0 / (s * s));
    }
    let to_f32 = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
    let data = FactorizedTargetData {
        loc: Array::vector(to_f32(&loc)),
        scale: Array::vector(to_f32(&scale)),
    };
    let g = fitted(FactMf::new(&dev()), &data, &opts)?;
    let kl = gaussian_kl(
        &mean_field_gaussian(&g.entry0, g.params()),
        &loc,
        &fact_precision,
    );
    rows.push(Row {
        target: "gaussian_factorized",
        family: "mean_field",
        kl,
        kl_se: 0.0,
        optimum: Some(0.0),
    });
    let g = fitted(FactFr::new(&dev()), &data, &opts)?;
    let kl = gaussian_kl(
        &full_rank_gaussian(&g.entry0, g.params()),
        &loc,
        &fact_precision,
    );
    rows.push(Row {
        target: "gaussian_factorized",
        family: "full_rank",
        kl,
        kl_se: 0.0,
        optimum: Some(0.0),
    });
    let g = fitted(FactFlow::new(&dev()), &data, &opts)?;
    let (kl, kl_se) = monte_carlo_kl(&g, &data, 0.0, args.draws)?;
    rows.push(Row {
        target: "gaussian_factorized",
        family: "flow",
        kl,
        kl_se,
        optimum: Some(0.0),
    });
    let g = fitted(FactImplicit::new(&dev()), &data, &opts)?;
    let (kl, kl_se) = monte_carlo_kl(&g, &data, 0.0, args.draws)?;
    rows.push(Row {
        target: "gaussian_factorized",
        family: "implicit",
        kl,
        kl_se,
        optimum: None,
    });

    // Banana: no closed forms; everything by Monte Carlo.
    let data = BananaData {};
    let (kl, kl_se) = monte_carlo_kl(
        &fitted(BananaMf::new(&dev()), &data, &opts)?,
        &data,
        0.0,
        args.draws,
    )?;
    rows.push(Row {
        target: "banana",
        family: "mean_field",
        kl,
        kl_se,
        optimum: None,
    });
    let (kl, kl_se) = monte_carlo_kl(
        &fitted(BananaFr::new(&dev()), &data, &opts)?,
        &data,
        0.0,
        args.draws,
    )?;
    rows.push(Row {
        target: "banana",
        family: "full_rank",
        kl,
        kl_se,
        optimum: None,
    });
    let (kl, kl_se) = monte_carlo_kl(
        &fitted(BananaFlow::new(&dev()), &data, &opts)?,
        &data,
        0.0,
        args.draws,
    )?;
    rows.push(Row {
        target: "banana",
        family: "flow",
        kl,
        kl_se,
        optimum: Some(0.0),
    });
    let (kl, kl_se) = monte_carlo_kl(
        &fitted(BananaImplicit::new(&dev()), &data, &opts)?,
        &data,
        0.0,
        args.draws,
    )?;
    rows.push(Row {
        target: "banana",
        family: "implicit",
        kl,
        kl_se,
        optimum: None,
    });
    Ok(rows)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let rows = match args.device.as_str() {
        "cpu" => prior_match::<Cpu>(&args)?,
        #[cfg(feature = "cuda")]
        "cuda" => prior_match::<ravi::Cuda>(&args)?,
        other => {
            return Err(format!(
                "device {other} is not available in this build (cpu; cuda with --features cuda)"
            )
            .into())
        }
    };
    if args.json {
        for r in &rows {
            let line = serde_json::json!({
                "target": r.target, "family": r.family, "kl": r.kl, "kl_se": r.kl_se, "optimum": r.optimum,
            });
            println!("{line}");
        }
        return Ok(());
    }
    println!(
        "KL(q‖p) reached by each family ({} steps, seed {})\n",
        args.steps, args.seed
    );
    println!(
        "{:<20} {:<11} {:>10} {:>9} {:>10}",
        "target", "family", "KL", "± se", "optimum"
    );
    for r in &rows {
        let opt = r
            .optimum
            .map_or("unknown".to_string(), |o| format!("{o:.4}"));
        println!(
            "{:<20} {:<11} {:>10.4} {:>9.4} {:>10}",
            r.target, r.family, r.kl, r.kl_se, opt
        );
    }
    let kl_of = |family: &str| {
        rows.iter()
            .find(|r| r.target == "banana" && r.family == family)
            .map(|r| r.kl)
    };
    if let (Some(mf), Some(flow)) = (kl_of("mean_field"), kl_of("flow")) {
        println!(
            "\nbanana: the flow's KL is {:.3} nats below mean-field's",
            mf - flow
        );
    }
    println!(
        "(implicit: KL from its linearised entropy, not a bound: it can read below the truth)"
    );
    Ok(())
}
