//! Sticking the landing (Roeder et al. 2017): when the guide equals the posterior, the
//! path-derivative estimator's gradient is zero for every draw, for every guide parameter;
//! the standard estimator's is zero only on average.

use ravi::prelude::*;
use ravi::ParamId;

const D: usize = 3;
const N: usize = 4;

model! {
    /// y_ij ~ N(w_j, 1), w_j ~ N(0, 1): the posterior of w_j is N(Σ_i y_ij / (N + 1), 1 / (N + 1)),
    /// independent across j, so a mean-field Gaussian can equal it.
    model Means(y: [N, D]) {
        w ~ Normal(0.0, 1.0) [D];
        y ~ Normal(w, 1.0);
    }
}

guide! {
    guide Auto for Means { w ~ MeanField; }
    guide Hand for Means {
        param mu [D] = 0.0;
        param sd [D] positive = 0.1;
        w ~ Normal(mu, sd);
    }
}

fn data() -> (MeansData, Vec<f32>, f32) {
    let rows: Vec<[f32; D]> = (0..N)
        .map(|i| {
            let t = i as f32;
            [t * 0.3 - 0.2, (t * 1.7).sin(), 1.0 - 0.5 * t]
        })
        .collect();
    let n = N as f32;
    let mean = (0..D)
        .map(|j| rows.iter().map(|r| r[j]).sum::<f32>() / (n + 1.0))
        .collect();
    let sd = (1.0 / (n + 1.0)).sqrt();
    (
        MeansData {
            y: Array::from_rows(&rows).unwrap(),
        },
        mean,
        sd,
    )
}

/// softplus⁻¹(σ − floor): the stored ρ of a scale σ.
fn rho(sd: f32) -> f32 {
    let s = sd - ravi::guides::SCALE_FLOOR;
    s + (-(-s).exp_m1()).ln()
}

/// Sets the guide's location and scale parameters (named `loc`, `scale`) to the posterior.
fn at_posterior<G: Guide<Cpu>>(guide: &mut G, loc: &str, scale: &str) {
    let (_, mean, sd) = data();
    let ids: Vec<(String, ParamId)> = guide
        .params()
        .iter()
        .map(|(n, _)| n.to_string())
        .zip(guide.params().ids())
        .collect();
    for (name, id) in ids {
        if name == loc {
            guide.params_mut().set(id, &mean);
        } else if name == scale {
            guide.params_mut().set(id, &[rho(sd); D]);
        } else {
            panic!("unexpected parameter {name}");
        }
    }
}

/// The largest gradient entry over `draws` one-particle estimates.
fn largest_gradient<G: Guide<Cpu, Model = Means>>(
    guide: &G,
    estimator: Estimator,
    draws: usize,
) -> f32 {
    let (data, _, _) = data();
    (0..draws)
        .flat_map(|_| {
            ravi::elbo_gradient(guide, &data, None, 1, estimator)
                .unwrap()
                .into_iter()
                .flatten()
        })
        .fold(0.0f32, |m, g| m.max(g.abs()))
}

fn check<G: Guide<Cpu, Model = Means>>(mut guide: G, loc: &str, scale: &str) {
    at_posterior(&mut guide, loc, scale);
    // Gradients here are O(1) per draw for the standard estimator (ε-sized); the path
    // derivative's cancel to f32 rounding.
    let stl = largest_gradient(&guide, Estimator::PathDerivative, 20);
    let standard = largest_gradient(&guide, Estimator::Standard, 20);
    assert!(stl < 1e-4, "path derivative at the posterior: {stl}");
    assert!(
        standard > 0.1,
        "standard estimator at the posterior: {standard}"
    );
}

#[test]
fn mean_field_path_derivative_vanishes_at_the_posterior() {
    check(Auto::new(&Cpu::seeded(0)), "w.loc", "w.rho");
}

#[test]
fn guide_program_path_derivative_vanishes_at_the_posterior() {
    check(Hand::new(&Cpu::seeded(1)), "mu", "sd");
}
