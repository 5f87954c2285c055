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
    /// The weights as stored are multiplied by this (1, or 1/√inputs for a layer whose
    /// stored weights are of unit size so that Adam's steps are relative to them).
    gain: f32,
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
            gain: 1.0,
        }
    }

    /// Weights stored N(0, 1) and used times 1/√inputs (the same layer as [`Dense::build`]
    /// with scale 1/√inputs, parametrized so that each stored weight is of unit size: a
    /// step of Adam, whose size is the learning rate whatever the gradient's, then moves
    /// every layer by the same relative amount), biases 0.
    pub fn build_unit<D: Backend>(
        params: &mut ParamStore<D>,
        name: &str,
        inputs: usize,
        outputs: usize,
    ) -> Self {
        Dense {
            gain: 1.0 / (inputs.max(1) as f32).sqrt(),
            ..Dense::build(params, name, inputs, outputs, 1.0, 0.0)
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
        let w = traced::<D, T>(params, self.w).reshape_like(&(self.inputs, self.outputs));
        if self.gain == 1.0 {
            w
        } else {
            w * self.gain
        }
    }

    /// x W for x (rows × inputs), the gain applied over the outputs rather than over
    /// every weight; on the CPU a host op ([`ravi_backend::host_op::times_matrix`]).
    pub fn times<D: Backend, T: Tape<D>>(
        &self,
        params: &ParamStore<D>,
        x: Tensor<(usize, usize), f32, D, T>,
    ) -> Tensor<(usize, usize), f32, D, T> {
        let w = traced::<D, T>(params, self.w);
        let xw = ravi_backend::host_op::times_matrix(x, w, (self.inputs, self.outputs));
        match self.gain == 1.0 {
            true => xw,
            false => xw * self.gain,
        }
    }

    /// x W + b, with W multiplied elementwise by `mask` when given (MADE).
    pub fn apply<D: Backend, T: Tape<D>>(
        &self,
        params: &ParamStore<D>,
        x: Particles<D, T>,
        mask: Option<&Tensor<(usize, usize), f32, D>>,
    ) -> Particles<D, T> {
        let s = x.shape().0;
        let xw = match mask {
            Some(m) => x.matmul(self.weight::<D, T>(params) * m.clone()),
            None => self.times(params, x),
        };
        let b = traced::<D, T>(params, self.b).broadcast_like::<_, Axis<0>>(&(s, self.outputs));
        xw + b
    }
}
