//! A fit says whether it worked: convergence, k̂ of the fitted guide (Yao et al. 2018), and
//! a plain warning when either is poor.

use ravi::prelude::*;
use ravi::{Convergence, FitError, Init};

model! {
    /// Two predictors correlated 0.999: the posterior of w is a thin diagonal ridge.
    model Ridge(x: [N, 2], y: [N]) {
        w ~ Normal(0.0, 10.0) [2];
        y ~ Normal(x @ w, 1.0);
    }
}

guide! {
    guide RidgeMeanField for Ridge { w ~ MeanField; }
    guide RidgeFullRank for Ridge { w ~ FullRank; }
    guide RidgeImplicit for Ridge { w ~ Implicit(hidden = [8]); }
}

fn ridge() -> RidgeData {
    let rows: Vec<[f32; 2]> = (0..100)
        .map(|i| {
            let t = i as f32 * 0.37;
            let a = t.sin();
            [a, a + 0.03 * (2.3 * t).cos()]
        })
        .collect();
    let y: Vec<f32> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| r[0] + r[1] + ((i * 13 % 7) as f32 / 7.0 - 0.5))
        .collect();
    RidgeData {
        x: Array::from_rows(&rows).unwrap(),
        y: Array::vector(y),
    }
}

fn quiet() -> FitOptions {
    FitOptions {
        progress: false,
        warnings: false,
        ..FitOptions::default()
    }
}

/// A mean-field guide on a correlated posterior is too narrow along the ridge: its importance
/// ratios have a heavy tail, and the report says so; a full-rank guide contains the
/// posterior and its ratios are flat.
#[test]
fn a_poor_family_is_flagged_and_a_good_one_is_not() {
    let data = ridge();
    let mut mf = RidgeMeanField::new(&Cpu::seeded(0));
    let report = ravi::fit(&mut mf, &data, &quiet()).unwrap();
    let d = report.diagnostics.expect("a global model gets diagnostics");
    assert!(d.k_hat > 0.7, "{d}");
    assert!(d.iw_elbo > d.elbo, "{d}");
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("k̂") && w.contains("FullRank")),
        "{:?}",
        report.warnings
    );
    let mut fr = RidgeFullRank::new(&Cpu::seeded(0));
    let report = ravi::fit(&mut fr, &data, &quiet()).unwrap();
    let d = report.diagnostics.unwrap();
    assert!(d.k_hat < 0.5, "{d}");
    // q is the posterior: every ratio is p(x), and the two bounds meet it
    assert!((d.iw_elbo - d.elbo).abs() < 1e-2, "{d}");
    assert!(report.converged && report.warnings.is_empty(), "{report:?}");
}

/// Twenty steps from zero are far from the posterior: not converged, and k̂ says the guide
/// cannot be trusted.
#[test]
fn a_fit_cut_short_says_so() {
    let data = ridge();
    let mut g = RidgeFullRank::new(&Cpu::seeded(0));
    let opts = FitOptions {
        steps: 20,
        init: Init::Zero,
        // diagnostics however short the fit
        convergence: Convergence {
            window: 5,
            ..Convergence::default()
        },
        ..quiet()
    };
    let report = ravi::fit(&mut g, &data, &opts).unwrap();
    assert!(!report.converged);
    assert!(report
        .warnings
        .iter()
        .any(|w| w.contains("still improving")));
    let d = ravi::diagnose(&g, &data, 1000).unwrap();
    assert!(d.k_hat > 0.7, "{d}");
    // with the default windows (50 steps at least) twenty steps close none: too short to
    // judge, not "still improving"
    let mut g = RidgeFullRank::new(&Cpu::seeded(0));
    let report = ravi::fit(
        &mut g,
        &data,
        &FitOptions {
            steps: 20,
            ..quiet()
        },
    )
    .unwrap();
    assert!(!report.converged);
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("too short to judge")),
        "{:?}",
        report.warnings
    );
}

/// With early stopping on, a fit that has converged settles and stops before its steps run
/// out, and still lands on the posterior.
#[test]
fn early_stopping_stops_once_converged() {
    let data = ridge();
    let mut g = RidgeFullRank::new(&Cpu::seeded(0));
    let opts = FitOptions {
        steps: 20_000,
        convergence: Convergence {
            stop_early: true,
            ..Convergence::default()
        },
        ..quiet()
    };
    let report = ravi::fit(&mut g, &data, &opts).unwrap();
    assert!(report.converged);
    assert!(report.steps < 20_000, "{} steps", report.steps);
    assert_eq!(report.elbo.len(), report.steps);
    let d = report.diagnostics.unwrap();
    assert!(d.k_hat < 0.5, "{d}");
}

#[test]
fn diagnose_refuses_what_it_cannot_judge() {
    let data = ridge();
    let g = RidgeImplicit::new(&Cpu::seeded(0));
    assert!(matches!(
        ravi::diagnose(&g, &data, 500),
        Err(FitError::Unsupported(_))
    ));
    let g = RidgeFullRank::new(&Cpu::seeded(0));
    assert!(matches!(
        ravi::diagnose(&g, &data, 1),
        Err(FitError::Options(_))
    ));
}
