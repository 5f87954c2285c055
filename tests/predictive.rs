//! The posterior predictive of models whose observed sites do not read every latent site.

use ravi::prelude::*;
use ravi::SitePredictive;

model! {
    /// A hyperparameter `m` that only the prior of `theta` reads: the predictive of y does
    /// not need it, but its draw still comes first in the guide's list.
    model Hier(y: [N, 2]) {
        m ~ Normal(0.0, 10.0);
        theta ~ Normal(m, 1.0) [2];
        y ~ Normal(theta, 1.0);
    }
}
guide! { guide HierGuide for Hier { m ~ MeanField; theta ~ MeanField; } }

/// The predictive mean of y is the guide's mean of theta, column by column.
#[test]
fn the_predictive_skips_latents_it_does_not_read() {
    let rows: Vec<[f32; 2]> = (0..40).map(|i| [1.0 + 0.01 * i as f32, -2.0]).collect();
    let data = HierData {
        y: Array::from_rows(&rows).unwrap(),
    };
    let mut g = HierGuide::new(&Cpu::seeded(1));
    let opts = FitOptions {
        steps: 1500,
        progress: false,
        ..FitOptions::default()
    };
    fit(&mut g, &data, &opts).unwrap();
    let post = Posterior::from_guide(&g, 4000);
    let theta = post.sites.iter().find(|s| s.name == "theta").unwrap();
    let pred = ravi::predictive(&g, &data, 4000).unwrap();
    let SitePredictive::Continuous { mean, .. } = &pred[0] else {
        panic!("a Normal site's predictive is continuous");
    };
    for (j, &t) in theta.mean.iter().enumerate() {
        let col = mean[j];
        assert!(
            (col - f64::from(t)).abs() < 0.05,
            "column {j}: predictive {col} vs theta {t}"
        );
    }
    assert!((mean[1] + 2.0).abs() < 0.1, "{mean:?}");
}
