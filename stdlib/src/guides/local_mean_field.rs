//! Mean-field parameters per data row for a local site (`z ~ MeanField` on `z [N, k]`):
//! the non-amortized guide of stochastic variational inference (Hoffman et al. 2013). Each
//! row has its own location and scale; a minibatch gathers its rows' parameters, so only
//! they get a gradient. Its parameters exist only for the rows it was fitted to: it cannot
//! score new rows (an `Amortized` guide can). A guide is built before it sees data, so they
//! are registered by [`LocalMeanField::prepare`], which a fit calls with the row count.

use dfdx::prelude::*;
use ravi_backend::ops::softplus;
use ravi_backend::{traced, Backend, Batch, Estimator, ParamId, ParamStore, Particles, Rows, Tape};

use super::rows::{gaussian_rows, NormalPrior};
use super::{rho_for, INIT_SCALE, SCALE_FLOOR};

/// Mean-field Gaussian parameters per data row for a local site; see the module docs.
#[derive(Debug, Clone)]
pub struct LocalMeanField {
    per_row: usize,
    rows: usize,
    /// Locations and ρ, `rows × per_row` each, once prepared.
    params: Option<(ParamId, ParamId)>,
    /// The site's prior when it is Normal with numbers: the closed-form KL then replaces
    /// log q under [`Estimator::AnalyticKl`].
    kl_prior: Option<NormalPrior>,
}

impl LocalMeanField {
    /// No parameters yet: `per_row` values per row.
    pub fn new(per_row: usize) -> Self {
        LocalMeanField {
            per_row,
            rows: 0,
            params: None,
            kl_prior: None,
        }
    }

    /// The site's Normal prior, for the closed-form KL under [`Estimator::AnalyticKl`].
    pub fn with_kl_prior(mut self, prior: Option<NormalPrior>) -> Self {
        self.kl_prior = prior;
        self
    }

    /// Registers locations 0 and scales 0.1 for `rows` rows under `{name}.loc`, `{name}.rho`
    /// (once: a guide keeps the rows it was first prepared for).
    pub fn prepare<D: Backend>(&mut self, params: &mut ParamStore<D>, name: &str, rows: usize) {
        if self.params.is_some() {
            return;
        }
        let n = rows * self.per_row;
        let loc = params.add(format!("{name}.loc"), vec![0.0; n]);
        let rho = params.add(format!("{name}.rho"), vec![rho_for(INIT_SCALE); n]);
        self.params = Some((loc, rho));
        self.rows = rows;
    }

    /// The rows prepared for (0 before [`LocalMeanField::prepare`]).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// `particles` draws for the rows of `batch` (by [`Batch::indices`]) and log q per
    /// particle and row.
    pub fn sample<D: Backend, T: Tape<D>>(
        &self,
        params: &ParamStore<D>,
        particles: usize,
        batch: &Batch<D>,
        estimator: Estimator,
    ) -> (Particles<D, T>, Rows<D, T>) {
        let dev = params.device();
        if batch.rows() == 0 {
            // No rows (a guide asked for its global sites only): nothing to draw.
            let none: Tensor<(usize, usize), f32, D> = dev.zeros_like(&(particles, 0usize));
            return (none.retaped::<T>(), none.retaped::<T>());
        }
        let (loc_id, rho_id) = self
            .params
            .expect("a guide with per-row parameters is prepared (a fit does it) before it draws");
        let k = self.per_row;
        let idx = batch.indices();
        let b = idx.len();
        let idx: Tensor<(usize,), usize, D> = dev.tensor_from_vec(idx, (b,));
        let rows_of = |id: ParamId| {
            traced::<D, T>(params, id)
                .reshape_like(&(self.rows, k))
                .gather(idx.clone())
        };
        let loc = rows_of(loc_id);
        let sigma = softplus(rows_of(rho_id)) + SCALE_FLOOR;
        gaussian_rows(loc, sigma, particles, estimator, self.kl_prior)
    }
}
