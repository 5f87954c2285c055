//! The learnable parameters of a guide: named flat tensors, so that families of any shape,
//! the optimiser and checkpoints all see one simple collection.

use dfdx::prelude::*;
use dfdx::tensor::Tensor;

use crate::device::Backend;

/// Index of a parameter in its [`ParamStore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParamId(pub usize);

#[derive(Debug, Clone)]
pub struct ParamStore<D: Backend> {
    dev: D,
    names: Vec<String>,
    tensors: Vec<Tensor<(usize,), f32, D>>,
}

impl<D: Backend> ParamStore<D> {
    pub fn new(dev: &D) -> Self {
        ParamStore {
            dev: dev.clone(),
            names: Vec::new(),
            tensors: Vec::new(),
        }
    }
    pub fn device(&self) -> &D {
        &self.dev
    }
    /// Registers a parameter with its initial values.
    pub fn add(&mut self, name: impl Into<String>, init: Vec<f32>) -> ParamId {
        let n = init.len();
        self.names.push(name.into());
        self.tensors.push(self.dev.tensor_from_vec(init, (n,)));
        ParamId(self.tensors.len() - 1)
    }
    pub fn get(&self, id: ParamId) -> &Tensor<(usize,), f32, D> {
        &self.tensors[id.0]
    }

    /// Overwrites a parameter's values (same length).
    pub fn set(&mut self, id: ParamId, values: &[f32]) {
        let t = &mut self.tensors[id.0];
        assert_eq!(t.shape().num_elements(), values.len(), "parameter length");
        t.copy_from(values);
    }

    /// Every parameter's id, in registration order.
    pub fn ids(&self) -> impl Iterator<Item = ParamId> {
        (0..self.tensors.len()).map(ParamId)
    }
    pub fn len(&self) -> usize {
        self.tensors.len()
    }
    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }
    /// Total number of scalars.
    pub fn num_scalars(&self) -> usize {
        self.tensors.iter().map(|t| t.shape().num_elements()).sum()
    }
    pub(crate) fn tensors_mut(&mut self) -> &mut [Tensor<(usize,), f32, D>] {
        &mut self.tensors
    }
    pub(crate) fn tensors(&self) -> &[Tensor<(usize,), f32, D>] {
        &self.tensors
    }
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Tensor<(usize,), f32, D>)> {
        self.names.iter().map(String::as_str).zip(&self.tensors)
    }
    /// The first parameter holding a NaN or an infinity, with the value.
    pub fn first_non_finite(&self) -> Option<(String, f32)> {
        self.tensors.iter().zip(&self.names).find_map(|(t, n)| {
            t.as_vec()
                .into_iter()
                .find(|v| !v.is_finite())
                .map(|v| (n.clone(), v))
        })
    }
}
