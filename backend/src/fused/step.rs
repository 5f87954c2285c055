//! One fit step on the host: the guide's draws, the model's passes, log q under the
//! estimator, the gradients of the guide's parameters in closed form, and Adam.

use super::density::Partials;
use super::encoder::{EncoderEntry, Noise, Terms};
use super::engine::Engine;
use super::gaussian::Gaussian;
use super::model_engine::{batch_inputs, gather, model_pass, rows_of};
use super::rewrite::RewrittenNet;
use crate::data::{Array, InputSpec};
use crate::device::Backend;
use crate::error::FitError;
use crate::estimator::Estimator;
use crate::family::HostGaussian;
use crate::frame::HostFrame;
use crate::normals::{draw_normals, draw_uniforms};
use crate::optim::{AdamConfig, AdamRule};
use crate::params::{ParamId, ParamStore};
use crate::program::{Op, Program, Rewrite};

/// One of an entry's sites: its `Sample` node, offset in the entry and elements, and
/// whether its value is eᵘ of the entry's draw u.
#[derive(Clone, Copy)]
struct Slot {
    node: usize,
    off: usize,
    n: usize,
    positive: bool,
    /// The site's index in the program (its term takes the log-det of eᵘ).
    site: usize,
}

/// A guide entry as the step reads it.
struct Layout {
    gaussian: Gaussian,
    sites: Vec<Slot>,
    /// One real site with no frame: drawn in place into its `Sample` node, read back from
    /// there.
    direct: bool,
    /// The frame the family works in ([`crate::frame`]): its draws u are taken to
    /// z = shift + S u for the model, the model's gradient pulled back by Sᵀ.
    frame: Option<HostFrame>,
    /// The entry's draws (in the family's coordinates) and the model's gradient in them,
    /// particle-major.
    z: Vec<f32>,
    gz: Vec<f32>,
    /// With a frame: the draws taken to the model's coordinates.
    framed: Vec<f32>,
    /// With a frame: log |det S|, and a buffer for gradients pulled back through it.
    frame_log_det: f64,
    pulled: Vec<f32>,
    /// A Flipout or local-reparametrization entry: its site's net calls run on the
    /// Gaussian's mean and sd (`rewrite.rs`); the draw feeds the prior term alone.
    rewrite: Option<(Rewrite, Vec<usize>)>,
}

/// The engine, host copies of the guide's parameters and Adam's moments.
pub(crate) struct Fused {
    program: &'static Program,
    engine: Engine,
    partials: Partials,
    layouts: Vec<Layout>,
    params: Vec<Vec<f32>>,
    grads: Vec<Vec<f32>>,
    m: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
    t: i32,
    frozen: Vec<bool>,
    cfg: AdamConfig,
    names: Vec<String>,
    /// Per entry: ε, particle-major.
    eps: Vec<Vec<f32>>,
    /// Per input: its rows of the minibatch.
    gathered: Vec<Vec<f32>>,
    /// Per site, per particle: its term.
    site_lp: Vec<Vec<f64>>,
    /// log p − log q of each particle of the last [`Fused::evaluate`].
    last_ratios: Vec<f64>,
    /// Evaluate values only (no backward pass; the gradients left are meaningless).
    values_only: bool,
    /// The seed of the rewritten net calls' noise for the next pass.
    rewrite_seed: u64,
    /// The model's `param`s held as points: (parameter index, `Sample` node).
    points: Vec<(usize, usize)>,
    /// Values the engine holds per data row and particle (nodes over the rows, net layers'
    /// outputs): what sizes a pass over many rows.
    values_per_row: usize,
    /// The guide's encoders of local sites, and each one's ε (particle-major).
    encoders: Vec<EncoderEntry>,
    encoder_eps: Vec<Vec<f32>>,
}

/// The host parameters and Adam's state, to step back to.
#[derive(Clone)]
pub(crate) struct State {
    params: Vec<Vec<f32>>,
    m: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
    t: i32,
}

/// What went wrong in a step whose ELBO is not finite: the culprit, worded as the dfdx
/// path words it.
pub(crate) struct NonFinite {
    pub value: f32,
    pub culprit: Option<String>,
}

impl Fused {
    /// The engine for `guide`: `Ok(Err(why))` where its steps take the dfdx graph (the
    /// guide has no program for the engine, or its parameters are not on the host), an
    /// error where the guide's program and its parameters disagree (a bug, not a fallback).
    pub(crate) fn for_guide<G: crate::guide::Guide<D>, D: Backend>(
        guide: &G,
        cfg: AdamConfig,
        frozen: &[bool],
    ) -> Result<Result<Self, String>, FitError> {
        if std::any::TypeId::of::<D>() != std::any::TypeId::of::<crate::Cpu>() {
            return Ok(Err("the device is not the CPU".into()));
        }
        let program = match G::host_program() {
            Ok(program) => program,
            Err(why) => return Ok(Err(why.into())),
        };
        let mismatch = |why: String| {
            FitError::EngineMismatch(format!(
                "the host engine's program for this guide and its parameters disagree: {why}"
            ))
        };
        let gaussians = guide
            .host_gaussians()
            .ok_or_else(|| mismatch("a family has no Gaussian for the engine".into()))?;
        let held = (guide.host_points(), guide.host_encoders());
        Fused::new(program, guide.params(), (&gaussians, held), cfg, frozen)
            .map(Ok)
            .map_err(mismatch)
    }

    /// The engine for `program` over the guide parameters in `store`, each entry's
    /// Gaussian's given by `gaussians`, each point's parameter by `points` and each
    /// encoder's weights by `encoders` (in the program's orders); why not, where they do
    /// not fit the program (a count or a size that differs).
    pub(crate) fn new<D: Backend>(
        program: &'static Program,
        store: &ParamStore<D>,
        (gaussians, (points, encoders)): (&[HostGaussian], (Vec<ParamId>, Vec<ParamId>)),
        cfg: AdamConfig,
        frozen: &[bool],
    ) -> Result<Self, String> {
        if gaussians.len() != program.entries.len() {
            return Err(format!(
                "{} Gaussian entries in the program, {} in the guide",
                program.entries.len(),
                gaussians.len()
            ));
        }
        let names: Vec<&str> = store.iter().map(|(n, _)| n).collect();
        let params: Vec<Vec<f32>> = store.iter().map(|(_, t)| t.as_vec()).collect();
        let mut engine = Engine::new(program);
        engine.resize(1, 1);
        let sample_node = |k: usize| {
            program
                .nodes
                .iter()
                .position(|n| n.op == Op::Sample(k))
                .ok_or_else(|| format!("latent site {k} is never drawn"))
        };
        // latent site k's `Sample` node and its index among the program's sites
        let drawn_site = |k: usize| {
            let node = sample_node(k)?;
            let site = program
                .sites
                .iter()
                .position(|s| s.value == node)
                .ok_or_else(|| format!("latent site {k} has no density"))?;
            Ok::<_, String>((node, site))
        };
        let size = |id: ParamId| params.get(id.0).map_or(0, Vec::len);
        let mut layouts = Vec::new();
        for (e, g) in program.entries.iter().zip(gaussians) {
            let mut sites = Vec::new();
            let mut dim = 0;
            for &k in e.sites {
                let (node, site) = drawn_site(k)?;
                let n = engine.numel(node);
                sites.push(Slot {
                    node,
                    off: dim,
                    n,
                    positive: program.sites[site].positive,
                    site,
                });
                dim += n;
            }
            if size(g.loc) != dim
                || size(g.rho) != dim
                || g.lower.is_some_and(|l| size(l) != dim * dim)
                || g.unit.is_some_and(|u| size(u) != dim)
                || g.frame.is_some_and(|f| f.dim() != dim)
            {
                return Err(format!(
                    "an entry over {dim} values has parameters `{}` of {} values",
                    names.get(g.loc.0).unwrap_or(&"?"),
                    size(g.loc)
                ));
            }
            let frame = g.frame.map(|f| f.host(store));
            // A mean-field entry's diagonal frame folds into its Gaussian; a full frame
            // (full rank) stays the step's: draws taken through it, gradients pulled back.
            let (diag_frame, frame) = match frame {
                Some(f) if !f.full && g.lower.is_none() => (Some((f.shift, f.scale)), None),
                other => (None, other),
            };
            // The analytic KL's Normal priors, per coordinate (in z: a folded frame leaves
            // the Gaussian in z; a mean-field family only ever takes a diagonal frame).
            let kl_prior: Option<Vec<(f32, f32)>> = e.normal_priors.map(|p| {
                p.iter()
                    .zip(&sites)
                    .flat_map(|(&prior, slot)| std::iter::repeat_n(prior, slot.n))
                    .collect()
            });
            let unit = g.unit.map(|id| params[id.0].clone());
            // a rewrite runs on one site's Gaussian, drawn in place, and its net calls
            let rewrite = match e.rewrite {
                None => None,
                Some(kind) => {
                    if sites.len() != 1 || sites[0].positive || frame.is_some() || g.lower.is_some()
                    {
                        return Err(format!(
                            "a {kind:?} entry is one real site's mean-field Gaussian, with no full frame"
                        ));
                    }
                    Some((kind, program.net_calls_on(sites[0].node)))
                }
            };
            let frame_log_det = frame.as_ref().map_or(0.0, |f| f64::from(f.log_det()));
            layouts.push(Layout {
                gaussian: Gaussian::new(g.loc.0, g.rho.0, g.lower.map(|l| l.0), dim, e.floor)
                    .with_kl_prior(kl_prior)
                    .with_unit(unit)
                    .with_diag_frame(diag_frame),
                direct: sites.len() == 1 && !sites[0].positive && frame.is_none(),
                frame,
                sites,
                z: Vec::new(),
                gz: Vec::new(),
                framed: Vec::new(),
                frame_log_det,
                pulled: vec![0.0; dim],
                rewrite,
            });
        }
        if points.len() != program.points.len() || encoders.len() != program.encoders.len() {
            return Err(format!(
                "{} points and {} encoders in the program, {} and {} in the guide",
                program.points.len(),
                program.encoders.len(),
                points.len(),
                encoders.len()
            ));
        }
        let points = program
            .points
            .iter()
            .zip(&points)
            .map(|(&k, &id)| {
                let node = sample_node(k)?;
                match size(id) == engine.numel(node) {
                    true => Ok((id.0, node)),
                    false => Err(format!(
                        "the point of latent site {k} has {} values, its site {}",
                        size(id),
                        engine.numel(node)
                    )),
                }
            })
            .collect::<Result<Vec<_>, String>>()?;
        // (the engine is sized for one row: a local site's numel is its values per row)
        let encoders = program
            .encoders
            .iter()
            .zip(&encoders)
            .map(|(e, &id)| {
                let (node, site) = drawn_site(e.site)?;
                let layers = program.nets[e.net];
                let at = (site, node, engine.numel(node));
                EncoderEntry::new(e, layers, at, (id.0, size(id)))
            })
            .collect::<Result<Vec<_>, String>>()?;
        let zeros: Vec<Vec<f32>> = params.iter().map(|p| vec![0.0; p.len()]).collect();
        let values_per_row = engine.values_per_row();
        Ok(Fused {
            program,
            engine,
            partials: Partials::default(),
            eps: vec![Vec::new(); layouts.len()],
            layouts,
            grads: zeros.clone(),
            m: zeros.clone(),
            v: zeros,
            params,
            t: 0,
            // a constant (a family's frame) is never stepped
            frozen: frozen
                .iter()
                .zip(store.ids())
                .map(|(&f, id)| f || store.is_constant(id))
                .collect(),
            cfg,
            names: names.iter().map(|n| n.to_string()).collect(),
            gathered: Vec::new(),
            site_lp: vec![Vec::new(); program.sites.len()],
            last_ratios: Vec::new(),
            values_only: false,
            rewrite_seed: 0,
            points,
            values_per_row,
            encoder_eps: vec![Vec::new(); encoders.len()],
            encoders,
        })
    }

    /// One step on the rows `idx` of the data (all when `None`), the noise drawn from `dev`'s
    /// generator: returns the ELBO estimate the step followed, after updating the host
    /// parameters (the guide's store gets them from [`Fused::write_back`]).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn step<D: Backend>(
        &mut self,
        dev: &D,
        data: (&[InputSpec], &[&Array]),
        idx: Option<&[usize]>,
        particles: usize,
        scale_and_temperature: (f32, f32),
        estimator: Estimator,
        (lr, clip): (f32, Option<f32>),
    ) -> Result<f32, NonFinite> {
        let value = self.evaluate(dev, data, idx, particles, scale_and_temperature, estimator)?;
        self.adam(lr, clip);
        Ok(value)
    }

    /// Values the engine holds per data row and particle.
    pub(crate) fn values_per_row(&self) -> usize {
        self.values_per_row
    }

    /// The host parameters, in store order.
    pub(crate) fn params(&self) -> &[Vec<f32>] {
        &self.params
    }

    /// Overwrites the host parameters (the non-frozen ones; same sizes).
    pub(crate) fn set_params(&mut self, values: &[Vec<f32>]) {
        for ((p, v), &frozen) in self.params.iter_mut().zip(values).zip(&self.frozen) {
            if !frozen {
                p.copy_from_slice(v);
            }
        }
    }

    /// A copy of the parameters and Adam's state.
    pub(crate) fn state(&self) -> State {
        State {
            params: self.params.clone(),
            m: self.m.clone(),
            v: self.v.clone(),
            t: self.t,
        }
    }

    /// Adam's step count and moments.
    pub(crate) fn optimizer_state(&self) -> crate::optim::OptimizerState {
        crate::optim::OptimizerState {
            t: self.t,
            m: self.m.clone(),
            v: self.v.clone(),
        }
    }

    /// Takes up Adam's step count and moments (sizes checked by the caller).
    pub(crate) fn set_optimizer_state(&mut self, state: &crate::optim::OptimizerState) {
        self.m.clone_from(&state.m);
        self.v.clone_from(&state.v);
        self.t = state.t;
    }

    /// Back to a copied state.
    pub(crate) fn restore(&mut self, state: &State) {
        self.params.clone_from(&state.params);
        self.m.clone_from(&state.m);
        self.v.clone_from(&state.v);
        self.t = state.t;
    }

    /// Writes the host parameters into `store` (the guide's), which steps leave as it was
    /// (copying every step would cost as much as the step for a large net).
    pub(crate) fn write_back<D: Backend>(&self, store: &mut ParamStore<D>) {
        for (i, p) in self.params.iter().enumerate() {
            if !self.frozen[i] {
                store.set(ParamId(i), p);
            }
        }
    }

    /// The gradient of −ELBO of the last [`Fused::evaluate`], per parameter in store order.
    pub(crate) fn loss_gradient(&self) -> &[Vec<f32>] {
        &self.grads
    }

    /// The ELBO estimate on the rows `idx` (all when `None`) with `particles` draws from
    /// `dev`'s generator, the observed and local terms scaled by `scale_and_temperature.0` at
    /// the relaxation temperature `scale_and_temperature.1`, and its gradient (see
    /// [`Fused::loss_gradient`]).
    pub(crate) fn evaluate<D: Backend>(
        &mut self,
        dev: &D,
        data: (&[InputSpec], &[&Array]),
        idx: Option<&[usize]>,
        particles: usize,
        scale_and_temperature: (f32, f32),
        estimator: Estimator,
    ) -> Result<f32, NonFinite> {
        // The draws, in the order and shapes the dfdx path makes them (large ones on
        // threads, seeded from the device's generator: see `draw_normals`).
        for (l, eps) in self.layouts.iter().zip(&mut self.eps) {
            let dim = l.gaussian.dim;
            eps.resize(particles * dim, 0.0);
            // A rewritten entry under the closed-form KL: its draw feeds only the prior term,
            // which log q's log p(z) cancels whatever z is; the net call draws its own noise.
            // z = μ, no draw (the graph draws one; the two paths agree in distribution).
            if l.rewrite.is_some()
                && estimator == Estimator::AnalyticKl
                && l.gaussian.has_closed_form_kl()
            {
                eps.fill(0.0);
                continue;
            }
            draw_normals(dev, eps, (particles, dim));
        }
        // the encoders' ε after the entries', as the generated guide draws them
        let rows = idx.map_or_else(|| rows_of(data.0, data.1), <[usize]>::len);
        for (e, eps) in self.encoders.iter().zip(&mut self.encoder_eps) {
            let shape = (particles, rows * e.per_row);
            eps.resize(shape.0 * shape.1, 0.0);
            match e.noise() {
                Noise::Normal => draw_normals(dev, eps, shape),
                Noise::Uniform => draw_uniforms(dev, eps, shape),
            }
        }
        if self.layouts.iter().any(|l| l.rewrite.is_some()) {
            self.rewrite_seed = crate::normals::seed_from(dev);
        }
        self.evaluate_drawn(data, idx, particles, scale_and_temperature, estimator)
    }

    /// [`Fused::evaluate`] once the draws are in `eps` (not generic over the device, so it
    /// is compiled, and optimised, once, here).
    fn evaluate_drawn(
        &mut self,
        (specs, arrays): (&[InputSpec], &[&Array]),
        idx: Option<&[usize]>,
        particles: usize,
        (scale, temperature): (f32, f32),
        estimator: Estimator,
    ) -> Result<f32, NonFinite> {
        // The minibatch's rows, gathered where the input has rows.
        gather(&mut self.gathered, specs, arrays, idx);
        let rows = idx.map_or_else(|| rows_of(specs, arrays), <[usize]>::len);
        let inputs = batch_inputs(&self.gathered, specs, arrays, idx);
        self.engine.resize(particles, rows);
        // Each entry's draw, into its sites' `Sample` nodes (in place for one site).
        for (l, eps) in self.layouts.iter_mut().zip(&self.eps) {
            let dim = l.gaussian.dim;
            if l.direct {
                let node = l.sites[0].node;
                l.gaussian
                    .draw(&self.params, eps, self.engine.sample_mut(node));
                continue;
            }
            l.z.resize(particles * dim, 0.0);
            l.gaussian.draw(&self.params, eps, &mut l.z);
            if let Some(frame) = &l.frame {
                l.framed.resize(particles * dim, 0.0);
                for (u, z) in l.z.chunks_exact(dim).zip(l.framed.chunks_exact_mut(dim)) {
                    frame.apply(u, z);
                }
            }
            let model_z = if l.frame.is_some() { &l.framed } else { &l.z };
            for slot in &l.sites {
                let (x, n) = (self.engine.sample_mut(slot.node), slot.n);
                for s in 0..particles {
                    let u = &model_z[s * dim + slot.off..s * dim + slot.off + n];
                    let x = &mut x[s * n..(s + 1) * n];
                    if slot.positive {
                        for (x, &u) in x.iter_mut().zip(u) {
                            *x = super::math::exp(u);
                        }
                    } else {
                        x.copy_from_slice(u);
                    }
                }
            }
        }
        // the points, once per particle (one particle: the parameter's own buffer lent to
        // the node for the pass, not a copy of a decoder's weights); the encoders' draws
        let lend_points = particles == 1;
        for &(p, node) in &self.points {
            if lend_points {
                self.engine.swap_values(node, &mut self.params[p]);
                continue;
            }
            let n = self.params[p].len();
            for x in self.engine.sample_mut(node).chunks_exact_mut(n) {
                x.copy_from_slice(&self.params[p]);
            }
        }
        for (e, eps) in self.encoders.iter_mut().zip(&self.encoder_eps) {
            let z = self.engine.sample_mut(e.node);
            e.draw(&self.params, (inputs[e.input], rows), (eps, temperature), z);
        }
        self.engine.set_temperature(temperature);
        // a rewritten entry's net calls run on its Gaussian's mean and sd
        for l in &self.layouts {
            let Some((kind, calls)) = &l.rewrite else {
                continue;
            };
            let (loc, sd) = l.gaussian.loc_and_scale(&self.params);
            for &id in calls {
                let net = RewrittenNet::for_call(*kind, loc, sd, self.rewrite_seed, id);
                self.engine.set_rewrite(id, net);
            }
        }
        let weights: Vec<f32> = self
            .program
            .sites
            .iter()
            .map(|s| {
                // a local site's prior is scaled like the likelihood
                if s.observed || self.program.site_has_rows(s) {
                    scale
                } else {
                    1.0
                }
            })
            .collect();
        // (a panic in the pass is raised after the lent buffers are back)
        let pass = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            model_pass(
                (&mut self.engine, &mut self.partials, &mut self.site_lp),
                self.program,
                &inputs,
                particles,
                (&weights, !self.values_only),
            )
        }));
        if lend_points {
            for &(p, node) in &self.points {
                self.engine.swap_values(node, &mut self.params[p]);
            }
        }
        let mut lp = pass.unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        // log q per particle, and the gradient of the mean ELBO in each entry's parameters.
        let mut log_q = vec![0.0f64; particles];
        for l in &mut self.layouts {
            let dim = l.gaussian.dim;
            if l.direct {
                continue;
            }
            l.gz.resize(particles * dim, 0.0);
            for slot in &l.sites {
                let (g, x, n) = (
                    self.engine.grad(slot.node),
                    self.engine.value(&[], slot.node),
                    slot.n,
                );
                for s in 0..particles {
                    let gz = &mut l.gz[s * dim + slot.off..s * dim + slot.off + n];
                    let (g, x) = (&g[s * n..(s + 1) * n], &x[s * n..(s + 1) * n]);
                    if slot.positive {
                        // x = eᵘ: d/du = x d/dx, and the term's log |dx/du| = u adds 1
                        for ((gz, &g), &x) in gz.iter_mut().zip(g).zip(x) {
                            *gz = g * x + 1.0;
                        }
                        let model_z = if l.frame.is_some() { &l.framed } else { &l.z };
                        let u = &model_z[s * dim + slot.off..s * dim + slot.off + n];
                        let log_det: f64 = u.iter().map(|&u| f64::from(u)).sum();
                        lp[s] += log_det;
                        self.site_lp[slot.site][s] += log_det;
                    } else {
                        gz.copy_from_slice(g);
                    }
                }
            }
            // The model's gradient in z, pulled back to the family's coordinates; log q(z)
            // = log q(u) − log |det S|.
            if let Some(frame) = &l.frame {
                for (gz, lq) in l.gz.chunks_exact_mut(dim).zip(log_q.iter_mut()) {
                    frame.pull_back(gz, &mut l.pulled);
                    gz.copy_from_slice(&l.pulled);
                    *lq -= l.frame_log_det;
                }
            }
        }
        for (l, eps) in self.layouts.iter_mut().zip(&self.eps) {
            let (z, gz) = if l.direct {
                let node = l.sites[0].node;
                (self.engine.value(&[], node), self.engine.grad(node))
            } else {
                (&l.z[..], &l.gz[..])
            };
            l.gaussian.log_q_and_gradient(
                &self.params,
                (eps, z, gz),
                estimator,
                &mut log_q,
                &mut self.grads,
            );
            if let Some((_, calls)) = &l.rewrite {
                for &id in calls {
                    let net = self
                        .engine
                        .take_rewrite(id)
                        .expect("installed before the pass");
                    if !self.values_only {
                        l.gaussian.add_rewrite_gradient(
                            &mut self.grads,
                            (&net.g_loc, &net.g_scale),
                            particles,
                        );
                    }
                }
            }
        }
        // the points take the model's gradient as it is; the encoders their log q's and
        // their weights' gradient
        for &(p, node) in &self.points {
            let n = self.params[p].len();
            let g = &mut self.grads[p];
            g.fill(0.0);
            let inv_s = 1.0 / particles as f32;
            for gs in self.engine.grad(node).chunks_exact(n) {
                for (g, &v) in g.iter_mut().zip(gs) {
                    *g -= v * inv_s;
                }
            }
        }
        for (e, eps) in self.encoders.iter_mut().zip(&self.encoder_eps) {
            let (z, gz) = (self.engine.value(&[], e.node), self.engine.grad(e.node));
            let terms = Terms {
                log_q: &mut log_q,
                log_p: &mut lp,
                site: &mut self.site_lp[e.site],
            };
            e.terms(
                &self.params,
                inputs[e.input],
                (eps, z, gz),
                estimator,
                (scale, temperature),
                terms,
                (!self.values_only).then_some(&mut self.grads[..]),
            );
        }
        self.last_ratios.clear();
        self.last_ratios
            .extend(lp.iter().zip(&log_q).map(|(p, q)| p - q));
        let value =
            (lp.iter().zip(&log_q).map(|(p, q)| p - q).sum::<f64>() / particles as f64) as f32;
        if !value.is_finite() {
            return Err(NonFinite {
                value,
                culprit: self.culprit(&log_q),
            });
        }
        Ok(value)
    }

    /// log p(x, z) − log q(z) of `particles` draws from `dev`'s generator on all rows at the
    /// relaxation `temperature` (log q the density of the draw, as the path-derivative
    /// estimator takes it): the
    /// importance ratios a diagnosis reads. No gradient is formed.
    pub(crate) fn log_ratios<D: Backend>(
        &mut self,
        dev: &D,
        data: (&[InputSpec], &[&Array]),
        particles: usize,
        temperature: f32,
    ) -> &[f64] {
        self.values_only = true;
        // a non-finite ratio is a ratio too (k̂ reads it as an infinitely heavy tail)
        let all_rows = (1.0, temperature);
        let _ = self.evaluate(
            dev,
            data,
            None,
            particles,
            all_rows,
            Estimator::PathDerivative,
        );
        self.values_only = false;
        &self.last_ratios
    }

    /// A parameter gone non-finite, or the first non-finite term: the guide's, then the
    /// sites' in order.
    fn culprit(&self, log_q: &[f64]) -> Option<String> {
        for (name, p) in self.names.iter().zip(&self.params) {
            if let Some(v) = p.iter().find(|v| !v.is_finite()) {
                return Some(format!("guide parameter `{name}` holds {v}"));
            }
        }
        if let Some(v) = log_q.iter().find(|v| !v.is_finite()) {
            return Some(format!("the guide's log density is {}", *v as f32));
        }
        self.program
            .sites
            .iter()
            .zip(&self.site_lp)
            .find_map(|(site, lp)| {
                lp.iter()
                    .find(|v| !v.is_finite())
                    .map(|v| format!("the log density of site `{}` is {}", site.name, *v as f32))
            })
    }

    /// Adam as [`crate::optim::Adam`] computes it, on the host copies.
    fn adam(&mut self, lr: f32, clip: Option<f32>) {
        self.t += 1;
        let scale = crate::optim::clip_factor(clip, || {
            self.grads
                .iter()
                .zip(&self.frozen)
                .filter(|(_, f)| !**f)
                .map(|(g, _)| g.iter().map(|v| v * v).sum::<f32>())
                .sum()
        });
        let rule = AdamRule::at(&self.cfg, self.t, lr, scale);
        for i in 0..self.params.len() {
            if self.frozen[i] {
                continue;
            }
            let (p, g, m, v) = (
                &mut self.params[i],
                &self.grads[i],
                &mut self.m[i],
                &mut self.v[i],
            );
            // Large parameters in blocks on threads (the update is elementwise).
            rule.update_threaded(p, g, m, v);
        }
    }
}
