//! The normal distribution N(loc, scale²).

use dfdx::shapes::Shape;
use ravi_backend::density::{elementwise, elementwise_with, ElementDensity, Moments, SitePass};
use ravi_backend::program::Density;
use ravi_backend::{Backend, Tape};

use super::arg::{add, mul, Arg, Value};
use super::consts::HALF_LN_2PI;
use super::{draw, noise, Distribution, Parametrization};

/// The normal distribution N(loc, scale²); support ℝ.
pub struct Normal;

impl Distribution for Normal {
    const NAME: &'static str = "Normal";
    const PARAMETRIZATIONS: &'static [Parametrization] = &[Parametrization {
        suffix: "",
        params: &["loc", "scale"],
        host: Some(Density::Elementwise(&Normal)),
        moments: Some(&Normal),
    }];
}

impl Normal {
    /// log N(x; loc, scale) = −½ ((x − loc)/scale)² − log scale − ½ log 2π, elementwise.
    pub fn log_prob<S: Shape, D: Backend, T: Tape<D>>(
        x: Value<S, D, T>,
        loc: Arg<S, D, T>,
        scale: Arg<S, D, T>,
    ) -> Value<S, D, T> {
        let centred = match loc {
            Arg::Scalar(c) => x - c,
            Arg::Tensor(l) => x - l,
        };
        match scale {
            Arg::Scalar(s) => (centred / s).square() * -0.5 - (s.ln() + HALF_LN_2PI),
            Arg::Tensor(s) => {
                let z = centred / s.retaped::<T>();
                z.square() * -0.5 - s.ln() - HALF_LN_2PI
            }
        }
    }

    /// loc + scale ε
    pub fn rsample<S: Shape, D: Backend, T: Tape<D>>(
        dev: &D,
        shape: S,
        loc: Arg<S, D, T>,
        scale: Arg<S, D, T>,
    ) -> Value<S, D, T> {
        add(mul(noise::normal(dev, shape), scale), loc)
    }
}

impl ElementDensity for Normal {
    fn name(&self) -> &'static str {
        "Normal"
    }

    fn element(&self, x: f32, a: [f32; 3]) -> (f32, [f32; 4]) {
        let (m, s) = (a[0], a[1]);
        let z = (x - m) / s;
        let lp = -0.5 * z * z - ravi_backend::math::ln(s) - HALF_LN_2PI;
        (lp, [-z / s, z / s, (z * z - 1.0) / s, 0.0])
    }

    /// One scale for the whole site (the usual likelihood) takes its log and reciprocal
    /// once; data around a location with one fixed scale (a regression's likelihood, only
    /// the location's partials wanted) is one vectorized loop.
    fn pass(&self, site: SitePass<'_>) -> f64 {
        let n = site.x.len();
        let scale = site.args[1];
        if scale.len() != 1 {
            return elementwise(self, site);
        }
        let (sd, inv) = (scale[0], 1.0 / scale[0]);
        let per_element = f64::from(-sd.ln() - HALF_LN_2PI) * n as f64;
        match site {
            SitePass {
                x,
                args: [loc, _, _],
                partials: [None, Some(d_loc), None, None],
                weight,
            } if loc.len() == n => normal_around(x, loc, inv, weight, d_loc) + per_element,
            site => one_scale(site, inv) + per_element,
        }
    }

    fn prior_pass(&self, z: &[f32], a: [f32; 3], weight: f32, g: &mut [f32]) -> f64 {
        let (m, sd) = (a[0], a[1]);
        let per_element = f64::from(-sd.ln() - HALF_LN_2PI) * z.len() as f64;
        normal_prior(z, m, 1.0 / sd, weight, g) + per_element
    }
}

/// A pass with one scale σ (its reciprocal `inv`), without the per-element constant.
#[inline(always)]
fn one_scale(site: SitePass<'_>, inv: f32) -> f64 {
    elementwise_with(site, |x, a| {
        let z = (x - a[0]) * inv;
        (-0.5 * z * z, [-z * inv, z * inv, (z * z - 1.0) * inv, 0.0])
    })
}

ravi_backend::simd_dispatch!(normal_around, normal_around_avx2, normal_around_rows,
    (x: &[f32], m: &[f32], inv: f32, weight: f32, d: &mut [f32]) -> f64);

/// Σ_i −½ z_i² with z = (x − m)/σ, writing weight · z_i/σ (the partial in m_i) to `d`.
#[inline(always)]
fn normal_around_rows(x: &[f32], m: &[f32], inv: f32, weight: f32, d: &mut [f32]) -> f64 {
    let k = inv * weight;
    let mut acc = [0.0f32; 8];
    let (cx, cm, cd) = (x.chunks_exact(8), m.chunks_exact(8), d.chunks_exact_mut(8));
    let (rx, rm) = (cx.remainder(), cm.remainder());
    let tail_start = x.len() - rx.len();
    for ((xc, mc), dc) in cx.zip(cm).zip(cd) {
        for l in 0..8 {
            let z = (xc[l] - mc[l]) * inv;
            acc[l] += z * z;
            dc[l] = z * k;
        }
    }
    let mut tail = 0.0f32;
    for (i, (&xv, &mv)) in rx.iter().zip(rm).enumerate() {
        let z = (xv - mv) * inv;
        tail += z * z;
        d[tail_start + i] = z * k;
    }
    -0.5 * f64::from(acc.iter().sum::<f32>() + tail)
}

ravi_backend::simd_dispatch!(normal_prior, normal_prior_avx2, normal_prior_rows,
    (z: &[f32], m: f32, inv: f32, weight: f32, g: &mut [f32]) -> f64);

/// Σ_i −½ ((z_i − m)/σ)², adding weight · ∂/∂z_i = −weight (z_i − m)/σ² to `g`.
#[inline(always)]
fn normal_prior_rows(z: &[f32], m: f32, inv: f32, weight: f32, g: &mut [f32]) -> f64 {
    let k = -inv * weight;
    let mut acc = [0.0f32; 8];
    let (cz, cg) = (z.chunks_exact(8), g.chunks_exact_mut(8));
    let rz = cz.remainder();
    let tail_start = z.len() - rz.len();
    for (zc, gc) in cz.zip(cg) {
        for l in 0..8 {
            let u = (zc[l] - m) * inv;
            acc[l] += u * u;
            gc[l] += u * k;
        }
    }
    let mut tail = 0.0f32;
    for (i, &zv) in rz.iter().enumerate() {
        let u = (zv - m) * inv;
        tail += u * u;
        g[tail_start + i] += u * k;
    }
    -0.5 * f64::from(acc.iter().sum::<f32>() + tail)
}

impl Moments for Normal {
    fn mean_variance(&self, a: [f64; 3]) -> (f64, f64) {
        (a[0], a[1] * a[1])
    }

    fn draw(&self, a: [f64; 3], rng: &mut dyn rand::RngCore) -> f64 {
        a[0] + a[1] * draw::standard_normal(rng)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dist::check::{self, take, u, Reference};
    use dfdx::prelude::*;
    use statrs::distribution::{self as sd, Continuous};
    use statrs::statistics::Distribution as _;

    const REFERENCE: Reference = Reference {
        draw: |r| (u(r, -6.0, 6.0), vec![u(r, -3.0, 3.0), u(r, 0.2, 4.0)]),
        log_density: |x, p| sd::Normal::new(p[0], p[1]).unwrap().ln_pdf(x),
        grad_x: true,
    };

    #[test]
    fn log_prob_matches_statrs() {
        check::graph_matches("Normal", &REFERENCE, |x, a| {
            let (l, s, _, _) = take(a);
            Normal::log_prob(x, l, s)
        });
    }

    #[test]
    fn host_density_matches_statrs() {
        check::host_matches("Normal", &REFERENCE, &Normal);
    }

    /// The regression pass (one scale, only the location's partials) against the elements.
    #[test]
    fn the_regression_pass_matches_the_elements() {
        let x: Vec<f32> = (0..37).map(|i| (i as f32 * 0.37).sin() * 3.0).collect();
        let m: Vec<f32> = (0..37).map(|i| (i as f32 * 0.11).cos()).collect();
        let mut d = vec![0.0f32; 37];
        let sum = Normal.pass(SitePass {
            x: &x,
            args: [&m, &[1.7], &[0.0]],
            partials: [None, Some(&mut d), None, None],
            weight: 0.5,
        });
        let mut want = 0.0f64;
        for i in 0..37 {
            let (lp, p) = Normal.element(x[i], [m[i], 1.7, 0.0]);
            want += f64::from(lp);
            assert!((d[i] - 0.5 * p[1]).abs() < 1e-5);
        }
        assert!((sum - want).abs() < 1e-4 * want.abs());
    }

    #[test]
    fn moments_match_statrs() {
        check::moments_match("Normal", &REFERENCE, &Normal, |p| {
            let d = sd::Normal::new(p[0], p[1]).unwrap();
            (d.mean().unwrap(), d.variance().unwrap())
        });
    }

    #[test]
    fn draws_have_the_moments() {
        let dev = Cpu::seed_from_u64(3);
        let x = Normal::rsample::<_, _, NoneTape>(
            &dev,
            (check::DRAWS,),
            Arg::Scalar(1.5),
            Arg::Scalar(2.0),
        )
        .as_vec();
        check::sample_moments("Normal", &x, Normal.mean_variance([1.5, 2.0, 0.0]), 3.0);
    }

    /// The pathwise gradient: d E[x]/d loc = 1 and d E[x]/d scale = E[ε] ≈ 0.
    #[test]
    fn gradients_flow_to_the_parameters() {
        let n = check::DRAWS;
        let dev = Cpu::seed_from_u64(4);
        let loc = dev.tensor_from_vec(vec![0.5f32; n], (n,));
        let scale = dev.tensor_from_vec(vec![2.0f32; n], (n,));
        let x = Normal::rsample(
            &dev,
            (n,),
            Arg::Tensor(loc.retaped::<check::Taped>()),
            Arg::Tensor(scale.retaped()),
        );
        let g = x.mean::<(), _>().backward();
        let (gl, gs) = (g.get(&loc).as_vec(), g.get(&scale).as_vec());
        let sum_l: f64 = gl.iter().map(|&v| f64::from(v)).sum();
        let sum_s: f64 = gs.iter().map(|&v| f64::from(v)).sum();
        assert!((sum_l - 1.0).abs() < 1e-3, "{sum_l}");
        assert!(sum_s.abs() < 5.0 / (n as f64).sqrt(), "{sum_s}");
    }

    #[test]
    fn draws_match_the_moments() {
        check::draws_match_moments("Normal", &Normal, &[[0.5, 2.0, 0.0], [-3.0, 0.1, 0.0]]);
    }
}
