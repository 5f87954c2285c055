//! Mixtures: `y ~ Mixture(logits, Normal(locs, scales))` is log Σ_k softmax(logits)_k
//! N(y; loc_k, scale_k), the same as the sum written out by hand with a `factor`, draw for
//! draw; with ordered locations a fit finds the components of data drawn from a known
//! mixture; and a negative-binomial regression recovers its coefficients against a
//! reference fitted in this test.

use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal as RNormal};
use ravi::prelude::*;

model! {
    model Mix(y: [N]) {
        locs ~ Normal(0.0, 10.0) [2] ordered;
        scales ~ HalfNormal(2.0) [2];
        logits ~ Normal(0.0, 1.0) [2];
        y ~ Mixture(logits, Normal(locs, scales));
    }
    /// The same mixture density written out: log Σ_k w_k N(y; μ_k, σ_k).
    /// (`y2` holds y in both columns.)
    model ByHand(y2: [N, 2]) {
        locs ~ Normal(0.0, 10.0) [2] ordered;
        scales ~ HalfNormal(2.0) [2];
        logits ~ Normal(0.0, 1.0) [2];
        let z = (y2 - locs) / scales;
        let lp = -0.5 * square(z) - log(scales) - 0.9189385332046727 + log_softmax(logits);
        factor(likelihood, logsumexp(lp, 1));
    }
}
model! {
    /// Overdispersed counts: log mean a + b x, concentration 3.
    model NbRegression(x: [N], y: [N] in 0..) {
        a ~ Normal(0.0, 2.0);
        b ~ Normal(0.0, 2.0);
        y ~ NegativeBinomial(exp(a + b * x), 3.0);
    }
}
guide! {
    guide NbGuide for NbRegression { (a, b) ~ FullRank; }
    guide MixGuide for Mix { (locs, scales, logits) ~ FullRank; }
    guide ByHandGuide for ByHand { (locs, scales, logits) ~ FullRank; }
}

/// Draws from 0.3 N(−2, 0.8²) + 0.7 N(3, 1.2²).
fn mixture_data(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let (a, b) = (
        RNormal::new(-2.0, 0.8).unwrap(),
        RNormal::new(3.0, 1.2).unwrap(),
    );
    (0..n)
        .map(|_| {
            if rng.gen::<f64>() < 0.3 {
                a.sample(&mut rng) as f32
            } else {
                b.sample(&mut rng) as f32
            }
        })
        .collect()
}

#[test]
fn a_mixture_is_its_density_written_out() {
    let y = mixture_data(40, 3);
    let both: Vec<f32> = y.iter().flat_map(|&v| [v, v]).collect();
    let (a, b) = (
        MixGuide::new(&Cpu::seeded(5)),
        ByHandGuide::new(&Cpu::seeded(5)),
    );
    let mix = ravi::elbo_draws(
        &a,
        &MixData {
            y: Array::vector(y),
        },
        30,
    )
    .unwrap();
    let by_hand = ravi::elbo_draws(
        &b,
        &ByHandData {
            y2: Array::new(both, vec![40, 2]).unwrap(),
        },
        30,
    )
    .unwrap();
    for (u, v) in mix.iter().zip(&by_hand) {
        assert!((u - v).abs() < 1e-4 * v.abs().max(1.0), "{u} vs {v}");
    }
}

#[test]
fn a_mixture_finds_its_components() {
    let data = MixData {
        y: Array::vector(mixture_data(600, 7)),
    };
    let mut g = MixGuide::new(&Cpu::seeded(2));
    let opts = FitOptions {
        steps: 2000,
        particles: 4,
        progress: false,
        ..FitOptions::default()
    };
    ravi::fit(&mut g, &data, &opts).unwrap();
    let post = Posterior::from_guide(&g, 4000);
    let locs = &post.site("locs").unwrap().mean;
    let scales = &post.site("scales").unwrap().mean;
    let logits = &post.site("logits").unwrap().mean;
    let w0 = 1.0 / (1.0 + (logits[1] - logits[0]).exp());
    // 600 draws: the estimates' sampling error is about 0.1 for the locations and scales,
    // 0.02 for the weight
    assert!(
        (locs[0] + 2.0).abs() < 0.3 && (locs[1] - 3.0).abs() < 0.3,
        "locs {locs:?}"
    );
    assert!(
        (scales[0] - 0.8).abs() < 0.3 && (scales[1] - 1.2).abs() < 0.3,
        "scales {scales:?}"
    );
    assert!((w0 - 0.3).abs() < 0.07, "weight {w0}");
    // ordered: every draw keeps the first location below the second
    for d in &post.draws[0] {
        assert!(d[0] < d[1]);
    }
    // the predictive: the mixture's mean Σ w_k μ_k and variance Σ w_k (σ_k² + μ_k²) − μ²
    // (the posterior's own spread, ≈ 0.1 here, adds a little)
    let w = [w0, 1.0 - w0];
    let mean: f32 = (0..2).map(|k| w[k] * locs[k]).sum();
    let second: f32 = (0..2)
        .map(|k| w[k] * (scales[k] * scales[k] + locs[k] * locs[k]))
        .sum();
    let sd = (second - mean * mean).sqrt();
    let pred = ravi::predictive(&g, &data, 2000).unwrap();
    let Some(ravi::SitePredictive::Continuous { mean: m, sd: s, .. }) =
        pred.iter().find(|p| p.site() == "y")
    else {
        panic!("no predictive for y: {pred:?}")
    };
    assert!((m[0] as f32 - mean).abs() < 0.05, "{} vs {mean}", m[0]);
    assert!((s[0] as f32 - sd).abs() < 0.05 * sd, "{} vs {sd}", s[0]);
}

/// log p(a, b, y) of the negative-binomial regression, in f64.
fn nb_log_joint(a: f64, b: f64, x: &[f64], y: &[f64]) -> f64 {
    use statrs::function::gamma::ln_gamma;
    let phi = 3.0;
    let prior = -0.5 * (a * a + b * b) / 4.0;
    prior
        + x.iter()
            .zip(y)
            .map(|(&x, &y)| {
                let mu = (a + b * x).exp();
                ln_gamma(y + phi) - ln_gamma(phi) - ln_gamma(y + 1.0)
                    + phi * (phi / (phi + mu)).ln()
                    + y * (mu / (phi + mu)).ln()
            })
            .sum::<f64>()
}

/// The posterior means and sds of (a, b) by quadrature: a coarse grid finds the mode, a
/// fine one ±0.5 around it (≈ ±10 posterior sds) integrates.
fn nb_reference(x: &[f64], y: &[f64]) -> ([f64; 2], [f64; 2]) {
    let mut best = (f64::NEG_INFINITY, 0.0, 0.0);
    for i in 0..=120 {
        for j in 0..=120 {
            let (a, b) = (-3.0 + 0.05 * f64::from(i), -3.0 + 0.05 * f64::from(j));
            let lp = nb_log_joint(a, b, x, y);
            if lp > best.0 {
                best = (lp, a, b);
            }
        }
    }
    let (n, half) = (201, 0.5);
    let step = 2.0 * half / f64::from(n - 1);
    let mut cells = Vec::new();
    for i in 0..n {
        for j in 0..n {
            let (a, b) = (
                best.1 - half + step * f64::from(i),
                best.2 - half + step * f64::from(j),
            );
            cells.push((a, b, nb_log_joint(a, b, x, y) - best.0));
        }
    }
    let total: f64 = cells.iter().map(|c| c.2.exp()).sum();
    let mean = |f: &dyn Fn(f64, f64) -> f64| {
        cells.iter().map(|c| f(c.0, c.1) * c.2.exp()).sum::<f64>() / total
    };
    let (ma, mb) = (mean(&|a, _| a), mean(&|_, b| b));
    let (va, vb) = (
        mean(&|a, _| (a - ma).powi(2)),
        mean(&|_, b| (b - mb).powi(2)),
    );
    ([ma, mb], [va.sqrt(), vb.sqrt()])
}

#[test]
fn negative_binomial_regression_matches_quadrature() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let (n, a, b, phi) = (300, 1.0, 0.5, 3.0);
    let x: Vec<f64> = (0..n).map(|_| rng.gen_range(-1.0..1.0)).collect();
    let y: Vec<f64> = x
        .iter()
        .map(|&x| {
            let mu: f64 = (a + b * x).exp();
            let rate = rand_distr::Gamma::new(phi, mu / phi)
                .unwrap()
                .sample(&mut rng);
            f64::from(rand_distr::Poisson::new(rate).unwrap().sample(&mut rng) as u32)
        })
        .collect();
    let (mean, sd) = nb_reference(&x, &y);
    let data = NbRegressionData {
        x: Array::vector(x.iter().map(|&v| v as f32).collect()),
        y: Array::vector(y.iter().map(|&v| v as f32).collect()),
    };
    let mut g = NbGuide::new(&Cpu::seeded(1));
    let opts = FitOptions {
        steps: 2000,
        particles: 8,
        progress: false,
        ..FitOptions::default()
    };
    let report = ravi::fit(&mut g, &data, &opts).unwrap();
    assert!(
        matches!(report.engine, ravi::EngineChoice::Host),
        "{:?}",
        report.engine
    );
    let post = Posterior::from_guide(&g, 20_000);
    for (k, site) in ["a", "b"].iter().enumerate() {
        let s = post.site(site).unwrap();
        let (m, d) = (f64::from(s.mean[0]), f64::from(s.sd[0]));
        // a Gaussian guide on a near-Gaussian posterior: the mean within a tenth of a
        // posterior sd, the sd within 10%
        assert!(
            (m - mean[k]).abs() < 0.1 * sd[k],
            "{site}: mean {m} vs quadrature {}",
            mean[k]
        );
        assert!(
            (d / sd[k] - 1.0).abs() < 0.1,
            "{site}: sd {d} vs quadrature {}",
            sd[k]
        );
    }
}
