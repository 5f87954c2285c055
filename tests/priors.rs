//! Layer priors through the DSL: the generated code evaluates the whole site's density.

use ravi::dfdx::prelude::TensorFromVec as _;
use ravi::dfdx::tensor::NoneTape;
use ravi::prelude::*;
use statrs::distribution::{Continuous, StudentsT};

model! {
    model OneWeight() {
        w ~ NormalInverseGamma(0.5, 2.0, 3.0, 1.5);
    }
    model Layer(y: [N]) {
        w ~ LayerGaussian() [4, 5];
        v ~ ConjugateKnownMean(0.0, 2.0, 2.0) [3];
        y ~ Normal(sum(w) + sum(v), 1.0);
    }
}
guide! {
    guide LayerGuide for Layer { (w, v) ~ MeanField; }
}

/// One weight under a Normal-Inverse-Gamma prior is Student-t distributed:
/// t with 2α₀ degrees of freedom, location μ₀, scale √(β₀(κ₀ + 1)/(α₀κ₀)).
#[test]
fn one_weight_under_a_normal_inverse_gamma_is_student_t() {
    let dev = Cpu::seeded(0);
    let batch = ravi::Batch::upload(&dev, OneWeight::inputs(), &[], None, 1);
    let xs: Vec<f32> = (0..200).map(|i| -6.0 + 0.06 * i as f32).collect();
    let n = xs.len();
    let latents = vec![dev.tensor_from_vec(xs.clone(), (n, 1usize))];
    let terms = <OneWeight as Model>::log_joint_terms::<Cpu, NoneTape>(latents, &batch, 1.0);
    let t = StudentsT::new(0.5, (1.5f64 * 3.0 / (3.0 * 2.0)).sqrt(), 6.0).unwrap();
    for (x, lp) in xs.iter().zip(terms[0].1.as_vec()) {
        let want = t.ln_pdf(f64::from(*x));
        assert!(
            (f64::from(lp) - want).abs() < 1e-4 * (1.0 + want.abs()),
            "x = {x}: {lp} vs {want}"
        );
    }
}

/// A fit with layer priors runs and its guide is shaped like the sites.
#[test]
fn layer_priors_fit() {
    let data = LayerData {
        y: Array::vector(vec![1.0, 1.5, 0.5]),
    };
    let mut g = LayerGuide::new(&Cpu::seeded(1));
    let report = ravi::fit(
        &mut g,
        &data,
        &FitOptions {
            steps: 500,
            progress: false,
            ..FitOptions::default()
        },
    )
    .unwrap();
    assert!(report.elbo.iter().all(|e| e.is_finite()));
    let post = Posterior::from_guide(&g, 2000);
    assert_eq!(post.site("w").unwrap().shape, vec![4, 5]);
    // The LayerGaussian prior's sd is 1/√20 per weight; the data move the sum only a
    // little, so the posterior sd stays near it.
    let sd = post.site("w").unwrap().sd[0];
    assert!((sd - 0.2236).abs() < 0.05, "{sd}");
}
