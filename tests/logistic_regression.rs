//! Logistic regression end to end: labels declared as integers are checked at run time,
//! and a fitted guide separates the classes of held-out rows.

use ravi::prelude::*;

model! {
    model Logistic(x: [N, 2], y: [N] in 0..2) {
        w ~ Normal(0.0, 1.0) [2];
        b ~ Normal(0.0, 1.0);
        y ~ Bernoulli(logits = x @ w + b);
    }
}
guide! { guide G for Logistic { (w, b) ~ FullRank; } }

#[test]
fn labels_outside_the_declared_integers_are_a_typed_error() {
    let data = LogisticData {
        x: Array::from_rows(&[[0.0f32, 1.0], [1.0, 0.0]]).unwrap(),
        y: Array::vector(vec![1.0, 0.5]),
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
    assert_eq!(
        err.to_string(),
        "input `y` of Logistic holds 0.5 at flat index 1, but it is declared as the integers 0..2"
    );
}

/// Labels drawn from a known logistic model: the posterior mean of the weights points the
/// same way as the true ones, and the predictive beats chance by far on fresh rows.
#[test]
fn a_fit_recovers_the_direction_of_the_true_weights() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    let truth = [2.0f64, -1.5];
    let mut sample = |n: usize| {
        let mut xs = Vec::new();
        let mut ys = Vec::new();
        for _ in 0..n {
            let x = [rng.gen_range(-2.0..2.0), rng.gen_range(-2.0..2.0)];
            let p = 1.0 / (1.0 + (-(truth[0] * x[0] + truth[1] * x[1] + 0.3)).exp());
            xs.push(x);
            ys.push(f32::from(u8::from(rng.gen_bool(p))));
        }
        (xs, ys)
    };
    let (xs, ys) = sample(400);
    let rows: Vec<[f32; 2]> = xs.iter().map(|x| [x[0] as f32, x[1] as f32]).collect();
    let data = LogisticData {
        x: Array::from_rows(&rows).unwrap(),
        y: Array::vector(ys),
    };
    let mut g = G::new(&Cpu::seeded(1));
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
    let post = Posterior::from_guide(&g, 2000);
    let w = &post.site("w").unwrap().mean;
    let cos = (f64::from(w[0]) * truth[0] + f64::from(w[1]) * truth[1])
        / ((f64::from(w[0]).powi(2) + f64::from(w[1]).powi(2)).sqrt()
            * (truth[0].powi(2) + truth[1].powi(2)).sqrt());
    assert!(cos > 0.98, "cosine to the true weights {cos}");
    let (test_x, test_y) = sample(400);
    let b = f64::from(post.site("b").unwrap().mean[0]);
    let correct = test_x
        .iter()
        .zip(&test_y)
        .filter(|(x, &y)| {
            ((f64::from(w[0]) * x[0] + f64::from(w[1]) * x[1] + b > 0.0) as u8) == y as u8
        })
        .count();
    // The Bayes-optimal accuracy here is about 0.85; chance is 0.5.
    assert!(
        correct as f64 / 400.0 > 0.78,
        "accuracy {}",
        correct as f64 / 400.0
    );
}
