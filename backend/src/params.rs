//! The learnable parameters of a guide: named flat tensors, so that families of any shape,
//! the optimiser and checkpoints all see one simple collection.

use crate::memory::MemoryError;
use dfdx::prelude::*;
use dfdx::tensor::Tensor;

use crate::device::Backend;

/// Index of a parameter in its [`ParamStore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParamId(pub usize);

/// A guide's parameters by name. Most are learned; a *constant* (a family's frame, see
/// [`crate::frame`]) is part of the guide's state but no optimiser ever changes it.
#[derive(Debug, Clone)]
pub struct ParamStore<D: Backend> {
    dev: D,
    names: Vec<String>,
    tensors: Vec<Tensor<(usize,), f32, D>>,
    constant: Vec<bool>,
    /// A fit has started (initialised) these parameters: `Init::Auto` leaves them be.
    started: bool,
    /// The first family refused for want of memory (its parameters not allocated): every
    /// fit or evaluation of the guide reports it.
    refused: Option<MemoryError>,
}

impl<D: Backend> ParamStore<D> {
    /// An empty store on device `dev`.
    pub fn new(dev: &D) -> Self {
        ParamStore {
            dev: dev.clone(),
            names: Vec::new(),
            tensors: Vec::new(),
            constant: Vec::new(),
            refused: None,
            started: false,
        }
    }
    /// The device the parameters live on.
    pub fn device(&self) -> &D {
        &self.dev
    }
    /// May a family of `parameters` parameters be allocated (see [`crate::memory`])? When
    /// not, the refusal is kept (the first one) and the family allocates nothing.
    pub fn reserve(
        &mut self,
        family: &'static str,
        label: &str,
        size: usize,
        parameters: Option<u64>,
        suggestion: &'static str,
    ) -> bool {
        match crate::memory::check(family, label, size, parameters, suggestion) {
            Ok(()) => true,
            Err(e) => {
                self.refused.get_or_insert(e);
                false
            }
        }
    }

    /// The family refused for want of memory, if any.
    pub fn refusal(&self) -> Option<&MemoryError> {
        self.refused.as_ref()
    }

    /// Registers a learned parameter under `name` with its initial values, and returns its id.
    pub fn add(&mut self, name: impl Into<String>, init: Vec<f32>) -> ParamId {
        let n = init.len();
        self.names.push(name.into());
        self.tensors.push(self.dev.tensor_from_vec(init, (n,)));
        self.constant.push(false);
        ParamId(self.tensors.len() - 1)
    }

    /// Registers a constant: stored, saved and read like a parameter, never optimised.
    pub fn add_constant(&mut self, name: impl Into<String>, values: Vec<f32>) -> ParamId {
        let id = self.add(name, values);
        self.constant[id.0] = true;
        id
    }

    /// Sets a constant's values, registering it under `name` if the store has none by
    /// that name yet.
    pub fn set_constant(&mut self, name: &str, values: Vec<f32>) -> ParamId {
        match self.find(name) {
            Some(id) if self.get(id).shape().0 == values.len() => {
                self.set(id, &values);
                self.constant[id.0] = true;
                id
            }
            Some(id) => {
                let n = values.len();
                self.tensors[id.0] = self.dev.tensor_from_vec(values, (n,));
                self.constant[id.0] = true;
                id
            }
            None => self.add_constant(name, values),
        }
    }

    /// Has a fit started these parameters (so that another fit continues from them)?
    pub fn is_started(&self) -> bool {
        self.started
    }

    /// Marks the parameters as started by a fit.
    pub fn mark_started(&mut self) {
        self.started = true;
    }

    /// Is the parameter a constant (never optimised)?
    pub fn is_constant(&self, id: ParamId) -> bool {
        self.constant[id.0]
    }

    /// The parameter registered under `name`.
    pub fn find(&self, name: &str) -> Option<ParamId> {
        self.names.iter().position(|n| n == name).map(ParamId)
    }

    /// A parameter's name.
    pub fn name(&self, id: ParamId) -> &str {
        &self.names[id.0]
    }
    /// A parameter's values.
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
    /// The number of parameters (constants included).
    pub fn len(&self) -> usize {
        self.tensors.len()
    }
    /// Whether the store holds no parameter.
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
    /// Every parameter (constants included) with its name, in registration order.
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
