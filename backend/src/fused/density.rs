//! Scoring a site on the engine: its values and arguments gathered from the nodes, the
//! distribution's own host density ([`crate::density`], implemented in the stdlib beside
//! its dfdx density) called per particle, and the partials it writes summed into the
//! nodes' gradients.

use super::engine::Engine;
use crate::density::{wrap, ClassDensity, ElementDensity, MixtureDensity, SitePass};
use crate::program::{Density, Site};

/// Scratch space for the partial derivatives of one site, kept between steps.
#[derive(Default)]
pub(crate) struct Partials {
    d: [Vec<f32>; 4],
}

/// A node slot a site does not use.
const NONE: usize = usize::MAX;

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
    match site.density {
        Density::Classes(d) => classes(engine, inputs, site, d, weight, lp),
        Density::Elementwise(d) => elementwise(engine, inputs, site, d, weight, lp, scratch),
        Density::Factor => factor(engine, site.value, weight, lp),
        Density::Mixture(d) => mixture(engine, inputs, site, d, weight, lp),
        // the encoder that draws the site scores it
        Density::Encoded => {}
    }
}

/// A mixture site: per particle and value, the mixture density of the component's
/// arguments along the components; partials into the logits' and arguments' nodes.
fn mixture(
    engine: &mut Engine,
    inputs: &[&[f32]],
    site: &Site,
    density: MixtureDensity,
    weight: f32,
    lp: &mut [f64],
) {
    let particles = engine.particles();
    let n = engine.numel(site.value);
    let k = engine.last_dim(site.args[0]);
    let slots = site.args;
    let numel: Vec<usize> = slots.iter().map(|&a| engine.numel(a)).collect();
    let taped: Vec<bool> = slots.iter().map(|&a| engine.has_particles(a)).collect();
    let mut grads: Vec<Vec<f32>> = slots
        .iter()
        .zip(&taped)
        .map(|(&a, &t)| {
            if t {
                vec![0.0; particles * engine.numel(a)]
            } else {
                Vec::new()
            }
        })
        .collect();
    let data_term = density.data_term(engine.value(inputs, site.value));
    let (mut logits, mut args) = (vec![0.0f32; k], vec![[0.0f32; 3]; k]);
    let (mut d_logits, mut d_args) = (vec![0.0f32; k], vec![[0.0f32; 3]; k]);
    let x = engine.value(inputs, site.value);
    let vals: Vec<&[f32]> = slots.iter().map(|&a| engine.value(inputs, a)).collect();
    for (s, lp) in lp.iter_mut().enumerate().take(particles) {
        let at = |j: usize, idx: usize| {
            let start = if taped[j] { s * numel[j] } else { 0 };
            start + wrap(idx, numel[j], n * k)
        };
        let mut sum = 0.0f64;
        for (i, &xi) in x.iter().enumerate().take(n) {
            for c in 0..k {
                let idx = i * k + c;
                logits[c] = vals[0][at(0, idx)];
                for j in 1..slots.len() {
                    args[c][j - 1] = vals[j][at(j, idx)];
                }
            }
            sum += f64::from(density.value_into(xi, &logits, &args, &mut d_logits, &mut d_args));
            for c in 0..k {
                let idx = i * k + c;
                if taped[0] {
                    grads[0][at(0, idx)] += weight * d_logits[c];
                }
                for j in 1..slots.len() {
                    if taped[j] {
                        grads[j][at(j, idx)] += weight * d_args[c][j - 1];
                    }
                }
            }
        }
        *lp += f64::from(weight) * (sum + data_term);
    }
    for (j, &a) in slots.iter().enumerate() {
        if taped[j] {
            for (g, d) in engine.grad_mut(a).iter_mut().zip(&grads[j]) {
                *g += d;
            }
        }
    }
}

/// A `factor`'s term: its value summed per particle; the gradient `weight` for each element.
fn factor(engine: &mut Engine, value: usize, weight: f32, lp: &mut [f64]) {
    let n = engine.numel(value);
    let particles = engine.particles();
    let (v, g) = engine.value_and_grad_mut(value);
    for (s, lp) in lp.iter_mut().enumerate().take(particles) {
        let sum: f64 = v[s * n..(s + 1) * n].iter().map(|&x| f64::from(x)).sum();
        *lp += f64::from(weight) * sum;
    }
    g.iter_mut().for_each(|g| *g += weight);
}

fn elementwise(
    engine: &mut Engine,
    inputs: &[&[f32]],
    site: &Site,
    density: &dyn ElementDensity,
    weight: f32,
    lp: &mut [f64],
    scratch: &mut Partials,
) {
    let particles = engine.particles();
    let n = engine.numel(site.value);
    let mut nodes = [site.value, NONE, NONE, NONE];
    for (slot, &a) in nodes[1..].iter_mut().zip(site.args) {
        *slot = a;
    }
    let carries = |id: usize| id != NONE && engine.has_particles(id);
    let wants: [bool; 4] = std::array::from_fn(|j| carries(nodes[j]));
    let numbers = site
        .args
        .iter()
        .all(|&a| engine.numel(a) == 1 && !engine.has_particles(a));
    if wants == [true, false, false, false] && numbers {
        prior(engine, inputs, site, density, weight, lp);
        return;
    }
    for (j, d) in scratch.d.iter_mut().enumerate() {
        if wants[j] {
            d.resize(particles * n, 0.0);
        }
    }
    let data_term = if wants[0] {
        0.0
    } else {
        density.data_term(engine.value(inputs, site.value))
    };
    {
        let numel: [usize; 4] = std::array::from_fn(|j| {
            if nodes[j] == NONE {
                1
            } else {
                engine.numel(nodes[j])
            }
        });
        let vals: [&[f32]; 4] = std::array::from_fn(|j| {
            if nodes[j] == NONE {
                &[0.0][..]
            } else {
                engine.value(inputs, nodes[j])
            }
        });
        let [d0, d1, d2, d3] = &mut scratch.d;
        let mut outs: [&mut Vec<f32>; 4] = [d0, d1, d2, d3];
        for (s, lp) in lp.iter_mut().enumerate().take(particles) {
            let at = |j: usize| {
                let start = if wants[j] { s * numel[j] } else { 0 };
                &vals[j][start..start + numel[j]]
            };
            let mut partials: [Option<&mut [f32]>; 4] = [None, None, None, None];
            for (j, (p, out)) in partials.iter_mut().zip(outs.iter_mut()).enumerate() {
                if wants[j] {
                    *p = Some(&mut out[s * n..(s + 1) * n]);
                }
            }
            let sum = pass_in_blocks(density, at(0), [at(1), at(2), at(3)], partials, weight);
            *lp += f64::from(weight) * (sum + data_term);
        }
    }
    // Into the nodes' gradients: a broadcast argument sums over the axes it repeats along.
    for j in 0..4 {
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

/// Values per block of a large site's pass.
const PASS_BLOCK: usize = 1 << 15;

/// `density.pass` over one particle's values, in blocks of [`PASS_BLOCK`] on threads where
/// the site is large and every argument is full-size or one number (a decoder's
/// likelihood over a batch of images); the blocks' sums added in order, the blocks fixed
/// by the size alone (the same bits on any number of cores).
fn pass_in_blocks(
    density: &dyn ElementDensity,
    x: &[f32],
    args: [&[f32]; 3],
    partials: [Option<&mut [f32]>; 4],
    weight: f32,
) -> f64 {
    let n = x.len();
    if n < 2 * PASS_BLOCK || args.iter().any(|a| a.len() != n && a.len() != 1) {
        return density.pass(SitePass {
            x,
            args,
            partials,
            weight,
        });
    }
    let blocks = n.div_ceil(PASS_BLOCK);
    let mut chunks = partials.map(|p| p.map(|p| p.chunks_mut(PASS_BLOCK)));
    let parts: Vec<(usize, [Option<&mut [f32]>; 4])> = (0..blocks)
        .map(|b| {
            let outs = std::array::from_fn(|j| chunks[j].as_mut().and_then(Iterator::next));
            (b * PASS_BLOCK, outs)
        })
        .collect();
    super::run_parts(parts, |(start, partials)| {
        let range = start..(start + PASS_BLOCK).min(n);
        let args = args.map(|a| if a.len() == n { &a[range.clone()] } else { a });
        density.pass(SitePass {
            x: &x[range.clone()],
            args,
            partials,
            weight,
        })
    })
    .into_iter()
    .sum()
}

/// A site whose arguments are all numbers and whose values carry the particles (a prior on
/// a net's weights): per particle, the density's prior pass on threads, its partials
/// straight into the draws' gradient.
fn prior(
    engine: &mut Engine,
    inputs: &[&[f32]],
    site: &Site,
    density: &dyn ElementDensity,
    weight: f32,
    lp: &mut [f64],
) {
    let particles = engine.particles();
    let n = engine.numel(site.value);
    let mut a = [0.0f32; 3];
    for (a, &node) in a.iter_mut().zip(site.args) {
        *a = engine.value(inputs, node)[0];
    }
    let (z, g) = engine.value_and_grad_mut(site.value);
    for (s, lp) in lp.iter_mut().enumerate().take(particles) {
        let at = s * n..(s + 1) * n;
        let zs = &z[at.clone()];
        let sum: f64 = super::par_chunks(&mut g[at], |o, g| {
            density.prior_pass(&zs[o..o + g.len()], a, weight, g)
        })
        .into_iter()
        .sum();
        *lp += f64::from(weight) * sum;
    }
}

/// A site of classes: per particle, the density's rows over the logits, their gradient
/// into the logits' node when it carries particles.
fn classes(
    engine: &mut Engine,
    inputs: &[&[f32]],
    site: &Site,
    density: &dyn ClassDensity,
    weight: f32,
    lp: &mut [f64],
) {
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
            let rows = start..start + n * k;
            let grad = taped.then(|| &mut grad[rows.clone()]);
            *lp += f64::from(weight) * density.rows(ys, &ls[rows], k, weight, grad);
        }
    }
    if taped {
        *engine.grad_mut_vec(logits) = grad;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// log p = −(x − a₀)² a₁, a stand-in density with partials in x and both arguments.
    struct Quadratic;

    impl ElementDensity for Quadratic {
        fn name(&self) -> &'static str {
            "Quadratic"
        }

        fn element(&self, x: f32, a: [f32; 3]) -> (f32, [f32; 4]) {
            let d = x - a[0];
            (
                -d * d * a[1],
                [-2.0 * d * a[1], 2.0 * d * a[1], -d * d, 0.0],
            )
        }
    }

    /// A large site's pass in blocks on threads gives the whole pass's sum (to rounding)
    /// and the same partials, with arguments full-size or one number.
    #[test]
    fn a_large_pass_in_blocks_is_the_whole_pass() {
        let n = 5 * PASS_BLOCK + 123;
        let wave = |k: f32| -> Vec<f32> { (0..n).map(|i| (i as f32 * k).sin()).collect() };
        let (x, loc) = (wave(0.37), wave(0.11));
        for scale in [vec![0.7f32], wave(0.05).iter().map(|v| v + 2.0).collect()] {
            let args = [&loc[..], &scale[..], &[0.0][..]];
            let mut whole = [vec![0.0f32; n], vec![0.0; n], vec![0.0; n]];
            let mut split = whole.clone();
            let [w0, w1, w2] = &mut whole;
            let sum = Quadratic.pass(SitePass {
                x: &x,
                args,
                partials: [Some(w0), Some(w1), Some(w2), None],
                weight: 0.5,
            });
            let [s0, s1, s2] = &mut split;
            let blocks = pass_in_blocks(
                &Quadratic,
                &x,
                args,
                [Some(s0), Some(s1), Some(s2), None],
                0.5,
            );
            assert!(
                (sum - blocks).abs() <= 1e-9 * sum.abs(),
                "{sum} vs {blocks}"
            );
            assert_eq!(whole, split);
        }
    }
}
