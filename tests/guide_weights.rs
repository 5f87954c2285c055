//! The implicit family's down-weighting factors reach the ELBO's terms while fitting, and
//! only then.

use ravi::dfdx::tensor::NoneTape;
use ravi::elbo::elbo_terms;
use ravi::prelude::*;

model! {
    model Tiny(y: [N]) {
        a ~ Normal(0.0, 1.0) [2];
        b ~ Normal(0.0, 2.0);
        y ~ Normal(sum(a) + b, 1.0);
    }
}
guide! {
    guide Weighted for Tiny { (a, b) ~ Implicit(noise = 2, hidden = [4], prior_weight = 0.01, entropy_weight = 0.1); }
}

fn terms(weighted: bool) -> Vec<(&'static str, Vec<f32>)> {
    let g = Weighted::new(&Cpu::seeded(1));
    let data = TinyData {
        y: Array::vector(vec![0.5, -0.2, 1.0]),
    };
    let arrays = ravi::ModelData::arrays(&data);
    let batch = ravi::Batch::upload(g.params().device(), Tiny::inputs(), &arrays, None, 3);
    elbo_terms::<_, Cpu, NoneTape>(&g, &batch, 5, 1.0, Estimator::default(), weighted)
        .into_iter()
        .map(|(n, t)| (n, t.as_vec()))
        .collect()
}

#[test]
fn prior_and_entropy_weights_apply_only_when_fitting() {
    let g = Weighted::new(&Cpu::seeded(1));
    assert_eq!(g.prior_weights(), vec![0.01, 0.01]);
    // Same device seed, same draws: the weighted terms are the plain ones scaled.
    let (plain, weighted) = (terms(false), terms(true));
    assert_eq!(plain.len(), 4, "the guide's term, a, b, y");
    for ((name, p), (_, w)) in plain.iter().zip(&weighted) {
        let factor = match *name {
            "a" | "b" => 0.01,
            "y" => 1.0,
            _ => 0.1, // the guide's −log q term
        };
        for (p, w) in p.iter().zip(w) {
            assert!(
                (p * factor - w).abs() < 1e-5 * (1.0 + p.abs()),
                "{name}: {p} × {factor} vs {w}"
            );
        }
    }
}
