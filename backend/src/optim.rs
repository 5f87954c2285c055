//! Adam on a [`ParamStore`].
//!
//! Why not dfdx's `Adam`: dfdx 0.13's optimisers walk a `TensorCollection`, whose fields are
//! fixed per type, while a guide's parameters are known only at run time (their sizes come
//! from the model's sites). This is the same update rule, with dfdx's defaults, written with
//! dfdx tensor ops so it runs on every device.

#[allow(unused_imports)]
use dfdx::prelude::*;
use dfdx::tensor::{Gradients, Tensor};

use crate::device::Backend;
use crate::params::ParamStore;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamConfig {
    pub betas: [f32; 2],
    pub eps: f32,
}

impl Default for AdamConfig {
    fn default() -> Self {
        AdamConfig {
            betas: [0.9, 0.999],
            eps: 1e-8,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Adam<D: Backend> {
    pub cfg: AdamConfig,
    t: i32,
    m: Vec<Tensor<(usize,), f32, D>>,
    v: Vec<Tensor<(usize,), f32, D>>,
}

impl<D: Backend> Adam<D> {
    pub fn new(params: &ParamStore<D>, cfg: AdamConfig) -> Self {
        let dev = params.device();
        let zeros = |t: &Tensor<(usize,), f32, D>| dev.zeros_like(t);
        Adam {
            cfg,
            t: 0,
            m: params.tensors().iter().map(zeros).collect(),
            v: params.tensors().iter().map(zeros).collect(),
        }
    }

    /// One step of size `lr`; `grads` must hold a gradient for every parameter. `clip`: when given, each gradient is scaled so its global norm is at most it.
    pub fn step(&mut self, params: &mut ParamStore<D>, grads: &Gradients<f32, D>, lr: f32, clip: Option<f32>) {
        self.t += 1;
        let [b1, b2] = self.cfg.betas;
        let c1 = 1.0 - b1.powi(self.t);
        let c2 = 1.0 - b2.powi(self.t);
        // Every parameter of a guide takes part in its sample, so each has a gradient.
        let found: Vec<Tensor<(usize,), f32, D>> = params.tensors().iter().map(|p| grads.get(p)).collect();
        let scale = match clip {
            Some(max) => {
                let sq: f32 = found
                    .iter()
                    .map(|g| g.clone().square().sum::<(), _>().array())
                    .sum();
                let norm = sq.sqrt();
                if norm > max {
                    max / norm
                } else {
                    1.0
                }
            }
            None => 1.0,
        };
        for (i, g) in found.into_iter().enumerate() {
            let g = if scale == 1.0 { g } else { g * scale };
            let m = self.m[i].clone() * b1 + g.clone() * (1.0 - b1);
            let v = self.v[i].clone() * b2 + g.square() * (1.0 - b2);
            let denom = (v.clone() / c2).sqrt() + self.cfg.eps;
            let update = (m.clone() / c1).try_mul(denom.recip()).expect("same shapes");
            let p = &mut params.tensors_mut()[i];
            *p = p.clone() - update * lr;
            self.m[i] = m;
            self.v[i] = v;
        }
    }
}
