//! Local latents, amortized guides, model `param`s and the importance-weighted bound,
//! against closed forms and finite differences.

use rand::SeedableRng as _;
use rand_distr::{Distribution as _, StandardNormal};
use ravi::dfdx::tensor::NoneTape;
use ravi::prelude::*;
use ravi::{elbo, Batch, Model, ModelData as _, Objective};

/// x = A z + noise: the posterior of each z given its row is Normal in closed form.
const A: f64 = 2.0;
const SIGMA: f64 = 0.5;

model! {
    net Enc(x: [B, 1]) -> [B, 2] { Linear(1, 2) }
    net Loc(x: [B, 1]) -> [B, 1] { Linear(1, 1) }
    net Scale(x: [B, 1]) -> [B, 1] { Linear(1, 1) }
    /// One latent per row: z_i ~ N(0, 1), x_i ~ N(2 z_i, 0.5).
    model LinearGaussian(x: [N, 1]) {
        z ~ Normal(0.0, 1.0) [N, 1];
        x ~ Normal(z * 2.0, 0.5);
    }

    net TinyEnc(x: [B, 3]) -> [B, 4] { Linear(3, 4) }
    net TinyDec(z: [B, 2]) -> [B, 3] { Linear(2, 3) -> tanh -> Linear(3, 3) }
    /// A tiny VAE: an encoder in the guide, a decoder `param` in the model.
    model Tiny(x: [N, 3]) {
        param dec [params(TinyDec)];
        z ~ Normal(0.0, 1.0) [N, 2];
        x ~ Normal(TinyDec(z; dec), 0.5);
    }
}
guide! {
    guide LinearGaussianGuide for LinearGaussian { z ~ Amortized(Enc(x)); }
    /// The same guide written out as a program: two nets of the rows.
    guide LinearGaussianProgram for LinearGaussian {
        param a [params(Loc)];
        param b [params(Scale)];
        z ~ Normal(Loc(x; a), softplus(Scale(x; b)));
    }
    guide TinyGuide for Tiny { z ~ Amortized(TinyEnc(x)); }
}

fn linear_gaussian_data(n: usize, seed: u64) -> LinearGaussianData {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let x: Vec<f32> = (0..n)
        .map(|_| {
            let z: f64 = StandardNormal.sample(&mut rng);
            let e: f64 = StandardNormal.sample(&mut rng);
            (A * z + SIGMA * e) as f32
        })
        .collect();
    LinearGaussianData {
        x: Array::new(x, vec![n, 1]).unwrap(),
    }
}

/// The exact posterior of z given x: precision 1 + A²/σ².
fn exact_posterior(x: f64) -> (f64, f64) {
    let precision = 1.0 + A * A / (SIGMA * SIGMA);
    (
        A / (SIGMA * SIGMA) * x / precision,
        precision.recip().sqrt(),
    )
}

/// log p(x) of the linear-Gaussian model, in closed form: each x_i ~ N(0, A² + σ²).
fn log_evidence(data: &LinearGaussianData) -> f64 {
    let var = A * A + SIGMA * SIGMA;
    data.x
        .data()
        .iter()
        .map(|&x| {
            -0.5 * (2.0 * std::f64::consts::PI * var).ln() - f64::from(x).powi(2) / (2.0 * var)
        })
        .sum()
}

/// Per row of `xs`, the mean and sd of `draws` draws of the guide's z.
fn guide_moments<G: Guide<Cpu, Model = LinearGaussian>>(
    guide: &G,
    xs: &[f32],
    draws: usize,
) -> Vec<(f64, f64)> {
    let data = LinearGaussianData {
        x: Array::new(xs.to_vec(), vec![xs.len(), 1]).unwrap(),
    };
    let batch = Batch::upload(
        guide.params().device(),
        LinearGaussian::inputs(),
        &data.arrays(),
        None,
        xs.len(),
    );
    let s = guide.sample::<NoneTape>(draws, &batch, Estimator::Standard, false);
    let z = s.latents[0].as_vec();
    (0..xs.len())
        .map(|i| {
            let col: Vec<f64> = (0..draws).map(|d| f64::from(z[d * xs.len() + i])).collect();
            let m = col.iter().sum::<f64>() / draws as f64;
            let v = col.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (draws - 1) as f64;
            (m, v.sqrt())
        })
        .collect()
}

/// The encoder learns the exact posterior of every row, with minibatches: the local
/// prior and log q are scaled like the likelihood, or the fit would find another optimum.
#[test]
fn an_amortized_guide_recovers_the_exact_posterior() {
    let data = linear_gaussian_data(400, 1);
    let mut guide = LinearGaussianGuide::new(&Cpu::seeded(2));
    let opts = FitOptions {
        steps: 3000,
        particles: 8,
        batch_size: Some(50),
        progress: false,
        ..FitOptions::default()
    };
    fit(&mut guide, &data, &opts).unwrap();
    let xs = [-3.0f32, -1.0, 0.0, 0.5, 2.5];
    for ((m, sd), &x) in guide_moments(&guide, &xs, 20_000).into_iter().zip(&xs) {
        let (em, esd) = exact_posterior(f64::from(x));
        // 20k draws: the sampling error of the mean is 0.25/141 ≈ 0.002
        assert!((m - em).abs() < 0.02, "x = {x}: mean {m} vs exact {em}");
        assert!(
            (sd / esd - 1.0).abs() < 0.05,
            "x = {x}: sd {sd} vs exact {esd}"
        );
    }
    // At the exact posterior the ELBO is the log evidence: x_i ~ N(0, A² + σ²).
    let evidence = log_evidence(&data);
    let e = elbo(&guide, &data, 2000).unwrap();
    assert!(
        (e - evidence).abs() < 0.5,
        "ELBO {e} vs log evidence {evidence}"
    );
}

/// A guide program that calls nets on the rows is an amortized guide written out: it
/// learns the exact posterior too.
#[test]
fn a_guide_program_with_nets_recovers_the_exact_posterior() {
    let data = linear_gaussian_data(400, 12);
    let mut guide = LinearGaussianProgram::new(&Cpu::seeded(13));
    let opts = FitOptions {
        steps: 3000,
        particles: 8,
        batch_size: Some(50),
        progress: false,
        ..FitOptions::default()
    };
    fit(&mut guide, &data, &opts).unwrap();
    let xs = [-2.0f32, 0.0, 1.5];
    for ((m, sd), &x) in guide_moments(&guide, &xs, 20_000).into_iter().zip(&xs) {
        let (em, esd) = exact_posterior(f64::from(x));
        assert!((m - em).abs() < 0.02, "x = {x}: mean {m} vs exact {em}");
        assert!(
            (sd / esd - 1.0).abs() < 0.05,
            "x = {x}: sd {sd} vs exact {esd}"
        );
    }
}

/// The importance-weighted bound lies between the ELBO and the log evidence, and with
/// many draws it closes most of the gap of a poor guide.
#[test]
fn the_importance_weighted_bound_tightens_the_elbo() {
    let data = linear_gaussian_data(100, 3);
    let guide = LinearGaussianGuide::new(&Cpu::seeded(4)); // unfitted: far from the posterior
    let evidence = log_evidence(&data);
    let e = elbo(&guide, &data, 4000).unwrap();
    let one = ravi::iwae(&guide, &data, 1, 1.0).unwrap();
    let many = ravi::iwae(&guide, &data, 1000, 1.0).unwrap();
    // K = 1 is one draw of the ELBO: within its Monte Carlo error.
    assert!(
        (one - e).abs() < 0.1 * (evidence - e).abs() + 5.0,
        "K = 1: {one} vs ELBO {e}"
    );
    assert!(
        e < many && many < evidence + 0.5,
        "ELBO {e}, IWAE {many}, evidence {evidence}"
    );
    assert!(
        evidence - many < 0.5 * (evidence - e),
        "IWAE {many} closes too little of the gap from {e} to {evidence}"
    );
}

/// Fitting by the importance-weighted bound also reaches the log evidence.
#[test]
fn a_fit_of_the_importance_weighted_bound_reaches_the_evidence() {
    let data = linear_gaussian_data(200, 5);
    let mut guide = LinearGaussianGuide::new(&Cpu::seeded(6));
    let opts = FitOptions {
        steps: 1500,
        particles: 8,
        objective: Objective::Iwae,
        progress: false,
        ..FitOptions::default()
    };
    let report = fit(&mut guide, &data, &opts).unwrap();
    let evidence = log_evidence(&data);
    // The IWAE-fitted guide is wider than the posterior (as IWAE guides are), so its
    // bound's Monte Carlo error is about ±1 nat over these 200 rows (measured against an
    // f64 simulation of the same guide).
    let bound = ravi::iwae(&guide, &data, 1000, 1.0).unwrap();
    assert!(
        (bound - evidence).abs() < 3.0,
        "IWAE {bound} vs evidence {evidence}"
    );
    // The steps report the K = 8 bound: lower, and still a bound.
    let tail = &report.elbo[report.elbo.len() - 100..];
    let last = tail.iter().map(|&v| f64::from(v)).sum::<f64>() / 100.0;
    assert!(
        last < evidence && last > bound - 100.0,
        "the last steps' bound {last} vs {evidence}"
    );
}

/// A model with a global latent site has no per-row bound: a typed error names it.
#[test]
fn the_importance_weighted_bound_refuses_global_sites() {
    model! {
        model Global(y: [N]) { m ~ Normal(0.0, 1.0); y ~ Normal(m, 1.0); }
    }
    guide! { guide GlobalGuide for Global { m ~ MeanField; } }
    let data = GlobalData {
        y: Array::vector(vec![0.1, 0.2]),
    };
    let mut g = GlobalGuide::new(&Cpu::seeded(0));
    let err = ravi::iwae(&g, &data, 10, 1.0).unwrap_err().to_string();
    assert!(err.contains("`m`") && err.contains("global"), "{err}");
    let opts = FitOptions {
        objective: Objective::Iwae,
        progress: false,
        ..FitOptions::default()
    };
    let err = fit(&mut g, &data, &opts).unwrap_err().to_string();
    assert!(err.contains("`m`"), "{err}");
}

fn tiny_data() -> TinyData {
    let x = vec![
        0.5, -1.0, 0.2, //
        1.5, 0.3, -0.7, //
        -0.2, 0.8, 1.1, //
        0.0, -0.4, 0.6,
    ];
    TinyData {
        x: Array::new(x, vec![4, 3]).unwrap(),
    }
}

/// A guide on a freshly seeded device with the given parameter values: the same Monte
/// Carlo noise on every call.
fn tiny_at(values: &[Vec<f32>]) -> TinyGuide {
    let mut g = TinyGuide::new(&Cpu::seeded(9));
    let ids: Vec<_> = g.params().ids().collect();
    for (id, v) in ids.into_iter().zip(values) {
        g.params_mut().set(id, v);
    }
    g
}

/// The gradient reaches the encoder (a guide parameter) and the decoder (a model
/// `param`), and equals central finite differences of the ELBO with the noise held fixed.
#[test]
fn gradients_reach_encoder_and_decoder() {
    let data = tiny_data();
    let base: Vec<Vec<f32>> = TinyGuide::new(&Cpu::seeded(9))
        .params()
        .iter()
        .map(|(_, t)| t.as_vec())
        .collect();
    let names: Vec<String> = TinyGuide::new(&Cpu::seeded(9))
        .params()
        .iter()
        .map(|(n, _)| n.to_string())
        .collect();
    assert!(names.iter().any(|n| n == "dec"), "{names:?}");
    assert!(names.iter().any(|n| n == "z.encoder"), "{names:?}");
    let particles = 3;
    let grad =
        ravi::elbo_gradient(&tiny_at(&base), &data, None, particles, Estimator::Standard).unwrap();
    let value = |values: &[Vec<f32>]| -> f64 {
        let draws = ravi::elbo_draws(&tiny_at(values), &data, particles).unwrap();
        draws.iter().sum::<f64>() / particles as f64
    };
    let h = 1e-2f32;
    let mut checked = 0;
    for (p, name) in names.iter().enumerate() {
        for j in [0, 5, 13, base[p].len() - 1] {
            let mut up = base.clone();
            up[p][j] += h;
            let mut down = base.clone();
            down[p][j] -= h;
            let fd = (value(&up) - value(&down)) / (2.0 * f64::from(h));
            let g = f64::from(grad[p][j]);
            assert!(
                (fd - g).abs() < 0.02 * fd.abs().max(g.abs()) + 0.02,
                "{name}[{j}]: gradient {g} vs finite difference {fd}"
            );
            assert!(
                g.abs() > 1e-4 || j == base[p].len() - 1,
                "{name}[{j}]: no gradient"
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 8);
}

/// A model's `param` is one point: every particle draws the same value, it has no prior
/// term, and a guide holds it without listing it.
#[test]
fn params_are_points() {
    let g = TinyGuide::new(&Cpu::seeded(1));
    let data = tiny_data();
    let batch = Batch::upload(g.params().device(), Tiny::inputs(), &data.arrays(), None, 4);
    let s = g.sample::<NoneTape>(5, &batch, Estimator::Standard, false);
    let dec = s.latents[0].as_vec();
    let n = dec.len() / 5;
    for p in 1..5 {
        assert_eq!(&dec[..n], &dec[p * n..(p + 1) * n]);
    }
    // Glorot-uniform weights: within ±√(6 / (2 + 3)), not all equal; biases zero.
    let a = (6.0f32 / 5.0).sqrt();
    assert!(dec[..6].iter().all(|w| w.abs() <= a) && dec[0] != dec[1]);
    assert!(dec[6..9].iter().all(|&b| b == 0.0));
    // Local draws: one per row of the batch.
    assert_eq!(s.latents[1].as_vec().len(), 5 * 4 * 2);
    assert_eq!(s.local_log_q.map(|q| q.as_vec().len()), Some(5 * 4));
    let terms: Vec<&str> = Tiny::log_joint_terms::<Cpu, NoneTape>(s.latents, &batch, 1.0)
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(terms, ["z", "x"]);
}

model! {
    net BitEnc(x: [B, 1]) -> [B, 1] { Linear(1, 8) -> tanh -> Linear(8, 1) }
    /// A hidden bit per row, seen through noise: x = 3 z + N(0, 0.3).
    model Bits(x: [N, 1]) {
        z ~ RelaxedBernoulli(0.3, 0.0) [N, 1];
        x ~ Normal(z * 3.0, 0.3);
    }
    net CatEnc(x: [B, 1]) -> [B, 3] { Linear(1, 8) -> tanh -> Linear(8, 3) }
    /// A hidden class of three per row, seen through noise: x = level[z] + N(0, 0.3).
    model Classes(x: [N, 1], levels: [3, 1]) {
        z ~ RelaxedOneHotCategorical(0.3, 0.0) [N, 3];
        x ~ Normal(z @ levels, 0.3);
    }
}
guide! {
    guide BitsGuide for Bits { z ~ Amortized(BitEnc(x)); }
    guide ClassesGuide for Classes { z ~ Amortized(CatEnc(x)); }
}

const LEVELS: [f32; 3] = [-3.0, 0.0, 3.0];

fn noisy_levels(n: usize, levels: &[f32], seed: u64) -> (Vec<usize>, Vec<f32>) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let class: Vec<usize> = (0..n).map(|i| i % levels.len()).collect();
    let x = class
        .iter()
        .map(|&c| {
            let e: f64 = StandardNormal.sample(&mut rng);
            (f64::from(levels[c]) + 0.3 * e) as f32
        })
        .collect();
    (class, x)
}

/// Per row, the mean of 200 draws of the guide's value (the site's constrained value,
/// `classes` components per row).
fn mean_values<G: Guide<Cpu>>(
    guide: &G,
    data: &<G::Model as Model>::Data,
    classes: usize,
) -> Vec<Vec<f32>>
where
    G::Model: Model,
{
    let arrays = data.arrays();
    let n = arrays[0].shape()[0];
    let batch = Batch::upload(
        guide.params().device(),
        G::Model::inputs(),
        &arrays,
        None,
        n,
    );
    let s = guide.sample::<NoneTape>(200, &batch, Estimator::Standard, false);
    let spec = G::Model::latents()[0];
    let u = s.latents[0].as_vec();
    let y = spec_values(&spec, &u);
    (0..n)
        .map(|i| {
            (0..classes)
                .map(|c| (0..200).map(|d| y[(d * n + i) * classes + c]).sum::<f32>() / 200.0)
                .collect()
        })
        .collect()
}

fn spec_values(spec: &ravi::LatentSpec, u: &[f32]) -> Vec<f32> {
    u.chunks(spec.unconstrained_numel())
        .flat_map(|row| spec.constrain(row))
        .collect()
}

/// An amortized relaxed Bernoulli guide learns each row's hidden bit.
#[test]
fn an_amortized_relaxed_bernoulli_guide_learns_the_bits() {
    let n = 300;
    let (bits, x) = noisy_levels(n, &[0.0, 3.0], 8);
    let data = BitsData {
        x: Array::new(x, vec![n, 1]).unwrap(),
    };
    let mut guide = BitsGuide::new(&Cpu::seeded(9));
    let opts = FitOptions {
        steps: 2000,
        particles: 4,
        progress: false,
        ..FitOptions::default()
    };
    fit(&mut guide, &data, &opts).unwrap();
    let y = mean_values(&guide, &data, 1);
    let right = (0..n)
        .filter(|&i| (y[i][0] > 0.5) == (bits[i] == 1))
        .count();
    assert!(right as f64 > 0.98 * n as f64, "{right} of {n} bits");
    let sure = (0..n).filter(|&i| y[i][0] < 0.1 || y[i][0] > 0.9).count();
    assert!(
        sure as f64 > 0.9 * n as f64,
        "only {sure} of {n} rows near 0 or 1"
    );
}

/// An amortized concrete guide learns each row's hidden class.
#[test]
fn an_amortized_concrete_guide_learns_the_classes() {
    let n = 300;
    let (classes, x) = noisy_levels(n, &LEVELS, 10);
    let data = ClassesData {
        x: Array::new(x, vec![n, 1]).unwrap(),
        levels: Array::new(LEVELS.to_vec(), vec![3, 1]).unwrap(),
    };
    let mut guide = ClassesGuide::new(&Cpu::seeded(11));
    let opts = FitOptions {
        steps: 2000,
        particles: 4,
        progress: false,
        ..FitOptions::default()
    };
    fit(&mut guide, &data, &opts).unwrap();
    let y = mean_values(&guide, &data, 3);
    let right = (0..n)
        .filter(|&i| {
            let top = (0..3).max_by(|&a, &b| y[i][a].total_cmp(&y[i][b])).unwrap();
            top == classes[i] && y[i][top] > 0.8
        })
        .count();
    assert!(right as f64 > 0.95 * n as f64, "{right} of {n} classes");
}

/// A guide of `G` on a freshly seeded device with the given parameter values.
fn reseeded<G: Guide<Cpu>>(make: &dyn Fn(&Cpu) -> G, values: &[Vec<f32>]) -> G {
    let mut g = make(&Cpu::seeded(9));
    let ids: Vec<_> = g.params().ids().collect();
    for (id, v) in ids.into_iter().zip(values) {
        g.params_mut().set(id, v);
    }
    g
}

/// Gradients through relaxed draws (their values feed the likelihood through σ(u), or
/// softmax) equal finite differences of the ELBO with the noise held fixed.
fn check_relaxed_gradients<G: Guide<Cpu>>(
    make: &dyn Fn(&Cpu) -> G,
    data: &<G::Model as Model>::Data,
) {
    let base: Vec<Vec<f32>> = make(&Cpu::seeded(9))
        .params()
        .iter()
        .map(|(_, t)| t.as_vec())
        .collect();
    let grad =
        ravi::elbo_gradient(&reseeded(make, &base), data, None, 3, Estimator::Standard).unwrap();
    let value = |v: &[Vec<f32>]| -> f64 {
        let d = ravi::elbo_draws(&reseeded(make, v), data, 3).unwrap();
        d.iter().sum::<f64>() / 3.0
    };
    let h = 1e-3f32;
    for p in 0..base.len() {
        for j in [0usize, 3, 9, base[p].len() - 1] {
            let mut up = base.clone();
            up[p][j] += h;
            let mut down = base.clone();
            down[p][j] -= h;
            let fd = (value(&up) - value(&down)) / (2.0 * f64::from(h));
            let g = f64::from(grad[p][j]);
            assert!(
                (g - fd).abs() < 0.02 * fd.abs().max(1.0),
                "param {p} [{j}]: gradient {g} vs finite difference {fd}"
            );
        }
    }
}

#[test]
fn relaxed_gradients_match_finite_differences() {
    let x = vec![0.1f32, 3.1, -0.2, 2.8];
    let bits = BitsData {
        x: Array::new(x.clone(), vec![4, 1]).unwrap(),
    };
    check_relaxed_gradients(&|d| BitsGuide::new(d), &bits);
    let classes = ClassesData {
        x: Array::new(x, vec![4, 1]).unwrap(),
        levels: Array::new(LEVELS.to_vec(), vec![3, 1]).unwrap(),
    };
    check_relaxed_gradients(&|d| ClassesGuide::new(d), &classes);
}

model! {
    net TinyCatEnc(x: [B, 3]) -> [B, 4] { Linear(3, 4) }
    net TinyCatDec(z: [B, 4]) -> [B, 3] { Linear(4, 3) -> tanh -> Linear(3, 3) }
    /// A tiny concrete VAE: one 4-class concrete latent per row into a decoder net.
    model TinyConcrete(x: [N, 3]) {
        param dec [params(TinyCatDec)];
        z ~ RelaxedOneHotCategorical(0.5, 0.0) [N, 4];
        x ~ Normal(TinyCatDec(z; dec), 0.5);
    }
}
guide! { guide TinyConcreteGuide for TinyConcrete { z ~ Amortized(TinyCatEnc(x)); } }

#[test]
fn concrete_vae_gradients_match_finite_differences() {
    check_relaxed_gradients(
        &|d| TinyConcreteGuide::new(d),
        &TinyConcreteData { x: tiny_data().x },
    );
}

guide! {
    /// Parameters per row: stochastic variational inference without an encoder.
    guide LinearGaussianPerRow for LinearGaussian { z ~ MeanField; }
}

/// Mean-field parameters per row, gathered by each minibatch's rows, reach every row's
/// exact posterior; the guide refuses data of other rows with a typed error.
#[test]
fn per_row_mean_field_recovers_each_rows_posterior() {
    let n = 200;
    let data = linear_gaussian_data(n, 14);
    let mut guide = LinearGaussianPerRow::new(&Cpu::seeded(15));
    assert_eq!(guide.rows_held(), Some(0));
    // Each row's parameters move only when its minibatch comes up (one step in eight), so
    // the far rows (x ≈ 6: posterior mean 2.8) need larger steps than the default's.
    let opts = FitOptions {
        steps: 3000,
        particles: 8,
        batch_size: Some(25),
        schedule: Schedule::Exponential {
            start: 0.05,
            end: 0.0005,
        },
        progress: false,
        ..FitOptions::default()
    };
    fit(&mut guide, &data, &opts).unwrap();
    assert_eq!(guide.rows_held(), Some(n));
    let (loc, rho) = {
        let p: Vec<Vec<f32>> = guide.params().iter().map(|(_, t)| t.as_vec()).collect();
        (p[0].clone(), p[1].clone())
    };
    let mut worst = (0.0f64, 0.0f64);
    for (i, &x) in data.x.data().iter().enumerate() {
        let (em, esd) = exact_posterior(f64::from(x));
        let sd = (1.0 + f64::from(rho[i]).exp()).ln();
        worst.0 = worst.0.max((f64::from(loc[i]) - em).abs());
        worst.1 = worst.1.max((sd / esd - 1.0).abs());
    }
    assert!(worst.0 < 0.01, "largest location error {}", worst.0);
    assert!(worst.1 < 0.02, "largest relative sd error {}", worst.1);
    let other = linear_gaussian_data(n + 1, 16);
    let err = elbo(&guide, &other, 10).unwrap_err().to_string();
    assert!(err.contains("200 rows") && err.contains("201"), "{err}");
}

/// `FitOptions::frozen` keeps a parameter as it is (a trained decoder while a guide is fitted
/// to new rows) and moves the others; an unknown name is a typed error that lists the names.
#[test]
fn frozen_parameters_stay_put() {
    let data = tiny_data();
    let mut guide = TinyGuide::new(&Cpu::seeded(3));
    let before: Vec<Vec<f32>> = guide.params().iter().map(|(_, t)| t.as_vec()).collect();
    let names: Vec<String> = guide.params().iter().map(|(n, _)| n.to_string()).collect();
    assert_eq!(names, ["dec", "z.encoder"]);
    let opts = |frozen: &[&str]| FitOptions {
        steps: 50,
        particles: 2,
        progress: false,
        frozen: frozen.iter().map(|s| s.to_string()).collect(),
        ..FitOptions::default()
    };
    fit(&mut guide, &data, &opts(&["dec"])).unwrap();
    let after: Vec<Vec<f32>> = guide.params().iter().map(|(_, t)| t.as_vec()).collect();
    assert_eq!(before[0], after[0], "the frozen decoder moved");
    assert_ne!(before[1], after[1], "the encoder did not move");
    // Unfrozen, the same fit moves the decoder.
    fit(&mut guide, &data, &opts(&[])).unwrap();
    assert_ne!(guide.params().iter().next().unwrap().1.as_vec(), after[0]);
    let err = fit(&mut guide, &data, &opts(&["decoder"]))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`decoder`") && err.contains("dec, z.encoder"),
        "{err}"
    );
}
