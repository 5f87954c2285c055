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
