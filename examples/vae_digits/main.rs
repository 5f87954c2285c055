//! A variational autoencoder on the digits: 8×8 images binarized at ≥ 8, a Bernoulli
//! likelihood per pixel, one latent vector per image (a local site), an encoder net in the
//! guide (an amortized guide) and a decoder net whose weights are a model `param`.
//!
//! `--latent gaussian` (default): z ~ N(0, I) [8]; `relaxed-bernoulli`: 20 binary concrete
//! latents; `concrete`: 8 concrete (Gumbel-softmax) latents of 4 classes each. The relaxed
//! ones use the fit's `temperature`, annealed from 1 to 0.5.
//!
//! Prints the train and test negative ELBO per image (nats), the test importance-weighted
//! bound (K = 100) and the baseline of independent per-pixel Bernoullis fitted to the
//! training rows; for Gaussian latents also the test negative ELBO with a Gaussian fitted
//! to each test image under the trained decoder (`--refine STEPS`, 0 to skip), whose
//! difference to the encoder's figure is the amortization gap. Writes PNGs of test
//! reconstructions, of draws from the prior and of the ELBO curve into `--out` (default
//! `target/vae_digits`).
//!
//! ```text
//! cargo run --release --example vae_digits -- [--device cpu|cuda] [--latent gaussian|relaxed-bernoulli|concrete]
//!     [--objective elbo|iwae] [--steps N] [--seed K] [--particles S] [--lr X] [--batch B] [--weight-decay W] [--tau-start T] [--tau-end T] [--refine STEPS] [--out DIR] [--json]
//! ```

mod flags;
mod plot;

use std::path::PathBuf;

use clap::{Parser, ValueEnum};
use flags::VaeFlags;

use ravi::dfdx::prelude::*;
use ravi::dfdx::tensor::NoneTape;
use ravi::prelude::*;
use ravi::{Batch, ModelData as _, Objective, SitePredictive};

const PIXELS: usize = 64;

model! {
    net Encoder(x: [B, 64]) -> [B, 16] { Linear(64, 400) -> relu -> Linear(400, 400) -> relu -> Linear(400, 16) }
    net Decoder(z: [B, 8]) -> [B, 64] { Linear(8, 100) -> relu -> Linear(100, 64) }
    /// Gaussian latents: p(z) = N(0, I), p(x | z) = Bernoulli(logits = Decoder(z)).
    model Vae(x: [N, 64] in 0..2) {
        param dec [params(Decoder)];
        z ~ Normal(0.0, 1.0) [N, 8];
        x ~ Bernoulli(logits = Decoder(z; dec));
    }

    net BinaryEncoder(x: [B, 64]) -> [B, 20] { Linear(64, 200) -> tanh -> Linear(200, 20) }
    net BinaryDecoder(z: [B, 20]) -> [B, 64] { Linear(20, 200) -> tanh -> Linear(200, 64) }
    /// Relaxed Bernoulli latents (binary concrete) at the fit's temperature.
    model BinaryVae(x: [N, 64] in 0..2) {
        param dec [params(BinaryDecoder)];
        z ~ RelaxedBernoulli(temperature, 0.0) [N, 20];
        x ~ Bernoulli(logits = BinaryDecoder(z; dec));
    }

    net ConcreteEncoder(x: [B, 64]) -> [B, 32] { Linear(64, 200) -> tanh -> Linear(200, 32) }
    net ConcreteDecoder(z: [B, 8, 4]) -> [B, 64] { Linear(32, 200) -> tanh -> Linear(200, 64) }
    /// Eight concrete (Gumbel-softmax) latents of 4 classes per image, uniform priors.
    model ConcreteVae(x: [N, 64] in 0..2) {
        param dec [params(ConcreteDecoder)];
        z ~ RelaxedOneHotCategorical(temperature, 0.0) [N, 8, 4];
        x ~ Bernoulli(logits = ConcreteDecoder(z; dec));
    }
}

guide! {
    guide VaeGuide for Vae { z ~ Amortized(Encoder(x)); }
    /// Per-image Gaussians (no encoder): fitted to the test images under the trained,
    /// frozen decoder, they measure the encoder's amortization gap.
    guide VaeRefined for Vae { z ~ MeanField; }
    guide BinaryVaeGuide for BinaryVae { z ~ Amortized(BinaryEncoder(x)); }
    guide ConcreteVaeGuide for ConcreteVae { z ~ Amortized(ConcreteEncoder(x)); }
}

/// Fits a VAE to the digits and scores it; see the module docs.
#[derive(Parser, Debug)]
#[command(name = "vae_digits")]
struct Args {
    #[command(flatten)]
    vae: VaeFlags,
    /// What the fit maximises: the ELBO or the importance-weighted bound (K = particles).
    #[arg(long, value_enum, default_value = "elbo")]
    objective: ObjectiveFlag,
    /// Fit steps [default: 10000 for gaussian latents, 20000 for relaxed ones].
    #[arg(long)]
    steps: Option<usize>,
    /// Adam's learning rate at the first step (decaying to a tenth of it).
    #[arg(long, default_value_t = 3e-3)]
    lr: f32,
    /// Relaxation temperature at the last step (relaxed latents).
    #[arg(long, default_value_t = 0.5)]
    tau_end: f32,
    /// AdamW's decoupled weight decay [default: 0.1 for gaussian latents, 0 for relaxed
    /// ones, where it does not help].
    #[arg(long)]
    weight_decay: Option<f32>,
    /// Steps of the per-image refinement of the test guide (gaussian latents; 0: none).
    #[arg(long, default_value_t = 3000)]
    refine: usize,
    /// Folder for the PNGs (a subfolder per latent).
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/target/vae_digits"))]
    out: PathBuf,
}

/// `--objective`.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum ObjectiveFlag {
    /// The ELBO.
    Elbo,
    /// The importance-weighted bound.
    Iwae,
}

impl From<ObjectiveFlag> for Objective {
    fn from(o: ObjectiveFlag) -> Objective {
        match o {
            ObjectiveFlag::Elbo => Objective::Elbo,
            ObjectiveFlag::Iwae => Objective::Iwae,
        }
    }
}

/// Pixels binarized at ≥ 8 (of 0..16), split at the first 80% of the rows.
/// Images, one row of 64 pixels each.
type Images = Vec<Vec<f32>>;

fn load() -> Result<(Images, Images), Box<dyn std::error::Error>> {
    let table = ravi::csv::Table::read(concat!(env!("CARGO_MANIFEST_DIR"), "/data/digits.csv"))?;
    let rows: Vec<Vec<f32>> = table
        .columns_except(&["label"])
        .into_iter()
        .map(|r| {
            r.into_iter()
                .map(|p| f32::from(u8::from(p >= 8.0)))
                .collect()
        })
        .collect();
    let n = (0.8 * rows.len() as f64).floor() as usize;
    let (train, test) = rows.split_at(n);
    Ok((train.to_vec(), test.to_vec()))
}

/// The negative log-likelihood per test image of independent per-pixel Bernoullis fitted
/// to the training rows (add-½ smoothing, so a pixel never on in training is not
/// impossible in testing).
fn baseline_nll(train: &[Vec<f32>], test: &[Vec<f32>]) -> f64 {
    let n = train.len() as f64;
    let p: Vec<f64> = (0..PIXELS)
        .map(|j| (train.iter().map(|r| f64::from(r[j])).sum::<f64>() + 0.5) / (n + 1.0))
        .collect();
    let total: f64 = test
        .iter()
        .map(|r| {
            r.iter()
                .zip(&p)
                .map(|(&x, &p)| if x > 0.5 { -p.ln() } else { -(1.0 - p).ln() })
                .sum::<f64>()
        })
        .sum();
    total / test.len() as f64
}

/// What the example reports, in nats per image.
struct Scores {
    train_neg_elbo: f64,
    test_neg_elbo: f64,
    test_iwae_nll: f64,
    elbo_trace: Vec<f32>,
}

/// Fits `guide` and scores it at the final temperature `t_end`.
fn fit_and_score<D: Backend, G: Guide<D>>(
    guide: &mut G,
    train: &<G::Model as Model>::Data,
    test: &<G::Model as Model>::Data,
    opts: &FitOptions,
    t_end: f32,
) -> Result<Scores, Box<dyn std::error::Error>> {
    let report = ravi::fit(guide, train, opts)?;
    let rows = |d: &<G::Model as Model>::Data| d.arrays()[0].shape()[0] as f64;
    let train_elbo = ravi::elbo_at(guide, train, 10, t_end)?;
    let test_elbo = ravi::elbo_at(guide, test, 100, t_end)?;
    let test_iwae = ravi::iwae(guide, test, 100, t_end)?;
    let n_train = train.arrays()[0].shape()[0];
    Ok(Scores {
        train_neg_elbo: -train_elbo / rows(train),
        test_neg_elbo: -test_elbo / rows(test),
        test_iwae_nll: -test_iwae / rows(test),
        elbo_trace: report.elbo.iter().map(|v| v / n_train as f32).collect(),
    })
}

/// The test negative ELBO per image under the trained decoder of `trained`, with a Gaussian
/// per test image fitted by `steps` steps instead of the encoder (Cremer et al. 2018: the
/// difference to the amortized figure is the encoder's amortization gap).
fn refined_test_neg_elbo<D: Backend>(
    trained: &VaeGuide<D>,
    test: &VaeData,
    steps: usize,
    seed: u64,
) -> Result<f64, Box<dyn std::error::Error>> {
    let dev = trained.params().device().clone();
    let mut refined = VaeRefined::new(&dev);
    let decoder = param_values(trained, "dec")?;
    let id = refined
        .params()
        .ids()
        .zip(refined.params().iter())
        .find(|(_, (name, _))| *name == "dec")
        .map(|(id, _)| id)
        .ok_or("the refined guide holds the decoder as `dec`")?;
    refined.params_mut().set(id, &decoder);
    let opts = FitOptions {
        steps,
        particles: 4,
        seed,
        schedule: Schedule::Exponential {
            start: 0.05,
            end: 0.002,
        },
        frozen: vec!["dec".into()],
        progress: false,
        ..FitOptions::default()
    };
    ravi::fit(&mut refined, test, &opts)?;
    Ok(-ravi::elbo(&refined, test, 100)? / test.x.shape()[0] as f64)
}

/// P(pixel on) for each test row, averaged over 20 draws of its latent from the guide.
fn reconstructions<D: Backend, G: Guide<D>>(
    guide: &G,
    test: &<G::Model as Model>::Data,
    t_end: f32,
) -> Result<Vec<Vec<f32>>, Box<dyn std::error::Error>> {
    let pred = ravi::predictive_at(guide, test, 20, t_end)?;
    match pred.first() {
        Some(SitePredictive::Binary { probs, .. }) => Ok(probs
            .chunks(PIXELS)
            .map(|r| r.iter().map(|&p| p as f32).collect())
            .collect()),
        _ => Err("the model's observed site is Bernoulli".into()),
    }
}

/// The decoder's P(pixel on) for `latents` drawn from the prior (in the guide's
/// unconstrained space), `count` images.
fn decode_prior<D: Backend, G: Guide<D>>(
    guide: &G,
    latents: Vec<f32>,
    count: usize,
) -> Result<Vec<Vec<f32>>, Box<dyn std::error::Error>>
where
    <G::Model as Model>::Data: FromPixels,
{
    let dev = guide.params().device();
    let zeros = <G::Model as Model>::Data::from_pixels(vec![vec![0.0; PIXELS]; count])?;
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

/// The value of the model `param` (or guide parameter) called `name`.
fn param_values<D: Backend, G: Guide<D>>(guide: &G, name: &str) -> Result<Vec<f32>, String> {
    guide
        .params()
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| t.as_vec())
        .ok_or(format!("no parameter `{name}`"))
}

/// Data of one image per row.
trait FromPixels: Sized {
    fn from_pixels(rows: Vec<Vec<f32>>) -> Result<Self, ravi::DataError>;
}
impl FromPixels for VaeData {
    fn from_pixels(rows: Vec<Vec<f32>>) -> Result<Self, ravi::DataError> {
        Ok(VaeData {
            x: ravi::Array::from_rows(&rows)?,
        })
    }
}
impl FromPixels for ConcreteVaeData {
    fn from_pixels(rows: Vec<Vec<f32>>) -> Result<Self, ravi::DataError> {
        Ok(ConcreteVaeData {
            x: ravi::Array::from_rows(&rows)?,
        })
    }
}
impl FromPixels for BinaryVaeData {
    fn from_pixels(rows: Vec<Vec<f32>>) -> Result<Self, ravi::DataError> {
        Ok(BinaryVaeData {
            x: ravi::Array::from_rows(&rows)?,
        })
    }
}

/// `count` draws of the local latents from the prior, in the guide's unconstrained space,
/// given the prior logits the model learned (empty when it learns none).
type PriorDraw<D> = dyn Fn(&D, usize, &[f32]) -> Vec<f32>;

/// Fits one model, then writes its pictures; returns its scores.
fn run<D, G>(
    guide: &mut G,
    train: &[Vec<f32>],
    test: &[Vec<f32>],
    opts: &FitOptions,
    t_end: f32,
    prior_draw: &PriorDraw<D>,
    out: &std::path::Path,
) -> Result<Scores, Box<dyn std::error::Error>>
where
    D: Backend,
    G: Guide<D>,
    <G::Model as Model>::Data: FromPixels,
{
    let train_data = <G::Model as Model>::Data::from_pixels(train.to_vec())?;
    let test_data = <G::Model as Model>::Data::from_pixels(test.to_vec())?;
    let scores = fit_and_score(guide, &train_data, &test_data, opts, t_end)?;
    std::fs::create_dir_all(out)?;
    // Ten test images over their reconstructions.
    let shown = 10;
    let first = <G::Model as Model>::Data::from_pixels(test[..shown].to_vec())?;
    let recon = reconstructions(guide, &first, t_end)?;
    let mut grid: Vec<Vec<f32>> = test[..shown].to_vec();
    grid.extend(recon);
    plot::image_grid(&out.join("reconstructions.png"), &grid, 8, 8, shown, 8)?;
    // Draws from the prior, decoded.
    let dev = guide.params().device().clone();
    // Prior logits held as a `param` called `prior`, if the model learns them (0 otherwise).
    let prior_logits = param_values(guide, "prior").unwrap_or_default();
    let count = 30;
    let samples = decode_prior(guide, prior_draw(&dev, count, &prior_logits), count)?;
    plot::image_grid(&out.join("samples.png"), &samples, 8, 8, 10, 8)?;
    plot::curve(
        &out.join("elbo.png"),
        "ELBO per training image",
        "step",
        "nats",
        &[("ELBO", &scores.elbo_trace)],
    )?;
    Ok(scores)
}

/// Fits the chosen latents' VAE on the device `dev` and writes its pictures; returns its
/// scores and (Gaussian latents, `--refine` > 0) the refined test negative ELBO.
fn fit_latent<D: Backend>(
    args: &Args,
    dev: &D,
    train: &[Vec<f32>],
    test: &[Vec<f32>],
    opts: &FitOptions,
    t_end: f32,
    out: &std::path::Path,
) -> Result<(Scores, Option<f64>), Box<dyn std::error::Error>> {
    let mut refined = None;
    let scores = match args.vae.latent.as_str() {
        "relaxed-bernoulli" => {
            // u = (l + L) / τ with L ~ Logistic(0, 1): the prior's logit
            let prior = move |dev: &D, count: usize, logits: &[f32]| -> Vec<f32> {
                let u: Tensor<(usize,), f32, D> = dev.sample_uniform_like(&(count * 20,));
                u.as_vec()
                    .into_iter()
                    .enumerate()
                    .map(|(i, u)| {
                        let u = u.clamp(1e-6, 1.0 - 1e-6);
                        (logits.get(i % 20).copied().unwrap_or(0.0) + u.ln() - (1.0 - u).ln())
                            / t_end
                    })
                    .collect()
            };
            run(
                &mut BinaryVaeGuide::new(dev),
                train,
                test,
                opts,
                t_end,
                &prior,
                out,
            )?
        }
        "concrete" => {
            // The prior's draw in log-ratio coordinates: (l + g) / τ with g Gumbel, less its
            // last component per event.
            let prior = move |dev: &D, count: usize, logits: &[f32]| -> Vec<f32> {
                let u: Tensor<(usize,), f32, D> = dev.sample_uniform_like(&(count * 32,));
                let g: Vec<f32> = u
                    .as_vec()
                    .into_iter()
                    .enumerate()
                    .map(|(i, u)| {
                        (logits.get(i % 32).copied().unwrap_or(0.0)
                            - (-u.clamp(1e-20, 1.0 - 1e-7).ln()).ln())
                            / t_end
                    })
                    .collect();
                g.chunks(4)
                    .flat_map(|e| e[..3].iter().map(|v| v - e[3]).collect::<Vec<_>>())
                    .collect()
            };
            run(
                &mut ConcreteVaeGuide::new(dev),
                train,
                test,
                opts,
                t_end,
                &prior,
                out,
            )?
        }
        _ => {
            let prior = |dev: &D, count: usize, _: &[f32]| -> Vec<f32> {
                let z: Tensor<(usize,), f32, D> = dev.sample_normal_like(&(count * 8,));
                z.as_vec()
            };
            let mut guide = VaeGuide::new(dev);
            let scores = run(&mut guide, train, test, opts, t_end, &prior, out)?;
            if args.refine > 0 {
                let test = VaeData::from_pixels(test.to_vec())?;
                refined = Some(refined_test_neg_elbo(
                    &guide,
                    &test,
                    args.refine,
                    args.vae.seed,
                )?);
            }
            scores
        }
    };
    Ok((scores, refined))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let (train, test) = load()?;
    let baseline = baseline_nll(&train, &test);
    let relaxed = args.vae.latent != "gaussian";
    let t_end = if relaxed { args.tau_end } else { 1.0 };
    let steps = args.steps.unwrap_or(if relaxed { 20_000 } else { 10_000 });
    let opts = FitOptions {
        steps,
        particles: args.vae.particles,
        batch_size: Some(args.vae.batch),
        seed: args.vae.seed,
        schedule: Schedule::Exponential {
            start: args.lr,
            end: args.lr / 10.0,
        },
        objective: args.objective.into(),
        adam: ravi::AdamConfig {
            weight_decay: args.weight_decay.unwrap_or(if relaxed { 0.0 } else { 0.1 }),
            ..Default::default()
        },
        temperature: if relaxed {
            Schedule::Exponential {
                start: args.vae.tau_start,
                end: t_end,
            }
        } else {
            Schedule::Constant(1.0)
        },
        progress: !args.vae.json,
        ..FitOptions::default()
    };
    let out = args.out.join(&args.vae.latent);
    let (scores, refined) = match args.vae.device.as_str() {
        "cpu" => fit_latent(
            &args,
            &Cpu::seeded(args.vae.seed),
            &train,
            &test,
            &opts,
            t_end,
            &out,
        )?,
        #[cfg(feature = "cuda")]
        "cuda" => fit_latent(
            &args,
            &ravi::Cuda::seeded(args.vae.seed),
            &train,
            &test,
            &opts,
            t_end,
            &out,
        )?,
        other => {
            return Err(format!(
                "device {other} is not available in this build (cpu; cuda with --features cuda)"
            )
            .into())
        }
    };
    if args.vae.json {
        println!(
            "{}",
            serde_json::json!({
                "latent": args.vae.latent,
                "train_neg_elbo": scores.train_neg_elbo,
                "test_neg_elbo": scores.test_neg_elbo,
                "test_iwae_nll": scores.test_iwae_nll,
                "baseline_nll": baseline,
                "test_neg_elbo_refined": refined,
            })
        );
        return Ok(());
    }
    println!(
        "vae_digits, {} latents, {steps} steps (nats per image)",
        args.vae.latent
    );
    println!("  train negative ELBO        {:8.3}", scores.train_neg_elbo);
    println!("  test negative ELBO         {:8.3}", scores.test_neg_elbo);
    println!("  test IWAE bound (K = 100)  {:8.3}", scores.test_iwae_nll);
    if let Some(r) = refined {
        println!(
            "  test negative ELBO, per-image Gaussians under the decoder {r:8.3} (amortization gap {:.3})",
            scores.test_neg_elbo - r
        );
    }
    println!("  per-pixel Bernoulli NLL    {:8.3}", baseline);
    println!(
        "  test negative ELBO / baseline {:.3}",
        scores.test_neg_elbo / baseline
    );
    println!("  pictures in {}", out.display());
    Ok(())
}
