//! Site log densities with their gradients, each in one pass over the site's elements.

use super::engine::{wrap, Engine};
use super::math::{self, sigmoid, softplus};
use crate::program::{Density, Site};

/// ½ log 2π, log 2, log π.
const HALF_LN_2PI: f32 = 0.918_938_5;
const LN_2: f32 = std::f32::consts::LN_2;
const LN_PI: f32 = 1.144_729_9;

/// Per element: log p and its partial derivatives in the value and each argument
/// (`constant` adds, per element, what `element` leaves out when a scale is one number).
fn element(density: Density, x: f32, a: [f32; 2]) -> (f32, [f32; 3]) {
    match density {
        Density::Normal => {
            let (m, s) = (a[0], a[1]);
            let z = (x - m) / s;
            let lp = -0.5 * z * z - math::ln(s) - HALF_LN_2PI;
            (lp, [-z / s, z / s, (z * z - 1.0) / s])
        }
        Density::Bernoulli => {
            let p = a[0];
            let lp = x * math::ln(p) + (1.0 - x) * math::ln(1.0 - p);
            // the value is data (a count); its partial is never read
            (lp, [0.0, x / p - (1.0 - x) / (1.0 - p), 0.0])
        }
        Density::BernoulliLogits => {
            let l = a[0];
            (x * l - softplus(l), [0.0, x - sigmoid(l), 0.0])
        }
        Density::Poisson => {
            let r = a[0];
            // log x! is added per site by the caller (it depends on data only)
            (x * math::ln(r) - r, [0.0, x / r - 1.0, 0.0])
        }
        Density::LogNormal => {
            let (m, s) = (a[0], a[1]);
            let lx = math::ln(x);
            let z = (lx - m) / s;
            let lp = -0.5 * z * z - lx - HALF_LN_2PI - math::ln(s);
            (lp, [(-z / s - 1.0) / x, z / s, (z * z - 1.0) / s])
        }
        Density::HalfNormal => {
            let s = a[0];
            let z = x / s;
            let lp = -0.5 * z * z + (LN_2 - HALF_LN_2PI) - math::ln(s);
            (lp, [-z / s, (z * z - 1.0) / s, 0.0])
        }
        Density::HalfCauchy => {
            let s = a[0];
            let z = x / s;
            let q = 1.0 + z * z;
            let lp = -math::ln(q) + (LN_2 - LN_PI) - math::ln(s);
            (
                lp,
                [-2.0 * z / (s * q), -1.0 / s + 2.0 * z * z / (s * q), 0.0],
            )
        }
        Density::Exponential => {
            let r = a[0];
            (math::ln(r) - r * x, [-r, 1.0 / r - x, 0.0])
        }
        Density::Cauchy => {
            let (m, s) = (a[0], a[1]);
            let z = (x - m) / s;
            let q = 1.0 + z * z;
            let lp = -math::ln(q) - LN_PI - math::ln(s);
            let dz = -2.0 * z / q; // d lp / dz
            (lp, [dz / s, -dz / s, -(dz * z + 1.0) / s])
        }
        Density::Laplace => {
            let (m, s) = (a[0], a[1]);
            let z = (x - m) / s;
            let sign = if z > 0.0 {
                1.0
            } else if z < 0.0 {
                -1.0
            } else {
                0.0
            };
            let lp = -z.abs() - LN_2 - math::ln(s);
            (lp, [-sign / s, sign / s, (z.abs() - 1.0) / s])
        }
        Density::Gamma => {
            // the concentration is never a latent: no partial in it
            let (k, r) = (a[0], a[1]);
            let lx = math::ln(x);
            let lp = k * math::ln(r) + (k - 1.0) * lx - r * x - ln_gamma(k);
            (lp, [(k - 1.0) / x - r, 0.0, k / r - x])
        }
        Density::InverseGamma => {
            let (k, s) = (a[0], a[1]);
            let lx = math::ln(x);
            let lp = k * math::ln(s) - (k + 1.0) * lx - s / x - ln_gamma(k);
            (lp, [-(k + 1.0) / x + s / (x * x), 0.0, k / s - 1.0 / x])
        }
        Density::Categorical => unreachable!("scored by `categorical`"),
    }
}

/// Scratch space for the partial derivatives of one site, kept between steps.
#[derive(Default)]
pub(crate) struct Partials {
    d: [Vec<f32>; 3],
}

/// Adds `weight` × log p of `site`, summed over its elements, to `lp` (one per particle),
/// and `weight` × its gradient to the value's and arguments' nodes that carry particles.
pub(crate) fn score(
    engine: &mut Engine,
    inputs: &[&[f32]],
    site: &Site,
    weight: f32,
    lp: &mut [f64],
    scratch: &mut Partials,
) {
    if site.density == Density::Categorical {
        categorical(engine, inputs, site, weight, lp);
        return;
    }
    let particles = engine.particles();
    let n = engine.numel(site.value);
    let mut nodes = [site.value, usize::MAX, usize::MAX];
    for (slot, &a) in nodes[1..].iter_mut().zip(site.args) {
        *slot = a;
    }
    let carries = |id: usize| id != usize::MAX && engine.has_particles(id);
    let wants: [bool; 3] = std::array::from_fn(|j| carries(nodes[j]));
    for (j, d) in scratch.d.iter_mut().enumerate() {
        if wants[j] {
            d.resize(particles * n, 0.0);
        }
    }
    if site.density == Density::Normal
        && wants == [true, false, false]
        && site
            .args
            .iter()
            .all(|&a| engine.numel(a) == 1 && !engine.has_particles(a))
    {
        // A prior with numbers for its arguments (a weight site's, say): one pass per
        // particle, its partials straight into the draws' gradient.
        let (m, sd) = (
            engine.value(inputs, site.args[0])[0],
            engine.value(inputs, site.args[1])[0],
        );
        let per_element = f64::from(-sd.ln() - HALF_LN_2PI) * n as f64;
        let (z, g) = engine.value_and_grad_mut(site.value);
        for (s, lp) in lp.iter_mut().enumerate().take(particles) {
            let at = s * n..(s + 1) * n;
            let zs = &z[at.clone()];
            let sum: f64 = super::par_chunks(&mut g[at], |o, g| {
                normal_prior(&zs[o..o + g.len()], m, 1.0 / sd, weight, g)
            })
            .into_iter()
            .sum();
            *lp += f64::from(weight) * (sum + per_element);
        }
        return;
    }
    let poisson_constant = if site.density == Density::Poisson {
        // Σ log x! over the data (the same for every particle)
        engine
            .value(inputs, site.value)
            .iter()
            .map(|&x| statrs::function::gamma::ln_gamma(f64::from(x) + 1.0))
            .sum::<f64>()
    } else {
        0.0
    };
    {
        let numel: [usize; 3] = std::array::from_fn(|j| {
            if nodes[j] == usize::MAX {
                1
            } else {
                engine.numel(nodes[j])
            }
        });
        let vals: [&[f32]; 3] = std::array::from_fn(|j| {
            if nodes[j] == usize::MAX {
                &[0.0][..]
            } else {
                engine.value(inputs, nodes[j])
            }
        });
        let particle: [bool; 3] =
            std::array::from_fn(|j| nodes[j] != usize::MAX && engine.has_particles(nodes[j]));
        for (s, lp) in lp.iter_mut().enumerate().take(particles) {
            let at = |j: usize| {
                let start = if particle[j] { s * numel[j] } else { 0 };
                &vals[j][start..start + numel[j]]
            };
            let (x, a0, a1) = (at(0), at(1), at(2));
            let d = &mut scratch.d;
            let regression = site.density == Density::Normal
                && a1.len() == 1
                && a0.len() == n
                && wants == [false, true, false];
            let sum = if regression {
                // Data around a location with one fixed scale (a regression's likelihood):
                // one vectorized pass for the density and the location's partials.
                let (sd, inv) = (a1[0], 1.0 / a1[0]);
                let per_element = -sd.ln() - HALF_LN_2PI;
                let d1 = &mut d[1][s * n..(s + 1) * n];
                normal_around(x, a0, inv, weight, d1) + f64::from(per_element) * n as f64
            } else if site.density == Density::Normal && a1.len() == 1 {
                // One scale: its log and reciprocal once, not per element.
                let (sd, inv) = (a1[0], 1.0 / a1[0]);
                let per_element = -sd.ln() - HALF_LN_2PI;
                let f = |x: f32, m: f32, _: f32| {
                    let z = (x - m) * inv;
                    (-0.5 * z * z, [-z * inv, z * inv, (z * z - 1.0) * inv])
                };
                pass(f, x, a0, a1, &wants, d, s, weight) + f64::from(per_element) * n as f64
            } else {
                let f = |x: f32, p0: f32, p1: f32| element(site.density, x, [p0, p1]);
                pass(f, x, a0, a1, &wants, d, s, weight)
            };
            *lp += f64::from(weight) * (sum - poisson_constant);
        }
    }
    // Into the nodes' gradients: a broadcast argument sums over the axes it repeats along.
    for j in 0..3 {
        if !wants[j] {
            continue;
        }
        let id = nodes[j];
        let na = engine.numel(id);
        let g = engine.grad_mut(id);
        for s in 0..particles {
            let d = &scratch.d[j][s * n..(s + 1) * n];
            let gs = &mut g[s * na..(s + 1) * na];
            if na == n {
                for (g, &d) in gs.iter_mut().zip(d) {
                    *g += d;
                }
            } else {
                for (i, &d) in d.iter().enumerate() {
                    gs[wrap(i, na, n)] += d;
                }
            }
        }
    }
}

/// Σ_i log p_i of one particle, writing `weight` × the wanted partials at row `s`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn pass(
    f: impl Fn(f32, f32, f32) -> (f32, [f32; 3]),
    x: &[f32],
    a0: &[f32],
    a1: &[f32],
    wants: &[bool; 3],
    d: &mut [Vec<f32>; 3],
    s: usize,
    weight: f32,
) -> f64 {
    let n = x.len();
    let (n0, n1) = (a0.len(), a1.len());
    let mut sum = 0.0f64;
    for i in 0..n {
        let (v, p) = f(x[i], a0[wrap(i, n0, n)], a1[wrap(i, n1, n)]);
        sum += f64::from(v);
        for j in 0..3 {
            if wants[j] {
                d[j][s * n + i] = p[j] * weight;
            }
        }
    }
    sum
}

super::dispatch!(normal_around, normal_around_avx2, normal_around_rows,
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

/// A categorical site: Σ_i logits[i, y_i] − log Σ_k exp logits[i, k], and its gradient in
/// the logits, weight · (onehot(y_i) − softmax(logits_i)).
fn categorical(engine: &mut Engine, inputs: &[&[f32]], site: &Site, weight: f32, lp: &mut [f64]) {
    let (y, logits) = (site.value, site.args[0]);
    let n = engine.numel(y);
    let k = engine.numel(logits) / n.max(1);
    let particles = engine.particles();
    let taped = engine.has_particles(logits);
    let mut grad = if taped {
        std::mem::take(engine.grad_mut_vec(logits))
    } else {
        Vec::new()
    };
    {
        let ys = engine.value(inputs, y);
        let ls = engine.value(inputs, logits);
        for (s, lp) in lp.iter_mut().enumerate().take(particles) {
            let start = if taped { s * n * k } else { 0 };
            let mut sum = 0.0f64;
            for (i, &yi) in ys.iter().enumerate() {
                let row = &ls[start + i * k..start + (i + 1) * k];
                let top = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
                let total: f32 = row.iter().map(|&v| math::exp(v - top)).sum();
                let lse = top + math::ln(total);
                let class = yi as usize;
                sum += f64::from(row.get(class).map_or(f32::NEG_INFINITY, |v| v - lse));
                if taped {
                    let g = &mut grad[start + i * k..start + (i + 1) * k];
                    for (c, (g, &v)) in g.iter_mut().zip(row).enumerate() {
                        let hit = if c == class { 1.0 } else { 0.0 };
                        *g += weight * (hit - math::exp(v - lse));
                    }
                }
            }
            *lp += f64::from(weight) * sum;
        }
    }
    if taped {
        *engine.grad_mut_vec(logits) = grad;
    }
}

super::dispatch!(normal_prior, normal_prior_avx2, normal_prior_rows,
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

/// log Γ(a) in f64, rounded to f32 (for a Gamma's normalizer; its concentration is data or
/// a number, so this costs nothing per step that matters).
fn ln_gamma(a: f32) -> f32 {
    statrs::function::gamma::ln_gamma(f64::from(a)) as f32
}
