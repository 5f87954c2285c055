//! Every log density against statrs (or, where statrs lacks the distribution, a formula
//! built from statrs densities) at 1000 random points, with tensor parameters and with
//! compile-time scalars; and every gradient against central finite differences of that
//! reference in f64.
//!
//! Tolerances: values are within 2e-4 relative (f32 has 7 digits; the densities here stay
//! below ~50 in magnitude and the lgamma series is good to 1e-6); gradients within 1e-2
//! relative plus 1e-3 absolute (f32 round-off in differences of large terms).

use dfdx::prelude::*;
use dfdx::tensor::OwnedTape;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use statrs::distribution::{self as sd, Continuous, Discrete};

use super::*;

type Taped = OwnedTape<f32, Cpu>;
type V = Tensor<(usize,), f32, Cpu, Taped>;
type A = Arg<(usize,), Cpu, Taped>;

struct Case {
    name: &'static str,
    draw: fn(&mut StdRng) -> (f64, Vec<f64>),
    reference: fn(f64, &[f64]) -> f64,
    log_prob: fn(V, Vec<A>) -> V,
    /// Is the density differentiable in x (continuous)?
    grad_x: bool,
}

fn u(r: &mut StdRng, lo: f64, hi: f64) -> f64 {
    r.gen_range(lo..hi)
}

fn take(mut a: Vec<A>) -> (A, A, A, A) {
    let mut next = || {
        if a.is_empty() {
            Arg::Scalar(0.0)
        } else {
            a.remove(0)
        }
    };
    (next(), next(), next(), next())
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "Normal",
            draw: |r| (u(r, -6.0, 6.0), vec![u(r, -3.0, 3.0), u(r, 0.2, 4.0)]),
            reference: |x, p| sd::Normal::new(p[0], p[1]).unwrap().ln_pdf(x),
            log_prob: |x, a| {
                let (l, s, _, _) = take(a);
                Normal::log_prob(x, l, s)
            },
            grad_x: true,
        },
        Case {
            name: "LogNormal",
            draw: |r| (u(r, 0.05, 8.0), vec![u(r, -1.0, 1.0), u(r, 0.2, 2.0)]),
            reference: |x, p| sd::LogNormal::new(p[0], p[1]).unwrap().ln_pdf(x),
            log_prob: |x, a| {
                let (l, s, _, _) = take(a);
                LogNormal::log_prob(x, l, s)
            },
            grad_x: true,
        },
        Case {
            name: "HalfNormal",
            draw: |r| (u(r, 0.0, 6.0), vec![u(r, 0.2, 4.0)]),
            reference: |x, p| 2f64.ln() + sd::Normal::new(0.0, p[0]).unwrap().ln_pdf(x),
            log_prob: |x, a| {
                let (s, _, _, _) = take(a);
                HalfNormal::log_prob(x, s)
            },
            grad_x: true,
        },
        Case {
            name: "HalfCauchy",
            draw: |r| (u(r, 0.0, 20.0), vec![u(r, 0.2, 6.0)]),
            reference: |x, p| 2f64.ln() + sd::Cauchy::new(0.0, p[0]).unwrap().ln_pdf(x),
            log_prob: |x, a| {
                let (s, _, _, _) = take(a);
                HalfCauchy::log_prob(x, s)
            },
            grad_x: true,
        },
        Case {
            name: "Cauchy",
            draw: |r| (u(r, -20.0, 20.0), vec![u(r, -3.0, 3.0), u(r, 0.2, 6.0)]),
            reference: |x, p| sd::Cauchy::new(p[0], p[1]).unwrap().ln_pdf(x),
            log_prob: |x, a| {
                let (l, s, _, _) = take(a);
                Cauchy::log_prob(x, l, s)
            },
            grad_x: true,
        },
        Case {
            name: "Laplace",
            draw: |r| (u(r, -8.0, 8.0), vec![u(r, -3.0, 3.0), u(r, 0.2, 4.0)]),
            reference: |x, p| sd::Laplace::new(p[0], p[1]).unwrap().ln_pdf(x),
            log_prob: |x, a| {
                let (l, s, _, _) = take(a);
                Laplace::log_prob(x, l, s)
            },
            grad_x: true,
        },
        Case {
            name: "StudentT",
            draw: |r| {
                (
                    u(r, -10.0, 10.0),
                    vec![u(r, 0.5, 30.0), u(r, -3.0, 3.0), u(r, 0.2, 4.0)],
                )
            },
            reference: |x, p| sd::StudentsT::new(p[1], p[2], p[0]).unwrap().ln_pdf(x),
            log_prob: |x, a| {
                let (df, l, s, _) = take(a);
                StudentT::log_prob(x, df, l, s)
            },
            grad_x: true,
        },
        Case {
            name: "Exponential",
            draw: |r| (u(r, 0.0, 10.0), vec![u(r, 0.1, 5.0)]),
            reference: |x, p| sd::Exp::new(p[0]).unwrap().ln_pdf(x),
            log_prob: |x, a| {
                let (l, _, _, _) = take(a);
                Exponential::log_prob(x, l)
            },
            grad_x: true,
        },
        Case {
            name: "Gamma",
            draw: |r| (u(r, 0.05, 10.0), vec![u(r, 0.3, 10.0), u(r, 0.2, 5.0)]),
            reference: |x, p| sd::Gamma::new(p[0], p[1]).unwrap().ln_pdf(x),
            log_prob: |x, a| {
                let (c, rt, _, _) = take(a);
                Gamma::log_prob(x, c, rt)
            },
            grad_x: true,
        },
        Case {
            name: "InverseGamma",
            draw: |r| (u(r, 0.1, 10.0), vec![u(r, 0.3, 10.0), u(r, 0.2, 5.0)]),
            reference: |x, p| sd::InverseGamma::new(p[0], p[1]).unwrap().ln_pdf(x),
            log_prob: |x, a| {
                let (c, s, _, _) = take(a);
                InverseGamma::log_prob(x, c, s)
            },
            grad_x: true,
        },
        Case {
            name: "Beta",
            draw: |r| (u(r, 0.02, 0.98), vec![u(r, 0.3, 10.0), u(r, 0.3, 10.0)]),
            reference: |x, p| sd::Beta::new(p[0], p[1]).unwrap().ln_pdf(x),
            log_prob: |x, a| {
                let (c1, c0, _, _) = take(a);
                Beta::log_prob(x, c1, c0)
            },
            grad_x: true,
        },
        Case {
            name: "Uniform",
            draw: |r| {
                let lo = u(r, -3.0, 1.0);
                let hi = lo + u(r, 0.5, 4.0);
                (u(r, lo + 1e-3, hi - 1e-3), vec![lo, hi])
            },
            reference: |x, p| sd::Uniform::new(p[0], p[1]).unwrap().ln_pdf(x),
            log_prob: |x, a| {
                let (lo, hi, _, _) = take(a);
                Uniform::log_prob(x, lo, hi)
            },
            grad_x: true,
        },
        Case {
            name: "ScaleMixtureNormal",
            draw: |r| {
                (
                    u(r, -4.0, 4.0),
                    vec![u(r, 0.05, 0.95), u(r, 0.5, 3.0), u(r, 0.01, 0.3)],
                )
            },
            reference: |x, p| {
                let a = sd::Normal::new(0.0, p[1]).unwrap().pdf(x);
                let b = sd::Normal::new(0.0, p[2]).unwrap().pdf(x);
                (p[0] * a + (1.0 - p[0]) * b).ln()
            },
            log_prob: |x, a| {
                let (m, s1, s2, _) = take(a);
                ScaleMixtureNormal::log_prob(x, m, s1, s2)
            },
            grad_x: true,
        },
        Case {
            name: "RelaxedBernoulli",
            draw: |r| (u(r, 0.01, 0.99), vec![u(r, 0.2, 3.0), u(r, -3.0, 3.0)]),
            // Maddison et al. (2017), eq. for the binary concrete density, written directly:
            // λ α y^(−λ−1) (1−y)^(−λ−1) / (α y^(−λ) + (1−y)^(−λ))², α = e^logits.
            reference: |y, p| {
                let (lam, a) = (p[0], p[1].exp());
                let num = lam * a * y.powf(-lam - 1.0) * (1.0 - y).powf(-lam - 1.0);
                let den = (a * y.powf(-lam) + (1.0 - y).powf(-lam)).powi(2);
                (num / den).ln()
            },
            log_prob: |x, a| {
                let (t, l, _, _) = take(a);
                RelaxedBernoulli::log_prob(x, t, l)
            },
            grad_x: true,
        },
        Case {
            name: "Bernoulli",
            draw: |r| (f64::from(u8::from(r.gen_bool(0.5))), vec![u(r, 0.02, 0.98)]),
            reference: |x, p| sd::Bernoulli::new(p[0]).unwrap().ln_pmf(x as u64),
            log_prob: |x, a| {
                let (p, _, _, _) = take(a);
                Bernoulli::log_prob(x, p)
            },
            grad_x: false,
        },
        Case {
            name: "Bernoulli(logits)",
            draw: |r| (f64::from(u8::from(r.gen_bool(0.5))), vec![u(r, -6.0, 6.0)]),
            reference: |x, p| {
                let prob = 1.0 / (1.0 + (-p[0]).exp());
                x * prob.ln() + (1.0 - x) * (1.0 - prob).ln()
            },
            log_prob: |x, a| {
                let (l, _, _, _) = take(a);
                Bernoulli::log_prob_logits(x, l)
            },
            grad_x: false,
        },
        Case {
            name: "Poisson",
            draw: |r| (f64::from(r.gen_range(0u32..40)), vec![u(r, 0.1, 30.0)]),
            reference: |x, p| sd::Poisson::new(p[0]).unwrap().ln_pmf(x as u64),
            log_prob: |x, a| {
                let (l, _, _, _) = take(a);
                Poisson::log_prob(x, l)
            },
            grad_x: false,
        },
    ]
}

#[test]
fn log_prob_and_gradients_match_the_reference() {
    let dev = Cpu::default();
    let n = 1000;
    for case in cases() {
        let mut rng = StdRng::seed_from_u64(17);
        let draws: Vec<(f64, Vec<f64>)> = (0..n).map(|_| (case.draw)(&mut rng)).collect();
        let k = draws[0].1.len();
        let x = dev.tensor_from_vec(draws.iter().map(|d| d.0 as f32).collect(), (n,));
        let params: Vec<Tensor<(usize,), f32, Cpu>> = (0..k)
            .map(|j| dev.tensor_from_vec(draws.iter().map(|d| d.1[j] as f32).collect(), (n,)))
            .collect();
        let args: Vec<A> = params
            .iter()
            .map(|p| Arg::Tensor(p.retaped::<Taped>()))
            .collect();
        let lp = (case.log_prob)(x.retaped::<Taped>(), args);
        let values = lp.as_vec();
        let grads = lp.sum::<(), _>().backward();
        let gx = case.grad_x.then(|| grads.get(&x).as_vec());
        let gp: Vec<Vec<f32>> = params.iter().map(|p| grads.get(p).as_vec()).collect();
        for (i, (xv, pv)) in draws.iter().enumerate() {
            // Parameters as f32 exactly as the tensors hold them.
            let xv = f64::from(*xv as f32);
            let pv: Vec<f64> = pv.iter().map(|&p| f64::from(p as f32)).collect();
            let want = (case.reference)(xv, &pv);
            let got = f64::from(values[i]);
            assert!(
                (got - want).abs() < 2e-4 * (1.0 + want.abs()),
                "{}: log p({xv}; {pv:?}) = {got}, reference {want}",
                case.name
            );
            let fd = |f: &dyn Fn(f64) -> f64, at: f64| {
                let h = 1e-5 * (1.0 + at.abs());
                (f(at + h) - f(at - h)) / (2.0 * h)
            };
            let close = |g: f32, w: f64| (f64::from(g) - w).abs() < 1e-2 * w.abs() + 1e-3;
            if let Some(gx) = &gx {
                let w = fd(&|v| (case.reference)(v, &pv), xv);
                assert!(
                    close(gx[i], w),
                    "{}: ∂/∂x at ({xv}; {pv:?}) = {}, finite differences {w}",
                    case.name,
                    gx[i]
                );
            }
            for j in 0..k {
                let w = fd(
                    &|v| {
                        let mut q = pv.clone();
                        q[j] = v;
                        (case.reference)(xv, &q)
                    },
                    pv[j],
                );
                assert!(
                    close(gp[j][i], w),
                    "{}: ∂/∂param{j} at ({xv}; {pv:?}) = {}, finite differences {w}",
                    case.name,
                    gp[j][i]
                );
            }
        }
        // Compile-time parameters: the first draw's, for every x.
        let scalars: Vec<A> = draws[0].1.iter().map(|&p| Arg::Scalar(p as f32)).collect();
        let pv: Vec<f64> = draws[0].1.iter().map(|&p| f64::from(p as f32)).collect();
        let lp = (case.log_prob)(x.retaped::<Taped>(), scalars).as_vec();
        for (i, (xv, _)) in draws.iter().enumerate() {
            let xv = f64::from(*xv as f32);
            let want = (case.reference)(xv, &pv);
            if want.is_finite() {
                assert!(
                    (f64::from(lp[i]) - want).abs() < 2e-4 * (1.0 + want.abs()),
                    "{} (scalars): {} vs {want}",
                    case.name,
                    lp[i]
                );
            } else {
                assert_eq!(
                    lp[i],
                    f32::NEG_INFINITY,
                    "{} (scalars) outside the support",
                    case.name
                );
            }
        }
    }
}
