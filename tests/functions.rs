//! Each elementwise function and each kind of index against finite differences: the ELBO
//! estimate at fixed draws (a seeded device) is a smooth function of the guide's
//! parameters, and with the standard estimator its gradient is that function's exact
//! derivative, so central differences of `ravi::elbo` check the gradient both paths
//! compute (the dfdx graph, and the host engine where it runs the model).

use ravi::prelude::*;
use ravi::{Estimator, Model};

model! {
    model Sqrt(y: [N]) {
        s ~ LogNormal(0.0, 0.5) [3];
        y ~ Normal(sum(sqrt(s)), 0.5);
    }
    model Abs(y: [N]) {
        a ~ Normal(0.0, 1.0) [3];
        y ~ Normal(sum(abs(a)), 0.5);
    }
    model Square(y: [N]) {
        a ~ Normal(0.0, 1.0) [3];
        y ~ Normal(sum(square(a)), 0.5);
    }
    model Log1p(y: [N]) {
        s ~ LogNormal(0.0, 0.5) [3];
        y ~ Normal(sum(log1p(s)), 0.5);
    }
    model Expm1(y: [N]) {
        a ~ Normal(0.0, 1.0) [3];
        y ~ Normal(sum(expm1(a)), 0.5);
    }
    model Pow(y: [N]) {
        s ~ LogNormal(0.0, 0.5) [3];
        y ~ Normal(sum(pow(s, 1.7)) + sum(pow(s, -0.5)), 0.5);
    }
    /// Rows of a latent picked by an integer input (repeated indices add gradients).
    model Gather(g: [N] in 0..3, y: [N]) {
        a ~ Normal(0.0, 1.0) [3, 2];
        y ~ Normal(sum(a[g], 1) * a[2][0], 0.5);
    }
    /// One element and a range.
    model Pick(y: [N]) {
        a ~ Normal(0.0, 1.0) [4];
        y ~ Normal(a[0] * sum(a[1..3]) + a[3], 0.5);
    }
    model Lse(y: [N]) {
        a ~ Normal(0.0, 1.0) [2, 3];
        y ~ Normal(sum(logsumexp(a, 0)) + logsumexp(a[1]), 0.5);
    }
    model Soft(y: [N]) {
        a ~ Normal(0.0, 1.0) [2, 3];
        y ~ Normal(sum(softmax(a, 0) * log_softmax(a)) + sum(softmax(a) * a), 0.5);
    }
    model Trans(x: [N, 2], y: [N]) {
        m ~ Normal(0.0, 1.0) [3, 2];
        v ~ Normal(0.0, 1.0) [3];
        y ~ Normal(x @ transpose(m) @ v, 0.5);
    }
    /// Latent vectors joined with each other and with data.
    model Joined(c: [2], y: [N]) {
        a ~ Normal(0.0, 1.0) [2];
        b ~ Normal(0.0, 1.0) [3];
        let j = concat(a, c, b);
        y ~ Normal(sum(j * j) * 0.1 + j[4] + j[0], 0.5);
    }
    /// Convex combination of positive values as a scale (the checks know it is positive).
    model Convex(y: [N]) {
        w ~ Beta(2.0, 2.0);
        s ~ LogNormal(0.0, 0.5) [2];
        y ~ Normal(0.0, w * s[0] + (1.0 - w) * s[1]);
    }
}

guide! {
    guide SqrtGuide for Sqrt { s ~ MeanField; }
    guide AbsGuide for Abs { a ~ MeanField; }
    guide SquareGuide for Square { a ~ MeanField; }
    guide Log1pGuide for Log1p { s ~ MeanField; }
    guide Expm1Guide for Expm1 { a ~ MeanField; }
    guide PowGuide for Pow { s ~ MeanField; }
    guide GatherGuide for Gather { a ~ MeanField; }
    guide PickGuide for Pick { a ~ MeanField; }
    guide ConvexGuide for Convex { (w, s) ~ MeanField; }
    guide LseGuide for Lse { a ~ MeanField; }
    guide SoftGuide for Soft { a ~ MeanField; }
    guide TransGuide for Trans { (m, v) ~ MeanField; }
    guide JoinedGuide for Joined { a ~ MeanField; b ~ MeanField; }
}

/// Guide parameters away from the start: locations spread around 0.4, scales small (so
/// that an `abs` or a `sqrt` is smooth at every draw).
fn place<G: Guide<Cpu>>(guide: &mut G) {
    let ids: Vec<ravi::ParamId> = guide.params().ids().collect();
    for (k, id) in ids.into_iter().enumerate() {
        let n = guide.params().get(id).as_vec().len();
        let v: Vec<f32> = (0..n)
            .map(|i| match k % 2 {
                0 => 0.4 + 0.3 * i as f32 - 0.2 * (i % 2) as f32,
                _ => -2.5,
            })
            .collect();
        guide.params_mut().set(id, &v);
    }
}

/// The gradient of the ELBO estimate at fixed draws, from the graph and (where it runs the
/// model: `on_engine`; a latent on (0, 1) is not yet covered) the engine, against central
/// differences of that estimate.
fn matches_finite_differences<G: Guide<Cpu>>(
    make: &dyn Fn(&Cpu) -> G,
    data: &<G::Model as Model>::Data,
    on_engine: bool,
) {
    const SEED: u64 = 11;
    const PARTICLES: usize = 3;
    let at = |shift: Option<(usize, usize, f32)>| {
        let mut g = make(&Cpu::seeded(SEED));
        place(&mut g);
        if let Some((p, i, h)) = shift {
            let id = g.params().ids().nth(p).expect("a parameter");
            let mut v = g.params().get(id).as_vec();
            v[i] += h;
            g.params_mut().set(id, &v);
        }
        g
    };
    let name = <G::Model as Model>::NAME;
    let graph = ravi::elbo_gradient(&at(None), data, None, PARTICLES, Estimator::Standard)
        .expect("a gradient");
    let engine = ravi::fused::elbo_gradient(&at(None), data, None, PARTICLES, Estimator::Standard)
        .expect("a gradient")
        .map(|(_, g)| g);
    assert_eq!(
        engine.is_some(),
        on_engine,
        "{name}: does the engine run it?"
    );
    let h = 1e-2f32;
    for (p, grad) in graph.iter().enumerate() {
        for (i, &g) in grad.iter().enumerate() {
            let value = |h: f32| ravi::elbo(&at(Some((p, i, h))), data, PARTICLES).unwrap();
            let fd = (value(h) - value(-h)) / (2.0 * f64::from(h));
            let tol = 2e-2 * fd.abs().max(1.0);
            assert!(
                (f64::from(g) - fd).abs() < tol,
                "{name}: parameter {p}[{i}]: graph {g} vs finite difference {fd}"
            );
            if let Some(engine) = &engine {
                let e = engine[p][i];
                assert!(
                    (f64::from(e) - fd).abs() < tol,
                    "{name}: parameter {p}[{i}]: engine {e} vs finite difference {fd}"
                );
            }
        }
    }
}

fn y(values: &[f32]) -> Array {
    Array::vector(values.to_vec())
}

#[test]
fn elementwise_functions_match_finite_differences() {
    let ys = [1.5, 2.5, 0.7];
    matches_finite_differences(&SqrtGuide::new, &SqrtData { y: y(&ys) }, true);
    matches_finite_differences(&AbsGuide::new, &AbsData { y: y(&ys) }, true);
    matches_finite_differences(&SquareGuide::new, &SquareData { y: y(&ys) }, true);
    matches_finite_differences(&Log1pGuide::new, &Log1pData { y: y(&ys) }, true);
    matches_finite_differences(&Expm1Guide::new, &Expm1Data { y: y(&ys) }, true);
    matches_finite_differences(&PowGuide::new, &PowData { y: y(&ys) }, true);
    matches_finite_differences(&ConvexGuide::new, &ConvexData { y: y(&ys) }, false);
}

#[test]
fn axis_and_shape_functions_match_finite_differences() {
    let ys = [1.5, 2.5, 0.7];
    matches_finite_differences(&LseGuide::new, &LseData { y: y(&ys) }, true);
    matches_finite_differences(&SoftGuide::new, &SoftData { y: y(&ys) }, true);
    let x = Array::new(vec![0.5, -1.0, 2.0, 0.3, 1.1, -0.4], vec![3, 2]).unwrap();
    matches_finite_differences(&TransGuide::new, &TransData { x, y: y(&ys) }, true);
    let c = y(&[0.3, -0.8]);
    matches_finite_differences(&JoinedGuide::new, &JoinedData { c, y: y(&ys) }, true);
}

#[test]
fn indexing_matches_finite_differences() {
    let data = GatherData {
        g: y(&[2.0, 0.0, 2.0, 1.0, 2.0]),
        y: y(&[0.5, -1.0, 2.0, 0.3, 1.1]),
    };
    matches_finite_differences(&GatherGuide::new, &data, true);
    matches_finite_differences(&PickGuide::new, &PickData { y: y(&[1.0, -0.5]) }, true);
}

/// `a[g]` equals the one-hot product it replaces: the same ELBO, draw for draw.
#[test]
fn a_gather_is_the_one_hot_product() {
    model! {
        model ByIndex(g: [N] in 0..3, y: [N]) {
            a ~ Normal(0.0, 1.0) [3];
            y ~ Normal(a[g], 0.5);
        }
        model ByOneHot(h: [N, 3], y: [N]) {
            a ~ Normal(0.0, 1.0) [3];
            y ~ Normal(h @ a, 0.5);
        }
    }
    guide! {
        guide ByIndexGuide for ByIndex { a ~ MeanField; }
        guide ByOneHotGuide for ByOneHot { a ~ MeanField; }
    }
    let g = [2usize, 0, 2, 1, 0, 0];
    let ys = y(&[0.5, -1.0, 2.0, 0.3, 1.1, -0.2]);
    let one_hot: Vec<f32> = g
        .iter()
        .flat_map(|&k| (0..3).map(move |j| f32::from(j == k)))
        .collect();
    let by_index = ByIndexData {
        g: y(&g.iter().map(|&k| k as f32).collect::<Vec<_>>()),
        y: ys.clone(),
    };
    let by_one_hot = ByOneHotData {
        h: Array::new(one_hot, vec![6, 3]).unwrap(),
        y: ys,
    };
    let mut a = ByIndexGuide::new(&Cpu::seeded(5));
    let mut b = ByOneHotGuide::new(&Cpu::seeded(5));
    place(&mut a);
    place(&mut b);
    let (ea, eb) = (
        ravi::elbo_draws(&a, &by_index, 50).unwrap(),
        ravi::elbo_draws(&b, &by_one_hot, 50).unwrap(),
    );
    for (u, v) in ea.iter().zip(&eb) {
        assert!((u - v).abs() < 1e-4 * v.abs().max(1.0), "{u} vs {v}");
    }
}
