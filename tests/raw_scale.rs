//! Regressions in their raw units, fitted at the defaults, against exact posteriors computed
//! in f64 (`ravi::exact`): the Laplace start and its frames are what make one learning rate
//! serve an intercept of 6·10⁴ and a coefficient whose sd is 10⁻³.

use rand::SeedableRng as _;
use rand_distr::Distribution as _;
use ravi::prelude::*;

/// The diabetes data as it comes: 10 features and the target in their own units.
fn diabetes() -> (Vec<Vec<f64>>, Vec<f64>) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/data/diabetes.csv");
    let table = ravi::csv::Table::read(path).expect("the bundled data");
    let x = table.columns_except(&["target"]);
    let y = table.column("target").expect("a target column");
    (x, y)
}

/// The noise sd the raw diabetes models take as known: about the least-squares residual sd.
const DIABETES_NOISE: f64 = 54.0;
/// A prior far wider than any coefficient: the data decide.
const WIDE: f64 = 1000.0;

model! {
    /// Diabetes progression on the raw features, noise known.
    model Diabetes(x: [N, 10], y: [N]) {
        w ~ Normal(0.0, 1000.0) [10];
        b ~ Normal(0.0, 1000.0);
        y ~ Normal(x @ w + b, 54.0);
    }
    /// The same with the noise sd unknown, HalfCauchy(100) on it.
    model DiabetesSigma(x: [N, 10], y: [N]) {
        w ~ Normal(0.0, 1000.0) [10];
        b ~ Normal(0.0, 1000.0);
        sigma ~ HalfCauchy(100.0);
        y ~ Normal(x @ w + b, sigma);
    }
    /// Five predictors of every scale, two of them correlated 0.999, an intercept near 6·10⁴.
    model Hard(x: [N, 5], y: [N]) {
        w ~ Normal(0.0, 1000000.0) [5];
        b ~ Normal(0.0, 1000000.0);
        y ~ Normal(x @ w + b, 100.0);
    }
}

guide! {
    guide DiabetesFullRank for Diabetes { (w, b) ~ FullRank; }
    guide DiabetesMeanField for Diabetes { w ~ MeanField; b ~ MeanField; }
    guide DiabetesSigmaFullRank for DiabetesSigma { (w, b, sigma) ~ FullRank; }
    guide HardFullRank for Hard { (w, b) ~ FullRank; }
    guide HardMeanField for Hard { w ~ MeanField; b ~ MeanField; }
}

fn quiet() -> FitOptions {
    FitOptions {
        progress: false,
        warnings: false,
        ..FitOptions::default()
    }
}

fn data_of(x: &[Vec<f64>], y: &[f64]) -> (Array, Array) {
    (
        Array::from_rows_f64(x).unwrap(),
        Array::vector(y.iter().map(|&v| v as f32).collect()),
    )
}

/// The data as the model sees them: rounded to f32, so the reference is computed from
/// exactly what was fitted.
fn as_fitted(x: &[Vec<f64>], y: &[f64]) -> (Vec<Vec<f64>>, Vec<f64>) {
    let r = |v: f64| f64::from(v as f32);
    (
        x.iter()
            .map(|row| row.iter().map(|&v| r(v)).collect())
            .collect(),
        y.iter().map(|&v| r(v)).collect(),
    )
}

/// Means within `mean_tol` exact sds and sds within `sd_tol` (relative) of the reference.
fn check(
    what: &str,
    (mean, sd): (&[f64], &[f64]),
    (ref_mean, ref_sd, exact_sd): (&[f64], &[f64], &[f64]),
    (mean_tol, sd_tol): (f64, f64),
) {
    for i in 0..mean.len() {
        let z = (mean[i] - ref_mean[i]) / exact_sd[i];
        assert!(
            z.abs() < mean_tol,
            "{what}: coordinate {i}'s mean {} is {z:+.3} sds from {}",
            mean[i],
            ref_mean[i]
        );
        let r = sd[i] / ref_sd[i] - 1.0;
        assert!(
            r.abs() < sd_tol,
            "{what}: coordinate {i}'s sd {} is {:+.1}% from {}",
            sd[i],
            100.0 * r,
            ref_sd[i]
        );
    }
}

/// A full-rank guide's mean and marginal sds (from L Lᵀ, no sampling error).
fn full_rank_moments<G: Guide<Cpu>>(g: &G, entry: &ravi::guides::FullRank) -> (Vec<f64>, Vec<f64>) {
    let (loc, l) = entry.loc_scale_tril(g.params());
    let d = loc.len();
    let sd = (0..d)
        .map(|i| {
            (0..d)
                .map(|k| f64::from(l[i * d + k]).powi(2))
                .sum::<f64>()
                .sqrt()
        })
        .collect();
    (loc.iter().map(|&v| f64::from(v)).collect(), sd)
}

fn mean_field_moments<G: Guide<Cpu>>(
    g: &G,
    entries: &[&ravi::guides::MeanField],
) -> (Vec<f64>, Vec<f64>) {
    let (mut mean, mut sd) = (Vec::new(), Vec::new());
    for e in entries {
        let (m, s) = e.loc_scale(g.params());
        mean.extend(m.iter().map(|&v| f64::from(v)));
        sd.extend(s.iter().map(|&v| f64::from(v)));
    }
    (mean, sd)
}

#[test]
fn raw_diabetes_full_rank_recovers_the_exact_posterior() {
    let (x, y) = diabetes();
    let (xa, ya) = data_of(&x, &y);
    let (xf, yf) = as_fitted(&x, &y);
    let exact = ravi::exact::linear_regression(&xf, &yf, WIDE, DIABETES_NOISE, true);
    let exact_sd: Vec<f64> = (0..11).map(|i| exact.cov[i][i].sqrt()).collect();
    let mut g = DiabetesFullRank::new(&Cpu::seeded(0));
    let report = ravi::fit(&mut g, &DiabetesData { x: xa, y: ya }, &quiet()).unwrap();
    assert_eq!(report.init.method, ravi::Init::Laplace);
    assert_eq!(report.init.laplace_dim, 11);
    let (mean, sd) = full_rank_moments(&g, &g.entry0);
    check(
        "full rank",
        (&mean, &sd),
        (&exact.mean, &exact_sd, &exact_sd),
        (0.05, 0.05),
    );
    // a guide that contains the posterior: the importance ratios are flat
    let d = report.diagnostics.expect("diagnostics for a global model");
    assert!(d.k_hat < 0.5, "{d}");
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
}

#[test]
fn raw_diabetes_mean_field_reaches_its_optimum() {
    let (x, y) = diabetes();
    let (xa, ya) = data_of(&x, &y);
    let (xf, yf) = as_fitted(&x, &y);
    let exact = ravi::exact::linear_regression(&xf, &yf, WIDE, DIABETES_NOISE, true);
    let exact_sd: Vec<f64> = (0..11).map(|i| exact.cov[i][i].sqrt()).collect();
    let mut g = DiabetesMeanField::new(&Cpu::seeded(0));
    ravi::fit(&mut g, &DiabetesData { x: xa, y: ya }, &quiet()).unwrap();
    let (mean, sd) = mean_field_moments(&g, &[&g.entry0, &g.entry1]);
    // the mean-field optimum of a Gaussian posterior: the exact means, sds 1/√P_ii
    check(
        "mean field",
        (&mean, &sd),
        (&exact.mean, &exact.mean_field_sd, &exact_sd),
        (0.05, 0.05),
    );
}

/// Rows of five predictors: x1 on the scale 10⁻³, x2 on 10⁴, x3 and x4 correlated 0.999,
/// x5 near 100 with spread 10 (a year-like predictor, which ties the intercept to it), and
/// y = 6·10⁴ + ... + N(0, 100²). Posterior sds run from about 5·10⁻⁴ to 4·10³.
fn hard_problem() -> (Vec<Vec<f64>>, Vec<f64>) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(2026);
    let mut z = || -> f64 { rand_distr::StandardNormal.sample(&mut rng) };
    let n = 500;
    let mut x = Vec::with_capacity(n);
    let mut y = Vec::with_capacity(n);
    for _ in 0..n {
        let x3 = z();
        let row = vec![
            1e-3 * z(),
            1e4 * z(),
            x3,
            x3 + 0.0447 * z(),
            100.0 + 10.0 * z(),
        ];
        let mean =
            6.0e4 + 3.0e3 * row[0] + 0.5 * row[1] + 7.0 * row[2] - 2.0 * row[3] + 20.0 * row[4];
        y.push(mean + 100.0 * z());
        x.push(row);
    }
    (x, y)
}

#[test]
fn a_regression_built_to_be_hard_is_recovered() {
    let (x, y) = hard_problem();
    let (xf, yf) = as_fitted(&x, &y);
    let exact = ravi::exact::linear_regression(&xf, &yf, 1e6, 100.0, true);
    let exact_sd: Vec<f64> = (0..6).map(|i| exact.cov[i][i].sqrt()).collect();
    let (lo, hi) = exact_sd
        .iter()
        .fold((f64::INFINITY, 0.0f64), |(a, b), &s| (a.min(s), b.max(s)));
    assert!(lo < 1e-3 && hi > 1e3, "the problem spans sds {lo} to {hi}");
    let (xa, ya) = data_of(&x, &y);
    let data = HardData { x: xa, y: ya };
    let mut fr = HardFullRank::new(&Cpu::seeded(1));
    ravi::fit(&mut fr, &data, &quiet()).unwrap();
    let (mean, sd) = full_rank_moments(&fr, &fr.entry0);
    check(
        "full rank",
        (&mean, &sd),
        (&exact.mean, &exact_sd, &exact_sd),
        (0.05, 0.05),
    );
    let mut mf = HardMeanField::new(&Cpu::seeded(1));
    ravi::fit(&mut mf, &data, &quiet()).unwrap();
    let (mean, sd) = mean_field_moments(&mf, &[&mf.entry0, &mf.entry1]);
    check(
        "mean field",
        (&mean, &sd),
        (&exact.mean, &exact.mean_field_sd, &exact_sd),
        (0.05, 0.05),
    );
}

#[test]
fn an_unknown_noise_scale_is_recovered_against_quadrature() {
    let (x, y) = diabetes();
    let (xa, ya) = data_of(&x, &y);
    let (xf, yf) = as_fitted(&x, &y);
    let half_cauchy =
        |s: f64| (2.0 / (std::f64::consts::PI * 100.0)).ln() - (1.0 + (s / 100.0).powi(2)).ln();
    let exact = ravi::exact::linear_regression_unknown_noise(&xf, &yf, WIDE, half_cauchy, true);
    let mut exact_mean = exact.mean.clone();
    exact_mean.push(exact.sigma_mean);
    let mut exact_sd: Vec<f64> = (0..11).map(|i| exact.cov[i][i].sqrt()).collect();
    exact_sd.push(exact.sigma_sd);
    let mut g = DiabetesSigmaFullRank::new(&Cpu::seeded(3));
    ravi::fit(&mut g, &DiabetesSigmaData { x: xa, y: ya }, &quiet()).unwrap();
    // σ lives on (0, ∞): its summary comes from draws mapped there (40,000: the Monte
    // Carlo error of a mean is 0.005 sd, of an sd 0.4%)
    let post = Posterior::from_guide(&g, 40_000);
    let mut mean = Vec::new();
    let mut sd = Vec::new();
    for site in ["w", "b", "sigma"] {
        let s = post.site(site).unwrap();
        mean.extend(s.mean.iter().map(|&v| f64::from(v)));
        sd.extend(s.sd.iter().map(|&v| f64::from(v)));
    }
    check(
        "full rank with σ",
        (&mean, &sd),
        (&exact_mean, &exact_sd, &exact_sd),
        (0.1, 0.1),
    );
}
