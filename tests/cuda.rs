//! CPU against CUDA (feature `cuda`): the same seed gives the same noise on both (dfdx
//! draws on the host and copies), so the ELBO, its gradient and a short fit must agree to
//! f32 rounding. Compiled in CI with `--features cuda-ci-check`; run on a GPU machine with
//! `scripts/build-gpu.sh` and `bash .gpu/gpu-run.sh .gpu/cuda-<hash>`.
#![cfg(feature = "cuda")]

mod common;

use common::stream;
use ravi::prelude::*;
use ravi::{Cuda, Model};

const D: usize = 4;

model! {
    model Linear(x: [N, D], y: [N]) {
        w ~ Normal(0.0, 1.0) [D];
        s ~ LogNormal(0.0, 1.0);
        y ~ Normal(x @ w, s);
    }
    model Logistic(x: [N, D], y: [N] in 0..2) {
        w ~ Normal(0.0, 2.0) [D];
        y ~ Bernoulli(logits = x @ w);
    }
    net Small(x: [B, 4]) -> [B, 3] { Linear(4, 8) -> tanh -> Linear(8, 3) }
    model Bnn(x: [N, D], y: [N] in 0..3) {
        theta ~ Normal(0.0, 1.0) [params(Small)];
        y ~ Categorical(logits = Small(x; theta));
    }
    net Enc(x: [B, 4]) -> [B, 4] { Linear(4, 6) -> relu -> Linear(6, 4) }
    net Dec(z: [B, 2]) -> [B, 4] { Linear(2, 6) -> relu -> Linear(6, 4) }
    model Vae(x: [N, 4] in 0..2) {
        param dec [params(Dec)];
        z ~ Normal(0.0, 1.0) [N, 2];
        x ~ Bernoulli(logits = Dec(z; dec));
    }
}

guide! {
    guide LinearMeanField for Linear { w ~ MeanField; s ~ MeanField; }
    guide LinearFullRank for Linear { (w, s) ~ FullRank; }
    guide LinearFlow for Linear { (w, s) ~ Flow(RealNVP(layers = 2, hidden = 8)); }
    guide LogisticGuide for Logistic { w ~ MeanField; }
    guide BnnGuide for Bnn { theta ~ MeanField; }
    guide BnnFlipout for Bnn { theta ~ Flipout(MeanField); }
    guide VaeGuide for Vae { z ~ Amortized(Enc(x)); }
}

fn x(n: usize) -> Array {
    Array::new(stream(n * D, 1), vec![n, D]).unwrap()
}

fn labels(n: usize, k: usize) -> Array {
    Array::vector((0..n).map(|i| (i % k) as f32).collect())
}

/// |a − b| within f32 rounding of sums over the data, relative to the larger magnitude.
fn close(a: f64, b: f64, what: &str) {
    let tol = 1e-4 * a.abs().max(b.abs()).max(1.0);
    assert!((a - b).abs() <= tol, "{what}: cpu {a} vs cuda {b}");
}

/// ELBO, gradient and a 50-step fit, on CPU and on CUDA from the same seed.
fn agree<GC, GG>(cpu: GC, cuda: GG, data: &<GC::Model as Model>::Data)
where
    GC: Guide<Cpu>,
    GG: Guide<Cuda, Model = GC::Model>,
{
    let (mut cpu, mut cuda) = (cpu, cuda);
    let name = <GC::Model as Model>::NAME;
    close(
        ravi::elbo(&cpu, data, 64).unwrap(),
        ravi::elbo(&cuda, data, 64).unwrap(),
        &format!("{name} ELBO"),
    );
    let gc = ravi::elbo_gradient(&cpu, data, None, 4, Estimator::PathDerivative).unwrap();
    let gg = ravi::elbo_gradient(&cuda, data, None, 4, Estimator::PathDerivative).unwrap();
    for (p, (a, b)) in gc.iter().zip(&gg).enumerate() {
        for (i, (a, b)) in a.iter().zip(b).enumerate() {
            close(
                f64::from(*a),
                f64::from(*b),
                &format!("{name} gradient {p}[{i}]"),
            );
        }
    }
    let opts = FitOptions {
        steps: 50,
        particles: 2,
        progress: false,
        // the dfdx graph on both devices (the host engine runs only on the CPU)
        fused: false,
        ..FitOptions::default()
    };
    let rc = ravi::fit(&mut cpu, data, &opts).unwrap();
    let rg = ravi::fit(&mut cuda, data, &opts).unwrap();
    for (step, (a, b)) in rc.elbo.iter().zip(&rg.elbo).enumerate() {
        close(f64::from(*a), f64::from(*b), &format!("{name} step {step}"));
    }
    for ((n, a), (_, b)) in cpu.params().iter().zip(cuda.params().iter()) {
        for (u, v) in a.as_vec().iter().zip(b.as_vec()) {
            assert!(
                (u - v).abs() < 1e-3,
                "{name} parameter {n}: cpu {u} vs cuda {v}"
            );
        }
    }
}

#[test]
fn regressions_agree() {
    let n = 64;
    let data = LinearData {
        x: x(n),
        y: Array::vector(stream(n, 2)),
    };
    agree(
        LinearMeanField::new(&Cpu::seeded(1)),
        LinearMeanField::new(&Cuda::seeded(1)),
        &data,
    );
    agree(
        LinearFullRank::new(&Cpu::seeded(2)),
        LinearFullRank::new(&Cuda::seeded(2)),
        &data,
    );
    agree(
        LinearFlow::new(&Cpu::seeded(3)),
        LinearFlow::new(&Cuda::seeded(3)),
        &data,
    );
    let data = LogisticData {
        x: x(n),
        y: labels(n, 2),
    };
    agree(
        LogisticGuide::new(&Cpu::seeded(4)),
        LogisticGuide::new(&Cuda::seeded(4)),
        &data,
    );
}

#[test]
fn nets_agree() {
    let n = 48;
    let data = BnnData {
        x: x(n),
        y: labels(n, 3),
    };
    agree(
        BnnGuide::new(&Cpu::seeded(5)),
        BnnGuide::new(&Cuda::seeded(5)),
        &data,
    );
    agree(
        BnnFlipout::new(&Cpu::seeded(6)),
        BnnFlipout::new(&Cuda::seeded(6)),
        &data,
    );
    let pixels: Vec<f32> = stream(n * D, 7)
        .iter()
        .map(|v| f32::from(*v > 0.0))
        .collect();
    let data = VaeData {
        x: Array::new(pixels, vec![n, D]).unwrap(),
    };
    agree(
        VaeGuide::new(&Cpu::seeded(8)),
        VaeGuide::new(&Cuda::seeded(8)),
        &data,
    );
}
