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
    m: Vec<Tensor<(usize,), f32, D>>,
    v: Vec<Tensor<(usize,), f32, D>>,
    /// Per parameter (store order): left as it is by every step.
    frozen: Vec<bool>,
}

impl<D: Backend> Adam<D> {
    /// An optimiser for `params` at step 0: zero moments for each parameter, and the store's
    /// constants (frames) left as they are.
    pub fn new(params: &ParamStore<D>, cfg: AdamConfig) -> Self {
        let dev = params.device();
        let zeros = |t: &Tensor<(usize,), f32, D>| dev.zeros_like(t);
        Adam {
            cfg,
            t: 0,
            m: params.tensors().iter().map(zeros).collect(),
            v: params.tensors().iter().map(zeros).collect(),
            // A constant (a family's frame) is never stepped.
            frozen: params.ids().map(|id| params.is_constant(id)).collect(),
        }
    }

    /// The step count and moments, copied to the host.
    pub fn state(&self) -> OptimizerState {
        OptimizerState {
            t: self.t,
            m: self.m.iter().map(|t| t.as_vec()).collect(),
            v: self.v.iter().map(|t| t.as_vec()).collect(),
        }
    }

    /// Takes up `state` (sizes checked by the caller against the store).
    pub fn set_state(&mut self, state: &OptimizerState) {
        let dev = self.m.first().map(|t| t.device().clone());
        if let Some(dev) = dev {
            self.m = state
                .m
                .iter()
                .map(|v| dev.tensor_from_vec(v.clone(), (v.len(),)))
                .collect();
            self.v = state
                .v
                .iter()
                .map(|v| dev.tensor_from_vec(v.clone(), (v.len(),)))
                .collect();
        }
        self.t = state.t;
    }

    /// Steps leave the parameter with store index `index` as it is (and its gradient out
    /// of the clipped norm).
    pub fn freeze(&mut self, index: usize) {
        self.frozen[index] = true;
    }

    /// One step of size `lr`; `grads` must hold a gradient for every parameter. `clip`: when given, each gradient is scaled so its global norm is at most it.
    pub fn step(
        &mut self,
        params: &mut ParamStore<D>,
        grads: &Gradients<f32, D>,
        lr: f32,
        clip: Option<f32>,
    ) {
        self.t += 1;
        // Every parameter of a guide takes part in its sample, so each has a gradient.
        let found: Vec<Option<Tensor<(usize,), f32, D>>> = params
            .tensors()
            .iter()
            .zip(&self.frozen)
            .map(|(p, &frozen)| (!frozen).then(|| grads.get(p)))
            .collect();
        let scale = clip_factor(clip, || {
            found
                .iter()
                .flatten()
                .map(|g| g.clone().square().sum::<(), _>().array())
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
        } = AdamRule::at(&self.cfg, self.t, lr, scale);
        for (i, g) in found.into_iter().enumerate() {
            let Some(g) = g else { continue };
            let g = if scale == 1.0 { g } else { g * scale };
            let m = self.m[i].clone() * b1 + g.clone() * (1.0 - b1);
            let v = self.v[i].clone() * b2 + g.square() * (1.0 - b2);
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
            self.m[i] = m;
            self.v[i] = v;
        }
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

    fn run(clip: Option<f32>, weight_decay: f32) {
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
        let c = dev.tensor_from_vec(target.to_vec(), (3,));
        for &lr in &lrs {
            let loss = (store.tensors()[0].leaky_trace() - c.clone())
                .square()
                .sum::<(), _>();
            let grads = loss.backward();
            adam.step(&mut store, &grads, lr, clip);
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
            assert!((f64::from(*g) - w).abs() < 1e-5, "{got:?} vs {want:?}");
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
