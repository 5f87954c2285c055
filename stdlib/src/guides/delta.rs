//! The point mass: how a guide holds a model's `param` (a decoder's weights, say). The
//! value is learned by the same optimiser as every guide parameter; its log q is 0, so it
//! maximises the ELBO as a point estimate (MAP with a flat prior).

use dfdx::prelude::*;
use ravi_backend::{traced, Backend, FamilyDraw, ParamId, ParamInit, ParamStore, Tape};

/// A point mass at a learned value: a model `param` as the guide holds it (log q = 0).
#[derive(Debug, Clone)]
pub struct Delta {
    dim: usize,
    value: ParamId,
}

impl Delta {
    /// Registers the point under `name`, started as `init` says (uniform draws from the
    /// store's device, so a seeded device starts the same way every run).
    pub fn build<D: Backend>(
        params: &mut ParamStore<D>,
        name: &str,
        dim: usize,
        init: &ParamInit,
    ) -> Self {
        Delta {
            dim,
            value: super::program::param_with_init(params, name, dim, init),
        }
    }

    /// The number of values the point holds.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The parameter holding the point (the host engine steps it in place).
    pub fn param(&self) -> ParamId {
        self.value
    }

    /// Sets the point (a fit's initialisation: the MAP, or given values).
    pub fn start<D: Backend>(&self, params: &mut ParamStore<D>, values: &[f64]) {
        let v: Vec<f32> = values.iter().map(|&v| v as f32).collect();
        params.set(self.value, &v);
    }

    /// The point, once per particle, and log q = 0.
    pub fn sample<D: Backend, T: Tape<D>>(
        &self,
        params: &ParamStore<D>,
        particles: usize,
    ) -> FamilyDraw<D, T> {
        let z =
            traced::<D, T>(params, self.value).broadcast_like::<_, Axis<0>>(&(particles, self.dim));
        let zero: Tensor<(usize,), f32, D> = params.device().zeros_like(&(particles,));
        FamilyDraw {
            z,
            log_q: zero.retaped::<T>(),
        }
    }
}
