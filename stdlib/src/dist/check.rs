//! The checks every distribution's tests run, against an independent reference (statrs, or
//! a formula built from statrs densities), at 1000 random points with a fixed seed:
//!
//! - [`graph_matches`]: the dfdx `log_prob`, with tensor and with compile-time arguments,
//!   and its gradients against central finite differences of the reference in f64;
//! - [`host_matches`]: the host engine's density, value and partials the same way, and its
//!   passes (broadcast arguments, the prior pass) against its own elements;
//! - [`moments_match`]: mean and variance against the reference's.
//!
//! Tolerances: values within 2e-4 relative (f32 has 7 digits; the densities here stay
//! below ~50 in magnitude and the lgamma series is good to 1e-6); gradients within 1e-2
//! relative plus 1e-3 absolute (f32 round-off in differences of large terms); moments
//! within 1e-5 relative (both sides are closed forms, in f64).

use dfdx::prelude::*;
use dfdx::tensor::OwnedTape;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use ravi_backend::density::{ElementDensity, Moments, SitePass};

use super::Arg;

pub(crate) type Taped = OwnedTape<f32, Cpu>;
pub(crate) type V = Tensor<(usize,), f32, Cpu, Taped>;
pub(crate) type A = Arg<(usize,), Cpu, Taped>;

/// Points to check a density at, and the density to hold it to.
pub(crate) struct Reference {
    /// A value and the parameters (in the catalogue's order).
    pub draw: fn(&mut StdRng) -> (f64, Vec<f64>),
    /// log p(x | params) in f64.
    pub log_density: fn(f64, &[f64]) -> f64,
    /// Is the density differentiable in x (continuous)?
    pub grad_x: bool,
}

pub(crate) fn u(r: &mut StdRng, lo: f64, hi: f64) -> f64 {
    r.gen_range(lo..hi)
}

/// The arguments in order, `Scalar(0)` past the last.
pub(crate) fn take(mut a: Vec<A>) -> (A, A, A, A) {
    let mut next = || {
        if a.is_empty() {
            Arg::Scalar(0.0)
        } else {
            a.remove(0)
        }
    };
    (next(), next(), next(), next())
}

const POINTS: usize = 1000;

fn draws(r: &Reference) -> Vec<(f64, Vec<f64>)> {
    let mut rng = StdRng::seed_from_u64(17);
    (0..POINTS)
        .map(|_| {
            // the numbers as f32 holds them
            let (x, p) = (r.draw)(&mut rng);
            let f = |v: f64| f64::from(v as f32);
            (f(x), p.into_iter().map(f).collect())
        })
        .collect()
}

fn close_value(got: f64, want: f64) -> bool {
    (got - want).abs() < 2e-4 * (1.0 + want.abs())
}

fn close_gradient(got: f64, want: f64) -> bool {
    (got - want).abs() < 1e-2 * want.abs() + 1e-3
}

/// d/dv of `f` at `at`, by central differences.
fn derivative(f: &dyn Fn(f64) -> f64, at: f64) -> f64 {
    let h = 1e-5 * (1.0 + at.abs());
    (f(at + h) - f(at - h)) / (2.0 * h)
}

/// The partials of the reference at a point: [∂x (when differentiable), ∂params...].
fn reference_partials(r: &Reference, x: f64, p: &[f64]) -> Vec<Option<f64>> {
    let dx = r.grad_x.then(|| derivative(&|v| (r.log_density)(v, p), x));
    let dp = (0..p.len()).map(|j| {
        Some(derivative(
            &|v| {
                let mut q = p.to_vec();
                q[j] = v;
                (r.log_density)(x, &q)
            },
            p[j],
        ))
    });
    std::iter::once(dx).chain(dp).collect()
}

/// The dfdx log density against the reference: values and gradients with tensor
/// arguments, values with compile-time ones (and −∞ outside the support).
pub(crate) fn graph_matches(name: &str, r: &Reference, log_prob: fn(V, Vec<A>) -> V) {
    let dev = Cpu::default();
    let points = draws(r);
    let k = points[0].1.len();
    let x = dev.tensor_from_vec(points.iter().map(|d| d.0 as f32).collect(), (POINTS,));
    let params: Vec<Tensor<(usize,), f32, Cpu>> = (0..k)
        .map(|j| dev.tensor_from_vec(points.iter().map(|d| d.1[j] as f32).collect(), (POINTS,)))
        .collect();
    let args: Vec<A> = params
        .iter()
        .map(|p| Arg::Tensor(p.retaped::<Taped>()))
        .collect();
    let lp = log_prob(x.retaped::<Taped>(), args);
    let values = lp.as_vec();
    let grads = lp.sum::<(), _>().backward();
    let gx = r.grad_x.then(|| grads.get(&x).as_vec());
    let gp: Vec<Vec<f32>> = params.iter().map(|p| grads.get(p).as_vec()).collect();
    for (i, (xv, pv)) in points.iter().enumerate() {
        let want = (r.log_density)(*xv, pv);
        let got = f64::from(values[i]);
        assert!(
            close_value(got, want),
            "{name}: log p({xv}; {pv:?}) = {got}, reference {want}"
        );
        let partials = reference_partials(r, *xv, pv);
        let got: Vec<Option<f32>> = std::iter::once(gx.as_ref().map(|g| g[i]))
            .chain(gp.iter().map(|g| Some(g[i])))
            .collect();
        for (j, (g, w)) in got.iter().zip(&partials).enumerate() {
            if let (Some(g), Some(w)) = (g, w) {
                assert!(
                    close_gradient(f64::from(*g), *w),
                    "{name}: partial {j} at ({xv}; {pv:?}) = {g}, finite differences {w}"
                );
            }
        }
    }
    // Compile-time parameters: the first draw's, for every x.
    let scalars: Vec<A> = points[0].1.iter().map(|&p| Arg::Scalar(p as f32)).collect();
    let pv = &points[0].1;
    let lp = log_prob(x.retaped::<Taped>(), scalars).as_vec();
    for (i, (xv, _)) in points.iter().enumerate() {
        let want = (r.log_density)(*xv, pv);
        if want.is_finite() {
            assert!(
                close_value(f64::from(lp[i]), want),
                "{name} (scalars): {} vs {want}",
                lp[i]
            );
        } else {
            assert_eq!(
                lp[i],
                f32::NEG_INFINITY,
                "{name} (scalars) outside the support"
            );
        }
    }
}

/// The host engine's density against the reference, element by element (the site's data
/// term included), and its passes against its own elements: every argument per element,
/// each argument broadcast as one number, and the prior pass.
pub(crate) fn host_matches(name: &str, r: &Reference, host: &dyn ElementDensity) {
    let points = draws(r);
    let args_of =
        |p: &[f64]| -> [f32; 3] { std::array::from_fn(|j| p.get(j).map_or(0.0, |&v| v as f32)) };
    for (xv, pv) in &points {
        let (lp, d) = host.element(*xv as f32, args_of(pv));
        let got = f64::from(lp) + host.data_term(&[*xv as f32]);
        let want = (r.log_density)(*xv, pv);
        assert!(
            close_value(got, want),
            "{name} (host): log p({xv}; {pv:?}) = {got}, reference {want}"
        );
        for (j, w) in reference_partials(r, *xv, pv).into_iter().enumerate() {
            if let Some(w) = w {
                assert!(
                    close_gradient(f64::from(d[j]), w),
                    "{name} (host): partial {j} at ({xv}; {pv:?}) = {}, finite differences {w}",
                    d[j]
                );
            }
        }
    }
    let n = points.len();
    let k = points[0].1.len();
    let x: Vec<f32> = points.iter().map(|p| p.0 as f32).collect();
    let weight = 0.7f32;
    // (arguments, the partials wanted) → Σ log p and the partials, by the pass
    let run = |args: [Vec<f32>; 3], wanted: [bool; 4]| {
        let mut outs = [vec![0.0f32; n], vec![0.0; n], vec![0.0; n], vec![0.0; n]];
        let [o0, o1, o2, o3] = &mut outs;
        let mut partials: [Option<&mut [f32]>; 4] = [Some(o0), Some(o1), Some(o2), Some(o3)];
        for (j, p) in partials.iter_mut().enumerate() {
            if j > k || !wanted[j] {
                *p = None;
            }
        }
        let sum = host.pass(SitePass {
            x: &x,
            args: [&args[0], &args[1], &args[2]],
            partials,
            weight,
        });
        (sum, outs)
    };
    let column = |j: usize| -> Vec<f32> {
        if j < k {
            points.iter().map(|p| p.1[j] as f32).collect()
        } else {
            vec![0.0]
        }
    };
    let every = [true; 4];
    let full = [column(0), column(1), column(2)];
    let mut cases: Vec<([Vec<f32>; 3], [bool; 4])> = vec![(full.clone(), every)];
    for one in 0..k {
        // argument `one` a number (the first point's), the others per element
        let mut args = full.clone();
        args[one] = vec![points[0].1[one] as f32];
        cases.push((args, every));
    }
    // observed data: the arguments' partials alone (a density's fast pass may take it)
    cases.push((full, [false, true, true, true]));
    for (args, wanted) in cases {
        let (sum, outs) = run(args.clone(), wanted);
        let mut want = 0.0f64;
        for i in 0..n {
            let a: [f32; 3] =
                std::array::from_fn(|j| args[j][if args[j].len() == 1 { 0 } else { i }]);
            let (lp, d) = host.element(x[i], a);
            want += f64::from(lp);
            for j in 0..=k {
                if (j == 0 && !r.grad_x) || !wanted[j] {
                    continue;
                }
                assert!(
                    (outs[j][i] - weight * d[j]).abs() <= 1e-4 * (1.0 + d[j].abs()),
                    "{name} (pass): partial {j} at {i}: {} vs {}",
                    outs[j][i],
                    weight * d[j]
                );
            }
        }
        assert!(
            sum == want || (sum - want).abs() <= 1e-4 * (1.0 + want.abs()),
            "{name} (pass): {sum} vs {want}"
        );
    }
    if r.grad_x {
        let a = args_of(&points[0].1);
        let mut g = vec![0.25f32; n];
        let sum = host.prior_pass(&x, a, weight, &mut g);
        let mut want = 0.0f64;
        for i in 0..n {
            let (lp, d) = host.element(x[i], a);
            want += f64::from(lp);
            assert!(
                (g[i] - 0.25 - weight * d[0]).abs() <= 1e-4 * (1.0 + d[0].abs()),
                "{name} (prior pass) at {i}"
            );
        }
        assert!(
            sum == want || (sum - want).abs() <= 1e-4 * (1.0 + want.abs()),
            "{name} (prior pass): {sum} vs {want}"
        );
    }
}

/// Mean and variance against the reference's at the reference's parameter draws.
pub(crate) fn moments_match(
    name: &str,
    r: &Reference,
    moments: &dyn Moments,
    reference: fn(&[f64]) -> (f64, f64),
) {
    for (_, p) in draws(r) {
        let a: [f64; 3] = std::array::from_fn(|j| p.get(j).copied().unwrap_or(0.0));
        let (mean, var) = moments.mean_variance(a);
        let (want_mean, want_var) = reference(&p);
        let same = |got: f64, want: f64| {
            (got.is_nan() && want.is_nan())
                || got == want
                || (got - want).abs() <= 1e-5 * (1.0 + want.abs())
        };
        assert!(
            same(mean, want_mean),
            "{name}: mean at {p:?} {mean} vs {want_mean}"
        );
        assert!(
            same(var, want_var),
            "{name}: variance at {p:?} {var} vs {want_var}"
        );
    }
}

/// Draws for checking a sampler's moments.
pub(crate) const DRAWS: usize = 400_000;

/// The sample mean and variance of `v` within 5 standard errors of `(mean, var)` (the se of
/// a variance estimate uses the fourth moment, `kurtosis` × var²).
pub(crate) fn sample_moments(name: &str, v: &[f32], (mean, var): (f64, f64), kurtosis: f64) {
    let n = v.len() as f64;
    let m = v.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
    let s2 = v.iter().map(|&x| (f64::from(x) - m).powi(2)).sum::<f64>() / (n - 1.0);
    assert!(
        (m - mean).abs() < 5.0 * (var / n).sqrt(),
        "{name}: sample mean {m} vs {mean}"
    );
    let se = ((kurtosis - 1.0) * var * var / n).sqrt();
    assert!(
        (s2 - var).abs() < 5.0 * se,
        "{name}: sample variance {s2} vs {var}"
    );
}

/// The predictive's draws ([`Moments::draw`]) of a distribution at arguments `a`: their
/// sample mean within 5 standard errors of the distribution's mean, and their sample
/// variance within 5 standard errors of its variance (the se of a variance from the
/// sample's own fourth central moment), for each argument set (the moments themselves are
/// checked against statrs or quadrature). 200,000 draws from a fixed seed.
pub(crate) fn draws_match_moments(name: &str, moments: &dyn Moments, args: &[[f64; 3]]) {
    let mut rng = StdRng::seed_from_u64(23);
    for a in args {
        let (mean, var) = moments.mean_variance(*a);
        let v: Vec<f64> = (0..200_000).map(|_| moments.draw(*a, &mut rng)).collect();
        let n = v.len() as f64;
        let m = v.iter().sum::<f64>() / n;
        let central = |k: i32| v.iter().map(|x| (x - m).powi(k)).sum::<f64>() / n;
        let (s2, m4) = (central(2) * n / (n - 1.0), central(4));
        assert!(
            (m - mean).abs() < 5.0 * (var / n).sqrt() + 1e-12,
            "{name} at {a:?}: mean of the draws {m} vs {mean}"
        );
        let se = ((m4 - s2 * s2 * (n - 3.0) / (n - 1.0)) / n).max(0.0).sqrt();
        assert!(
            (s2 - var).abs() < 5.0 * se + 1e-12,
            "{name} at {a:?}: variance of the draws {s2} vs {var} (se {se})"
        );
    }
}

/// For distributions without a mean (Cauchy, half-Cauchy): the draws' quartiles within
/// 0.01 (in probability) of the given quantile function's.
pub(crate) fn draws_match_quartiles(
    name: &str,
    moments: &dyn Moments,
    a: [f64; 3],
    quantile: impl Fn(f64) -> f64,
    cdf: impl Fn(f64) -> f64,
) {
    let mut rng = StdRng::seed_from_u64(29);
    let mut v: Vec<f64> = (0..200_000).map(|_| moments.draw(a, &mut rng)).collect();
    v.sort_by(f64::total_cmp);
    for q in [0.25, 0.5, 0.75] {
        let got = v[(q * (v.len() - 1) as f64) as usize];
        assert!(
            (cdf(got) - q).abs() < 0.01,
            "{name} at {a:?}: the draws' {q} quantile {got} vs {}",
            quantile(q)
        );
    }
}

/// The q-quantile of `v`.
pub(crate) fn quantile(v: &[f32], q: f64) -> f64 {
    let mut s: Vec<f64> = v.iter().map(|&x| f64::from(x)).collect();
    s.sort_by(f64::total_cmp);
    s[((s.len() - 1) as f64 * q) as usize]
}

/// Mean and variance of the density exp(`log_density`(·, p)) on [lo, hi] (where it has all
/// but a negligible part of its mass), by composite Simpson's rule on 20,000 intervals.
pub(crate) fn quadrature_moments(
    log_density: fn(f64, &[f64]) -> f64,
    p: &[f64],
    lo: f64,
    hi: f64,
) -> (f64, f64) {
    let n = 20_000;
    let h = (hi - lo) / n as f64;
    let mut m = [0.0f64; 3];
    for i in 0..=n {
        let x = lo + i as f64 * h;
        let w = if i == 0 || i == n {
            1.0
        } else if i % 2 == 1 {
            4.0
        } else {
            2.0
        };
        let f = log_density(x, p).exp();
        for (k, m) in m.iter_mut().enumerate() {
            *m += w * f * x.powi(k as i32);
        }
    }
    let [z, s1, s2] = m.map(|v| v * h / 3.0);
    let mean = s1 / z;
    (mean, s2 / z - mean * mean)
}

/// The point the joint (whole-site) priors are checked at.
pub(crate) const JOINT_POINT: [f32; 3] = [0.4, -1.1, 0.9];

/// A joint prior's log density at [`JOINT_POINT`] (one particle).
pub(crate) fn joint_at(
    f: impl Fn(ravi_backend::Particles<Cpu, NoneTape>) -> ravi_backend::PerParticle<Cpu, NoneTape>,
) -> f64 {
    let dev = Cpu::default();
    f64::from(f(dev.tensor_from_vec(JOINT_POINT.to_vec(), (1usize, 3usize))).as_vec()[0])
}

/// ∫ g(v) dv over v > 0 on a log grid: v = eᵗ, dv = v dt.
pub(crate) fn integrate_log_v(g: impl Fn(f64) -> f64) -> f64 {
    let (lo, hi, n) = (-12.0f64, 8.0f64, 4000);
    let dt = (hi - lo) / n as f64;
    (0..=n)
        .map(|i| {
            let v = (lo + dt * i as f64).exp();
            let w = if i == 0 || i == n { 0.5 } else { 1.0 };
            w * g(v) * v * dt
        })
        .sum()
}
