//! A dense layer on particles, shared by the flows and the implicit generator.

use dfdx::prelude::*;
use ravi_backend::{traced, Backend, ParamId, ParamStore, Particles, Tape};

/// A dense layer x W + b on particles, its weight `(inputs × outputs)` row-major.
#[derive(Debug, Clone)]
pub(crate) struct Dense {
    w: ParamId,
    b: ParamId,
    inputs: usize,
    outputs: usize,
}

impl Dense {
    /// Weights N(0, scale²), biases `bias`.
    pub fn build<D: Backend>(
        params: &mut ParamStore<D>,
        name: &str,
        inputs: usize,
        outputs: usize,
        scale: f32,
        bias: f32,
    ) -> Self {
        let w: Vec<f32> = if scale == 0.0 {
            vec![0.0; inputs * outputs]
        } else {
            let t: Tensor<(usize,), f32, D> =
                params.device().sample_normal_like(&(inputs * outputs,));
            t.as_vec().into_iter().map(|v| v * scale).collect()
        };
        Dense {
            w: params.add(format!("{name}.w"), w),
            b: params.add(format!("{name}.b"), vec![bias; outputs]),
            inputs,
            outputs,
        }
    }

    /// The bias's id in the store.
    pub fn bias(&self) -> ParamId {
        self.b
    }

    pub fn outputs(&self) -> usize {
        self.outputs
    }

    /// W `(inputs, outputs)` on the tape.
    pub fn weight<D: Backend, T: Tape<D>>(
        &self,
        params: &ParamStore<D>,
    ) -> Tensor<(usize, usize), f32, D, T> {
        traced::<D, T>(params, self.w).reshape_like(&(self.inputs, self.outputs))
    }

    /// x W + b, with W multiplied elementwise by `mask` when given (MADE).
    pub fn apply<D: Backend, T: Tape<D>>(
        &self,
        params: &ParamStore<D>,
        x: Particles<D, T>,
        mask: Option<&Tensor<(usize, usize), f32, D>>,
    ) -> Particles<D, T> {
        let s = x.shape().0;
        let w = traced::<D, T>(params, self.w).reshape_like(&(self.inputs, self.outputs));
        let w = match mask {
            Some(m) => w * m.clone(),
            None => w,
        };
        let b = traced::<D, T>(params, self.b).broadcast_like::<_, Axis<0>>(&(s, self.outputs));
        x.matmul(w) + b
    }
}
