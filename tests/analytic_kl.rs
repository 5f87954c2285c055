//! The closed-form KL of local latents under `Estimator::AnalyticKl`: per-row mean-field
//! parameters and encoders of Gaussian local sites with Normal priors replace their
//! Monte Carlo prior and entropy terms by −KL(q‖p) per row. Where the likelihood is flat
//! its one-draw gradient is the exact gradient of the expected ELBO (a Monte Carlo prior
//! term would scatter it by σ/s² per draw), and for an encoder it agrees with the standard
//! estimator's in expectation.

use ravi::prelude::*;
use ravi::scale::rho_for;
use ravi::{Estimator, Guide};

model! {
    /// z_i ~ N(0.5, 2), y_i ~ N(z_i, 100): a likelihood so flat that a gradient's noise
    /// is the prior's and the entropy's.
    model Shifted(y: [N]) {
        z ~ Normal(0.5, 2.0) [N];
        y ~ Normal(z, 100.0);
    }
    net Enc(y: [B, 1]) -> [B, 2] { Linear(1, 2) }
    model Encoded(y: [N, 1]) {
        z ~ Normal(0.5, 2.0) [N, 1];
        y ~ Normal(z, 1.0);
    }
}

guide! {
    guide ShiftedGuide for Shifted { z ~ MeanField; }
    guide EncodedGuide for Encoded { z ~ Amortized(Enc(y)); }
}

const Y: [f32; 3] = [1.5, -0.7, 3.0];
const LOC: [f32; 3] = [0.2, -1.0, 2.0];
const SD: [f32; 3] = [0.5, 1.2, 0.3];

/// d/dμ_i and d/dρ_i of E_q[log p(y | z)] − KL(q‖p) for q_i = N(μ_i, σ_i²),
/// σ = softplus(ρ) + floor, p = N(0.5, 2²), y_i ~ N(z_i, 100²).
fn exact_gradient() -> (Vec<f64>, Vec<f64>) {
    let (m, s2, noise2) = (0.5f64, 4.0f64, 1e4f64);
    let mut d_loc = Vec::new();
    let mut d_rho = Vec::new();
    for i in 0..3 {
        let (y, mu, sd) = (f64::from(Y[i]), f64::from(LOC[i]), f64::from(SD[i]));
        d_loc.push((y - mu) / noise2 - (mu - m) / s2);
        let d_sd = -sd / noise2 - (sd / s2 - 1.0 / sd);
        let rho = f64::from(rho_for(SD[i]));
        d_rho.push(d_sd / (1.0 + (-rho).exp()));
    }
    (d_loc, d_rho)
}

#[test]
fn local_mean_field_kl_gradient_is_the_closed_form() {
    let mut g = ShiftedGuide::new(&Cpu::seeded(5));
    g.prepare(3);
    let set = |g: &mut ShiftedGuide<Cpu>, name: &str, v: Vec<f32>| {
        let id = g.params().find(name).expect("a parameter");
        g.params_mut().set(id, &v);
    };
    set(&mut g, "z.loc", LOC.to_vec());
    set(&mut g, "z.rho", SD.iter().map(|&s| rho_for(s)).collect());
    let data = ShiftedData {
        y: Array::vector(Y.to_vec()),
    };
    let (d_loc, d_rho) = exact_gradient();
    // one draw at a time: what is left of the noise is the likelihood's, below 1e-4
    for _ in 0..5 {
        let grad = ravi::elbo_gradient(&g, &data, None, 1, Estimator::AnalyticKl).unwrap();
        let at = |name: &str| {
            let id = g.params().find(name).unwrap();
            let k = g.params().ids().position(|i| i == id).unwrap();
            grad[k].clone()
        };
        for i in 0..3 {
            let (got_loc, got_rho) = (f64::from(at("z.loc")[i]), f64::from(at("z.rho")[i]));
            assert!(
                (got_loc - d_loc[i]).abs() < 1e-3,
                "d/dloc[{i}] {got_loc} vs {}",
                d_loc[i]
            );
            assert!(
                (got_rho - d_rho[i]).abs() < 1e-3,
                "d/drho[{i}] {got_rho} vs {}",
                d_rho[i]
            );
        }
    }
}

/// The KL is taken where it exists: an encoder's gradient under the analytic KL agrees
/// with the standard estimator's (both unbiased) and has less spread.
#[test]
fn an_encoders_kl_gradient_agrees_with_the_standard_one() {
    let data = EncodedData {
        y: Array::new(Y.to_vec(), vec![3, 1]).unwrap(),
    };
    let g = EncodedGuide::new(&Cpu::seeded(8));
    let runs = |estimator| -> Vec<Vec<f32>> {
        (0..40)
            .map(|_| {
                ravi::elbo_gradient(&g, &data, None, 200, estimator)
                    .unwrap()
                    .concat()
            })
            .collect()
    };
    let (kl, standard) = (runs(Estimator::AnalyticKl), runs(Estimator::Standard));
    let stats = |v: &[Vec<f32>], j: usize| {
        let n = v.len() as f64;
        let mean = v.iter().map(|r| f64::from(r[j])).sum::<f64>() / n;
        let var = v
            .iter()
            .map(|r| (f64::from(r[j]) - mean).powi(2))
            .sum::<f64>()
            / (n - 1.0);
        (mean, var)
    };
    let mut kl_spread = 0.0;
    let mut standard_spread = 0.0;
    for j in 0..kl[0].len() {
        let ((m1, v1), (m2, v2)) = (stats(&kl, j), stats(&standard, j));
        let se = ((v1 + v2) / kl.len() as f64).sqrt();
        assert!(
            (m1 - m2).abs() < 5.0 * se + 1e-3,
            "encoder weight {j}: analytic KL {m1} vs standard {m2} (se {se})"
        );
        kl_spread += v1;
        standard_spread += v2;
    }
    assert!(
        kl_spread < standard_spread,
        "the closed form should remove the prior's and entropy's noise: {kl_spread} vs {standard_spread}"
    );
}
