//! Bayesian neural networks on MNIST with the seed projects' guides: a 784-400-400-10 ReLU
//! MLP (478,410 weights) under mean-field (Bayes by backprop), Flipout, the local
//! reparametrization, or the implicit generator of Implicit Posteriors; and LeNet-5 as a
//! `bnn` one-liner under each of PyVarInf's four priors.
//!
//! ```text
//! cargo run --release --example bnn_mnist -- [--guide mean-field|flipout|lrt|implicit]
//!     [--net mlp|lenet] [--prior normal|conjugate|known-mean|mixture] [--epochs 10]
//!     [--train-rows N] [--test-rows N] [--lr 0.001] [--seed K] [--json]
//! ```
//!
//! # Protocol
//!
//! - **Data**: `data/mnist` by [`ravi::mnist::load`], intensities p / 255 in [0, 1] (not
//!   binarized), the 60,000 training images to fit, the 10,000 test images to score
//!   (`--train-rows` / `--test-rows` take the first rows only, for quick runs).
//! - **Model**: every weight ~ N(0, 1) (`--prior normal`; LeNet also takes the conjugate
//!   normal-inverse-gamma, the conjugate prior with known mean, and Blundell's scale mixture
//!   ½ N(0, 1) + ½ N(0, e⁻¹²)), y ~ Categorical(logits = net(x; weights)).
//! - **Fit**: minibatches of 128 (`--batch`), the likelihood scaled by 60,000 / 128 (the
//!   full-data ELBO), one particle, Adam at a constant 10⁻³ (`--lr`), the analytic KL for
//!   the Gaussian guides, ravi's default start for nets (Glorot locations, small scales).
//!   An epoch is ⌊rows / 128⌋ steps; 10 epochs by default.
//! - **Reported**: test accuracy, NLL and expected calibration error (15 equal-width bins,
//!   every prediction counted; [`ravi::metrics::classification`]) of the 100-draw posterior
//!   predictive (`--draws`), milliseconds per training step (the steps alone), and the peak
//!   resident memory (VmHWM).

use clap::{Parser, ValueEnum};
use ravi::prelude::*;

model! {
    net Mlp(x: [B, 784]) -> [B, 10] {
        Linear(784, 400) -> relu -> Linear(400, 400) -> relu -> Linear(400, 10)
    }
    /// Every weight of the MLP is one latent site under N(0, 1).
    model MlpBnn(x: [N, 784], y: [N] in 0..10) {
        theta ~ Normal(0.0, 1.0) [params(Mlp)];
        y ~ Categorical(logits = Mlp(x; theta));
    }

    net LeNet(x: [B, 1, 28, 28]) -> [B, 10] {
        Conv2d(1, 6, 5, padding = 2) -> relu -> MaxPool(2)
            -> Conv2d(6, 16, 5) -> relu -> MaxPool(2) -> flatten
            -> Linear(400, 120) -> relu -> Linear(120, 84) -> relu -> Linear(84, 10)
    }
    bnn LeNetNormal(x: [N, 1, 28, 28], y: [N] in 0..10)
        = y ~ Categorical(logits = LeNet(x)) with Normal(0.0, 1.0), MeanField;
    bnn LeNetConjugate(x: [N, 1, 28, 28], y: [N] in 0..10)
        = y ~ Categorical(logits = LeNet(x)) with NormalInverseGamma(0.0, 1.0, 3.0, 2.0), MeanField;
    bnn LeNetKnownMean(x: [N, 1, 28, 28], y: [N] in 0..10)
        = y ~ Categorical(logits = LeNet(x)) with ConjugateKnownMean(0.0, 3.0, 2.0), MeanField;
    bnn LeNetMixture(x: [N, 1, 28, 28], y: [N] in 0..10)
        = y ~ Categorical(logits = LeNet(x)) with ScaleMixtureNormal(0.5, 1.0, 0.0025), MeanField;
}

guide! {
    guide MlpMeanField for MlpBnn { theta ~ MeanField; }
    /// The same Gaussian, the net call rewritten by Flipout.
    guide MlpFlipout for MlpBnn { theta ~ Flipout(MeanField); }
    /// The same Gaussian, pre-activations drawn by the local reparametrization.
    guide MlpLrt for MlpBnn { theta ~ Lrt(MeanField); }
    /// A matrix-multiplication generator from 40-dim noise (the paper's 40 × 40 noise and
    /// [420, 420] → [957, 500] matrix layers; here a hidden layer of 420, then the weights
    /// as the 478,410 entries of A H Bᵀ, a 555 × 862 matrix, with a 40 × 40 core
    /// H, and an output noise learned per weight), the smallest-singular-value entropy
    /// bound.
    guide MlpImplicit for MlpBnn {
        theta ~ Implicit(noise = 40, hidden = [420], generator = MatMul, rank = 40,
                         bound = SmallestSingularValue, output_variance = 0.000001);
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum GuideKind {
    MeanField,
    Flipout,
    Lrt,
    Implicit,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum NetKind {
    Mlp,
    Lenet,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum PriorKind {
    /// N(0, 1) on every weight.
    Normal,
    /// Normal-inverse-gamma, mean and variance integrated out (LeNet only).
    Conjugate,
    /// Known mean 0, the variance integrated out (LeNet only).
    KnownMean,
    /// ½ N(0, 1) + ½ N(0, 0.0025²) (LeNet only).
    Mixture,
}

/// Bayesian neural networks on MNIST; see the module docs for the protocol.
#[derive(Parser, Debug)]
struct Args {
    /// The guide over the MLP's weights (LeNet takes mean-field).
    #[arg(long, value_enum, default_value = "mean-field")]
    guide: GuideKind,
    /// The network.
    #[arg(long, value_enum, default_value = "mlp")]
    net: NetKind,
    /// The prior on every weight.
    #[arg(long, value_enum, default_value = "normal")]
    prior: PriorKind,
    /// Passes over the training rows.
    #[arg(long, default_value_t = 10)]
    epochs: usize,
    /// Training rows (the first ones; all 60,000 by default).
    #[arg(long)]
    train_rows: Option<usize>,
    /// Test rows (the first ones; all 10,000 by default).
    #[arg(long)]
    test_rows: Option<usize>,
    /// Rows per minibatch.
    #[arg(long, default_value_t = 128)]
    batch: usize,
    /// Adam's learning rate, constant.
    #[arg(long, default_value_t = 1e-3)]
    lr: f32,
    /// Draws of the guide per step.
    #[arg(long, default_value_t = 1)]
    particles: usize,
    /// Draws of the posterior predictive.
    #[arg(long, default_value_t = 100)]
    draws: usize,
    /// Seeds the device's noise and the minibatch order.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// One line of JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// What a run measured.
struct Outcome {
    scores: ravi::metrics::Classification,
    ms_per_step: f64,
    steps: usize,
}

/// Fits `guide` and scores the predictive of the test rows.
fn run<G: Guide<Cpu>>(
    mut guide: G,
    train: &<G::Model as Model>::Data,
    test: &<G::Model as Model>::Data,
    test_labels: &[f64],
    opts: &FitOptions,
    draws: usize,
) -> Result<Outcome, Box<dyn std::error::Error>> {
    // the steps alone: `Trainer::new` makes the start first (for a net on the graph, a
    // pass over every training row)
    let (ms_per_step, steps) = {
        let mut trainer = ravi::Trainer::new(&mut guide, train, opts)?;
        let started = std::time::Instant::now();
        while !trainer.is_done() {
            trainer.step()?;
        }
        let steps = trainer.steps_taken();
        (
            started.elapsed().as_secs_f64() * 1e3 / steps.max(1) as f64,
            steps,
        )
    };
    let predictive = ravi::predictive(&guide, test, draws)?;
    let Some(ravi::SitePredictive::Classes { probs, .. }) = predictive.first() else {
        return Err("a Categorical site's predictive gives classes".into());
    };
    Ok(Outcome {
        scores: ravi::metrics::classification(probs, test_labels)?,
        ms_per_step,
        steps,
    })
}

/// Images as the net takes them: rows of 784 features, or 1 × 28 × 28 images.
fn images(digits: &ravi::mnist::Digits, net: NetKind) -> Result<Array, ravi::DataError> {
    let flat = digits.intensities();
    match net {
        NetKind::Mlp => Ok(flat),
        NetKind::Lenet => Array::new(flat.data().to_vec(), vec![digits.len(), 1, 28, 28]),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let mnist = ravi::mnist::load(concat!(env!("CARGO_MANIFEST_DIR"), "/data/mnist"))?;
    let train = mnist
        .train
        .take(args.train_rows.unwrap_or(mnist.train.len()));
    let test = mnist.test.take(args.test_rows.unwrap_or(mnist.test.len()));
    if args.net == NetKind::Mlp && args.prior != PriorKind::Normal {
        return Err("the MLP takes --prior normal; the other priors are LeNet's".into());
    }
    if args.net == NetKind::Lenet && args.guide != GuideKind::MeanField {
        return Err("LeNet takes --guide mean-field".into());
    }
    let steps_per_epoch = (train.len() / args.batch.max(1)).max(1);
    let opts = FitOptions {
        steps: args.epochs * steps_per_epoch,
        particles: args.particles,
        batch_size: Some(args.batch),
        estimator: Estimator::AnalyticKl,
        schedule: Schedule::Constant(args.lr),
        seed: args.seed,
        progress: !args.json,
        ..FitOptions::default()
    };
    let (x, y) = (images(&train, args.net)?, train.label_array());
    let x_test = images(&test, args.net)?;
    let labels: Vec<f64> = test
        .label_array()
        .data()
        .iter()
        .map(|&v| f64::from(v))
        .collect();
    // the predictive does not read the test labels: zeros keep the shapes
    let no_labels = Array::vector(vec![0.0; test.len()]);
    let dev = Cpu::seeded(args.seed);
    // each arm fits its guide on the net's data (moved in: one copy of the images) and
    // scores the predictive
    macro_rules! fit {
        ($data:ident, $guide:ident) => {
            run(
                $guide::new(&dev),
                &$data { x, y },
                &$data {
                    x: x_test,
                    y: no_labels,
                },
                &labels,
                &opts,
                args.draws,
            )?
        };
    }
    let outcome = match (args.net, args.guide, args.prior) {
        (NetKind::Lenet, _, PriorKind::Normal) => fit!(LeNetNormalData, LeNetNormalGuide),
        (NetKind::Lenet, _, PriorKind::Conjugate) => fit!(LeNetConjugateData, LeNetConjugateGuide),
        (NetKind::Lenet, _, PriorKind::KnownMean) => fit!(LeNetKnownMeanData, LeNetKnownMeanGuide),
        (NetKind::Lenet, _, PriorKind::Mixture) => fit!(LeNetMixtureData, LeNetMixtureGuide),
        (NetKind::Mlp, GuideKind::MeanField, _) => fit!(MlpBnnData, MlpMeanField),
        (NetKind::Mlp, GuideKind::Flipout, _) => fit!(MlpBnnData, MlpFlipout),
        (NetKind::Mlp, GuideKind::Lrt, _) => fit!(MlpBnnData, MlpLrt),
        (NetKind::Mlp, GuideKind::Implicit, _) => fit!(MlpBnnData, MlpImplicit),
    };
    let s = outcome.scores;
    let rss = ravi::memory::peak_resident_mib();
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "net": format!("{:?}", args.net), "guide": format!("{:?}", args.guide),
                "prior": format!("{:?}", args.prior), "steps": outcome.steps,
                "test_acc": s.accuracy, "test_nll": s.nll, "ece": s.ece,
                "ms_per_step": outcome.ms_per_step, "peak_rss_mib": rss,
            })
        );
        return Ok(());
    }
    println!(
        "{:?} net, {:?} guide, {:?} prior: {} steps on {} rows, {:.1} ms per step, peak RSS {rss:.0} MiB",
        args.net,
        args.guide,
        args.prior,
        outcome.steps,
        train.len(),
        outcome.ms_per_step
    );
    println!(
        "test ({} rows, {}-draw predictive): accuracy {:.4}, NLL {:.4}, ECE (15 bins) {:.4}",
        test.len(),
        args.draws,
        s.accuracy,
        s.nll,
        s.ece
    );
    Ok(())
}
