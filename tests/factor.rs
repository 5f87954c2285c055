//! `factor(name, e)` adds e, summed, to the log joint: a Normal likelihood written as a
//! factor gives the ELBO of the same model with the site, less the Normal's normalizer
//! (a constant), draw for draw, on the graph and on the engine.

use ravi::prelude::*;

model! {
    model WithSite(y: [N]) {
        mu ~ Normal(0.0, 1.0);
        s ~ LogNormal(0.0, 1.0);
        y ~ Normal(mu, s);
    }
    model WithFactor(y: [N]) {
        mu ~ Normal(0.0, 1.0);
        s ~ LogNormal(0.0, 1.0);
        factor(likelihood, -0.5 * square((y - mu) / s) - log(s));
    }
}
guide! {
    guide SiteGuide for WithSite { (mu, s) ~ MeanField; }
    guide FactorGuide for WithFactor { (mu, s) ~ MeanField; }
}

fn ys() -> Vec<f32> {
    vec![0.3, -1.2, 2.2, 0.9, 1.4, -0.1, 0.6]
}

#[test]
fn a_factor_is_a_term_of_the_log_joint() {
    let n = ys().len() as f64;
    let normalizer = -0.5 * n * (2.0 * std::f64::consts::PI).ln();
    let with_site = ravi::elbo_draws(
        &SiteGuide::new(&Cpu::seeded(3)),
        &WithSiteData {
            y: Array::vector(ys()),
        },
        40,
    )
    .unwrap();
    let with_factor = ravi::elbo_draws(
        &FactorGuide::new(&Cpu::seeded(3)),
        &WithFactorData {
            y: Array::vector(ys()),
        },
        40,
    )
    .unwrap();
    for (a, b) in with_site.iter().zip(&with_factor) {
        assert!(
            (a - (b + normalizer)).abs() < 1e-3,
            "{a} vs {b} + {normalizer}"
        );
    }
}

#[test]
fn a_factor_fits_like_the_site_it_writes() {
    let opts = FitOptions {
        steps: 1500,
        progress: false,
        ..FitOptions::default()
    };
    let mut a = SiteGuide::new(&Cpu::seeded(1));
    let mut b = FactorGuide::new(&Cpu::seeded(1));
    let ra = ravi::fit(
        &mut a,
        &WithSiteData {
            y: Array::vector(ys()),
        },
        &opts,
    )
    .unwrap();
    let rb = ravi::fit(
        &mut b,
        &WithFactorData {
            y: Array::vector(ys()),
        },
        &opts,
    )
    .unwrap();
    assert!(
        matches!(rb.engine, ravi::EngineChoice::Host),
        "{:?}",
        rb.engine
    );
    assert!(matches!(ra.engine, ravi::EngineChoice::Host));
    let (pa, pb) = (
        Posterior::from_guide(&a, 4000),
        Posterior::from_guide(&b, 4000),
    );
    for site in ["mu", "s"] {
        let (x, y) = (pa.site(site).unwrap(), pb.site(site).unwrap());
        assert!(
            (x.mean[0] - y.mean[0]).abs() < 1e-3,
            "{site}: {} vs {}",
            x.mean[0],
            y.mean[0]
        );
        assert!(
            (x.sd[0] - y.sd[0]).abs() < 1e-3,
            "{site}: {} vs {}",
            x.sd[0],
            y.sd[0]
        );
    }
}
