//! Host data, its checks against a model's declared inputs, and its upload to a device.

use dfdx::prelude::*;
use std::fmt;

use dfdx::tensor::Tensor;

use crate::device::Backend;

/// An n-dimensional array of `f32` on the host, row-major: what a user hands to `fit`.
#[derive(Debug, Clone, PartialEq)]
pub struct Array {
    data: Vec<f32>,
    shape: Vec<usize>,
}

impl Array {
    /// An array of the given shape; `data.len()` must be the product of `shape`.
    pub fn new(data: Vec<f32>, shape: Vec<usize>) -> Result<Self, DataError> {
        // a product that overflows matches no data: the same error, not a panic
        let numel = shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
        if numel != Some(data.len()) {
            return Err(DataError::Length {
                shape,
                len: data.len(),
            });
        }
        Ok(Array { data, shape })
    }
    /// No values: what to pass for an observed input when predicting at new inputs
    /// ([`crate::predictive()`], [`crate::predictive_draws`] fill it with zeros of the
    /// declared shape, since they do not read it). Anything else refuses it as data of the
    /// wrong shape.
    pub fn none() -> Self {
        Array {
            data: Vec::new(),
            shape: Vec::new(),
        }
    }
    /// Is this [`Array::none`]?
    pub fn is_none(&self) -> bool {
        self.shape.is_empty() && self.data.is_empty()
    }
    /// A scalar: shape `[]`, one value.
    pub fn scalar(v: f32) -> Self {
        Array {
            data: vec![v],
            shape: vec![],
        }
    }
    /// A vector: shape `[data.len()]`.
    pub fn vector(data: Vec<f32>) -> Self {
        let n = data.len();
        Array {
            data,
            shape: vec![n],
        }
    }
    /// A matrix from rows, which must all have the same length.
    pub fn from_rows<R: AsRef<[f32]>>(rows: &[R]) -> Result<Self, DataError> {
        let cols = rows.first().map_or(0, |r| r.as_ref().len());
        let mut data = Vec::with_capacity(rows.len() * cols);
        for (i, r) in rows.iter().enumerate() {
            let r = r.as_ref();
            if r.len() != cols {
                return Err(DataError::Ragged {
                    row: i,
                    len: r.len(),
                    expected: cols,
                });
            }
            data.extend_from_slice(r);
        }
        Ok(Array {
            data,
            shape: vec![rows.len(), cols],
        })
    }
    /// Rows given as `f64` (as CSV readers give them), converted to `f32`.
    pub fn from_rows_f64<R: AsRef<[f64]>>(rows: &[R]) -> Result<Self, DataError> {
        let rows: Vec<Vec<f32>> = rows
            .iter()
            .map(|r| r.as_ref().iter().map(|&v| v as f32).collect())
            .collect();
        Self::from_rows(&rows)
    }
    /// The size of each axis, first axis first (`[]` for a scalar).
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }
    /// The values, row-major (the last axis varies fastest).
    pub fn data(&self) -> &[f32] {
        &self.data
    }
    /// Rows `idx` of an array whose first axis is the rows.
    pub fn gather_rows(&self, idx: &[usize]) -> Array {
        let per_row: usize = self.shape[1..].iter().product();
        let mut data = Vec::with_capacity(idx.len() * per_row);
        for &i in idx {
            data.extend_from_slice(&self.data[i * per_row..(i + 1) * per_row]);
        }
        let mut shape = self.shape.clone();
        shape[0] = idx.len();
        Array { data, shape }
    }
}

/// One axis of an input as the model declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DimSpec {
    /// `N`: the rows, the same for every input that has it.
    Rows,
    /// A size fixed when the model was compiled (a literal, a constant, or a size parameter's
    /// value).
    Fixed(usize),
}

/// A model input: its name and declared shape.
#[derive(Debug, Clone, Copy)]
pub struct InputSpec {
    /// The input's name: its field in the data struct.
    pub name: &'static str,
    /// The declared axes, first axis first.
    pub dims: &'static [DimSpec],
    /// Whether the first axis is the rows (minibatches slice it).
    pub has_rows: bool,
    /// `in low..high`: the input holds integers from `low` up to (not including) `high`.
    pub integers: Option<(i64, Option<i64>)>,
    /// The axes whose size is a size parameter of the model (`model Reg<D>(x: [N, D])`:
    /// `(1, "D")`), so that messages write the shape as declared.
    pub sizes: &'static [(usize, &'static str)],
    /// A site observes it: the predictive does not read it, and takes [`Array::none`] for it.
    pub observed: bool,
}

impl InputSpec {
    /// The declared shape: `[N, 10]`, or `[N, D] with D = 10` where `D` is a size parameter.
    pub fn describe(&self) -> String {
        let named = |axis: usize| self.sizes.iter().find(|(a, _)| *a == axis).map(|s| s.1);
        let dims: Vec<String> = self
            .dims
            .iter()
            .enumerate()
            .map(|(axis, d)| match (d, named(axis)) {
                (DimSpec::Rows, _) => "N".to_string(),
                (DimSpec::Fixed(_), Some(name)) => name.to_string(),
                (DimSpec::Fixed(n), None) => n.to_string(),
            })
            .collect();
        let mut values: Vec<String> = Vec::new();
        for &(axis, name) in self.sizes {
            if let Some(DimSpec::Fixed(n)) = self.dims.get(axis) {
                let value = format!("{name} = {n}");
                if !values.contains(&value) {
                    values.push(value);
                }
            }
        }
        match values.is_empty() {
            true => format!("[{}]", dims.join(", ")),
            false => format!("[{}] with {}", dims.join(", "), values.join(", ")),
        }
    }
}

/// Data that does not fit the model: always names the input and both shapes.
#[derive(Debug, Clone, PartialEq)]
pub enum DataError {
    /// An input's shape is not the one the model declares.
    Shape {
        /// The model's name (with its sizes, `Reg<3>`).
        model: &'static str,
        /// The input's name.
        input: &'static str,
        /// The declared shape, as [`InputSpec::describe`] writes it.
        expected: String,
        /// The array's shape.
        got: Vec<usize>,
    },
    /// Two inputs with the row axis `N` have different numbers of rows.
    Rows {
        /// The model's name.
        model: &'static str,
        /// The input whose rows disagree with an earlier one.
        input: &'static str,
        /// Its number of rows.
        rows: usize,
        /// The earlier input.
        other_input: &'static str,
        /// The earlier input's number of rows.
        other_rows: usize,
    },
    /// An input holds NaN or ±∞.
    NonFinite {
        /// The model's name.
        model: &'static str,
        /// The input's name.
        input: &'static str,
        /// The first non-finite value's flat (row-major) index.
        index: usize,
        /// That value.
        value: f32,
    },
    /// [`Array::new`] was given a number of values other than the shape's product.
    Length {
        /// The shape asked for.
        shape: Vec<usize>,
        /// The number of values given.
        len: usize,
    },
    /// [`Array::from_rows`] was given rows of different lengths.
    Ragged {
        /// The first row whose length differs from the first row's.
        row: usize,
        /// Its length.
        len: usize,
        /// The first row's length.
        expected: usize,
    },
    /// The inputs with the row axis have zero rows, so there is nothing to fit.
    NoRows {
        /// The model's name.
        model: &'static str,
    },
    /// An observed value outside its distribution's support (a y = −1 observed by an
    /// Exponential): `site` names the observed site and `support` says what it allows.
    Support {
        /// The model's name.
        model: &'static str,
        /// The observed site.
        site: &'static str,
        /// The input it observes.
        input: &'static str,
        /// The value's flat (row-major) index in the input.
        index: usize,
        /// The value.
        value: f32,
        /// What the support allows, in words.
        support: &'static str,
    },
    /// A value outside the integers an input declares (`in low..high`).
    Domain {
        /// The model's name.
        model: &'static str,
        /// The input's name.
        input: &'static str,
        /// The value's flat (row-major) index.
        index: usize,
        /// The value.
        value: f32,
        /// The declared range, as written (`0..2`).
        declared: String,
    },
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataError::Shape { model, input, expected, got } => write!(
                f,
                "input `{input}` of {model} has shape {got:?} but the model declares {expected}"
            ),
            DataError::Rows { model, input, rows, other_input, other_rows } => write!(
                f,
                "inputs of {model} disagree on the rows N: `{input}` has {rows} but `{other_input}` has {other_rows}"
            ),
            DataError::NonFinite { model, input, index, value } => write!(
                f,
                "input `{input}` of {model} holds {value} at flat index {index}; data must be finite"
            ),
            DataError::Length { shape, len } => match shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)) {
                Some(numel) => write!(f, "an array of shape {shape:?} needs {numel} values but {len} were given"),
                None => write!(f, "an array of shape {shape:?} would hold more values than memory can address ({len} were given)"),
            },
            DataError::Ragged { row, len, expected } => write!(
                f,
                "row {row} has {len} values but the first row has {expected}"
            ),
            DataError::NoRows { model } => write!(f, "the data of {model} has no rows"),
            DataError::Support { model, site, input, index, value, support } => write!(
                f,
                "input `{input}` of {model} holds {value} at flat index {index}, outside the support of site `{site}`: {support}"
            ),
            DataError::Domain { model, input, index, value, declared } => write!(
                f,
                "input `{input}` of {model} holds {value} at flat index {index}, but it is declared as the integers {declared}"
            ),
        }
    }
}

impl std::error::Error for DataError {}

/// Checks arrays against a model's inputs: shapes, a common row count, finiteness.
/// Returns the number of rows (1 when no input has the row axis).
pub fn check_inputs(
    model: &'static str,
    specs: &[InputSpec],
    arrays: &[&Array],
) -> Result<usize, DataError> {
    let mut rows: Option<(usize, &'static str)> = None;
    for (spec, a) in specs.iter().zip(arrays) {
        let fits = a.shape.len() == spec.dims.len()
            && spec.dims.iter().zip(&a.shape).all(|(d, &n)| match d {
                DimSpec::Rows => true,
                DimSpec::Fixed(k) => *k == n,
            });
        if !fits {
            return Err(DataError::Shape {
                model,
                input: spec.name,
                expected: spec.describe(),
                got: a.shape.clone(),
            });
        }
        if spec.has_rows {
            let n = a.shape[0];
            match rows {
                Some((m, other)) if m != n => {
                    return Err(DataError::Rows {
                        model,
                        input: spec.name,
                        rows: n,
                        other_input: other,
                        other_rows: m,
                    })
                }
                _ => rows = Some((n, spec.name)),
            }
        }
        if let Some((index, &value)) = a.data.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(DataError::NonFinite {
                model,
                input: spec.name,
                index,
                value,
            });
        }
        if let Some((low, high)) = spec.integers {
            let inside = |v: f32| {
                v.fract() == 0.0
                    && f64::from(v) >= low as f64
                    && high.is_none_or(|h| f64::from(v) < h as f64)
            };
            if let Some((index, &value)) = a.data.iter().enumerate().find(|(_, v)| !inside(**v)) {
                return Err(DataError::Domain {
                    model,
                    input: spec.name,
                    index,
                    value,
                    declared: match high {
                        Some(h) => format!("{low}..{h}"),
                        None => format!("{low}.."),
                    },
                });
            }
        }
    }
    match rows {
        Some((0, _)) => Err(DataError::NoRows { model }),
        Some((n, _)) => Ok(n),
        None => Ok(1),
    }
}

/// `arrays` with each [`Array::none`] given for an observed input replaced by zeros (the
/// lowest value of a declared integer range) of the input's declared shape, the rows those of the other inputs: what the predictive
/// reads at new inputs, where the observed values do not exist. Given arrays are borrowed,
/// not copied.
pub fn fill_unobserved<'a>(
    model: &'static str,
    specs: &[InputSpec],
    arrays: &[&'a Array],
) -> Result<Vec<std::borrow::Cow<'a, Array>>, DataError> {
    let rows = specs
        .iter()
        .zip(arrays)
        .find(|(s, a)| s.has_rows && !a.is_none())
        .and_then(|(_, a)| a.shape.first().copied());
    specs
        .iter()
        .zip(arrays)
        .map(|(spec, &a)| {
            if !(a.is_none() && spec.observed) {
                return Ok(std::borrow::Cow::Borrowed(a));
            }
            let shape: Vec<usize> = spec
                .dims
                .iter()
                .map(|d| match d {
                    DimSpec::Rows => rows.ok_or(DataError::NoRows { model }),
                    DimSpec::Fixed(n) => Ok(*n),
                })
                .collect::<Result<_, _>>()?;
            let numel = shape.iter().product();
            // a value the declared domain allows (never read)
            let fill = spec.integers.map_or(0.0, |(low, _)| low as f32);
            Ok(std::borrow::Cow::Owned(Array {
                data: vec![fill; numel],
                shape,
            }))
        })
        .collect()
}

/// Inputs on the device, each flat; the generated code views each in its typed shape.
#[derive(Debug, Clone)]
pub struct Batch<D: Backend> {
    inputs: Vec<Tensor<(usize,), f32, D>>,
    rows: usize,
    /// Which rows of the data these are (`None`: all of them, in order).
    indices: Option<Vec<usize>>,
    temperature: f32,
    /// A tensor of no values on the batch's device: what generated code builds constants
    /// on when the model has no inputs.
    carrier: Tensor<(usize,), f32, D>,
}

impl<D: Backend> Batch<D> {
    /// Uploads checked arrays (rows `idx` of the row inputs, or all rows when `None`).
    pub fn upload(
        dev: &D,
        specs: &[InputSpec],
        arrays: &[&Array],
        idx: Option<&[usize]>,
        rows: usize,
    ) -> Self {
        let inputs = specs
            .iter()
            .zip(arrays)
            .map(|(spec, a)| {
                let data = match idx {
                    Some(idx) if spec.has_rows => a.gather_rows(idx).data,
                    _ => a.data.clone(),
                };
                let n = data.len();
                dev.tensor_from_vec(data, (n,))
            })
            .collect();
        Batch {
            inputs,
            rows: idx.map_or(rows, <[usize]>::len),
            indices: idx.map(<[usize]>::to_vec),
            temperature: 1.0,
            carrier: dev.zeros_like(&(0usize,)),
        }
    }
    /// Which rows of the whole data this batch holds, in its order (per-row guide
    /// parameters are gathered by them).
    pub fn indices(&self) -> Vec<usize> {
        match &self.indices {
            Some(i) => i.clone(),
            None => (0..self.rows).collect(),
        }
    }
    /// The batch with the relaxation temperature set (the DSL's `temperature`; 1 unless a
    /// fit anneals it).
    pub fn with_temperature(mut self, temperature: f32) -> Self {
        self.temperature = temperature;
        self
    }
    /// The relaxation temperature the model and guide read as `temperature`.
    pub fn temperature(&self) -> f32 {
        self.temperature
    }
    /// No rows and no values: what a guide samples its global sites with when no data is
    /// at hand (its local sites then have no values).
    pub fn empty(dev: &D, inputs: usize) -> Self {
        Batch {
            inputs: (0..inputs).map(|_| dev.zeros_like(&(0usize,))).collect(),
            rows: 0,
            indices: None,
            temperature: 1.0,
            carrier: dev.zeros_like(&(0usize,)),
        }
    }
    /// A tensor of no values on the batch's device (generated code builds constants on it).
    pub fn carrier(&self) -> &Tensor<(usize,), f32, D> {
        &self.carrier
    }
    /// Rows in this batch (`N` in the model's shapes).
    pub fn rows(&self) -> usize {
        self.rows
    }
    /// Input `i`, flat.
    pub fn input(&self, i: usize) -> Tensor<(usize,), f32, D> {
        debug_assert!(self.inputs[i].shape().num_elements() > 0 || self.rows == 0);
        self.inputs[i].clone()
    }
}

/// Where an observed site's values must lie, as far as the data alone can be checked (an
/// interval's bounds when they are numbers; a discrete site's integers are the input's
/// declared domain, checked by [`check_inputs`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ObservedSupport {
    /// (0, ∞)
    Positive,
    /// (0, 1)
    UnitInterval,
    /// [0, 1], both ends included (a continuous Bernoulli's grey pixels).
    ClosedUnitInterval,
    /// (low, high)
    Interval {
        /// The lower bound, excluded.
        low: f32,
        /// The upper bound, excluded.
        high: f32,
    },
    /// Non-negative values summing to 1 along the last axis of `len`.
    Simplex {
        /// The number of values in each vector (the last axis's size).
        len: usize,
    },
}

impl ObservedSupport {
    /// What the support allows, in words.
    pub fn describe(&self) -> &'static str {
        match self {
            ObservedSupport::Positive => "positive values",
            ObservedSupport::UnitInterval => "values in (0, 1)",
            ObservedSupport::ClosedUnitInterval => "values in [0, 1]",
            ObservedSupport::Interval { .. } => {
                "values strictly between the distribution's low and high"
            }
            ObservedSupport::Simplex { .. } => {
                "non-negative vectors summing to 1 along the last axis"
            }
        }
    }

    /// The first value off the support, by flat index.
    fn first_outside(&self, x: &[f32]) -> Option<(usize, f32)> {
        let inside = |v: f32| match *self {
            ObservedSupport::Positive => v > 0.0,
            ObservedSupport::UnitInterval => v > 0.0 && v < 1.0,
            ObservedSupport::ClosedUnitInterval => (0.0..=1.0).contains(&v),
            ObservedSupport::Interval { low, high } => v > low && v < high,
            ObservedSupport::Simplex { .. } => v >= 0.0,
        };
        if let Some((i, &v)) = x.iter().enumerate().find(|(_, v)| !inside(**v)) {
            return Some((i, v));
        }
        if let ObservedSupport::Simplex { len } = *self {
            for (e, event) in x.chunks(len.max(1)).enumerate() {
                let total: f64 = event.iter().map(|&v| f64::from(v)).sum();
                if (total - 1.0).abs() > 1e-4 {
                    return Some((e * len, event[0]));
                }
            }
        }
        None
    }
}

/// An observed site whose values have a support narrower than the reals.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ObservedSpec {
    /// The observed site's name.
    pub site: &'static str,
    /// The input it observes, by index.
    pub input: usize,
    /// Where its values must lie.
    pub support: ObservedSupport,
}

/// Checks every observed site's data against its distribution's support: once per fit,
/// before the first step, on either path (a value outside would make the log density
/// −∞ or NaN, or, for some densities, a finite number that is wrong).
pub fn check_observed(
    model: &'static str,
    specs: &[InputSpec],
    observed: &[ObservedSpec],
    arrays: &[&Array],
) -> Result<(), DataError> {
    for o in observed {
        let (Some(spec), Some(array)) = (specs.get(o.input), arrays.get(o.input)) else {
            continue;
        };
        if let Some((index, value)) = o.support.first_outside(&array.data) {
            return Err(DataError::Support {
                model,
                site: o.site,
                input: spec.name,
                index,
                value,
                support: o.support.describe(),
            });
        }
    }
    Ok(())
}
