//! Explicit guide programs: `param` declarations and sample statements that use them,
//! beside automatic families.

use ravi::prelude::*;

const D: usize = 3;

model! {
    model Reg(x: [N, D], y: [N]) {
        w ~ Normal(0.0, 1.0) [D];
        s ~ LogNormal(0.0, 1.0);
        y ~ Normal(x @ w, s);
    }
}

guide! {
    /// Pyro's hand-written guide, in ravi.
    guide Hand for Reg {
        param mu [D] = 0.0;
        param sd [D] positive = 0.1;
        param log_s_loc = 0.0;
        param log_s_scale positive = 0.1;
        w ~ Normal(mu, sd);
        s ~ LogNormal(log_s_loc, log_s_scale);
    }
    guide Auto for Reg { w ~ MeanField; s ~ MeanField; }
}

/// The data and the sd of the noise added.
fn data() -> (RegData, f32) {
    // y = x · (1, −2, 0.5) + noise of sd 0.3, deterministic pseudo-noise.
    let mut rows = Vec::new();
    let mut ys = Vec::new();
    let mut noises = Vec::new();
    for i in 0..200 {
        let t = i as f32;
        let x = [(t * 0.37).sin(), (t * 0.91).cos(), (t * 0.13).sin() * 2.0];
        let noise = 0.3 * ((t * 12.9898).sin() * 43758.547).fract().mul_add(2.0, -1.0) * 1.7;
        noises.push(noise);
        ys.push(x[0] - 2.0 * x[1] + 0.5 * x[2] + noise);
        rows.push(x);
    }
    let sd = (noises.iter().map(|n| n * n).sum::<f32>() / noises.len() as f32).sqrt();
    (
        RegData {
            x: Array::from_rows(&rows).unwrap(),
            y: Array::vector(ys),
        },
        sd,
    )
}

/// A hand-written mean-field guide is the MeanField family with its parameters named: the
/// two reach the same posterior.
#[test]
fn a_hand_written_guide_matches_the_automatic_one() {
    let (data, noise_sd) = data();
    let opts = FitOptions {
        steps: 3000,
        progress: false,
        ..FitOptions::default()
    };
    let mut hand = Hand::new(&Cpu::seeded(1));
    ravi::fit(&mut hand, &data, &opts).unwrap();
    let mut auto = Auto::new(&Cpu::seeded(1));
    ravi::fit(&mut auto, &data, &opts).unwrap();
    let (ph, pa) = (
        Posterior::from_guide(&hand, 20_000),
        Posterior::from_guide(&auto, 20_000),
    );
    for site in ["w", "s"] {
        let (h, a) = (ph.site(site).unwrap(), pa.site(site).unwrap());
        for i in 0..h.mean.len() {
            assert!(
                (h.mean[i] - a.mean[i]).abs() < 0.01,
                "{site}[{i}] mean {} vs {}",
                h.mean[i],
                a.mean[i]
            );
            assert!(
                (h.sd[i] / a.sd[i] - 1.0).abs() < 0.08,
                "{site}[{i}] sd {} vs {}",
                h.sd[i],
                a.sd[i]
            );
        }
    }
    // s lives on (0, ∞) and is near the noise sd.
    let s = ph.site("s").unwrap();
    assert!(s.q05[0] > 0.0);
    assert!(
        (s.mean[0] / noise_sd - 1.0).abs() < 0.15,
        "{} vs {noise_sd}",
        s.mean[0]
    );
    // The parameters are in the store under their names.
    let names: Vec<&str> = hand.params().iter().map(|(n, _)| n).collect();
    assert_eq!(names, vec!["mu", "sd", "log_s_loc", "log_s_scale"]);
}
