//! Adam on a [`ParamStore`].
//!
//! Why not dfdx's `Adam`: dfdx 0.13's optimisers walk a `TensorCollection`, whose fields are
//! fixed per type, while a guide's parameters are known only at run time (their sizes come
//! from the model's sites). This is the same update rule, with dfdx's defaults, written with
//! dfdx tensor ops so it runs on every device.

use dfdx::prelude::*;
use dfdx::tensor::{Gradients, Tensor};

use crate::device::Backend;
use crate::params::ParamStore;

/// Adam's constants (dfdx's defaults: β = (0.9, 0.999), ε = 10⁻⁸, no weight decay).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamConfig {
    /// β₁ and β₂: the decay rates of the first and second moment estimates.
    pub betas: [f32; 2],
    /// ε, added to the denominator √v̂ so a zero gradient history does not divide by 0.
    pub eps: f32,
    /// Decoupled weight decay (AdamW, Loshchilov & Hutter 2019): each step also shrinks
    /// every parameter by the factor 1 − lr · weight_decay. 0 (the default) is plain Adam.
    /// A regulariser for point-estimated nets (a VAE's decoder and encoder) that would
    /// otherwise overfit a small data set.
    pub weight_decay: f32,
}

impl Default for AdamConfig {
    fn default() -> Self {
        AdamConfig {
            betas: [0.9, 0.999],
            eps: 1e-8,
            weight_decay: 0.0,
        }
    }
}

/// One Adam step's constants, stated once for both paths: the dfdx [`Adam`] below applies
/// them with tensor ops, the host engine with [`AdamRule::update`] (the same expression, in
/// the same order, so both take the same steps; `tests/fused.rs` holds them to it).
#[derive(Debug, Clone, Copy)]
pub struct AdamRule {
    /// β₁.
    pub b1: f32,
    /// β₂.
    pub b2: f32,
    /// The bias corrections 1 − β₁ᵗ and 1 − β₂ᵗ.
    pub c1: f32,
    /// See `c1`.
    pub c2: f32,
    /// ε.
    pub eps: f32,
    /// The learning rate of this step.
    pub lr: f32,
    /// 1 − lr · weight decay, when there is weight decay.
    pub decay: Option<f32>,
    /// The factor on the gradients that brings their norm down to the clipping norm (1: no
    /// clipping).
    pub clip: f32,
}

impl AdamRule {
    /// The rule of step `t` (from 1) at learning rate `lr`, the gradients scaled by `clip`.
    pub fn at(cfg: &AdamConfig, t: i32, lr: f32, clip: f32) -> Self {
        let [b1, b2] = cfg.betas;
        AdamRule {
            b1,
            b2,
            c1: 1.0 - b1.powi(t),
            c2: 1.0 - b2.powi(t),
            eps: cfg.eps,
            lr,
            decay: (cfg.weight_decay > 0.0).then_some(1.0 - lr * cfg.weight_decay),
            clip,
        }
    }

    /// [`AdamRule::update`] in blocks on threads for a large parameter (one thread
    /// computes each value: the split cannot change a bit), compiled for AVX2 too.
    pub fn update_threaded(self, p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]) {
        let block = crate::threads::elementwise_block(p.len());
        if block >= p.len() {
            return adam_update(self, p, g, m, v);
        }
        crate::threads::scope(|scope| {
            let blocks = p
                .chunks_mut(block)
                .zip(g.chunks(block))
                .zip(m.chunks_mut(block))
                .zip(v.chunks_mut(block));
            for (((p, g), m), v) in blocks {
                scope.spawn(move || adam_update(self, p, g, m, v));
            }
        });
    }

    /// The step on host slices, elementwise: m ← β₁m + (1 − β₁)g, v ← β₂v + (1 − β₂)g²,
    /// p ← p·decay − lr (m/c₁) / (√(v/c₂) + ε).
    #[inline(always)]
    pub fn update(self, p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]) {
        let AdamRule {
            b1,
            b2,
            c1,
            c2,
            eps,
            lr,
            decay,
            clip,
        } = self;
        for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
            let g = if clip == 1.0 { g } else { g * clip };
            *m = *m * b1 + g * (1.0 - b1);
            *v = *v * b2 + g * g * (1.0 - b2);
            let denom = (*v / c2).sqrt() + eps;
            let update = (*m / c1) * denom.recip();
            let kept = match decay {
                Some(k) => *p * k,
                None => *p,
            };
            *p = kept - update * lr;
        }
    }
}

/// The factor that brings a gradient of squared norm `squared_norm()` down to norm `clip`
/// (1 when it is within it, or when there is no clipping).
pub(crate) fn clip_factor(clip: Option<f32>, squared_norm: impl FnOnce() -> f32) -> f32 {
    match clip {
        Some(max) => {
            let norm = squared_norm().sqrt();
            if norm > max {
                max / norm
            } else {
                1.0
            }
        }
        None => 1.0,
    }
}

crate::simd_dispatch!(adam_update, adam_update_avx2, adam_update_body,
    (rule: AdamRule, p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]) -> ());

/// [`AdamRule::update`], compiled for AVX2 too.
#[inline(always)]
fn adam_update_body(rule: AdamRule, p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]) {
    rule.update(p, g, m, v);
}

/// Adam's state: its step count and both moment estimates of every parameter (store
/// order), as host vectors: what a saved fit keeps to resume where it stopped.
#[derive(Debug, Clone, PartialEq)]
pub struct OptimizerState {
    /// Steps taken (the bias corrections' t).
    pub t: i32,
    /// The first moment of each parameter.
    pub m: Vec<Vec<f32>>,
    /// The second moment of each parameter.
    pub v: Vec<Vec<f32>>,
}

/// Adam over every parameter of a [`ParamStore`], with its moment estimates.
#[derive(Debug, Clone)]
pub struct Adam<D: Backend> {
    /// The constants.
    pub cfg: AdamConfig,
    t: i32,
    moments: Moments<D>,
    /// Per parameter (store order): left as it is by every step.
    frozen: Vec<bool>,
}

/// Adam's moment estimates: host vectors on the CPU, where a step is one fused pass per
/// parameter (the host engine's kernel) instead of a dozen allocating tensor operations;
/// device tensors elsewhere.
#[derive(Debug, Clone)]
enum Moments<D: Backend> {
    Host {
        m: Vec<Vec<f32>>,
        v: Vec<Vec<f32>>,
        /// Scratch for a parameter, kept from step to step.
        p: Vec<f32>,
    },
    Device {
        m: Vec<Tensor<(usize,), f32, D>>,
        v: Vec<Tensor<(usize,), f32, D>>,
    },
}

impl<D: Backend> Adam<D> {
    /// An optimiser for `params` at step 0: zero moments for each parameter, and the store's
    /// constants (frames) left as they are.
    pub fn new(params: &ParamStore<D>, cfg: AdamConfig) -> Self {
        let dev = params.device();
        let moments = if std::any::TypeId::of::<D>() == std::any::TypeId::of::<crate::Cpu>() {
            let zeros: Vec<Vec<f32>> = params
                .tensors()
                .iter()
                .map(|t| vec![0.0; t.shape().0])
                .collect();
            Moments::Host {
                m: zeros.clone(),
                v: zeros,
                p: Vec::new(),
            }
        } else {
            let zeros = |t: &Tensor<(usize,), f32, D>| dev.zeros_like(t);
            Moments::Device {
                m: params.tensors().iter().map(zeros).collect(),
                v: params.tensors().iter().map(zeros).collect(),
            }
        };
        Adam {
            cfg,
            t: 0,
            moments,
            // A constant (a family's frame) is never stepped.
            frozen: params.ids().map(|id| params.is_constant(id)).collect(),
        }
    }

    /// The step count and moments, copied to the host.
    pub fn state(&self) -> OptimizerState {
        let (m, v) = match &self.moments {
            Moments::Host { m, v, .. } => (m.clone(), v.clone()),
            Moments::Device { m, v } => (
                m.iter().map(|t| t.as_vec()).collect(),
                v.iter().map(|t| t.as_vec()).collect(),
            ),
        };
        OptimizerState { t: self.t, m, v }
    }

    /// Takes up `state` (sizes checked by the caller against the store).
    pub fn set_state(&mut self, state: &OptimizerState) {
        match &mut self.moments {
            Moments::Host { m, v, .. } => {
                m.clone_from(&state.m);
                v.clone_from(&state.v);
            }
            Moments::Device { m, v } => {
                if let Some(dev) = m.first().map(|t| t.device().clone()) {
                    let upload = |x: &Vec<f32>| dev.tensor_from_vec(x.clone(), (x.len(),));
                    *m = state.m.iter().map(upload).collect();
                    *v = state.v.iter().map(upload).collect();
                }
            }
        }
        self.t = state.t;
    }

    /// Steps leave the parameter with store index `index` as it is (and its gradient out
    /// of the clipped norm).
    pub fn freeze(&mut self, index: usize) {
        self.frozen[index] = true;
    }

    /// One step of size `lr`; `grads` must hold a gradient for every parameter. `clip`:
    /// when given, each gradient is scaled so its global norm is at most it.
    pub fn step(
        &mut self,
        params: &mut ParamStore<D>,
        grads: &mut Gradients<f32, D>,
        lr: f32,
        clip: Option<f32>,
    ) {
        self.t += 1;
        let live: Vec<usize> = (0..self.frozen.len())
            .filter(|&i| !self.frozen[i])
            .collect();
        match &mut self.moments {
            Moments::Host { m, v, p } => {
                let moments = (m.as_mut_slice(), v.as_mut_slice());
                host_step(
                    params,
                    grads,
                    &live,
                    moments,
                    p,
                    (&self.cfg, self.t, lr, clip),
                )
            }
            Moments::Device { m, v } => {
                device_step(params, grads, &live, (m, v), (&self.cfg, self.t, lr, clip))
            }
        }
    }
}

/// Adam's step on the CPU: each live parameter updated in one fused host pass, its
/// gradient read where the tape left it (a clone and a copy of each would be two more
/// passes over every parameter). Every parameter of a guide takes part in its sample, so
/// each has a gradient; one that had none would step with a zero gradient (its moments
/// decaying), where the device path's `Gradients::get` panics.
fn host_step<D: Backend>(
    params: &mut ParamStore<D>,
    grads: &mut Gradients<f32, D>,
    live: &[usize],
    (m, v): (&mut [Vec<f32>], &mut [Vec<f32>]),
    scratch: &mut Vec<f32>,
    (cfg, t, lr, clip): (&AdamConfig, i32, f32, Option<f32>),
) {
    let scale = clip_factor(clip, || {
        live.iter()
            .map(|&i| {
                let g = crate::host_op::cpu_gradient(grads, &params.tensors()[i]);
                let g = g.expect("a CPU allocation");
                g.iter().map(|g| g * g).sum::<f32>()
            })
            .sum()
    });
    let rule = AdamRule::at(cfg, t, lr, scale);
    for &i in live {
        let p = &mut params.tensors_mut()[i];
        scratch.resize(p.shape().0, 0.0);
        p.copy_into(scratch);
        let g = crate::host_op::cpu_gradient(grads, p).expect("a CPU allocation");
        rule.update_threaded(scratch, g, &mut m[i], &mut v[i]);
        p.copy_from(scratch);
    }
}

/// A parameter-sized vector on the device.
type Vector<D> = Tensor<(usize,), f32, D>;

/// Adam's step as tensor ops on the device (CUDA).
fn device_step<D: Backend>(
    params: &mut ParamStore<D>,
    grads: &Gradients<f32, D>,
    live: &[usize],
    (ms, vs): (&mut [Vector<D>], &mut [Vector<D>]),
    (cfg, t, lr, clip): (&AdamConfig, i32, f32, Option<f32>),
) {
    // Every parameter of a guide takes part in its sample, so each has a gradient.
    let found: Vec<(usize, Vector<D>)> = live
        .iter()
        .map(|&i| (i, grads.get(&params.tensors()[i])))
        .collect();
    let scale = clip_factor(clip, || {
        found
            .iter()
            .map(|(_, g)| g.clone().square().sum::<(), _>().array())
            .sum()
    });
    let AdamRule {
        b1,
        b2,
        c1,
        c2,
        eps,
        lr,
        decay,
        clip: scale,
    } = AdamRule::at(cfg, t, lr, scale);
    for (i, g) in found {
        let g = if scale == 1.0 { g } else { g * scale };
        let m = ms[i].clone() * b1 + g.clone() * (1.0 - b1);
        let v = vs[i].clone() * b2 + g.square() * (1.0 - b2);
        let denom = (v.clone() / c2).sqrt() + eps;
        let update = (m.clone() / c1)
            .try_mul(denom.recip())
            .expect("same shapes");
        let p = &mut params.tensors_mut()[i];
        let kept = match decay {
            Some(k) => p.clone() * k,
            None => p.clone(),
        };
        *p = kept - update * lr;
        ms[i] = m;
        vs[i] = v;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dfdx::tensor::Cpu;

    /// Adam written out in f64 from Kingma & Ba (2015), Algorithm 1, with global-norm
    /// clipping applied to the gradient before the moments.
    fn reference(
        mut p: Vec<f64>,
        target: &[f64],
        lrs: &[f64],
        clip: Option<f64>,
        weight_decay: f64,
    ) -> Vec<f64> {
        let (b1, b2, eps) = (0.9f64, 0.999f64, 1e-8f64);
        let mut m = vec![0.0; p.len()];
        let mut v = vec![0.0; p.len()];
        for (t, lr) in lrs.iter().enumerate() {
            let t = t as i32 + 1;
            let mut g: Vec<f64> = p.iter().zip(target).map(|(p, c)| 2.0 * (p - c)).collect();
            if let Some(max) = clip {
                let norm = g.iter().map(|x| x * x).sum::<f64>().sqrt();
                if norm > max {
                    g.iter_mut().for_each(|x| *x *= max / norm);
                }
            }
            for i in 0..p.len() {
                m[i] = b1 * m[i] + (1.0 - b1) * g[i];
                v[i] = b2 * v[i] + (1.0 - b2) * g[i] * g[i];
                let mh = m[i] / (1.0 - b1.powi(t));
                let vh = v[i] / (1.0 - b2.powi(t));
                // AdamW: the decay is decoupled from the moments (Loshchilov & Hutter,
                // Algorithm 2, with the schedule multiplier η_t = 1 and α = lr).
                p[i] = p[i] * (1.0 - lr * weight_decay) - lr * mh / (vh.sqrt() + eps);
            }
        }
        p
    }

    /// Adam's steps against the reference, with host moments (the CPU's) and with device
    /// tensors (what CUDA takes, run here on the CPU).
    fn run(clip: Option<f32>, weight_decay: f32) {
        run_on(clip, weight_decay, false);
        run_on(clip, weight_decay, true);
    }

    fn run_on(clip: Option<f32>, weight_decay: f32, on_device: bool) {
        let dev = Cpu::default();
        let init = vec![1.0f32, -2.0, 0.5];
        let target = [0.25f32, 0.75, -3.0];
        let lrs = [0.1f32, 0.05, 0.2, 0.01, 0.1];
        let mut store = ParamStore::new(&dev);
        store.add("p", init.clone());
        let cfg = AdamConfig {
            weight_decay,
            ..AdamConfig::default()
        };
        let mut adam = Adam::new(&store, cfg);
        if on_device {
            adam.moments = Moments::Device {
                m: vec![dev.zeros_like(&store.tensors()[0])],
                v: vec![dev.zeros_like(&store.tensors()[0])],
            };
        }
        let c = dev.tensor_from_vec(target.to_vec(), (3,));
        for &lr in &lrs {
            let loss = (store.tensors()[0].leaky_trace() - c.clone())
                .square()
                .sum::<(), _>();
            let mut grads = loss.backward();
            adam.step(&mut store, &mut grads, lr, clip);
        }
        let want = reference(
            init.iter().map(|&x| f64::from(x)).collect(),
            &target.map(f64::from),
            &lrs.map(f64::from),
            clip.map(f64::from),
            f64::from(weight_decay),
        );
        let got = store.tensors()[0].as_vec();
        for (g, w) in got.iter().zip(&want) {
            assert!(
                (f64::from(*g) - w).abs() < 1e-5,
                "{got:?} vs {want:?} (device moments: {on_device})"
            );
        }
    }

    #[test]
    fn matches_the_published_update() {
        run(None, 0.0);
    }

    #[test]
    fn weight_decay_is_decoupled() {
        run(None, 0.3);
    }

    #[test]
    fn clipping_scales_the_global_norm() {
        run(Some(0.5), 0.0);
    }
}
