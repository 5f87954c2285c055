//! Where a fit starts (`FitOptions::init`): each start puts the guide where it says, against
//! closed forms; a start that cannot be made is a typed error naming the site.

use ravi::prelude::*;
use ravi::{FitError, Init, InitError};

model! {
    /// A linear-Gaussian regression: its posterior, mode and Laplace approximation are one
    /// closed form.
    model Line(x: [N, 2], y: [N]) {
        w ~ Normal(0.0, 10.0) [2];
        y ~ Normal(x @ w, 0.5);
    }
    /// Priors with known medians: 3 and 2.
    model Medians(y: [N]) {
        a ~ Normal(3.0, 1.0);
        s ~ HalfCauchy(2.0);
        y ~ Normal(a, s);
    }
    /// The centered eight schools: a funnel whose log joint grows without bound as tau → 0.
    model Centered(y: [8], s: [8]) {
        mu ~ Normal(0.0, 5.0);
        tau ~ HalfCauchy(5.0);
        theta ~ Normal(mu, tau) [8];
        y ~ Normal(theta, s);
    }
    /// A local latent site: no mode to search over.
    model Local(y: [N]) {
        z ~ Normal(0.0, 1.0) [N];
        y ~ Normal(z, 1.0);
    }
    /// A `param` the mode search moves with the latent site.
    model Shifted(x: [N], y: [N]) {
        param shift;
        w ~ Normal(0.0, 10.0);
        y ~ Normal(w * x + shift, 1.0);
    }
}

guide! {
    guide LineMeanField for Line { w ~ MeanField; }
    guide LineFullRank for Line { w ~ FullRank; }
    guide MediansGuide for Medians { a ~ MeanField; s ~ MeanField; }
    guide CenteredGuide for Centered { (mu, tau, theta) ~ FullRank; }
    guide LocalGuide for Local { z ~ MeanField; }
    guide ShiftedGuide for Shifted { w ~ MeanField; }
}

fn line_data() -> (LineData, Vec<Vec<f64>>, Vec<f64>) {
    line_data_of(40)
}

fn line_data_of(n: usize) -> (LineData, Vec<Vec<f64>>, Vec<f64>) {
    let x: Vec<Vec<f64>> = (0..n)
        .map(|i| {
            let t = i as f64 * 0.1;
            vec![t.sin() * 3.0, t.cos() + 0.2 * t]
        })
        .collect();
    let y: Vec<f64> = x
        .iter()
        .enumerate()
        .map(|(i, r)| 1.5 * r[0] - 0.7 * r[1] + 0.3 * ((i * 7 % 11) as f64 / 11.0 - 0.5))
        .collect();
    let data = LineData {
        x: Array::from_rows_f64(&x).unwrap(),
        y: Array::vector(y.iter().map(|&v| v as f32).collect()),
    };
    let r = |v: f64| f64::from(v as f32);
    let xf = x
        .iter()
        .map(|r0| r0.iter().map(|&v| r(v)).collect())
        .collect();
    let yf = y.iter().map(|&v| r(v)).collect();
    (data, xf, yf)
}

fn opts(init: Init) -> FitOptions {
    FitOptions {
        steps: 1,
        progress: false,
        warnings: false,
        init,
        ..FitOptions::default()
    }
}

/// The guide as the start left it: a trainer built, no step taken.
fn started<G: Guide<Cpu>>(
    guide: &mut G,
    data: &<G::Model as Model>::Data,
    init: Init,
) -> Result<ravi::InitReport, FitError> {
    let mut trainer = ravi::Trainer::new(guide, data, &opts(init))?;
    let report = trainer.init_report().clone();
    trainer.guide();
    Ok(report)
}

#[test]
fn laplace_starts_full_rank_at_the_exact_posterior() {
    let (data, x, y) = line_data();
    let exact = ravi::exact::linear_regression(&x, &y, 10.0, 0.5, false);
    let mut g = LineFullRank::new(&Cpu::seeded(0));
    let report = started(&mut g, &data, Init::Laplace).unwrap();
    assert_eq!(report.laplace_dim, 2);
    let (loc, l) = g.entry0.loc_scale_tril(g.params());
    for i in 0..2 {
        let sd = exact.cov[i][i].sqrt();
        assert!(
            (f64::from(loc[i]) - exact.mean[i]).abs() < 1e-3 * sd,
            "{loc:?}"
        );
        for j in 0..2 {
            let cov: f64 = (0..2)
                .map(|k| f64::from(l[i * 2 + k]) * f64::from(l[j * 2 + k]))
                .sum();
            assert!(
                (cov - exact.cov[i][j]).abs() < 1e-3 * exact.cov[i][i],
                "Σ[{i}][{j}] {cov} vs {}",
                exact.cov[i][j]
            );
        }
    }
}

/// Over 10,000 rows the dfdx graph's log joint runs in passes over the rows (the priors
/// once, the rows' terms summed): the Laplace start is still the exact posterior.
#[test]
fn laplace_over_many_rows_in_passes_is_the_exact_posterior() {
    let (data, x, y) = line_data_of(10_000);
    let exact = ravi::exact::linear_regression(&x, &y, 10.0, 0.5, false);
    let mut g = LineFullRank::new(&Cpu::seeded(0));
    let opts = FitOptions {
        fused: false,
        ..opts(Init::Laplace)
    };
    ravi::Trainer::new(&mut g, &data, &opts).unwrap().guide();
    let (loc, l) = g.entry0.loc_scale_tril(g.params());
    for i in 0..2 {
        let sd = exact.cov[i][i].sqrt();
        assert!(
            (f64::from(loc[i]) - exact.mean[i]).abs() < 1e-2 * sd,
            "{loc:?} vs {:?}",
            exact.mean
        );
        let var: f64 = (0..2).map(|k| f64::from(l[i * 2 + k]).powi(2)).sum();
        assert!(
            (var / exact.cov[i][i] - 1.0).abs() < 1e-2,
            "variance {var} vs {}",
            exact.cov[i][i]
        );
    }
}

#[test]
fn laplace_starts_mean_field_at_its_optimum() {
    let (data, x, y) = line_data();
    let exact = ravi::exact::linear_regression(&x, &y, 10.0, 0.5, false);
    let mut g = LineMeanField::new(&Cpu::seeded(0));
    started(&mut g, &data, Init::Laplace).unwrap();
    let (loc, scale) = g.entry0.loc_scale(g.params());
    for i in 0..2 {
        assert!((f64::from(loc[i]) - exact.mean[i]).abs() < 1e-3 * exact.mean_field_sd[i]);
        assert!((f64::from(scale[i]) / exact.mean_field_sd[i] - 1.0).abs() < 1e-3);
    }
}

#[test]
fn map_starts_at_the_mode_with_the_usual_scale() {
    let (data, x, y) = line_data();
    let exact = ravi::exact::linear_regression(&x, &y, 10.0, 0.5, false);
    let mut g = LineMeanField::new(&Cpu::seeded(0));
    let report = started(&mut g, &data, Init::Map).unwrap();
    assert!(report.log_joint_at_mode.is_some());
    let (loc, scale) = g.entry0.loc_scale(g.params());
    for i in 0..2 {
        assert!((f64::from(loc[i]) - exact.mean[i]).abs() < 1e-3 * exact.mean_field_sd[i]);
        assert!((scale[i] - ravi::init::INIT_SCALE).abs() < 1e-6);
    }
}

#[test]
fn prior_starts_at_the_medians_and_values_where_given() {
    let data = MediansData {
        y: Array::vector(vec![1.0, 2.0, 3.0]),
    };
    let mut g = MediansGuide::new(&Cpu::seeded(0));
    started(&mut g, &data, Init::Prior).unwrap();
    // the guide's coordinates: a itself, log s
    assert!((g.entry0.loc_scale(g.params()).0[0] - 3.0).abs() < 1e-6);
    assert!((g.entry1.loc_scale(g.params()).0[0] - 2.0f32.ln()).abs() < 1e-6);
    let mut g = MediansGuide::new(&Cpu::seeded(0));
    let given = Init::Values(vec![("s".into(), vec![0.25])]);
    started(&mut g, &data, given).unwrap();
    assert!((g.entry1.loc_scale(g.params()).0[0] - 0.25f32.ln()).abs() < 1e-6);
    assert_eq!(g.entry0.loc_scale(g.params()).0[0], 0.0);
}

#[test]
fn given_values_are_checked() {
    let data = MediansData {
        y: Array::vector(vec![1.0]),
    };
    let cases = [
        (
            vec![("nope".to_string(), vec![1.0f32])],
            "no latent site `nope`",
        ),
        (
            vec![("s".to_string(), vec![-1.0])],
            "not all on its support",
        ),
        (
            vec![("a".to_string(), vec![1.0, 2.0])],
            "has 1 values, 2 given",
        ),
    ];
    for (values, says) in cases {
        let mut g = MediansGuide::new(&Cpu::seeded(0));
        match started(&mut g, &data, Init::Values(values)) {
            Err(FitError::Options(m)) => assert!(m.contains(says), "{m}"),
            other => panic!("expected an options error, got {other:?}"),
        }
    }
}

fn eight_schools() -> CenteredData {
    CenteredData {
        y: Array::vector(vec![28., 8., -3., 7., -1., 1., 18., 12.]),
        s: Array::vector(vec![15., 10., 16., 11., 9., 11., 10., 18.]),
    }
}

#[test]
fn a_funnel_has_no_mode_and_says_which_site() {
    let mut g = CenteredGuide::new(&Cpu::seeded(0));
    match started(&mut g, &eight_schools(), Init::Laplace) {
        Err(FitError::Init(InitError::NoMode { site, towards, .. })) => {
            assert_eq!(site, "tau");
            assert_eq!(towards, "0");
        }
        other => panic!("expected no mode, got {other:?}"),
    }
    // the default falls back to the priors' medians, and says so
    let mut g = CenteredGuide::new(&Cpu::seeded(0));
    let report = started(&mut g, &eight_schools(), Init::Auto).unwrap();
    assert_eq!(report.method, Init::Prior);
    assert!(report.note.unwrap().contains("`tau`"));
}

#[test]
fn a_mode_search_needs_global_sites() {
    let data = LocalData {
        y: Array::vector(vec![0.5, -0.5]),
    };
    let mut g = LocalGuide::new(&Cpu::seeded(0));
    match started(&mut g, &data, Init::Laplace) {
        Err(FitError::Unsupported(m)) => assert!(m.contains("`z` is local"), "{m}"),
        other => panic!("expected unsupported, got {other:?}"),
    }
    // by default such a model starts where `Zero` does
    let mut g = LocalGuide::new(&Cpu::seeded(0));
    assert_eq!(
        started(&mut g, &data, Init::Auto).unwrap().method,
        Init::Zero
    );
}

#[test]
fn the_mode_search_moves_params_too() {
    // the joint mode of (w, shift): least squares with w's prior N(0, 10²) as a penalty
    let x: Vec<f64> = (0..20).map(|i| f64::from(i) * 0.3 - 2.0).collect();
    let y: Vec<f64> = x
        .iter()
        .map(|v| 0.8 * v + 5.0 + 0.1 * (v * 3.0).sin())
        .collect();
    let data = ShiftedData {
        x: Array::vector(x.iter().map(|&v| v as f32).collect()),
        y: Array::vector(y.iter().map(|&v| v as f32).collect()),
    };
    let (sxx, sx, sxy, sy, n) = (
        x.iter().map(|v| v * v).sum::<f64>() + 1.0 / 100.0,
        x.iter().sum::<f64>(),
        x.iter().zip(&y).map(|(a, b)| a * b).sum::<f64>(),
        y.iter().sum::<f64>(),
        x.len() as f64,
    );
    let det = sxx * n - sx * sx;
    let w = (n * sxy - sx * sy) / det;
    let shift = (sxx * sy - sx * sxy) / det;
    let mut g = ShiftedGuide::new(&Cpu::seeded(0));
    started(&mut g, &data, Init::Laplace).unwrap();
    let store = g.params();
    let held = store.get(store.find("shift").unwrap()).as_vec()[0];
    assert!((f64::from(held) - shift).abs() < 1e-3, "{held} vs {shift}");
    assert!((f64::from(g.entry0.loc_scale(store).0[0]) - w).abs() < 1e-3);
}

#[test]
fn a_fitted_guide_continues_where_it_is() {
    let (data, _, _) = line_data();
    let mut g = LineMeanField::new(&Cpu::seeded(0));
    let quiet = FitOptions {
        steps: 200,
        progress: false,
        warnings: false,
        ..FitOptions::default()
    };
    let first = ravi::fit(&mut g, &data, &quiet).unwrap();
    assert_eq!(first.init.method, Init::Laplace);
    let second = ravi::fit(&mut g, &data, &quiet).unwrap();
    assert_eq!(second.init.method, Init::Current);
}

/// A guide restarted where there is no Gaussian (here `Zero` after a Laplace start) drops
/// its frame on both paths: the family's own accessors and the host engine, which finds
/// frames by label, see the identity, and their gradients agree.
#[test]
fn a_restart_without_a_gaussian_drops_the_frame_everywhere() {
    let (data, _, _) = line_data();
    let make = || {
        let mut g = LineFullRank::new(&Cpu::seeded(5));
        started(&mut g, &data, Init::Laplace).unwrap();
        assert!(g.entry0.frame().is_some());
        started(&mut g, &data, Init::Zero).unwrap();
        g
    };
    let g = make();
    assert!(g.entry0.frame().is_none());
    let (loc, l) = g.entry0.loc_scale_tril(g.params());
    assert_eq!(loc, vec![0.0, 0.0]);
    for (k, v) in l.iter().enumerate() {
        let want = if k % 3 == 0 { 0.1 } else { 0.0 };
        assert!((v - want).abs() < 1e-6, "L = {l:?}");
    }
    let graph = ravi::elbo_gradient(&make(), &data, None, 4, Estimator::PathDerivative).unwrap();
    let (_, host) = ravi::fused::elbo_gradient(&g, &data, None, 4, Estimator::PathDerivative)
        .unwrap()
        .expect("the guide has a program for the engine");
    for (a, b) in graph.iter().zip(&host) {
        for (a, b) in a.iter().zip(b) {
            assert!(
                (a - b).abs() <= 1e-4 * (1.0 + a.abs()),
                "graph {a} vs engine {b}"
            );
        }
    }
}

/// Options are checked before the start moves the guide: a bad one is a
/// `FitError::Options` naming it, and the guide is left as it was.
#[test]
fn bad_options_are_named_before_the_guide_moves() {
    let (data, _, _) = line_data();
    let cases: Vec<(FitOptions, &str)> = vec![
        (
            FitOptions {
                diagnostic_draws: 50,
                ..opts(Init::Auto)
            },
            "diagnostic_draws 50",
        ),
        (
            FitOptions {
                frozen: vec!["w.loc".into()],
                ..opts(Init::Laplace)
            },
            "frozen",
        ),
        (
            FitOptions {
                frozen: vec!["nope".into()],
                ..opts(Init::Auto)
            },
            "no parameter `nope`",
        ),
        (
            FitOptions {
                schedule: Schedule::Constant(f32::NAN),
                ..opts(Init::Auto)
            },
            "schedule",
        ),
        (
            FitOptions {
                particles: 0,
                ..opts(Init::Auto)
            },
            "particles",
        ),
        (
            FitOptions {
                batch_size: Some(0),
                ..opts(Init::Auto)
            },
            "batch_size",
        ),
        (
            FitOptions {
                analytic_warmup: 1.5,
                ..opts(Init::Auto)
            },
            "analytic_warmup",
        ),
    ];
    for (options, says) in cases {
        let mut g = LineFullRank::new(&Cpu::seeded(0));
        let before: Vec<Vec<f32>> = g.params().iter().map(|(_, v)| v.as_vec()).collect();
        match ravi::fit(&mut g, &data, &options) {
            Err(FitError::Options(m)) => assert!(m.contains(says), "{says}: {m}"),
            other => panic!("{says}: expected an options error, got {other:?}"),
        }
        let after: Vec<Vec<f32>> = g.params().iter().map(|(_, v)| v.as_vec()).collect();
        assert_eq!(before, after, "{says}: the guide moved");
        assert!(!g.params().is_started());
    }
}
