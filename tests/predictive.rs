//! The posterior predictive of an observed site is its distribution's own mean and variance
//! averaged over the guide: E[mean(θ)] and √(E[var(θ)] + Var[mean(θ)]). With the guide held
//! at a point (sd 10⁻⁴) the predictive is the distribution at that point, checked against
//! the closed forms; with a spread guide, the spread adds as the law of total variance says.

use ravi::prelude::*;

model! {
    model LogNormalObs(y: [N]) {
        w ~ Normal(0.0, 1.0);
        y ~ LogNormal(w, 0.5);
    }
    model GammaObs(y: [N]) {
        w ~ Normal(0.0, 1.0);
        y ~ Gamma(3.0, exp(w));
    }
    model StudentObs(y: [N]) {
        w ~ Normal(0.0, 1.0);
        y ~ StudentT(5.0, w, 2.0);
    }
    model ExponentialObs(y: [N]) {
        w ~ Normal(0.0, 1.0);
        y ~ Exponential(exp(w));
    }
    model BetaObs(y: [N]) {
        w ~ Normal(0.0, 1.0);
        y ~ Beta(exp(w), 2.0);
    }
    model NormalObs(y: [N]) {
        w ~ Normal(0.0, 1.0);
        y ~ Normal(w, 0.5);
    }
}

guide! {
    guide LogNormalGuide for LogNormalObs { w ~ MeanField; }
    guide GammaGuide for GammaObs { w ~ MeanField; }
    guide StudentGuide for StudentObs { w ~ MeanField; }
    guide ExponentialGuide for ExponentialObs { w ~ MeanField; }
    guide BetaGuide for BetaObs { w ~ MeanField; }
    guide NormalGuide for NormalObs { w ~ MeanField; }
}

/// The guide's w at `loc` with sd `sd` (the mean-field σ is softplus(ρ) plus its floor).
fn hold<G: Guide<Cpu>>(guide: &mut G, loc: f32, sd: f32) {
    let store = guide.params_mut();
    let (l, r) = (store.find("w.loc").unwrap(), store.find("w.rho").unwrap());
    store.set(l, &[loc]);
    let sigma = sd - ravi::guides::SCALE_FLOOR;
    store.set(r, &[(sigma.exp_m1()).ln()]);
}

/// The predictive mean and sd of the first value.
fn predicted<G: Guide<Cpu>>(guide: &G, data: &<G::Model as Model>::Data) -> (f64, f64) {
    match &ravi::predictive(guide, data, 400).unwrap()[0] {
        ravi::SitePredictive::Continuous { mean, sd, .. } => (mean[0], sd[0]),
        other => panic!("{other:?}"),
    }
}

fn close(got: (f64, f64), want: (f64, f64)) {
    let tol = |w: f64| 1e-3 * (1.0 + w.abs());
    assert!(
        (got.0 - want.0).abs() < tol(want.0) && (got.1 - want.1).abs() < tol(want.1),
        "predictive (mean, sd) {got:?}, closed form {want:?}"
    );
}

fn y() -> Array {
    Array::vector(vec![1.0; 3])
}

#[test]
fn each_distribution_predicts_its_own_moments() {
    let w = 0.3f64;
    let mut g = LogNormalGuide::new(&Cpu::seeded(0));
    hold(&mut g, w as f32, 1e-4);
    let s2 = 0.25f64;
    close(
        predicted(&g, &LogNormalObsData { y: y() }),
        (
            (w + s2 / 2.0).exp(),
            (s2.exp_m1() * (2.0 * w + s2).exp()).sqrt(),
        ),
    );
    let mut g = GammaGuide::new(&Cpu::seeded(0));
    hold(&mut g, w as f32, 1e-4);
    let rate = w.exp();
    close(
        predicted(&g, &GammaObsData { y: y() }),
        (3.0 / rate, 3f64.sqrt() / rate),
    );
    let mut g = StudentGuide::new(&Cpu::seeded(0));
    hold(&mut g, w as f32, 1e-4);
    close(
        predicted(&g, &StudentObsData { y: y() }),
        (w, (4.0 * 5.0 / 3.0f64).sqrt()),
    );
    let mut g = ExponentialGuide::new(&Cpu::seeded(0));
    hold(&mut g, w as f32, 1e-4);
    close(
        predicted(&g, &ExponentialObsData { y: y() }),
        (1.0 / rate, 1.0 / rate),
    );
    let mut g = BetaGuide::new(&Cpu::seeded(0));
    hold(&mut g, w as f32, 1e-4);
    let (a, b) = (w.exp(), 2.0);
    close(
        predicted(
            &g,
            &BetaObsData {
                y: Array::vector(vec![0.5; 3]),
            },
        ),
        (
            a / (a + b),
            (a * b / ((a + b).powi(2) * (a + b + 1.0))).sqrt(),
        ),
    );
}

/// A guide spread over w ~ N(0.3, 0.4²) under y ~ N(w, 0.5²): the predictive is
/// N(0.3, 0.5² + 0.4²), to the Monte Carlo error of 4000 draws.
#[test]
fn the_guide_spread_adds_by_total_variance() {
    let mut g = NormalGuide::new(&Cpu::seeded(1));
    hold(&mut g, 0.3, 0.4);
    let data = NormalObsData { y: y() };
    let ravi::SitePredictive::Continuous { mean, sd, .. } =
        &ravi::predictive(&g, &data, 4000).unwrap()[0]
    else {
        panic!("a continuous predictive")
    };
    let want_sd = (0.25f64 + 0.16).sqrt();
    // se of the mean 0.4/√4000 ≈ 0.006; of the spread's variance part ≈ 0.16·√(2/4000)
    assert!((mean[0] - 0.3).abs() < 0.03, "mean {}", mean[0]);
    assert!((sd[0] - want_sd).abs() < 0.02, "sd {} vs {want_sd}", sd[0]);
}

model! {
    /// A regression on x, with an observed y the predictive does not need.
    model Line(x: [N], y: [N]) {
        w ~ Normal(0.0, 1.0);
        y ~ Normal(w * x, 0.5);
    }
    model Classes(x: [N, 2], y: [N] in 0..3) {
        w ~ Normal(0.0, 1.0) [2, 3];
        y ~ Categorical(logits = x @ w);
    }
}

guide! {
    guide LineGuide for Line { w ~ MeanField; }
    guide ClassesGuide for Classes { w ~ MeanField; }
}

/// Draws of y ~ N(w x, 0.5²) with w ~ N(0.3, 0.4²) at x = 2: y ~ N(0.6, 0.25 + 0.64), so
/// the draws' mean, sd and 5% / 95% quantiles are those of that Normal, to their Monte
/// Carlo error; the observed input may be left out (`Array::none`).
#[test]
fn predictive_draws_are_the_sites_distribution_over_the_guide() {
    let mut g = LineGuide::new(&Cpu::seeded(2));
    hold(&mut g, 0.3, 0.4);
    let data = LineData {
        x: Array::vector(vec![2.0, -1.0]),
        y: Array::none(),
    };
    let draws = 20_000;
    let pred = ravi::predictive_draws(&g, &data, draws, 7).unwrap();
    let y = pred.site("y").expect("y has draws");
    assert_eq!((y.draws.len(), y.draws[0].len()), (draws, 2));
    let sd = (0.25f64 + 0.16 * 4.0).sqrt();
    let (mean, got_sd) = (y.mean()[0], y.sd()[0]);
    assert!(
        (mean - 0.6).abs() < 5.0 * sd / (draws as f64).sqrt(),
        "mean {mean}"
    );
    assert!((got_sd - sd).abs() < 0.03, "sd {got_sd} vs {sd}");
    for (q, z) in [(0.05, -1.644_853_6), (0.95, 1.644_853_6)] {
        let got = y.quantile(q)[0];
        let want = 0.6 + z * sd;
        assert!((got - want).abs() < 0.04, "{q} quantile {got} vs {want}");
    }
    // a level outside [0, 1] is taken at the nearest end, not past the draws
    assert_eq!(y.quantile(1.5), y.quantile(1.0));
    assert_eq!(y.quantile(-0.2), y.quantile(0.0));
    // the moments' predictive at the same inputs agrees
    let ravi::SitePredictive::Continuous { mean, .. } =
        &ravi::predictive(&g, &data, 4000).unwrap()[0]
    else {
        panic!("continuous")
    };
    assert!(
        (mean[1] - y.mean()[1]).abs() < 0.05,
        "{} vs {}",
        mean[1],
        y.mean()[1]
    );
}

/// `Array::none` stands only for observed inputs: for a covariate it is data of the wrong
/// shape, named.
#[test]
fn a_missing_covariate_is_named() {
    let g = LineGuide::new(&Cpu::seeded(2));
    let data = LineData {
        x: Array::none(),
        y: Array::vector(vec![1.0]),
    };
    match ravi::predictive_draws(&g, &data, 10, 0) {
        Err(ravi::FitError::Data(ravi::DataError::Shape { input: "x", .. })) => {}
        other => panic!("expected a shape error naming x, got {other:?}"),
    }
}

/// A Categorical's draws are classes whose frequencies are the predictive's class
/// probabilities (E over the guide of the softmax), to the Monte Carlo error.
#[test]
fn class_draws_follow_the_predictive_probabilities() {
    let g = ClassesGuide::new(&Cpu::seeded(3));
    let data = ClassesData {
        x: Array::new(vec![1.0, -0.5, 0.2, 2.0], vec![2, 2]).unwrap(),
        y: Array::none(),
    };
    let draws = 20_000;
    let pred = ravi::predictive_draws(&g, &data, draws, 11).unwrap();
    let y = pred.site("y").unwrap();
    let ravi::SitePredictive::Classes { probs, .. } =
        &ravi::predictive(&g, &data, 20_000).unwrap()[0]
    else {
        panic!("classes")
    };
    for (row, probs) in probs.iter().enumerate() {
        for (class, &p) in probs.iter().enumerate() {
            let freq =
                y.draws.iter().filter(|d| d[row] == class as f32).count() as f64 / draws as f64;
            assert!(
                (freq - p).abs() < 0.02,
                "row {row} class {class}: {freq} vs {p}"
            );
        }
    }
}

model! {
    /// A hierarchy with a positive scale: mu ~ N(1, 2²), s ~ HalfNormal(1),
    /// theta_j ~ N(mu, s²), y_j ~ N(theta_j, 1).
    model Hier(y: [3]) {
        mu ~ Normal(1.0, 2.0);
        s ~ HalfNormal(1.0);
        theta ~ Normal(mu, s) [3];
        y ~ Normal(theta, 1.0);
    }
    model WithParam(y: [N]) {
        param c;
        w ~ Normal(0.0, 1.0);
        y ~ Normal(w + c, 1.0);
    }
}

/// Ancestral draws from the prior: each site given the draws before it. Var θ = 4 + E s²
/// = 5, Var y = 6, E y = 1; s > 0; to the Monte Carlo error of 40,000 draws.
#[test]
fn the_prior_predictive_draws_each_site_given_the_ones_before() {
    let data = HierData { y: Array::none() };
    let draws = 40_000;
    let prior = ravi::prior_predictive::<Hier, _>(&Cpu::default(), &data, draws, 5).unwrap();
    let names: Vec<&str> = prior.sites.iter().map(|s| s.site).collect();
    assert_eq!(names, ["mu", "s", "theta", "y"]);
    let site = |n| prior.site(n).unwrap();
    assert!(site("s").draws.iter().all(|d| d[0] > 0.0));
    let se = |var: f64| 5.0 * (var / draws as f64).sqrt();
    for (name, var) in [("mu", 4.0), ("theta", 5.0), ("y", 6.0)] {
        let (m, sd) = (site(name).mean()[0], site(name).sd()[0]);
        assert!((m - 1.0).abs() < se(var), "{name}: mean {m}");
        assert!(
            (sd * sd - var).abs() < 0.05 * var,
            "{name}: variance {} vs {var}",
            sd * sd
        );
    }
    // the line's prior predictive at x = 2: y ~ N(0, 2² · 1 + 0.5²)
    let line = LineData {
        x: Array::vector(vec![2.0]),
        y: Array::none(),
    };
    let prior = ravi::prior_predictive::<Line, _>(&Cpu::default(), &line, draws, 6).unwrap();
    let sd = prior.site("y").unwrap().sd()[0];
    assert!((sd - 4.25f64.sqrt()).abs() < 0.05, "sd {sd}");
}

/// A `param` has no prior: the prior predictive says so, naming it.
#[test]
fn a_param_has_no_prior_predictive() {
    let data = WithParamData {
        y: Array::vector(vec![0.0]),
    };
    match ravi::prior_predictive::<WithParam, _>(&Cpu::default(), &data, 10, 0) {
        Err(ravi::FitError::Unsupported(m)) => assert!(m.contains("`c`"), "{m}"),
        other => panic!("expected an error naming c, got {other:?}"),
    }
}
