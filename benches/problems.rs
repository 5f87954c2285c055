//! The problems the benchmarks time, shared by `benches/steps.rs` and the
//! `bench_step` example: each builds its data and a guide, and returns a closure that runs
//! one full fit step (ELBO forward, backward, Adam).

use ravi::prelude::*;

pub const D_BLR: usize = 10;
pub const D_WIDE: usize = 100;

model! {
    /// Bayesian linear regression with known noise (diabetes).
    model Blr(x: [N, D_BLR], y: [N]) {
        w ~ Normal(0.0, 1.0) [D_BLR];
        b ~ Normal(0.0, 1.0);
        y ~ Normal(x @ w + b, 0.5);
    }
    /// The same with 100 features (synthetic).
    model BlrWide(x: [N, D_WIDE], y: [N]) {
        w ~ Normal(0.0, 1.0) [D_WIDE];
        b ~ Normal(0.0, 1.0);
        y ~ Normal(x @ w + b, 0.5);
    }
    net Digits(x: [B, 64]) -> [B, 10] { Linear(64, 100) -> tanh -> Linear(100, 10) }
    model BnnDigits(x: [N, 64], y: [N] in 0..10) {
        theta ~ Normal(0.0, 1.0) [params(Digits)];
        y ~ Categorical(logits = Digits(x; theta));
    }
    net Mnist(x: [B, 784]) -> [B, 10] { Linear(784, 1200) -> relu -> Linear(1200, 1200) -> relu -> Linear(1200, 10) }
    model BnnMnist(x: [N, 784], y: [N] in 0..10) {
        theta ~ Normal(0.0, 1.0) [params(Mnist)];
        y ~ Categorical(logits = Mnist(x; theta));
    }
    net Big(x: [B, 784]) -> [B, 10] { Linear(784, 1300) -> relu -> Linear(1300, 10) }
    model BnnBig(x: [N, 784], y: [N] in 0..10) {
        theta ~ Normal(0.0, 1.0) [params(Big)];
        y ~ Categorical(logits = Big(x; theta));
    }
    /// The seeds' MNIST MLP, 784-400-400-10 ReLU (478,410 weights).
    net Mlp400(x: [B, 784]) -> [B, 10] { Linear(784, 400) -> relu -> Linear(400, 400) -> relu -> Linear(400, 10) }
    model BnnMlp400(x: [N, 784], y: [N] in 0..10) {
        theta ~ Normal(0.0, 1.0) [params(Mlp400)];
        y ~ Categorical(logits = Mlp400(x; theta));
    }
    /// The seed's VAEs: 784-400-20 with Gaussian latents, and 20 relaxed Bernoulli ones.
    net VaeEncoder(x: [B, 784]) -> [B, 40] { Linear(784, 400) -> relu -> Linear(400, 40) }
    net VaeDecoder(z: [B, 20]) -> [B, 784] { Linear(20, 400) -> relu -> Linear(400, 784) }
    model Vae(x: [N, 784] in 0..2) {
        param dec [params(VaeDecoder)];
        z ~ Normal(0.0, 1.0) [N, 20];
        x ~ Bernoulli(logits = VaeDecoder(z; dec));
    }
    net BinaryEncoder(x: [B, 784]) -> [B, 20] { Linear(784, 400) -> relu -> Linear(400, 20) }
    model BinaryVae(x: [N, 784] in 0..2) {
        param dec [params(VaeDecoder)];
        z ~ RelaxedBernoulli(0.74, 0.0) [N, 20];
        x ~ Bernoulli(logits = VaeDecoder(z; dec));
    }
}

guide! {
    guide Mlp400MeanField for BnnMlp400 { theta ~ MeanField; }
    guide Mlp400Flipout for BnnMlp400 { theta ~ Flipout(MeanField); }
    guide Mlp400Lrt for BnnMlp400 { theta ~ Lrt(MeanField); }
    /// `examples/bnn_mnist`'s implicit guide: 40-dim noise, a hidden layer of 420, A H Bᵀ with
    /// a 40 × 40 core, the smallest-singular-value bound.
    guide Mlp400Implicit for BnnMlp400 {
        theta ~ Implicit(noise = 40, hidden = [420], generator = MatMul, rank = 40,
                         bound = SmallestSingularValue, output_variance = 0.000001);
    }
    guide VaeGuide for Vae { z ~ Amortized(VaeEncoder(x)); }
    guide BinaryVaeGuide for BinaryVae { z ~ Amortized(BinaryEncoder(x)); }
}

guide! {
    guide BlrMeanField for Blr { w ~ MeanField; b ~ MeanField; }
    guide BlrFullRank for Blr { (w, b) ~ FullRank; }
    guide WideMeanField for BlrWide { w ~ MeanField; b ~ MeanField; }
    guide DigitsMeanField for BnnDigits { theta ~ MeanField; }
    guide MnistMeanField for BnnMnist { theta ~ MeanField; }
    /// A hypernetwork over 1,033,510 weights (matrix-multiplication generator).
    guide BigImplicit for BnnBig { theta ~ Implicit(noise = 8, hidden = [32], generator = MatMul, rank = 8); }
}

/// A deterministic pseudo-random stream (benchmarks must not depend on a seed's luck).
fn stream(n: usize, seed: u64) -> Vec<f32> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((x >> 33) as f32 / (1u64 << 31) as f32) * 2.0 - 1.0
        })
        .collect()
}

fn diabetes() -> BlrData {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/data/diabetes.csv");
    let table = ravi::csv::Table::read(path).expect("the bundled data");
    let mut x = table.columns_except(&["target"]);
    let mut y = table.column("target").expect("a target column");
    ravi::csv::zscore_columns(&mut x);
    ravi::csv::zscore(&mut y);
    BlrData {
        x: Array::from_rows_f64(&x).expect("rows"),
        y: Array::vector(y.iter().map(|&v| v as f32).collect()),
    }
}

fn digits() -> BnnDigitsData {
    let table = ravi::csv::Table::read(concat!(env!("CARGO_MANIFEST_DIR"), "/data/digits.csv"))
        .expect("the bundled data");
    let x: Vec<Vec<f64>> = table
        .columns_except(&["label"])
        .into_iter()
        .map(|r| r.iter().map(|v| v / 16.0).collect())
        .collect();
    let y = table.column("label").expect("labels");
    BnnDigitsData {
        x: Array::from_rows_f64(&x).expect("rows"),
        y: Array::vector(y.iter().map(|&v| v as f32).collect()),
    }
}

fn labels(n: usize) -> Array {
    Array::vector((0..n).map(|i| (i % 10) as f32).collect())
}

/// Every problem by name: (name, particles, batch size).
pub const PROBLEMS: &[&str] = &[
    "blr_diabetes_mean_field_s1",
    "blr_diabetes_mean_field_s8",
    "blr_diabetes_full_rank_s1",
    "blr_diabetes_full_rank_s8",
    "blr_synthetic_100k_x_100",
    "bnn_digits_64_100_10_b128",
    "bnn_784_1200_1200_10_b512",
    "implicit_bnn_1m_weights_b512",
    "mnist_vae_gaussian_b128",
    "mnist_vae_relaxed_bernoulli_b128",
    "mnist_mlp400_mean_field_b128",
    "mnist_mlp400_mean_field_graph_b128",
    "mnist_mlp400_flipout_b128",
    "mnist_mlp400_lrt_b128",
    "mnist_mlp400_implicit_b128",
];

/// MNIST-shaped rows for the seed workloads: 1,024 images of pseudo-random grey (or binary)
/// pixels and labels (the time of a step does not depend on the pixels' values).
fn mnist_like(binary: bool) -> Array {
    let n = 1024;
    let v = stream(n * 784, 5)
        .into_iter()
        .map(|p| match binary {
            true => f32::from(u8::from(p > 0.3)),
            false => (p + 1.0) / 2.0,
        })
        .collect();
    Array::new(v, vec![n, 784]).expect("rows")
}

/// The seed protocol's options: batch 128, one particle, Adam 10⁻³, the analytic KL.
fn seed_opts(fused: bool) -> FitOptions {
    FitOptions {
        estimator: Estimator::AnalyticKl,
        schedule: Schedule::Constant(1e-3),
        fused,
        ..opts(1, Some(128))
    }
}

fn opts(particles: usize, batch: Option<usize>) -> FitOptions {
    FitOptions {
        steps: usize::MAX / 2,
        particles,
        batch_size: batch,
        progress: false,
        ..FitOptions::default()
    }
}

/// Runs `f` with a step closure for the problem `name`.
pub fn with_problem(name: &str, f: &mut dyn FnMut(&mut dyn FnMut())) {
    let dev = Cpu::seeded(0);
    macro_rules! run {
        ($guide:expr, $data:expr, $opts:expr) => {{
            let data = $data;
            let mut guide = $guide;
            let mut trainer = ravi::Trainer::new(&mut guide, &data, &$opts).expect("valid data");
            f(&mut || {
                trainer.step().expect("a finite step");
            });
        }};
    }
    match name {
        "blr_diabetes_mean_field_s1" => run!(BlrMeanField::new(&dev), diabetes(), opts(1, None)),
        "blr_diabetes_mean_field_s8" => run!(BlrMeanField::new(&dev), diabetes(), opts(8, None)),
        "blr_diabetes_full_rank_s1" => run!(BlrFullRank::new(&dev), diabetes(), opts(1, None)),
        "blr_diabetes_full_rank_s8" => run!(BlrFullRank::new(&dev), diabetes(), opts(8, None)),
        "blr_synthetic_100k_x_100" => {
            let n = 100_000;
            let data = BlrWideData {
                x: Array::new(stream(n * D_WIDE, 1), vec![n, D_WIDE]).expect("rows"),
                y: Array::vector(stream(n, 2)),
            };
            run!(WideMeanField::new(&dev), data, opts(1, None))
        }
        "bnn_digits_64_100_10_b128" => {
            run!(DigitsMeanField::new(&dev), digits(), opts(1, Some(128)))
        }
        "bnn_784_1200_1200_10_b512" => {
            let n = 2048;
            let data = BnnMnistData {
                x: Array::new(stream(n * 784, 3), vec![n, 784]).expect("rows"),
                y: labels(n),
            };
            run!(MnistMeanField::new(&dev), data, opts(1, Some(512)))
        }
        "implicit_bnn_1m_weights_b512" => {
            let n = 2048;
            let data = BnnBigData {
                x: Array::new(stream(n * 784, 4), vec![n, 784]).expect("rows"),
                y: labels(n),
            };
            run!(BigImplicit::new(&dev), data, opts(1, Some(512)))
        }
        "mnist_vae_gaussian_b128" => run!(
            VaeGuide::new(&dev),
            VaeData {
                x: mnist_like(true)
            },
            seed_opts(true)
        ),
        "mnist_vae_relaxed_bernoulli_b128" => run!(
            BinaryVaeGuide::new(&dev),
            BinaryVaeData {
                x: mnist_like(true)
            },
            FitOptions {
                estimator: Estimator::Standard,
                ..seed_opts(true)
            }
        ),
        "mnist_mlp400_mean_field_b128" | "mnist_mlp400_mean_field_graph_b128" => {
            let data = BnnMlp400Data {
                x: mnist_like(false),
                y: labels(1024),
            };
            let fused = name == "mnist_mlp400_mean_field_b128";
            run!(Mlp400MeanField::new(&dev), data, seed_opts(fused))
        }
        "mnist_mlp400_flipout_b128" => {
            let data = BnnMlp400Data {
                x: mnist_like(false),
                y: labels(1024),
            };
            run!(Mlp400Flipout::new(&dev), data, seed_opts(true))
        }
        "mnist_mlp400_lrt_b128" => {
            let data = BnnMlp400Data {
                x: mnist_like(false),
                y: labels(1024),
            };
            run!(Mlp400Lrt::new(&dev), data, seed_opts(true))
        }
        "mnist_mlp400_implicit_b128" => {
            let data = BnnMlp400Data {
                x: mnist_like(false),
                y: labels(1024),
            };
            run!(Mlp400Implicit::new(&dev), data, seed_opts(true))
        }
        other => panic!("unknown problem {other}; one of {PROBLEMS:?}"),
    }
}
