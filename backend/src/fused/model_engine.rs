//! The model alone on the host engine: its log joint and the gradient in each latent site's
//! unconstrained values at draws made elsewhere.
//!
//! Why: a guide the engine does not run (an implicit generator, a flow, a low-rank family)
//! still draws global latents whose model — a net over thousands of rows, say — the engine
//! runs several times faster than the dfdx graph. The guide draws on the graph, the engine
//! scores the draws and returns ∂ log p/∂z, and the graph's surrogate Σ z · ∂ log p/∂z
//! carries that gradient into the guide's parameters (the Trainer's model-on-host step).
//! The start's search for the mode evaluates its points here too.

use super::density::{score, Partials};
use super::engine::Engine;
use super::rewrite::RewrittenNet;
use crate::data::{Array, InputSpec};
use crate::device::Backend;
use crate::program::{Op, Program};

/// The model's passes on the host, with buffers kept from one call to the next.
pub(crate) struct ModelEngine {
    program: &'static Program,
    engine: Engine,
    partials: Partials,
    /// Per input: its rows of the minibatch.
    gathered: Vec<Vec<f32>>,
    /// Per site, per particle: its term.
    site_lp: Vec<Vec<f64>>,
    /// Per program site: the latent index of its `Sample` value (`None` for observed sites
    /// and factors).
    latent_of: Vec<Option<usize>>,
    /// Per latent site: its `Sample` node and whether its value is eᵘ (`None` where the
    /// model never draws it).
    samples: Vec<Option<(usize, bool)>>,
}

/// The log joint of each particle and its gradient in each latent site's unconstrained
/// values (per site, particle-major).
pub(crate) struct Scored {
    /// log p(x, z) per particle: priors (weighted) and the observed terms times the scale.
    pub log_joint: Vec<f64>,
    /// ∂/∂u per latent site, particle-major (u = log x for a positive site).
    pub gradient: Vec<Vec<f32>>,
    /// Per rewritten site (in the order given): ∂/∂μ and ∂/∂σ.
    pub rewritten: Vec<RewriteGradient>,
}

/// A weight site whose net call is rewritten by its mean-field Gaussian (Flipout, the local
/// reparametrization), for one pass: the latent's index, the rewrite, the weights' means
/// and sds. Its `Sample` node still holds the family's draw, which only the site's prior
/// term reads.
pub(crate) struct SiteRewrite<'a> {
    pub latent: usize,
    pub kind: crate::model::Rewrite,
    pub loc: &'a [f32],
    pub scale: &'a [f32],
}

/// The gradients of the log joint (summed over the particles) in a rewritten site's means
/// and sds.
pub(crate) struct RewriteGradient {
    pub loc: Vec<f32>,
    pub scale: Vec<f32>,
}

/// A site whose term is not finite, by name, and the particle's log joint.
pub(crate) struct NotFinite {
    pub value: f64,
    pub culprit: String,
}

impl ModelEngine {
    /// The engine for the model of guide `G`: from the guide's program where the engine
    /// runs the guide too, else the model's own; `None` off the CPU or where the engine
    /// does not run the model.
    pub(crate) fn for_guide<G: crate::guide::Guide<D>, D: Backend>() -> Option<Self> {
        if std::any::TypeId::of::<D>() != std::any::TypeId::of::<crate::Cpu>() {
            return None;
        }
        let program = G::host_program().ok().or_else(G::host_model_program)?;
        Some(Self::new(program))
    }

    fn new(program: &'static Program) -> Self {
        let mut engine = Engine::new(program);
        engine.resize(1, 1);
        let latent_of = program
            .sites
            .iter()
            .map(|s| match program.nodes[s.value].op {
                Op::Sample(k) if !s.observed => Some(k),
                _ => None,
            })
            .collect();
        let latents = program
            .nodes
            .iter()
            .filter_map(|n| match n.op {
                Op::Sample(k) => Some(k + 1),
                _ => None,
            })
            .max()
            .unwrap_or(0);
        let samples = (0..latents)
            .map(|k| {
                let node = program.nodes.iter().position(|x| x.op == Op::Sample(k))?;
                let positive = program.sites.iter().any(|s| s.value == node && s.positive);
                Some((node, positive))
            })
            .collect();
        ModelEngine {
            program,
            engine,
            partials: Partials::default(),
            gathered: Vec::new(),
            site_lp: vec![Vec::new(); program.sites.len()],
            latent_of,
            samples,
        }
    }

    /// The log joint at `particles` draws, each latent site's unconstrained values in
    /// `latents[k]` (particle-major), on the rows `idx` of the data (all when `None`) with
    /// the observed terms times `scale` and latent site k's prior term (with its log-det)
    /// times `prior_weights[k]` (1 where missing); and its gradient in those values. The
    /// first site whose term is not finite where the log joint is not.
    pub(crate) fn score(
        &mut self,
        data: (&[InputSpec], &[&Array]),
        idx: Option<&[usize]>,
        latents: &[&[f32]],
        particles: usize,
        (scale, prior_weights, temperature): (f32, &[f32], f32),
        (rewrites, seed): (&[SiteRewrite], u64),
    ) -> Result<Scored, NotFinite> {
        self.engine.set_temperature(temperature);
        let latent_weights: Vec<f32> = (0..latents.len())
            .map(|k| prior_weights.get(k).copied().unwrap_or(1.0))
            .collect();
        let site_weights: Vec<f32> = self
            .program
            .sites
            .iter()
            .zip(&self.latent_of)
            .map(|(s, latent)| match latent {
                Some(k) => latent_weights.get(*k).copied().unwrap_or(1.0),
                None if s.observed => scale,
                None => 1.0,
            })
            .collect();
        let nets = self.install_rewrites(rewrites, seed);
        let ((specs, arrays), mut gathered) = (data, std::mem::take(&mut self.gathered));
        gather(&mut gathered, specs, arrays, idx);
        let rows = idx.map_or_else(|| rows_of(specs, arrays), <[usize]>::len);
        let inputs = batch_inputs(&gathered, specs, arrays, idx);
        let mut scored = self.score_weighted(
            (&inputs, rows),
            latents,
            particles,
            (&site_weights, &latent_weights),
        );
        self.gathered = gathered;
        scored.rewritten = nets
            .into_iter()
            .map(|nodes| {
                let mut g = RewriteGradient {
                    loc: Vec::new(),
                    scale: Vec::new(),
                };
                for node in nodes {
                    let net = self.engine.take_rewrite(node).expect("installed above");
                    add_into(&mut g.loc, &net.g_loc);
                    add_into(&mut g.scale, &net.g_scale);
                }
                g
            })
            .collect();
        match scored.log_joint.iter().position(|v| !v.is_finite()) {
            None => Ok(scored),
            Some(p) => Err(NotFinite {
                value: scored.log_joint[p],
                culprit: self.culprit(p).map_or_else(
                    || "the log-det of a positive site's eᵘ is not finite".to_string(),
                    |name| format!("the log density of site `{name}` is not finite"),
                ),
            }),
        }
    }

    /// [`ModelEngine::score`] with each program site's term times `site_weights` and each
    /// positive latent's log-det times `latent_weights`, finite or not.
    fn score_weighted(
        &mut self,
        (inputs, rows): (&[&[f32]], usize),
        latents: &[&[f32]],
        particles: usize,
        (site_weights, latent_weights): (&[f32], &[f32]),
    ) -> Scored {
        self.engine.resize(particles, rows);
        for (k, u) in latents.iter().enumerate() {
            if let Some((node, positive)) = self.sample_node(k) {
                let x = self.engine.sample_mut(node);
                for (x, &u) in x.iter_mut().zip(u.iter()) {
                    *x = if positive { super::math::exp(u) } else { u };
                }
            }
        }
        let mut log_joint = model_pass(
            (&mut self.engine, &mut self.partials, &mut self.site_lp),
            self.program,
            inputs,
            particles,
            (site_weights, true),
        );
        let mut gradient = Vec::with_capacity(latents.len());
        for (k, u) in latents.iter().enumerate() {
            let Some((node, positive)) = self.sample_node(k) else {
                gradient.push(vec![0.0; u.len()]);
                continue;
            };
            let (g, x) = (self.engine.grad(node), self.engine.value(&[], node));
            if !positive {
                gradient.push(g.to_vec());
                continue;
            }
            // x = eᵘ: d/du = x d/dx, and the weighted term gains w log |dx/du| = w u
            let w = latent_weights[k];
            gradient.push(g.iter().zip(x).map(|(&g, &x)| g * x + w).collect());
            let n = (u.len() / particles.max(1)).max(1);
            for (lp, u) in log_joint.iter_mut().zip(u.chunks_exact(n)) {
                *lp += f64::from(w) * u.iter().map(|&u| f64::from(u)).sum::<f64>();
            }
        }
        Scored {
            log_joint,
            gradient,
            rewritten: Vec::new(),
        }
    }

    /// Each rewrite installed on the net calls whose weights are its site's draw (each
    /// call's noise from its own seed); per rewrite, those calls' nodes.
    fn install_rewrites(&mut self, rewrites: &[SiteRewrite], seed: u64) -> Vec<Vec<usize>> {
        let program = self.program;
        rewrites
            .iter()
            .map(|r| {
                let Some((sample, _)) = self.sample_node(r.latent) else {
                    return Vec::new();
                };
                let calls = program.net_calls_on(sample);
                for &id in &calls {
                    let net = RewrittenNet::for_call(r.kind, r.loc, r.scale, seed, id);
                    self.engine.set_rewrite(id, net);
                }
                calls
            })
            .collect()
    }

    /// The model's log joint on all rows of `arrays` and its gradient in the unconstrained
    /// coordinates at each of `points` (per latent site in the model's order, its values
    /// concatenated; `sizes` their lengths): what the start's search for the mode
    /// evaluates. The rows are taken in passes of bounded size, summed in f64. For each
    /// point: the value, the gradient, and the first site whose log density is not finite.
    pub(crate) fn log_joint(
        &mut self,
        data: (&[InputSpec], &[&Array]),
        points: &[Vec<f64>],
        sizes: &[usize],
    ) -> Vec<(f64, Vec<f64>, Option<&'static str>)> {
        // the start scores the model at temperature 1, as its dfdx batches do
        self.engine.set_temperature(1.0);
        let p = points.len();
        let offsets: Vec<usize> = sizes
            .iter()
            .scan(0, |off, &n| {
                *off += n;
                Some(*off - n)
            })
            .collect();
        let latents: Vec<Vec<f32>> = sizes
            .iter()
            .zip(&offsets)
            .map(|(&n, &off)| {
                points
                    .iter()
                    .flat_map(|x| x[off..off + n].iter().map(|&v| v as f32))
                    .collect()
            })
            .collect();
        let views: Vec<&[f32]> = latents.iter().map(Vec::as_slice).collect();
        let mut out: Vec<(f64, Vec<f64>, Option<&'static str>)> = points
            .iter()
            .map(|x| (0.0, vec![0.0; x.len()], None))
            .collect();
        // The rows in passes where each row's terms are its own; the priors, and any term
        // without rows, in the first pass only.
        let rows = rows_of(data.0, data.1);
        let program = self.program;
        let per_pass = match program.splits_by_rows() {
            true => crate::passes::rows_per_pass(p, rows),
            false => rows,
        };
        let all_ones = vec![1.0f32; program.sites.len()];
        let rows_only: Vec<f32> = program
            .sites
            .iter()
            .map(|s| f32::from(u8::from(program.site_has_rows(s))))
            .collect();
        let (ones, zeros) = (vec![1.0f32; sizes.len()], vec![0.0f32; sizes.len()]);
        for (i, pass) in crate::passes::ranges(rows, per_pass)
            .into_iter()
            .enumerate()
        {
            let weights = match i {
                0 => (all_ones.as_slice(), ones.as_slice()),
                _ => (rows_only.as_slice(), zeros.as_slice()),
            };
            // a pass's rows are contiguous: each input's slice of them, not a copy
            let rows = pass.len();
            let inputs = row_range_inputs(data, pass);
            let scored = self.score_weighted((&inputs, rows), &views, p, weights);
            for (i, (value, grad, culprit)) in out.iter_mut().enumerate() {
                *value += scored.log_joint[i];
                for (k, (&n, &off)) in sizes.iter().zip(&offsets).enumerate() {
                    for j in 0..n {
                        grad[off + j] += f64::from(scored.gradient[k][i * n + j]);
                    }
                }
                if culprit.is_none() && !scored.log_joint[i].is_finite() {
                    *culprit = self.culprit(i);
                }
            }
        }
        out
    }

    /// The `Sample` node of latent site `k` and whether its value is eᵘ.
    fn sample_node(&self, k: usize) -> Option<(usize, bool)> {
        self.samples.get(k).copied().flatten()
    }

    /// The first site whose term is not finite for particle `p`.
    fn culprit(&self, p: usize) -> Option<&'static str> {
        self.program
            .sites
            .iter()
            .zip(&self.site_lp)
            .find(|(_, lp)| !lp[p].is_finite())
            .map(|(s, _)| s.name)
    }
}

/// The model's forward pass, every site's log density times its weight (`weights`, per
/// program site) into `site_lp`, and the backward pass when asked: the log joint per
/// particle, its gradient in each `Sample` node's values left in the engine.
pub(super) fn model_pass(
    (engine, partials, site_lp): (&mut Engine, &mut Partials, &mut [Vec<f64>]),
    program: &Program,
    inputs: &[&[f32]],
    particles: usize,
    (weights, backward): (&[f32], bool),
) -> Vec<f64> {
    engine.forward(inputs);
    engine.zero_grads();
    let mut lp = vec![0.0f64; particles];
    for ((site, site_lp), &weight) in program.sites.iter().zip(site_lp).zip(weights) {
        site_lp.clear();
        site_lp.resize(particles, 0.0);
        score(engine, inputs, site, weight, site_lp, partials);
        for (a, b) in lp.iter_mut().zip(site_lp.iter()) {
            *a += *b;
        }
    }
    if backward {
        engine.backward(inputs);
    }
    lp
}

/// The minibatch's rows `idx` of each input that has rows, gathered into `gathered` (one
/// buffer per input; nothing when `idx` is `None`).
pub(super) fn gather(
    gathered: &mut Vec<Vec<f32>>,
    specs: &[InputSpec],
    arrays: &[&Array],
    idx: Option<&[usize]>,
) {
    gathered.resize(arrays.len(), Vec::new());
    let Some(idx) = idx else { return };
    for ((spec, a), buf) in specs.iter().zip(arrays).zip(gathered.iter_mut()) {
        if spec.has_rows {
            let width = a.data().len() / a.shape()[0].max(1);
            buf.clear();
            for &r in idx {
                buf.extend_from_slice(&a.data()[r * width..(r + 1) * width]);
            }
        }
    }
}

/// Each input's values for the pass: its gathered rows where it has rows and `idx` picks
/// some, else the whole array.
pub(super) fn batch_inputs<'a>(
    gathered: &'a [Vec<f32>],
    specs: &[InputSpec],
    arrays: &[&'a Array],
    idx: Option<&[usize]>,
) -> Vec<&'a [f32]> {
    specs
        .iter()
        .zip(arrays)
        .zip(gathered)
        .map(|((spec, a), g)| {
            if idx.is_some() && spec.has_rows {
                g.as_slice()
            } else {
                a.data()
            }
        })
        .collect()
}

/// Each input's values for a pass over the contiguous rows `range`: its slice of them where
/// it has rows, else the whole array.
fn row_range_inputs<'a>(
    (specs, arrays): (&[InputSpec], &[&'a Array]),
    range: std::ops::Range<usize>,
) -> Vec<&'a [f32]> {
    specs
        .iter()
        .zip(arrays)
        .map(|(spec, a)| {
            let data = a.data();
            if !spec.has_rows {
                return data;
            }
            let width = data.len() / a.shape()[0].max(1);
            &data[range.start * width..range.end * width]
        })
        .collect()
}

/// The rows of the data (of its first input that has rows; 0 when none has).
pub(super) fn rows_of(specs: &[InputSpec], arrays: &[&Array]) -> usize {
    specs
        .iter()
        .zip(arrays)
        .find(|(s, _)| s.has_rows)
        .map_or(0, |(_, a)| a.shape()[0])
}

/// `acc += v`, elementwise (`acc` sized to `v` when empty).
fn add_into(acc: &mut Vec<f32>, v: &[f32]) {
    if acc.is_empty() {
        acc.resize(v.len(), 0.0);
    }
    for (a, b) in acc.iter_mut().zip(v) {
        *a += b;
    }
}
