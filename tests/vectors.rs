//! Distributions over vectors: simplex-valued latents (Dirichlet, relaxed one-hot) drawn
//! as K − 1 unconstrained values and stick-broken; a multivariate normal prior.

use ravi::dfdx::prelude::TensorFromVec as _;
use ravi::dfdx::tensor::NoneTape;
use ravi::prelude::*;

model! {
    model OnSimplex() {
        p ~ Dirichlet(2.5) [3];
        q ~ RelaxedOneHotCategorical(0.8, 0.3) [3];
    }
    model Dir(alpha: [3]) {
        p ~ Dirichlet(alpha) [3];
    }
    model Mvn(l: [3, 3]) {
        z ~ MultivariateNormal(1.0, l) [3];
    }
}
guide! {
    guide DirGuide for Dir { p ~ FullRank; }
    guide MvnGuide for Mvn { z ~ FullRank; }
}

/// ∫∫ p(T(u)) |det ∂T/∂u| du = 1 over ℝ², for each simplex site (a grid through the
/// generated code).
#[test]
fn simplex_densities_integrate_to_one() {
    let dev = Cpu::seeded(0);
    let batch = ravi::Batch::upload(&dev, OnSimplex::inputs(), &[], None, 1);
    assert_eq!(OnSimplex::latents()[0].unconstrained_numel(), 2);
    let (n, lo, hi) = (401usize, -12.0f64, 12.0f64);
    let du = (hi - lo) / (n - 1) as f64;
    let mut grid = Vec::with_capacity(n * n * 2);
    for i in 0..n {
        for j in 0..n {
            grid.push((lo + du * i as f64) as f32);
            grid.push((lo + du * j as f64) as f32);
        }
    }
    let latents = vec![
        dev.tensor_from_vec(grid.clone(), (n * n, 2usize)),
        dev.tensor_from_vec(grid, (n * n, 2usize)),
    ];
    let terms = <OnSimplex as Model>::log_joint_terms::<Cpu, NoneTape>(latents, &batch, 1.0);
    for (name, t) in terms {
        let mass: f64 = t
            .as_vec()
            .iter()
            .map(|&l| f64::from(l).exp() * du * du)
            .sum();
        assert!((mass - 1.0).abs() < 5e-3, "site {name}: mass {mass}");
    }
}

#[test]
fn a_dirichlet_posterior_is_on_the_simplex_with_the_right_mean() {
    let data = DirData {
        alpha: Array::vector(vec![4.0, 6.0, 10.0]),
    };
    let mut g = DirGuide::new(&Cpu::seeded(1));
    ravi::fit(
        &mut g,
        &data,
        &FitOptions {
            steps: 4000,
            progress: false,
            ..FitOptions::default()
        },
    )
    .unwrap();
    let post = Posterior::from_guide(&g, 20_000);
    let p = post.site("p").unwrap();
    assert_eq!(p.shape, vec![3]);
    for draw in post.draws[0].iter().take(100) {
        assert!((draw.iter().sum::<f32>() - 1.0).abs() < 1e-5);
    }
    for (got, want) in p.mean.iter().zip([0.2f32, 0.3, 0.5]) {
        assert!((got - want).abs() < 0.015, "mean {got} vs {want}");
    }
}

/// A full-rank guide recovers the prior N(1, L Lᵀ) exactly.
#[test]
fn a_multivariate_normal_prior_is_recovered() {
    let l = [1.0f32, 0.0, 0.0, 0.5, 0.8, 0.0, -0.4, 0.3, 0.6];
    let data = MvnData {
        l: Array::new(l.to_vec(), vec![3, 3]).unwrap(),
    };
    let mut g = MvnGuide::new(&Cpu::seeded(2));
    ravi::fit(
        &mut g,
        &data,
        &FitOptions {
            steps: 4000,
            progress: false,
            ..FitOptions::default()
        },
    )
    .unwrap();
    let post = Posterior::from_guide(&g, 40_000);
    let cov = post.covariance();
    for i in 0..3 {
        assert!((f64::from(post.site("z").unwrap().mean[i]) - 1.0).abs() < 0.02);
        for j in 0..3 {
            let want: f64 = (0..3)
                .map(|r| f64::from(l[i * 3 + r]) * f64::from(l[j * 3 + r]))
                .sum();
            assert!(
                (cov[i][j] - want).abs() < 0.03,
                "cov[{i}][{j}] {} vs {want}",
                cov[i][j]
            );
        }
    }
}
