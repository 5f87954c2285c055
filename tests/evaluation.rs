//! Evaluation over many rows: the ELBO and the importance-weighted bound of guides set to
//! the exact posterior equal the log evidence, in closed form, for every draw. Over
//! 200,000 rows that holds only if the rows' terms are summed in f64 (their f32 sum is off
//! by nats) and the rows are taken in passes (all draws of all rows at once would not fit).

use ravi::prelude::*;
use ravi::scale::rho_for;

model! {
    /// One global level under N(0, 1), unit noise.
    model Level(y: [N]) {
        mu ~ Normal(0.0, 1.0);
        y ~ Normal(mu, 1.0);
    }
    /// One latent per row: z ~ N(0, 1), y ~ N(z, 1).
    model PerRow(y: [N]) {
        z ~ Normal(0.0, 1.0) [N];
        y ~ Normal(z, 1.0);
    }
}

guide! {
    guide LevelGuide for Level { mu ~ MeanField; }
    guide PerRowGuide for PerRow { z ~ MeanField; }
}

fn ys(n: usize) -> Vec<f32> {
    // values spread around 0.3 with sd ~ 1, deterministic
    (0..n)
        .map(|i| 0.3 + ((i as f32 * 0.618_034).fract() - 0.5) * 3.4)
        .collect()
}

fn set(params: &mut ravi::ParamStore<Cpu>, name: &str, values: &[f32]) {
    let id = params
        .find(name)
        .unwrap_or_else(|| panic!("no parameter {name}"));
    params.set(id, values);
}

const LN_2PI: f64 = 1.837_877_066_409_345_5;

#[test]
fn elbo_of_the_exact_posterior_over_200_000_rows_is_the_evidence() {
    let y = ys(200_000);
    let n = y.len() as f64;
    let total: f64 = y.iter().map(|&v| f64::from(v)).sum();
    let squares: f64 = y.iter().map(|&v| f64::from(v).powi(2)).sum();
    // y ~ N(0, I + 11ᵀ): −N/2 log 2π − ½ Σy² + ½ (Σy)²/(N + 1) − ½ log(N + 1)
    let evidence = -n / 2.0 * LN_2PI - squares / 2.0 + total * total / (2.0 * (n + 1.0))
        - (n + 1.0).ln() / 2.0;
    // the posterior: N(Σy/(N + 1), 1/(N + 1))
    let mut g = LevelGuide::new(&Cpu::seeded(3));
    let (mean, sd) = (total / (n + 1.0), (n + 1.0).powf(-0.5));
    set(g.params_mut(), "mu.loc", &[mean as f32]);
    set(g.params_mut(), "mu.rho", &[rho_for(sd as f32)]);
    let data = LevelData {
        y: Array::vector(y),
    };
    let draws = ravi::elbo_draws(&g, &data, 20).unwrap();
    for d in &draws {
        // what is left: q's mean and sd rounded to f32 (a KL of ~1e-3) and the rows' own
        // f32 terms
        assert!(
            (d - evidence).abs() < 0.05,
            "a draw's ELBO {d} vs the log evidence {evidence}"
        );
    }
}

#[test]
fn elbo_and_iwae_of_exact_local_posteriors_over_100_000_rows_are_the_evidence() {
    let y = ys(100_000);
    // y_i ~ N(0, 2) independently; z_i | y_i ~ N(y_i / 2, 1/2)
    let evidence: f64 = y
        .iter()
        .map(|&v| -0.5 * (LN_2PI + 2f64.ln()) - f64::from(v).powi(2) / 4.0)
        .sum();
    let mut g = PerRowGuide::new(&Cpu::seeded(4));
    g.prepare(y.len());
    let locs: Vec<f32> = y.iter().map(|v| v / 2.0).collect();
    set(g.params_mut(), "z.loc", &locs);
    set(
        g.params_mut(),
        "z.rho",
        &vec![rho_for(0.5f32.sqrt()); y.len()],
    );
    let data = PerRowData {
        y: Array::vector(y),
    };
    for d in ravi::elbo_draws(&g, &data, 3).unwrap() {
        assert!(
            (d - evidence).abs() < 0.05,
            "a draw's ELBO {d} vs the log evidence {evidence}"
        );
    }
    let bound = ravi::iwae(&g, &data, 5, 1.0).unwrap();
    assert!(
        (bound - evidence).abs() < 0.05,
        "IWAE {bound} vs the log evidence {evidence}"
    );
}
