//! Size parameters: one model serves data of any width. `model Reg<D>` is generic over D
//! (`Reg<const D: usize>`), so is its guide (`RegGuide<const D: usize, __D>`), and each
//! width is an instantiation: fitted here at D = 10 (the diabetes data) and D = 3 (three of
//! its columns) against the exact posterior, on the host engine and on the dfdx graph.

use ravi::prelude::*;
use ravi::{DataError, EngineChoice, FitError, FitReport};

model! {
    /// Bayesian linear regression with known noise, over data of any width `D`.
    model Reg<D>(x: [N, D], y: [N]) {
        w ~ Normal(0.0, 1.0) [D];
        b ~ Normal(0.0, 1.0);
        y ~ Normal(x @ w + b, 0.5);
    }

    /// Two sizes, one of them used as a number, and a tracked value.
    model Multi<D, K>(x: [N, D], y: [N, K]) {
        w ~ Normal(0.0, 1.0) [D, K];
        s ~ HalfNormal(1.0);
        track w_mean = sum(w) / (D * K);
        y ~ Normal(x @ w, s);
    }

    /// `Multi<3, 2>` written out.
    model Multi3x2(x: [N, 3], y: [N, 2]) {
        w ~ Normal(0.0, 1.0) [3, 2];
        s ~ HalfNormal(1.0);
        track w_mean = sum(w) / (3.0 * 2.0);
        y ~ Normal(x @ w, s);
    }
}
guide! { guide RegGuide for Reg { w ~ MeanField; b ~ MeanField; } }
guide! {
    /// A guide program whose parameters have the model's sizes.
    guide MultiGuide for Multi {
        param m [D, K] = 0.0;
        param sd [D, K] positive = 0.1;
        w ~ Normal(m, sd);
        s ~ MeanField;
    }
    guide Multi3x2Guide for Multi3x2 {
        param m [3, 2] = 0.0;
        param sd [3, 2] positive = 0.1;
        w ~ Normal(m, sd);
        s ~ MeanField;
    }
}

/// A `pub model` with a size parameter in another module, guided by its path.
mod models {
    use ravi::prelude::*;

    model! {
        pub model Wide<D>(x: [N, D], y: [N]) {
            w ~ Normal(0.0, 1.0) [D];
            b ~ Normal(0.0, 1.0);
            y ~ Normal(x @ w + b, 0.5);
        }
    }
}
guide! { guide WideGuide for models::Wide { (w, b) ~ FullRank; } }

/// The diabetes data, z-scored: 442 rows of 10 features.
fn diabetes() -> (Vec<Vec<f64>>, Vec<f64>) {
    let t =
        ravi::csv::Table::read(concat!(env!("CARGO_MANIFEST_DIR"), "/data/diabetes.csv")).unwrap();
    let mut x = t.columns_except(&["target"]);
    let mut y = t.column("target").unwrap();
    ravi::csv::zscore_columns(&mut x);
    ravi::csv::zscore(&mut y);
    (x, y)
}

fn data(x: &[Vec<f64>], y: &[f64]) -> RegData {
    RegData {
        x: Array::from_rows_f64(x).unwrap(),
        y: Array::vector(y.iter().map(|&v| v as f32).collect()),
    }
}

/// Fits `Reg<D>` (the width is the caller's: `fit::<3>(..)`) and returns the report and
/// the posterior means of `w` and `b`, in that order.
fn fit<const D: usize>(
    x: &[Vec<f64>],
    y: &[f64],
    fused: bool,
) -> Result<(FitReport, Vec<f32>), FitError> {
    let mut guide = RegGuide::<D>::new(&Cpu::seeded(3));
    let opts = FitOptions {
        steps: 6000,
        particles: 16,
        fused,
        progress: false,
        ..FitOptions::default()
    };
    let report = ravi::fit(&mut guide, &data(x, y), &opts)?;
    let post = Posterior::from_guide(&guide, 20_000);
    let (w, b) = (post.site("w").unwrap(), post.site("b").unwrap());
    assert_eq!(w.mean.len(), D);
    Ok((report, w.mean.iter().chain(&b.mean).copied().collect()))
}

/// The posterior means against the exact posterior, as `tests/linear_regression.rs` holds
/// them (the Monte Carlo error of 20k draws is ~2e-4).
fn assert_exact(x: &[Vec<f64>], y: &[f64], mean: &[f32]) {
    let exact = ravi::exact::linear_regression(x, y, 1.0, 0.5, true);
    assert_eq!(mean.len(), exact.mean.len());
    for (i, (&m, &e)) in mean.iter().zip(&exact.mean).enumerate() {
        assert!((f64::from(m) - e).abs() < 0.01, "mean[{i}] {m} vs {e}");
    }
}

/// Three columns of the data (bmi, bp, s5).
fn three_columns(x: &[Vec<f64>]) -> Vec<Vec<f64>> {
    x.iter().map(|r| vec![r[2], r[3], r[8]]).collect()
}

#[test]
fn one_model_fits_data_of_two_widths_on_the_host_engine() {
    let (x, y) = diabetes();
    let x3 = three_columns(&x);
    // What a program over data of several widths does: dispatch on the width.
    let run = |x: &[Vec<f64>]| match x[0].len() {
        3 => fit::<3>(x, &y, true),
        10 => fit::<10>(x, &y, true),
        w => panic!("no instantiation for width {w}"),
    };
    for x in [&x, &x3] {
        let (report, mean) = run(x).unwrap();
        assert_eq!(report.engine, EngineChoice::Host, "{}", report.engine);
        assert_exact(x, &y, &mean);
    }
}

#[test]
fn the_graph_runs_a_generic_model_too() {
    let (x, y) = diabetes();
    let x3 = three_columns(&x);
    let (report, mean) = fit::<3>(&x3, &y, false).unwrap();
    assert!(
        matches!(&report.engine, EngineChoice::Graph(why) if why.contains("fused")),
        "{}",
        report.engine
    );
    assert_exact(&x3, &y, &mean);
}

#[test]
fn the_host_program_has_the_sizes_of_its_instantiation() {
    let p3 = <RegGuide<3> as Guide<Cpu>>::host_program().unwrap();
    let p10 = <RegGuide<10> as Guide<Cpu>>::host_program().unwrap();
    // node 0 is the input x: [N, D]
    assert_eq!(
        p3.nodes[0].dims,
        [ravi::program::Dim::Rows, ravi::program::Dim::Fixed(3)]
    );
    assert_eq!(
        p10.nodes[0].dims,
        [ravi::program::Dim::Rows, ravi::program::Dim::Fixed(10)]
    );
    assert_eq!(<Reg<3> as Model>::NAME, "Reg<3>");
    assert_eq!(<Multi<4, 2> as Model>::NAME, "Multi<4, 2>");
    assert_eq!(<Reg<3> as Model>::latents()[0].shape, [3]);
    assert_eq!(<Multi<4, 2> as Model>::latents()[0].shape, [4, 2]);
}

#[test]
fn data_of_the_wrong_width_is_a_typed_error_naming_the_size() {
    let (x, y) = diabetes();
    let mut guide = RegGuide::<3>::new(&Cpu::seeded(0));
    let opts = FitOptions {
        steps: 1,
        progress: false,
        ..FitOptions::default()
    };
    let err = ravi::fit(&mut guide, &data(&x, &y), &opts).unwrap_err();
    assert!(
        matches!(
            &err,
            FitError::Data(DataError::Shape { input: "x", got, .. }) if got == &[442, 10]
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "input `x` of Reg<3> has shape [442, 10] but the model declares [N, D] with D = 3"
    );
}

/// Two sizes, a size as a number, a tracked value, and a guide program whose parameters
/// have the model's sizes: an instantiation fits as the same model written with literal
/// sizes does, step for step, on either engine.
#[test]
fn two_sizes_and_a_guide_program_fit_as_literal_sizes_do() {
    let (x, _) = diabetes();
    let x3 = three_columns(&x);
    // y's columns are x's first two plus noise: w is near [[1, 0], [0, 1], [0, 0]].
    let y2: Vec<Vec<f64>> = x3
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let t = i as f64;
            vec![r[0] + 0.3 * (7.3 * t).sin(), r[1] + 0.3 * (3.1 * t).cos()]
        })
        .collect();
    let (xa, ya) = (
        Array::from_rows_f64(&x3).unwrap(),
        Array::from_rows_f64(&y2).unwrap(),
    );
    let data = MultiData {
        x: xa.clone(),
        y: ya.clone(),
    };
    let literal = Multi3x2Data { x: xa, y: ya };
    for fused in [true, false] {
        let opts = FitOptions {
            steps: 300,
            fused,
            progress: false,
            ..FitOptions::default()
        };
        let mut guide = MultiGuide::<3, 2>::new(&Cpu::seeded(1));
        let report = ravi::fit(&mut guide, &data, &opts).unwrap();
        assert_eq!(
            matches!(report.engine, EngineChoice::Host),
            fused,
            "{}",
            report.engine
        );
        let mut lit_guide = Multi3x2Guide::new(&Cpu::seeded(1));
        let lit_report = ravi::fit(&mut lit_guide, &literal, &opts).unwrap();
        assert_eq!(report.engine, lit_report.engine);
        assert_eq!(report.elbo, lit_report.elbo, "fused: {fused}");
        let post = Posterior::from_guide(&guide, 1000);
        let w = &post.site("w").unwrap().mean;
        assert_eq!(w.len(), 6);
        assert!(
            (w[0] - 1.0).abs() < 0.2 && (w[3] - 1.0).abs() < 0.2,
            "{w:?}"
        );
    }
    // The wrong number of columns in y names K.
    let mut guide = MultiGuide::<3, 3>::new(&Cpu::seeded(1));
    let err = ravi::fit(&mut guide, &data, &FitOptions::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "input `y` of Multi<3, 3> has shape [442, 2] but the model declares [N, K] with K = 3"
    );
}

/// A guide written in another module than its generic model names it by a path, and is
/// generic as the model is: its `Model` is `models::Wide<D>`.
#[test]
fn a_generic_model_guided_by_its_path() {
    let (x, y) = diabetes();
    let x3 = three_columns(&x);
    let data = models::WideData {
        x: Array::from_rows_f64(&x3).unwrap(),
        y: Array::vector(y.iter().map(|&v| v as f32).collect()),
    };
    let mut guide: WideGuide<3> = WideGuide::new(&Cpu::seeded(2));
    let opts = FitOptions {
        steps: 3000,
        particles: 16,
        progress: false,
        ..FitOptions::default()
    };
    let report = ravi::fit(&mut guide, &data, &opts).unwrap();
    assert_eq!(report.engine, EngineChoice::Host, "{}", report.engine);
    assert_eq!(
        <<WideGuide<3> as Guide<Cpu>>::Model as Model>::NAME,
        "Wide<3>"
    );
    let post = Posterior::from_guide(&guide, 20_000);
    let (w, b) = (post.site("w").unwrap(), post.site("b").unwrap());
    let mean: Vec<f32> = w.mean.iter().chain(&b.mean).copied().collect();
    assert_exact(&x3, &y, &mean);
}
