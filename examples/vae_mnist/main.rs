//! Variational autoencoders on MNIST with the seed's architectures (the pytorch-distributions
//! scripts): one latent vector per image (a local site) under an encoder net in the guide (an
//! amortized guide), a Bernoulli likelihood per pixel whose logits come from a decoder net
//! whose weights are a model `param`.
//!
//! - `--latent gaussian` (default): z ~ N(0, I) [20]; encoder 784 → 400 (relu) → 2 · 20 (a
//!   location and a softplus scale per latent), decoder 20 → 400 (relu) → 784 logits.
//! - `relaxed-bernoulli`: 20 binary concrete latents, prior RelaxedBernoulli(τ, logits 0);
//!   encoder 784 → 400 (relu) → 20 logits, decoder 20 → 400 (relu) → 784.
//! - `concrete`: 20 concrete (Gumbel-softmax) latents of 10 classes each, uniform prior
//!   RelaxedOneHotCategorical(τ, logits 0) [20, 10]; encoder 784 → 400 (relu) → 200 logits,
//!   decoder 200 → 400 (relu) → 784 (the 20 × 10 values read as 200 features).
//!
//! # Protocol
//!
//! - **Data**: `data/mnist` read by [`ravi::mnist::load`]: the 60,000 training images to
//!   fit, the 10,000 test images to score. **Binarization**: fixed, a pixel is 1 where its
//!   intensity p / 255 is above 0.5 (`Digits::binarized(0.5)`), else 0; the same for every
//!   epoch (no dynamic resampling of the pixels).
//! - **Likelihood**: x_ij ~ Bernoulli(logits = Decoder(z_i)), an exact log-likelihood of the
//!   binary pixels: the negative ELBO is in nats per image and the IWAE bound an upper bound
//!   on the test negative log-likelihood.
//! - **Steps and epochs**: minibatches of 128 rows (`--batch`), one particle per row
//!   (`--particles`), the minibatch's log-likelihood scaled by 60,000 / 128 so every step
//!   estimates the full-data ELBO. An **epoch** is ⌊60,000 / 128⌋ = 468 steps over a fresh
//!   random permutation of the training rows, each row in at most one minibatch; the 96
//!   rows left over (different ones each epoch) are not seen that epoch (PyTorch's loader
//!   gives them as a 469th, smaller, minibatch). 10 epochs (`--epochs`) = 4,680 steps.
//! - **Optimiser**: Adam, learning rate 10⁻³ constant (`Schedule::Constant`, `--lr`),
//!   β = (0.9, 0.999), ε = 10⁻⁸, no weight decay, no gradient clipping. The weights start
//!   Glorot-uniform (`Init::Auto`, which is `Init::Zero` with Glorot nets for local sites).
//!   As in every ravi fit ([`ravi::Trainer`]) the parameters after the last step are the
//!   mean of the iterates over the fit's last window (steps / 25 = 187 steps for 10 epochs;
//!   Polyak averaging), so the last epoch's test figure is that of the averaged parameters;
//!   `--last-iterate` keeps the last step's parameters instead (PyTorch's protocol).
//! - **KL term**: `--estimator analytic-kl` (default). For Gaussian latents the encoder's
//!   KL(q(z | x) ‖ N(0, I)) per image is in closed form, as in PyTorch's script (the
//!   likelihood is Monte Carlo at one draw). Relaxed latents have none: their
//!   log q and log p are Monte Carlo at the draw (the standard estimator; the densities are
//!   the relaxed ones, scored in logit / log-ratio space), so the relaxed ELBO is a proper
//!   bound of the relaxed model (the seed's scripts add the *discrete* KL of the
//!   encoder's probabilities to a relaxed draw's likelihood instead, which is not).
//! - **Temperature** (relaxed latents): the seed multiplies τ by exp(−3·10⁻⁵ · step) every
//!   1,000 steps (floor 0.1) from τ = 1, which after 4,680 steps is exp(−0.3) = 0.741. Here
//!   τ anneals geometrically per step (`Schedule::Exponential`) from `--tau-start` (1) to
//!   `--tau-end` (default: the seed's temperature after the run's number of steps, so 0.741
//!   for 10 epochs and 1 for 1 epoch); model and guide read the same τ. Test figures are
//!   computed at the temperature of the epoch's last step.
//! - **Reported, per epoch**: the train negative ELBO per image, the mean of the epoch's
//!   468 step estimates (taken with the parameters as they move, as PyTorch's "Average
//!   loss"), and the test negative ELBO per image over all 10,000 test images
//!   (`--eval-particles` draws per image, default 1 as PyTorch's test loss). At the end:
//!   the test IWAE bound (K = 100 draws, `--iwae-k`, on the first 1,000 test images,
//!   `--iwae-rows`) beside the negative ELBO of the same images (100 draws each), training
//!   steps per second (the steps alone, not the evaluation) and the peak resident memory
//!   (VmHWM). The library evaluates the test figures in passes of bounded memory with
//!   each row's terms summed in f64 (`ravi::passes`).
//!
//! The PyTorch VAE example's familiar 105.59 is a different quantity: it feeds the grey
//! intensities in [0, 1] to the binary cross-entropy, −Σ x log p + (1 − x) log(1 − p),
//! which for non-binary x is not the log-density of any distribution over pixels (it lacks
//! the continuous Bernoulli's normalizer) and includes an irreducible Σ H(x) of the grey
//! pixels; on binarized pixels that cross-entropy is exactly the Bernoulli negative
//! log-likelihood, the figure here.
//!
//! Writes `reconstructions.png` (the first 10 test images over their reconstructions, the
//! decoder's P(pixel on) averaged over 20 draws of the guide), `samples.png` (64 draws from
//! the prior, decoded) and `elbo.png` (the train negative ELBO per step, and per epoch the
//! train and test figures) into `--out` / latent (default `target/vae_mnist/<latent>`).
//!
//! ```text
//! cargo run --release --example vae_mnist -- [--device cpu|cuda] [--latent gaussian|relaxed-bernoulli|concrete]
//!     [--epochs N] [--batch B] [--lr X] [--particles S] [--seed K] [--estimator analytic-kl|path-derivative|analytic-entropy|standard]
//!     [--tau-start T] [--tau-end T] [--eval-particles P] [--iwae-k K] [--iwae-rows R] [--train-rows N]
//!     [--last-iterate] [--data DIR] [--out DIR] [--json]
//! ```

#[path = "../vae_digits/flags.rs"]
mod flags;
#[path = "../vae_digits/plot.rs"]
mod plot;

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::{Parser, ValueEnum};
use flags::VaeFlags;

use ravi::dfdx::prelude::*;
use ravi::dfdx::tensor::NoneTape;
use ravi::prelude::*;
use ravi::{Batch, ModelData as _, SitePredictive, Step, Trainer};

const SIDE: usize = 28;
const PIXELS: usize = SIDE * SIDE;
/// Latent values per image (Gaussian and relaxed Bernoulli; the concrete latents are 20
/// events of `CLASSES` classes).
const LATENTS: usize = 20;
const CLASSES: usize = 10;

model! {
    net Encoder(x: [B, 784]) -> [B, 40] { Linear(784, 400) -> relu -> Linear(400, 40) }
    net Decoder(z: [B, 20]) -> [B, 784] { Linear(20, 400) -> relu -> Linear(400, 784) }
    /// Gaussian latents: p(z) = N(0, I), p(x | z) = Bernoulli(logits = Decoder(z)).
    model Vae(x: [N, 784] in 0..2) {
        param dec [params(Decoder)];
        z ~ Normal(0.0, 1.0) [N, 20];
        x ~ Bernoulli(logits = Decoder(z; dec));
    }

    /// Gaussian latents over the grey intensities in [0, 1]: a continuous Bernoulli per
    /// pixel (Loaiza-Ganem & Cunningham 2019), a proper density where the binary
    /// cross-entropy of grey pixels is not one.
    model GreyVae(x: [N, 784]) {
        param dec [params(Decoder)];
        z ~ Normal(0.0, 1.0) [N, 20];
        x ~ ContinuousBernoulli(logits = Decoder(z; dec));
    }

    net BinaryEncoder(x: [B, 784]) -> [B, 20] { Linear(784, 400) -> relu -> Linear(400, 20) }
    net BinaryDecoder(z: [B, 20]) -> [B, 784] { Linear(20, 400) -> relu -> Linear(400, 784) }
    /// Relaxed Bernoulli latents (binary concrete) at the fit's temperature, prior p = 1/2.
    model BinaryVae(x: [N, 784] in 0..2) {
        param dec [params(BinaryDecoder)];
        z ~ RelaxedBernoulli(temperature, 0.0) [N, 20];
        x ~ Bernoulli(logits = BinaryDecoder(z; dec));
    }

    net ConcreteEncoder(x: [B, 784]) -> [B, 200] { Linear(784, 400) -> relu -> Linear(400, 200) }
    net ConcreteDecoder(z: [B, 20, 10]) -> [B, 784] { Linear(200, 400) -> relu -> Linear(400, 784) }
    /// Twenty concrete (Gumbel-softmax) latents of 10 classes per image, uniform priors.
    model ConcreteVae(x: [N, 784] in 0..2) {
        param dec [params(ConcreteDecoder)];
        z ~ RelaxedOneHotCategorical(temperature, 0.0) [N, 20, 10];
        x ~ Bernoulli(logits = ConcreteDecoder(z; dec));
    }
}

guide! {
    guide VaeGuide for Vae { z ~ Amortized(Encoder(x)); }
    guide GreyVaeGuide for GreyVae { z ~ Amortized(Encoder(x)); }
    guide BinaryVaeGuide for BinaryVae { z ~ Amortized(BinaryEncoder(x)); }
    guide ConcreteVaeGuide for ConcreteVae { z ~ Amortized(ConcreteEncoder(x)); }
}

/// Fits a VAE to MNIST with the seed's architecture and protocol; see the module docs.
#[derive(Parser, Debug)]
#[command(name = "vae_mnist")]
struct Args {
    #[command(flatten)]
    vae: VaeFlags,
    /// Epochs of ⌊training rows / batch⌋ steps each.
    #[arg(long, default_value_t = 10, value_parser = flags::at_least_one)]
    epochs: usize,
    /// Adam's learning rate (constant).
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// The estimator of the KL term's gradient.
    #[arg(long, value_enum, default_value = "analytic-kl")]
    estimator: EstimatorFlag,
    /// Relaxation temperature at the last step (relaxed latents) [default: the seed's
    /// temperature after the run's steps, 0.741 for 10 epochs].
    #[arg(long)]
    tau_end: Option<f32>,
    /// Draws per image of the per-epoch test negative ELBO.
    #[arg(long, default_value_t = 1, value_parser = flags::at_least_one)]
    eval_particles: usize,
    /// Draws per image of the final test IWAE bound.
    #[arg(long, default_value_t = 100, value_parser = flags::at_least_one)]
    iwae_k: usize,
    /// Test images (the first ones) of the final IWAE bound.
    #[arg(long, default_value_t = 1000)]
    iwae_rows: usize,
    /// Fit on the first N training images only (a quick check) [default: all 60,000].
    #[arg(long)]
    train_rows: Option<usize>,
    /// Keep the last step's parameters (PyTorch's protocol), not the mean over the last
    /// window.
    #[arg(long)]
    last_iterate: bool,
    /// Model the grey intensities in [0, 1] with a continuous Bernoulli per pixel instead
    /// of binarizing them (Gaussian latents only; the figures are then nats of a density).
    #[arg(long)]
    grey: bool,
    /// The folder of the MNIST files.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/data/mnist"))]
    data: PathBuf,
    /// Folder for the PNGs (a subfolder per latent).
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/target/vae_mnist"))]
    out: PathBuf,
}

/// `--estimator`.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum EstimatorFlag {
    /// Closed-form KL where there is one, else the analytic entropy.
    AnalyticKl,
    /// The path derivative (sticking the landing).
    PathDerivative,
    /// The entropy in closed form, the prior term by Monte Carlo.
    AnalyticEntropy,
    /// log q at the draw with its full gradient.
    Standard,
}

impl From<EstimatorFlag> for Estimator {
    fn from(e: EstimatorFlag) -> Estimator {
        match e {
            EstimatorFlag::AnalyticKl => Estimator::AnalyticKl,
            EstimatorFlag::PathDerivative => Estimator::PathDerivative,
            EstimatorFlag::AnalyticEntropy => Estimator::AnalyticEntropy,
            EstimatorFlag::Standard => Estimator::Standard,
        }
    }
}

/// The seed scripts' temperature after `steps` steps: from 1, every 1,000 steps
/// τ ← max(τ · exp(−3·10⁻⁵ · step), 0.1).
fn seed_temperature(steps: usize) -> f32 {
    let mut t = 1.0f64;
    for k in (1000..=steps).step_by(1000) {
        t = (t * (-3e-5 * k as f64).exp()).max(0.1);
    }
    t as f32
}

/// A model's data from its one input, the binarized images `[n, 784]`.
trait FromImages: Sized {
    fn from_images(x: ravi::Array) -> Self;
}
impl FromImages for VaeData {
    fn from_images(x: ravi::Array) -> Self {
        VaeData { x }
    }
}
impl FromImages for GreyVaeData {
    fn from_images(x: ravi::Array) -> Self {
        GreyVaeData { x }
    }
}
impl FromImages for BinaryVaeData {
    fn from_images(x: ravi::Array) -> Self {
        BinaryVaeData { x }
    }
}
impl FromImages for ConcreteVaeData {
    fn from_images(x: ravi::Array) -> Self {
        ConcreteVaeData { x }
    }
}

/// Rows `start..end` of `images`.
fn rows_of(images: &ravi::Array, start: usize, end: usize) -> ravi::Array {
    images.gather_rows(&(start..end).collect::<Vec<_>>())
}

/// `bound` (a log-likelihood bound over all the rows it is given) over the rows of
/// `images`, negated, per image. The library takes the rows in passes of bounded memory
/// and sums each row's terms in f64 (one f32 sum over the 10,000 test images read 0.76
/// nats per image too good).
fn neg_per_image<D: Backend, G: Guide<D>>(
    images: &ravi::Array,
    bound: impl FnOnce(&<G::Model as Model>::Data) -> Result<f64, ravi::FitError>,
) -> Result<f64, Box<dyn std::error::Error>>
where
    <G::Model as Model>::Data: FromImages,
{
    let rows = images.shape()[0] as f64;
    let data = <G::Model as Model>::Data::from_images(images.clone());
    Ok(-bound(&data)? / rows)
}

/// The negative ELBO per image over the rows of `images`, `particles` draws per image.
fn neg_elbo_per_image<D: Backend, G: Guide<D>>(
    guide: &G,
    images: &ravi::Array,
    particles: usize,
    temperature: f32,
) -> Result<f64, Box<dyn std::error::Error>>
where
    <G::Model as Model>::Data: FromImages,
{
    neg_per_image::<D, G>(images, |d| ravi::elbo_at(guide, d, particles, temperature))
}

/// The importance-weighted bound on the negative log-likelihood per image, `k` draws.
fn iwae_nll_per_image<D: Backend, G: Guide<D>>(
    guide: &G,
    images: &ravi::Array,
    k: usize,
    temperature: f32,
) -> Result<f64, Box<dyn std::error::Error>>
where
    <G::Model as Model>::Data: FromImages,
{
    neg_per_image::<D, G>(images, |d| ravi::iwae(guide, d, k, temperature))
}

/// What a run measured, in nats per image.
struct Scores {
    /// Per epoch: the mean of its steps' train estimates, and the test figure after it.
    train_neg_elbo: Vec<f64>,
    test_neg_elbo: Vec<f64>,
    /// Per step, the train negative ELBO estimate per image.
    trace: Vec<f32>,
    /// On the first `iwae_rows` test images: the IWAE bound and the negative ELBO.
    iwae_nll: f64,
    iwae_rows_neg_elbo: f64,
    steps: usize,
    train_seconds: f64,
    eval_seconds: f64,
    stepped_back: usize,
    temperature_end: f32,
}

struct Run<'a> {
    args: &'a Args,
    /// Taken by the fit (the trainer holds them; no second copy).
    train: Option<ravi::Array>,
    test: &'a ravi::Array,
    opts: FitOptions,
    steps_per_epoch: usize,
}

/// Fits `guide` epoch by epoch, scoring the test images after each; then the IWAE bound.
fn fit_and_score<D: Backend, G: Guide<D>>(
    guide: &mut G,
    run: &mut Run,
) -> Result<Scores, Box<dyn std::error::Error>>
where
    <G::Model as Model>::Data: FromImages,
{
    let args = run.args;
    let opts = &run.opts;
    let train = <G::Model as Model>::Data::from_images(
        run.train
            .take()
            .ok_or("the training images are fitted once")?,
    );
    let n_train = train.arrays()[0].shape()[0] as f64;
    let mut trainer = Trainer::new(guide, &train, opts)?;
    let (mut train_seconds, mut eval_seconds) = (0.0, 0.0);
    let mut s = Scores {
        train_neg_elbo: Vec::new(),
        test_neg_elbo: Vec::new(),
        trace: Vec::with_capacity(opts.steps),
        iwae_nll: f64::NAN,
        iwae_rows_neg_elbo: f64::NAN,
        steps: 0,
        train_seconds: 0.0,
        eval_seconds: 0.0,
        stepped_back: 0,
        temperature_end: 1.0,
    };
    for epoch in 1..=args.epochs {
        let clock = Instant::now();
        let mut sum = 0.0f64;
        for _ in 0..run.steps_per_epoch {
            let v = match trainer.step()? {
                Step::Taken(v) | Step::Skipped(v) => v,
                Step::SteppedBack(v) => {
                    s.stepped_back += 1;
                    v
                }
            };
            let per_image = -f64::from(v) / n_train;
            sum += per_image;
            s.trace.push(per_image as f32);
        }
        let seconds = clock.elapsed().as_secs_f64();
        train_seconds += seconds;
        let clock = Instant::now();
        let t = opts.temperature.at(trainer.steps_taken() - 1, opts.steps);
        let test = neg_elbo_per_image(trainer.guide(), run.test, args.eval_particles, t)?;
        eval_seconds += clock.elapsed().as_secs_f64();
        s.train_neg_elbo.push(sum / run.steps_per_epoch as f64);
        s.test_neg_elbo.push(test);
        s.temperature_end = t;
        if !args.vae.json {
            println!(
                "epoch {epoch:3}  train -ELBO {:8.3}  test -ELBO {test:8.3}  (tau {t:.3}, {:.1} s, {:.1} steps/s, eval {:.1} s)",
                sum / run.steps_per_epoch as f64,
                seconds,
                run.steps_per_epoch as f64 / seconds,
                clock.elapsed().as_secs_f64(),
            );
        }
    }
    s.steps = trainer.steps_taken();
    drop(trainer);
    let clock = Instant::now();
    let rows = args.iwae_rows.min(run.test.shape()[0]);
    let first = rows_of(run.test, 0, rows);
    s.iwae_nll = iwae_nll_per_image(guide, &first, args.iwae_k, s.temperature_end)?;
    s.iwae_rows_neg_elbo = neg_elbo_per_image(guide, &first, args.iwae_k, s.temperature_end)?;
    eval_seconds += clock.elapsed().as_secs_f64();
    s.train_seconds = train_seconds;
    s.eval_seconds = eval_seconds;
    Ok(s)
}

/// P(pixel on) for each row of `data`, averaged over 20 draws of its latent from the guide.
fn reconstructions<D: Backend, G: Guide<D>>(
    guide: &G,
    data: &<G::Model as Model>::Data,
    t: f32,
) -> Result<Vec<Vec<f32>>, Box<dyn std::error::Error>> {
    let pred = ravi::predictive_at(guide, data, 20, t)?;
    match pred.first() {
        Some(SitePredictive::Binary { probs, .. }) => Ok(probs
            .chunks(PIXELS)
            .map(|r| r.iter().map(|&p| p as f32).collect())
            .collect()),
        // a continuous Bernoulli's predictive mean: the expected grey level
        Some(SitePredictive::Continuous { mean, .. }) => Ok(mean
            .chunks(PIXELS)
            .map(|r| r.iter().map(|&p| p as f32).collect())
            .collect()),
        _ => Err("the model's observed site is Bernoulli".into()),
    }
}

/// The value of the model `param` (or guide parameter) called `name`.
fn param_values<D: Backend, G: Guide<D>>(guide: &G, name: &str) -> Result<Vec<f32>, String> {
    guide
        .params()
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| t.as_vec())
        .ok_or(format!("no parameter `{name}`"))
}

/// The decoder's P(pixel on) for `count` latents drawn from the prior (`latents`, in the
/// guide's unconstrained space).
fn decode_prior<D: Backend, G: Guide<D>>(
    guide: &G,
    latents: Vec<f32>,
    count: usize,
) -> Result<Vec<Vec<f32>>, Box<dyn std::error::Error>>
where
    <G::Model as Model>::Data: FromImages,
{
    let dev = guide.params().device();
    let zeros = <G::Model as Model>::Data::from_images(ravi::Array::new(
        vec![0.0; count * PIXELS],
        vec![count, PIXELS],
    )?);
    let batch = Batch::upload(dev, G::Model::inputs(), &zeros.arrays(), None, count);
    // The model's draws in its order: each `param` as the guide holds it, the local latents
    // from the prior.
    let mut draws = Vec::new();
    let mut local = Some(latents);
    for spec in G::Model::latents() {
        let values = match spec.param {
            Some(_) => param_values(guide, spec.name)?,
            None => local.take().ok_or("one local site")?,
        };
        let n = values.len();
        draws.push(dev.tensor_from_vec(values, (1, n)));
    }
    let args = G::Model::observed_args::<D, NoneTape>(draws, &batch);
    let logits = args[0].args[0].as_vec();
    Ok(logits
        .chunks(PIXELS)
        .map(|r| r.iter().map(|&l| 1.0 / (1.0 + (-l).exp())).collect())
        .collect())
}

/// `count` draws of the local latents from the prior, in the guide's unconstrained space.
type PriorDraw<D> = dyn Fn(&D, usize) -> Vec<f32>;

/// Fits one model, writes its pictures, returns its scores.
fn run_latent<D: Backend, G: Guide<D>>(
    guide: &mut G,
    run: &mut Run,
    prior_draw: &PriorDraw<D>,
    out: &Path,
) -> Result<Scores, Box<dyn std::error::Error>>
where
    <G::Model as Model>::Data: FromImages,
{
    let scores = fit_and_score(guide, run)?;
    std::fs::create_dir_all(out)?;
    let shown = 10;
    let first = rows_of(run.test, 0, shown);
    let recon = reconstructions(
        guide,
        &<G::Model as Model>::Data::from_images(first.clone()),
        scores.temperature_end,
    )?;
    let mut grid: Vec<Vec<f32>> = first.data().chunks(PIXELS).map(<[f32]>::to_vec).collect();
    grid.extend(recon);
    plot::image_grid(
        &out.join("reconstructions.png"),
        &grid,
        SIDE,
        SIDE,
        shown,
        3,
    )?;
    let count = 64;
    let dev = guide.params().device().clone();
    let samples = decode_prior(guide, prior_draw(&dev, count), count)?;
    plot::image_grid(&out.join("samples.png"), &samples, SIDE, SIDE, 8, 3)?;
    // Per-epoch figures drawn as steps, at the epoch's last step.
    let per_step = |v: &[f64]| -> Vec<f32> {
        let mut s = vec![f32::NAN; scores.trace.len()];
        for (e, &x) in v.iter().enumerate() {
            if let Some(slot) = s.get_mut((e + 1) * run.steps_per_epoch - 1) {
                *slot = x as f32;
            }
        }
        s
    };
    let (train_epoch, test_epoch) = (
        per_step(&scores.train_neg_elbo),
        per_step(&scores.test_neg_elbo),
    );
    // The first epoch's steps (a −ELBO of 500 and more at the start) would squash the rest:
    // with more than one epoch the per-step curve starts at the second.
    let mut trace = scores.trace.clone();
    if scores.train_neg_elbo.len() > 1 {
        trace[..run.steps_per_epoch].fill(f32::NAN);
    }
    plot::curve(
        &out.join("elbo.png"),
        "negative ELBO per image",
        "step",
        "nats",
        &[
            ("train, per step", &trace),
            ("train, epoch mean", &train_epoch),
            ("test, after the epoch", &test_epoch),
        ],
    )?;
    Ok(scores)
}

fn fit_latent<D: Backend>(
    dev: &D,
    run: &mut Run,
    out: &Path,
) -> Result<Scores, Box<dyn std::error::Error>> {
    let t_end = run.opts.temperature.at(run.opts.steps - 1, run.opts.steps);
    match run.args.vae.latent.as_str() {
        "relaxed-bernoulli" => {
            // the prior's logit: L / τ with L ~ Logistic(0, 1)
            let prior = move |dev: &D, count: usize| -> Vec<f32> {
                let u: Tensor<(usize,), f32, D> = dev.sample_uniform_like(&(count * LATENTS,));
                u.as_vec()
                    .into_iter()
                    .map(|u| {
                        let u = u.clamp(1e-6, 1.0 - 1e-6);
                        (u.ln() - (1.0 - u).ln()) / t_end
                    })
                    .collect()
            };
            run_latent(&mut BinaryVaeGuide::new(dev), run, &prior, out)
        }
        "concrete" => {
            // The prior's draw in log-ratio coordinates: g / τ with g Gumbel, less its last
            // component per event.
            let prior = move |dev: &D, count: usize| -> Vec<f32> {
                let u: Tensor<(usize,), f32, D> =
                    dev.sample_uniform_like(&(count * LATENTS * CLASSES,));
                let g: Vec<f32> = u
                    .as_vec()
                    .into_iter()
                    .map(|u| -(-u.clamp(1e-20, 1.0 - 1e-7).ln()).ln() / t_end)
                    .collect();
                g.chunks(CLASSES)
                    .flat_map(|e| {
                        e[..CLASSES - 1]
                            .iter()
                            .map(|v| v - e[CLASSES - 1])
                            .collect::<Vec<_>>()
                    })
                    .collect()
            };
            run_latent(&mut ConcreteVaeGuide::new(dev), run, &prior, out)
        }
        _ => {
            let prior = |dev: &D, count: usize| -> Vec<f32> {
                let z: Tensor<(usize,), f32, D> = dev.sample_normal_like(&(count * LATENTS,));
                z.as_vec()
            };
            match run.args.grey {
                true => run_latent(&mut GreyVaeGuide::new(dev), run, &prior, out),
                false => run_latent(&mut VaeGuide::new(dev), run, &prior, out),
            }
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let started = Instant::now();
    let mnist = ravi::mnist::load(&args.data)?;
    let train_digits = match args.train_rows {
        Some(n) => mnist.train.take(n),
        None => mnist.train,
    };
    if args.grey && args.vae.latent != "gaussian" {
        return Err("--grey models the grey pixels under Gaussian latents only".into());
    }
    let (train, test) = match args.grey {
        true => (train_digits.intensities(), mnist.test.intensities()),
        false => (train_digits.binarized(0.5), mnist.test.binarized(0.5)),
    };
    drop(train_digits);
    let n_train = train.shape()[0];
    let batch = args.vae.batch.min(n_train);
    let steps_per_epoch = n_train / batch;
    let steps = steps_per_epoch * args.epochs;
    let relaxed = args.vae.latent != "gaussian";
    let tau_end = args.tau_end.unwrap_or(seed_temperature(steps));
    let opts = FitOptions {
        steps,
        particles: args.vae.particles,
        batch_size: Some(batch),
        seed: args.vae.seed,
        schedule: Schedule::Constant(args.lr as f32),
        estimator: args.estimator.into(),
        temperature: if relaxed {
            Schedule::Exponential {
                start: args.vae.tau_start,
                end: tau_end,
            }
        } else {
            Schedule::Constant(1.0)
        },
        // a window of one step: the "average" of the last window is the last iterate
        convergence: if args.last_iterate {
            Convergence {
                window: 1,
                ..Convergence::default()
            }
        } else {
            Convergence::default()
        },
        progress: false,
        ..FitOptions::default()
    };
    let out = args.out.join(match args.grey {
        true => "gaussian-grey",
        false => args.vae.latent.as_str(),
    });
    let mut run = Run {
        args: &args,
        train: Some(train),
        test: &test,
        opts,
        steps_per_epoch,
    };
    if !args.vae.json {
        println!(
            "vae_mnist, {} latents: {n_train} training images {}, batch {batch}, {steps_per_epoch} steps per epoch, {} epochs, Adam {} (nats per image)",
            args.vae.latent,
            if args.grey { "in grey (continuous Bernoulli)" } else { "binarized at 0.5" },
            args.epochs,
            args.lr
        );
    }
    let s = match args.vae.device.as_str() {
        "cpu" => fit_latent(&Cpu::seeded(args.vae.seed), &mut run, &out)?,
        #[cfg(feature = "cuda")]
        "cuda" => fit_latent(&ravi::Cuda::seeded(args.vae.seed), &mut run, &out)?,
        other => {
            return Err(format!(
                "device {other} is not available in this build (cpu; cuda with --features cuda)"
            )
            .into())
        }
    };
    let steps_per_s = s.steps as f64 / s.train_seconds;
    let rss = ravi::memory::peak_resident_mib();
    let iwae_rows = args.iwae_rows.min(test.shape()[0]);
    if args.vae.json {
        println!(
            "{}",
            serde_json::json!({
                "latent": args.vae.latent,
                "grey": args.grey,
                "epochs": args.epochs,
                "steps": s.steps,
                "batch": batch,
                "lr": args.lr,
                "seed": args.vae.seed,
                "temperature_end": s.temperature_end,
                "train_neg_elbo": s.train_neg_elbo,
                "test_neg_elbo": s.test_neg_elbo,
                "test_iwae_nll": s.iwae_nll,
                "iwae_k": args.iwae_k,
                "iwae_rows": iwae_rows,
                "iwae_rows_neg_elbo": s.iwae_rows_neg_elbo,
                "steps_per_s": steps_per_s,
                "train_seconds": s.train_seconds,
                "eval_seconds": s.eval_seconds,
                "seconds": started.elapsed().as_secs_f64(),
                "peak_rss_mib": rss,
                "stepped_back": s.stepped_back,
            })
        );
        return Ok(());
    }
    let last = |v: &[f64]| v.last().copied().unwrap_or(f64::NAN);
    println!("after {} steps:", s.steps);
    println!(
        "  train negative ELBO (last epoch)         {:8.3}",
        last(&s.train_neg_elbo)
    );
    println!(
        "  test negative ELBO                       {:8.3}",
        last(&s.test_neg_elbo)
    );
    println!(
        "  test IWAE bound (K = {}, first {iwae_rows})  {:8.3}   (negative ELBO of those images {:.3})",
        args.iwae_k, s.iwae_nll, s.iwae_rows_neg_elbo
    );
    println!(
        "  {steps_per_s:.1} steps/s ({:.1} s training, {:.1} s scoring, {:.1} s in all), peak RSS {rss:.0} MiB",
        s.train_seconds,
        s.eval_seconds,
        started.elapsed().as_secs_f64()
    );
    if s.stepped_back > 0 {
        println!("  {} steps stepped back from", s.stepped_back);
    }
    println!("  pictures in {}", out.display());
    Ok(())
}
