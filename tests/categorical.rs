//! Softmax regression through the DSL: `Categorical(logits = ..)` observing integer labels.

use ravi::prelude::*;

model! {
    model Softmax(x: [N, 2], y: [N] in 0..3) {
        w ~ Normal(0.0, 3.0) [2, 3];
        b ~ Normal(0.0, 3.0) [3];
        y ~ Categorical(logits = x @ w + b);
    }
}
guide! { guide G for Softmax { (w, b) ~ FullRank; } }

/// Three well-separated clusters: the posterior predictive labels them almost perfectly.
#[test]
fn three_clusters_are_told_apart() {
    let centres = [[2.0f32, 0.0], [-1.0, 1.7], [-1.0, -1.7]];
    let mut rows = Vec::new();
    let mut labels = Vec::new();
    for i in 0..150 {
        let c = i % 3;
        let t = i as f32;
        rows.push([
            centres[c][0] + 0.4 * (t * 1.3).sin(),
            centres[c][1] + 0.4 * (t * 2.1).cos(),
        ]);
        labels.push(c as f32);
    }
    let data = SoftmaxData {
        x: Array::from_rows(&rows).unwrap(),
        y: Array::vector(labels.clone()),
    };
    let mut g = G::new(&Cpu::seeded(2));
    ravi::fit(
        &mut g,
        &data,
        &FitOptions {
            steps: 2000,
            progress: false,
            ..FitOptions::default()
        },
    )
    .unwrap();
    let post = Posterior::from_guide(&g, 1000);
    let (w, b) = (&post.site("w").unwrap().mean, &post.site("b").unwrap().mean);
    let correct = rows
        .iter()
        .zip(&labels)
        .filter(|(x, &y)| {
            let score = |k: usize| x[0] * w[k] + x[1] * w[3 + k] + b[k];
            let best = (0..3)
                .max_by(|&i, &j| score(i).total_cmp(&score(j)))
                .unwrap();
            best == y as usize
        })
        .count();
    assert_eq!(correct, 150);
}

/// A label outside 0..3 is a typed error naming the input.
#[test]
fn labels_out_of_range_are_a_typed_error() {
    let data = SoftmaxData {
        x: Array::from_rows(&[[0.0f32, 1.0]]).unwrap(),
        y: Array::vector(vec![3.0]),
    };
    let mut g = G::new(&Cpu::seeded(0));
    let err = ravi::fit(
        &mut g,
        &data,
        &FitOptions {
            steps: 1,
            progress: false,
            ..FitOptions::default()
        },
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("declared as the integers 0..3"),
        "{err}"
    );
}

/// A categorical site's log density split by data row (what evaluation and the start's
/// search take in passes of rows) sums to the site's term over all rows, particle by
/// particle.
#[test]
fn categorical_terms_split_by_rows() {
    use ravi::dfdx::tensor::{NoneTape, SampleTensor, Tensor};
    use ravi::ModelData as _;
    let dev = Cpu::seeded(4);
    let rows: Vec<[f32; 2]> = (0..7)
        .map(|i| [(i as f32).sin(), (i as f32 * 0.7).cos()])
        .collect();
    let data = SoftmaxData {
        x: Array::from_rows(&rows).unwrap(),
        y: Array::vector(vec![0.0, 1.0, 2.0, 2.0, 1.0, 0.0, 1.0]),
    };
    let batch = ravi::Batch::upload(&dev, Softmax::inputs(), &data.arrays(), None, 7);
    let latents = || -> Vec<Tensor<(usize, usize), f32, Cpu>> {
        let seeded = Cpu::seeded(9);
        vec![
            seeded.sample_normal_like(&(3, 6)),
            seeded.sample_normal_like(&(3, 3)),
        ]
    };
    let whole = Softmax::log_joint_terms::<Cpu, NoneTape>(latents(), &batch, 1.0);
    let split = Softmax::log_joint_rows::<Cpu, NoneTape>(latents(), &batch);
    let (_, y_whole) = whole.iter().find(|(n, _)| *n == "y").unwrap();
    let (_, y_rows) = split.iter().find(|(n, _)| *n == "y").unwrap();
    let y_rows = y_rows
        .as_ref()
        .expect("a categorical over the rows splits by rows")
        .as_vec();
    for (p, want) in y_whole.as_vec().into_iter().enumerate() {
        let got: f32 = y_rows[p * 7..(p + 1) * 7].iter().sum();
        assert!(
            (got - want).abs() < 1e-4 * (1.0 + want.abs()),
            "particle {p}: {got} vs {want}"
        );
    }
}
