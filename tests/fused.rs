//! The host engine (`ravi::fused`) against the dfdx graph, the reference: from the same
//! draws, the same ELBO gradient (to f32 rounding), and fits that take the same steps.

mod common;

use common::stream;
use ravi::prelude::*;
use ravi::{EngineChoice, Estimator, Model, Trainer};

const D: usize = 3;
const J: usize = 4;

model! {
    model Linear(x: [N, D], y: [N]) {
        w ~ Normal(0.0, 1.0) [D];
        b ~ Normal(0.0, 1.0);
        y ~ Normal(x @ w + b, 0.5);
    }
    model Logistic(x: [N, D], y: [N] in 0..2) {
        w ~ Normal(0.0, 2.0) [D];
        y ~ Bernoulli(logits = x @ w - 0.3);
    }
    model Counts(x: [N, D], y: [N] in 0..1000) {
        w ~ Normal(0.0, 0.5) [D];
        b ~ Normal(1.0, 1.0);
        y ~ Poisson(exp(x @ w + b));
    }
    /// Latent arguments to a prior, a data scale per element.
    model Schools(y: [J], sigma: [J]) {
        mu ~ Normal(0.0, 5.0);
        theta ~ Normal(mu, 2.0) [J];
        y ~ Normal(theta, sigma);
    }
    /// Every op the engine covers: a latent matrix after data, a latent vector before a
    /// data matrix or a latent matrix, reductions over an axis and all axes (of data too),
    /// functions, a latent scale, Bernoulli probabilities, one value used twice.
    model Soup(x: [N, D], y: [N], c: [N] in 0..2, m: [D, J]) {
        a ~ Normal(0.0, 1.0) [D, 2];
        v ~ Normal(0.0, 1.0) [D];
        s ~ Normal(0.0, 1.0);
        let h = tanh(x @ a);
        let u = v @ m;
        let q = sum(v @ a) * log(1.0 + s * s) + mean(x, 0) @ v;
        let mean_h = mean(h, 1) + sum(u) / 4.0 - sum(h) * 0.01 + q * 0.1;
        y ~ Normal(mean_h * 2.0 - (-s), softplus(s) + 0.5);
        c ~ Bernoulli(sigmoid(x @ v / (exp(s * s) + 1.0)));
    }
}

model! {
    net Small(x: [B, 3]) -> [B, 3] { Linear(3, 5) -> tanh -> Linear(5, 4) -> relu -> Linear(4, 3) }
    /// A Bayesian net classifier.
    model Bnn(x: [N, D], y: [N] in 0..3) {
        theta ~ Normal(0.0, 1.0) [params(Small)];
        y ~ Categorical(logits = Small(x; theta));
    }
    net Head(h: [B, 2]) -> [B, 1] { Linear(2, 3) -> sigmoid -> Linear(3, 3) -> softplus -> Linear(3, 1) }
    /// A net on latent features (its input's gradient counts), weights one site per layer.
    model Stacked(x: [N, D], y: [N, 1]) {
        a ~ Normal(0.0, 1.0) [D, 2];
        w1 ~ Normal(0.0, 1.0) [params(Head, 0)];
        w2 ~ Normal(0.0, 1.0) [params(Head, 1)];
        w3 ~ Normal(0.0, 1.0) [params(Head, 2)];
        y ~ Normal(Head(x @ a; w1, w2, w3), 0.5);
    }
}

model! {
    /// Positive latents, drawn as eᵘ: an unknown noise scale.
    model Noisy(x: [N, D], y: [N]) {
        w ~ Normal(0.0, 1.0) [D];
        s ~ LogNormal(0.0, 1.0);
        y ~ Normal(x @ w, s);
    }
    /// Every positive density, latent and observed; the eight schools, non-centered.
    model Scales(y: [J], sigma: [J], r: [J], h: [J], e: [J], c: [J]) {
        mu ~ Normal(0.0, 5.0);
        tau ~ HalfCauchy(5.0);
        lam ~ Exponential(1.0);
        nu ~ HalfNormal(1.5);
        eta ~ Normal(0.0, 1.0) [J];
        y ~ Normal(mu + tau * eta, sigma);
        r ~ LogNormal(mu * 0.1, nu + lam);
        h ~ HalfNormal(nu * 2.0);
        e ~ Exponential(lam + 0.5);
        c ~ HalfCauchy(tau);
    }
}

model! {
    /// Heavy tails and conjugate-style priors: Cauchy, Laplace, Gamma, InverseGamma, latent
    /// and observed, with latent arguments.
    model Robust(x: [N, D], y: [N], v: [N], g: [N], h: [N]) {
        w ~ Laplace(0.0, 1.0) [D];
        b ~ Cauchy(0.0, 2.0);
        prec ~ Gamma(2.0, 1.5);
        var ~ InverseGamma(3.0, 2.0);
        y ~ Cauchy(x @ w + b, 1.0 / prec);
        v ~ Laplace(b, var);
        g ~ Gamma(2.5, prec);
        h ~ InverseGamma(3.0, var);
    }
}

model! {
    /// Indexing and the newer functions: rows of a latent vector and matrix and of a data
    /// vector picked by an integer input, constant picks and ranges, sqrt, abs, square,
    /// log1p, expm1 and pow; a factor over a latent and one per data row (scaled in a
    /// minibatch).
    model Indexed(x: [N, D], g: [N] in 0..4, y: [N], c: [4]) {
        a ~ Normal(0.0, 1.0) [4];
        m ~ Normal(0.0, 1.0) [4, D];
        beta ~ Normal(0.0, 1.0) [4];
        s ~ HalfNormal(1.0);
        let rows = sum(m[g] * x, 1);
        let level = a[g] * sqrt(s) + c[g] + beta[0] - square(beta[3]) * 0.1;
        let slope = sum(beta[1..3]) + log1p(s) - expm1(-s) + abs(a[1]);
        y ~ Normal(level + slope * rows, pow(s, 1.5) + 0.2);
        factor(shrink, -0.1 * square(beta));
        factor(per_row, -0.01 * square(level));
    }
}

model! {
    /// Grey values in [0, 1], both ends included, under a continuous Bernoulli by its
    /// logits and by its probability.
    model Pixels(x: [N, D], y: [N], z: [N]) {
        w ~ Normal(0.0, 1.0) [D];
        b ~ Normal(0.0, 1.0);
        y ~ ContinuousBernoulli(logits = x @ w + b);
        z ~ ContinuousBernoulli(sigmoid(x @ w - b));
    }
}

model! {
    /// A mixture of two Normals with latent locations, scales and weights, and a Poisson
    /// mixture with a rate per row.
    model Mixed(x: [N, 2], y: [N], k: [N] in 0..) {
        locs ~ Normal(0.0, 3.0) [2];
        scales ~ LogNormal(0.0, 0.5) [2];
        w ~ Normal(0.0, 1.0) [2];
        b ~ Normal(0.0, 0.3) [2];
        y ~ Mixture(w, Normal(locs, scales));
        k ~ Mixture(w * 0.5, Poisson(exp(b + 0.1 * x)));
    }
}

guide! {
    guide MixedGuide for Mixed { (locs, scales) ~ MeanField; (w, b) ~ MeanField; }
}

guide! {
    guide IndexedGuide for Indexed { (a, beta) ~ MeanField; m ~ MeanField; s ~ FullRank; }
}

guide! {
    guide RobustGuide for Robust { (w, b) ~ MeanField; prec ~ MeanField; var ~ FullRank; }
}

guide! {
    guide NoisyGuide for Noisy { w ~ MeanField; s ~ MeanField; }
    guide NoisyJoint for Noisy { (w, s) ~ FullRank; }
    /// A guide program, and one mixed with a family (drawn after it).
    guide NoisyHand for Noisy {
        param mu [D] = 0.0;
        param sd [D] positive = 0.1;
        param sl = 0.0;
        param ss positive = 0.1;
        w ~ Normal(mu, sd);
        s ~ LogNormal(sl, ss);
    }
    /// Not covered: a program line with a number for its scale.
    guide NoisyFixedScale for Noisy {
        param mu [D] = 0.0;
        w ~ Normal(mu, 0.5);
        s ~ MeanField;
    }
    guide NoisyMixed for Noisy {
        w ~ MeanField;
        param sl = 0.0;
        param ss positive = 0.2;
        s ~ LogNormal(sl, ss);
    }
    guide ScalesGuide for Scales { (mu, tau) ~ MeanField; lam ~ MeanField; (nu, eta) ~ FullRank; }
}

guide! {
    guide BnnFlipout for Bnn { theta ~ Flipout(MeanField); }
    guide BnnLrt for Bnn { theta ~ Lrt(MeanField); }
}

guide! {
    guide BnnGuide for Bnn { theta ~ MeanField; }
    guide StackedGuide for Stacked { a ~ MeanField; (w1, w2) ~ MeanField; w3 ~ FullRank; }
}

guide! {
    guide LinearGuide for Linear { w ~ MeanField; b ~ MeanField; }
    guide LinearJoint for Linear { (w, b) ~ MeanField; }
    guide LogisticGuide for Logistic { w ~ MeanField; }
    guide CountsGuide for Counts { (w, b) ~ MeanField; }
    guide PixelsGuide for Pixels { w ~ MeanField; b ~ FullRank; }
    guide SchoolsGuide for Schools { mu ~ MeanField; theta ~ MeanField; }
    guide SoupGuide for Soup { a ~ MeanField; (v, s) ~ MeanField; }
    guide LinearFullRank for Linear { (w, b) ~ FullRank; }
    guide SchoolsMixed for Schools { mu ~ MeanField; theta ~ FullRank; }
    /// Not covered: low rank (steps take the dfdx path).
    guide LinearLowRank for Linear { (w, b) ~ LowRank(rank = 2); }
}

guide! {
    /// Families the engine does not run, over models it does: drawn on the graph, scored on
    /// the engine (a positive site, factors over a latent and per row, weighted terms).
    guide IndexedLowRank for Indexed { (a, m, beta, s) ~ LowRank(rank = 2); }
    guide BnnImplicit for Bnn {
        theta ~ Implicit(noise = 3, hidden = [8], entropy_weight = 0.5, prior_weight = 0.1);
    }
}

model! {
    net Enc(x: [B, 6]) -> [B, 4] { Linear(6, 8) -> tanh -> Linear(8, 4) }
    net Dec(z: [B, 2]) -> [B, 6] { Linear(2, 8) -> relu -> Linear(8, 6) }
    /// A small VAE: local latents drawn by an encoder (their prior not the standard
    /// normal), a decoder whose weights are a model `param`, a global offset.
    model TinyVae(x: [N, 6] in 0..2) {
        param dec [params(Dec)];
        b ~ Normal(0.0, 1.0) [6];
        z ~ Normal(0.5, 2.0) [N, 2];
        x ~ Bernoulli(logits = Dec(z; dec) + b);
    }
    /// A model `param` beside a global latent, no local sites.
    model Offset(x: [N, D], y: [N]) {
        param w [D] = 0.0;
        s ~ Normal(0.0, 1.0);
        y ~ Normal(x @ w, exp(s));
    }
}

model! {
    net RelEnc(x: [B, 6]) -> [B, 2] { Linear(6, 8) -> tanh -> Linear(8, 2) }
    net RelDec(z: [B, 2]) -> [B, 6] { Linear(2, 8) -> tanh -> Linear(8, 6) }
    /// Relaxed Bernoulli latents at the step's (annealed) temperature, a scalar `param`.
    model AnnealedVae(x: [N, 6] in 0..2) {
        param dec [params(RelDec)];
        param shift = 0.5;
        z ~ RelaxedBernoulli(temperature, 0.0) [N, 2];
        x ~ Bernoulli(logits = RelDec(z; dec) + shift);
    }
    /// Relaxed Bernoulli latents at a fixed temperature, prior logits not 0.
    model FixedVae(x: [N, 6] in 0..2) {
        param dec [params(RelDec)];
        z ~ RelaxedBernoulli(0.6, 0.3) [N, 2];
        x ~ Bernoulli(logits = RelDec(z; dec));
    }
}

model! {
    /// A likelihood whose scale is the step's relaxation temperature.
    model Tempered(x: [N, D], y: [N]) {
        w ~ Normal(0.0, 1.0) [D];
        y ~ Normal(x @ w, temperature);
    }
}

guide! {
    guide TemperedLowRank for Tempered { w ~ LowRank(rank = 2); }
}

model! {
    net CatEnc(x: [B, 6]) -> [B, 6] { Linear(6, 8) -> tanh -> Linear(8, 6) }
    net CatDec(z: [B, 2, 3]) -> [B, 6] { Linear(6, 8) -> tanh -> Linear(8, 6) }
    /// Two concrete events of three classes per row at the step's temperature.
    model ConcreteVae(x: [N, 6] in 0..2) {
        param dec [params(CatDec)];
        z ~ RelaxedOneHotCategorical(temperature, 0.2) [N, 2, 3];
        x ~ Bernoulli(logits = CatDec(z; dec));
    }
}

guide! {
    guide AnnealedVaeGuide for AnnealedVae { z ~ Amortized(RelEnc(x)); }
    guide FixedVaeGuide for FixedVae { z ~ Amortized(RelEnc(x)); }
    guide ConcreteVaeGuide for ConcreteVae { z ~ Amortized(CatEnc(x)); }
}

guide! {
    guide TinyVaeGuide for TinyVae { b ~ MeanField; z ~ Amortized(Enc(x)); }
    guide OffsetGuide for Offset { s ~ MeanField; }
}

fn tiny_vae(n: usize) -> TinyVaeData {
    let bits = stream(6 * n, 21)
        .iter()
        .enumerate()
        .map(|(i, v)| f32::from(*v + 0.3 * ((i % 6) as f32 - 2.5) > 0.0))
        .collect();
    TinyVaeData {
        x: Array::new(bits, vec![n, 6]).unwrap(),
    }
}

fn offset(n: usize) -> OffsetData {
    OffsetData {
        x: x(n),
        y: Array::vector(stream(n, 22)),
    }
}

/// Encoders of local sites and model `param`s (points) run on the engine: the same
/// gradient as the graph's under every estimator (the closed-form KL per row of a prior
/// that is not the standard normal), all rows or a minibatch, and the same steps.
#[test]
fn amortized_guides_and_points_run_on_the_engine() {
    let program = <TinyVaeGuide as Guide<Cpu>>::host_program();
    assert!(program.is_ok(), "{program:?}");
    let rows: Vec<usize> = (0..40).map(|i| (i * 7) % 120).collect();
    same_gradient_from(&TinyVaeGuide::new, &tiny_vae(120), None, 3, false);
    same_gradient_from(&TinyVaeGuide::new, &tiny_vae(120), Some(&rows), 2, false);
    same_gradient_from(&OffsetGuide::new, &offset(120), None, 2, false);
    same_fit(&TinyVaeGuide::new, &tiny_vae(150), opts(1, Some(32)));
    for estimator in [Estimator::AnalyticKl, Estimator::PathDerivative] {
        let o = FitOptions {
            estimator,
            ..opts(2, Some(50))
        };
        same_fit(&TinyVaeGuide::new, &tiny_vae(150), o);
    }
    same_fit(&OffsetGuide::new, &offset(150), opts(2, Some(50)));
}

fn annealed_vae(n: usize) -> AnnealedVaeData {
    AnnealedVaeData { x: tiny_vae(n).x }
}

fn fixed_vae(n: usize) -> FixedVaeData {
    FixedVaeData { x: tiny_vae(n).x }
}

/// Relaxed Bernoulli encoders on the engine: the latent drawn in its logit and scored
/// there by the encoder (prior and log q), its value σ(u) read by the decoder; the graph's
/// gradient under the standard estimator and the path derivative, and the same steps, the
/// temperature annealed or fixed.
#[test]
fn relaxed_encoders_run_on_the_engine() {
    let program = <AnnealedVaeGuide as Guide<Cpu>>::host_program();
    assert!(program.is_ok(), "{program:?}");
    let rows: Vec<usize> = (0..40).map(|i| (i * 7) % 120).collect();
    same_gradient_from(&FixedVaeGuide::new, &fixed_vae(120), None, 3, false);
    same_gradient_from(&FixedVaeGuide::new, &fixed_vae(120), Some(&rows), 2, false);
    same_gradient_from(&AnnealedVaeGuide::new, &annealed_vae(120), None, 2, false);
    for estimator in [Estimator::Standard, Estimator::PathDerivative] {
        let annealed = FitOptions {
            estimator,
            ..annealed(opts(2, Some(50)))
        };
        same_fit(&AnnealedVaeGuide::new, &annealed_vae(150), annealed);
        let fixed = FitOptions {
            estimator,
            ..opts(1, Some(32))
        };
        same_fit(&FixedVaeGuide::new, &fixed_vae(150), fixed);
    }
}

/// Concrete encoders on the engine: events drawn as log softmax((l + g)/τ), scored from
/// log y by the encoder (prior and log q), y read by the decoder; the graph's gradient and
/// steps under the standard estimator and the path derivative, τ annealed.
#[test]
fn concrete_encoders_run_on_the_engine() {
    let program = <ConcreteVaeGuide as Guide<Cpu>>::host_program();
    assert!(program.is_ok(), "{program:?}");
    let data = |n| ConcreteVaeData { x: tiny_vae(n).x };
    let rows: Vec<usize> = (0..40).map(|i| (i * 7) % 120).collect();
    same_gradient_from(&ConcreteVaeGuide::new, &data(120), None, 3, false);
    same_gradient_from(&ConcreteVaeGuide::new, &data(120), Some(&rows), 2, false);
    for estimator in [Estimator::Standard, Estimator::PathDerivative] {
        let annealed = FitOptions {
            estimator,
            ..annealed(opts(2, Some(50)))
        };
        same_fit(&ConcreteVaeGuide::new, &data(150), annealed);
    }
}

fn x(n: usize) -> Array {
    Array::new(stream(n * D, 1), vec![n, D]).unwrap()
}

fn linear(n: usize) -> LinearData {
    let y = stream(n, 2).iter().map(|v| 2.0 * v).collect();
    LinearData {
        x: x(n),
        y: Array::vector(y),
    }
}

fn logistic(n: usize) -> LogisticData {
    let y = stream(n, 3).iter().map(|v| f32::from(*v > 0.0)).collect();
    LogisticData {
        x: x(n),
        y: Array::vector(y),
    }
}

fn counts(n: usize) -> CountsData {
    let y = stream(n, 4)
        .iter()
        .map(|v| ((v + 1.0) * 4.0).floor())
        .collect();
    CountsData {
        x: x(n),
        y: Array::vector(y),
    }
}

fn schools() -> SchoolsData {
    SchoolsData {
        y: Array::vector(vec![28.0, 8.0, -3.0, 7.0]),
        sigma: Array::vector(vec![15.0, 10.0, 16.0, 11.0]),
    }
}

fn soup(n: usize) -> SoupData {
    SoupData {
        x: x(n),
        y: Array::vector(stream(n, 5)),
        c: Array::vector(stream(n, 6).iter().map(|v| f32::from(*v > 0.2)).collect()),
        m: Array::new(stream(D * J, 7), vec![D, J]).unwrap(),
    }
}

fn noisy(n: usize) -> NoisyData {
    NoisyData {
        x: x(n),
        y: Array::vector(stream(n, 10).iter().map(|v| 3.0 * v).collect()),
    }
}

fn scales() -> ScalesData {
    let s = schools();
    ScalesData {
        y: s.y,
        sigma: s.sigma,
        r: Array::vector(vec![0.5, 1.7, 3.2, 0.9]),
        h: Array::vector(vec![0.3, 2.1, 1.1, 0.05]),
        e: Array::vector(vec![1.5, 0.2, 0.7, 2.4]),
        c: Array::vector(vec![4.0, 0.6, 12.0, 2.2]),
    }
}

fn robust(n: usize) -> RobustData {
    let positive = |seed| Array::vector(stream(n, seed).iter().map(|v| 1.2 + v).collect());
    RobustData {
        x: x(n),
        y: Array::vector(stream(n, 11).iter().map(|v| 4.0 * v).collect()),
        v: Array::vector(stream(n, 12)),
        g: positive(13),
        h: positive(14),
    }
}

fn indexed(n: usize) -> IndexedData {
    IndexedData {
        x: x(n),
        g: Array::vector((0..n).map(|i| ((i * 7 + i / 3) % J) as f32).collect()),
        y: Array::vector(stream(n, 15).iter().map(|v| 2.0 * v).collect()),
        c: Array::vector(vec![0.5, -1.0, 0.25, 2.0]),
    }
}

fn pixels(n: usize) -> PixelsData {
    // values in [0, 1] with exact 0s and 1s among them
    let grey = |seed| {
        let v = stream(n, seed)
            .iter()
            .map(|v| (v * 0.8 + 0.5).clamp(0.0, 1.0))
            .collect();
        Array::vector(v)
    };
    PixelsData {
        x: x(n),
        y: grey(19),
        z: grey(20),
    }
}

fn mixed(n: usize) -> MixedData {
    MixedData {
        x: Array::new(stream(2 * n, 16), vec![n, 2]).unwrap(),
        y: Array::vector(
            stream(n, 17)
                .iter()
                .map(|v| 3.0 * v + if *v > 0.0 { 2.0 } else { -2.0 })
                .collect(),
        ),
        k: Array::vector(
            stream(n, 18)
                .iter()
                .map(|v| ((v + 1.0) * 3.0).floor())
                .collect(),
        ),
    }
}

fn bnn(n: usize) -> BnnData {
    let y = stream(n, 8)
        .iter()
        .map(|v| ((v + 1.0) * 1.5).floor().min(2.0))
        .collect();
    BnnData {
        x: x(n),
        y: Array::vector(y),
    }
}

fn stacked(n: usize) -> StackedData {
    StackedData {
        x: x(n),
        y: Array::new(stream(n, 9), vec![n, 1]).unwrap(),
    }
}

/// Moves every parameter off its initial value, the same way for both guides.
fn spread<G: Guide<Cpu>>(guide: &mut G) {
    let ids: Vec<ravi::ParamId> = guide.params().ids().collect();
    for (k, id) in ids.into_iter().enumerate() {
        if guide.params().is_constant(id) {
            continue;
        }
        let n = guide.params().get(id).as_vec().len();
        let v: Vec<f32> = stream(n, 100 + k as u64).iter().map(|v| 0.5 * v).collect();
        guide.params_mut().set(id, &v);
    }
}

/// From identically seeded devices, the engine's ELBO gradient equals the graph's: for
/// guides as built, and for guides started at the Laplace approximation (in their frames)
/// and then moved off it.
fn same_gradient<G: Guide<Cpu>>(
    make: &dyn Fn(&Cpu) -> G,
    data: &<G::Model as Model>::Data,
    batch: Option<&[usize]>,
    particles: usize,
) {
    for framed in [false, true] {
        same_gradient_from(make, data, batch, particles, framed);
    }
}

fn same_gradient_from<G: Guide<Cpu>>(
    make: &dyn Fn(&Cpu) -> G,
    data: &<G::Model as Model>::Data,
    batch: Option<&[usize]>,
    particles: usize,
    framed: bool,
) {
    let start = |g: &mut G| {
        if framed {
            let opts = FitOptions {
                steps: 1,
                fused: false,
                progress: false,
                warnings: false,
                init: ravi::Init::Laplace,
                ..FitOptions::default()
            };
            ravi::Trainer::new(g, data, &opts).unwrap();
        }
        spread(g);
    };
    for estimator in [
        Estimator::PathDerivative,
        Estimator::AnalyticEntropy,
        Estimator::Standard,
        Estimator::AnalyticKl,
    ] {
        let (mut a, mut b) = (make(&Cpu::seeded(9)), make(&Cpu::seeded(9)));
        start(&mut a);
        start(&mut b);
        let graph = ravi::elbo_gradient(&a, data, batch, particles, estimator).unwrap();
        let (_, host) = ravi::fused::elbo_gradient(&b, data, batch, particles, estimator)
            .unwrap()
            .expect("the guide has a program for the engine");
        let constant: Vec<bool> = a
            .params()
            .ids()
            .map(|id| a.params().is_constant(id))
            .collect();
        let scale = graph
            .iter()
            .zip(&constant)
            .filter(|(_, &c)| !c)
            .flat_map(|(g, _)| g)
            .fold(1.0f32, |m, v| m.max(v.abs()));
        for (p, (g, h)) in graph.iter().zip(&host).enumerate() {
            if constant[p] {
                continue; // a frame: never optimised
            }
            assert_eq!(g.len(), h.len());
            for (i, (g, h)) in g.iter().zip(h).enumerate() {
                assert!(
                    (g - h).abs() <= 2e-5 * scale,
                    "{}, {estimator:?}, framed {framed}, parameter {p}[{i}]: graph {g} vs engine {h}",
                    <G::Model as Model>::NAME
                );
            }
        }
    }
}

/// Fits with and without the engine take the same steps: ELBO estimates and parameters
/// agree (to f32 rounding, which Adam's normalisation keeps from growing).
fn same_fit<G: Guide<Cpu>>(
    make: &dyn Fn(&Cpu) -> G,
    data: &<G::Model as Model>::Data,
    opts: FitOptions,
) {
    same_steps(make, data, opts, 1e-4, &|host: &Trainer<G, Cpu>| {
        assert!(host.is_fused(), "{}", host.report().engine)
    });
}

/// The steps of a trainer on `opts` (the engine) and of one on the graph alone, from
/// identically seeded guides: ELBOs within `tol` (relative) step by step, parameters within
/// 10⁻³ at the end; `engine` checks the first trainer's engine.
fn same_steps<G: Guide<Cpu>>(
    make: &dyn Fn(&Cpu) -> G,
    data: &<G::Model as Model>::Data,
    opts: FitOptions,
    tol: f32,
    engine: &dyn Fn(&Trainer<G, Cpu>),
) {
    let (mut a, mut b) = (make(&Cpu::seeded(4)), make(&Cpu::seeded(4)));
    let mut host = Trainer::new(&mut a, data, &opts).unwrap();
    let graph_opts = FitOptions {
        fused: false,
        ..opts.clone()
    };
    let mut graph = Trainer::new(&mut b, data, &graph_opts).unwrap();
    engine(&host);
    assert!(matches!(graph.report().engine, EngineChoice::Graph(_)));
    for step in 0..opts.steps {
        let (h, g) = (host.step().unwrap(), graph.step().unwrap());
        let (ravi::Step::Taken(h), ravi::Step::Taken(g)) = (h, g) else {
            panic!("a skipped step")
        };
        assert!(
            (h - g).abs() <= tol * g.abs().max(1.0),
            "step {step}: engine ELBO {h} vs graph {g}"
        );
    }
    // The engine's trainer hands its parameters to the guide when it is dropped.
    drop((host, graph));
    for ((name, x), (_, y)) in a.params().iter().zip(b.params().iter()) {
        for (u, v) in x.as_vec().iter().zip(y.as_vec()) {
            assert!((u - v).abs() < 1e-3, "{name}: engine {u} vs graph {v}");
        }
    }
}

/// A guide the engine does not run, over a model it does: its steps draw on the graph and
/// score the draws on the engine, and take the steps the graph alone takes (to rounding).
fn same_fit_model_on_host<G: Guide<Cpu>>(
    make: &dyn Fn(&Cpu) -> G,
    data: &<G::Model as Model>::Data,
    opts: FitOptions,
) {
    same_steps(make, data, opts, 1e-3, &|host: &Trainer<G, Cpu>| {
        let engine = host.report().engine;
        assert!(matches!(engine, EngineChoice::HostModel(_)), "{engine}")
    });
}

#[test]
fn graph_guides_are_scored_on_the_engine() {
    same_fit_model_on_host(&LinearLowRank::new, &linear(120), opts(2, Some(40)));
    same_fit_model_on_host(&IndexedLowRank::new, &indexed(90), opts(1, Some(30)));
    let few = FitOptions {
        steps: 60,
        ..opts(2, Some(50))
    };
    same_fit_model_on_host(&BnnImplicit::new, &bnn(150), few);
    // the engine scores the model at the step's temperature, annealed
    let annealed = annealed(opts(2, Some(40)));
    let data = TemperedData {
        x: x(120),
        y: Array::vector(stream(120, 23)),
    };
    same_fit_model_on_host(&TemperedLowRank::new, &data, annealed);
}

/// A rewritten net call (Flipout, the local reparametrization) draws its own noise on the
/// engine (its streams, not the graph's), so the two paths agree in distribution: over
/// many draws the mean ELBO gradient of every parameter is the same, within five standard
/// errors of the difference.
fn same_expected_gradient<G: Guide<Cpu>>(
    make: &dyn Fn(&Cpu) -> G,
    data: &<G::Model as Model>::Data,
    estimator: Estimator,
) {
    let draws = 400;
    let (mut a, mut b) = (make(&Cpu::seeded(9)), make(&Cpu::seeded(9)));
    spread(&mut a);
    spread(&mut b);
    let moments = |grads: Vec<Vec<Vec<f32>>>| -> Vec<(f64, f64)> {
        let flat: Vec<Vec<f64>> = grads
            .into_iter()
            .map(|g| g.into_iter().flatten().map(f64::from).collect())
            .collect();
        (0..flat[0].len())
            .map(|i| {
                let n = flat.len() as f64;
                let mean = flat.iter().map(|g| g[i]).sum::<f64>() / n;
                let var = flat.iter().map(|g| (g[i] - mean).powi(2)).sum::<f64>() / (n - 1.0);
                (mean, var / n)
            })
            .collect()
    };
    let graph = moments(
        (0..draws)
            .map(|_| ravi::elbo_gradient(&a, data, None, 1, estimator).unwrap())
            .collect(),
    );
    let host = moments(
        (0..draws)
            .map(|_| {
                let (_, g) = ravi::fused::elbo_gradient(&b, data, None, 1, estimator)
                    .unwrap()
                    .expect("the guide has a program for the engine");
                g
            })
            .collect(),
    );
    let mut worst = 0.0f64;
    for (i, ((mg, vg), (mh, vh))) in graph.iter().zip(&host).enumerate() {
        let z = (mg - mh).abs() / (vg + vh).sqrt().max(1e-9);
        worst = worst.max(z);
        assert!(
            z < 5.0,
            "{estimator:?}, coordinate {i}: graph {mg} ± {} vs engine {mh} ± {}",
            vg.sqrt(),
            vh.sqrt()
        );
    }
    // and not trivially: the estimates do differ draw to draw
    assert!(graph.iter().any(|(_, v)| *v > 0.0) && worst > 0.0);
}

#[test]
fn rewritten_nets_on_the_engine_have_the_graphs_expected_gradient() {
    let data = bnn(60);
    for estimator in [Estimator::AnalyticKl, Estimator::Standard] {
        same_expected_gradient(&BnnFlipout::new, &data, estimator);
        same_expected_gradient(&BnnLrt::new, &data, estimator);
    }
    // and their fits run on the engine
    let mut g = BnnFlipout::new(&Cpu::seeded(0));
    assert!(Trainer::new(&mut g, &data, &opts(1, None))
        .unwrap()
        .is_fused());
}

/// `opts` with the relaxation temperature annealed from 1 to ½.
fn annealed(opts: FitOptions) -> FitOptions {
    FitOptions {
        temperature: ravi::Schedule::Exponential {
            start: 1.0,
            end: 0.5,
        },
        ..opts
    }
}

fn opts(particles: usize, batch: Option<usize>) -> FitOptions {
    FitOptions {
        steps: 200,
        particles,
        batch_size: batch,
        progress: false,
        ..FitOptions::default()
    }
}

#[test]
fn gradients_match_the_graph() {
    let rows: Vec<usize> = (0..50).map(|i| (i * 7) % 120).collect();
    same_gradient(&LinearGuide::new, &linear(120), None, 3);
    same_gradient(&LinearJoint::new, &linear(120), Some(&rows), 2);
    same_gradient(&LogisticGuide::new, &logistic(120), None, 4);
    same_gradient(&CountsGuide::new, &counts(120), Some(&rows), 1);
    same_gradient(&SchoolsGuide::new, &schools(), None, 5);
    same_gradient(&SoupGuide::new, &soup(120), None, 3);
    same_gradient(&SoupGuide::new, &soup(120), Some(&rows), 1);
    same_gradient(&LinearFullRank::new, &linear(120), None, 3);
    same_gradient(&NoisyGuide::new, &noisy(120), None, 3);
    same_gradient(&NoisyJoint::new, &noisy(120), Some(&rows), 2);
    same_gradient(&ScalesGuide::new, &scales(), None, 4);
    same_gradient(&NoisyHand::new, &noisy(120), None, 2);
    same_gradient(&RobustGuide::new, &robust(120), None, 3);
    same_gradient(&RobustGuide::new, &robust(120), Some(&rows), 1);
    same_gradient(&NoisyMixed::new, &noisy(120), Some(&rows), 3);
    same_gradient(&BnnGuide::new, &bnn(120), None, 2);
    same_gradient(&BnnGuide::new, &bnn(120), Some(&rows), 1);
    same_gradient(&StackedGuide::new, &stacked(120), None, 3);
    same_gradient(&SchoolsMixed::new, &schools(), None, 2);
    same_gradient(&IndexedGuide::new, &indexed(120), None, 3);
    same_gradient(&IndexedGuide::new, &indexed(120), Some(&rows), 2);
    same_gradient(&MixedGuide::new, &mixed(120), None, 3);
    same_gradient(&MixedGuide::new, &mixed(120), Some(&rows), 2);
    same_gradient(&PixelsGuide::new, &pixels(120), None, 3);
    same_gradient(&PixelsGuide::new, &pixels(120), Some(&rows), 2);
}

#[test]
fn fits_match_the_graph() {
    same_fit(&LinearGuide::new, &linear(200), opts(1, None));
    same_fit(&LinearJoint::new, &linear(200), opts(4, Some(32)));
    same_fit(&LogisticGuide::new, &logistic(200), opts(2, Some(64)));
    same_fit(&SchoolsGuide::new, &schools(), opts(8, None));
    same_fit(&LinearFullRank::new, &linear(200), opts(1, None));
    same_fit(&SchoolsMixed::new, &schools(), opts(8, None));
    same_fit(&NoisyGuide::new, &noisy(150), opts(2, Some(50)));
    same_fit(&ScalesGuide::new, &scales(), opts(4, None));
    same_fit(&NoisyHand::new, &noisy(150), opts(2, None));
    same_fit(&RobustGuide::new, &robust(150), opts(2, Some(50)));
    same_fit(&NoisyMixed::new, &noisy(150), opts(1, Some(50)));
    same_fit(&BnnGuide::new, &bnn(150), opts(1, Some(32)));
    same_fit(&IndexedGuide::new, &indexed(150), opts(2, Some(50)));
    // A mixture's logits are the same up to a constant: the Laplace start's curvature has a
    // flat direction, whose frame f32 rounding settles differently on each path.
    let start_at_zero = FitOptions {
        init: ravi::Init::Zero,
        ..opts(2, Some(50))
    };
    same_fit(&MixedGuide::new, &mixed(150), start_at_zero);
    let kl = FitOptions {
        estimator: Estimator::AnalyticKl,
        ..opts(4, Some(32))
    };
    same_fit(&BnnGuide::new, &bnn(150), kl.clone());
    same_fit(&SchoolsGuide::new, &schools(), kl.clone());
    same_fit(&NoisyGuide::new, &noisy(150), kl);
    same_fit(&StackedGuide::new, &stacked(150), opts(2, None));
    let tricky = FitOptions {
        clip_norm: Some(5.0),
        adam: ravi::AdamConfig {
            weight_decay: 0.01,
            ..Default::default()
        },
        frozen: vec!["a.loc".into()],
        estimator: Estimator::Standard,
        ..opts(2, Some(50))
    };
    same_fit(&SoupGuide::new, &soup(150), tricky);
}

#[test]
fn the_engine_runs_only_what_it_covers() {
    let data = linear(50);
    let mut g = LinearLowRank::new(&Cpu::seeded(0));
    assert!(!Trainer::new(&mut g, &data, &opts(1, None))
        .unwrap()
        .is_fused());
    let mut g = LinearGuide::new(&Cpu::seeded(0));
    assert!(Trainer::new(&mut g, &data, &opts(1, None))
        .unwrap()
        .is_fused());
    let graph = FitOptions {
        fused: false,
        ..opts(1, None)
    };
    assert!(!Trainer::new(&mut g, &data, &graph).unwrap().is_fused());
    assert!(ravi::fused::elbo_gradient(
        &LinearLowRank::new(&Cpu::seeded(0)),
        &data,
        None,
        1,
        Estimator::Standard
    )
    .unwrap()
    .is_none());
    let data = noisy(30);
    let mut g = NoisyFixedScale::new(&Cpu::seeded(0));
    assert!(!Trainer::new(&mut g, &data, &opts(1, None))
        .unwrap()
        .is_fused());
}

model! {
    /// A scale that can reach zero: its log density goes to −∞.
    model Fragile(y: [N]) {
        s ~ Normal(0.0, 1.0);
        y ~ Normal(0.0, exp(s * 200.0));
    }
}
guide! { guide FragileGuide for Fragile { s ~ MeanField; } }

/// A non-finite ELBO stops an engine fit at the step a graph fit stops, naming the site.
#[test]
fn a_non_finite_elbo_stops_both_paths_alike() {
    let data = FragileData {
        y: Array::vector(vec![1.0e3, -1.0e3]),
    };
    let run = |fused: bool| {
        let mut g = FragileGuide::new(&Cpu::seeded(0));
        let opts = FitOptions {
            steps: 2000,
            particles: 4,
            fused,
            // from the mode the fit stays clear of the cliff; from 0 it walks off it
            init: ravi::Init::Zero,
            ..opts(4, None)
        };
        match ravi::fit(&mut g, &data, &opts) {
            Err(ravi::FitError::NonFinite { step, culprit, .. }) => (step, culprit),
            other => panic!("expected a non-finite ELBO, got {other:?}"),
        }
    };
    let (host, graph) = (run(true), run(false));
    assert_eq!(host.0, graph.0, "the step");
    let culprit = host.1.expect("a culprit is named");
    assert!(
        culprit.starts_with("the log density of site `y` is"),
        "{culprit}"
    );
    assert_eq!(Some(culprit), graph.1);
}

/// The search for the mode runs on the engine where it can: it must find the start the
/// dfdx graph finds (the same mode, Hessian and frames), for positive latents and a mixed
/// full-rank / mean-field guide.
#[test]
fn the_engine_starts_a_guide_where_the_graph_does() {
    fn started<G: Guide<Cpu>>(
        mut g: G,
        data: &<G::Model as Model>::Data,
        fused: bool,
    ) -> Vec<Vec<f32>> {
        let opts = FitOptions {
            steps: 1,
            fused,
            progress: false,
            warnings: false,
            init: ravi::Init::Laplace,
            ..FitOptions::default()
        };
        let mut t = ravi::Trainer::new(&mut g, data, &opts).unwrap();
        assert_eq!(t.init_report().method, ravi::Init::Laplace);
        t.guide().params().iter().map(|(_, v)| v.as_vec()).collect()
    }
    let close = |a: &[Vec<f32>], b: &[Vec<f32>]| {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            for (u, v) in x.iter().zip(y) {
                assert!(
                    (u - v).abs() <= 1e-3 * (1.0 + u.abs().max(v.abs())),
                    "{u} vs {v}"
                );
            }
        }
    };
    let data = noisy(60);
    close(
        &started(NoisyJoint::new(&Cpu::seeded(3)), &data, true),
        &started(NoisyJoint::new(&Cpu::seeded(3)), &data, false),
    );
    let data = scales();
    close(
        &started(ScalesGuide::new(&Cpu::seeded(3)), &data, true),
        &started(ScalesGuide::new(&Cpu::seeded(3)), &data, false),
    );
}
