//! The bundled MNIST files (`data/mnist/`) read with their published properties, and a
//! mismatched pair named.

use std::path::Path;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/mnist");

#[test]
fn mnist_reads_with_its_published_counts_and_mean() {
    let m = ravi::mnist::load(DIR).unwrap();
    assert_eq!((m.train.len(), m.test.len()), (60_000, 10_000));
    assert_eq!((m.train.rows, m.train.cols), (28, 28));
    // the training pixels' mean intensity, 0.1307 (the normalization every MNIST script uses)
    let mean = m.train.pixels.iter().map(|&p| f64::from(p)).sum::<f64>()
        / (m.train.pixels.len() as f64 * 255.0);
    assert!((mean - 0.1307).abs() < 5e-5, "mean {mean}");
    // every digit is there, about a tenth of each
    for d in 0..10u8 {
        let count = m.test.labels.iter().filter(|&&l| l == d).count();
        assert!((850..1200).contains(&count), "digit {d}: {count}");
    }
    let x = m.test.take(5).binarized(0.5);
    assert_eq!(x.shape(), &[5, 784]);
    assert!(x.data().iter().all(|&v| v == 0.0 || v == 1.0));
}

#[test]
fn images_and_labels_of_different_counts_are_named() {
    let dir = Path::new(DIR);
    let e = ravi::mnist::read_pair(
        &dir.join("train-images.idx3-ubyte.gz"),
        &dir.join("t10k-labels.idx1-ubyte.gz"),
    )
    .unwrap_err();
    assert!(
        matches!(
            e,
            ravi::mnist::MnistError::Counts {
                image_count: 60_000,
                label_count: 10_000,
                ..
            }
        ),
        "{e}"
    );
    let missing = ravi::mnist::load("no/such/dir").unwrap_err();
    assert!(missing.to_string().contains("no/such/dir"), "{missing}");
}

ravi::model! {
    net Small(x: [B, 784]) -> [B, 10] { Linear(784, 32) -> relu -> Linear(32, 10) }
    model Digits(x: [N, 784], y: [N] in 0..10) {
        theta ~ Normal(0.0, 1.0) [params(Small)];
        y ~ Categorical(logits = Small(x; theta));
    }
}

ravi::guide! {
    /// The matrix-multiplication generator over the net's 25,450 weights.
    guide DigitsImplicit for Digits {
        theta ~ Implicit(noise = 8, hidden = [32], generator = MatMul, rank = 8);
    }
}

/// The implicit generator over an MNIST net (a few hundred rows, a few epochs' steps): its
/// steps draw on the graph and score on the host engine, and the fit learns (test accuracy
/// of its predictive from chance, 0.1, to well above it).
#[test]
fn an_implicit_generator_learns_mnist_on_the_engine() {
    use ravi::prelude::*;
    let m = ravi::mnist::load(DIR).unwrap();
    let (train, test) = (m.train.take(512), m.test.take(300));
    let data = DigitsData {
        x: train.intensities(),
        y: train.label_array(),
    };
    let mut guide = DigitsImplicit::new(&Cpu::seeded(3));
    let opts = FitOptions {
        steps: 160,
        particles: 1,
        batch_size: Some(64),
        schedule: Schedule::Constant(3e-3),
        progress: false,
        warnings: false,
        ..FitOptions::default()
    };
    let report = ravi::fit(&mut guide, &data, &opts).unwrap();
    assert!(
        matches!(report.engine, ravi::EngineChoice::HostModel(_)),
        "{}",
        report.engine
    );
    let new = DigitsData {
        x: test.intensities(),
        y: Array::none(),
    };
    let predictive = ravi::predictive(&guide, &new, 50).unwrap();
    let Some(ravi::SitePredictive::Classes { probs, .. }) = predictive.first() else {
        panic!("a Categorical site's predictive gives classes")
    };
    let labels: Vec<f64> = test.labels.iter().map(|&l| f64::from(l)).collect();
    let scores = ravi::metrics::classification(probs, &labels).unwrap();
    assert!(scores.accuracy > 0.6, "accuracy {}", scores.accuracy);
}
