//! `track name = e;`: the value is kept in every posterior draw, in the summaries and in
//! the predictive, computed from the same draws as the sites.

use ravi::prelude::*;

model! {
    /// The eight schools, non-centered, with the school effects tracked.
    model Schools(y: [8], sigma: [8]) {
        mu ~ Normal(0.0, 5.0);
        tau ~ HalfCauchy(5.0);
        eta ~ Normal(0.0, 1.0) [8];
        track theta = mu + tau * eta;
        y ~ Normal(theta, sigma);
    }
    /// A tracked value per data row.
    model Line(x: [N], y: [N]) {
        a ~ Normal(0.0, 1.0);
        b ~ Normal(0.0, 1.0);
        track fitted = a + b * x;
        y ~ Normal(fitted, 0.5);
    }
}
guide! {
    guide SchoolsGuide for Schools { (mu, tau, eta) ~ MeanField; }
    guide LineGuide for Line { (a, b) ~ MeanField; }
}

fn schools() -> SchoolsData {
    SchoolsData {
        y: Array::vector(vec![28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0]),
        sigma: Array::vector(vec![15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0]),
    }
}

#[test]
fn a_tracked_value_is_computed_from_each_draw() {
    let mut g = SchoolsGuide::new(&Cpu::seeded(2));
    let opts = FitOptions {
        steps: 300,
        progress: false,
        ..FitOptions::default()
    };
    ravi::fit(&mut g, &schools(), &opts).unwrap();
    let post = Posterior::from_guide(&g, 2000);
    let theta = post.site("theta").expect("theta is tracked");
    assert_eq!(theta.shape, vec![8]);
    // joint draws: mu, tau, eta[0..8], then theta[0..8]
    for d in post.joint_draws() {
        for j in 0..8 {
            let expected = d[0] + d[1] * d[2 + j];
            assert!((d[10 + j] - expected).abs() < 1e-4 * expected.abs().max(1.0));
        }
    }
    let mean0: f64 = post.joint_draws().iter().map(|d| d[10]).sum::<f64>() / 2000.0;
    assert!((f64::from(theta.mean[0]) - mean0).abs() < 1e-4);
}

#[test]
fn a_tracked_value_of_the_data_needs_the_data() {
    let data = LineData {
        x: Array::vector(vec![-1.0, 0.0, 1.0, 2.0]),
        y: Array::vector(vec![-0.8, 0.3, 1.1, 2.2]),
    };
    let mut g = LineGuide::new(&Cpu::seeded(4));
    let opts = FitOptions {
        steps: 300,
        progress: false,
        ..FitOptions::default()
    };
    ravi::fit(&mut g, &data, &opts).unwrap();
    assert!(Posterior::from_guide(&g, 100).site("fitted").is_none());
    let post = Posterior::with_data(&g, &data, 3000).unwrap();
    let fitted = post.site("fitted").expect("fitted, given the data");
    assert_eq!(fitted.shape, vec![4]);
    let (a, b) = (post.site("a").unwrap(), post.site("b").unwrap());
    for (i, x) in [-1.0f32, 0.0, 1.0, 2.0].iter().enumerate() {
        let expected = a.mean[0] + b.mean[0] * x;
        assert!(
            (fitted.mean[i] - expected).abs() < 1e-4,
            "{} vs {expected}",
            fitted.mean[i]
        );
    }
    // The predictive has it too; y's predictive mean is the tracked line's (E[y] = fitted).
    let pred = ravi::predictive(&g, &data, 4000).unwrap();
    let mean_of = |name: &str| match pred.iter().find(|p| p.site() == name) {
        Some(ravi::SitePredictive::Continuous { mean, sd, .. }) => (mean.clone(), sd.clone()),
        other => panic!("{name}: {other:?}"),
    };
    let ((y_mean, y_sd), (f_mean, f_sd)) = (mean_of("y"), mean_of("fitted"));
    for i in 0..4 {
        assert!(
            (y_mean[i] - f_mean[i]).abs() < 1e-9,
            "{} vs {}",
            y_mean[i],
            f_mean[i]
        );
        // y adds the noise sd 0.5 to the line's spread
        let total = (f_sd[i].powi(2) + 0.25).sqrt();
        assert!((y_sd[i] - total).abs() < 1e-6, "{} vs {total}", y_sd[i]);
    }
}
