//! The Minnesota radon data (Gelman and Hill) with varying county intercepts, written with
//! indexing (`a[county]`), against the exact posterior: with the noise sd σ and the spread
//! of the intercepts τ fixed, the model is linear-Gaussian in (μ_a, η, b), so its posterior
//! is a Gaussian in closed form and the best mean-field Gaussian is known exactly (the
//! posterior means, and sds 1/√Λ_ii).

use ravi::prelude::*;

const SIGMA: f64 = 0.73;
const TAU: f64 = 0.33;
const COUNTIES: usize = 85;

model! {
    model RadonFixed(floor: [N], county: [N] in 0..85, log_radon: [N]) {
        mu_a ~ Normal(0.0, 10.0);
        eta ~ Normal(0.0, 1.0) [85];
        b ~ Normal(0.0, 10.0);
        let a = mu_a + 0.33 * eta;
        log_radon ~ Normal(a[county] + b * floor, 0.73);
    }
}
guide! { guide RadonFixedGuide for RadonFixed { (mu_a, eta, b) ~ MeanField; } }

struct Radon {
    county: Vec<usize>,
    floor: Vec<f64>,
    log_radon: Vec<f64>,
}

fn radon() -> Radon {
    let t = ravi::csv::Table::read(concat!(env!("CARGO_MANIFEST_DIR"), "/data/radon_mn.csv"))
        .expect("data/radon_mn.csv");
    Radon {
        county: t
            .column("county")
            .unwrap()
            .iter()
            .map(|&c| c as usize)
            .collect(),
        floor: t.column("floor").unwrap(),
        log_radon: t.column("log_radon").unwrap(),
    }
}

#[test]
fn county_intercepts_match_the_exact_posterior() {
    let r = radon();
    assert_eq!(r.log_radon.len(), 919);
    // θ = (μ_a, η_0..η_84, b) with prior sds (10, 1, .., 1, 10): in θ' = θ / sd every prior
    // is N(0, 1), and y = X' θ' + ε with X' = X diag(sd).
    let prior_sd: Vec<f64> = std::iter::once(10.0)
        .chain(std::iter::repeat_n(1.0, COUNTIES))
        .chain(std::iter::once(10.0))
        .collect();
    let x: Vec<Vec<f64>> = r
        .county
        .iter()
        .zip(&r.floor)
        .map(|(&c, &f)| {
            let mut row = vec![0.0; COUNTIES + 2];
            row[0] = 1.0;
            row[1 + c] = TAU;
            row[COUNTIES + 1] = f;
            row.iter().zip(&prior_sd).map(|(v, s)| v * s).collect()
        })
        .collect();
    let exact = ravi::exact::linear_regression(&x, &r.log_radon, 1.0, SIGMA, false);
    let mean: Vec<f64> = exact
        .mean
        .iter()
        .zip(&prior_sd)
        .map(|(m, s)| m * s)
        .collect();
    let mf_sd: Vec<f64> = exact
        .mean_field_sd
        .iter()
        .zip(&prior_sd)
        .map(|(m, s)| m * s)
        .collect();

    let data = RadonFixedData {
        floor: Array::vector(r.floor.iter().map(|&v| v as f32).collect()),
        county: Array::vector(r.county.iter().map(|&c| c as f32).collect()),
        log_radon: Array::vector(r.log_radon.iter().map(|&v| v as f32).collect()),
    };
    let mut guide = RadonFixedGuide::new(&Cpu::seeded(1));
    let opts = FitOptions {
        steps: 3000,
        particles: 8,
        progress: false,
        ..FitOptions::default()
    };
    let report = ravi::fit(&mut guide, &data, &opts).unwrap();
    assert!(
        matches!(report.engine, ravi::EngineChoice::Host),
        "indexing runs on the host engine: {:?}",
        report.engine
    );
    let post = Posterior::from_guide(&guide, 20_000);
    let fitted_mean: Vec<f64> = ["mu_a", "eta", "b"]
        .iter()
        .flat_map(|s| post.site(s).unwrap().mean.clone())
        .map(f64::from)
        .collect();
    let fitted_sd: Vec<f64> = ["mu_a", "eta", "b"]
        .iter()
        .flat_map(|s| post.site(s).unwrap().sd.clone())
        .map(f64::from)
        .collect();
    for i in 0..COUNTIES + 2 {
        // The stochastic optimum wanders by a small fraction of a posterior sd; 20k draws
        // add a Monte Carlo error of 0.7% of one.
        assert!(
            (fitted_mean[i] - mean[i]).abs() < 0.1 * mf_sd[i],
            "mean[{i}]: {} vs exact {} (sd {})",
            fitted_mean[i],
            mean[i],
            mf_sd[i]
        );
        let ratio = fitted_sd[i] / mf_sd[i];
        assert!(
            (0.9..1.1).contains(&ratio),
            "sd[{i}]: {} vs exact {}",
            fitted_sd[i],
            mf_sd[i]
        );
    }
}
