//! Bad run-time input is a typed error naming the option or the failure, never an `Ok` with
//! a wrong answer: options checked before the first step, zero draws refused, a fit that
//! skipped every step or ended with a NaN parameter reported.

use ravi::prelude::*;
use ravi::{FitError, OnNonFinite, Schedule};

model! {
    model Line(x: [N], y: [N]) {
        a ~ Normal(0.0, 1.0);
        b ~ Normal(0.0, 1.0);
        y ~ Normal(a + b * x, 0.5);
    }
    /// Its log density is −∞ at every draw: log(0) as a location.
    model Broken(y: [N]) {
        mu ~ Normal(0.0, 1.0);
        y ~ Normal(log(mu - mu), 1.0);
    }
}
model! {
    model Waits(y: [N]) {
        rate ~ LogNormal(0.0, 1.0);
        y ~ Exponential(rate);
    }
    model Sizes(y: [N]) {
        s ~ LogNormal(0.0, 1.0);
        y ~ HalfNormal(s);
    }
    model Shares(y: [N]) {
        a ~ LogNormal(0.0, 1.0);
        y ~ Beta(a, 2.0);
    }
    model Grey(y: [N]) {
        l ~ Normal(0.0, 1.0);
        y ~ ContinuousBernoulli(logits = l);
    }
    model Bounded(y: [N]) {
        m ~ Normal(0.0, 1.0);
        y ~ Uniform(-1.0, 2.0);
        factor(keep, 0.0 * m);
    }
}
guide! {
    guide WaitsGuide for Waits { rate ~ MeanField; }
    guide SizesGuide for Sizes { s ~ MeanField; }
    guide SharesGuide for Shares { a ~ MeanField; }
    guide BoundedGuide for Bounded { m ~ MeanField; }
    guide GreyGuide for Grey { l ~ MeanField; }
}
model! {
    model Wide(y: [N]) {
        w ~ Normal(0.0, 1.0) [100000];
        y ~ Normal(sum(w), 1.0);
    }
}
guide! {
    guide WideFullRank for Wide { w ~ FullRank; }
}
guide! {
    guide LineGuide for Line { (a, b) ~ MeanField; }
    guide BrokenGuide for Broken { mu ~ MeanField; }
}

fn line() -> LineData {
    LineData {
        x: Array::vector(vec![-1.0, 0.0, 1.0, 2.0]),
        y: Array::vector(vec![-0.8, 0.3, 1.1, 2.2]),
    }
}

fn options_error(opts: FitOptions) -> String {
    let mut g = LineGuide::new(&Cpu::seeded(1));
    match ravi::fit(&mut g, &line(), &opts) {
        Err(FitError::Options(m)) => m,
        other => panic!("expected an options error, got {other:?}"),
    }
}

fn base() -> FitOptions {
    FitOptions {
        steps: 10,
        progress: false,
        ..FitOptions::default()
    }
}

#[test]
fn bad_options_are_named_before_the_first_step() {
    let cases: Vec<(FitOptions, &str)> = vec![
        (
            FitOptions {
                schedule: Schedule::Constant(-0.02),
                ..base()
            },
            "schedule",
        ),
        (
            FitOptions {
                schedule: Schedule::Constant(f32::NAN),
                ..base()
            },
            "schedule",
        ),
        (
            FitOptions {
                clip_norm: Some(-1.0),
                ..base()
            },
            "clip_norm",
        ),
        (
            FitOptions {
                clip_norm: Some(0.0),
                ..base()
            },
            "clip_norm",
        ),
        (
            FitOptions {
                clip_norm: Some(f32::NAN),
                ..base()
            },
            "clip_norm",
        ),
        (
            FitOptions {
                analytic_warmup: f32::NAN,
                ..base()
            },
            "analytic_warmup",
        ),
        (
            FitOptions {
                temperature: Schedule::Constant(0.0),
                ..base()
            },
            "temperature",
        ),
        (
            FitOptions {
                temperature: Schedule::Constant(-1.0),
                ..base()
            },
            "temperature",
        ),
        (
            FitOptions {
                temperature: Schedule::Constant(f32::NAN),
                ..base()
            },
            "temperature",
        ),
        (
            FitOptions {
                particles: 0,
                ..base()
            },
            "particles",
        ),
        (
            FitOptions {
                batch_size: Some(0),
                ..base()
            },
            "batch_size",
        ),
    ];
    for (opts, field) in cases {
        let m = options_error(opts);
        assert!(m.contains(field), "`{m}` should name {field}");
    }
    let mut decay = base();
    decay.adam.weight_decay = -1e6;
    assert!(options_error(decay).contains("weight_decay"));
}

#[test]
fn zero_draws_are_refused() {
    let g = LineGuide::new(&Cpu::seeded(1));
    assert!(
        matches!(ravi::elbo(&g, &line(), 0), Err(FitError::Options(m)) if m.contains("particles"))
    );
    assert!(
        matches!(ravi::predictive(&g, &line(), 0), Err(FitError::Options(m)) if m.contains("draws"))
    );
    assert!(matches!(
        ravi::elbo_gradient(&g, &line(), None, 0, ravi::Estimator::Standard),
        Err(FitError::Options(_))
    ));
}

#[test]
fn a_fit_that_skipped_every_step_fails() {
    let mut g = BrokenGuide::new(&Cpu::seeded(1));
    let opts = FitOptions {
        steps: 20,
        progress: false,
        warnings: false,
        init: ravi::Init::Zero,
        diagnostic_draws: 0,
        on_non_finite: OnNonFinite::Skip { max: 1_000_000 },
        ..FitOptions::default()
    };
    let data = BrokenData {
        y: Array::vector(vec![0.5, 1.0]),
    };
    match ravi::fit(&mut g, &data, &opts) {
        Err(FitError::AllSkipped { steps: 20 }) => {}
        other => panic!("expected every step skipped, got {other:?}"),
    }
}

/// The error a fit gives for observed data off its distribution's support, on both paths.
fn support_error<G: Guide<Cpu>>(
    make: &dyn Fn(&Cpu) -> G,
    data: &<G::Model as ravi::Model>::Data,
) -> (&'static str, usize, f32) {
    let mut out = None;
    for fused in [true, false] {
        let mut g = make(&Cpu::seeded(1));
        let opts = FitOptions { fused, ..base() };
        match ravi::fit(&mut g, data, &opts) {
            Err(FitError::Data(ravi::DataError::Support {
                site, index, value, ..
            })) => {
                let e = (site, index, value);
                assert!(out.is_none_or(|o| o == e));
                out = Some(e);
            }
            other => panic!("expected a support error, got {other:?}"),
        }
    }
    out.unwrap()
}

#[test]
fn observed_data_off_the_support_are_named() {
    let y = |v: Vec<f32>| Array::vector(v);
    assert_eq!(
        support_error(
            &WaitsGuide::new,
            &WaitsData {
                y: y(vec![0.5, 2.0, -1.0])
            }
        ),
        ("y", 2, -1.0)
    );
    assert_eq!(
        support_error(&SizesGuide::new, &SizesData { y: y(vec![-1.0]) }),
        ("y", 0, -1.0)
    );
    assert_eq!(
        support_error(
            &SharesGuide::new,
            &SharesData {
                y: y(vec![0.2, 1.0])
            }
        ),
        ("y", 1, 1.0)
    );
    assert_eq!(
        support_error(
            &BoundedGuide::new,
            &BoundedData {
                y: y(vec![0.0, 2.5])
            }
        ),
        ("y", 1, 2.5)
    );
    // a continuous Bernoulli takes 0 and 1 themselves, nothing beyond
    assert_eq!(
        support_error(
            &GreyGuide::new,
            &GreyData {
                y: y(vec![0.0, 1.0, 0.3, 1.01])
            }
        ),
        ("y", 3, 1.01)
    );
    let mut g = GreyGuide::new(&Cpu::seeded(1));
    let grey = GreyData {
        y: y(vec![0.0, 1.0, 0.3]),
    };
    ravi::fit(&mut g, &grey, &base()).unwrap();
    // inside: the fits run
    let mut g = WaitsGuide::new(&Cpu::seeded(1));
    ravi::fit(
        &mut g,
        &WaitsData {
            y: y(vec![0.5, 2.0, 1.0]),
        },
        &base(),
    )
    .unwrap();
}

/// A FullRank guide over 100,000 coordinates (a 40 GB factor, 160 GB in a fit) is refused
/// when the guide is built, before the allocation would abort the process, and every fit
/// or evaluation of it says so, naming the family, the size and the bytes.
#[test]
fn a_family_beyond_memory_is_a_typed_error() {
    let g = WideFullRank::new(&Cpu::seeded(1));
    let data = WideData {
        y: Array::vector(vec![0.5]),
    };
    let e = match ravi::fit(&mut WideFullRank::new(&Cpu::seeded(1)), &data, &base()) {
        Err(FitError::Memory(e)) => e,
        other => panic!("expected a memory error, got {other:?}"),
    };
    assert_eq!((e.family, e.size), ("FullRank", 100_000));
    assert_eq!(e.bytes, (100_000u64 * 100_000 + 200_000) * 16);
    assert!(e.to_string().contains("LowRank"));
    assert!(matches!(
        ravi::elbo(&g, &data, 10),
        Err(FitError::Memory(_))
    ));
}

#[test]
fn an_array_too_large_to_address_is_an_error() {
    assert!(matches!(
        Array::new(vec![0.0; 4], vec![1 << 63, 2]),
        Err(ravi::DataError::Length { .. })
    ));
}
